#include "srtp/engine_loops.h"

#include <span>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sluice/srtp/verdict.h"

namespace sluice::bench {
namespace {

absl::StatusOr<std::unique_ptr<srtp::Context>> MakeContext(const srtp::MasterKey& key,
                                                           uint16_t seq_offset = 0) {
  srtp::ContextOptions options;
  options.rtp_seq_offset = seq_offset;
  return srtp::Context::Create(std::span<const srtp::MasterKey>(&key, 1), options);
}

// "auth_failed x3, replayed x1" for the verdicts that are not kOk.
std::string DescribeVerdicts(std::span<const srtp::Verdict> verdicts) {
  int counts[srtp::kVerdictCount] = {};
  for (srtp::Verdict v : verdicts) ++counts[static_cast<int>(v)];
  std::string out;
  for (int v = 1; v < srtp::kVerdictCount; ++v) {
    if (counts[v] == 0) continue;
    absl::StrAppend(&out, out.empty() ? "" : ", ",
                    srtp::VerdictName(static_cast<srtp::Verdict>(v)), " x", counts[v]);
  }
  return out.empty() ? "no verdict other than ok" : out;
}

}  // namespace

// --- Protect ------------------------------------------------------------------

EngineProtectLoop::EngineProtectLoop(crypto::Backend& backend, uint32_t size, size_t burst)
    : engine_(backend), packets_(burst, size), pkts_(burst), jobs_(burst), verdicts_(burst) {}

absl::StatusOr<std::unique_ptr<EngineProtectLoop>> EngineProtectLoop::Create(
    crypto::Backend& backend, crypto::Suite suite, uint32_t size, size_t burst,
    uint16_t seq_offset) {
  if (burst == 0 || burst > srtp::Engine::kMaxBurst) {
    return absl::InvalidArgumentError(
        absl::StrCat("burst must be 1 to ", srtp::Engine::kMaxBurst, ", got ", burst));
  }
  std::unique_ptr<EngineProtectLoop> loop(new EngineProtectLoop(backend, size, burst));
  absl::StatusOr<std::unique_ptr<srtp::Context>> ctx = MakeContext(BenchMasterKey(suite), seq_offset);
  if (!ctx.ok()) return ctx.status();
  loop->ctx_ = *std::move(ctx);
  for (size_t i = 0; i < burst; ++i) {
    loop->pkts_[i] = {loop->packets_.data(i), size, loop->packets_.capacity()};
    loop->jobs_[i] = {loop->ctx_.get(), &loop->pkts_[i]};
  }
  return loop;
}

size_t EngineProtectLoop::Step() noexcept {
  const uint32_t size = packets_.size();
  for (srtp::Packet& pkt : pkts_) pkt.len = size;
  next_seq_ = packets_.SetSeqs(next_seq_);
  return engine_.ProtectRtp(jobs_, verdicts_);
}

std::string EngineProtectLoop::FailureDetail() const { return DescribeVerdicts(verdicts_); }

// --- Unprotect ----------------------------------------------------------------

EngineUnprotectLoop::EngineUnprotectLoop(crypto::Backend& backend, uint32_t size, size_t burst,
                                         size_t ring)
    : engine_(backend),
      burst_(burst),
      protected_(ring, size),
      work_(ring, size),
      protected_len_(ring),
      pkts_(ring),
      jobs_(ring),
      verdicts_(burst) {}

absl::StatusOr<std::unique_ptr<EngineUnprotectLoop>> EngineUnprotectLoop::Create(
    crypto::Backend& backend, crypto::Suite suite, uint32_t size, size_t burst, size_t ring) {
  if (burst == 0 || burst > srtp::Engine::kMaxBurst) {
    return absl::InvalidArgumentError(
        absl::StrCat("burst must be 1 to ", srtp::Engine::kMaxBurst, ", got ", burst));
  }
  ring = (ring + burst - 1) / burst * burst;
  std::unique_ptr<EngineUnprotectLoop> loop(new EngineUnprotectLoop(backend, size, burst, ring));
  loop->key_ = BenchMasterKey(suite);

  // Protect the ring with a sender context, a burst at a time.
  absl::StatusOr<std::unique_ptr<srtp::Context>> sender = MakeContext(loop->key_);
  if (!sender.ok()) return sender.status();
  for (size_t i = 0; i < ring; ++i) {
    loop->pkts_[i] = {loop->protected_.data(i), size, loop->protected_.capacity()};
    loop->jobs_[i] = {sender->get(), &loop->pkts_[i]};
  }
  std::vector<srtp::Verdict> verdicts(burst);
  for (size_t first = 0; first < ring; first += burst) {
    const std::span<const srtp::Job> jobs(&loop->jobs_[first], burst);
    if (loop->engine_.ProtectRtp(jobs, verdicts) != burst) {
      return absl::InternalError(
          absl::StrCat("protecting the unprotect ring failed: ", DescribeVerdicts(verdicts)));
    }
  }
  for (size_t i = 0; i < ring; ++i) {
    loop->protected_len_[i] = loop->pkts_[i].len;
    loop->pkts_[i].data = loop->work_.data(i);
  }
  loop->Refill();
  if (loop->refill_failed_) return absl::InternalError("cannot create the receiver context");
  return loop;
}

void EngineUnprotectLoop::Refill() {
  work_.CopyFrom(protected_);
  for (size_t i = 0; i < pkts_.size(); ++i) pkts_[i].len = protected_len_[i];
  absl::StatusOr<std::unique_ptr<srtp::Context>> receiver = MakeContext(key_);
  if (!receiver.ok()) {
    refill_failed_ = true;
    return;
  }
  receiver_ = *std::move(receiver);
  for (srtp::Job& job : jobs_) job.ctx = receiver_.get();
  next_ = 0;
}

size_t EngineUnprotectLoop::Step() noexcept {
  if (refill_failed_) return 0;
  const std::span<const srtp::Job> jobs(&jobs_[next_], burst_);
  next_ += burst_;
  return engine_.UnprotectRtp(jobs, verdicts_);
}

std::string EngineUnprotectLoop::FailureDetail() const {
  if (refill_failed_) return "cannot create a fresh receiver context";
  return DescribeVerdicts(verdicts_);
}

}  // namespace sluice::bench
