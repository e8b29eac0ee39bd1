#include "sluice/log/logger.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace sluice::log {
namespace {

uint64_t MonotonicMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void WriteStderr(std::string_view line) {
  std::string out(line);
  out.push_back('\n');
  // One write(2) a line, so lines from several threads never interleave.
  (void)!write(STDERR_FILENO, out.data(), out.size());
}

// systemd sets JOURNAL_STREAM=<dev>:<inode> for a service whose stderr is
// the journal (systemd.exec(5)); a child with other stderr must not use it.
bool StderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(env, ':');
  uint64_t dev = 0, ino = 0;
  if (!absl::SimpleAtoi(parts.first, &dev) || !absl::SimpleAtoi(parts.second, &ino)) return false;
  struct stat st = {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<uint64_t>(st.st_dev) == dev && static_cast<uint64_t>(st.st_ino) == ino;
}

bool Bare(std::string_view value) {
  if (value.empty()) return false;
  return std::all_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != '\\' && c != '=';
  });
}

std::atomic<Logger*> default_logger{nullptr};

}  // namespace

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kError:
      return "error";
    case Level::kWarning:
      return "warning";
    case Level::kNotice:
      return "notice";
    case Level::kInfo:
      return "info";
  }
  return "info";
}

void AppendValue(std::string& line, std::string_view value) {
  if (Bare(value)) {
    line.append(value);
    return;
  }
  line.push_back('"');
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      line.push_back('\\');
      line.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      line.append("\\x");
      line.push_back(kHex[u >> 4]);
      line.push_back(kHex[u & 15]);
    } else {
      line.push_back(c);
    }
  }
  line.push_back('"');
}

Logger::Logger(Options options) : options_(std::move(options)) {
  if (!options_.write) options_.write = WriteStderr;
  if (!options_.now_ms) options_.now_ms = MonotonicMs;
}

Logger::Options Logger::ForStderr() {
  Options options;
  options.syslog_prefix = StderrIsJournal();
  return options;
}

void Logger::Event(Level level, std::string_view event, std::initializer_list<Field> fields) {
  std::string line;
  {
    absl::MutexLock lock(&mu_);
    // A token bucket per event: `burst` at once, refilled at per_minute.
    const uint64_t now = options_.now_ms();
    auto [it, fresh] = buckets_.try_emplace(std::string(event));
    Bucket& b = it->second;
    if (fresh) {
      b.tokens = options_.burst;
    } else if (now > b.last_ms) {
      b.tokens = std::min<double>(options_.burst,
                                  b.tokens + (now - b.last_ms) * options_.per_minute / 60000.0);
    }
    b.last_ms = now;
    if (b.tokens < 1) {
      ++b.suppressed;
      ++suppressed_total_;
      return;
    }
    b.tokens -= 1;
    line = options_.syslog_prefix ? "<" + std::to_string(static_cast<int>(level)) + ">"
                                  : std::string("sluiced: ");
    line.append("level=").append(LevelName(level)).append(" event=").append(event);
    for (const Field& f : fields) {
      line.append(" ").append(f.key).append("=");
      AppendValue(line, f.value);
    }
    if (b.suppressed > 0) {
      line.append(" suppressed=").append(std::to_string(b.suppressed));
      b.suppressed = 0;
    }
  }
  options_.write(line);
}

uint64_t Logger::suppressed() const {
  absl::MutexLock lock(&mu_);
  return suppressed_total_;
}

void SetDefault(Logger* logger) { default_logger.store(logger, std::memory_order_release); }

Logger& Default() {
  if (Logger* l = default_logger.load(std::memory_order_acquire)) return *l;
  static Logger* fallback = new Logger(Logger::ForStderr());
  return *fallback;
}

}  // namespace sluice::log
