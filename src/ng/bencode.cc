#include "sluice/ng/bencode.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sluice::ng {

const Value* Value::Find(std::string_view key) const {
  if (!is_dict()) return nullptr;
  for (const auto& [k, v] : as_dict()) {
    if (std::string_view(k.data(), k.size()) == key) return &v;
  }
  return nullptr;
}

void Value::Set(std::string_view key, Value value) {
  Dict& d = as_dict();
  for (auto& [k, v] : d) {
    if (std::string_view(k.data(), k.size()) == key) {
      v = std::move(value);
      return;
    }
  }
  d.emplace_back(String(key.data(), key.size()), std::move(value));
}

namespace {

class Decoder {
 public:
  Decoder(std::string_view in, const DecodeLimits& limits, DecodeStats* stats)
      : in_(in), limits_(limits), stats_(stats) {}

  absl::StatusOr<Value> Document() {
    if (in_.size() > limits_.max_size) {
      return absl::InvalidArgumentError(absl::StrCat("bencode: message of ", in_.size(),
                                                     " bytes exceeds the limit of ",
                                                     limits_.max_size));
    }
    if (in_.empty()) return absl::InvalidArgumentError("bencode: empty input");
    Value v;
    if (absl::Status s = Parse(v, 0); !s.ok()) return s;
    if (pos_ != in_.size()) {
      return Error(absl::StrCat("trailing data after the value (", in_.size() - pos_, " bytes)"));
    }
    return v;
  }

 private:
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("bencode: at offset ", pos_, ": ", what));
  }

  // Digits of a non-negative decimal without leading zeros; at most 18 digits
  // (so no overflow) unless `max_digits` says fewer.
  absl::Status Digits(uint64_t& out, size_t max_digits) {
    const size_t start = pos_;
    out = 0;
    while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') {
      if (pos_ - start == max_digits) return Error("number too long");
      out = out * 10 + static_cast<uint64_t>(in_[pos_] - '0');
      ++pos_;
    }
    if (pos_ == start) return Error("expected a digit");
    if (in_[start] == '0' && pos_ - start > 1) {
      pos_ = start;
      return Error("leading zero in a number");
    }
    return absl::OkStatus();
  }

  absl::Status ParseString(String& out) {
    uint64_t len = 0;
    if (absl::Status s = Digits(len, 18); !s.ok()) return s;
    if (pos_ >= in_.size() || in_[pos_] != ':') return Error("expected ':' after a string length");
    ++pos_;
    if (len > in_.size() - pos_) {
      return Error(absl::StrCat("string length ", len, " runs past the end of the input (",
                                in_.size() - pos_, " bytes left)"));
    }
    out.assign(in_.data() + pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return absl::OkStatus();
  }

  absl::Status Parse(Value& out, size_t depth) {
    if (++items_ > limits_.max_items) {
      return Error(absl::StrCat("more than ", limits_.max_items, " values"));
    }
    if (pos_ >= in_.size()) return Error("unexpected end of input, expected a value");
    const char c = in_[pos_];
    if (c == 'i') {
      ++pos_;
      bool negative = false;
      if (pos_ < in_.size() && in_[pos_] == '-') {
        negative = true;
        ++pos_;
      }
      uint64_t magnitude = 0;
      if (absl::Status s = Digits(magnitude, 18); !s.ok()) return s;
      if (negative && magnitude == 0) return Error("negative zero");
      if (pos_ >= in_.size() || in_[pos_] != 'e') return Error("expected 'e' to end an integer");
      ++pos_;
      const int64_t m = static_cast<int64_t>(magnitude);  // < 10^18: fits
      out = Value(negative ? -m : m);
      return absl::OkStatus();
    }
    if (c >= '0' && c <= '9') {
      String s;
      if (absl::Status st = ParseString(s); !st.ok()) return st;
      out = Value(std::move(s));
      return absl::OkStatus();
    }
    if (c == 'l' || c == 'd') {
      if (depth + 1 > limits_.max_depth) {
        return Error(absl::StrCat("nesting deeper than ", limits_.max_depth));
      }
      ++pos_;
      if (c == 'l') {
        Value::List list;
        while (pos_ < in_.size() && in_[pos_] != 'e') {
          list.emplace_back();
          if (absl::Status s = Parse(list.back(), depth + 1); !s.ok()) return s;
        }
        if (pos_ >= in_.size()) return Error("unexpected end of input inside a list");
        ++pos_;
        out = Value(std::move(list));
        return absl::OkStatus();
      }
      return ParseDict(out, depth);
    }
    return Error("expected 'i', 'l', 'd' or a string length");
  }

  absl::Status ParseDict(Value& out, size_t depth) {
    out = Value(Value::Dict{});
    Value::Dict& dict = out.as_dict();
    std::vector<size_t> key_offsets;  // where each entry's key starts, in `dict` order
    while (pos_ < in_.size() && in_[pos_] != 'e') {
      if (in_[pos_] < '0' || in_[pos_] > '9') return Error("dictionary key is not a string");
      key_offsets.push_back(pos_);
      String key;
      if (absl::Status s = ParseString(key); !s.ok()) return s;
      if (++items_ > limits_.max_items) {
        return Error(absl::StrCat("more than ", limits_.max_items, " values"));
      }
      dict.emplace_back(std::move(key), Value());
      if (absl::Status s = Parse(dict.back().second, depth + 1); !s.ok()) return s;
    }
    if (pos_ >= in_.size()) return Error("unexpected end of input inside a dictionary");
    ++pos_;
    return CheckUniqueKeys(dict, key_offsets);
  }

  // Keys need not arrive sorted (BEP 3 asks for it; Kamailio's encoder keeps
  // insertion order), so duplicates are found by sorting entry indices by
  // key: n log n comparisons, not one scan per key. The error names the
  // first repeated key's offset.
  absl::Status CheckUniqueKeys(const Value::Dict& dict, const std::vector<size_t>& key_offsets) {
    if (dict.size() < 2) return absl::OkStatus();
    std::vector<uint32_t> order(dict.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(i);
    auto key = [&dict](uint32_t i) {
      return std::string_view(dict[i].first.data(), dict[i].first.size());
    };
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      if (stats_ != nullptr) ++stats_->key_comparisons;
      const int c = key(a).compare(key(b));
      return c < 0 || (c == 0 && a < b);
    });
    size_t repeated = SIZE_MAX;
    for (size_t i = 1; i < order.size(); ++i) {
      if (stats_ != nullptr) ++stats_->key_comparisons;
      if (key(order[i - 1]) == key(order[i])) repeated = std::min<size_t>(repeated, order[i]);
    }
    if (repeated == SIZE_MAX) return absl::OkStatus();
    pos_ = key_offsets[repeated];
    return Error("duplicate dictionary key");
  }

  std::string_view in_;
  const DecodeLimits& limits_;
  DecodeStats* stats_;
  size_t pos_ = 0;
  size_t items_ = 0;
};

void EncodeTo(const Value& v, String& out) {
  if (v.is_int()) {
    out += 'i';
    const std::string n = std::to_string(v.as_int());
    out.append(n.data(), n.size());
    out += 'e';
  } else if (v.is_string()) {
    const std::string n = std::to_string(v.as_string().size());
    out.append(n.data(), n.size());
    out += ':';
    out += v.as_string();
  } else if (v.is_list()) {
    out += 'l';
    for (const Value& item : v.as_list()) EncodeTo(item, out);
    out += 'e';
  } else {
    std::vector<const std::pair<String, Value>*> entries;
    for (const auto& entry : v.as_dict()) entries.push_back(&entry);
    std::sort(entries.begin(), entries.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    out += 'd';
    for (const auto* entry : entries) {
      EncodeTo(Value(entry->first), out);
      EncodeTo(entry->second, out);
    }
    out += 'e';
  }
}

}  // namespace

absl::StatusOr<Value> Decode(std::string_view input, const DecodeLimits& limits,
                             DecodeStats* stats) {
  return Decoder(input, limits, stats).Document();
}

String Encode(const Value& value) {
  String out;
  EncodeTo(value, out);
  return out;
}

}  // namespace sluice::ng
