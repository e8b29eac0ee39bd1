#include "sluice/dpdk/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace sluice::dpdk {
namespace {

std::atomic<bool> eal_started{false};

bool HugetlbfsMounted() {
  std::ifstream mounts("/proc/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() >= 3 && fields[2] == "hugetlbfs") return true;
  }
  return false;
}

long FreeHugepages() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    if (!absl::StartsWith(line, "HugePages_Free:")) continue;
    std::vector<std::string> fields =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    long n = 0;
    if (fields.size() >= 2 && absl::SimpleAtoi(fields[1], &n)) return n;
  }
  return 0;
}

}  // namespace

bool HugepagesAvailable() { return HugetlbfsMounted() && FreeHugepages() > 0; }

std::vector<std::string> BuildEalArgs(const EalOptions& options) {
  std::vector<std::string> args = {options.program_name, "-l", options.lcores};
  const bool no_huge = options.force_no_huge || !HugepagesAvailable();
  if (no_huge) {
    // DPDK 22.11 treats --no-huge as legacy memory, which --in-memory
    // refuses; --no-shconf gives the same "no files left behind" here.
    args.push_back("--no-huge");
    args.push_back("--no-shconf");
    args.push_back("-m");
    args.push_back(absl::StrCat(options.memory_mb));
  }
  if (!options.allow_pci) args.push_back("--no-pci");
  args.push_back(absl::StrCat("--file-prefix=",
                              options.file_prefix.empty()
                                  ? absl::StrCat("sluice-", getpid())
                                  : options.file_prefix));
  for (const std::string& vdev : options.vdevs) {
    args.push_back(absl::StrCat("--vdev=", vdev));
  }
  args.push_back(absl::StrCat("--log-level=", options.log_level));
  return args;
}

absl::Status InitEal(const EalOptions& options) {
  return InitEalWithArgs(BuildEalArgs(options));
}

absl::Status InitEalWithArgs(const std::vector<std::string>& args) {
  if (eal_started.exchange(true)) {
    return absl::FailedPreconditionError("EAL is already running in this process");
  }
  // rte_eal_init may permute argv; give it copies that live for the process.
  static std::vector<std::string> storage;
  static std::vector<char*> argv;
  storage = args;
  argv.clear();
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const int rc = rte_eal_init(static_cast<int>(storage.size()), argv.data());
  if (rc < 0) {
    eal_started = false;
    return absl::InternalError(absl::StrCat("rte_eal_init failed (",
                                            rte_strerror(rte_errno), ") with: ",
                                            absl::StrJoin(args, " ")));
  }
  return absl::OkStatus();
}

void CleanupEal() {
  if (eal_started.exchange(false)) rte_eal_cleanup();
}

}  // namespace sluice::dpdk
