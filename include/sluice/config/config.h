// sluiced's configuration: a TOML file read once at start-up into a validated
// Config. Unknown tables and keys, wrong types and bad values are refused with
// a message that names the file, the line and the full key path
// ("sluice.toml:14: interface[1].ipv4: not an address/prefix: \"10.0.0.300/24\"").
// A key that is absent takes the default written below.
//
// Control thread, at start-up. configs/ holds commented examples.
#ifndef SLUICE_CONFIG_CONFIG_H_
#define SLUICE_CONFIG_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/crypto/backend_kind.h"
#include "sluice/crypto/session_key.h"
#include "sluice/memory/hot_arena.h"
#include "sluice/packet/address.h"

namespace sluice::config {

// [[interface]], one per DPDK port. At least one; names and devices unique.
struct InterfaceConfig {
  std::string name;    // what legs refer to ("a", "core", "access"): 1..64 of [A-Za-z0-9_.-]
  std::string device;  // DPDK port by device name: vdev name or PCI address
  // At least one of the two. "10.200.1.1/24": the interface's own unicast
  // address and its subnet. No address may be on two interfaces.
  std::optional<packet::Prefix> ipv4;
  std::optional<packet::Prefix> ipv6;
  // Next hops for peers outside the subnet. gateway is IPv4 and inside ipv4's
  // subnet; gateway6 is IPv6 and inside ipv6's prefix or link-local (fe80::/10,
  // where IPv6 routers normally sit).
  std::optional<packet::IpAddress> gateway;
  std::optional<packet::IpAddress> gateway6;
  uint16_t vlan = 0;             // 802.1Q tag on this interface, 0 = untagged; 0..4094
  uint16_t mtu = 1500;           // 576..9000; at least 1280 with ipv6 (RFC 8200 §5)
  uint16_t rx_queues = 0;        // 0 = one per worker; at most 1024
  uint16_t rx_ring_size = 1024;  // descriptors: a power of two, 64..32768
  uint16_t tx_ring_size = 1024;  // likewise
  // Let the NIC check received IPv4 and UDP checksums and fill in sent ones
  // where it can; false does both in software (for a NIC whose offloads
  // misbehave).
  bool checksum_offload = true;
};

// [workers]
struct WorkersConfig {
  std::vector<unsigned> lcores;  // one poll-mode worker per lcore; non-empty, unique, < 1024
  uint16_t burst = 32;           // packets per RX burst, 1..64
  // A worker with no RCU quiescent report for this long is logged and shown
  // stalled in stats (deleted sessions wait for it); 10..600000.
  uint32_t stall_ms = 1000;
};

// [media]
// [media] require_encryption: which calls create refuses (encryption_audit.h
// says what "encrypted" is).
enum class RequireEncryption : uint8_t {
  kNone,     // any call
  kOneLeg,   // at least one leg encrypted and authenticated
  kAllLegs,  // every leg encrypted and authenticated
};

struct MediaConfig {
  // Legs get an even RTP port p (RTCP on p + 1) with port_min <= p < p + 1 <=
  // port_max. port_min is even, both are >= 1024, port_min < port_max.
  uint16_t port_min = 30000;
  uint16_t port_max = 39999;
  uint32_t replay_window = 128;      // packets, 64..1024, multiple of 64 (RFC 3711 §3.3.2)
  uint32_t rekey_overlap_ms = 2000;  // old rx key still accepted after a re-key; 0..60000
  uint32_t max_ssrcs_per_leg = 4;    // per direction, 1..64
  uint32_t port_reuse_delay_s = 60;  // a freed port is not handed out again sooner; 0..3600
  uint32_t learn_packets = 3;  // authenticated packets from a new source before moving; 1..1000
  // A stream slot idle this long goes to a new SSRC once all are taken; 1000..600000.
  uint32_t ssrc_reuse_idle_ms = 10000;
  // A leg with a plain or unauthenticated receive side learns its peer from
  // traffic before its call is answered (ng); false: only after.
  bool learn_before_answer = false;
  // A master key that has carried this percentage of its packet limit
  // (RFC 3711 §9.2, or its SDES lifetime) is reported for re-keying; 1..99.
  uint32_t key_limit_warn_percent = 90;
  // AES-192 session key derivation of a leg that does not choose one:
  // RFC 6188, or as libsrtp2 before its AES-192 fix ("libsrtp-legacy").
  crypto::Aes192Kdf aes192_kdf = crypto::Aes192Kdf::kRfc6188;
  // Timeouts, as rtpengine's --timeout, --silent-timeout, --final-timeout
  // (seconds, 0 = off): a session is deleted when no packet is relayed in
  // either direction for timeout_s, when one direction relays nothing for
  // silent_timeout_s, and final_timeout_s after creation. The clocks
  // start at the answer or the first relayed packet, and restart on every
  // update. 0..2592000 each.
  uint32_t timeout_s = 60;
  uint32_t silent_timeout_s = 3600;
  uint32_t final_timeout_s = 0;
  RequireEncryption require_encryption = RequireEncryption::kNone;
};

// [control.tls]: the control protocol over mutual TLS on TCP
// (docs/control-protocol.md). Every key but handshake_timeout_ms is required.
struct ControlTlsConfig {
  packet::Endpoint listen;       // "127.0.0.1:7443", "[::]:7443": an IP address and a port
  std::string cert;              // PEM: the server certificate, then its intermediates
  std::string key;               // PEM private key: no access for other users, no group write
  std::string ca;                // PEM: the CA(s) client certificates must chain to
  std::string server_name;       // must be a subjectAltName of `cert`; clients check it
  std::vector<std::string> allowed_clients;  // client certificate CNs or SANs let in; non-empty
  uint32_t handshake_timeout_ms = 5000;      // 100..60000
  // TLS clients at once (handshakes included), apart from the Unix socket's
  // [control] max_connections; 1..65536.
  uint32_t max_connections = 64;
  // A served client silent this long is closed; 0 (never) or 1000..86400000.
  uint32_t idle_timeout_ms = 300000;
};

// [control]
struct ControlConfig {
  // Unix socket: an absolute path that fits sockaddr_un (at most 107 bytes).
  std::string socket = "/run/sluice/control.sock";
  std::string group;                // owning group of the socket (empty: root's)
  // Unix socket clients at once, >= 1; more are refused. TLS clients count
  // against [control.tls] max_connections instead.
  uint32_t max_connections = 1024;
  std::optional<ControlTlsConfig> tls;  // [control.tls]; none: the Unix socket only
};

// [crypto]
struct CryptoConfig {
  crypto::BackendKind backend = crypto::BackendKind::kAuto;  // "auto" | "ipsec-mb" | "openssl"
};

// [limits]
struct LimitsConfig {
  uint32_t max_sessions = 100000;  // >= 1; session.create beyond it: resource_exhausted
  uint32_t mbufs = 0;              // 0 = sized from rings, workers and max_sessions
  uint32_t leg_max_pps = 0;        // packets per second per leg and direction, 0 = unlimited
  // Session state's hugepages: "auto" takes the host's reserved pool
  // (nr_hugepages) while it has free pages, then transparent ones;
  // "transparent" leaves the reserved pool to DPDK's heap.
  memory::HugepageSource session_hugepages = memory::HugepageSource::kAuto;
};

// [ng]: rtpengine's ng control protocol over UDP (docs/ng-protocol.md). The
// table being present turns the listener on.
struct NgConfig {
  packet::Endpoint listen = packet::Endpoint::Parse("127.0.0.1:2223").value();  // UDP
  std::string interface;               // where legs go by default; empty: the first [[interface]]
  uint32_t reply_cache_entries = 4096;  // replies kept for retransmissions, 16..1000000
  uint32_t reply_cache_ms = 30000;      // and for how long, 1000..600000
  // Who may send ng over UDP: addresses or prefixes; others get no reply.
  // Default loopback; a listen address that is not loopback needs it set.
  std::vector<packet::Prefix> allowed_sources = {packet::Prefix::Parse("127.0.0.0/8").value(),
                                                 packet::Prefix::Parse("::1/128").value()};
  std::string socket;        // Unix stream socket (Kamailio's "unix:"), mode 0660; empty: none
  std::string socket_group;  // its owning group (empty: the daemon's)
  bool allow_null_auth = false;      // accept/offer SDES suites without SRTP authentication
  uint32_t max_calls = 0;            // ng calls at once, >= 1; 0 (unset): [limits] max_sessions
  uint32_t offer_timeout_ms = 3600000;  // a never-answered call is deleted (rtpengine's default), 1000..86400000
  uint32_t delete_delay_ms = 30000;  // a deleted call lingers this long unless delete-delay says (rtpengine's default), 0..86400000
};

// [metrics]: the Prometheus endpoint (docs/metrics.md). The table being
// present turns it on.
struct MetricsConfig {
  packet::Endpoint listen;    // TCP address and port serving GET /metrics
  bool allow_remote = false;  // required for a listen address that is not loopback
};

// [webrtc]: WebRTC legs (DTLS-SRTP keys and ICE-lite on the media port).
struct WebRtcConfig {
  // sluiced's DTLS certificate and its key (PEM files), both or neither;
  // neither: an ECDSA P-256 certificate generated at start (a new one, and
  // a new fingerprint, at each start).
  std::string certificate;
  std::string private_key;
  // Offered (client) or chosen (server) in this order: OpenSSL's names.
  std::vector<std::string> srtp_profiles = {"SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_32",
                                            "SRTP_AEAD_AES_128_GCM", "SRTP_AEAD_AES_256_GCM"};
  uint32_t mtu = 1200;                    // largest DTLS datagram (UDP payload), 256..4096
  uint32_t handshake_timeout_ms = 20000;  // a leg not keyed by then has failed, 1000..600000
  uint32_t consent_timeout_ms = 30000;    // RFC 7675: no authenticated check this long stops sending, 5000..600000
  // STUN and DTLS datagrams a second a leg's port hands to the handshake
  // thread, bursts of a tenth of a second (64 at least, 16 of which only
  // the leg's ICE-selected peer's address may use); 0 = unlimited.
  uint32_t handshake_max_pps = 200;
};

// [security]
struct SecurityConfig {
  // Core dumps would hold every key in memory: refused (PR_SET_DUMPABLE 0,
  // RLIMIT_CORE 0) unless this is true.
  bool core_dumps = false;
  // Once ports, sockets and listeners are up, sluiced becomes this user (and
  // `group`, or the user's primary group) and keeps no privilege. Empty: it
  // stays who started it. Checked at load: the user and group must exist.
  std::string user;
  std::string group;
  // A master key is refused (key_reuse) while any session uses it and for
  // this long after; 0..2592000 (30 days).
  uint32_t key_reuse_window_s = 86400;
  // Key memory is locked (mlock) so it never reaches swap. When the lock
  // limit (RLIMIT_MEMLOCK) cannot be raised enough, sluiced refuses to start
  // unless this is true (then it warns and runs with keys that may swap).
  bool allow_unlocked_keys = false;
};

// [ha]: session state replicated to Redis, keys sealed under a KEK
// (docs/ha.md). The table being present turns replication on.
// RFC 3711 §3.3.1: a receiver estimates the ROC right only across a SEQ
// jump below 2^15; a restored sender's skip over two checkpoint intervals
// stays within half of that, leaving the rest to the outage itself.
inline constexpr uint32_t kMaxRtpSkipAtLoad = 1u << 14;

struct HaConfig {
  std::string redis;      // "unix:/path/redis.sock" or "tcp://host:port"
  std::string password;   // Redis AUTH; empty: none
  std::string instance = "sluice";  // key prefix sluice:<instance>:, [A-Za-z0-9_.-]{1,64}
  std::string kek_file;   // 32 bytes, mode 0600 or stricter (checked at start)
  // A KEK being rotated out: records it sealed are restored (and sealed
  // again under kek_file); empty: none.
  std::string previous_kek_file;
  uint32_t checkpoint_ms = 1000;    // streams' ROC/index sampled this often, 50..60000
  // What a restored sender's SRTCP index skips: this many packets a second
  // since the last checkpoint (docs/ha.md, the checkpoint rule), 1..1000000.
  uint32_t max_rtcp_pps = 1000;
  // What a restored plain-sourced sender's SRTP index skips: this many
  // packets a second per stream since the last checkpoint, 1..100000, with
  // max_rtp_pps × 2 × checkpoint_ms / 1000 at most kMaxRtpSkipAtLoad.
  uint32_t max_rtp_pps = 1000;
  uint32_t restore_timeout_ms = 5000;  // start-up restore's Redis timeout, 100..600000
  // role = "standby": mirrors the instance's sessions without relaying until
  // promoted (docs/ha.md, "Standby").
  bool standby = false;
  // The active writes sluice:<instance>:heartbeat every heartbeat_ms
  // (50..10000), expiring heartbeat_ttl_ms later (150..60000, at least
  // 3 x heartbeat_ms; default 3 x heartbeat_ms, at least 3000).
  uint32_t heartbeat_ms = 1000;
  uint32_t heartbeat_ttl_ms = 3000;
  // A standby promotes itself once the heartbeat has been absent this long
  // (0..600000), unless auto_promote is false.
  bool auto_promote = true;
  uint32_t promote_after_ms = 500;
};

struct Config {
  std::vector<std::string> eal_args;  // [eal] args: passed to rte_eal_init after argv[0]
  std::vector<InterfaceConfig> interfaces;
  WorkersConfig workers;
  MediaConfig media;
  ControlConfig control;
  CryptoConfig crypto;
  LimitsConfig limits;
  std::optional<NgConfig> ng;  // [ng]; none: no ng listener
  std::optional<MetricsConfig> metrics;  // [metrics]; none: no metrics endpoint
  WebRtcConfig webrtc;
  SecurityConfig security;
  std::optional<HaConfig> ha;  // [ha]; none: no replication
  std::string source;  // where it came from, for messages

  // The interface called `name`, or null.
  const InterfaceConfig* FindInterface(absl::string_view name) const;
};

// Larger input is refused before parsing: a configuration is a few KiB. So
// are lines over 4 KiB, nesting deeper than 16 levels and invalid UTF-8
// (toml11's limits; see config.cc).
inline constexpr size_t kMaxConfigBytes = size_t{256} << 10;

// Parses and validates TOML text; `origin` names it in messages. Never throws:
// TOML syntax errors come back as InvalidArgument with the line and column.
absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, absl::string_view origin);

// Reads and parses a file. NotFound when it does not exist.
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

}  // namespace sluice::config

#endif  // SLUICE_CONFIG_CONFIG_H_
