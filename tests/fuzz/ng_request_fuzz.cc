// Fuzz target: ng requests through the command handler against a fake
// session manager. Each input is a conversation: its NUL-separated parts are
// bencoded requests handled in order, so an offer can be followed by
// answers, re-offers, queries and deletes of the same call.
//
// Invariants, beyond not crashing: every reply is a dictionary whose
// "result" is "ok", "pong" or "error" (an error with an "error-reason"), it
// encodes and decodes back to itself, and an error never repeats a
// key-sized run of base64 from the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../control/fake_operations.h"
#include "key_echo.h"
#include "sluice/ng/bencode.h"
#include "sluice/ng/handler.h"

namespace {

using sluice::fuzz::EchoesKeyMaterial;

void Check(const sluice::ng::Value& reply, std::string_view input) {
  if (!reply.is_dict()) __builtin_trap();
  const sluice::ng::Value* result = reply.Find("result");
  if (result == nullptr || !result->is_string()) __builtin_trap();
  const std::string_view r = result->str();
  if (r != "ok" && r != "pong" && r != "error") __builtin_trap();
  if (r == "error") {
    const sluice::ng::Value* reason = reply.Find("error-reason");
    if (reason == nullptr || !reason->is_string() || reason->str().empty()) __builtin_trap();
    if (EchoesKeyMaterial(reason->str(), input)) __builtin_trap();
  }
  const sluice::ng::String encoded = sluice::ng::Encode(reply);
  absl::StatusOr<sluice::ng::Value> back =
      sluice::ng::Decode(std::string_view(encoded.data(), encoded.size()));
  if (!back.ok() || !(*back == reply)) {
    // Decoding keeps received order and encoding sorts: compare encodings.
    if (!back.ok() || sluice::ng::Encode(*back) != encoded) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  sluice::control::testing::FakeOperations operations;
  sluice::ng::Handler handler(operations, sluice::ng::HandlerOptions{"a"});
  size_t start = 0;
  while (start <= input.size()) {
    size_t end = input.find('\0', start);
    if (end == std::string_view::npos) end = input.size();
    absl::StatusOr<sluice::ng::Value> request = sluice::ng::Decode(input.substr(start, end - start));
    if (request.ok()) Check(handler.Handle(*request), input);
    start = end + 1;
  }
  return 0;
}
