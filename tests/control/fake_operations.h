// A stand-in for sluiced's session manager in the control protocol's tests:
// sessions in a map, ports counted up, generated tx keys made of a marker
// the tests can look for. Test hooks make the next call fail or throw.
//
// One thread at a time (the server's), except the atomic call count.
#ifndef SLUICE_TESTS_CONTROL_FAKE_OPERATIONS_H_
#define SLUICE_TESTS_CONTROL_FAKE_OPERATIONS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sluice/control/operations.h"
#include "sluice/crypto/suite.h"

namespace sluice::control::testing {

// What a generated tx key looks like in replies: easy to find in output.
inline constexpr char kGeneratedKeyMarker[] = "GENERATEDKEYGENERATEDKEYGENERATEDKEY0000";

class FakeOperations : public Operations {
 public:
  std::string Version() const override { return "9.9.9-test"; }
  uint32_t Workers() const override { return 3; }

  absl::StatusOr<SessionInfo> Create(const CreateRequest& request) override {
    if (auto s = Hooks(); !s.ok()) return s;
    if (sessions_.count(request.session) != 0) {
      return absl::AlreadyExistsError(absl::StrCat("session \"", request.session, "\" exists"));
    }
    SessionInfo info;
    info.session = request.session;
    bool generated[2] = {false, false};
    for (size_t i = 0; i < request.legs.size(); ++i) {
      const LegRequest& leg = request.legs[i];
      LegInfo out;
      out.name = leg.name;
      out.interface = leg.interface;
      out.local = packet::Endpoint{packet::IpAddress::V4(0x0a000001), next_port_};
      next_port_ += 2;
      out.remote = leg.remote;
      out.rtcp = leg.rtcp;
      out.rx_suite = SuiteOf(leg.rx);
      out.tx_suite = SuiteOf(leg.tx);
      out.counters.rx_packets = 10 + i;
      generated[i] = leg.tx.kind == CryptoSpec::Kind::kGenerate;
      info.legs.push_back(out);
    }
    sessions_[info.session] = info;
    for (size_t i = 0; i < info.legs.size(); ++i) {
      if (generated[i]) info.legs[i].tx_crypto = GeneratedKey(info.legs[i].tx_suite);
    }
    return info;
  }

  absl::StatusOr<SessionInfo> Update(const UpdateRequest& request) override {
    if (auto s = Hooks(); !s.ok()) return s;
    auto it = sessions_.find(request.session);
    if (it == sessions_.end()) return absl::NotFoundError("no such session");
    LegInfo* leg = nullptr;
    for (LegInfo& l : it->second.legs) {
      if (l.name == request.leg) leg = &l;
    }
    if (leg == nullptr) return absl::NotFoundError(absl::StrCat("no leg \"", request.leg, "\""));
    if (request.rx.has_value()) {
      if (request.rx->kind == CryptoSpec::Kind::kSdes) {
        for (const std::string& used : used_rx_) {
          if (used == request.rx->sdes) return KeyReuseError("rx: this key was used before");
        }
        used_rx_.push_back(request.rx->sdes);
      }
      leg->rx_suite = SuiteOf(*request.rx);
    }
    if (request.tx.has_value()) leg->tx_suite = SuiteOf(*request.tx);
    if (request.remote.has_value()) leg->remote = request.remote;
    SessionInfo info = it->second;
    if (request.tx.has_value() && request.tx->kind == CryptoSpec::Kind::kGenerate) {
      for (LegInfo& l : info.legs) {
        if (l.name == request.leg) l.tx_crypto = GeneratedKey(l.tx_suite);
      }
    }
    return info;
  }

  absl::StatusOr<SessionInfo> Delete(const std::string& session) override {
    if (auto s = Hooks(); !s.ok()) return s;
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return absl::NotFoundError("no such session");
    SessionInfo info = it->second;
    sessions_.erase(it);
    return info;
  }

  absl::StatusOr<SessionInfo> Get(const std::string& session) override {
    if (auto s = Hooks(); !s.ok()) return s;
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return absl::NotFoundError(absl::StrCat("no session \"", session, "\""));
    SessionInfo info = it->second;
    // A careless implementation: the codec must still keep this out of replies.
    if (leak_tx_crypto_in_get) {
      for (LegInfo& l : info.legs) l.tx_crypto = GeneratedKey("AES_CM_128_HMAC_SHA1_80");
    }
    return info;
  }

  ListResult List(uint64_t offset, uint64_t limit) override {
    ++calls;
    last_list_offset = offset;
    last_list_limit = limit;
    ListResult result;
    result.total = sessions_.size();
    uint64_t index = 0;
    for (const auto& [name, info] : sessions_) {
      if (index++ < offset) continue;
      if (result.sessions.size() >= limit) break;
      result.sessions.push_back(info);
      if (leak_tx_crypto_in_get) {
        for (LegInfo& l : result.sessions.back().legs) l.tx_crypto = GeneratedKey("x");
      }
    }
    return result;
  }

  Stats GetStats() override {
    ++calls;
    Stats stats;
    stats.sessions = sessions_.size();
    for (uint32_t w = 0; w < 2; ++w) {
      WorkerStats ws;
      ws.id = w;
      ws.lcore = w + 2;
      ws.rx_packets = 100 * (w + 1);
      ws.tx_packets = 90 * (w + 1);
      ws.busy_cycles = 25;
      ws.idle_cycles = 75;
      ws.drops = {{"auth_failed", w + 1}};
      stats.workers.push_back(ws);
    }
    stats.drops = {{"auth_failed", 3}, {"no_flow", 7}};
    return stats;
  }

  // Test hooks.
  absl::Status fail_next;        // returned once by the next session call
  bool throw_next = false;       // the next session call throws
  bool leak_tx_crypto_in_get = false;
  std::atomic<uint64_t> calls{0};
  uint64_t last_list_offset = 0, last_list_limit = 0;

 private:
  absl::Status Hooks() {
    ++calls;
    if (throw_next) {
      throw_next = false;
      throw std::runtime_error("fake failure");
    }
    absl::Status s = fail_next;
    fail_next = absl::OkStatus();
    return s;
  }

  static std::string SuiteOf(const CryptoSpec& spec) {
    switch (spec.kind) {
      case CryptoSpec::Kind::kPlain: return "plain";
      case CryptoSpec::Kind::kPassthrough: return "passthrough";
      case CryptoSpec::Kind::kGenerate: return std::string(crypto::SuiteName(spec.suite));
      case CryptoSpec::Kind::kSdes: {
        std::string s = spec.sdes.substr(0, spec.sdes.find(' '));
        if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
          const size_t start = spec.sdes.find(' ') + 1;
          s = spec.sdes.substr(start, spec.sdes.find(' ', start) - start);
        }
        return s;
      }
    }
    return "?";
  }

  static std::string GeneratedKey(const std::string& suite) {
    return absl::StrCat(suite, " inline:", kGeneratedKeyMarker);
  }

  std::map<std::string, SessionInfo> sessions_;
  std::vector<std::string> used_rx_;
  uint16_t next_port_ = 30000;
};

}  // namespace sluice::control::testing

#endif  // SLUICE_TESTS_CONTROL_FAKE_OPERATIONS_H_
