#include "measure.h"

#include <time.h>

#include <chrono>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sluice::bench {
namespace {

// Bursts between clock reads. Reading the thread CPU clock is a system call
// (a few hundred ns in a VM); 64 bursts of 32 packets take at least 50 us.
constexpr int kBurstsPerClockRead = 64;

// The thread's CPU time and the steady clock, read together.
struct Instant {
  int64_t cpu_ns;
  std::chrono::steady_clock::time_point wall;

  static Instant Now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return {int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec, std::chrono::steady_clock::now()};
  }
};

}  // namespace

absl::StatusOr<Measurement> Measure(BurstLoop& loop, double seconds) {
  const size_t burst = loop.burst();
  const int64_t budget_ns = static_cast<int64_t>(seconds * 1e9);
  int64_t cpu_ns = 0;
  std::chrono::steady_clock::duration wall{0};
  uint64_t bursts = 0;
  Instant start = Instant::Now();
  for (;;) {
    for (int i = 0; i < kBurstsPerClockRead; ++i) {
      if (loop.NeedsRefill()) {
        const Instant pause = Instant::Now();
        cpu_ns += pause.cpu_ns - start.cpu_ns;
        wall += pause.wall - start.wall;
        loop.Refill();
        start = Instant::Now();
      }
      const size_t ok = loop.Step();
      if (ok != burst) {
        return absl::InternalError(absl::StrCat(ok, " of ", burst,
                                                " packets in a burst came out right: ",
                                                loop.FailureDetail()));
      }
    }
    bursts += kBurstsPerClockRead;
    const Instant now = Instant::Now();
    if (cpu_ns + (now.cpu_ns - start.cpu_ns) >= budget_ns) {
      cpu_ns += now.cpu_ns - start.cpu_ns;
      wall += now.wall - start.wall;
      break;
    }
  }
  Measurement m;
  m.packets = bursts * burst;
  m.cpu_seconds = static_cast<double>(cpu_ns) * 1e-9;
  m.wall_seconds = std::chrono::duration<double>(wall).count();
  return m;
}

}  // namespace sluice::bench
