#include "run_priority.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice::bench {
namespace {

constexpr char kAutogroup[] = "/proc/self/autogroup";

// This session's autogroup nice ("/autogroup-15 nice 0"), when the kernel
// schedules by autogroup.
std::optional<int> AutogroupNice() {
  std::ifstream enabled("/proc/sys/kernel/sched_autogroup_enabled");
  int on = 0;
  if (!(enabled >> on) || on == 0) return std::nullopt;
  std::ifstream in(kAutogroup);
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
  int nice = 0;
  if (fields.size() != 3 || fields[1] != "nice" || !absl::SimpleAtoi(fields[2], &nice)) {
    return std::nullopt;
  }
  return nice;
}

absl::Status SetAutogroupNice(int nice) {
  std::ofstream out(kAutogroup);
  out << nice << std::flush;
  if (!out) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot set this session's autogroup nice to ", nice, " (", std::strerror(errno),
        "; raising it needs CAP_SYS_NICE; --nice 0 leaves it)"));
  }
  return absl::OkStatus();
}

absl::Status SetThreadNice(pid_t tid, int nice) {
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot set thread ", tid, "'s nice to ", nice, " (", std::strerror(errno),
        "; raising it needs CAP_SYS_NICE; --nice 0 leaves it)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RunPriority> RunPriority::Raise(int nice, const std::vector<pid_t>& threads) {
  RunPriority p;
  if (std::optional<int> before = AutogroupNice()) {
    if (absl::Status s = SetAutogroupNice(nice); !s.ok()) return s;
    p.autogroup_before_ = before;
    p.what_ = absl::StrCat("autogroup nice ", nice);
    return p;
  }
  for (pid_t tid : threads) {
    errno = 0;
    const int before = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
    if (errno != 0) continue;  // gone
    if (absl::Status s = SetThreadNice(tid, nice); !s.ok()) return s;
    p.threads_before_.emplace_back(tid, before);
  }
  p.what_ = absl::StrCat("threads nice ", nice);
  return p;
}

RunPriority::RunPriority(RunPriority&& other) noexcept
    : autogroup_before_(std::exchange(other.autogroup_before_, std::nullopt)),
      threads_before_(std::move(other.threads_before_)),
      what_(std::move(other.what_)) {
  other.threads_before_.clear();
}

RunPriority::~RunPriority() {
  // Lowering a priority needs no privilege; a thread that has exited is
  // simply not found.
  if (autogroup_before_) SetAutogroupNice(*autogroup_before_).IgnoreError();
  for (const auto& [tid, nice] : threads_before_) SetThreadNice(tid, nice).IgnoreError();
}

}  // namespace sluice::bench
