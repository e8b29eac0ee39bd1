// A check fuzz targets share: an error message that repeats key material the
// input carried.
#ifndef SLUICE_TESTS_FUZZ_KEY_ECHO_H_
#define SLUICE_TESTS_FUZZ_KEY_ECHO_H_

#include <cstddef>
#include <string_view>

namespace sluice::fuzz {

inline bool IsBase64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

// True when `message` holds a run of more than 32 base64 characters that is
// also in `input`: a key an error message must not have quoted.
inline bool EchoesKeyMaterial(std::string_view message, std::string_view input) {
  size_t start = 0;
  for (size_t i = 0; i <= message.size(); ++i) {
    if (i < message.size() && IsBase64(message[i])) continue;
    if (i - start > 32 && input.find(message.substr(start, i - start)) != std::string_view::npos) {
      return true;
    }
    start = i + 1;
  }
  return false;
}

}  // namespace sluice::fuzz

#endif  // SLUICE_TESTS_FUZZ_KEY_ECHO_H_
