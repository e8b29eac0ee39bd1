#include "sluice/config/config.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <span>
#include <sstream>
#include <string>
#include <toml.hpp>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sluice::config {
namespace {

// std::map keeps tables in key order, so which of several unknown keys is
// reported does not depend on hashing.
using Value = toml::basic_value<toml::discard_comments, std::map, std::vector>;
using Table = Value::table_type;

// toml11 parses arrays and inline tables recursively and copies and destroys
// nested tables recursively: about 700 nested inline tables (2 KiB of input)
// overflow the stack under ASan, and deep dotted keys do too. A Sluice config
// nests at most three levels, so input deeper than this is refused before
// toml11 sees it.
constexpr int kMaxNesting = 16;
// toml11 reads a value's whole line (for its comments) for each value it
// creates, so a line of n values costs n times its length: 32,000 strings on
// one 128 KiB line take 4 s. Configuration lines are short; with this cap and
// kMaxConfigBytes the worst input parses in about half a second.
constexpr size_t kMaxLineBytes = 4096;

constexpr size_t kMaxNameLength = 64;
constexpr size_t kMaxKeyShown = 64;
constexpr unsigned kMaxLcoreId = 1023;   // EAL checks the exact limit of its build
constexpr uint64_t kMaxRxQueues = 1024;  // RTE_MAX_QUEUES_PER_PORT
constexpr uint64_t kMinRing = 64;
constexpr uint64_t kMaxRing = 32768;
// sockaddr_un::sun_path holds the path and its NUL.
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

// The schema: which tables exist and which keys each may hold.
constexpr absl::string_view kEalKeys[] = {"args"};
constexpr absl::string_view kInterfaceKeys[] = {"name",      "device",       "ipv4",        "ipv6",
                                                "gateway",   "gateway6",     "vlan",        "mtu",
                                                "rx_queues", "rx_ring_size", "tx_ring_size",
                                                "checksum_offload"};
constexpr absl::string_view kWorkersKeys[] = {"lcores", "burst", "stall_ms"};
constexpr absl::string_view kMediaKeys[] = {
    "port_min",          "port_max",           "replay_window", "rekey_overlap_ms",
    "max_ssrcs_per_leg", "port_reuse_delay_s", "learn_packets",
    "ssrc_reuse_idle_ms", "learn_before_answer", "key_limit_warn_percent",
    "timeout_s", "silent_timeout_s", "final_timeout_s",
    "aes192_kdf", "require_encryption"};
constexpr absl::string_view kControlKeys[] = {"socket", "group", "max_connections", "tls"};
constexpr absl::string_view kControlTlsKeys[] = {"listen",      "cert",           "key",
                                                 "ca",          "server_name",    "allowed_clients",
                                                 "handshake_timeout_ms", "max_connections",
                                                 "idle_timeout_ms"};
constexpr absl::string_view kCryptoKeys[] = {"backend"};
constexpr absl::string_view kLimitsKeys[] = {"max_sessions", "mbufs", "leg_max_pps",
                                              "session_hugepages"};
constexpr absl::string_view kNgKeys[] = {"listen", "interface", "reply_cache_entries",
                                          "reply_cache_ms",
                                          "allowed_sources", "socket", "socket_group",
                                          "allow_null_auth", "max_calls", "offer_timeout_ms",
                                          "delete_delay_ms"};
constexpr absl::string_view kWebRtcKeys[] = {"certificate",          "private_key",
                                             "srtp_profiles",        "mtu",
                                             "handshake_timeout_ms", "consent_timeout_ms",
                                             "handshake_max_pps"};
constexpr absl::string_view kSrtpProfileNames[] = {"SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_32",
                                                   "SRTP_AEAD_AES_128_GCM", "SRTP_AEAD_AES_256_GCM"};
constexpr absl::string_view kHaKeys[] = {"redis",         "password",     "tls",
                                         "role",          "instance",     "kek_file",     "previous_kek_file",
                                         "checkpoint_ms", "max_rtcp_pps", "max_rtp_pps",
                                         "restore_timeout_ms", "heartbeat_ms",  "heartbeat_ttl_ms",
                                         "auto_promote", "promote_after_ms"};
constexpr absl::string_view kSecurityKeys[] = {"core_dumps", "user", "group",
                                               "key_reuse_window_s", "allow_unlocked_keys"};

constexpr absl::string_view kMetricsKeys[] = {"listen", "allow_remote"};

// 127.0.0.0/8 or ::1.
bool IsLoopback(const packet::IpAddress& ip) {
  return ip.is_v4() ? (ip.v4_host_order() >> 24) == 127
                    : ip == packet::IpAddress::Parse("::1").value();
}

struct TableSchema {
  absl::string_view name;
  std::span<const absl::string_view> keys;
};
constexpr TableSchema kSchema[] = {
    {"eal", kEalKeys},       {"interface", kInterfaceKeys}, {"workers", kWorkersKeys},
    {"media", kMediaKeys},   {"control", kControlKeys},     {"crypto", kCryptoKeys},
    {"limits", kLimitsKeys},
    {"ng", kNgKeys},
    {"webrtc", kWebRtcKeys},
    {"security", kSecurityKeys},
    {"metrics", kMetricsKeys},
    {"ha", kHaKeys},
};

// --- Input guard -----------------------------------------------------------

// Refuses lines longer than kMaxLineBytes, and input nested deeper than
// kMaxNesting: open brackets and braces (across lines) plus the dots of the
// current line, outside strings and comments. Every key is written on one
// line, so its dots bound how deep it reaches. This is a conservative bound,
// not a TOML lexer: what it cannot tell apart it counts.
class ShapeScanner {
 public:
  ShapeScanner(absl::string_view text, absl::string_view origin) : text_(text), origin_(origin) {}

  absl::Status Scan() {
    for (size_t i = 0; i < text_.size(); ++i) {
      if (absl::Status s = CountLine(i); !s.ok()) return s;
      if (state_ == State::kNormal) {
        if (absl::Status s = StepNormal(i); !s.ok()) return s;
      } else {
        i = StepQuoted(i);
      }
    }
    return absl::OkStatus();
  }

 private:
  enum class State { kNormal, kComment, kBasic, kLiteral, kMlBasic, kMlLiteral };

  bool Starts(size_t i, absl::string_view s) const { return text_.substr(i, s.size()) == s; }

  // A multi-line string closes with three quotes, of which up to two more
  // belong to the content (TOML 1.0): the index of the last closing quote.
  size_t CloseMultiline(size_t i, char q) const {
    size_t n = 3;
    while (n < 5 && i + n < text_.size() && text_[i + n] == q) ++n;
    return i + n - 1;
  }

  // Line numbers, the dots of the current line, and the line length limit.
  absl::Status CountLine(size_t i) {
    if (text_[i] == '\n') {
      ++line_;
      line_dots_ = 0;
      line_start_ = i + 1;
    } else if (i - line_start_ >= kMaxLineBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin_, ":", line_, ": line longer than ", kMaxLineBytes,
                       " bytes; split long arrays over several lines"));
    }
    return absl::OkStatus();
  }

  // Outside strings and comments: opens them, counts brackets, braces and
  // dots, and refuses too deep a nesting. May advance `i` past a quote.
  absl::Status StepNormal(size_t& i) {
    const char c = text_[i];
    if (c == '#') {
      state_ = State::kComment;
    } else if (c == '"') {
      state_ = Starts(i, "\"\"\"") ? State::kMlBasic : State::kBasic;
      if (state_ == State::kMlBasic) i += 2;
    } else if (c == '\'') {
      state_ = Starts(i, "'''") ? State::kMlLiteral : State::kLiteral;
      if (state_ == State::kMlLiteral) i += 2;
    } else if (c == '[' || c == '{') {
      ++brackets_;
    } else if (c == ']' || c == '}') {
      if (brackets_ > 0) --brackets_;
    } else if (c == '.') {
      ++line_dots_;
    }
    if (brackets_ + line_dots_ > kMaxNesting) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin_, ":", line_, ": nested deeper than ", kMaxNesting,
                       " levels (arrays, inline tables and dotted keys together); a Sluice "
                       "configuration needs at most 3"));
    }
    return absl::OkStatus();
  }

  // Inside a comment or string: finds where it ends. Returns the index of
  // the last character consumed.
  size_t StepQuoted(size_t i) {
    const char c = text_[i];
    const bool escape = c == '\\' && i + 1 < text_.size() && text_[i + 1] != '\n';
    switch (state_) {
      case State::kNormal:
        break;
      case State::kComment:
        if (c == '\n') state_ = State::kNormal;
        break;
      case State::kBasic:
        if (escape) return i + 1;
        if (c == '"' || c == '\n') state_ = State::kNormal;
        break;
      case State::kLiteral:
        if (c == '\'' || c == '\n') state_ = State::kNormal;
        break;
      case State::kMlBasic:
        if (escape) return i + 1;
        if (Starts(i, "\"\"\"")) {
          state_ = State::kNormal;
          return CloseMultiline(i, '"');
        }
        break;
      case State::kMlLiteral:
        if (Starts(i, "'''")) {
          state_ = State::kNormal;
          return CloseMultiline(i, '\'');
        }
        break;
    }
    return i;
  }

  const absl::string_view text_;
  const absl::string_view origin_;
  State state_ = State::kNormal;
  int brackets_ = 0;
  int line_dots_ = 0;
  size_t line_ = 1;
  size_t line_start_ = 0;
};

absl::Status CheckShape(absl::string_view text, absl::string_view origin) {
  return ShapeScanner(text, origin).Scan();
}

// TOML 1.0 documents are UTF-8. toml11 3.7.1 checks that only inside strings,
// and its error path there reads out of bounds (it rewinds a location to an
// iterator of another buffer), so invalid UTF-8 is refused here, by the same
// rules (RFC 3629 §4: no overlong forms, no surrogates, nothing above
// U+10FFFF).
absl::Status CheckUtf8(absl::string_view text, absl::string_view origin) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const auto in = [&](size_t i, uint8_t lo, uint8_t hi) {
    return i < text.size() && byte(i) >= lo && byte(i) <= hi;
  };
  size_t i = 0;
  while (i < text.size()) {
    const uint8_t b = byte(i);
    size_t n = 0;  // length of a valid sequence starting at i, 0 if none
    if (b <= 0x7f) {
      n = 1;
    } else if (b >= 0xc2 && b <= 0xdf) {
      n = in(i + 1, 0x80, 0xbf) ? 2 : 0;
    } else if (b >= 0xe0 && b <= 0xef) {
      const uint8_t lo = b == 0xe0 ? 0xa0 : 0x80;
      const uint8_t hi = b == 0xed ? 0x9f : 0xbf;
      n = in(i + 1, lo, hi) && in(i + 2, 0x80, 0xbf) ? 3 : 0;
    } else if (b >= 0xf0 && b <= 0xf4) {
      const uint8_t lo = b == 0xf0 ? 0x90 : 0x80;
      const uint8_t hi = b == 0xf4 ? 0x8f : 0xbf;
      n = in(i + 1, lo, hi) && in(i + 2, 0x80, 0xbf) && in(i + 3, 0x80, 0xbf) ? 4 : 0;
    }
    if (n == 0) {
      const absl::string_view before = text.substr(0, i);
      const size_t line = 1 + std::count(before.begin(), before.end(), '\n');
      const size_t line_start = before.rfind('\n');
      const size_t column = line_start == absl::string_view::npos ? i + 1 : i - line_start;
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ":", line, ":", column, ": not valid UTF-8 (TOML files are UTF-8)"));
    }
    i += n;
  }
  return absl::OkStatus();
}

// --- toml11 syntax errors ----------------------------------------------------

// toml11's message quotes the offending source lines under a header; keep the
// header and each location's line, column and note, but not the quoted text,
// so a value never reaches a log through an error message.
std::string DescribeSyntaxError(const toml::exception& e, absl::string_view origin) {
  const std::vector<absl::string_view> lines = absl::StrSplit(e.what(), '\n');
  absl::string_view header = lines.empty() ? absl::string_view() : lines.front();
  absl::ConsumePrefix(&header, "[error]");
  header = absl::StripAsciiWhitespace(header);
  if (absl::StartsWith(header, "toml::")) {
    // "toml::parse_key_value_pair: missing value" -> "missing value".
    const size_t colon = header.find(": ");
    header = colon == absl::string_view::npos ? absl::string_view() : header.substr(colon + 2);
  }

  std::vector<std::string> notes;
  std::string last_where;
  absl::string_view line_number;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t bar = lines[i].find(" | ");
    if (bar == absl::string_view::npos) {
      line_number = {};
      continue;
    }
    const absl::string_view left = absl::StripAsciiWhitespace(lines[i].substr(0, bar));
    absl::string_view right = lines[i].substr(bar + 3);
    if (!left.empty()) {
      const bool digits =
          std::all_of(left.begin(), left.end(), [](char c) { return absl::ascii_isdigit(c); });
      line_number = digits ? left : absl::string_view();
      continue;  // the quoted source line itself
    }
    if (line_number.empty()) continue;
    const size_t column = right.find_first_not_of(' ');
    if (column == absl::string_view::npos || (right[column] != '^' && right[column] != '~')) {
      line_number = {};
      continue;
    }
    right.remove_prefix(column);
    right = absl::StripLeadingAsciiWhitespace(
        right.substr(std::min(right.find_first_not_of("^~-"), right.size())));
    last_where = absl::StrCat(line_number, ":", column + 1);
    notes.push_back(right.empty()
                        ? absl::StrCat("line ", line_number, ", column ", column + 1)
                        : absl::StrCat("line ", line_number, ", column ", column + 1, ": ", right));
    line_number = {};
  }
  if (last_where.empty()) {
    last_where = absl::StrCat(e.location().line(), ":", e.location().column());
  }
  std::string message = absl::StrCat(origin, ":", last_where, ": invalid TOML");
  if (!header.empty()) absl::StrAppend(&message, ": ", header);
  if (!notes.empty()) absl::StrAppend(&message, " (", absl::StrJoin(notes, "; "), ")");
  return message;
}

// --- Reading values ------------------------------------------------------------

// A key as it would be written in TOML: bare when it can be, else quoted.
std::string KeyName(absl::string_view key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-';
  });
  if (bare && key.size() <= kMaxKeyShown) return std::string(key);
  const bool cut = key.size() > kMaxKeyShown;
  return absl::StrCat("\"", absl::CHexEscape(key.substr(0, kMaxKeyShown)), cut ? "...\"" : "\"");
}

const char* TypeName(const Value& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return "a boolean";
    case toml::value_t::integer:
      return "an integer";
    case toml::value_t::floating:
      return "a floating-point number";
    case toml::value_t::string:
      return "a string";
    case toml::value_t::offset_datetime:
    case toml::value_t::local_datetime:
    case toml::value_t::local_date:
    case toml::value_t::local_time:
      return "a date or time";
    case toml::value_t::array:
      return "an array";
    case toml::value_t::table:
      return "a table";
    case toml::value_t::empty:
      break;
  }
  return "nothing";
}

// Reads one TOML document into a Config. Each method returns the first error.
class Reader {
 public:
  explicit Reader(absl::string_view origin) : origin_(origin) {}

  // "<origin>:<line>: <path>: <message>"; without a line when `at` is null
  // (the key is absent).
  absl::Status Error(const Value* at, absl::string_view path, absl::string_view message) const {
    if (at == nullptr)
      return absl::InvalidArgumentError(absl::StrCat(origin_, ": ", path, ": ", message));
    return absl::InvalidArgumentError(
        absl::StrCat(origin_, ":", at->location().line(), ": ", path, ": ", message));
  }

  absl::Status Read(const Value& root, Config* config);

 private:
  // A table of the document (or an absent one) and its path for messages.
  struct Section {
    const Value* table = nullptr;  // null: the table is absent, every key takes its default
    std::string path;              // "media", "interface[1]"

    const Value* Get(absl::string_view key) const {
      if (table == nullptr) return nullptr;
      const Table& t = table->as_table();
      const auto it = t.find(std::string(key));
      return it == t.end() ? nullptr : &it->second;
    }
    std::string Path(absl::string_view key) const { return absl::StrCat(path, ".", key); }
  };

  absl::Status CheckTopLevel(const Value& root) const;
  absl::Status CheckKeys(const Section& s, std::span<const absl::string_view> known) const;
  absl::Status SectionOf(const Value& root, absl::string_view name, Section* out) const;

  absl::Status ReadUint(const Section& s, absl::string_view key, uint64_t min, uint64_t max,
                        uint64_t* out) const;
  template <typename T>
  absl::Status ReadUint(const Section& s, absl::string_view key, uint64_t min, uint64_t max,
                        T* out) const {
    uint64_t v = *out;
    absl::Status status = ReadUint(s, key, min, max, &v);
    if (status.ok()) *out = static_cast<T>(v);
    return status;
  }
  absl::Status ReadString(const Section& s, absl::string_view key, std::string* out) const;
  absl::Status ReadBool(const Section& s, absl::string_view key, bool* out) const;
  absl::Status ReadPrefix(const Section& s, absl::string_view key, uint8_t family,
                          std::optional<packet::Prefix>* out) const;
  absl::Status ReadAddress(const Section& s, absl::string_view key, uint8_t family,
                           std::optional<packet::IpAddress>* out) const;

  absl::Status ReadEal(const Value& root, Config* config) const;
  absl::Status ReadInterfaces(const Value& root, Config* config) const;
  absl::Status ReadInterface(const Section& s, InterfaceConfig* out) const;
  absl::Status CheckGateways(const Section& s, const InterfaceConfig& iface) const;
  absl::Status ReadWorkers(const Value& root, Config* config) const;
  absl::Status ReadMedia(const Value& root, Config* config) const;
  absl::Status ReadRequireEncryption(const Section& s, MediaConfig* m) const;
  absl::Status ReadControl(const Value& root, Config* config) const;
  absl::Status ReadControlTls(const Section& control, Config* config) const;
  absl::Status ReadCrypto(const Value& root, Config* config) const;
  absl::Status ReadLimits(const Value& root, Config* config) const;
  absl::Status ReadNg(const Value& root, Config* config) const;
  absl::Status ReadMetrics(const Value& root, Config* config) const;
  absl::Status ReadEndpoint(const Section& s, absl::string_view key, absl::string_view what,
                            packet::Endpoint* out) const;
  absl::Status ReadNgAccess(const Section& s, NgConfig* ng) const;
  absl::Status ReadSecurity(const Value& root, Config* config) const;
  absl::Status ReadHa(const Value& root, Config* config) const;
  absl::Status ReadHaRole(const Section& s, HaConfig* ha) const;
  absl::Status ReadHaFailover(const Section& s, HaConfig* ha) const;
  absl::Status ReadWebRtc(const Value& root, Config* config) const;
  absl::Status ReadSrtpProfiles(const Section& s, WebRtcConfig* w) const;

  absl::string_view origin_;
};

#define SLUICE_CONFIG_RETURN_IF_ERROR(expr) \
  do {                                      \
    absl::Status _status = (expr);          \
    if (!_status.ok()) return _status;      \
  } while (0)

std::string KnownList(std::span<const absl::string_view> names) {
  return absl::StrJoin(names, ", ");
}

absl::Status Reader::CheckTopLevel(const Value& root) const {
  std::vector<absl::string_view> tables;
  for (const TableSchema& t : kSchema) tables.push_back(t.name);
  for (const auto& [key, value] : root.as_table()) {
    const absl::string_view name = key;  // clang 14 cannot capture a structured binding
    const bool known = std::any_of(std::begin(kSchema), std::end(kSchema),
                                   [name](const TableSchema& t) { return t.name == name; });
    if (known) continue;
    if (value.is_table()) {
      return Error(&value, KeyName(key),
                   absl::StrCat("unknown table (known tables: ", KnownList(tables), ")"));
    }
    // A setting written outside its table: say where it belongs.
    for (const TableSchema& t : kSchema) {
      if (std::find(t.keys.begin(), t.keys.end(), key) != t.keys.end()) {
        return Error(&value, KeyName(key),
                     absl::StrCat("unknown key at the top level; it belongs in [", t.name, "]"));
      }
    }
    return Error(&value, KeyName(key),
                 absl::StrCat("unknown key (settings live in the tables ", KnownList(tables), ")"));
  }
  return absl::OkStatus();
}

absl::Status Reader::CheckKeys(const Section& s, std::span<const absl::string_view> known) const {
  if (s.table == nullptr) return absl::OkStatus();
  for (const auto& [key, value] : s.table->as_table()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    return Error(&value, s.Path(KeyName(key)),
                 absl::StrCat(value.is_table() ? "unknown table" : "unknown key",
                              " (known keys: ", KnownList(known), ")"));
  }
  return absl::OkStatus();
}

absl::Status Reader::SectionOf(const Value& root, absl::string_view name, Section* out) const {
  out->path = std::string(name);
  const Table& t = root.as_table();
  const auto it = t.find(std::string(name));
  if (it == t.end()) return absl::OkStatus();
  if (!it->second.is_table()) {
    return Error(&it->second, name, absl::StrCat("expected a table, got ", TypeName(it->second)));
  }
  out->table = &it->second;
  return absl::OkStatus();
}

absl::Status Reader::ReadUint(const Section& s, absl::string_view key, uint64_t min, uint64_t max,
                              uint64_t* out) const {
  const Value* v = s.Get(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_integer()) {
    return Error(v, s.Path(key), absl::StrCat("expected an integer, got ", TypeName(*v)));
  }
  const int64_t n = v->as_integer();
  if (n < 0 || static_cast<uint64_t>(n) < min || static_cast<uint64_t>(n) > max) {
    return Error(v, s.Path(key), absl::StrCat("must be between ", min, " and ", max, "; got ", n));
  }
  *out = static_cast<uint64_t>(n);
  return absl::OkStatus();
}

absl::Status Reader::ReadString(const Section& s, absl::string_view key, std::string* out) const {
  const Value* v = s.Get(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) {
    return Error(v, s.Path(key), absl::StrCat("expected a string, got ", TypeName(*v)));
  }
  const std::string& str = v->as_string().str;
  // Names end up in C strings (argv, paths, getgrnam): a NUL would cut them short.
  if (str.find('\0') != std::string::npos) {
    return Error(v, s.Path(key), "contains a NUL character");
  }
  *out = str;
  return absl::OkStatus();
}

absl::Status Reader::ReadBool(const Section& s, absl::string_view key, bool* out) const {
  const Value* v = s.Get(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_boolean()) {
    return Error(v, s.Path(key), absl::StrCat("expected true or false, got ", TypeName(*v)));
  }
  *out = v->as_boolean();
  return absl::OkStatus();
}

const char* FamilyName(uint8_t family) { return family == 4 ? "IPv4" : "IPv6"; }

absl::Status Reader::ReadPrefix(const Section& s, absl::string_view key, uint8_t family,
                                std::optional<packet::Prefix>* out) const {
  std::string text;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, key, &text));
  const Value* v = s.Get(key);
  if (v == nullptr) return absl::OkStatus();
  const std::string example = family == 4 ? "\"10.200.1.1/24\"" : "\"fd00:1::1/64\"";
  const std::optional<packet::Prefix> p = packet::Prefix::Parse(text);
  if (!p) {
    return Error(
        v, s.Path(key),
        absl::StrCat("not an address/prefix: \"", absl::CHexEscape(text),
                     "\"; expected the interface's address and prefix length, like ", example));
  }
  if (p->ip.family != family) {
    return Error(v, s.Path(key),
                 absl::StrCat("expected an ", FamilyName(family), " address/prefix like ", example,
                              ", got ", FamilyName(p->ip.family), " ", p->ToString()));
  }
  const auto& b = p->ip.bytes;
  const bool unspecified =
      std::all_of(b.begin(), b.begin() + (family == 4 ? 4 : 16), [](uint8_t x) { return x == 0; });
  const bool multicast = family == 4 ? (b[0] & 0xf0) == 0xe0 : b[0] == 0xff;
  if (unspecified || multicast) {
    return Error(v, s.Path(key),
                 absl::StrCat(p->ip.ToString(),
                              " is not a unicast address; give the interface's own address"));
  }
  if (family == 4 && p->length <= 30) {
    // RFC 919/922: the all-zeros and all-ones host parts name the subnet and
    // its broadcast, never a host.
    const uint32_t host_mask = p->length == 0 ? ~0u : (1u << (32 - p->length)) - 1;
    const uint32_t host = p->ip.v4_host_order() & host_mask;
    if (host == 0 || host == host_mask) {
      return Error(v, s.Path(key),
                   absl::StrCat(p->ip.ToString(), " is the ", host == 0 ? "network" : "broadcast",
                                " address of its /", p->length,
                                " subnet; give the interface's own address"));
    }
  }
  *out = p;
  return absl::OkStatus();
}

absl::Status Reader::ReadAddress(const Section& s, absl::string_view key, uint8_t family,
                                 std::optional<packet::IpAddress>* out) const {
  std::string text;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, key, &text));
  const Value* v = s.Get(key);
  if (v == nullptr) return absl::OkStatus();
  const std::optional<packet::IpAddress> ip = packet::IpAddress::Parse(text);
  if (!ip) {
    return Error(
        v, s.Path(key),
        absl::StrCat("not an ", FamilyName(family), " address: \"", absl::CHexEscape(text), "\""));
  }
  if (ip->family != family) {
    return Error(v, s.Path(key),
                 absl::StrCat("expected an ", FamilyName(family), " address, got ",
                              FamilyName(ip->family), " ", ip->ToString(),
                              family == 4 ? " (IPv6 next hops go in gateway6)"
                                          : " (IPv4 next hops go in gateway)"));
  }
  *out = ip;
  return absl::OkStatus();
}

absl::Status Reader::ReadEal(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "eal", &s));
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kEalKeys));
  const Value* args = s.Get("args");
  if (args == nullptr) return absl::OkStatus();
  if (!args->is_array()) {
    return Error(args, "eal.args",
                 absl::StrCat("expected an array of strings, got ", TypeName(*args)));
  }
  const auto& array = args->as_array();
  for (size_t i = 0; i < array.size(); ++i) {
    const std::string path = absl::StrCat("eal.args[", i, "]");
    if (!array[i].is_string()) {
      return Error(&array[i], path, absl::StrCat("expected a string, got ", TypeName(array[i])));
    }
    const std::string& arg = array[i].as_string().str;
    if (arg.empty()) return Error(&array[i], path, "is empty");
    if (arg.find('\0') != std::string::npos) {
      return Error(&array[i], path, "contains a NUL character");
    }
    config->eal_args.push_back(arg);
  }
  return absl::OkStatus();
}

bool IsName(absl::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.';
         });
}

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

absl::Status Reader::ReadInterface(const Section& s, InterfaceConfig* out) const {
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kInterfaceKeys));

  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "name", &out->name));
  if (s.Get("name") == nullptr) {
    return Error(s.table, s.Path("name"), "required: the name legs use to pick this interface");
  }
  if (!IsName(out->name)) {
    return Error(
        s.Get("name"), s.Path("name"),
        absl::StrCat("must be 1 to ", kMaxNameLength, " letters, digits, '_', '-' or '.'"));
  }

  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "device", &out->device));
  if (s.Get("device") == nullptr) {
    return Error(s.table, s.Path("device"),
                 "required: the DPDK device, a PCI address (\"0000:3b:00.0\") or a vdev name "
                 "(\"net_af_packet0\")");
  }
  const bool device_ok =
      !out->device.empty() && std::none_of(out->device.begin(), out->device.end(), [](char c) {
        return absl::ascii_isspace(c) || absl::ascii_iscntrl(c) || c == ',';
      });
  if (!device_ok) {
    return Error(s.Get("device"), s.Path("device"),
                 "must be a DPDK device name, a PCI address (\"0000:3b:00.0\") or a vdev name "
                 "(\"net_af_packet0\"), without spaces or device arguments");
  }

  SLUICE_CONFIG_RETURN_IF_ERROR(ReadPrefix(s, "ipv4", 4, &out->ipv4));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadPrefix(s, "ipv6", 6, &out->ipv6));
  if (!out->ipv4 && !out->ipv6) {
    return Error(s.table, s.Path("ipv4"),
                 "an interface needs an address: set ipv4 (\"10.200.1.1/24\"), ipv6 "
                 "(\"fd00:1::1/64\") or both");
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadAddress(s, "gateway", 4, &out->gateway));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadAddress(s, "gateway6", 6, &out->gateway6));
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckGateways(s, *out));

  // IEEE 802.1Q: VID 4095 is reserved; 0 means untagged here.
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "vlan", 0, 4094, &out->vlan));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "mtu", 576, 9000, &out->mtu));
  if (out->ipv6 && out->mtu < 1280) {
    return Error(s.Get("mtu"), s.Path("mtu"),
                 absl::StrCat("must be at least 1280 on an interface with ipv6 (RFC 8200 §5); got ",
                              out->mtu));
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "rx_queues", 0, kMaxRxQueues, &out->rx_queues));
  const std::pair<absl::string_view, uint16_t*> rings[] = {{"rx_ring_size", &out->rx_ring_size},
                                                           {"tx_ring_size", &out->tx_ring_size}};
  for (const auto& [key, ring] : rings) {
    SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, key, kMinRing, kMaxRing, ring));
    if (!IsPowerOfTwo(*ring)) {
      return Error(s.Get(key), s.Path(key),
                   absl::StrCat("must be a power of two (64, 128, ... 32768); got ", *ring));
    }
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadBool(s, "checksum_offload", &out->checksum_offload));
  return absl::OkStatus();
}

// RFC 1122 §3.3.1: a next hop is on a directly connected network. IPv6 routers
// are normally known by their link-local address (RFC 4861 §4.2), which is
// on-link on every interface.
absl::Status Reader::CheckGateways(const Section& s, const InterfaceConfig& iface) const {
  if (iface.gateway) {
    const Value* v = s.Get("gateway");
    if (!iface.ipv4) {
      return Error(v, s.Path("gateway"),
                   "set, but the interface has no ipv4 address for an IPv4 next hop");
    }
    if (!iface.ipv4->Contains(*iface.gateway)) {
      return Error(
          v, s.Path("gateway"),
          absl::StrCat(iface.gateway->ToString(), " is outside this interface's subnet ",
                       iface.ipv4->ToString(), "; a next hop must be on-link (RFC 1122 §3.3.1)"));
    }
    if (*iface.gateway == iface.ipv4->ip) {
      return Error(v, s.Path("gateway"),
                   absl::StrCat(iface.gateway->ToString(), " is this interface's own address"));
    }
  }
  if (iface.gateway6) {
    const Value* v = s.Get("gateway6");
    if (!iface.ipv6) {
      return Error(v, s.Path("gateway6"),
                   "set, but the interface has no ipv6 address for an IPv6 next hop");
    }
    const auto& b = iface.gateway6->bytes;
    const bool link_local = b[0] == 0xfe && (b[1] & 0xc0) == 0x80;  // fe80::/10
    if (!link_local && !iface.ipv6->Contains(*iface.gateway6)) {
      return Error(v, s.Path("gateway6"),
                   absl::StrCat(iface.gateway6->ToString(), " is neither link-local (fe80::/10) ",
                                "nor inside this interface's prefix ", iface.ipv6->ToString(),
                                "; a next hop must be on-link (RFC 4861 §4.2)"));
    }
    if (*iface.gateway6 == iface.ipv6->ip) {
      return Error(v, s.Path("gateway6"),
                   absl::StrCat(iface.gateway6->ToString(), " is this interface's own address"));
    }
  }
  return absl::OkStatus();
}

absl::Status Reader::ReadInterfaces(const Value& root, Config* config) const {
  const Table& t = root.as_table();
  const auto it = t.find("interface");
  const Value* list = it == t.end() ? nullptr : &it->second;
  if (list != nullptr && !list->is_array()) {
    return Error(
        list, "interface",
        absl::StrCat("expected an array of tables, written [[interface]], got ", TypeName(*list)));
  }
  if (list == nullptr || list->as_array().empty()) {
    return Error(list, "interface",
                 "at least one [[interface]] is required (name, device, ipv4 and/or ipv6)");
  }
  const auto& array = list->as_array();
  absl::flat_hash_map<std::string, size_t> names;
  absl::flat_hash_map<std::string, size_t> devices;
  absl::flat_hash_map<std::string, size_t> addresses;
  for (size_t i = 0; i < array.size(); ++i) {
    Section s;
    s.path = absl::StrCat("interface[", i, "]");
    if (!array[i].is_table()) {
      return Error(&array[i], s.path, absl::StrCat("expected a table, got ", TypeName(array[i])));
    }
    s.table = &array[i];
    InterfaceConfig iface;
    SLUICE_CONFIG_RETURN_IF_ERROR(ReadInterface(s, &iface));

    if (const auto [prev, added] = names.emplace(iface.name, i); !added) {
      return Error(s.Get("name"), s.Path("name"),
                   absl::StrCat("\"", iface.name, "\" is already the name of interface[",
                                prev->second, "]; names must be unique"));
    }
    if (const auto [prev, added] = devices.emplace(iface.device, i); !added) {
      return Error(s.Get("device"), s.Path("device"),
                   absl::StrCat("\"", iface.device, "\" is already the device of interface[",
                                prev->second, "]; each DPDK port belongs to one interface"));
    }
    // Legs are found by (local address, port): an address on two interfaces
    // would make that ambiguous.
    for (const auto& [key, prefix] :
         {std::pair{"ipv4", iface.ipv4}, std::pair{"ipv6", iface.ipv6}}) {
      if (!prefix) continue;
      if (const auto [prev, added] = addresses.emplace(prefix->ip.ToString(), i); !added) {
        return Error(s.Get(key), s.Path(key),
                     absl::StrCat(prefix->ip.ToString(), " is already an address of interface[",
                                  prev->second, "]; each address belongs to one interface"));
      }
    }
    config->interfaces.push_back(std::move(iface));
  }
  return absl::OkStatus();
}

absl::Status Reader::ReadWorkers(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "workers", &s));
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kWorkersKeys));
  const Value* lcores = s.Get("lcores");
  if (lcores == nullptr) {
    return Error(s.table, "workers.lcores",
                 "required: the lcores that run poll-mode workers, like [1, 2] (the main "
                 "lcore runs the control plane)");
  }
  if (!lcores->is_array()) {
    return Error(lcores, "workers.lcores",
                 absl::StrCat("expected an array of lcore ids, got ", TypeName(*lcores)));
  }
  const auto& array = lcores->as_array();
  if (array.empty()) {
    return Error(lcores, "workers.lcores", "at least one worker lcore is required");
  }
  absl::flat_hash_map<unsigned, size_t> seen;
  for (size_t i = 0; i < array.size(); ++i) {
    const std::string path = absl::StrCat("workers.lcores[", i, "]");
    if (!array[i].is_integer()) {
      return Error(&array[i], path,
                   absl::StrCat("expected an lcore id (an integer), got ", TypeName(array[i])));
    }
    const int64_t id = array[i].as_integer();
    if (id < 0 || id > kMaxLcoreId) {
      return Error(&array[i], path,
                   absl::StrCat("must be an lcore id between 0 and ", kMaxLcoreId, "; got ", id));
    }
    const unsigned lcore = static_cast<unsigned>(id);
    if (const auto [prev, added] = seen.emplace(lcore, i); !added) {
      return Error(&array[i], path,
                   absl::StrCat("lcore ", lcore, " is already workers.lcores[", prev->second,
                                "]; one worker per lcore"));
    }
    config->workers.lcores.push_back(lcore);
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "burst", 1, 64, &config->workers.burst));
  return ReadUint(s, "stall_ms", 10, 600000, &config->workers.stall_ms);
}

absl::Status Reader::ReadMedia(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "media", &s));
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kMediaKeys));
  MediaConfig& m = config->media;
  // Ports below 1024 are privileged and belong to well-known services.
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "port_min", 1024, 65535, &m.port_min));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "port_max", 1024, 65535, &m.port_max));
  // RFC 3550 §11: RTP on an even port, RTCP on the next (odd) one.
  if (m.port_min % 2 != 0) {
    return Error(s.Get("port_min"), "media.port_min",
                 absl::StrCat("must be even (RTP takes even ports, RTCP the next odd one); got ",
                              m.port_min, ", use ", m.port_min - 1, " or ", m.port_min + 1));
  }
  if (m.port_min >= m.port_max) {
    const Value* at = s.Get("port_max") != nullptr ? s.Get("port_max") : s.Get("port_min");
    return Error(at, s.Get("port_max") != nullptr ? "media.port_max" : "media.port_min",
                 absl::StrCat("media.port_min (", m.port_min, ") must be below media.port_max (",
                              m.port_max, ")"));
  }
  // RFC 3711 §3.3.2: at least 64; kept in 64-bit words.
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "replay_window", 64, 1024, &m.replay_window));
  if (m.replay_window % 64 != 0) {
    return Error(s.Get("replay_window"), "media.replay_window",
                 absl::StrCat("must be a multiple of 64; got ", m.replay_window));
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "rekey_overlap_ms", 0, 60000, &m.rekey_overlap_ms));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "max_ssrcs_per_leg", 1, 64, &m.max_ssrcs_per_leg));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "port_reuse_delay_s", 0, 3600, &m.port_reuse_delay_s));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "learn_packets", 1, 1000, &m.learn_packets));
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadUint(s, "ssrc_reuse_idle_ms", 1000, 600000, &m.ssrc_reuse_idle_ms));
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadUint(s, "key_limit_warn_percent", 1, 99, &m.key_limit_warn_percent));
  // Timeouts: seconds, 0 = off, at most 30 days.
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "timeout_s", 0, 2592000, &m.timeout_s));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "silent_timeout_s", 0, 2592000, &m.silent_timeout_s));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "final_timeout_s", 0, 2592000, &m.final_timeout_s));
  if (const Value* v = s.Get("aes192_kdf"); v != nullptr) {
    std::string text;
    SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "aes192_kdf", &text));
    const std::optional<crypto::Aes192Kdf> kdf = crypto::ParseAes192Kdf(text);
    if (!kdf) {
      return Error(v, "media.aes192_kdf",
                   absl::StrCat("must be \"rfc6188\" or \"libsrtp-legacy\"; got \"",
                                absl::CHexEscape(text), "\""));
    }
    m.aes192_kdf = *kdf;
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadRequireEncryption(s, &m));
  return ReadBool(s, "learn_before_answer", &m.learn_before_answer);
}

absl::Status Reader::ReadRequireEncryption(const Section& s, MediaConfig* m) const {
  const Value* v = s.Get("require_encryption");
  if (v == nullptr) return absl::OkStatus();
  std::string text;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "require_encryption", &text));
  if (text == "none") {
    m->require_encryption = RequireEncryption::kNone;
  } else if (text == "one-leg") {
    m->require_encryption = RequireEncryption::kOneLeg;
  } else if (text == "all-legs") {
    m->require_encryption = RequireEncryption::kAllLegs;
  } else {
    return Error(v, "media.require_encryption",
                 absl::StrCat("must be \"none\", \"one-leg\" or \"all-legs\"; got \"",
                              absl::CHexEscape(text.substr(0, kMaxKeyShown)), "\""));
  }
  return absl::OkStatus();
}

absl::Status Reader::ReadControl(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "control", &s));
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kControlKeys));
  ControlConfig& c = config->control;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "socket", &c.socket));
  if (c.socket.empty() || c.socket.front() != '/') {
    return Error(s.Get("socket"), "control.socket",
                 absl::StrCat("must be an absolute path, like /run/sluice/control.sock; got \"",
                              absl::CHexEscape(c.socket.substr(0, 2 * kMaxKeyShown)), "\""));
  }
  if (c.socket.size() > kMaxSocketPath || c.socket.back() == '/') {
    return Error(s.Get("socket"), "control.socket",
                 absl::StrCat("must name a file in at most ", kMaxSocketPath,
                              " bytes (the limit of a Unix socket address); got ", c.socket.size(),
                              " bytes"));
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "group", &c.group));
  if (!c.group.empty() && !IsName(c.group)) {
    return Error(s.Get("group"), "control.group",
                 absl::StrCat("must be a group name of 1 to ", kMaxNameLength,
                              " letters, digits, '_', '-' or '.'"));
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "max_connections", 1, UINT32_MAX, &c.max_connections));
  return ReadControlTls(s, config);
}

absl::Status Reader::ReadControlTls(const Section& control, Config* config) const {
  const Value* v = control.Get("tls");
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_table()) {
    return Error(v, "control.tls", absl::StrCat("expected a table, got ", TypeName(*v)));
  }
  Section s{v, "control.tls"};
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kControlTlsKeys));
  ControlTlsConfig tls;
  for (absl::string_view key : kControlTlsKeys) {
    const bool optional = key == "handshake_timeout_ms" || key == "max_connections" ||
                          key == "idle_timeout_ms";
    if (!optional && s.Get(key) == nullptr) {
      return Error(v, s.Path(key), "is required in [control.tls]");
    }
  }
  std::string listen;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "listen", &listen));
  const std::optional<packet::Endpoint> endpoint = packet::Endpoint::Parse(listen);
  if (!endpoint) {
    return Error(s.Get("listen"), s.Path("listen"),
                 absl::StrCat("expected an IP address and a port, like \"127.0.0.1:7443\" or "
                              "\"[::]:7443\"; got \"",
                              absl::CHexEscape(listen.substr(0, kMaxKeyShown)), "\""));
  }
  tls.listen = *endpoint;
  for (auto [key, out] : {std::pair{"cert", &tls.cert}, {"key", &tls.key}, {"ca", &tls.ca},
                          {"server_name", &tls.server_name}}) {
    SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, key, out));
    if (out->empty()) return Error(s.Get(key), s.Path(key), "is empty");
  }
  const Value* allowed = s.Get("allowed_clients");
  const auto bad_list = [&](const Value* at) {
    return Error(at, s.Path("allowed_clients"),
                 "expected a non-empty array of client certificate names (subject CN or "
                 "subjectAltName), like [\"sbc1.example.net\"]");
  };
  if (!allowed->is_array() || allowed->as_array().empty()) return bad_list(allowed);
  for (const Value& name : allowed->as_array()) {
    if (!name.is_string() || name.as_string().str.empty() ||
        name.as_string().str.find('\0') != std::string::npos) {
      return bad_list(&name);
    }
    tls.allowed_clients.push_back(name.as_string().str);
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadUint(s, "handshake_timeout_ms", 100, 60000, &tls.handshake_timeout_ms));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "max_connections", 1, 65536, &tls.max_connections));
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadUint(s, "idle_timeout_ms", 0, 86400000, &tls.idle_timeout_ms));
  if (tls.idle_timeout_ms != 0 && tls.idle_timeout_ms < 1000) {
    return Error(s.Get("idle_timeout_ms"), s.Path("idle_timeout_ms"),
                 absl::StrCat("must be 0 (never) or between 1000 and 86400000; got ",
                              tls.idle_timeout_ms));
  }
  config->control.tls = std::move(tls);
  return absl::OkStatus();
}

absl::Status Reader::ReadCrypto(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "crypto", &s));
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kCryptoKeys));
  const Value* v = s.Get("backend");
  if (v == nullptr) return absl::OkStatus();
  std::string name;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "backend", &name));
  absl::StatusOr<crypto::BackendKind> kind = crypto::BackendKindFromName(name);
  if (!kind.ok()) {
    return Error(v, "crypto.backend",
                 absl::StrCat("expected \"auto\", \"ipsec-mb\" or \"openssl\"; got \"",
                              absl::CHexEscape(name.substr(0, kMaxKeyShown)), "\""));
  }
  config->crypto.backend = *kind;
  return absl::OkStatus();
}

absl::Status Reader::ReadWebRtc(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "webrtc", &s));
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kWebRtcKeys));
  WebRtcConfig& w = config->webrtc;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "certificate", &w.certificate));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "private_key", &w.private_key));
  if (w.certificate.empty() != w.private_key.empty()) {
    const char* missing = w.certificate.empty() ? "certificate" : "private_key";
    const char* given = w.certificate.empty() ? "private_key" : "certificate";
    return Error(s.Get(given), s.Path(missing),
                 absl::StrCat("required with webrtc.", given, " (or leave both out: sluiced "
                              "generates a certificate at start)"));
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadSrtpProfiles(s, &w));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "mtu", 256, 4096, &w.mtu));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "handshake_timeout_ms", 1000, 600000, &w.handshake_timeout_ms));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "consent_timeout_ms", 5000, 600000, &w.consent_timeout_ms));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "handshake_max_pps", 0, 1000000, &w.handshake_max_pps));
  return absl::OkStatus();
}

absl::Status Reader::ReadSrtpProfiles(const Section& s, WebRtcConfig* w) const {
  const Value* v = s.Get("srtp_profiles");
  if (v == nullptr) return absl::OkStatus();
  const std::string expected = absl::StrCat("expected a non-empty array of distinct names from ",
                                            absl::StrJoin(kSrtpProfileNames, ", "));
  if (!v->is_array() || v->as_array().empty()) return Error(v, s.Path("srtp_profiles"), expected);
  w->srtp_profiles.clear();
  for (const Value& item : v->as_array()) {
    const bool known = item.is_string() &&
                       std::find(std::begin(kSrtpProfileNames), std::end(kSrtpProfileNames),
                                 item.as_string().str) != std::end(kSrtpProfileNames);
    if (!known || std::find(w->srtp_profiles.begin(), w->srtp_profiles.end(),
                            item.as_string().str) != w->srtp_profiles.end()) {
      return Error(&item, s.Path("srtp_profiles"), expected);
    }
    w->srtp_profiles.push_back(item.as_string().str);
  }
  return absl::OkStatus();
}

absl::Status Reader::ReadLimits(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "limits", &s));
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kLimitsKeys));
  LimitsConfig& l = config->limits;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "max_sessions", 1, UINT32_MAX, &l.max_sessions));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "mbufs", 0, UINT32_MAX, &l.mbufs));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "leg_max_pps", 0, UINT32_MAX, &l.leg_max_pps));
  const Value* v = s.Get("session_hugepages");
  if (v == nullptr) return absl::OkStatus();
  std::string source;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "session_hugepages", &source));
  if (source == "auto") {
    l.session_hugepages = memory::HugepageSource::kAuto;
  } else if (source == "transparent") {
    l.session_hugepages = memory::HugepageSource::kTransparent;
  } else {
    return Error(v, "limits.session_hugepages",
                 absl::StrCat("expected \"auto\" or \"transparent\"; got \"",
                              absl::CHexEscape(source.substr(0, kMaxKeyShown)), "\""));
  }
  return absl::OkStatus();
}

absl::Status Reader::ReadNg(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "ng", &s));
  if (s.table == nullptr) return absl::OkStatus();
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kNgKeys));
  NgConfig ng;
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadEndpoint(s, "listen", "a UDP address and port, like \"127.0.0.1:2223\"", &ng.listen));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "interface", &ng.interface));
  if (!ng.interface.empty() && config->FindInterface(ng.interface) == nullptr) {
    return Error(s.Get("interface"), s.Path("interface"),
                 absl::StrCat("no [[interface]] is called \"",
                              absl::CHexEscape(ng.interface.substr(0, kMaxKeyShown)), "\""));
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadUint(s, "reply_cache_entries", 16, 1000000, &ng.reply_cache_entries));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "reply_cache_ms", 1000, 600000, &ng.reply_cache_ms));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadNgAccess(s, &ng));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadBool(s, "allow_null_auth", &ng.allow_null_auth));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "max_calls", 1, UINT32_MAX, &ng.max_calls));
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadUint(s, "offer_timeout_ms", 1000, 86400000, &ng.offer_timeout_ms));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "delete_delay_ms", 0, 86400000, &ng.delete_delay_ms));
  config->ng = std::move(ng);
  return absl::OkStatus();
}

// [metrics]: off without the table; on, listen is required, and an address
// other hosts can reach needs allow_remote (the counters tell how busy the
// relay is and which suites it runs).
// An address and port (not 0) at `key`, if set; `what` says what is expected.
absl::Status Reader::ReadEndpoint(const Section& s, absl::string_view key, absl::string_view what,
                                  packet::Endpoint* out) const {
  const Value* v = s.Get(key);
  if (v == nullptr) return absl::OkStatus();
  std::string text;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, key, &text));
  const std::optional<packet::Endpoint> endpoint = packet::Endpoint::Parse(text);
  if (!endpoint || endpoint->port == 0) {
    return Error(v, s.Path(key),
                 absl::StrCat("expected ", what, "; got \"",
                              absl::CHexEscape(text.substr(0, kMaxKeyShown)), "\""));
  }
  *out = *endpoint;
  return absl::OkStatus();
}

absl::Status Reader::ReadMetrics(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "metrics", &s));
  if (s.table == nullptr) return absl::OkStatus();
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kMetricsKeys));
  MetricsConfig m;
  const Value* v = s.Get("listen");
  if (v == nullptr) {
    return Error(s.table, s.Path("listen"),
                 "required: the address and TCP port to serve /metrics on, like "
                 "\"127.0.0.1:9464\" (or leave out [metrics] to serve none)");
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadEndpoint(s, "listen", "an address and TCP port, like \"127.0.0.1:9464\"", &m.listen));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadBool(s, "allow_remote", &m.allow_remote));
  if (!IsLoopback(m.listen.ip) && !m.allow_remote) {
    return Error(v, s.Path("listen"),
                 absl::StrCat(m.listen.ToString(),
                              " is not a loopback address: other hosts could read the relay's "
                              "counters; set metrics.allow_remote = true to mean it"));
  }
  config->metrics = m;
  return absl::OkStatus();
}

// Who may use ng: allowed_sources for UDP (loopback unless set, and set it
// must be for a listen address that is not loopback), the Unix socket's file.
absl::Status Reader::ReadNgAccess(const Section& s, NgConfig* ng) const {
  if (const Value* allowed = s.Get("allowed_sources")) {
    const auto bad = [&](const Value* at) {
      return Error(at, s.Path("allowed_sources"),
                   "expected an array of addresses or prefixes, like [\"127.0.0.1\", "
                   "\"10.0.0.0/24\"]");
    };
    if (!allowed->is_array()) return bad(allowed);
    ng->allowed_sources.clear();
    for (const Value& item : allowed->as_array()) {
      if (!item.is_string()) return bad(&item);
      const std::string& text = item.as_string().str;
      std::optional<packet::Prefix> prefix = packet::Prefix::Parse(text);
      if (!prefix) {
        if (std::optional<packet::IpAddress> ip = packet::IpAddress::Parse(text)) {
          prefix = packet::Prefix{*ip, static_cast<uint8_t>(ip->is_v4() ? 32 : 128)};
        }
      }
      if (!prefix) return bad(&item);
      ng->allowed_sources.push_back(*prefix);
    }
  } else {
    if (!IsLoopback(ng->listen.ip)) {
      return Error(s.Get("listen"), s.Path("listen"),
                   absl::StrCat(ng->listen.ToString(),
                                " is not a loopback address: set ng.allowed_sources to the "
                                "addresses of the SIP proxies that may send ng requests"));
    }
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "socket", &ng->socket));
  if (!ng->socket.empty() && (ng->socket[0] != '/' || ng->socket.size() > 107)) {
    return Error(s.Get("socket"), s.Path("socket"),
                 "expected an absolute path of at most 107 bytes, like \"/run/sluice/ng.sock\"");
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "socket_group", &ng->socket_group));
  if (!ng->socket_group.empty() && getgrnam(ng->socket_group.c_str()) == nullptr) {
    return Error(s.Get("socket_group"), s.Path("socket_group"),
                 absl::StrCat("no group \"",
                              absl::CHexEscape(ng->socket_group.substr(0, kMaxKeyShown)),
                              "\" on this system"));
  }
  return absl::OkStatus();
}

absl::Status Reader::ReadSecurity(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "security", &s));
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kSecurityKeys));
  SecurityConfig& sec = config->security;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadBool(s, "core_dumps", &sec.core_dumps));
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadUint(s, "key_reuse_window_s", 0, 30 * 86400, &sec.key_reuse_window_s));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadBool(s, "allow_unlocked_keys", &sec.allow_unlocked_keys));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "user", &sec.user));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "group", &sec.group));
  if (!sec.user.empty() && getpwnam(sec.user.c_str()) == nullptr) {
    return Error(s.Get("user"), s.Path("user"),
                 absl::StrCat("no user \"", absl::CHexEscape(sec.user.substr(0, kMaxKeyShown)),
                              "\" on this system"));
  }
  if (!sec.group.empty()) {
    if (sec.user.empty()) {
      return Error(s.Get("group"), s.Path("group"), "a group is dropped to with a user: set user too");
    }
    if (getgrnam(sec.group.c_str()) == nullptr) {
      return Error(s.Get("group"), s.Path("group"),
                   absl::StrCat("no group \"", absl::CHexEscape(sec.group.substr(0, kMaxKeyShown)),
                                "\" on this system"));
    }
  }
  return absl::OkStatus();
}

absl::Status Reader::ReadHa(const Value& root, Config* config) const {
  Section s;
  SLUICE_CONFIG_RETURN_IF_ERROR(SectionOf(root, "ha", &s));
  if (s.table == nullptr) return absl::OkStatus();
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckKeys(s, kHaKeys));
  HaConfig ha;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "redis", &ha.redis));
  const absl::string_view redis = ha.redis;
  const bool unix_path = absl::StartsWith(redis, "unix:/") && redis.size() <= 5 + 107;
  // An address, not a name: resolving one would block the control thread.
  const std::optional<packet::Endpoint> tcp =
      absl::StartsWith(redis, "tcp://") ? packet::Endpoint::Parse(redis.substr(6)) : std::nullopt;
  if (!unix_path && !(tcp && tcp->port != 0)) {
    return Error(s.Get("redis"), s.Path("redis"),
                 "expected \"unix:/path/to/redis.sock\" or \"tcp://IP:port\" (an address, "
                 "like tcp://127.0.0.1:6379 or tcp://[::1]:6379)");
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "password", &ha.password));
  bool tls = false;
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadBool(s, "tls", &tls));
  if (tls) {
    // Debian 12's libhiredis-dev is 0.14, built without hiredis_ssl.
    return Error(s.Get("tls"), s.Path("tls"),
                 "TLS to Redis is not available (Debian's hiredis 0.14 has no TLS): reach "
                 "Redis over a Unix socket, or through stunnel or spiped (docs/ha.md)");
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadHaRole(s, &ha));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "instance", &ha.instance));
  const bool instance_ok =
      !ha.instance.empty() && ha.instance.size() <= 64 &&
      std::all_of(ha.instance.begin(), ha.instance.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
               c == '-';
      });
  if (!instance_ok) {
    return Error(s.Get("instance"), s.Path("instance"),
                 "expected 1 to 64 of A-Z, a-z, 0-9, '_', '.', '-'");
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "kek_file", &ha.kek_file));
  if (ha.kek_file.empty() || ha.kek_file[0] != '/') {
    return Error(s.Get("kek_file"), s.Path("kek_file"),
                 "required: the absolute path of the key-encryption key (32 bytes, mode 0600)");
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "previous_kek_file", &ha.previous_kek_file));
  if (!ha.previous_kek_file.empty() && ha.previous_kek_file[0] != '/') {
    return Error(s.Get("previous_kek_file"), s.Path("previous_kek_file"),
                 "expected an absolute path");
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "checkpoint_ms", 50, 60000, &ha.checkpoint_ms));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "max_rtcp_pps", 1, 1000000, &ha.max_rtcp_pps));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "max_rtp_pps", 1, 100000, &ha.max_rtp_pps));
  if (uint64_t{ha.max_rtp_pps} * 2 * ha.checkpoint_ms / 1000 > kMaxRtpSkipAtLoad) {
    return Error(s.Get("max_rtp_pps"), s.Path("max_rtp_pps"),
                 absl::StrCat("max_rtp_pps × 2 × checkpoint_ms / 1000 must be at most ",
                              kMaxRtpSkipAtLoad,
                              ": a restored sender's SEQ skip must stay well below 2^15 for "
                              "its receivers to follow (RFC 3711 §3.3.1); lower max_rtp_pps or "
                              "checkpoint_ms"));
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadUint(s, "restore_timeout_ms", 100, 600000, &ha.restore_timeout_ms));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadHaFailover(s, &ha));
  config->ha = std::move(ha);
  return absl::OkStatus();
}

absl::Status Reader::ReadHaRole(const Section& s, HaConfig* ha) const {
  std::string role = "active";
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadString(s, "role", &role));
  if (role != "active" && role != "standby") {
    return Error(s.Get("role"), s.Path("role"), "expected \"active\" or \"standby\"");
  }
  ha->standby = role == "standby";
  return absl::OkStatus();
}

// The heartbeat and the standby's promotion (docs/ha.md, "Standby").
absl::Status Reader::ReadHaFailover(const Section& s, HaConfig* ha) const {
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadUint(s, "heartbeat_ms", 50, 10000, &ha->heartbeat_ms));
  ha->heartbeat_ttl_ms = std::max<uint32_t>(3000, 3 * ha->heartbeat_ms);
  SLUICE_CONFIG_RETURN_IF_ERROR(
      ReadUint(s, "heartbeat_ttl_ms", 150, 60000, &ha->heartbeat_ttl_ms));
  // Two beats may be lost (a slow Redis, a busy control loop) before a
  // standby takes over from an active that is alive.
  if (ha->heartbeat_ttl_ms < 3 * ha->heartbeat_ms) {
    return Error(s.Get("heartbeat_ttl_ms"), s.Path("heartbeat_ttl_ms"),
                 absl::StrCat("must be at least 3 x heartbeat_ms (", 3 * ha->heartbeat_ms,
                              "): two lost heartbeats must not hand the calls to the standby"));
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadBool(s, "auto_promote", &ha->auto_promote));
  return ReadUint(s, "promote_after_ms", 0, 600000, &ha->promote_after_ms);
}

absl::Status Reader::Read(const Value& root, Config* config) {
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckTopLevel(root));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadEal(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadInterfaces(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadWorkers(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadMedia(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadControl(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadCrypto(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadNg(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadMetrics(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadWebRtc(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadSecurity(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadLimits(root, config));
  SLUICE_CONFIG_RETURN_IF_ERROR(ReadHa(root, config));
  if (config->ng && config->ng->max_calls == 0) config->ng->max_calls = config->limits.max_sessions;
  return absl::OkStatus();
}

absl::StatusOr<Config> ParseUnchecked(absl::string_view toml_text, absl::string_view origin) {
  if (toml_text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": ", toml_text.size(),
                     " bytes is too large for a configuration (at most ", kMaxConfigBytes, ")"));
  }
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckUtf8(toml_text, origin));
  SLUICE_CONFIG_RETURN_IF_ERROR(CheckShape(toml_text, origin));
  Value root;
  try {
    std::istringstream in{std::string(toml_text)};
    root = toml::parse<toml::discard_comments, std::map, std::vector>(in, std::string(origin));
  } catch (const toml::exception& e) {
    return absl::InvalidArgumentError(DescribeSyntaxError(e, origin));
  }
  Config config;
  config.source = std::string(origin);
  SLUICE_CONFIG_RETURN_IF_ERROR(Reader(origin).Read(root, &config));
  return config;
}

}  // namespace

const InterfaceConfig* Config::FindInterface(absl::string_view name) const {
  for (const InterfaceConfig& iface : interfaces) {
    if (iface.name == name) return &iface;
  }
  return nullptr;
}

absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, absl::string_view origin) {
  // toml11 reports with exceptions; none may leave. Anything not a syntax
  // error (bad_alloc, a toml11 internal error) is still a refusal, not a crash.
  try {
    return ParseUnchecked(toml_text, origin);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": cannot parse: ", e.what()));
  } catch (...) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": cannot parse"));
  }
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
  }
  std::string text;
  struct stat st {};
  absl::Status status;
  if (fstat(fd, &st) != 0) {
    status =
        absl::InvalidArgumentError(absl::StrCat(path, ": cannot stat: ", std::strerror(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    status = absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  } else if (static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) {
    status = absl::InvalidArgumentError(
        absl::StrCat(path, ": ", st.st_size, " bytes is too large for a configuration (at most ",
                     kMaxConfigBytes, ")"));
  } else {
    char buf[16384];
    while (true) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status =
            absl::InvalidArgumentError(absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
        break;
      }
      if (n == 0) break;
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > kMaxConfigBytes) break;  // grew while we read: ParseConfig refuses it
    }
  }
  close(fd);
  if (!status.ok()) return status;
  return ParseConfig(text, path);
}

#undef SLUICE_CONFIG_RETURN_IF_ERROR

}  // namespace sluice::config
