// Captures sluiced's event log (sluice/log/logger.h) for a test's lifetime:
// the process's default logger writes here instead of stderr, with no rate
// limit in the way. Lines may come from any thread.
#ifndef SLUICE_TESTS_TESTING_LOG_CAPTURE_H_
#define SLUICE_TESTS_TESTING_LOG_CAPTURE_H_

#include <mutex>
#include <string>
#include <vector>

#include "sluice/log/logger.h"

namespace sluice::testing {

class LogCapture {
 public:
  LogCapture() : logger_(Options(this)) { log::SetDefault(&logger_); }
  ~LogCapture() { log::SetDefault(nullptr); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }
  // The lines of one event ("event=NAME" in them).
  std::vector<std::string> Of(const std::string& event) const {
    const std::string field = " event=" + event;
    std::vector<std::string> out;
    for (const std::string& line : lines()) {
      const bool last = line.size() >= field.size() &&
                        line.compare(line.size() - field.size(), field.size(), field) == 0;
      if (last || line.find(field + " ") != std::string::npos) out.push_back(line);
    }
    return out;
  }

 private:
  static log::Logger::Options Options(LogCapture* self) {
    log::Logger::Options o;
    o.burst = 1u << 30;
    o.write = [self](std::string_view line) {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->lines_.emplace_back(line);
    };
    return o;
  }

  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  log::Logger logger_;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_LOG_CAPTURE_H_
