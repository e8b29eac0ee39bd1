#include "thread_cpu.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice::testing {
namespace {

// The stat line of a task (one line; its comm in parentheses).
std::string StatLine(pid_t pid, pid_t tid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/task/", tid, "/stat"));
  std::string line;
  std::getline(in, line);
  return line;
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
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    pid_t tid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &tid)) continue;
    std::ifstream in(entry.path() / "comm");
    std::string comm;
    std::getline(in, comm);
    if (comm == name) return tid;
  }
  return std::nullopt;
}

}  // namespace sluice::testing
