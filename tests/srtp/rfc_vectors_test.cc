// Known answers from the RFCs: key derivation (RFC 3711 B.3, RFC 6188 §7.2
// and §7.4), AES-CM keystreams (RFC 3711 B.2, RFC 6188 §7.1 and §7.3), and
// AES-GCM SRTP/SRTCP packets (RFC 7714 §16, §17), each through every crypto
// backend; then whole packets through Context and Engine where the vectors
// start from a master key.
//
// Every expected byte string below was copied from the RFC (or, where so
// marked, from libsrtp's srtp_driver.c) and cross-checked against an
// independent AES implementation before it went in.
#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/crypto/backend.h"
#include "sluice/crypto/session_key.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/engine.h"
#include "sluice/srtp/master_key.h"
#include "sluice/srtp/verdict.h"

namespace sluice::srtp {
namespace {

using crypto::BackendKind;
using crypto::CryptoOp;
using crypto::GetSuiteInfo;
using crypto::KeyLabel;
using crypto::SessionKey;
using crypto::Suite;
using Bytes = std::vector<uint8_t>;

// Hex digits to bytes; spaces and newlines are ignored.
Bytes Hex(std::string_view s) {
  Bytes out;
  int nibble = -1;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    const int v = std::isdigit(static_cast<unsigned char>(c))
                      ? c - '0'
                      : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    if (nibble < 0) {
      nibble = v;
    } else {
      out.push_back(static_cast<uint8_t>(nibble << 4 | v));
      nibble = -1;
    }
  }
  return out;
}

std::string ToHex(const uint8_t* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}
std::string ToHex(const Bytes& b) { return ToHex(b.data(), b.size()); }

Bytes Derive(Suite suite, const Bytes& key, const Bytes& salt, KeyLabel label, size_t n) {
  Bytes out(n);
  crypto::DeriveKey(GetSuiteInfo(suite), key, salt, label, out);
  return out;
}

// --- Key derivation ----------------------------------------------------------

struct KdfVector {
  const char* where;
  Suite suite;
  const char* master_key;
  const char* master_salt;
  const char* cipher_key;   // label 0x00
  const char* cipher_salt;  // label 0x02
  const char* auth_key;     // label 0x01
};

constexpr KdfVector kKdfVectors[] = {
    {"RFC 3711 B.3", Suite::kAesCm128HmacSha1_80, "E1F97A0D3E018BE0D64FA32C06DE4139",
     "0EC675AD498AFEEBB6960B3AABE6", "C61E7A93744F39EE10734AFE3FF7A087",
     "30CBBC08863D8C85D49DB34A9AE1", "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"},
    {"RFC 6188 §7.2", Suite::kAes256CmHmacSha1_80,
     "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6",
     "3b04803de51ee7c96423ab5b78d2",
     "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4",
     "fa31791685ca444a9e07c6c64e93", "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05"},
    {"RFC 6188 §7.4", Suite::kAes192CmHmacSha1_80,
     "73edc66c4fa15776fb57f9505c17136550ffda71f3e8e5f1", "c8522f3acd4ce86d5add78edbb11",
     "31874736a8f1143870c26e4857d8a5b2c4a354407faadabb", "2372b82d639b6d8503a47adc0a6c",
     "355b10973cd95b9eacf4061c7e1a7151e7cfbfcb"},
};

TEST(RfcKeyDerivationTest, DeriveKeyGivesTheRfcSessionKeys) {
  for (const KdfVector& v : kKdfVectors) {
    SCOPED_TRACE(v.where);
    const Bytes key = Hex(v.master_key), salt = Hex(v.master_salt);
    const Bytes want_key = Hex(v.cipher_key);
    EXPECT_EQ(ToHex(Derive(v.suite, key, salt, KeyLabel::kSrtpEncryption, want_key.size())),
              ToHex(want_key));
    EXPECT_EQ(ToHex(Derive(v.suite, key, salt, KeyLabel::kSrtpSalt, 14)),
              ToHex(Hex(v.cipher_salt)));
    EXPECT_EQ(ToHex(Derive(v.suite, key, salt, KeyLabel::kSrtpAuthentication, 20)),
              ToHex(Hex(v.auth_key)));
  }
}

// A derived key keeps its session keys only in prepared form: the AES round
// keys and HMAC states must be those the expected keys prepare to.
void ExpectPreparedFrom(const SessionKey& derived, const Bytes& enc_key, const Bytes& auth_key) {
  SessionKey want;
  want.suite = derived.suite;
  crypto::PrepareSessionKey(want, enc_key, auth_key);
  const size_t round_key_bytes = 16 * (derived.suite->key_len / 4 + 7);
  EXPECT_EQ(ToHex(derived.aes_round_keys, round_key_bytes),
            ToHex(want.aes_round_keys, round_key_bytes));
  EXPECT_EQ(ToHex(derived.hmac_ipad_state, 20), ToHex(want.hmac_ipad_state, 20));
  EXPECT_EQ(ToHex(derived.hmac_opad_state, 20), ToHex(want.hmac_opad_state, 20));
}

TEST(RfcKeyDerivationTest, DeriveSessionKeysGivesTheRfcSessionKeys) {
  for (const KdfVector& v : kKdfVectors) {
    SCOPED_TRACE(v.where);
    const Bytes key = Hex(v.master_key), salt = Hex(v.master_salt);
    auto keys = crypto::DeriveSessionKeys(GetSuiteInfo(v.suite), key, salt);
    ASSERT_TRUE(keys.ok()) << keys.status();
    const SessionKey& k = *keys->srtp;
    EXPECT_EQ(k.suite, &GetSuiteInfo(v.suite));
    EXPECT_EQ(ToHex(k.enc_key(), GetSuiteInfo(v.suite).key_len), ToHex(Hex(v.cipher_key)));
    EXPECT_EQ(ToHex(k.salt(), 14), ToHex(Hex(v.cipher_salt)));
    ExpectPreparedFrom(k, Hex(v.cipher_key), Hex(v.auth_key));
  }
}

// The SRTCP labels of RFC 3711 §4.3.2 with the B.3 master key. RFC 3711 does
// not print these; they were computed with an independent AES-CTR and agree
// with other SRTP implementations' tests.
TEST(RfcKeyDerivationTest, SrtcpLabelsWithTheB3MasterKey) {
  const KdfVector& v = kKdfVectors[0];
  const Bytes key = Hex(v.master_key), salt = Hex(v.master_salt);
  const Suite s = Suite::kAesCm128HmacSha1_80;
  EXPECT_EQ(ToHex(Derive(s, key, salt, KeyLabel::kSrtcpEncryption, 16)),
            "4c1aa45a81f73d61c800bbb00fbb1eaa");
  EXPECT_EQ(ToHex(Derive(s, key, salt, KeyLabel::kSrtcpAuthentication, 20)),
            "8d54534feb49ae8e7993a6bd0b844fc323a93dfd");
  EXPECT_EQ(ToHex(Derive(s, key, salt, KeyLabel::kSrtcpSalt, 14)), "9581c7ad87b3e530bf3e4454a8b3");
  auto keys = crypto::DeriveSessionKeys(GetSuiteInfo(s), key, salt);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(ToHex(keys->srtcp->enc_key(), 16), "4c1aa45a81f73d61c800bbb00fbb1eaa");
  ExpectPreparedFrom(*keys->srtcp, Hex("4c1aa45a81f73d61c800bbb00fbb1eaa"),
                     Hex("8d54534feb49ae8e7993a6bd0b844fc323a93dfd"));
  EXPECT_EQ(ToHex(keys->srtcp->salt(), 14), "9581c7ad87b3e530bf3e4454a8b3");
}

// RFC 7714 §11: the 96-bit GCM master salt enters the AES-CM PRF padded with
// two zero bytes on the right (as libsrtp does), the same PRF otherwise.
TEST(RfcKeyDerivationTest, GcmMasterSaltIsPaddedToFourteenBytes) {
  const Bytes salt12 = Hex("517569642070726f2071756f");
  Bytes salt14 = salt12;
  salt14.resize(14, 0);
  for (auto [gcm, cm] : {std::pair{Suite::kAeadAes128Gcm, Suite::kAesCm128HmacSha1_80},
                         std::pair{Suite::kAeadAes256Gcm, Suite::kAes256CmHmacSha1_80}}) {
    const size_t key_len = GetSuiteInfo(gcm).key_len;
    const Bytes key = Hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    const Bytes master(key.begin(), key.begin() + key_len);
    for (KeyLabel label : {KeyLabel::kSrtpEncryption, KeyLabel::kSrtpSalt,
                           KeyLabel::kSrtcpEncryption, KeyLabel::kSrtcpSalt}) {
      const size_t n = label == KeyLabel::kSrtpSalt || label == KeyLabel::kSrtcpSalt ? 12 : key_len;
      EXPECT_EQ(ToHex(Derive(gcm, master, salt12, label, n)),
                ToHex(Derive(cm, master, salt14, label, n)))
          << GetSuiteInfo(gcm).name << ", label " << static_cast<int>(label);
    }
  }
}

// --- Backends ------------------------------------------------------------------

std::string BackendName(const ::testing::TestParamInfo<BackendKind>& info) {
  return info.param == BackendKind::kIpsecMb ? "ipsecmb" : "openssl";
}

class RfcBackendTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    auto b = crypto::MakeBackend(GetParam());
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
  }

  // A session key given directly, as RFC 3711 B.2, RFC 6188 §7.1/§7.3 and
  // RFC 7714 give them.
  static std::unique_ptr<SessionKey> RawKey(Suite suite, const Bytes& key, const Bytes& salt) {
    auto k = std::make_unique<SessionKey>();
    k->suite = &GetSuiteInfo(suite);
    std::copy(salt.begin(), salt.end(), k->salt());
    crypto::PrepareSessionKey(*k, key, {});
    return k;
  }

  std::unique_ptr<crypto::Backend> backend_;
};

struct KeystreamVector {
  const char* where;
  Suite suite;
  const char* session_key;
  size_t blocks;
  const char* first;  // first three blocks
  const char* last;   // last three blocks, or null
};

// All with session salt F0F1F2F3F4F5F6F7F8F9FAFBFCFD, SSRC 0 and index 0, so
// the first counter block is F0F1...FCFD0000 (RFC 3711 §4.1.1).
constexpr KeystreamVector kKeystreams[] = {
    {"RFC 3711 B.2", Suite::kAesCm128HmacSha1_80, "2B7E151628AED2A6ABF7158809CF4F3C", 3,
     "E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB41E95B3BB0A2E8DD477901E4FCA89"
     "4C0",
     nullptr},
    {"RFC 6188 §7.1", Suite::kAes256CmHmacSha1_80,
     "57f82fe3613fd170a85ec93c40b1f0922ec4cb0dc025b58272147cc438944a98", 65282,
     "92bdd28a93c3f52511c677d08b5515a49da71b2378a854f67050756ded165bac63c4868b7096d88421b563b8c94c9"
     "a31",
     "cea518c90fd91ced9cbb18c078a547113dbc4814f4da5f00a08772b63c6a046d6eb246913062a16891433e97dd01a"
     "57f"},
    {"RFC 6188 §7.3", Suite::kAes192CmHmacSha1_80,
     "eab234764e517b2d3d160d587d8c86219740f65f99b6bcf7", 65282,
     "35096cba4610028dc1b57503804ce37c5de986291dcce161d5165ec4568f5c9a474a40c77894bc17180202272a4c2"
     "64d",
     "d108d1a31a00bad6367ec23eb044b415c8f57129fdeb970b59f917b257662d4ca5dab625811034e8cebdfeb6dc158"
     "dd3"},
};

TEST_P(RfcBackendTest, AesCmKeystream) {
  for (const KeystreamVector& v : kKeystreams) {
    SCOPED_TRACE(v.where);
    auto key = RawKey(v.suite, Hex(v.session_key), Hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
    Bytes buf(v.blocks * 16, 0);
    CryptoOp op = {};
    op.key = key.get();
    op.buf = buf.data();
    op.cipher_offset = 0;
    op.cipher_len = static_cast<uint32_t>(buf.size());
    const Bytes iv = Hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000");
    std::copy(iv.begin(), iv.end(), op.iv);
    CryptoOp* ops[] = {&op};
    ASSERT_TRUE(backend_->AesCm(ops));
    EXPECT_EQ(ToHex(buf.data(), 48), ToHex(Hex(v.first)));
    if (v.last != nullptr) {
      EXPECT_EQ(ToHex(buf.data() + buf.size() - 48, 48), ToHex(Hex(v.last)));
    }
  }
}

// RFC 7714 §16/§17: session key 000102...0f (AES-128) or 000102...1f
// (AES-256), session salt "Quid pro quo".
constexpr char kGcmKey128[] = "000102030405060708090a0b0c0d0e0f";
constexpr char kGcmKey256[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr char kGcmSalt[] = "517569642070726f2071756f";
// "Gallia est omnis divisa in partes tres" after a 12-byte header.
constexpr char kRfc7714Rtp[] =
    "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976 "
    "69736120 696e2070 61727465 73207472 6573";
constexpr char kRfc7714Rtcp[] =
    "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 "
    "deadbeef deadbeef deadbeef deadbeef deadbeef";

std::array<uint8_t, 12> XorSalt(std::array<uint8_t, 12> iv, const Bytes& salt) {
  for (int i = 0; i < 12; ++i) iv[i] ^= salt[i];
  return iv;
}

// RFC 7714 §8.1: IV = (0x0000 || SSRC || ROC || SEQ) XOR salt.
std::array<uint8_t, 12> SrtpGcmIv(const Bytes& salt, uint32_t ssrc, uint32_t roc, uint16_t seq) {
  std::array<uint8_t, 12> iv = {0,
                                0,
                                uint8_t(ssrc >> 24),
                                uint8_t(ssrc >> 16),
                                uint8_t(ssrc >> 8),
                                uint8_t(ssrc),
                                uint8_t(roc >> 24),
                                uint8_t(roc >> 16),
                                uint8_t(roc >> 8),
                                uint8_t(roc),
                                uint8_t(seq >> 8),
                                uint8_t(seq)};
  return XorSalt(iv, salt);
}

// RFC 7714 §9.1: IV = (0x0000 || SSRC || 0x0000 || 0 || SRTCP index) XOR salt.
std::array<uint8_t, 12> SrtcpGcmIv(const Bytes& salt, uint32_t ssrc, uint32_t index) {
  std::array<uint8_t, 12> iv = {
      0, 0, uint8_t(ssrc >> 24),         uint8_t(ssrc >> 16),  uint8_t(ssrc >> 8),  uint8_t(ssrc),
      0, 0, uint8_t(index >> 24 & 0x7f), uint8_t(index >> 16), uint8_t(index >> 8), uint8_t(index)};
  return XorSalt(iv, salt);
}

TEST(RfcGcmIvTest, IvFormulasGiveTheRfcIvs) {
  const Bytes salt = Hex(kGcmSalt);
  // RFC 7714 §16.1.1: SSRC 5501a0b2, ROC 0, SEQ f17b.
  const std::array<uint8_t, 12> rtp = SrtpGcmIv(salt, 0x5501a0b2, 0, 0xf17b);
  EXPECT_EQ(ToHex(rtp.data(), 12), "51753c6580c2726f20718414");
  // RFC 7714 §17.1.1: SSRC 4d617273 ("Mars"), SRTCP index 5d4.
  const std::array<uint8_t, 12> rtcp = SrtcpGcmIv(salt, 0x4d617273, 0x5d4);
  EXPECT_EQ(ToHex(rtcp.data(), 12), "517524055203726f207170bb");
}

struct GcmRtpVector {
  const char* where;
  Suite suite;
  const char* key;
  const char* protected_packet;  // header || cipher text || 16-byte tag
};

constexpr GcmRtpVector kGcmRtp[] = {
    {"RFC 7714 §16.1 AEAD_AES_128_GCM", Suite::kAeadAes128Gcm, kGcmKey128,
     "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f "
     "42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce"},
    {"RFC 7714 §16.2 AEAD_AES_256_GCM", Suite::kAeadAes256Gcm, kGcmKey256,
     "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238 9a58e2f3 "
     "b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13"},
};

TEST_P(RfcBackendTest, GcmSrtpEncryptAndDecrypt) {
  for (const GcmRtpVector& v : kGcmRtp) {
    SCOPED_TRACE(v.where);
    const Bytes salt = Hex(kGcmSalt);
    auto key = RawKey(v.suite, Hex(v.key), salt);
    const Bytes plain = Hex(kRfc7714Rtp);
    const Bytes want = Hex(v.protected_packet);
    ASSERT_EQ(want.size(), plain.size() + 16);
    const std::array<uint8_t, 12> iv = SrtpGcmIv(salt, 0x5501a0b2, 0, 0xf17b);

    // Encrypt: AAD is the 12-byte header, read from the packet.
    Bytes buf = plain;
    CryptoOp op = {};
    op.key = key.get();
    op.buf = buf.data();
    op.cipher_offset = 12;
    op.cipher_len = static_cast<uint32_t>(plain.size() - 12);
    op.auth_offset = 0;
    op.auth_len = 12;
    op.aad = nullptr;
    std::copy(iv.begin(), iv.end(), op.iv);
    op.tag_len = 16;
    CryptoOp* ops[] = {&op};
    ASSERT_TRUE(backend_->GcmEncrypt(ops));
    buf.insert(buf.end(), op.tag, op.tag + 16);
    EXPECT_EQ(ToHex(buf), ToHex(want));

    // Decrypt, with the right tag and with one bit of it flipped.
    for (bool good : {true, false}) {
      Bytes in(want.begin(), want.end() - 16);
      CryptoOp d = {};
      d.key = key.get();
      d.buf = in.data();
      d.cipher_offset = 12;
      d.cipher_len = static_cast<uint32_t>(in.size() - 12);
      d.auth_offset = 0;
      d.auth_len = 12;
      std::copy(iv.begin(), iv.end(), d.iv);
      d.tag_len = 16;
      std::copy(want.end() - 16, want.end(), d.tag);
      if (!good) d.tag[5] ^= 0x10;
      Bytes received(d.tag, d.tag + 16);
      CryptoOp* dops[] = {&d};
      ASSERT_TRUE(backend_->GcmDecrypt(dops));
      EXPECT_EQ(ToHex(in), ToHex(plain));
      EXPECT_EQ(CRYPTO_memcmp(d.tag, received.data(), 16) == 0, good)
          << (good ? "the RFC's tag did not verify" : "a flipped tag verified");
    }
  }
}

struct GcmRtcpVector {
  const char* where;
  Suite suite;
  const char* key;
  bool encrypted;                // E flag
  const char* protected_packet;  // ... || tag || E||index
};

constexpr GcmRtcpVector kGcmRtcp[] = {
    {"RFC 7714 §17.1 AEAD_AES_128_GCM", Suite::kAeadAes128Gcm, kGcmKey128, true,
     "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d c676a5f1 "
     "730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4"},
    {"RFC 7714 §17.2 AEAD_AES_256_GCM", Suite::kAeadAes256Gcm, kGcmKey256, true,
     "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50 a2eaa5c1 "
     "110555be 8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c b26ac3be 800005d4"},
    {"RFC 7714 §17.3 AEAD_AES_128_GCM, not encrypted", Suite::kAeadAes128Gcm, kGcmKey128, false,
     "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef "
     "deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4"},
    {"RFC 7714 §17.4 AEAD_AES_256_GCM, not encrypted", Suite::kAeadAes256Gcm, kGcmKey256, false,
     "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef "
     "deadbeef deadbeef deadbeef deadbeef 91db4afb feee5a97 8fab4393 ed2615fe 000005d4"},
};

TEST_P(RfcBackendTest, GcmSrtcpEncryptAndDecrypt) {
  for (const GcmRtcpVector& v : kGcmRtcp) {
    SCOPED_TRACE(v.where);
    const Bytes salt = Hex(kGcmSalt);
    auto key = RawKey(v.suite, Hex(v.key), salt);
    const Bytes plain = Hex(kRfc7714Rtcp);
    const Bytes want = Hex(v.protected_packet);
    ASSERT_EQ(want.size(), plain.size() + 16 + 4);
    const uint32_t e_index = (v.encrypted ? 0x80000000u : 0) | 0x5d4;
    const std::array<uint8_t, 12> iv = SrtcpGcmIv(salt, 0x4d617273, 0x5d4);
    // RFC 7714 §9.2/§9.3: the AAD is the 8-byte header (or, not encrypted,
    // the whole packet) followed by E||SRTCP index.
    Bytes aad(plain.begin(), v.encrypted ? plain.begin() + 8 : plain.end());
    for (int s = 24; s >= 0; s -= 8) aad.push_back(static_cast<uint8_t>(e_index >> s));

    Bytes buf = plain;
    CryptoOp op = {};
    op.key = key.get();
    op.buf = buf.data();
    op.cipher_offset = v.encrypted ? 8 : static_cast<uint32_t>(plain.size());
    op.cipher_len = v.encrypted ? static_cast<uint32_t>(plain.size() - 8) : 0;
    op.aad = aad.data();
    op.aad_len = static_cast<uint32_t>(aad.size());
    std::copy(iv.begin(), iv.end(), op.iv);
    op.tag_len = 16;
    CryptoOp* ops[] = {&op};
    ASSERT_TRUE(backend_->GcmEncrypt(ops));
    buf.insert(buf.end(), op.tag, op.tag + 16);
    for (int s = 24; s >= 0; s -= 8) buf.push_back(static_cast<uint8_t>(e_index >> s));
    EXPECT_EQ(ToHex(buf), ToHex(want));

    Bytes in(want.begin(), want.end() - 20);
    CryptoOp d = op;
    d.buf = in.data();
    std::copy(want.end() - 20, want.end() - 4, d.tag);
    Bytes received(d.tag, d.tag + 16);
    CryptoOp* dops[] = {&d};
    ASSERT_TRUE(backend_->GcmDecrypt(dops));
    EXPECT_EQ(ToHex(in), ToHex(plain));
    EXPECT_EQ(CRYPTO_memcmp(d.tag, received.data(), 16), 0) << "the RFC's tag did not verify";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, RfcBackendTest,
                         ::testing::Values(BackendKind::kIpsecMb, BackendKind::kOpenssl),
                         BackendName);

// --- Whole packets through Context and Engine --------------------------------

class RfcPacketTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    auto b = crypto::MakeBackend(GetParam());
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
    engine_ = std::make_unique<Engine>(*backend_);
  }

  static std::unique_ptr<Context> MakeContext(Suite suite, const Bytes& key, const Bytes& salt) {
    MasterKey k;
    k.suite = suite;
    std::copy(key.begin(), key.end(), k.key.begin());
    std::copy(salt.begin(), salt.end(), k.salt.begin());
    auto ctx = Context::Create({&k, 1}, {});
    EXPECT_TRUE(ctx.ok()) << ctx.status();
    return ctx.ok() ? std::move(*ctx) : nullptr;
  }

  // Protects (or unprotects) one packet in a buffer of exactly `capacity`.
  Verdict Run(Context& ctx, bool protect, bool rtcp, Bytes& bytes, size_t capacity) {
    Bytes storage(capacity);
    std::copy(bytes.begin(), bytes.end(), storage.begin());
    Packet pkt{storage.data(), static_cast<uint32_t>(bytes.size()),
               static_cast<uint32_t>(capacity)};
    const Job jobs[] = {{&ctx, &pkt}};
    Verdict v[1] = {static_cast<Verdict>(0xff)};
    if (protect) {
      rtcp ? engine_->ProtectRtcp(jobs, v) : engine_->ProtectRtp(jobs, v);
    } else {
      rtcp ? engine_->UnprotectRtcp(jobs, v) : engine_->UnprotectRtp(jobs, v);
    }
    bytes.assign(storage.begin(), storage.begin() + pkt.len);
    return v[0];
  }

  std::unique_ptr<crypto::Backend> backend_;
  std::unique_ptr<Engine> engine_;
};

// libsrtp's own reference packets (test/srtp_driver.c, srtp_validate) with
// the RFC 3711 B.3 master key: SSRC cafebabe, sequence 1234, and the first
// SRTCP packet of the stream (index 1, as libsrtp and Sluice number them).
TEST_P(RfcPacketTest, LibsrtpReferencePackets) {
  const Bytes key = Hex("e1f97a0d3e018be0d64fa32c06de4139");
  const Bytes salt = Hex("0ec675ad498afeebb6960b3aabe6");
  const Bytes rtp = Hex("800f1234decafbad cafebabe abababab abababab abababab abababab");
  const Bytes srtp =
      Hex("800f1234decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b 8dbb");
  const Bytes rtcp = Hex("81c8000bcafebabe abababab abababab abababab abababab");
  const Bytes srtcp =
      Hex("81c8000bcafebabe 7128035b e487b9bd bef89041 f977a5a8 80000001 993e08cd 54d6c123 0798");
  auto tx = MakeContext(Suite::kAesCm128HmacSha1_80, key, salt);
  auto rx = MakeContext(Suite::kAesCm128HmacSha1_80, key, salt);
  ASSERT_TRUE(tx && rx);

  Bytes b = rtp;
  ASSERT_EQ(Run(*tx, true, false, b, srtp.size()), Verdict::kOk);
  EXPECT_EQ(ToHex(b), ToHex(srtp));
  b = srtp;
  ASSERT_EQ(Run(*rx, false, false, b, srtp.size()), Verdict::kOk);
  EXPECT_EQ(ToHex(b), ToHex(rtp));

  b = rtcp;
  ASSERT_EQ(Run(*tx, true, true, b, srtcp.size()), Verdict::kOk);
  EXPECT_EQ(ToHex(b), ToHex(srtcp));
  b = srtcp;
  ASSERT_EQ(Run(*rx, false, true, b, srtcp.size()), Verdict::kOk);
  EXPECT_EQ(ToHex(b), ToHex(rtcp));
}

// From each RFC master key, a whole SRTP packet: what Sluice protects must be
// what the RFC's session keys give (computed here with OpenSSL directly:
// AES-CTR from IV = salt*2^16 XOR SSRC*2^64 XOR index*2^16, RFC 3711 §4.1.1;
// tag = HMAC-SHA1(auth key, packet || ROC), RFC 3711 §4.2).
TEST_P(RfcPacketTest, AesCmPacketFromEachRfcMasterKey) {
  for (const KdfVector& v : kKdfVectors) {
    SCOPED_TRACE(v.where);
    auto tx = MakeContext(v.suite, Hex(v.master_key), Hex(v.master_salt));
    auto rx = MakeContext(v.suite, Hex(v.master_key), Hex(v.master_salt));
    ASSERT_TRUE(tx && rx);
    const uint32_t ssrc = 0x5501a0b2;
    const uint16_t seq = 0xf17b;
    Bytes plain = Hex(kRfc7714Rtp);  // any RTP packet will do; SSRC and SEQ as above

    const Bytes cipher_key = Hex(v.cipher_key);
    const Bytes cipher_salt = Hex(v.cipher_salt);
    uint8_t iv[16] = {};
    std::copy(cipher_salt.begin(), cipher_salt.end(), iv);
    for (int i = 0; i < 4; ++i) iv[4 + i] ^= static_cast<uint8_t>(ssrc >> (24 - 8 * i));
    iv[12] ^= static_cast<uint8_t>(seq >> 8);
    iv[13] ^= static_cast<uint8_t>(seq);
    Bytes want = plain;
    int n = 0;
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    const EVP_CIPHER* aes = cipher_key.size() == 16   ? EVP_aes_128_ctr()
                            : cipher_key.size() == 24 ? EVP_aes_192_ctr()
                                                      : EVP_aes_256_ctr();
    ASSERT_EQ(EVP_EncryptInit_ex(c, aes, nullptr, cipher_key.data(), iv), 1);
    ASSERT_EQ(EVP_EncryptUpdate(c, want.data() + 12, &n, plain.data() + 12,
                                static_cast<int>(plain.size() - 12)),
              1);
    EVP_CIPHER_CTX_free(c);
    Bytes authenticated = want;
    authenticated.insert(authenticated.end(), {0, 0, 0, 0});  // ROC 0
    const Bytes auth_key = Hex(v.auth_key);
    uint8_t mac[20];
    unsigned int mac_len = 0;
    ASSERT_NE(HMAC(EVP_sha1(), auth_key.data(), 20, authenticated.data(), authenticated.size(), mac,
                   &mac_len),
              nullptr);
    want.insert(want.end(), mac, mac + 10);

    Bytes b = plain;
    ASSERT_EQ(Run(*tx, true, false, b, want.size()), Verdict::kOk);
    EXPECT_EQ(ToHex(b), ToHex(want));
    b = want;
    ASSERT_EQ(Run(*rx, false, false, b, want.size()), Verdict::kOk);
    EXPECT_EQ(ToHex(b), ToHex(plain));
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, RfcPacketTest,
                         ::testing::Values(BackendKind::kIpsecMb, BackendKind::kOpenssl),
                         BackendName);

}  // namespace
}  // namespace sluice::srtp
