// sluiced: the Sluice media relay daemon.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "sluice/version.h"

namespace {

constexpr char kUsage[] =
    "sluiced %s: SRTP media relay for session border controllers.\n"
    "\n"
    "Relays the RTP/RTCP media of each call between its two legs on DPDK\n"
    "poll-mode NIC workers: authenticates and decrypts what each side sends,\n"
    "re-encrypts it with the other side's keys and forwards it. A SIP\n"
    "controller installs each call's keys over a local control socket.\n"
    "\n"
    "Usage: sluiced --config FILE\n"
    "\n"
    "Options:\n"
    "  --config FILE   TOML configuration (see configs/ for examples)\n"
    "  --help          show this text\n"
    "  --version       print the version\n";

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, sluice::kVersion);
      return 0;
    }
    if (arg == "--version") {
      std::printf("sluiced %s\n", sluice::kVersion);
      return 0;
    }
  }
  std::fprintf(stderr,
               "sluiced: the relay data plane is not available in this build yet; "
               "see --help\n");
  return 2;
}
