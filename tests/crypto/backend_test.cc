// Every crypto backend against published known answers, against itself (one
// burst equals one op per call), and against the other backend on random
// bursts that mix sizes, key lengths, tag lengths and AAD placement.
#include "sluice/crypto/backend.h"

#include <gtest/gtest.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/crypto/session_key.h"
#include "sluice/crypto/suite.h"

// Counts heap allocations, to hold the backends to "does not allocate after
// construction": every C++ allocation, and (when OpenSSL lets us install the
// hooks, which it does only before its first allocation) every OpenSSL one.
namespace {
std::atomic<long> g_allocations{0};

void* CountingMalloc(size_t n, const char*, int) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n);
}
void* CountingRealloc(void* p, size_t n, const char*, int) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::realloc(p, n);
}
void CountingFree(void* p, const char*, int) { std::free(p); }

const bool g_openssl_allocations_counted =
    CRYPTO_set_mem_functions(CountingMalloc, CountingRealloc, CountingFree) == 1;
}  // namespace

// GCC cannot see that the replaced operator new below returns malloc's memory.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void* operator new(size_t n, std::align_val_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const size_t a = static_cast<size_t>(align);
  if (void* p = std::aligned_alloc(a, (n + a - 1) / a * a + (n == 0 ? a : 0))) return p;
  throw std::bad_alloc();
}
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }

namespace sluice::crypto {

// Names the backend in gtest's messages.
void PrintTo(BackendKind kind, std::ostream* os) { *os << BackendKindName(kind); }

namespace {

// ---------------------------------------------------------------------------
// Helpers

std::vector<uint8_t> Hex(std::string_view hex) {
  std::vector<uint8_t> out;
  int high = -1;
  for (char c : hex) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      continue;  // spaces between groups
    }
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<uint8_t>(high << 4 | v));
      high = -1;
    }
  }
  EXPECT_EQ(high, -1) << "odd number of hex digits in " << hex;
  return out;
}

std::vector<uint8_t> Text(std::string_view s) { return {s.begin(), s.end()}; }

std::string ToHex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

Suite CmSuite(size_t key_len) {
  switch (key_len) {
    case 16: return Suite::kAesCm128HmacSha1_80;
    case 24: return Suite::kAes192CmHmacSha1_80;
    default: return Suite::kAes256CmHmacSha1_80;
  }
}

Suite GcmSuite(size_t key_len, uint8_t tag_len) {
  if (key_len == 16) return tag_len == 8 ? Suite::kAeadAes128Gcm8 : Suite::kAeadAes128Gcm;
  return tag_len == 8 ? Suite::kAeadAes256Gcm8 : Suite::kAeadAes256Gcm;
}

// A session key made from raw known-answer keys, prepared as
// DeriveSessionKeys would prepare a derived one.
std::unique_ptr<SessionKey> NewKey(Suite suite, std::span<const uint8_t> enc_key,
                                   std::span<const uint8_t> auth_key = {}) {
  auto key = std::make_unique<SessionKey>();
  key->suite = &GetSuiteInfo(suite);
  EXPECT_EQ(enc_key.size(), key->suite->key_len);
  EXPECT_LE(auth_key.size(), size_t{key->suite->auth_key_len});
  std::vector<uint8_t> auth(key->suite->auth_key_len, 0);
  std::copy_n(auth_key.begin(), std::min(auth_key.size(), auth.size()), auth.begin());
  PrepareSessionKey(*key, enc_key, auth);
  return key;
}

enum class OpKind { kAesCm, kHmacSha1, kGcmEncrypt, kGcmDecrypt };

bool Submit(Backend& backend, OpKind kind, std::span<CryptoOp* const> ops) {
  switch (kind) {
    case OpKind::kAesCm: return backend.AesCm(ops);
    case OpKind::kHmacSha1: return backend.HmacSha1(ops);
    case OpKind::kGcmEncrypt: return backend.GcmEncrypt(ops);
    case OpKind::kGcmDecrypt: return backend.GcmDecrypt(ops);
  }
  return false;
}

bool SubmitOne(Backend& backend, OpKind kind, CryptoOp& op) {
  CryptoOp* ops[] = {&op};
  return Submit(backend, kind, ops);
}

// The validity test every caller of GcmDecrypt applies.
bool Authentic(const CryptoOp& op, std::span<const uint8_t> received) {
  return CRYPTO_memcmp(op.tag, received.data(), op.tag_len) == 0;
}

// HMAC-SHA1: every backend writes at least this many tag bytes.
constexpr size_t kHmacTagBytes = 12;

std::vector<BackendKind> AllKinds() { return {BackendKind::kOpenssl, BackendKind::kIpsecMb}; }

std::string KindName(const testing::TestParamInfo<BackendKind>& info) {
  return info.param == BackendKind::kOpenssl ? "Openssl" : "IpsecMb";
}

std::unique_ptr<Backend> NewBackend(BackendKind kind) {
  absl::StatusOr<std::unique_ptr<Backend>> backend = MakeBackend(kind);
  EXPECT_TRUE(backend.ok()) << backend.status();
  return backend.ok() ? *std::move(backend) : nullptr;
}

class BackendTest : public testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    backend_ = NewBackend(GetParam());
    ASSERT_NE(backend_, nullptr);
    EXPECT_EQ(backend_->name(), BackendKindName(GetParam()));
    EXPECT_FALSE(backend_->arch().empty());
  }

  std::unique_ptr<Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendTest, testing::ValuesIn(AllKinds()), KindName);

// ---------------------------------------------------------------------------
// AES-CM

struct CtrVector {
  const char* name;
  const char* key;
  const char* plaintext;
  const char* ciphertext;
};

// NIST SP 800-38A, Appendix F.5 (initial counter f0f1...feff for all three).
constexpr const char* kSp80038aCounter = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
constexpr const char* kSp80038aPlaintext =
    "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
const CtrVector kSp80038aCtr[] = {
    {"F.5.1 CTR-AES128.Encrypt", "2b7e151628aed2a6abf7158809cf4f3c", kSp80038aPlaintext,
     "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff"
     "5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee"},
    {"F.5.3 CTR-AES192.Encrypt", "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
     kSp80038aPlaintext,
     "1abc932417521ca24f2b0459fe7e6e0b 090339ec0aa6faefd5ccc2c6f4ce8e94"
     "1e36b26bd1ebc670d1bd1d665620abf7 4f78a7f6d29809585a97daec58c6b050"},
    {"F.5.5 CTR-AES256.Encrypt",
     "603deb1015ca71be2b73aef0857d7781 1f352c073b6108d72d9810a30914dff4",
     kSp80038aPlaintext,
     "601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5"
     "2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6"},
};

TEST_P(BackendTest, AesCmNistSp80038aVectors) {
  for (const CtrVector& v : kSp80038aCtr) {
    SCOPED_TRACE(v.name);
    const std::vector<uint8_t> key_bytes = Hex(v.key);
    const std::unique_ptr<SessionKey> key = NewKey(CmSuite(key_bytes.size()), key_bytes);
    const std::vector<uint8_t> plaintext = Hex(v.plaintext);
    const std::vector<uint8_t> ciphertext = Hex(v.ciphertext);

    // The range sits between bytes the backend must not touch.
    constexpr size_t kBefore = 5, kAfter = 7;
    std::vector<uint8_t> buf(kBefore, 0xa5);
    buf.insert(buf.end(), plaintext.begin(), plaintext.end());
    buf.insert(buf.end(), kAfter, 0x5a);
    const std::vector<uint8_t> original = buf;

    CryptoOp op{};
    op.key = key.get();
    op.buf = buf.data();
    op.cipher_offset = kBefore;
    op.cipher_len = static_cast<uint32_t>(plaintext.size());
    const std::vector<uint8_t> counter = Hex(kSp80038aCounter);
    std::copy(counter.begin(), counter.end(), op.iv);

    ASSERT_TRUE(SubmitOne(*backend_, OpKind::kAesCm, op));
    EXPECT_EQ(ToHex({buf.data() + kBefore, ciphertext.size()}), ToHex(ciphertext));
    EXPECT_EQ(ToHex({buf.data(), kBefore}), ToHex({original.data(), kBefore}));
    EXPECT_EQ(ToHex({buf.data() + kBefore + plaintext.size(), kAfter}),
              ToHex({original.data() + kBefore + plaintext.size(), kAfter}));

    // The same keystream decrypts.
    ASSERT_TRUE(SubmitOne(*backend_, OpKind::kAesCm, op));
    EXPECT_EQ(ToHex(buf), ToHex(original));
  }
}

TEST_P(BackendTest, AesCmRfc3711AppendixB2Keystream) {
  // RFC 3711 §B.2: the keystream segment of 1044512 octets (65282 blocks) from
  // IV F0F1...FCFD0000; its last blocks are those of SP 800-38A F.5.1.
  const std::unique_ptr<SessionKey> key =
      NewKey(Suite::kAesCm128HmacSha1_80, Hex("2B7E151628AED2A6ABF7158809CF4F3C"));
  std::vector<uint8_t> keystream(1044512, 0);
  CryptoOp op{};
  op.key = key.get();
  op.buf = keystream.data();
  op.cipher_offset = 0;
  op.cipher_len = static_cast<uint32_t>(keystream.size());
  const std::vector<uint8_t> iv = Hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000");
  std::copy(iv.begin(), iv.end(), op.iv);

  ASSERT_TRUE(SubmitOne(*backend_, OpKind::kAesCm, op));
  EXPECT_EQ(ToHex({keystream.data(), 48}),
            ToHex(Hex("E03EAD0935C95E80E166B16DD92B4EB4"    // counter ...FD0000
                      "D23513162B02D0F72A43A2FE4A5F97AB"    // counter ...FD0001
                      "41E95B3BB0A2E8DD477901E4FCA894C0")));  // counter ...FD0002
  EXPECT_EQ(ToHex({keystream.data() + keystream.size() - 48, 48}),
            ToHex(Hex("EC8CDF7398607CB0F2D21675EA9EA1E4"    // counter ...FDFEFF
                      "362B7C3C6773516318A077D7FC5073AE"    // counter ...FDFF00
                      "6A2CC3787889374FBEB4C81B17BA6C44")));  // counter ...FDFF01
}

TEST_P(BackendTest, AesCmLeavesAnEmptyRangeAlone) {
  const std::unique_ptr<SessionKey> key =
      NewKey(Suite::kAesCm128HmacSha1_80, Hex("2B7E151628AED2A6ABF7158809CF4F3C"));
  std::vector<uint8_t> buf(32, 0x77);
  CryptoOp op{};
  op.key = key.get();
  op.buf = buf.data();
  op.cipher_offset = 12;
  op.cipher_len = 0;
  ASSERT_TRUE(SubmitOne(*backend_, OpKind::kAesCm, op));
  EXPECT_EQ(buf, std::vector<uint8_t>(32, 0x77));
}

// ---------------------------------------------------------------------------
// HMAC-SHA1

struct HmacVector {
  const char* name;
  std::vector<uint8_t> key;
  std::vector<uint8_t> data;
  const char* mac;
};

TEST_P(BackendTest, HmacSha1Rfc2202Vectors) {
  // RFC 2202 §3, the cases whose key fits the 20-byte SRTP authentication key.
  // Case 2's key "Jefe" is 4 bytes: HMAC pads every key shorter than the block
  // with zeros (RFC 2104 §2), so the same key padded to 20 bytes is the same
  // key.
  std::vector<uint8_t> jefe = Text("Jefe");
  jefe.resize(20, 0);
  const HmacVector vectors[] = {
      {"case 1", std::vector<uint8_t>(20, 0x0b), Text("Hi There"),
       "b617318655057264e28bc0b6fb378c8ef146be00"},
      {"case 2", jefe, Text("what do ya want for nothing?"),
       "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
      {"case 3", std::vector<uint8_t>(20, 0xaa), std::vector<uint8_t>(50, 0xdd),
       "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
      {"case 5", std::vector<uint8_t>(20, 0x0c), Text("Test With Truncation"),
       "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
  };
  for (const HmacVector& v : vectors) {
    SCOPED_TRACE(v.name);
    const std::unique_ptr<SessionKey> key =
        NewKey(Suite::kAesCm128HmacSha1_80, std::vector<uint8_t>(16, 0), v.key);
    // Bytes around the range must not be authenticated.
    std::vector<uint8_t> buf(3, 0xee);
    buf.insert(buf.end(), v.data.begin(), v.data.end());
    buf.insert(buf.end(), 9, 0xee);
    CryptoOp op{};
    op.key = key.get();
    op.buf = buf.data();
    op.auth_offset = 3;
    op.auth_len = static_cast<uint32_t>(v.data.size());
    ASSERT_TRUE(SubmitOne(*backend_, OpKind::kHmacSha1, op));
    EXPECT_EQ(ToHex({op.tag, kHmacTagBytes}), ToHex(Hex(v.mac)).substr(0, 2 * kHmacTagBytes));
  }
}

// ---------------------------------------------------------------------------
// AES-GCM

struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* aad;
  const char* plaintext;
  const char* ciphertext;
  const char* tag;
};

// The GCM specification (McGrew and Viega, "The Galois/Counter Mode of
// Operation"), Appendix B, the test cases with a 96-bit IV.
constexpr const char* kGcmKey128 = "feffe9928665731c6d6a8f9467308308";
constexpr const char* kGcmKey256 =
    "feffe9928665731c6d6a8f9467308308 feffe9928665731c6d6a8f9467308308";
constexpr const char* kGcmIv = "cafebabefacedbaddecaf888";
constexpr const char* kGcmAad = "feedfacedeadbeeffeedfacedeadbeef abaddad2";
constexpr const char* kGcmPlaintext64 =
    "d9313225f88406e5a55909c5aff5269a 86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525 b16aedf5aa0de657ba637b391aafd255";
constexpr const char* kGcmPlaintext60 =
    "d9313225f88406e5a55909c5aff5269a 86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525 b16aedf5aa0de657ba637b39";
const GcmVector kGcmSpec[] = {
    {"test case 1", "00000000000000000000000000000000", "000000000000000000000000", "", "", "",
     "58e2fccefa7e3061367f1d57a4e7455a"},
    {"test case 3", kGcmKey128, kGcmIv, "", kGcmPlaintext64,
     "42831ec2217774244b7221b784d0d49c e3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa05 1ba30b396a0aac973d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"test case 4", kGcmKey128, kGcmIv, kGcmAad, kGcmPlaintext60,
     "42831ec2217774244b7221b784d0d49c e3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa05 1ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"test case 13",
     "00000000000000000000000000000000 00000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"test case 15", kGcmKey256, kGcmIv, "", kGcmPlaintext64,
     "522dc1f099567d07f47f37a32a84427d 643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838 c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"test case 16", kGcmKey256, kGcmIv, kGcmAad, kGcmPlaintext60,
     "522dc1f099567d07f47f37a32a84427d 643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838 c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

// What op.aad points at when the AAD is outside the packet but empty: not
// null, since null means "the auth range is the AAD".
constexpr uint8_t kEmptyAad[1] = {};

// One GCM packet laid out as the SRTP layer lays it out: the AAD (the RTP
// header) in front of the cipher range, or kept outside with junk in front.
struct GcmPacket {
  std::vector<uint8_t> buf;
  std::vector<uint8_t> external_aad;
  CryptoOp op{};

  GcmPacket(const SessionKey& key, const GcmVector& v, uint8_t tag_len, bool aad_in_packet,
            std::span<const uint8_t> payload) {
    const std::vector<uint8_t> aad = Hex(v.aad);
    if (aad_in_packet) {
      buf = aad;
    } else {
      external_aad = aad;
      buf.assign(aad.size() + 3, 0xcc);  // what the auth range covers: not AAD
    }
    const size_t cipher_offset = buf.size();
    buf.insert(buf.end(), payload.begin(), payload.end());
    buf.insert(buf.end(), 16, 0x3c);  // where a tag would go; never written
    op.key = &key;
    op.buf = buf.data();
    op.cipher_offset = static_cast<uint32_t>(cipher_offset);
    op.cipher_len = static_cast<uint32_t>(payload.size());
    op.auth_offset = 0;
    op.auth_len = static_cast<uint32_t>(aad_in_packet ? aad.size() : cipher_offset);
    if (!aad_in_packet) op.aad = external_aad.empty() ? kEmptyAad : external_aad.data();
    op.aad_len = static_cast<uint32_t>(aad.size());
    const std::vector<uint8_t> iv = Hex(v.iv);
    std::copy(iv.begin(), iv.end(), op.iv);
    op.tag_len = tag_len;
  }

  std::span<uint8_t> payload() { return {buf.data() + op.cipher_offset, op.cipher_len}; }
  std::span<uint8_t> aad() {
    if (op.aad != nullptr) return external_aad;
    return {buf.data() + op.auth_offset, op.auth_len};
  }
};

enum class Forgery { kCiphertext, kAad, kTag };

// With tag_out set, GcmEncrypt writes exactly tag_len bytes of tag there (the
// engine points it at the packet's trailer) and leaves op.tag as it was.
TEST_P(BackendTest, GcmEncryptWritesTheTagWhereTagOutPoints) {
  for (const GcmVector& v : kGcmSpec) {
    for (uint8_t tag_len : {16, 8}) {
      SCOPED_TRACE(testing::Message() << v.name << ", tag_len " << int{tag_len});
      const std::vector<uint8_t> key_bytes = Hex(v.key);
      const std::unique_ptr<SessionKey> key =
          NewKey(GcmSuite(key_bytes.size(), tag_len), key_bytes);
      const std::vector<uint8_t> full_tag = Hex(v.tag);
      const std::vector<uint8_t> tag(full_tag.begin(), full_tag.begin() + tag_len);

      GcmPacket packet(*key, v, tag_len, /*aad_in_packet=*/true, Hex(v.plaintext));
      uint8_t* trailer = packet.buf.data() + packet.op.cipher_offset + packet.op.cipher_len;
      packet.op.tag_out = trailer;
      std::fill(std::begin(packet.op.tag), std::end(packet.op.tag), 0xa5);
      ASSERT_TRUE(SubmitOne(*backend_, OpKind::kGcmEncrypt, packet.op));
      EXPECT_EQ(ToHex(packet.payload()), ToHex(Hex(v.ciphertext)));
      EXPECT_EQ(ToHex({trailer, tag_len}), ToHex(tag));
      EXPECT_TRUE(std::all_of(trailer + tag_len, trailer + 16, [](uint8_t b) { return b == 0x3c; }))
          << "wrote past tag_len";
      EXPECT_TRUE(std::all_of(std::begin(packet.op.tag), std::end(packet.op.tag),
                              [](uint8_t b) { return b == 0xa5; }))
          << "wrote op.tag too";
    }
  }
}

TEST_P(BackendTest, GcmSpecVectors) {
  for (const GcmVector& v : kGcmSpec) {
    for (uint8_t tag_len : {16, 8}) {
      for (bool aad_in_packet : {true, false}) {
        SCOPED_TRACE(testing::Message() << v.name << ", tag_len " << int{tag_len}
                                        << (aad_in_packet ? ", AAD in packet" : ", AAD outside"));
        const std::vector<uint8_t> key_bytes = Hex(v.key);
        const std::unique_ptr<SessionKey> key =
            NewKey(GcmSuite(key_bytes.size(), tag_len), key_bytes);
        const std::vector<uint8_t> plaintext = Hex(v.plaintext);
        const std::vector<uint8_t> ciphertext = Hex(v.ciphertext);
        const std::vector<uint8_t> full_tag = Hex(v.tag);
        const std::vector<uint8_t> tag(full_tag.begin(), full_tag.begin() + tag_len);

        GcmPacket packet(*key, v, tag_len, aad_in_packet, plaintext);
        const std::vector<uint8_t> original = packet.buf;
        const size_t head = packet.op.cipher_offset;
        ASSERT_TRUE(SubmitOne(*backend_, OpKind::kGcmEncrypt, packet.op));
        EXPECT_EQ(ToHex(packet.payload()), ToHex(ciphertext));
        EXPECT_EQ(ToHex({packet.op.tag, tag_len}), ToHex(tag));
        EXPECT_TRUE(std::equal(original.begin(), original.begin() + head, packet.buf.begin()));
        EXPECT_TRUE(std::equal(original.end() - 16, original.end(), packet.buf.end() - 16));

        // Decryption restores the plaintext and accepts the tag...
        std::copy(tag.begin(), tag.end(), packet.op.tag);
        ASSERT_TRUE(SubmitOne(*backend_, OpKind::kGcmDecrypt, packet.op));
        EXPECT_EQ(ToHex(packet.buf), ToHex(original));
        EXPECT_TRUE(Authentic(packet.op, tag));

        // ...and refuses a flipped bit in the ciphertext, the AAD or the tag.
        for (Forgery forgery : {Forgery::kCiphertext, Forgery::kAad, Forgery::kTag}) {
          GcmPacket forged(*key, v, tag_len, aad_in_packet, ciphertext);
          std::vector<uint8_t> received = tag;
          std::span<uint8_t> target = forgery == Forgery::kCiphertext ? forged.payload()
                                      : forgery == Forgery::kAad      ? forged.aad()
                                                                      : std::span(received);
          if (target.empty()) continue;
          SCOPED_TRACE(forgery == Forgery::kCiphertext ? "ciphertext"
                       : forgery == Forgery::kAad      ? "AAD"
                                                       : "tag");
          target[target.size() / 2] ^= 0x01;
          std::copy(received.begin(), received.end(), forged.op.tag);
          ASSERT_TRUE(SubmitOne(*backend_, OpKind::kGcmDecrypt, forged.op));
          EXPECT_FALSE(Authentic(forged.op, received));
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Random bursts

// Keys of every length each operation takes, two or three of each, so a burst
// mixes key lengths and also repeats keys.
struct KeyPool {
  std::vector<std::unique_ptr<SessionKey>> cm;
  std::vector<std::unique_ptr<SessionKey>> hmac;
  std::vector<std::unique_ptr<SessionKey>> gcm;

  explicit KeyPool(uint32_t seed) {
    std::mt19937 rng(seed);
    auto random_bytes = [&rng](size_t n) {
      std::vector<uint8_t> out(n);
      for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
      return out;
    };
    for (size_t key_len : {16, 24, 32}) {
      for (int i = 0; i < 2; ++i) cm.push_back(NewKey(CmSuite(key_len), random_bytes(key_len)));
    }
    for (int i = 0; i < 3; ++i) {
      hmac.push_back(NewKey(Suite::kAesCm128HmacSha1_80, random_bytes(16), random_bytes(20)));
    }
    for (size_t key_len : {16, 32}) {
      for (uint8_t tag_len : {16, 8}) {
        for (int i = 0; i < 2; ++i) {
          gcm.push_back(NewKey(GcmSuite(key_len, tag_len), random_bytes(key_len)));
        }
      }
    }
  }
};

struct Packet {
  std::vector<uint8_t> buf;
  std::vector<uint8_t> external_aad;
  bool aad_outside = false;
  CryptoOp op{};
  // GcmDecrypt: the tag the packet carried, and whether it should verify.
  std::array<uint8_t, 16> received{};
  bool authentic = true;
};

struct Burst {
  std::vector<Packet> packets;

  // Points every op at its own packet's storage (after a copy, too).
  std::vector<CryptoOp*> Ops() {
    std::vector<CryptoOp*> ops;
    for (Packet& p : packets) {
      p.op.buf = p.buf.data();
      p.op.aad = !p.aad_outside          ? nullptr
                 : p.external_aad.empty() ? kEmptyAad
                                          : p.external_aad.data();
      ops.push_back(&p.op);
    }
    return ops;
  }
};

// Sizes every burst starts with, then uniform in [0, kMaxPayload].
constexpr uint32_t kEdgeSizes[] = {0, 1, 15, 16, 17, 31, 32, 33, 64, 1400};
constexpr uint32_t kMaxPayload = 1400;
constexpr int kBurstSize = 64;

Burst RandomBurst(OpKind kind, const KeyPool& keys, uint32_t seed) {
  std::mt19937 rng(seed);
  auto uniform = [&rng](uint32_t lo, uint32_t hi) {
    return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
  };
  const std::vector<std::unique_ptr<SessionKey>>& pool =
      kind == OpKind::kAesCm ? keys.cm : kind == OpKind::kHmacSha1 ? keys.hmac : keys.gcm;
  Burst burst;
  burst.packets.resize(kBurstSize);
  const SessionKey* key = pool[0].get();
  for (int i = 0; i < kBurstSize; ++i) {
    Packet& p = burst.packets[i];
    // Half the time the same stream as the packet before.
    if (uniform(0, 1) == 0) key = pool[uniform(0, static_cast<uint32_t>(pool.size() - 1))].get();
    const uint32_t len = i < static_cast<int>(std::size(kEdgeSizes)) ? kEdgeSizes[i]
                                                                       : uniform(0, kMaxPayload);
    const uint32_t header = uniform(0, 40);
    p.buf.resize(header + len + 20);
    for (uint8_t& b : p.buf) b = static_cast<uint8_t>(rng());
    p.op.key = key;
    for (uint8_t& b : p.op.iv) b = static_cast<uint8_t>(rng());
    switch (kind) {
      case OpKind::kAesCm:
        p.op.cipher_offset = header;
        p.op.cipher_len = len;
        // RFC 3711 §4.1.1: the low 16 bits of an SRTP counter block start at 0.
        p.op.iv[14] = p.op.iv[15] = 0;
        break;
      case OpKind::kHmacSha1:
        // SRTP always authenticates at least a header and the ROC, and
        // ipsec-mb refuses an empty message.
        p.op.auth_offset = header;
        p.op.auth_len = std::max<uint32_t>(len, 1);
        break;
      case OpKind::kGcmEncrypt:
      case OpKind::kGcmDecrypt:
        p.op.cipher_offset = header;
        p.op.cipher_len = len;
        p.op.tag_len = key->suite->srtp_tag_len;
        p.aad_outside = uniform(0, 1) == 1;
        if (p.aad_outside) {
          p.external_aad.resize(uniform(0, 40));
          for (uint8_t& b : p.external_aad) b = static_cast<uint8_t>(rng());
          p.op.aad_len = static_cast<uint32_t>(p.external_aad.size());
          // The auth range is ignored when the AAD is outside.
          p.op.auth_offset = uniform(0, header);
          p.op.auth_len = header - p.op.auth_offset;
        } else {
          p.op.auth_offset = 0;
          p.op.auth_len = header;
        }
        break;
    }
  }
  if (kind == OpKind::kGcmDecrypt) {
    // Ciphertext and tags come from GcmEncrypt (tested on its own), then some
    // packets are forged: a flipped bit in the ciphertext, the AAD or the tag.
    std::unique_ptr<Backend> sealer = NewBackend(BackendKind::kOpenssl);
    std::vector<CryptoOp*> ops = burst.Ops();
    EXPECT_TRUE(sealer != nullptr && sealer->GcmEncrypt(ops));
    for (int i = 0; i < kBurstSize; ++i) {
      Packet& p = burst.packets[i];
      std::copy_n(p.op.tag, p.op.tag_len, p.received.begin());
      p.authentic = i % 3 != 0;
      if (!p.authentic) {
        const uint32_t aad_len = p.aad_outside ? p.op.aad_len : p.op.auth_len;
        if (i % 2 == 0 && p.op.cipher_len > 0) {
          p.buf[p.op.cipher_offset + uniform(0, p.op.cipher_len - 1)] ^= 0x10;
        } else if (aad_len > 0) {
          uint8_t* aad = p.aad_outside ? p.external_aad.data() : p.buf.data() + p.op.auth_offset;
          aad[uniform(0, aad_len - 1)] ^= 0x01;
        } else {
          p.received[uniform(0, p.op.tag_len - 1)] ^= 0x80;
        }
      }
      std::memset(p.op.tag, 0, sizeof(p.op.tag));
      std::copy_n(p.received.begin(), p.op.tag_len, p.op.tag);
    }
  }
  return burst;
}

// Compares what two runs of one burst produced: the buffers, and the tags as
// far as the contract defines them (for GcmDecrypt, the verdict).
void ExpectSameResults(OpKind kind, const Burst& a, const Burst& b) {
  ASSERT_EQ(a.packets.size(), b.packets.size());
  for (size_t i = 0; i < a.packets.size(); ++i) {
    const Packet& pa = a.packets[i];
    const Packet& pb = b.packets[i];
    SCOPED_TRACE(testing::Message() << "op " << i << ": key_len " << int{pa.op.key->suite->key_len}
                                    << ", cipher " << pa.op.cipher_offset << "+"
                                    << pa.op.cipher_len << ", auth " << pa.op.auth_offset << "+"
                                    << pa.op.auth_len << ", tag_len " << int{pa.op.tag_len}
                                    << (pa.aad_outside ? ", AAD outside" : ""));
    EXPECT_TRUE(pa.buf == pb.buf);
    switch (kind) {
      case OpKind::kAesCm:
        break;
      case OpKind::kHmacSha1:
        EXPECT_EQ(ToHex({pa.op.tag, kHmacTagBytes}), ToHex({pb.op.tag, kHmacTagBytes}));
        break;
      case OpKind::kGcmEncrypt:
        EXPECT_EQ(ToHex({pa.op.tag, pa.op.tag_len}), ToHex({pb.op.tag, pb.op.tag_len}));
        break;
      case OpKind::kGcmDecrypt: {
        const bool va = Authentic(pa.op, {pa.received.data(), pa.op.tag_len});
        const bool vb = Authentic(pb.op, {pb.received.data(), pb.op.tag_len});
        EXPECT_EQ(va, pa.authentic);
        EXPECT_EQ(vb, pb.authentic);
        break;
      }
    }
  }
}

constexpr OpKind kAllOps[] = {OpKind::kAesCm, OpKind::kHmacSha1, OpKind::kGcmEncrypt,
                              OpKind::kGcmDecrypt};
constexpr const char* kOpNames[] = {"AesCm", "HmacSha1", "GcmEncrypt", "GcmDecrypt"};

TEST_P(BackendTest, BurstEqualsOneOpPerCall) {
  const KeyPool keys(1);
  for (OpKind kind : kAllOps) {
    SCOPED_TRACE(kOpNames[static_cast<int>(kind)]);
    for (uint32_t seed : {11u, 12u, 13u}) {
      Burst burst = RandomBurst(kind, keys, seed);
      Burst single = burst;
      ASSERT_TRUE(Submit(*backend_, kind, burst.Ops()));
      for (CryptoOp* op : single.Ops()) ASSERT_TRUE(SubmitOne(*backend_, kind, *op));
      ExpectSameResults(kind, burst, single);
    }
  }
}

TEST_P(BackendTest, DoesNotAllocatePerBurst) {
  const KeyPool keys(2);
  for (OpKind kind : kAllOps) {
    SCOPED_TRACE(kOpNames[static_cast<int>(kind)]);
    Burst warm_up = RandomBurst(kind, keys, 21);
    Burst burst = RandomBurst(kind, keys, 22);
    const std::vector<CryptoOp*> warm_up_ops = warm_up.Ops();
    const std::vector<CryptoOp*> ops = burst.Ops();
    ASSERT_TRUE(Submit(*backend_, kind, warm_up_ops));
    const long before = g_allocations.load();
    const bool ok = Submit(*backend_, kind, ops);
    const long allocations = g_allocations.load() - before;
    ASSERT_TRUE(ok);
    EXPECT_EQ(allocations, 0);
  }
  if (!g_openssl_allocations_counted) {
    GTEST_SKIP() << "OpenSSL allocated before its hooks could be set: only C++ "
                    "allocations were counted";
  }
}

TEST(BackendAgreement, OpensslAndIpsecMbAgreeOnRandomBursts) {
  const std::unique_ptr<Backend> openssl = NewBackend(BackendKind::kOpenssl);
  const std::unique_ptr<Backend> ipsec_mb = NewBackend(BackendKind::kIpsecMb);
  ASSERT_NE(openssl, nullptr);
  ASSERT_NE(ipsec_mb, nullptr);
  const KeyPool keys(3);
  for (OpKind kind : kAllOps) {
    SCOPED_TRACE(kOpNames[static_cast<int>(kind)]);
    for (uint32_t seed : {31u, 32u, 33u, 34u}) {
      Burst a = RandomBurst(kind, keys, seed);
      Burst b = a;
      ASSERT_TRUE(Submit(*openssl, kind, a.Ops()));
      ASSERT_TRUE(Submit(*ipsec_mb, kind, b.Ops()));
      ExpectSameResults(kind, a, b);
    }
  }
}

}  // namespace
}  // namespace sluice::crypto
