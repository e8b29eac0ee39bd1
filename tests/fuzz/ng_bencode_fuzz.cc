// Fuzz target: the ng protocol's bencode decoder. Beyond not crashing: a
// decoded value encodes canonically, the canonical form decodes to the same
// value, and encoding it again gives the same bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sluice/ng/bencode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sluice::ng::Value> value = sluice::ng::Decode(input);
  if (!value.ok()) {
    if (value.status().message().empty()) __builtin_trap();
    return 0;
  }
  const sluice::ng::String once = sluice::ng::Encode(*value);
  absl::StatusOr<sluice::ng::Value> again =
      sluice::ng::Decode(std::string_view(once.data(), once.size()));
  if (!again.ok()) __builtin_trap();
  if (sluice::ng::Encode(*again) != once) __builtin_trap();
  return 0;
}
