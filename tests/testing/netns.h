// Throwaway network namespaces joined by veth pairs, for end-to-end tests.
//
// Test thread only. Each namespace is named "sluice-<pid>-<name>", so tests
// running side by side never collide, and lives only as long as its Topology:
// the destructor deletes every namespace (and with it every veth end inside),
// a SIGINT/SIGTERM/SIGHUP handler does the same when a test is interrupted,
// and Create() sweeps namespaces left by processes that no longer exist
// (a test killed with SIGKILL). Addresses live only inside the namespaces the
// topology made; nothing is configured in the host's own namespace.
#ifndef SLUICE_TESTS_TESTING_NETNS_H_
#define SLUICE_TESTS_TESTING_NETNS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice::testing {

class Topology {
 public:
  // Requires root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2.
  static absl::StatusOr<std::unique_ptr<Topology>> Create();

  // True when this process can create namespaces; `why` says what is missing.
  static bool Supported(std::string* why);

  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  ~Topology();

  // Creates namespace `name` with its loopback up. Returns the full name.
  absl::StatusOr<std::string> AddNamespace(const std::string& name);

  // Creates a veth pair between two namespaces of this topology (short names
  // as given to AddNamespace), brings both ends up and assigns the addresses
  // (CIDR, e.g. "10.200.1.1/24" or "fd00:1::1/64"; empty for none).
  absl::Status AddVeth(const std::string& ns_a, const std::string& if_a,
                       const std::string& addr_a, const std::string& ns_b,
                       const std::string& if_b, const std::string& addr_b);

  // Turns off checksum offloads on an interface (ethtool -K tx off rx off):
  // a veth otherwise hands half-computed checksums to an af_packet reader,
  // which a DPDK data plane rightly refuses.
  absl::Status DisableChecksumOffload(const std::string& ns, const std::string& ifname);

  // Full name of a namespace of this topology ("sluice-<pid>-<name>").
  std::string FullName(const std::string& name) const;

  // Runs argv inside namespace `name` and waits for it (ip netns exec).
  absl::Status Run(const std::string& name, const std::vector<std::string>& argv);

  // Starts argv inside namespace `name` without waiting; returns its pid.
  absl::StatusOr<pid_t> Spawn(const std::string& name,
                              const std::vector<std::string>& argv);

  // Opens a socket that lives in namespace `name` (the calling process stays
  // in its own namespace).
  absl::StatusOr<int> Socket(const std::string& name, int domain, int type,
                             int protocol = 0);

  // Deletes every namespace now (the destructor calls this too).
  void Destroy();

 private:
  Topology() = default;
  std::vector<std::string> namespaces_;  // full names, in creation order
};

// Deletes namespaces named "sluice-<pid>-*" whose process is gone.
void SweepStaleNamespaces();

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_NETNS_H_
