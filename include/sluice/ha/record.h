// What Redis holds of a session (docs/ha.md, "Record format"): the session
// record (legs, addresses, ports, suites, the keys sealed) and its streams
// checkpoint (ROC and indices per SSRC, the peers now), each a versioned
// JSON document, with their codecs. A record never holds a key in clear.
//
// Control thread. Decoding takes any bytes: a damaged or foreign record is
// an error, never a crash.
#ifndef SLUICE_HA_RECORD_H_
#define SLUICE_HA_RECORD_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/control/operations.h"
#include "sluice/control/session_observer.h"
#include "sluice/crypto/session_key.h"
#include "sluice/packet/address.h"

namespace sluice::ha {

inline constexpr int kRecordVersion = 1;

// One direction's protection: plain, pass-through, or an SDES attribute
// value sealed (Sealer) with the session name as associated data.
struct SealedCrypto {
  enum class Kind : uint8_t { kPlain, kSdes, kPassthrough };
  Kind kind = Kind::kPlain;
  std::string sealed;  // kSdes: the sealed bytes
};

// A WebRTC leg's ICE-lite state: Sluice's credentials, which the peer's
// consent checks go on using, and the peer's; each password sealed to
// "<session>/<leg>/ice" or ".../ice-peer".
struct IceRecord {
  std::string ufrag;            // Sluice's (its SDP shows it)
  std::string pwd_sealed;
  std::string peer_ufrag;       // empty: the peer's not known yet
  std::string peer_pwd_sealed;  // empty likewise
};

struct LegRecord {
  std::string name;
  std::string interface;
  uint8_t family = 4;
  uint16_t local_port = 0;
  std::optional<packet::Endpoint> remote;
  bool strict_source = false;
  bool await_answer = false;
  control::RtcpMode rtcp = control::RtcpMode::kSeparate;
  control::RocOnRekey roc_on_rekey = control::RocOnRekey::kAuto;
  std::optional<crypto::Aes192Kdf> aes192_kdf;
  SealedCrypto rx;
  SealedCrypto tx;
  // A WebRTC leg: the peer's DTLS setup and fingerprints; once the leg is
  // keyed, restored_profile names the negotiated suite and rx and tx hold
  // the keys its handshake exported (as SDES values, sealed as theirs).
  std::optional<control::DtlsSpec> dtls;
  std::optional<IceRecord> ice;
};

struct SessionRecord {
  std::string session;
  std::string key_group;
  bool hold = false;
  std::array<LegRecord, 2> legs;
  // The ng front end's state of the session's call (ng::Handler::
  // ExportSession), sealed with "<session>/ng" as associated data; empty:
  // none (a session of the native protocol). Its own version: kNgVersion.
  std::string ng_sealed;
};

inline constexpr int kNgVersion = 1;

// A checkpoint of both legs' streams, taken at at_unix_ms (wall clock, so
// that another host's restore can bound what happened since).
struct StreamsRecord {
  uint64_t at_unix_ms = 0;
  std::array<control::LegStreams, 2> legs;
};

std::string EncodeSession(const SessionRecord& record);
absl::StatusOr<SessionRecord> DecodeSession(std::string_view text);
std::string EncodeStreams(const StreamsRecord& record);
absl::StatusOr<StreamsRecord> DecodeStreams(std::string_view text);

}  // namespace sluice::ha

#endif  // SLUICE_HA_RECORD_H_
