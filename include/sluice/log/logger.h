// sluiced's log: one event a line on stderr, with a level, a stable event
// name and key=value fields (logfmt), journald-friendly, rate-limited per
// event. Any thread may log (a mutex orders the lines); workers do not.
// Fields carry names, addresses and reasons, never key material: no field
// takes a MasterKey or SessionKey, and callers pass none (docs/logging.md
// lists every event and its fields).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace sluice::log {

// syslog(3) priorities, which journald reads from a "<N>" line prefix.
enum class Level : uint8_t { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6 };

std::string_view LevelName(Level level);

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  // absl::string_view is its own type in Debian's abseil.
  Field(std::string_view k, absl::string_view v) : key(k), value(v.data(), v.size()) {}
  template <typename Int, typename = std::enable_if_t<std::is_integral_v<Int>>>
  Field(std::string_view k, Int v) : key(k), value(std::to_string(v)) {}
  std::string_view key;
  std::string value;
};

// Appends `value` as logfmt does: bare when it is a non-empty run of
// printable characters without space, quote, backslash or '='; otherwise in
// double quotes, with \" \\ and non-printable bytes as \xNN.
void AppendValue(std::string& line, std::string_view value);

class Logger {
 public:
  struct Options {
    // Lines of one event at once, then `per_minute` more a minute; the rest
    // are counted and the event's next line says how many (suppressed=N).
    uint32_t burst = 20;
    uint32_t per_minute = 60;
    // "<N>" before each line instead of "sluiced: " (journald's
    // SyslogLevelPrefix); ForStderr sets it when stderr is the journal.
    bool syslog_prefix = false;
    std::function<void(std::string_view line)> write;  // one line, no newline
    std::function<uint64_t()> now_ms;                  // default: monotonic clock
  };

  explicit Logger(Options options);
  // Writes to stderr, with the "<N>" prefix when stderr is the journal
  // stream systemd named in $JOURNAL_STREAM.
  static Options ForStderr();

  void Event(Level level, std::string_view event, std::initializer_list<Field> fields);
  // Lines withheld by the rate limit, all events together.
  uint64_t suppressed() const;

 private:
  struct Bucket {
    double tokens = 0;
    uint64_t last_ms = 0;
    uint64_t suppressed = 0;
  };

  Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  uint64_t suppressed_total_ ABSL_GUARDED_BY(mu_) = 0;
};

// The process's logger (stderr; set once by sluiced's main before threads
// start), and a shorthand for it. Until Set, events go to stderr.
void SetDefault(Logger* logger);
Logger& Default();
inline void Event(Level level, std::string_view event, std::initializer_list<Field> fields) {
  Default().Event(level, event, fields);
}

}  // namespace sluice::log
