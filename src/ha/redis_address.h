// Private to src/ha: [ha] redis as hiredis connects to it, and the wall
// clock checkpoints are stamped with. Any thread.
#ifndef SLUICE_SRC_HA_REDIS_ADDRESS_H_
#define SLUICE_SRC_HA_REDIS_ADDRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <hiredis/async.h>

#include "sluice/ha/replicator.h"

namespace sluice::ha {

// "unix:/path", "tcp://IPv4:port" or "tcp://[IPv6]:port" (the
// configuration has checked which).
struct RedisAddress {
  bool unix_socket = false;
  std::string path_or_host;
  int port = 6379;

  static RedisAddress Parse(const std::string& redis) {
    RedisAddress a;
    if (redis.rfind("unix:", 0) == 0) {
      a.unix_socket = true;
      a.path_or_host = redis.substr(5);
      return a;
    }
    const std::string hostport = redis.substr(6);  // after tcp://
    const size_t colon = hostport.rfind(':');
    a.path_or_host = hostport.substr(0, colon);
    if (a.path_or_host.size() >= 2 && a.path_or_host.front() == '[') {  // [v6]
      a.path_or_host = a.path_or_host.substr(1, a.path_or_host.size() - 2);
    }
    if (colon != std::string::npos) a.port = std::atoi(hostport.c_str() + colon + 1);
    return a;
  }
};

// hiredis's event hooks on `ac` keep `wants` as the context waits: the
// control loop's Poll polls its socket for that and drives the context.
inline void AttachIoWants(redisAsyncContext* ac, IoWants* wants) {
  ac->ev.data = wants;
  ac->ev.addRead = [](void* w) { static_cast<IoWants*>(w)->read = true; };
  ac->ev.delRead = [](void* w) { static_cast<IoWants*>(w)->read = false; };
  ac->ev.addWrite = [](void* w) { static_cast<IoWants*>(w)->write = true; };
  ac->ev.delWrite = [](void* w) { static_cast<IoWants*>(w)->write = false; };
  ac->ev.cleanup = [](void* w) { *static_cast<IoWants*>(w) = IoWants{}; };
  wants->write = true;  // until connected, hiredis waits for the socket to be writable
}

// Unix time in ms: checkpoints are compared across restarts and hosts.
inline uint64_t UnixMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Sets the heartbeat (KEYS[1]) to "<owner> <now>" (ARGV[1], ARGV[2]) for
// ARGV[3] ms unless another owner holds it; returns that holder's value, or
// nil when set. One script: no other client runs between the GET and SET.
inline constexpr char kHeartbeatScript[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v and string.sub(v, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. ' ' then return v end "
    "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3]) return false";

}  // namespace sluice::ha

#endif  // SLUICE_SRC_HA_REDIS_ADDRESS_H_
