// sluice-bench: Sluice's throughput benchmarks.
#include <cstdio>
#include <string_view>

#include "sluice/version.h"

namespace {

constexpr char kUsage[] =
    "sluice-bench %s: throughput benchmarks for the Sluice media relay.\n"
    "\n"
    "Measures what one core carries, always beside what the hardware allows\n"
    "(the crypto floor) and what libsrtp2 does in the same run, so every\n"
    "figure is a ratio that holds on any machine.\n"
    "\n"
    "Usage: sluice-bench COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  crypto    SRTP protect/unprotect bursts per suite and backend\n"
    "\n"
    "Options:\n"
    "  --help      show this text\n"
    "  --version   print the version\n";

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, sluice::kVersion);
      return 0;
    }
    if (arg == "--version") {
      std::printf("sluice-bench %s\n", sluice::kVersion);
      return 0;
    }
  }
  std::fprintf(stderr, "sluice-bench: no command given; see --help\n");
  return 2;
}
