// sluicectl: command-line client for sluiced's control socket.
#include <cstdio>
#include <string_view>

#include "sluice/version.h"

namespace {

constexpr char kUsage[] =
    "sluicectl %s: control client for the Sluice media relay.\n"
    "\n"
    "Talks to a running sluiced over its control socket: creates, updates,\n"
    "inspects and deletes the sessions (calls) whose media it relays, and\n"
    "reads its statistics.\n"
    "\n"
    "Usage: sluicectl [--socket PATH] [--json] COMMAND [ARGS]\n"
    "\n"
    "Options:\n"
    "  --socket PATH   control socket (default /run/sluice/control.sock)\n"
    "  --json          print raw JSON replies\n"
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
      std::printf("sluicectl %s\n", sluice::kVersion);
      return 0;
    }
  }
  std::fprintf(stderr, "sluicectl: no command given; see --help\n");
  return 2;
}
