// The control protocol's codec: newline-delimited JSON, one request object
// per line in, one response object per line out (docs/control-protocol.md).
// DecodeRequest checks the shape of a request strictly and names the field
// that is wrong; HandleLine decodes, calls Operations and encodes the reply.
//
// Control thread. Never throws, on any input. Error messages name fields,
// never their values where a value could be key material; the JSON values
// the codec builds wipe their memory when freed.
#ifndef SLUICE_CONTROL_PROTOCOL_H_
#define SLUICE_CONTROL_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/control/operations.h"
#include "sluice/memory/wiping_allocator.h"
#include "sluice/metrics/request_metrics.h"

namespace sluice::control {

// A JSON value whose strings and containers are wiped when freed. Objects
// keep their insertion order, so replies read "id", "ok", then the body.
using WipedString = std::basic_string<char, std::char_traits<char>, memory::WipingAllocator<char>>;
using Json = nlohmann::basic_json<nlohmann::ordered_map, std::vector, WipedString, bool,
                                  int64_t, uint64_t, double, memory::WipingAllocator>;

// A line's longest length, not counting its '\n'. Longer lines are refused
// with invalid_request.
inline constexpr size_t kMaxLineBytes = 64 * 1024;
inline constexpr size_t kMaxSessionNameBytes = 128;
inline constexpr size_t kMaxLegNameBytes = 64;
inline constexpr size_t kMaxInterfaceNameBytes = 64;
// A DTLS leg's peer fingerprints (a=fingerprint values): at most this many,
// each at most this long (sha-512 in hex with colons is 191 characters).
inline constexpr size_t kMaxFingerprints = 8;
inline constexpr size_t kMaxFingerprintBytes = 256;
inline constexpr uint64_t kDefaultListLimit = 100;
inline constexpr uint64_t kMaxListLimit = 1000;

enum class ErrorCode : uint8_t {
  kParseError,         // not JSON, or not a JSON object
  kInvalidRequest,     // no usable id or op, unknown op or field, line too long
  kInvalidArgument,    // a field's value is wrong
  kNotFound,           // no such session or leg
  kAlreadyExists,      // session name taken
  kKeyReuse,           // a key already used in this session
  kResourceExhausted,  // a limit: sessions, ports, connections
  kEncryptionRequired, // below [media] require_encryption
  kFailedPrecondition, // not in this instance's state (an HA standby, ha.rekek's KEKs)
  kInternal,           // anything else
};

// "parse_error", "invalid_request", ...
std::string_view ErrorCodeName(ErrorCode code) noexcept;

// The protocol code for a status: the codec's own codes ride in a payload;
// Operations' codes map as operations.h says.
ErrorCode ErrorCodeFromStatus(const absl::Status& status);

// The status's message as the client sees it (without a "key_reuse: " prefix).
std::string ErrorMessageFromStatus(const absl::Status& status);

// Decoded requests, one type per operation.
struct PingRequest {};
struct DeleteRequest {
  std::string session;
};
struct GetRequest {
  std::string session;
};
struct ListRequest {
  uint64_t offset = 0;
  uint64_t limit = kDefaultListLimit;  // 0..kMaxListLimit
};
struct StatsRequest {};
struct HaRekekRequest {};  // ha.rekek (docs/ha.md)
struct HaPromoteRequest {};  // ha.promote (docs/ha.md)

using RequestPayload = std::variant<PingRequest, CreateRequest, UpdateRequest, DeleteRequest,
                                    GetRequest, ListRequest, StatsRequest, HaRekekRequest,
                                    HaPromoteRequest>;

struct Request {
  Json id;         // any JSON scalar, echoed verbatim
  std::string op;  // "ping", "session.create", ...
  RequestPayload payload;
};

// Decodes one line (without its '\n'). On failure the status carries the
// protocol code (ErrorCodeFromStatus) and a message naming the field, and
// `*id`, when given, holds the request's id if it could be read (else null).
absl::StatusOr<Request> DecodeRequest(absl::string_view line, Json* id = nullptr);

// One response line: compact JSON and '\n'. EncodeOk puts the body's fields
// after "id" and "ok" (body must be an object or null).
std::string EncodeOk(const Json& id, const Json& body);
std::string EncodeError(const Json& id, ErrorCode code, absl::string_view message);

// Reply bodies. A leg's "tx": {"crypto": ...} appears only with
// `with_tx_crypto` (create and update replies) and only when LegInfo::tx_crypto
// is set.
Json EncodeSessionInfo(const SessionInfo& info, bool with_tx_crypto);
Json EncodeListResult(const ListResult& result);
Json EncodePing(absl::string_view version, uint32_t workers);

// Counters of a control server. HandleLine counts requests and errors into
// them; the server keeps the connection counts. `stats` reports them under
// "control".
struct ControlCounters {
  uint64_t connections_open = 0;
  uint64_t connections_accepted = 0;
  uint64_t connections_refused_limit = 0;        // over max_connections
  uint64_t connections_refused_credentials = 0;  // SO_PEERCRED check failed
  uint64_t requests = 0;
  uint64_t errors = 0;  // error replies, of any code
  uint64_t lines_too_long = 0;
  // The TLS listener ([control.tls]), when there is one.
  bool tls = false;
  uint64_t tls_connections_accepted = 0;  // handshakes completed, client allowed
  uint64_t tls_handshakes_failed = 0;     // refused certificates, versions, suites; not TLS
  uint64_t tls_handshake_timeouts = 0;
  uint64_t tls_idle_timeouts = 0;         // served clients closed after idle_timeout_ms
  int64_t tls_certificate_not_after = 0;  // the server certificate's expiry, Unix seconds
  std::string tls_certificate_warning;    // set within 30 days of that
  // Requests, error replies and latency by front end (the Unix socket, TLS),
  // for the metrics endpoint.
  metrics::RequestMetrics native;
  metrics::RequestMetrics over_tls;
};

Json EncodeStats(const Stats& stats, const ControlCounters* control);

// Decode, call, encode: the reply to one request line (without its '\n'),
// always exactly one line of JSON with "id" and "ok". Never throws. `counters`
// may be null. The reply may carry a generated tx key: WipeString it once
// sent.
std::string HandleLine(Operations& operations, absl::string_view line,
                       ControlCounters* counters = nullptr);

}  // namespace sluice::control

#endif  // SLUICE_CONTROL_PROTOCOL_H_
