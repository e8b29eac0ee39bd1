#include "sluice/session/rekey.h"

namespace sluice::session::rekey {

srtp::Context* Offer(std::atomic<srtp::Context*>& next_slot, srtp::Context* next) noexcept {
  return next_slot.exchange(next, std::memory_order_acq_rel);
}

srtp::Context* TakeRetired(std::atomic<srtp::Context*>& retired_slot) noexcept {
  srtp::Context* retired = retired_slot.load(std::memory_order_acquire);
  if (retired != nullptr) retired_slot.store(nullptr, std::memory_order_release);
  return retired;
}

bool Pending(const Flow& flow) noexcept {
  return flow.rx_next.load(std::memory_order_acquire) != nullptr ||
         flow.tx_next.load(std::memory_order_acquire) != nullptr ||
         flow.rx_retired.load(std::memory_order_acquire) != nullptr ||
         flow.tx_retired.load(std::memory_order_acquire) != nullptr;
}

}  // namespace sluice::session::rekey
