// libsrtp2 as the reference peer: one srtp_t holding one direction (a sender
// for ssrc_any_outbound, a receiver for ssrc_any_inbound) of one Sluice suite,
// built from the same srtp::MasterKey values a Sluice Context takes, so tests
// can compare the two byte for byte and pass packets between them.
//
// Test thread only. Not for the data plane: libsrtp keeps streams in a linked
// list and allocates on the first packet of every SSRC.
//
// libsrtp facts the tests rely on (libsrtp 2.5.0):
//  - The SRTCP sender increments its index before use: its first SRTCP packet
//    carries index 1, where RFC 3711 §3.4 (and Sluice) start at 0.
//  - MKI: AES-CM places it between the payload (or SRTCP E||index) and the
//    tag (RFC 3711 §3.1); AES-GCM places it after the tag (and, for SRTCP,
//    after tag and E||index), the cipher text of RFC 7714 §8/§9 including the
//    tag.
//  - With a NULL cipher the SRTCP E flag is always 0, whatever is asked.
//  - Before cisco/libsrtp#733 (2.x after 2.5.0), srtp_unprotect_rtcp_mki
//    looks for the MKI one SRTP tag (not SRTCP tag) from the end, so SRTCP
//    with an MKI fails (bad_mki) when the two tags differ (*_32 suites,
//    AES_CM_128_NULL_AUTH). The peer works around it: its SRTCP goes through
//    a second srtp_t whose SRTP policy is the SRTCP one.
//  - Before cisco/libsrtp#765/#770 (2025), AES-192 session keys come from
//    the AES-256 PRF over key||salt||zeros, not RFC 6188's AES-192 PRF;
//    Aes192KdfFollowsRfc6188() tells which libsrtp is linked.
#ifndef SLUICE_TESTS_TESTING_LIBSRTP_PEER_H_
#define SLUICE_TESTS_TESTING_LIBSRTP_PEER_H_

#include <srtp2/srtp.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/master_key.h"

namespace sluice::testing {

class LibsrtpPeer {
 public:
  enum class Role : uint8_t { kSender, kReceiver };

  struct Options {
    // libsrtp's SRTP replay window (64 to 32767); its SRTCP window is 128.
    uint32_t replay_window = 128;
    // False: SRTCP authenticated but not encrypted (E = 0, RFC 3711 §3.4).
    bool encrypt_srtcp = true;
    // Non-zero: a stream for this SSRC only, made at once (so SetRoc can
    // place it before its first packet); 0: any SSRC.
    uint32_t ssrc = 0;
  };

  // srtp_init(), once per process.
  static void Init();

  // The libsrtp crypto policies for a Sluice suite (see libsrtp_peer.cc for
  // the mapping).
  static void SetPolicies(crypto::Suite suite, bool encrypt_srtcp, srtp_crypto_policy_t* rtp,
                          srtp_crypto_policy_t* rtcp);

  // Whether the linked libsrtp derives AES-192 session keys as RFC 6188
  // §7.4 says (checked once, against the RFC's vector).
  static bool Aes192KdfFollowsRfc6188();

  // keys: 1 to 16 master keys of one suite; with more than one (or any MKI),
  // every key carries an MKI of the same length. Key copies handed to libsrtp
  // are wiped before this returns.
  static absl::StatusOr<std::unique_ptr<LibsrtpPeer>> Create(Role role,
                                                             std::span<const srtp::MasterKey> keys,
                                                             const Options& options);

  LibsrtpPeer(const LibsrtpPeer&) = delete;
  LibsrtpPeer& operator=(const LibsrtpPeer&) = delete;
  ~LibsrtpPeer();

  // Which master key (by position in `keys`) protect uses when MKIs are on.
  void SetActiveKey(int index) { active_ = index; }

  // In place: on srtp_err_status_ok the vector holds the protected (or
  // unprotected) packet; on error it keeps its original length, its bytes
  // unspecified.
  srtp_err_status_t ProtectRtp(std::vector<uint8_t>& packet);
  srtp_err_status_t UnprotectRtp(std::vector<uint8_t>& packet);
  srtp_err_status_t ProtectRtcp(std::vector<uint8_t>& packet);
  srtp_err_status_t UnprotectRtcp(std::vector<uint8_t>& packet);

  // srtp_set_stream_roc: the rollover counter of the stream for `ssrc`.
  srtp_err_status_t SetRoc(uint32_t ssrc, uint32_t roc) {
    return srtp_set_stream_roc(session_, ssrc, roc);
  }

  crypto::Suite suite() const { return suite_; }
  bool uses_mki() const { return use_mki_; }

 private:
  LibsrtpPeer() = default;
  srtp_t rtcp_session() const { return rtcp_session_ != nullptr ? rtcp_session_ : session_; }

  srtp_t session_ = nullptr;       // SRTP, and SRTCP unless rtcp_session_
  srtp_t rtcp_session_ = nullptr;  // SRTCP when cisco/libsrtp#733 bites
  crypto::Suite suite_ = crypto::Suite::kAesCm128HmacSha1_80;
  bool use_mki_ = false;
  int active_ = 0;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_LIBSRTP_PEER_H_
