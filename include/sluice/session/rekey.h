// Make-before-break re-key: how a flow side moves from one SRTP context to
// the next without losing a packet (DESIGN.md, "Ownership and concurrency").
//
// Three atomic pointers per side of a flow carry it (Flow::rx_next,
// rx_retired and the tx pair):
//   control thread  Offer: stores a finished context (or kPlain) in *_next;
//   owning worker   Adopt: at a burst boundary takes it, carries the streams
//                   (ROC, replay window) and the carried key's packet counts
//                   over, keeps accepting the replaced receive key (by MKI,
//                   or tried second without MKIs) for the flow's overlap,
//                   and parks the replaced context in *_retired;
//   control thread  TakeRetired: frees it (wiping its keys) once parked.
// A worker adopts only when *_retired is empty, so at most one replaced
// context per side waits for the control thread. A context in *_next that
// the worker never took belongs to the control thread again once Offer
// exchanges it out. Does not allocate.
#ifndef SLUICE_SESSION_REKEY_H_
#define SLUICE_SESSION_REKEY_H_

#include <atomic>
#include <cstdint>

#include "sluice/session/flow.h"
#include "sluice/srtp/context.h"

namespace sluice::session::rekey {

// In a *_next slot: switch that side to plain RTP.
inline srtp::Context* Plain() noexcept { return reinterpret_cast<srtp::Context*>(uintptr_t{1}); }

// Control thread: hands `next` (a context, or Plain()) to the worker through
// `next_slot`. Returns the context an earlier Offer left that the worker
// never took (null or Plain() when there is none to free): the caller frees it.
srtp::Context* Offer(std::atomic<srtp::Context*>& next_slot, srtp::Context* next) noexcept;

// Control thread: the context the worker parked in `retired_slot`, now the
// caller's to free, or null. Clears the slot, letting the worker adopt again.
srtp::Context* TakeRetired(std::atomic<srtp::Context*>& retired_slot) noexcept;

// Control thread: whether either side of `flow` has a context waiting to be
// adopted or collected.
bool Pending(const Flow& flow) noexcept;

namespace internal {

// One side of a flow. overlap_tsc: how long the replaced receive key is
// still tried (null for a send side, whose switch is at a packet boundary).
inline void AdoptSide(std::atomic<srtp::Context*>& next_slot,
                      std::atomic<srtp::Context*>& retired_slot, srtp::Context*& current,
                      uint64_t now, const uint64_t* overlap_tsc) noexcept {
  if (next_slot.load(std::memory_order_relaxed) == nullptr ||
      retired_slot.load(std::memory_order_acquire) != nullptr) {
    return;
  }
  srtp::Context* next = next_slot.exchange(nullptr, std::memory_order_acq_rel);
  if (next == nullptr) return;
  srtp::Context* old = current;
  if (next == Plain()) {
    current = nullptr;
  } else {
    if (old != nullptr) {
      next->AdoptStreamsFrom(*old);
      next->AdoptKeyCountsFrom(*old);
    }
    next->SetTrialDeadline(overlap_tsc != nullptr ? now + *overlap_tsc : UINT64_MAX);
    current = next;
  }
  if (old != nullptr) retired_slot.store(old, std::memory_order_release);
}

}  // namespace internal

// Owning worker, at a burst boundary for this flow (before any of the
// burst's packets is queued for crypto, so the burst sees one context per
// side): takes what the control thread offered. now: the TSC.
inline void Adopt(Flow& flow, uint64_t now) noexcept {
  internal::AdoptSide(flow.rx_next, flow.rx_retired, flow.rx, now, &flow.rekey_overlap_tsc);
  internal::AdoptSide(flow.tx_next, flow.tx_retired, flow.tx, now, nullptr);
}

}  // namespace sluice::session::rekey

#endif  // SLUICE_SESSION_REKEY_H_
