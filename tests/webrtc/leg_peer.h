// What the WebRTC leg tests share: certificates for Sluice and for the
// browser it talks to, the browser's connectivity checks (RFC 8445 §7.2.2,
// built with the ice library's StunBuilder), and a master key's bytes.
//
// Test thread only. Header-only.
#ifndef SLUICE_TESTS_WEBRTC_LEG_PEER_H_
#define SLUICE_TESTS_WEBRTC_LEG_PEER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/dtls/certificate.h"
#include "sluice/ice/stun.h"
#include "sluice/srtp/master_key.h"

namespace sluice::webrtc::testing {

inline const dtls::Certificate& SluiceCert() {
  static const dtls::Certificate cert = *dtls::Certificate::Generate();
  return cert;
}
inline const dtls::Certificate& BrowserCert() {
  static const dtls::Certificate cert = *dtls::Certificate::Generate();
  return cert;
}

// A check from a controlling browser: USERNAME "<local>:<peer>", PRIORITY,
// ICE-CONTROLLING, USE-CANDIDATE when `nominate`, MESSAGE-INTEGRITY under
// `pwd` (the leg's password), FINGERPRINT.
inline std::vector<uint8_t> BrowserCheck(const std::string& local_ufrag,
                                         const std::string& peer_ufrag, const std::string& pwd,
                                         bool nominate) {
  static uint8_t next_id = 0;
  ice::StunTransactionId tid{};
  tid.fill(++next_id);
  ice::StunBuilder b(ice::kStunBindingMethod, ice::StunClass::kRequest, tid);
  b.AddUsername(local_ufrag + ":" + peer_ufrag);
  b.AddPriority(0x6e7f1eff);
  b.AddIceControlling(0x8877665544332211);
  if (nominate) b.AddUseCandidate();
  b.AddMessageIntegrity(ice::StunKey(pwd));
  b.AddFingerprint();
  return std::move(b).Take();
}

// Key then salt, to compare two keys.
inline std::vector<uint8_t> KeyBytes(const srtp::MasterKey& k) {
  std::vector<uint8_t> b(k.key_bytes().begin(), k.key_bytes().end());
  b.insert(b.end(), k.salt_bytes().begin(), k.salt_bytes().end());
  return b;
}

}  // namespace sluice::webrtc::testing

#endif  // SLUICE_TESTS_WEBRTC_LEG_PEER_H_
