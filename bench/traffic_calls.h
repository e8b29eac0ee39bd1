// The calls `sluice-bench traffic` installs in the real sluiced, as an SBC
// would, over its control socket: sessions of two SRTP legs whose keys are
// all generated here (SDES, RFC 4568), so the generator can protect what it
// sends on leg a and libsrtp2 can check what sluiced sends on leg b; and the
// re-key of every call while media flows (session.update, make-before-break).
//
// Benchmark code. Install runs on the main thread; Rekey on the thread that
// owns the connection it is given.
#ifndef SLUICE_BENCH_TRAFFIC_CALLS_H_
#define SLUICE_BENCH_TRAFFIC_CALLS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/control/client.h"
#include "sluice/srtp/master_key.h"

namespace sluice::bench {

// The two networks of the memif pair. Phone A sends to sluiced's interface
// "a"; sluiced relays to phone B on interface "b". Call i's phones use port
// kPhonePortBase + 2 * i on their side.
inline constexpr char kTrafficRelayA[] = "10.203.1.1";
inline constexpr char kTrafficPhoneA[] = "10.203.1.2";
inline constexpr char kTrafficRelayB[] = "10.203.2.1";
inline constexpr char kTrafficPhoneB[] = "10.203.2.2";
inline constexpr uint16_t kPhonePortBase = 20000;
inline constexpr size_t kMaxTrafficCalls = 20000;  // phone ports up to 60000

struct TrafficCall {
  uint16_t relay_port_a = 0;  // where phone A sends (leg a's local port)
  srtp::MasterKey send_key;   // leg a rx: phone A protects with it
  srtp::MasterKey verify_key;  // leg b tx: what sluiced sends to phone B with
};

// Creates `count` sessions "traffic-<i>", pipelined on `client`. Fails on the
// first refused create, with sluiced's error.
absl::StatusOr<std::vector<TrafficCall>> InstallCalls(control::Client& client, size_t count);

// A key change, as the generator must learn it: `call`'s leg a rx key (phone A
// sends with it from now on) or leg b tx key (sluiced sends with it from the
// reply on, maybe a little before).
struct KeyChange {
  enum class Leg : uint8_t { kSendA, kVerifyB };
  uint32_t call = 0;
  Leg leg = Leg::kSendA;
  srtp::MasterKey key;
};

struct RekeyResult {
  size_t requests = 0;
  size_t errors = 0;
  double seconds = 0;
  std::string first_error;  // sluiced's error reply; never a key
};

// Re-keys every call: leg b's tx and leg a's rx, each a fresh key, in
// pipelined batches. `publish` hears of a leg b key before its request is
// written (the generator must accept it before sluiced may use it), and of a
// leg a key after sluiced's reply (phone A may not use it sooner).
RekeyResult RekeyCalls(control::Client& client, size_t count,
                       const std::function<void(KeyChange)>& publish);

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_TRAFFIC_CALLS_H_
