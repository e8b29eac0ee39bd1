#include "sluice/ng/flags.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sluice::ng {
namespace {

constexpr size_t kMaxQuoted = 40;

std::string Quoted(std::string_view token) {
  std::string out(token.substr(0, kMaxQuoted));
  if (token.size() > kMaxQuoted) out += "...";
  return "\"" + out + "\"";
}

absl::Status Malformed(std::string_view token, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("rtpp-flags: ", Quoted(token), ": ", std::string(why)));
}

// The next space-separated token of `rest`, or for "key=[...", everything
// up to the closing bracket.
absl::StatusOr<std::string_view> NextToken(std::string_view& rest) {
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  size_t end = rest.find(' ');
  std::string_view token = rest.substr(0, end);
  const size_t eq = token.find('=');
  if (eq != std::string_view::npos && eq + 1 < token.size() && token[eq + 1] == '[') {
    end = rest.find(']');
    if (end == std::string_view::npos) return Malformed(token, "no closing \"]\"");
    ++end;
    token = rest.substr(0, end);
  }
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  return token;
}

// rtpengine builds a transport from RTP, AVP, SRTP, AVPF and DTLS.
constexpr unsigned kTransportSet = 0x100, kSecure = 1, kFeedback = 2, kDtls = 4;

bool TransportWord(std::string_view w, unsigned& bits) {
  static const std::map<std::string_view, unsigned> kWhole = {
      {"RTP/AVP", kTransportSet}, {"RTP/SAVP", kTransportSet | kSecure},
      {"RTP/AVPF", kTransportSet | kFeedback}, {"RTP/SAVPF", kTransportSet | kSecure | kFeedback},
      {"UDP/TLS/RTP/SAVP", kTransportSet | kDtls | kSecure},
      {"UDP/TLS/RTP/SAVPF", kTransportSet | kDtls | kSecure | kFeedback}};
  if (auto it = kWhole.find(w); it != kWhole.end()) {
    bits = it->second;
  } else if (w == "RTP") {
    bits = (bits | kTransportSet) & ~kSecure;
  } else if (w == "AVP") {
    bits = (bits | kTransportSet) & ~kFeedback;
  } else if (w == "SRTP") {
    bits |= kTransportSet | kSecure;
  } else if (w == "AVPF") {
    bits |= kTransportSet | kFeedback;
  } else if (w == "DTLS") {
    bits |= kTransportSet | kDtls;
  } else {
    return false;
  }
  return true;
}

std::string TransportName(unsigned bits) {
  std::string name = (bits & kDtls) ? "UDP/TLS/RTP/" : "RTP/";
  name += (bits & (kSecure | kDtls)) ? "SAVP" : "AVP";
  if (bits & kFeedback) name += "F";
  return name;
}

class Builder {
 public:
  void Append(const std::string& key, std::string_view item) {
    lists_[key].emplace_back(item);
  }
  void Set(const std::string& key, Value value) { scalars_[key] = std::move(value); }
  Value Build(unsigned transport) {
    Value out(Value::Dict{});
    for (auto& [key, value] : scalars_) out.Set(key, std::move(value));
    for (auto& [key, items] : lists_) out.Set(key, Value(std::move(items)));
    if (transport != 0) out.Set("transport-protocol", TransportName(transport));
    return out;
  }

 private:
  std::map<std::string, Value> scalars_;
  std::map<std::string, Value::List> lists_;
};

// "SDES-off" is an SDES item, "ICE-remove" is ICE=remove, and so on.
bool PrefixFlag(std::string_view flag, Builder& out) {
  static const std::pair<std::string_view, std::string_view> kLists[] = {
      {"SDES-", "SDES"}, {"replace-", "replace"}, {"rtcp-mux-", "rtcp-mux"}};
  for (const auto& [prefix, key] : kLists) {
    if (flag.size() > prefix.size() && flag.substr(0, prefix.size()) == prefix) {
      out.Append(std::string(key), flag.substr(prefix.size()));
      return true;
    }
  }
  for (std::string_view key : {"ICE", "DTLS"}) {
    if (flag.size() > key.size() + 1 && flag.substr(0, key.size()) == key &&
        flag[key.size()] == '-') {
      out.Set(std::string(key), Value(flag.substr(key.size() + 1)));
      return true;
    }
  }
  return false;
}

absl::Status KeyValue(std::string_view token, size_t eq, Builder& out) {
  const std::string key(token.substr(0, eq));
  std::string_view value = token.substr(eq + 1);
  if (key.empty()) return Malformed(token, "no key before \"=\"");
  if (value.empty()) return Malformed(token, "no value after \"=\"");
  if (value.front() == '[') {
    value = value.substr(1, value.size() - 2);
    if (value.find('[') != std::string_view::npos) return Malformed(token, "nested \"[\"");
    Value::List items;
    while (!value.empty()) {
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      const size_t end = value.find(' ');
      if (!value.empty()) items.emplace_back(value.substr(0, end));
      value.remove_prefix(end == std::string_view::npos ? value.size() : end);
    }
    out.Set(key, Value(std::move(items)));
  } else if (value.find_first_of("[]") != std::string_view::npos) {
    return Malformed(token, "stray bracket");
  } else if (key == "direction") {
    out.Append("direction", value);
  } else {
    out.Set(key, Value(value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Value> ParseRtppFlags(std::string_view text) {
  Builder out;
  unsigned transport = 0;
  std::string_view rest = text;
  while (true) {
    absl::StatusOr<std::string_view> token = NextToken(rest);
    if (!token.ok()) return token.status();
    if (token->empty()) break;
    const size_t eq = token->find('=');
    if (eq != std::string_view::npos) {
      if (absl::Status s = KeyValue(*token, eq, out); !s.ok()) return s;
    } else if (token->find_first_of("[]") != std::string_view::npos) {
      return Malformed(*token, "stray bracket");
    } else if (*token == "internal" || *token == "external") {
      out.Append("direction", *token);
    } else if (!TransportWord(*token, transport) && !PrefixFlag(*token, out)) {
      out.Append("flags", *token);
    }
  }
  return out.Build(transport);
}

}  // namespace sluice::ng
