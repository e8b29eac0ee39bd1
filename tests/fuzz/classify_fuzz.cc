// Fuzz target: payload classification must accept any bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "sluice/packet/classify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto kind = sluice::packet::ClassifyPayload(std::span<const uint8_t>(data, size));
  (void)sluice::packet::PayloadKindName(kind);
  return 0;
}
