// Fuzz target: any bytes as a STUN message, parsed, verified and answered by
// an ICE-lite agent with fixed credentials, from the selected peer address,
// from another one, and again after an ICE restart. Nothing may crash or read
// outside the input; the selected address changes only on an answered check
// that says so; every success response parses and authenticates under the
// agent's password.
//
// The seed corpus holds checks aioice built under these credentials (see
// kLocalUfrag below), with and without USE-CANDIDATE, a role conflict, and
// the RFC 5769 sample messages.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>

#include "sluice/ice/lite_agent.h"
#include "sluice/ice/stun.h"

namespace {

using sluice::ice::CheckOutcome;
using sluice::ice::CheckResult;
using sluice::ice::MakeIceCredentials;
using sluice::ice::LiteAgent;
using sluice::packet::Endpoint;

constexpr const char* kLocalUfrag = "fuzzA1";
constexpr const char* kLocalPwd = "FuzzLocalPassword0123456";
constexpr const char* kPeerUfrag = "fuzzB2";
constexpr const char* kPeerPwd = "FuzzPeerPassword01234567";

void Check(bool ok) {
  if (!ok) std::abort();
}

// Handles `in` and checks what the agent guarantees.
void Feed(LiteAgent& agent, std::span<const uint8_t> in, const Endpoint& from, uint64_t now,
          const char* pwd) {
  const std::optional<Endpoint> before = agent.selected();
  const CheckResult r = agent.Handle(in, from, now);
  if (agent.selected() != before) {
    Check(r.outcome == CheckOutcome::kAnswered && r.selected_changed && agent.selected() == from);
  }
  if (r.outcome == CheckOutcome::kAnswered) {
    const auto p = sluice::ice::ParseStun(r.response);
    Check(p.ok() && p.message.xor_mapped_address == from);
    Check(sluice::ice::VerifyStunIntegrity(r.response, p.message, sluice::ice::StunKey(pwd)));
  }
  if (r.outcome == CheckOutcome::kDropped) Check(r.response.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  const auto parse = sluice::ice::ParseStun(in);
  if (parse.ok()) {
    (void)sluice::ice::VerifyStunIntegrity(in, parse.message, sluice::ice::StunKey(kLocalPwd));
  }
  auto created = LiteAgent::Create(MakeIceCredentials(kLocalUfrag, kLocalPwd),
                                   MakeIceCredentials(kPeerUfrag, kPeerPwd));
  Check(created.ok());
  LiteAgent& agent = *created;
  const Endpoint a = *Endpoint::Parse("192.0.2.1:5000");
  const Endpoint b = *Endpoint::Parse("[2001:db8::2]:6000");
  Feed(agent, in, a, 1000, kLocalPwd);
  Feed(agent, in, b, 2000, kLocalPwd);
  Feed(agent, in, a, 40000, kLocalPwd);
  (void)agent.HasConsent(40000);
  // After a restart the old credentials answer only the selected address.
  Check(agent.Restart(MakeIceCredentials("fuzzA9", "FuzzRestartedPassword999"), std::nullopt).ok());
  const std::optional<Endpoint> selected = agent.selected();
  const CheckResult r = agent.Handle(in, b, 50000);
  if (r.outcome == CheckOutcome::kAnswered && selected && *selected != b) {
    Check(!sluice::ice::VerifyStunIntegrity(
        r.response, sluice::ice::ParseStun(r.response).message, sluice::ice::StunKey(kLocalPwd)));
  }
  return 0;
}
