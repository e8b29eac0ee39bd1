// Bencode, the encoding of rtpengine's "ng" control protocol: integers,
// byte strings, lists and dictionaries. The decoder is strict about syntax
// (no leading zeros, no "-0", lengths that fit the input, keys that are
// strings and never repeat) and bounded in depth, size and item count, so a
// datagram from the network can only produce a value or a precise error.
// Dictionary order is kept as received (SBCs do not sort their keys); the
// encoder writes keys sorted, as the bencode definition asks.
//
// Control thread only. Strings use a wiping allocator: SDP bodies carry keys.
#ifndef SLUICE_NG_BENCODE_H_
#define SLUICE_NG_BENCODE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/memory/wiping_allocator.h"

namespace sluice::ng {

using String = std::basic_string<char, std::char_traits<char>, memory::WipingAllocator<char>>;

class Value {
 public:
  using List = std::vector<Value>;
  using Dict = std::vector<std::pair<String, Value>>;  // received order, unique keys

  Value() : v_(int64_t{0}) {}
  Value(int64_t i) : v_(i) {}                                   // NOLINT: implicit by design
  Value(int i) : v_(int64_t{i}) {}                              // NOLINT
  Value(String s) : v_(std::move(s)) {}                         // NOLINT
  Value(std::string_view s) : v_(String(s.data(), s.size())) {} // NOLINT
  Value(const char* s) : Value(std::string_view(s)) {}          // NOLINT
  Value(const std::string& s) : Value(std::string_view(s)) {}   // NOLINT
  Value(List l) : v_(std::move(l)) {}                           // NOLINT
  Value(Dict d) : v_(std::move(d)) {}                           // NOLINT

  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_string() const { return std::holds_alternative<String>(v_); }
  bool is_list() const { return std::holds_alternative<List>(v_); }
  bool is_dict() const { return std::holds_alternative<Dict>(v_); }

  int64_t as_int() const { return std::get<int64_t>(v_); }
  const String& as_string() const { return std::get<String>(v_); }
  std::string_view str() const { return std::string_view(as_string().data(), as_string().size()); }
  const List& as_list() const { return std::get<List>(v_); }
  List& as_list() { return std::get<List>(v_); }
  const Dict& as_dict() const { return std::get<Dict>(v_); }
  Dict& as_dict() { return std::get<Dict>(v_); }

  // Dictionary lookup; nullptr when absent or when this is not a dictionary.
  const Value* Find(std::string_view key) const;
  // Sets (replacing) a dictionary entry; this must be a dictionary.
  void Set(std::string_view key, Value value);

  bool operator==(const Value& other) const { return v_ == other.v_; }

 private:
  std::variant<int64_t, String, List, Dict> v_;
};

struct DecodeLimits {
  size_t max_size = 256 * 1024;  // bytes of input
  size_t max_depth = 32;         // nested lists and dictionaries
  size_t max_items = 10000;      // values in the whole document
};

// What decoding cost, for tests that bound it by operation count.
struct DecodeStats {
  size_t key_comparisons = 0;  // dictionary key comparisons for duplicate detection
};

// Decodes exactly one value that spans all of `input`. Errors name the byte
// offset and what was expected there, never the content of a string.
// Duplicate keys are found in O(n log n) per dictionary.
absl::StatusOr<Value> Decode(std::string_view input, const DecodeLimits& limits = {},
                             DecodeStats* stats = nullptr);

// Canonical encoding: dictionary keys sorted bytewise.
String Encode(const Value& value);

}  // namespace sluice::ng

#endif  // SLUICE_NG_BENCODE_H_
