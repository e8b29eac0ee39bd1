// sluice-bench: Sluice's throughput benchmarks.
#include <cstdio>
#include <string_view>

#include "control_command.h"
#include "crypto_command.h"
#include "relay_command.h"
#include "traffic_command.h"
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
    "  crypto    SRTP protect/unprotect per suite: Sluice's engine on the\n"
    "            ipsec-mb and OpenSSL backends, libsrtp2, and the raw ipsec-mb\n"
    "            floor, in bursts on one core (table, or JSON with --json)\n"
    "  relay     relay throughput: sluiced's worker pipeline in process on\n"
    "            virtual ports, 1 to 1,000,000 sessions, beside the crypto floor\n"
    "            and libsrtp2 (table, JSON, sweeps and SVG plots)\n"
    "  control   session.create, re-key and session.delete per second over the\n"
    "            control socket of a sluiced it starts, with media flowing\n"
    "            through it during the re-keys when run as root\n"
    "  traffic   the real sluiced relaying SRTP at millions of packets a second\n"
    "            over shared-memory ports (net_memif) from a DPDK generator:\n"
    "            every packet counted per call, a sample checked with libsrtp2\n"
    "\n"
    "Run `sluice-bench COMMAND --help` for a command's options.\n"
    "\n"
    "Options:\n"
    "  --help      show this text\n"
    "  --version   print the version\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "sluice-bench: no command given; see --help\n");
    return 2;
  }
  const std::string_view command = argv[1];
  if (command == "--help" || command == "-h") {
    std::printf(kUsage, sluice::kVersion);
    return 0;
  }
  if (command == "--version") {
    std::printf("sluice-bench %s\n", sluice::kVersion);
    return 0;
  }
  if (command == "crypto") return sluice::bench::RunCryptoCommand(argc - 2, argv + 2);
  if (command == "control") return sluice::bench::RunControlCommand(argc - 2, argv + 2);
  if (command == "relay") return sluice::bench::RunRelayCommand(argc - 2, argv + 2);
  if (command == "traffic") return sluice::bench::RunTrafficCommand(argc - 2, argv + 2);
  std::fprintf(stderr, "sluice-bench: unknown command \"%s\"; see --help\n", argv[1]);
  return 2;
}
