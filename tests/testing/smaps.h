// What the kernel says about this process's mappings, for tests of memory
// placement (hugepages).
#ifndef SLUICE_TESTS_TESTING_SMAPS_H_
#define SLUICE_TESTS_TESTING_SMAPS_H_

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

namespace sluice::testing {

// The value of `field` (e.g. "VmFlags:") in the /proc/self/smaps entry of
// the mapping that holds p, or "" if none.
inline std::string SmapsField(const void* p, const std::string& field) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(smaps, line)) {
    unsigned long start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2 && line.find(' ') > 8) {
      inside = addr >= start && addr < end;
      continue;
    }
    if (inside && line.rfind(field, 0) == 0) return line.substr(field.size());
  }
  return "";
}

// The "THPeligible" field of the mapping that holds p ("1" when transparent
// hugepages may back it), or "" if none.
inline std::string ThpEligible(const void* p) { return SmapsField(p, "THPeligible:"); }

// The "VmFlags" field of the mapping that holds p (two-letter flags such as
// "lo" for locked, "dd" for left out of core dumps, each followed by a
// space), or "" if none.
inline std::string VmFlags(const void* p) {
  const std::string flags = SmapsField(p, "VmFlags:");
  return flags.empty() ? flags : flags + " ";
}

// The kernel's transparent hugepage mode line, e.g. "always [madvise] never".
inline std::string ThpMode() {
  std::ifstream enabled("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(enabled, mode);
  return mode;
}

// Whether transparent hugepages can back memory advised MADV_HUGEPAGE.
inline bool ThpAvailable() {
  const std::string mode = ThpMode();
  return !mode.empty() && mode.find("[never]") == std::string::npos;
}

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_SMAPS_H_
