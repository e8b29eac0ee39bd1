#include "libsrtp_peer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace sluice::testing {
namespace {

using crypto::Suite;

// libsrtp writes at most this much after an RTP packet, and 4 more (E||index)
// after an RTCP packet.
constexpr size_t kRtpTrailroom = SRTP_MAX_TRAILER_LEN;
constexpr size_t kRtcpTrailroom = SRTP_MAX_TRAILER_LEN + 4;

// key||salt, as libsrtp takes a master key.
struct KeyBuffer {
  std::array<uint8_t, 32 + 14> bytes{};
  std::array<uint8_t, srtp::kMaxMkiLen> mki{};
  srtp_master_key_t master{};
  ~KeyBuffer() {
    OPENSSL_cleanse(bytes.data(), bytes.size());
    OPENSSL_cleanse(mki.data(), mki.size());
  }
};

}  // namespace

void LibsrtpPeer::Init() {
  static std::once_flag once;
  std::call_once(once, [] { srtp_init(); });
}

void LibsrtpPeer::SetPolicies(Suite suite, bool encrypt_srtcp, srtp_crypto_policy_t* rtp,
                              srtp_crypto_policy_t* rtcp) {
  switch (suite) {
    case Suite::kAesCm128HmacSha1_80:
      srtp_crypto_policy_set_rtp_default(rtp);
      srtp_crypto_policy_set_rtcp_default(rtcp);
      break;
    // RFC 4568 §6.2.2: the _32 suites shorten the SRTP tag only; SRTCP keeps
    // the 80-bit tag of the same cipher.
    case Suite::kAesCm128HmacSha1_32:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(rtp);
      srtp_crypto_policy_set_rtcp_default(rtcp);
      break;
    case Suite::kAes192CmHmacSha1_80:
      srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(rtp);
      srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(rtcp);
      break;
    case Suite::kAes192CmHmacSha1_32:
      srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32(rtp);
      srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(rtcp);
      break;
    case Suite::kAes256CmHmacSha1_80:
      srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(rtp);
      srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(rtcp);
      break;
    case Suite::kAes256CmHmacSha1_32:
      srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(rtp);
      srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(rtcp);
      break;
    case Suite::kAeadAes128Gcm:
      srtp_crypto_policy_set_aes_gcm_128_16_auth(rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth(rtcp);
      break;
    case Suite::kAeadAes256Gcm:
      srtp_crypto_policy_set_aes_gcm_256_16_auth(rtp);
      srtp_crypto_policy_set_aes_gcm_256_16_auth(rtcp);
      break;
    case Suite::kAeadAes128Gcm8:
      srtp_crypto_policy_set_aes_gcm_128_8_auth(rtp);
      srtp_crypto_policy_set_aes_gcm_128_8_auth(rtcp);
      break;
    case Suite::kAeadAes256Gcm8:
      srtp_crypto_policy_set_aes_gcm_256_8_auth(rtp);
      srtp_crypto_policy_set_aes_gcm_256_8_auth(rtcp);
      break;
    // RFC 3711 §3.4: SRTCP authentication is mandatory, so SRTCP of
    // AES_CM_128_NULL_AUTH uses HMAC-SHA1-80.
    case Suite::kAesCm128NullAuth:
      srtp_crypto_policy_set_aes_cm_128_null_auth(rtp);
      srtp_crypto_policy_set_rtcp_default(rtcp);
      break;
    case Suite::kNullHmacSha1_80:
      srtp_crypto_policy_set_null_cipher_hmac_sha1_80(rtp);
      srtp_crypto_policy_set_null_cipher_hmac_sha1_80(rtcp);
      break;
    case Suite::kNullHmacSha1_32:
      // libsrtp has no setter for a NULL cipher with a 32-bit tag.
      srtp_crypto_policy_set_null_cipher_hmac_sha1_80(rtp);
      rtp->auth_tag_len = 4;
      srtp_crypto_policy_set_null_cipher_hmac_sha1_80(rtcp);
      break;
  }
  if (!encrypt_srtcp) rtcp->sec_serv = sec_serv_auth;
}

absl::StatusOr<std::unique_ptr<LibsrtpPeer>> LibsrtpPeer::Create(
    Role role, std::span<const srtp::MasterKey> keys, const Options& options) {
  Init();
  if (keys.empty() || keys.size() > SRTP_MAX_NUM_MASTER_KEYS) {
    return absl::InvalidArgumentError(absl::StrCat("libsrtp takes 1 to ", SRTP_MAX_NUM_MASTER_KEYS,
                                                   " master keys, not ", keys.size()));
  }
  const Suite suite = keys[0].suite;
  const crypto::SuiteInfo& info = crypto::GetSuiteInfo(suite);
  const uint8_t mki_len = keys[0].mki_len;
  for (const srtp::MasterKey& k : keys) {
    if (k.suite != suite) return absl::InvalidArgumentError("master keys of different suites");
    if (k.mki_len != mki_len) return absl::InvalidArgumentError("MKIs of different lengths");
  }
  if (keys.size() > 1 && mki_len == 0) {
    return absl::InvalidArgumentError("several master keys need an MKI each");
  }

  std::vector<KeyBuffer> buffers(keys.size());
  std::vector<srtp_master_key_t*> key_list;
  for (size_t i = 0; i < keys.size(); ++i) {
    KeyBuffer& b = buffers[i];
    std::copy(keys[i].key.begin(), keys[i].key.begin() + info.key_len, b.bytes.begin());
    std::copy(keys[i].salt.begin(), keys[i].salt.begin() + info.salt_len,
              b.bytes.begin() + info.key_len);
    std::copy(keys[i].mki.begin(), keys[i].mki.end(), b.mki.begin());
    b.master.key = b.bytes.data();
    b.master.mki_id = b.mki.data();
    b.master.mki_size = mki_len;
    key_list.push_back(&b.master);
  }

  srtp_policy_t policy = {};
  SetPolicies(suite, options.encrypt_srtcp, &policy.rtp, &policy.rtcp);
  policy.ssrc.type = role == Role::kSender ? ssrc_any_outbound : ssrc_any_inbound;
  if (options.ssrc != 0) {
    policy.ssrc.type = ssrc_specific;
    policy.ssrc.value = options.ssrc;
  }
  policy.keys = key_list.data();
  policy.num_master_keys = key_list.size();
  policy.window_size = options.replay_window;
  policy.allow_repeat_tx = 0;
  policy.next = nullptr;

  std::unique_ptr<LibsrtpPeer> peer(new LibsrtpPeer());
  peer->suite_ = suite;
  peer->use_mki_ = mki_len > 0;
  // srtp_create derives the session keys and copies the MKIs; it keeps no
  // pointer to `buffers`, which wipe themselves on return.
  srtp_err_status_t status = srtp_create(&peer->session_, &policy);
  if (status != srtp_err_status_ok) peer->session_ = nullptr;
  if (status == srtp_err_status_ok && peer->use_mki_ &&
      policy.rtp.auth_tag_len != policy.rtcp.auth_tag_len) {
    // cisco/libsrtp#733: give SRTCP a session whose SRTP tag is the SRTCP tag. The
    // SRTCP keys (labels 3 to 5) come out the same; its SRTP side is unused.
    srtp_policy_t rtcp_policy = policy;
    rtcp_policy.rtp = policy.rtcp;
    status = srtp_create(&peer->rtcp_session_, &rtcp_policy);
    if (status != srtp_err_status_ok) peer->rtcp_session_ = nullptr;
  }
  if (status != srtp_err_status_ok) {
    return absl::InternalError(absl::StrCat("srtp_create failed with status ",
                                            static_cast<int>(status), " for ",
                                            std::string(info.name)));
  }
  return peer;
}

LibsrtpPeer::~LibsrtpPeer() {
  if (session_ != nullptr) srtp_dealloc(session_);
  if (rtcp_session_ != nullptr) srtp_dealloc(rtcp_session_);
}

bool LibsrtpPeer::Aes192KdfFollowsRfc6188() {
  static const bool follows = [] {
    // RFC 6188 §7.4: master key and salt, and the session encryption key and
    // salt they give.
    static constexpr uint8_t kMasterKey[24] = {0x73, 0xed, 0xc6, 0x6c, 0x4f, 0xa1, 0x57, 0x76,
                                               0xfb, 0x57, 0xf9, 0x50, 0x5c, 0x17, 0x13, 0x65,
                                               0x50, 0xff, 0xda, 0x71, 0xf3, 0xe8, 0xe5, 0xf1};
    static constexpr uint8_t kMasterSalt[14] = {0xc8, 0x52, 0x2f, 0x3a, 0xcd, 0x4c, 0xe8,
                                                0x6d, 0x5a, 0xdd, 0x78, 0xed, 0xbb, 0x11};
    static constexpr uint8_t kCipherKey[24] = {0x31, 0x87, 0x47, 0x36, 0xa8, 0xf1, 0x14, 0x38,
                                               0x70, 0xc2, 0x6e, 0x48, 0x57, 0xd8, 0xa5, 0xb2,
                                               0xc4, 0xa3, 0x54, 0x40, 0x7f, 0xaa, 0xda, 0xbb};
    static constexpr uint8_t kCipherSalt[14] = {0x23, 0x72, 0xb8, 0x2d, 0x63, 0x9b, 0x6d,
                                                0x85, 0x03, 0xa4, 0x7a, 0xdc, 0x0a, 0x6c};
    srtp::MasterKey key;
    key.suite = Suite::kAes192CmHmacSha1_80;
    std::copy(std::begin(kMasterKey), std::end(kMasterKey), key.key.begin());
    std::copy(std::begin(kMasterSalt), std::end(kMasterSalt), key.salt.begin());
    auto peer = Create(Role::kSender, {&key, 1}, {});
    if (!peer.ok()) return false;
    // SSRC 0, sequence 0, ROC 0: the first keystream block is AES-192 of
    // cipher salt || 0x0000 (RFC 3711 §4.1.1), the payload of zeros its XOR.
    std::vector<uint8_t> packet(12 + 16, 0);
    packet[0] = 0x80;
    if ((*peer)->ProtectRtp(packet) != srtp_err_status_ok) return false;
    uint8_t counter[16] = {};
    std::copy(std::begin(kCipherSalt), std::end(kCipherSalt), counter);
    uint8_t block[32];
    int n = 0;
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    const bool ok = ctx != nullptr &&
                    EVP_EncryptInit_ex(ctx, EVP_aes_192_ecb(), nullptr, kCipherKey, nullptr) == 1 &&
                    EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
                    EVP_EncryptUpdate(ctx, block, &n, counter, 16) == 1 && n == 16;
    EVP_CIPHER_CTX_free(ctx);
    return ok && std::equal(block, block + 16, packet.begin() + 12);
  }();
  return follows;
}

srtp_err_status_t LibsrtpPeer::ProtectRtp(std::vector<uint8_t>& packet) {
  const size_t len = packet.size();
  packet.resize(len + kRtpTrailroom);
  int n = static_cast<int>(len);
  const srtp_err_status_t status = srtp_protect_mki(session_, packet.data(), &n, use_mki_ ? 1 : 0,
                                                    static_cast<unsigned int>(active_));
  packet.resize(status == srtp_err_status_ok ? static_cast<size_t>(n) : len);
  return status;
}

srtp_err_status_t LibsrtpPeer::UnprotectRtp(std::vector<uint8_t>& packet) {
  const size_t len = packet.size();
  int n = static_cast<int>(len);
  const srtp_err_status_t status =
      srtp_unprotect_mki(session_, packet.data(), &n, use_mki_ ? 1 : 0);
  if (status == srtp_err_status_ok) packet.resize(static_cast<size_t>(n));
  return status;
}

srtp_err_status_t LibsrtpPeer::ProtectRtcp(std::vector<uint8_t>& packet) {
  const size_t len = packet.size();
  packet.resize(len + kRtcpTrailroom);
  int n = static_cast<int>(len);
  const srtp_err_status_t status = srtp_protect_rtcp_mki(
      rtcp_session(), packet.data(), &n, use_mki_ ? 1 : 0, static_cast<unsigned int>(active_));
  packet.resize(status == srtp_err_status_ok ? static_cast<size_t>(n) : len);
  return status;
}

srtp_err_status_t LibsrtpPeer::UnprotectRtcp(std::vector<uint8_t>& packet) {
  const size_t len = packet.size();
  int n = static_cast<int>(len);
  const srtp_err_status_t status =
      srtp_unprotect_rtcp_mki(rtcp_session(), packet.data(), &n, use_mki_ ? 1 : 0);
  if (status == srtp_err_status_ok) packet.resize(static_cast<size_t>(n));
  return status;
}

}  // namespace sluice::testing
