// Fuzz target: any bytes as a configuration file. ParseConfig must return
// (never crash, never let one of toml11's exceptions out, never overflow the
// stack on deep nesting), and whatever it accepts must satisfy the rules it
// promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "sluice/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sluice::config::Config> config = sluice::config::ParseConfig(text, "fuzz.toml");
  if (!config.ok()) {
    if (config.status().message().empty()) abort();
    return 0;
  }
  const sluice::config::Config& c = *config;
  if (c.interfaces.empty() || c.workers.lcores.empty()) abort();
  for (const auto& iface : c.interfaces) {
    if (c.FindInterface(iface.name) != &iface) abort();  // names are unique
    if (!iface.ipv4 && !iface.ipv6) abort();
    if (iface.gateway && !iface.ipv4->Contains(*iface.gateway)) abort();
  }
  const auto& m = c.media;
  if (m.port_min < 1024 || m.port_min % 2 != 0 || m.port_min >= m.port_max) abort();
  if (m.replay_window < 64 || m.replay_window > 1024 || m.replay_window % 64 != 0) abort();
  if (c.control.socket.empty() || c.control.socket.front() != '/') abort();
  if (c.limits.max_sessions < 1) abort();
  return 0;
}
