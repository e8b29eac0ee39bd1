// Starting the DPDK Environment Abstraction Layer (EAL).
//
// Main thread, once per process. Builds the EAL argument list for the host:
// where no hugepages are mounted (laptops, CI, tests) it adds
// `--no-huge --no-shconf` (DPDK 22.11's equivalent of
// `--in-memory` without hugepages) and a per-process file prefix so that several
// processes can run EAL side by side without root-owned shared state.
#ifndef SLUICE_DPDK_EAL_H_
#define SLUICE_DPDK_EAL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace sluice::dpdk {

struct EalOptions {
  std::string program_name = "sluice";
  std::string lcores = "0";           // -l list, e.g. "0-1"
  std::vector<std::string> vdevs;     // e.g. "net_ring0", "net_null0"
  bool allow_pci = false;             // tests and tools never touch PCI devices
  int memory_mb = 256;                // only used without hugepages
  std::string file_prefix;            // default: "sluice-<pid>"
  bool force_no_huge = false;         // even where hugepages are mounted
  std::string log_level = "*:warning";
};

// True when a hugetlbfs is mounted and has free pages.
bool HugepagesAvailable();

// The argv (without the terminating null) that InitEal passes to rte_eal_init.
std::vector<std::string> BuildEalArgs(const EalOptions& options);

// Starts EAL with BuildEalArgs(options). EAL can start only once in a process:
// a second call returns FailedPrecondition.
absl::Status InitEal(const EalOptions& options);

// Starts EAL with a caller-supplied argv (from a config file).
absl::Status InitEalWithArgs(const std::vector<std::string>& args);

// Stops EAL (rte_eal_cleanup) if this process started it.
void CleanupEal();

}  // namespace sluice::dpdk

#endif  // SLUICE_DPDK_EAL_H_
