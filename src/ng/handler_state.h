// The ng handler's per-call state (handler.h): shared by the handler and
// its replication codec (handler_replication.cc). Control thread only; keys
// in wiping strings.
#ifndef SLUICE_SRC_NG_HANDLER_STATE_H_
#define SLUICE_SRC_NG_HANDLER_STATE_H_

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "sluice/ng/handler.h"
#include "sluice/ng/webrtc_media.h"
#include "sluice/srtp/master_key.h"

namespace sluice::ng {

// One media section of a call: its Sluice session and Sluice's side of it.
struct Handler::Stream {
  std::string session;        // empty: the section was disabled when offered
  packet::Endpoint local[2];  // Sluice's address on leg 0 and leg 1
  bool rtcp_mux[2] = {false, false};
  // What the session manager's key-reuse check holds for this session, as
  // far as ng set the keys: every key used, and each leg's rx and tx key in
  // use (a repeat of one of those is no re-key).
  std::vector<srtp::KeyFingerprint> used_keys;
  std::optional<srtp::KeyFingerprint> in_use[2][2];  // [leg][0 rx, 1 tx]
  // A WebRTC leg (DTLS-SRTP and/or ICE-lite): what its peer's SDP last
  // gave it (a re-offer that repeats it starts no handshake and no ICE
  // restart) and Sluice's side, as the session's last reply showed it.
  struct Transport {
    bool dtls = false, ice = false;
    PeerTransport peer;
    std::optional<WebrtcRewrite> local;
  };
  Transport transport[2];
};

// What an offer left for its answer to settle, per media section.
struct Handler::OfferedMedia {
  bool enabled = false;
  std::string offer_proto;             // what the offerer asked for (the answer says it back)
  bool offerer_srtp = false;
  uint32_t accepted_tag = 0;           // the offerer's a=crypto Sluice takes
  String offerer_rx;                   // its value: Sluice's receive key on the offerer's leg
  String offerer_tx;                   // Sluice's new send key toward the offerer
  bool answerer_srtp = false;
  std::vector<SdpCrypto> offered;      // Sluice's send keys toward the answerer, by tag
  std::optional<packet::Endpoint> offerer_remote;
  bool on_hold = false;  // a=sendonly, a=recvonly or a=inactive (Sdp::OnHold)
  // The offerer's rollover counter rule on a re-key (SDES-ROC-reset/-keep).
  std::optional<control::RocOnRekey> offerer_roc;
  // WebRTC: the offerer's DTLS-SRTP and ICE (from its SDP), and what Sluice
  // offers the answerer (from the flags): DTLS with this a=setup ("" lets
  // the answer pick), ICE-lite.
  bool offerer_dtls = false, offerer_ice = false;
  PeerTransport offerer_transport;
  bool answerer_dtls = false, answerer_ice = false;
  std::string answerer_setup;
  std::string answer_proto;             // the transport written toward the answerer
  std::optional<std::string> offer_mid;  // the answer to the offerer names it (RFC 8843 §9.2)
  std::string generated_mid;             // generate-mid, toward the answerer
};

// One dialog of a call: the offerer's side and one branch toward the
// callee, with its own sessions (and so its own ports on both legs). A
// call has one branch per via-branch it was offered on; answers from
// several to-tags on one branch (a fork behind one offer) share its legs,
// and the latest answer is where its media goes.
struct Handler::Branch {
  std::string via_branch;
  std::string tags[2];  // leg 0: the first offerer's from-tag; leg 1: the answerer now
  std::vector<std::string> aliases;  // to-tags that answered on this branch before tags[1]
  std::vector<Stream> streams;
  int offerer = 0;  // of the latest offer
  bool pending = false;
  bool gone = false;  // deleted: its sessions are freed, its index stays taken
  uint64_t seq = 0;   // of the record a restore took this branch from
  // The latest offer, kept while answers to it may repeat (a 183 and a 200).
  std::vector<OfferedMedia> offered;
  // Digests of the latest offer and answer as received, and the replies
  // sent: a repeat gets the same reply and changes nothing.
  std::string offer_digest, answer_digest;
  String offer_reply, answer_reply;

  bool HasTag(const std::string& tag) const {
    return !tag.empty() && (tags[0] == tag || tags[1] == tag ||
                            std::find(aliases.begin(), aliases.end(), tag) != aliases.end());
  }
};

struct Handler::Call {
  std::vector<Branch> branches;  // [0]: the first offer's
  bool answered = false;  // once: a call never answered expires
  uint64_t offered_at_ms = 0;
  // Bumped by each change: a restore takes the call's (and each branch's)
  // state from the latest of its sessions' records.
  uint64_t seq = 0;

  size_t live() const {
    return static_cast<size_t>(std::count_if(branches.begin(), branches.end(),
                                             [](const Branch& b) { return !b.gone; }));
  }
};
}  // namespace sluice::ng

#endif  // SLUICE_SRC_NG_HANDLER_STATE_H_
