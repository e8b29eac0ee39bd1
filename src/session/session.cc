#include "sluice/session/session.h"

#include "absl/strings/str_cat.h"
#include "sluice/memory/hot_arena.h"
#include "sluice/session/learning.h"
#include "sluice/session/policing.h"
#include "sluice/session/rekey.h"

namespace sluice::session {
namespace {

absl::StatusOr<std::unique_ptr<srtp::Context>> MaybeContext(
    const std::vector<srtp::MasterKey>& keys, srtp::ContextOptions options, bool encrypt_srtcp,
    const std::string& what) {
  if (keys.empty()) return std::unique_ptr<srtp::Context>();
  options.encrypt_srtcp = encrypt_srtcp;
  absl::StatusOr<std::unique_ptr<srtp::Context>> ctx = srtp::Context::Create(keys, options);
  if (!ctx.ok()) {
    return absl::Status(ctx.status().code(), absl::StrCat(what, ": ", ctx.status().message()));
  }
  return ctx;
}

}  // namespace

void* Session::operator new(std::size_t bytes, std::align_val_t) {
  static_assert(alignof(Session) > __STDCPP_DEFAULT_NEW_ALIGNMENT__ &&
                alignof(Session) <= memory::kHotAlignment);
  return memory::AllocateHot(bytes);
}
void Session::operator delete(void* p, std::size_t bytes, std::align_val_t) noexcept {
  memory::FreeHot(p, bytes);
}

namespace {
absl::Status RestoreError(const LegSpec& leg, const char* side) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "leg ", leg.name, ": more restored ", side, " streams than [media] max_ssrcs_per_leg"));
}
}  // namespace

absl::StatusOr<std::unique_ptr<Session>> Session::Create(uint64_t id, const LegSpec& a,
                                                         const LegSpec& b,
                                                         const SessionOptions& options) {
  std::unique_ptr<Session> s(new Session());
  const LegSpec* legs[2] = {&a, &b};
  srtp::Context* rx_ctx[2] = {nullptr, nullptr};
  srtp::Context* tx_ctx[2] = {nullptr, nullptr};
  for (int i = 0; i < 2; ++i) {
    const LegSpec& leg = *legs[i];
    if (leg.local.ip.unset() || leg.local.port == 0) {
      return absl::InvalidArgumentError(absl::StrCat("leg ", leg.name, ": no local address"));
    }
    if (leg.remote && leg.remote->ip.family != leg.local.ip.family) {
      return absl::InvalidArgumentError(absl::StrCat(
          "leg ", leg.name, ": remote ", leg.remote->ToString(), " is not the family of local ",
          leg.local.ToString()));
    }
    if (leg.strict_source && !leg.remote) {
      return absl::InvalidArgumentError(
          absl::StrCat("leg ", leg.name, ": strict source needs a remote address"));
    }
    srtp::ContextOptions leg_options = options.srtp;
    leg_options.aes192_kdf = leg.aes192_kdf;
    auto rx = MaybeContext(leg.rx_keys, leg_options, true, absl::StrCat("legs[", i, "].rx"));
    if (!rx.ok()) return rx.status();
    leg_options.rtp_seq_offset = leg.tx_seq_offset;  // a sender's only
    auto tx = MaybeContext(leg.tx_keys, leg_options, leg.tx_encrypt_srtcp,
                           absl::StrCat("legs[", i, "].tx"));
    if (!tx.ok()) return tx.status();
    for (const srtp::StreamState& st : leg.rx_streams) {
      if (*rx && !(*rx)->RestoreStream(st, false)) return RestoreError(leg, "rx");
    }
    for (const srtp::StreamState& st : leg.tx_streams) {
      if (*tx && !(*tx)->RestoreStream(st, true)) return RestoreError(leg, "tx");
    }
    rx_ctx[i] = rx->get();
    s->newest_rx_[i] = rx->get();
    tx_ctx[i] = tx->get();
    s->newest_tx_[i] = tx->get();
    if (*rx) s->contexts_.push_back(std::move(*rx));
    if (*tx) s->contexts_.push_back(std::move(*tx));
    s->remotes_[i].Store(learning::GivenRemote(leg.remote, leg.remote_mac));
  }
  for (int i = 0; i < 2; ++i) {
    const LegSpec& in = *legs[i];
    const LegSpec& out = *legs[1 - i];
    Flow& f = s->flows_[i];
    f.id = (id << 1) | static_cast<uint64_t>(i);
    f.in_local = in.local;
    f.in_port = in.port_id;
    f.in_vlan = in.vlan;
    f.rtcp_mux = in.rtcp_mux;
    f.strict_source = in.strict_source;
    f.out_port = out.port_id;
    f.out_vlan = out.vlan;
    f.out_src_mac = out.port_mac;
    f.out_local = out.local;
    f.out_rtcp_mux = out.rtcp_mux;
    f.rx = rx_ctx[i];
    f.tx = tx_ctx[1 - i];
    f.in_remote = &s->remotes_[i];
    f.out_remote = &s->remotes_[1 - i];
    f.learn_packets = options.learn_packets;
    f.awaiting_answer.store(in.await_answer, std::memory_order_relaxed);
    f.handshake.store(in.handshake, std::memory_order_relaxed);
    f.keys_pending.store(in.keys_pending || out.keys_pending, std::memory_order_relaxed);
    s->keys_pending_[i] = in.keys_pending;
  }
  // The contexts hold what the keys became; the master keys stay in the
  // caller's specs (which wipe them).
  return s;
}

Session::~Session() = default;

void Session::Free(srtp::Context* context) {
  for (auto it = contexts_.begin(); it != contexts_.end(); ++it) {
    if (it->get() == context) {
      contexts_.erase(it);
      return;
    }
  }
}

void Session::HandOver(std::atomic<srtp::Context*>& slot,
                       std::unique_ptr<srtp::Context> context) {
  srtp::Context* next = context ? context.get() : rekey::Plain();
  if (context) contexts_.push_back(std::move(context));
  srtp::Context* previous = rekey::Offer(slot, next);
  // The worker never took the previous one: it is ours to free.
  if (previous != nullptr && previous != rekey::Plain()) Free(previous);
}

void Session::HandOverRx(int leg, std::unique_ptr<srtp::Context> context) {
  newest_rx_[leg] = context.get();
  HandOver(flows_[leg].rx_next, std::move(context));
}

void Session::HandOverTx(int leg, std::unique_ptr<srtp::Context> context) {
  newest_tx_[leg] = context.get();
  HandOver(flows_[1 - leg].tx_next, std::move(context));
}

int Session::CollectRetired() {
  int freed = 0;
  for (Flow& f : flows_) {
    for (std::atomic<srtp::Context*>* slot : {&f.rx_retired, &f.tx_retired}) {
      srtp::Context* retired = rekey::TakeRetired(*slot);
      if (retired == nullptr) continue;
      Free(retired);  // wipes its keys
      ++freed;
    }
  }
  return freed;
}

bool Session::HandOverPending() const {
  for (const Flow& f : flows_) {
    if (rekey::Pending(f)) return true;
  }
  return false;
}

void Session::SetOwner(uint16_t worker) {
  for (Flow& f : flows_) f.owner = worker;
}

void Session::SetRekeyOverlap(uint64_t tsc) {
  for (Flow& f : flows_) f.rekey_overlap_tsc = tsc;
}

void Session::SetRateLimit(uint32_t max_pps, uint64_t tsc_hz) {
  for (Flow& f : flows_) policing::Configure(f, max_pps, tsc_hz);
}

void Session::SetRemote(int leg, const packet::Endpoint& remote) {
  remotes_[leg].Store(learning::GivenRemote(remote, std::nullopt));
}

void Session::SetAnswered(int leg) {
  flows_[leg].awaiting_answer.store(false, std::memory_order_release);
}

void Session::SetHandshake(int leg, bool on) {
  flows_[leg].handshake.store(on, std::memory_order_release);
}

void Session::SetKeysPending(int leg, bool pending) {
  // A worker adopts a context only once the one it parked last is
  // collected (session/rekey.h): collected here, it adopts the new keys in
  // the same burst that sees the flag clear.
  if (!pending) CollectRetired();
  keys_pending_[leg] = pending;
  const bool any = keys_pending_[0] || keys_pending_[1];
  for (Flow& f : flows_) f.keys_pending.store(any, std::memory_order_release);
}

int Session::TableKeys(int leg, packet::Endpoint keys[2]) const {
  const Flow& f = flows_[leg];
  keys[0] = f.in_local;
  if (f.rtcp_mux) return 1;
  keys[1] = f.in_local;
  keys[1].port = static_cast<uint16_t>(f.in_local.port + 1);
  return 2;
}

absl::Status Session::Publish(FlowTable& table) {
  for (int i = 0; i < 2; ++i) {
    packet::Endpoint keys[2];
    const int n = TableKeys(i, keys);
    for (int k = 0; k < n; ++k) {
      const bool rtcp_port = k == 1;
      absl::Status s = table.Add(keys[k], &flows_[i], rtcp_port);
      if (!s.ok()) {
        Unpublish(table);
        return s;
      }
      ++published_;
    }
  }
  return absl::OkStatus();
}

void Session::Unpublish(FlowTable& table) {
  int left = published_;
  for (int i = 0; i < 2 && left > 0; ++i) {
    packet::Endpoint keys[2];
    const int n = TableKeys(i, keys);
    for (int k = 0; k < n && left > 0; ++k, --left) table.Remove(keys[k]).IgnoreError();
  }
  published_ = 0;
}

}  // namespace sluice::session
