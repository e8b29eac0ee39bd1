// Fuzz target: any bytes as an a=crypto value. Parsing must not crash, and
// whatever parses must format and parse back to the same suite, key, salt,
// lifetime, MKI and session parameters, and format to the same text again.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "sluice/srtp/sdes.h"

namespace {

using sluice::srtp::SdesCrypto;

bool SameCrypto(const SdesCrypto& a, const SdesCrypto& b) {
  const auto same_bytes = [](auto x, auto y) {
    return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin());
  };
  return a.tag == b.tag && a.key.suite == b.key.suite &&
         same_bytes(a.key.key_bytes(), b.key.key_bytes()) &&
         same_bytes(a.key.salt_bytes(), b.key.salt_bytes()) && a.key.lifetime == b.key.lifetime &&
         same_bytes(a.key.mki_bytes(), b.key.mki_bytes()) &&
         a.unencrypted_srtcp == b.unencrypted_srtcp && a.window_size_hint == b.window_size_hint;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<SdesCrypto> parsed = sluice::srtp::ParseSdesCrypto(input);
  if (!parsed.ok()) return 0;

  const std::string formatted = sluice::srtp::FormatSdesCrypto(*parsed);
  absl::StatusOr<SdesCrypto> reparsed = sluice::srtp::ParseSdesCrypto(formatted);
  if (!reparsed.ok() || !SameCrypto(*parsed, *reparsed)) abort();
  if (sluice::srtp::FormatSdesCrypto(*reparsed) != formatted) abort();
  return 0;
}
