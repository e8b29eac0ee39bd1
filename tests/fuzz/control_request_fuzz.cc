// Fuzz target: the control protocol's request handling (decode, dispatch,
// encode) against a fake session manager. Each input is a conversation:
// its lines go through HandleLine in order, so a create can be followed by
// updates, gets and deletes of the same session.
//
// Invariants, beyond not crashing: every reply is exactly one line of JSON
// with "id" and a boolean "ok", an error has a known code, and the codec's
// error messages never repeat a key-sized run of base64 from the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "../control/fake_operations.h"
#include "key_echo.h"
#include "sluice/control/protocol.h"

namespace {

using sluice::fuzz::EchoesKeyMaterial;

void Check(const std::string& reply, std::string_view line) {
  if (reply.empty() || reply.back() != '\n' || reply.find('\n') != reply.size() - 1) {
    __builtin_trap();
  }
  const nlohmann::json r = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
  if (r.is_discarded() || !r.is_object() || !r.contains("id") || !r.contains("ok") ||
      !r["ok"].is_boolean()) {
    __builtin_trap();
  }
  if (r["ok"].get<bool>()) return;
  const nlohmann::json& error = r["error"];
  if (!error.is_object() || !error["code"].is_string() || !error["message"].is_string()) {
    __builtin_trap();
  }
  const std::string code = error["code"].get<std::string>();
  static constexpr std::string_view kCodes[] = {
      "parse_error", "invalid_request", "invalid_argument", "not_found",
      "already_exists", "key_reuse", "resource_exhausted", "encryption_required",
      "failed_precondition", "internal"};
  bool known = false;
  for (std::string_view c : kCodes) known |= c == code;
  if (!known) __builtin_trap();
  // The codec's own messages (the fake's may quote session names).
  if ((code == "parse_error" || code == "invalid_request" || code == "invalid_argument") &&
      EchoesKeyMaterial(error["message"].get<std::string>(), line)) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  sluice::control::testing::FakeOperations operations;
  sluice::control::ControlCounters counters;
  size_t start = 0;
  while (start <= input.size()) {
    size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    const std::string_view line = input.substr(start, end - start);
    Check(sluice::control::HandleLine(operations, absl::string_view(line.data(), line.size()),
                                      &counters),
          line);
    start = end + 1;
  }
  return 0;
}
