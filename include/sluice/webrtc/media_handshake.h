// What a WebRTC leg's handshake code (an ICE-lite agent, a DTLS-SRTP
// endpoint) plugs into: the datagrams that arrive for the leg, its timers,
// and a Sender for what it answers.
//
// Handshake thread only: HandshakeThread calls a MediaHandshake's methods on
// its own thread, one call at a time, never from a worker. An implementation
// may allocate, lock and call OpenSSL there, but not wait long: every other
// leg's handshake waits behind it. What it tells the control thread (a leg
// keyed, a peer selected) goes through HandshakeThread::PostToControl.
#ifndef SLUICE_WEBRTC_MEDIA_HANDSHAKE_H_
#define SLUICE_WEBRTC_MEDIA_HANDSHAKE_H_

#include <cstdint>
#include <span>

#include "sluice/packet/address.h"
#include "sluice/packet/classify.h"

namespace sluice::webrtc {

// Sends UDP datagrams from one leg's local address and port. Passed to a
// MediaHandshake's callbacks; valid only during the call it was passed to.
class Sender {
 public:
  virtual ~Sender() = default;

  // Queues `payload` as one datagram from the leg's local endpoint to `to`,
  // in a frame built from what the last frame from `to` to this leg showed
  // (its DPDK port and VLAN; its source MAC becomes the destination MAC, its
  // destination MAC the source). True when queued. Refused, and counted in
  // HandshakeCounters: `to` never sent this leg a frame (an ICE-lite agent
  // answers only addresses that reached it, RFC 8445 §2.5), or it was
  // forgotten (HandshakeThreadOptions::max_remotes_per_leg); the payload
  // does not fit one frame; no mbuf; the TX ring is full.
  virtual bool Send(std::span<const uint8_t> payload, const packet::Endpoint& to) = 0;
};

// One WebRTC leg's handshakes (one per registered local endpoint).
class MediaHandshake {
 public:
  virtual ~MediaHandshake() = default;

  // One STUN or DTLS datagram (kind: PayloadKind::kStun or kDtls, RFC 7983)
  // that arrived at this leg's local endpoint from `from`, through the
  // leg's interface (the worker checked). `payload` (the UDP payload) is
  // valid during the call only. now_ms: the thread's monotonic clock.
  virtual void OnDatagram(packet::PayloadKind kind, std::span<const uint8_t> payload,
                          const packet::Endpoint& from, uint64_t now_ms, Sender& send) = 0;

  // The earliest time (the thread's clock, ms) OnTimer wants to run;
  // UINT64_MAX: none. Asked when the handler is registered, after each of
  // its calls, and after tasks posted to the thread have run: it may change
  // in those, and only there.
  virtual uint64_t NextTimerMs() const = 0;
  // Called once NextTimerMs() <= now_ms (DTLS retransmission, RFC 6347
  // §4.2.4; consent freshness, RFC 7675; a handshake deadline).
  virtual void OnTimer(uint64_t now_ms, Sender& send) = 0;
};

}  // namespace sluice::webrtc

#endif  // SLUICE_WEBRTC_MEDIA_HANDSHAKE_H_
