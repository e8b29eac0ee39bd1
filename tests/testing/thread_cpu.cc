#include "thread_cpu.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice::testing {
namespace {

std::string ReadLine(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The stat line of a task (one line; its comm in parentheses).
std::string StatLine(pid_t pid, pid_t tid) {
  return ReadLine(absl::StrCat("/proc/", pid, "/task/", tid, "/stat"));
}

// The threads of `pid`: f(tid, its /proc directory).
template <typename F>
void ForEachTask(pid_t pid, F f) {
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    pid_t tid = 0;
    if (absl::SimpleAtoi(entry.path().filename().string(), &tid)) f(tid, entry.path());
  }
}

// The value of a "Key:\tvalue" line of a task's status file; empty if none.
std::string StatusField(const std::filesystem::path& task, std::string_view key) {
  std::ifstream in(task / "status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
        line[key.size()] == ':') {
      return std::string(absl::StripAsciiWhitespace(line.substr(key.size() + 1)));
    }
  }
  return "";
}

// Whether a CPU list ("0-2,5", as Cpus_allowed_list gives it) holds `cpu`.
bool CpuListHolds(absl::string_view list, int cpu) {
  for (absl::string_view range : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    const std::pair<absl::string_view, absl::string_view> ends = absl::StrSplit(range, '-');
    int first = 0, last = 0;
    if (!absl::SimpleAtoi(ends.first, &first)) continue;
    if (ends.second.empty()) {
      last = first;
    } else if (!absl::SimpleAtoi(ends.second, &last)) {
      continue;
    }
    if (cpu >= first && cpu <= last) return true;
  }
  return false;
}

}  // namespace

std::optional<double> ThreadCpuSeconds(pid_t pid, pid_t tid) {
  const std::string text = StatLine(pid, tid);
  const size_t comm_end = text.rfind(')');
  if (comm_end == std::string::npos || comm_end + 2 > text.size()) return std::nullopt;
  // After ") " comes field 3 (state); utime and stime are fields 14 and 15.
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(text).substr(comm_end + 2), ' ');
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return std::nullopt;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::optional<pid_t> FindThread(pid_t pid, std::string_view name) {
  std::optional<pid_t> found;
  ForEachTask(pid, [&](pid_t tid, const std::filesystem::path& task) {
    if (!found && ReadLine(task / "comm") == name) found = tid;
  });
  return found;
}

std::optional<ThreadSched> ReadThreadSched(pid_t pid, pid_t tid) {
  const std::filesystem::path task = absl::StrCat("/proc/", pid, "/task/", tid);
  // schedstat: time on the CPU, time waiting on a run queue (ns), slices.
  const std::string line = ReadLine(task / "schedstat");
  const std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
  ThreadSched s;
  if (fields.size() < 2 || !absl::SimpleAtoi(fields[0], &s.run_ns) ||
      !absl::SimpleAtoi(fields[1], &s.wait_ns) ||
      !absl::SimpleAtoi(StatusField(task, "nonvoluntary_ctxt_switches"), &s.preemptions)) {
    return std::nullopt;
  }
  return s;
}

std::vector<std::string> ThreadsAllowedOn(pid_t pid, int cpu, pid_t except) {
  std::vector<std::string> names;
  ForEachTask(pid, [&](pid_t tid, const std::filesystem::path& task) {
    if (tid != except && CpuListHolds(StatusField(task, "Cpus_allowed_list"), cpu)) {
      names.push_back(ReadLine(task / "comm"));
    }
  });
  return names;
}

}  // namespace sluice::testing
