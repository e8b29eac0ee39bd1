// Start-up restore (docs/ha.md): every session the instance's Redis keys
// hold is unsealed and created again on its own ports, its streams resuming
// from their checkpoint (the send side's SRTCP index, and the SRTP index of
// a sender relayed from plain RTP, moved past whatever may have been sent
// since), before sluiced answers its control socket.
//
// Control thread, at start-up; blocks on Redis for at most [ha]
// restore_timeout_ms per request.
#ifndef SLUICE_HA_RESTORE_H_
#define SLUICE_HA_RESTORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/config/config.h"
#include "sluice/control/operations.h"
#include "sluice/ha/record.h"
#include "sluice/ha/sealer.h"

namespace sluice::ha {

// The create request that brings a record back: keys unsealed (the request
// wipes them), local ports as they were, streams from the checkpoint with
// each sender's SRTCP index advanced by the checkpoint rule, and the SRTP
// index of each sender relayed from a plain source too (its SEQ shifted). FailedPrecondition
// when a key is sealed under another KEK; DataLoss when damaged.
absl::StatusOr<control::CreateRequest> RequestFromRecord(const SessionRecord& record,
                                                         const StreamsRecord& streams,
                                                         const Sealer& sealer,
                                                         const config::HaConfig& config,
                                                         uint64_t now_unix_ms);

// One key's fields as restore checks them before it creates the session
// (and a standby as it mirrors them): both present and decoded, named for
// their key, on interfaces this sluiced has, keys unsealed. DataLoss:
// damaged; NotFound: an unknown interface; FailedPrecondition: sealed under
// another KEK.
absl::StatusOr<control::CreateRequest> CheckRecord(
    const std::string& key, const std::optional<std::string>& record_text,
    const std::optional<std::string>& streams_text, const config::HaConfig& config,
    const Sealer& sealer, const std::function<bool(const std::string&)>& interface_known,
    uint64_t now_unix_ms);

// How far a restored sender's SRTCP index moves past its checkpoint: at
// most max_rtcp_pps packets a second since at_unix_ms, plus one checkpoint
// interval (clock skew between hosts), plus one.
uint32_t SrtcpSkip(const config::HaConfig& config, uint64_t at_unix_ms, uint64_t now_unix_ms);

// The same bound for a restored sender's SRTP index, at max_rtp_pps: how
// far the send window of a stream relayed from a plain source moves past
// its checkpoint, and how much its SEQ shift grows (docs/ha.md, rule 2).
uint64_t RtpSkip(const config::HaConfig& config, uint64_t at_unix_ms, uint64_t now_unix_ms);

// The ng front end's part of a restore (docs/ha.md, "ng call state"):
// `check` says whether a record's unsealed ng state is good, before its
// session is created (a bad one refuses the record as corrupt); `adopt`
// takes it once the session is. Empty: records' ng state is ignored.
struct NgRestore {
  std::function<absl::Status(const std::string& session, std::string_view state)> check;
  std::function<absl::Status(std::string_view state, const control::CreateRequest& create)> adopt;
};

// Restores every session under the instance's prefix through `ops`,
// counting what it refused in `counts` (corrupt or truncated records,
// unknown interfaces, creates that failed) and logging each refusal by key
// (never a key's bytes). An error (Redis unreachable, a wrong KEK) means
// sluiced must not start.
absl::Status Restore(const config::HaConfig& config, const Sealer& sealer,
                     control::Operations& ops,
                     const std::function<bool(const std::string&)>& interface_known,
                     control::HaStats& counts, const std::function<void(std::string_view)>& log,
                     const NgRestore& ng = {});

// The heartbeat taken for `owner`: only if absent (automatic promotion,
// SET NX), only if absent or already ours (an active starting), or
// whatever it held (an operator's promotion). FailedPrecondition, naming
// the holder, when another instance holds it; Unavailable when Redis cannot
// be reached within restore_timeout_ms. Blocks.
enum class TakeIf { kAbsent, kAbsentOrOurs, kAlways };
absl::Status TakeHeartbeat(const config::HaConfig& config, const std::string& owner, TakeIf when);

// This process's name in the heartbeat: the host's name and the control
// socket, stable across restarts of one sluiced, distinct between two.
std::string HeartbeatOwner(const std::string& control_socket);

}  // namespace sluice::ha

#endif  // SLUICE_HA_RESTORE_H_
