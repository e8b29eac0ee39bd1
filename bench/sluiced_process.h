// The real sluiced as a benchmark drives it: started from a configuration
// file (in a network namespace when given one), waited for until its control
// socket answers, stopped with SIGTERM; and the temporary directory its
// configuration, socket and log live in.
//
// Benchmark code, main thread only.
#ifndef SLUICE_BENCH_SLUICED_PROCESS_H_
#define SLUICE_BENCH_SLUICED_PROCESS_H_

#include <stdlib.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "netns.h"

namespace sluice::bench {

// A temporary directory, removed with everything in it.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Create() {
    char tmpl[] = "/tmp/sluice-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      return absl::InternalError(std::string("mkdtemp: ") + std::strerror(errno));
    }
    return TempDir(tmpl);
  }
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};


// build*/src/sluiced, beside this build's build*/bench/sluice-bench.
absl::StatusOr<std::string> DefaultSluicedPath();

// The sluiced under test: started with a configuration file, stopped with
// SIGTERM. Killed if still running when destroyed.
class Daemon {
 public:
  // Starts `sluiced` (inside namespace "relay" of `topo` when given), its
  // output in `log`, and waits up to 30 s for its control socket.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const std::string& sluiced,
                                                       const std::string& config,
                                                       const std::string& socket,
                                                       const std::string& log,
                                                       testing::Topology* topo);

  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon();

  // SIGTERM, then up to 10 s for it to exit. OK when it exits with status 0.
  absl::Status Stop();

  pid_t pid() const { return pid_; }

  // The last lines sluiced printed.
  std::string LogTail() const;

 private:
  explicit Daemon(std::string log) : log_(std::move(log)) {}
  pid_t pid_ = -1;
  std::string log_;
};

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_SLUICED_PROCESS_H_
