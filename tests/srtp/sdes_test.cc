#include "sluice/srtp/sdes.h"

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <new>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/master_key.h"

namespace sluice::srtp {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

// RFC 4568 §9.1's example key: 30 bytes, 40 characters, no padding.
constexpr char kRfcKey[] = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
constexpr char kRfcExample[] =
    "AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";

std::string Str(std::string_view s) { return std::string(s); }

// Base64 through OpenSSL, so the tests do not check the parser against itself.
std::string EncodeBase64(const std::vector<uint8_t>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(n);
  return out;
}

std::vector<uint8_t> DecodeBase64(std::string text) {
  size_t padding = 0;
  while (!text.empty() && text.back() == '=') {
    text.pop_back();
    ++padding;
  }
  const size_t unpadded = text.size();
  text.append((4 - unpadded % 4) % 4, '=');  // EVP_DecodeBlock wants whole groups
  std::vector<uint8_t> out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  EXPECT_GE(n, 0);
  out.resize(unpadded * 6 / 8);  // drop the bytes EVP_DecodeBlock counts for '='
  return out;
}

std::string Unpadded(std::string text) {
  while (!text.empty() && text.back() == '=') text.pop_back();
  return text;
}

std::vector<uint8_t> TestKeySalt(const crypto::SuiteInfo& info) {
  std::vector<uint8_t> bytes(info.key_salt_len());
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(0x80 + 7 * i);
  return bytes;
}

void ExpectSameCrypto(const SdesCrypto& a, const SdesCrypto& b) {
  EXPECT_EQ(a.tag, b.tag);
  EXPECT_EQ(a.key.suite, b.key.suite);
  EXPECT_EQ(a.key.key, b.key.key);
  EXPECT_EQ(a.key.salt, b.key.salt);
  EXPECT_EQ(a.key.lifetime, b.key.lifetime);
  EXPECT_EQ(a.key.mki_len, b.key.mki_len);
  EXPECT_EQ(a.key.mki, b.key.mki);
  EXPECT_EQ(a.unencrypted_srtcp, b.unencrypted_srtcp);
  EXPECT_EQ(a.window_size_hint, b.window_size_hint);
}

// --- Every suite -----------------------------------------------------------

class SdesSuiteTest : public ::testing::TestWithParam<crypto::SuiteInfo> {};

TEST_P(SdesSuiteTest, ParsesKeyAndSalt) {
  const crypto::SuiteInfo& info = GetParam();
  const std::vector<uint8_t> bytes = TestKeySalt(info);
  const std::string attribute = absl::StrCat(Str(info.name), " inline:", EncodeBase64(bytes));

  absl::StatusOr<SdesCrypto> crypto = ParseSdesCrypto(attribute);
  ASSERT_TRUE(crypto.ok()) << crypto.status();
  EXPECT_EQ(crypto->key.suite, info.suite);
  EXPECT_THAT(crypto->key.key_bytes(), ElementsAreArray(bytes.data(), info.key_len));
  EXPECT_THAT(crypto->key.salt_bytes(),
              ElementsAreArray(bytes.data() + info.key_len, info.salt_len));
  EXPECT_EQ(crypto->key.lifetime, 0u);
  EXPECT_EQ(crypto->key.mki_len, 0);
  EXPECT_FALSE(crypto->tag.has_value());
}

TEST_P(SdesSuiteTest, AcceptsPaddedAndUnpaddedBase64) {
  const crypto::SuiteInfo& info = GetParam();
  const std::string padded = EncodeBase64(TestKeySalt(info));
  absl::StatusOr<SdesCrypto> a = ParseSdesCrypto(absl::StrCat(Str(info.name), " inline:", padded));
  absl::StatusOr<SdesCrypto> b =
      ParseSdesCrypto(absl::StrCat(Str(info.name), " inline:", Unpadded(padded)));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ExpectSameCrypto(*a, *b);
}

TEST_P(SdesSuiteTest, FormatsWhatItParses) {
  const crypto::SuiteInfo& info = GetParam();
  const std::string attribute =
      absl::StrCat("7 ", Str(info.name), " inline:", EncodeBase64(TestKeySalt(info)),
                   "|2^31|258:2 UNENCRYPTED_SRTCP WSH=128");
  absl::StatusOr<SdesCrypto> crypto = ParseSdesCrypto(attribute);
  ASSERT_TRUE(crypto.ok()) << crypto.status();
  // The formatter writes padded base64, as EVP_EncodeBlock does.
  EXPECT_EQ(FormatSdesCrypto(*crypto), attribute);
}

TEST_P(SdesSuiteTest, RoundTripsABuiltKey) {
  const crypto::SuiteInfo& info = GetParam();
  SdesCrypto crypto;
  crypto.key.suite = info.suite;
  for (int i = 0; i < info.key_len; ++i) crypto.key.key[i] = static_cast<uint8_t>(i * 13 + 1);
  for (int i = 0; i < info.salt_len; ++i) crypto.key.salt[i] = static_cast<uint8_t>(i * 29 + 3);
  crypto.key.lifetime = 1000000;
  crypto.key.mki = {0xde, 0xad, 0xbe, 0xef};
  crypto.key.mki_len = 4;

  absl::StatusOr<SdesCrypto> parsed = ParseSdesCrypto(FormatSdesCrypto(crypto));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameCrypto(*parsed, crypto);
  EXPECT_TRUE(parsed->key.SameKeyAs(crypto.key));
}

TEST_P(SdesSuiteTest, RefusesAKeyOneByteShort) {
  const crypto::SuiteInfo& info = GetParam();
  std::vector<uint8_t> bytes = TestKeySalt(info);
  bytes.pop_back();
  absl::StatusOr<SdesCrypto> crypto =
      ParseSdesCrypto(absl::StrCat(Str(info.name), " inline:", EncodeBase64(bytes)));
  ASSERT_EQ(crypto.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      crypto.status().message(),
      absl::StrCat("key for ", Str(info.name), " must be ", info.key_salt_len(), " bytes (key ",
                   info.key_len, " + salt ", info.salt_len, "), got ", info.key_salt_len() - 1));
}

TEST_P(SdesSuiteTest, GeneratesAKeyOfTheSuitesLengthsThatParsesBack) {
  const crypto::SuiteInfo& info = GetParam();
  absl::StatusOr<SdesCrypto> generated = GenerateSdesCrypto(info.suite);
  ASSERT_TRUE(generated.ok()) << generated.status();
  EXPECT_EQ(generated->key.suite, info.suite);
  EXPECT_FALSE(generated->tag.has_value());
  EXPECT_EQ(generated->key.lifetime, 0u);
  EXPECT_EQ(generated->key.mki_len, 0);
  EXPECT_FALSE(generated->unencrypted_srtcp);
  EXPECT_FALSE(generated->window_size_hint.has_value());
  // Random bytes fill exactly the suite's key and salt lengths.
  for (size_t i = info.key_len; i < generated->key.key.size(); ++i) {
    EXPECT_EQ(generated->key.key[i], 0) << i;
  }
  for (size_t i = info.salt_len; i < generated->key.salt.size(); ++i) {
    EXPECT_EQ(generated->key.salt[i], 0) << i;
  }

  const std::string text = FormatSdesCrypto(*generated);
  EXPECT_THAT(text, ::testing::StartsWith(absl::StrCat(Str(info.name), " inline:")));
  EXPECT_THAT(text, Not(HasSubstr("|")));
  // The parser refuses any other length of key||salt for the suite.
  absl::StatusOr<SdesCrypto> parsed = ParseSdesCrypto(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->key.suite, info.suite);
  EXPECT_TRUE(parsed->key.SameKeyAs(generated->key));
}

TEST_P(SdesSuiteTest, GeneratesADifferentKeyEachTime) {
  const crypto::SuiteInfo& info = GetParam();
  absl::StatusOr<SdesCrypto> a = GenerateSdesCrypto(info.suite);
  absl::StatusOr<SdesCrypto> b = GenerateSdesCrypto(info.suite);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->key.SameKeyAs(b->key));
  EXPECT_NE(std::vector<uint8_t>(a->key.key.begin(), a->key.key.begin() + info.key_len),
            std::vector<uint8_t>(b->key.key.begin(), b->key.key.begin() + info.key_len));
  EXPECT_NE(std::vector<uint8_t>(a->key.salt.begin(), a->key.salt.begin() + info.salt_len),
            std::vector<uint8_t>(b->key.salt.begin(), b->key.salt.begin() + info.salt_len));
}

INSTANTIATE_TEST_SUITE_P(AllSuites, SdesSuiteTest, ::testing::ValuesIn(crypto::AllSuites()),
                         [](const ::testing::TestParamInfo<crypto::SuiteInfo>& p) {
                           return Str(p.param.name);
                         });

TEST(SdesTest, CoversEverySuite) { EXPECT_EQ(crypto::AllSuites().size(), 13u); }

// --- RFC 4568 examples -------------------------------------------------------

TEST(SdesTest, Rfc4568Example) {
  absl::StatusOr<SdesCrypto> crypto = ParseSdesCrypto(kRfcExample);
  ASSERT_TRUE(crypto.ok()) << crypto.status();
  const std::vector<uint8_t> expected = DecodeBase64(kRfcKey);
  ASSERT_EQ(expected.size(), 30u);
  EXPECT_EQ(crypto->key.suite, crypto::Suite::kAesCm128HmacSha1_80);
  EXPECT_THAT(crypto->key.key_bytes(), ElementsAreArray(expected.data(), 16));
  EXPECT_THAT(crypto->key.salt_bytes(), ElementsAreArray(expected.data() + 16, 14));
  EXPECT_EQ(crypto->key.lifetime, uint64_t{1} << 20);
  EXPECT_THAT(crypto->key.mki_bytes(), ElementsAre(0x00, 0x00, 0x00, 0x01));
  EXPECT_FALSE(crypto->tag.has_value());
  EXPECT_FALSE(crypto->unencrypted_srtcp);
  EXPECT_FALSE(crypto->window_size_hint.has_value());
  EXPECT_EQ(FormatSdesCrypto(*crypto), kRfcExample);
}

TEST(SdesTest, LeadingTag) {
  const std::string attribute = absl::StrCat("1 ", kRfcExample);
  absl::StatusOr<SdesCrypto> crypto = ParseSdesCrypto(attribute);
  ASSERT_TRUE(crypto.ok()) << crypto.status();
  EXPECT_EQ(crypto->tag, 1u);
  EXPECT_EQ(crypto->key.lifetime, uint64_t{1} << 20);
  EXPECT_EQ(FormatSdesCrypto(*crypto), attribute);

  absl::StatusOr<SdesCrypto> big = ParseSdesCrypto(absl::StrCat("999999999 ", kRfcExample));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->tag, 999999999u);
}

TEST(SdesTest, ToleratesLineEndAndExtraSpaces) {
  absl::StatusOr<SdesCrypto> crypto = ParseSdesCrypto(
      absl::StrCat("1  AES_CM_128_HMAC_SHA1_80   inline:", kRfcKey, "  KDR=0   WSH=64 \r\n"));
  ASSERT_TRUE(crypto.ok()) << crypto.status();
  EXPECT_EQ(crypto->tag, 1u);
  EXPECT_EQ(crypto->window_size_hint, 64u);
}

TEST(SdesTest, MkiWithoutLifetime) {
  // RFC 4568 §9.2: the lifetime may be left out while the MKI is present.
  absl::StatusOr<SdesCrypto> crypto =
      ParseSdesCrypto(absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kRfcKey, "|1:4"));
  ASSERT_TRUE(crypto.ok()) << crypto.status();
  EXPECT_EQ(crypto->key.lifetime, 0u);
  EXPECT_THAT(crypto->key.mki_bytes(), ElementsAre(0, 0, 0, 1));
  EXPECT_EQ(FormatSdesCrypto(*crypto),
            absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kRfcKey, "|1:4"));
}

TEST(SdesTest, MkiValuesAreBigEndian) {
  absl::StatusOr<SdesCrypto> one =
      ParseSdesCrypto(absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kRfcKey, "|255:1"));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_THAT(one->key.mki_bytes(), ElementsAre(0xff));
  absl::StatusOr<SdesCrypto> two =
      ParseSdesCrypto(absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kRfcKey, "|258:2"));
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_THAT(two->key.mki_bytes(), ElementsAre(0x01, 0x02));
  absl::StatusOr<SdesCrypto> four =
      ParseSdesCrypto(absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kRfcKey, "|4294967295:4"));
  ASSERT_TRUE(four.ok()) << four.status();
  EXPECT_THAT(four->key.mki_bytes(), ElementsAre(0xff, 0xff, 0xff, 0xff));
  absl::StatusOr<SdesCrypto> zero =
      ParseSdesCrypto(absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kRfcKey, "|0:1"));
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_THAT(zero->key.mki_bytes(), ElementsAre(0x00));
}

TEST(SdesTest, Lifetimes) {
  struct Case {
    const char* text;
    uint64_t packets;
    const char* formatted;
  };
  const Case cases[] = {
      {"2^1", 2, "2^1"},
      {"2^31", uint64_t{1} << 31, "2^31"},
      {"2^48", uint64_t{1} << 48, "2^48"},
      {"1", 1, "1"},
      {"1048576", 1048576, "2^20"},
      {"1000000", 1000000, "1000000"},
      {"1152921504606846976", uint64_t{1} << 60, "1152921504606846976"},  // 2^60: no 2^n form
      {"18446744073709551615", UINT64_MAX, "18446744073709551615"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<SdesCrypto> crypto =
        ParseSdesCrypto(absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kRfcKey, "|", c.text));
    ASSERT_TRUE(crypto.ok()) << crypto.status();
    EXPECT_EQ(crypto->key.lifetime, c.packets);
    EXPECT_EQ(FormatSdesCrypto(*crypto),
              absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kRfcKey, "|", c.formatted));
  }
}

TEST(SdesTest, SessionParameters) {
  absl::StatusOr<SdesCrypto> crypto = ParseSdesCrypto(
      absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kRfcKey, " KDR=0 UNENCRYPTED_SRTCP WSH=256"));
  ASSERT_TRUE(crypto.ok()) << crypto.status();
  EXPECT_TRUE(crypto->unencrypted_srtcp);
  EXPECT_EQ(crypto->window_size_hint, 256u);
  // KDR=0 is the default and is not written back.
  EXPECT_EQ(FormatSdesCrypto(*crypto),
            absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kRfcKey, " UNENCRYPTED_SRTCP WSH=256"));
}

// --- Errors ----------------------------------------------------------------

struct BadInput {
  std::string input;
  std::string message;  // a substring of the error
};

std::vector<BadInput> BadInputs() {
  const std::string k = kRfcKey;
  const std::string p = "AES_CM_128_HMAC_SHA1_80 inline:";
  return {
      {"", "empty crypto attribute"},
      {" \r\n", "empty crypto attribute"},
      {"1", "missing suite after the tag"},
      {"inline:" + k, "missing suite before the inline key"},
      {"1 inline:" + k, "missing suite before the inline key"},
      {"1234567890 " + p + k, "tag has 10 digits"},
      {"AES_CM_129_HMAC_SHA1_80 inline:" + k, "unknown suite \"AES_CM_129_HMAC_SHA1_80\""},
      {"aes_cm_128_hmac_sha1_80 inline:" + k,
       "suite names are case-sensitive, did you mean AES_CM_128_HMAC_SHA1_80?"},
      {"F8_128_HMAC_SHA1_80 inline:" + k,
       "unknown suite \"F8_128_HMAC_SHA1_80\": Sluice supports AES_CM_128_HMAC_SHA1_80,"},
      {"AES_CM_128_HMAC_SHA1_80", "missing key parameters after AES_CM_128_HMAC_SHA1_80"},
      {"AES_CM_128_HMAC_SHA1_80 " + k, "must start with \"inline:\""},
      {"AES_CM_128_HMAC_SHA1_80 INLINE:" + k, "must start with \"inline:\""},
      {p, "inline key is empty"},
      {p + "|2^20", "inline key is empty"},
      {p + k.substr(0, 20) + "!" + k.substr(21), "character 21 is outside the standard alphabet"},
      {p + k.substr(0, 20) + "-" + k.substr(21), "character 21 is outside the standard alphabet"},
      {p + k.substr(0, 20) + "\t" + k.substr(21), "character 21 is outside the standard alphabet"},
      {p + k + "A", "41 characters do not decode to whole bytes"},
      {p + k + "=", "wrong '=' padding"},
      {p + k.substr(0, 38) + "=", "wrong '=' padding"},
      {p + k.substr(0, 38) + "===", "wrong '=' padding"},
      {"AEAD_AES_128_GCM inline:" + k.substr(0, 37) + "B", "non-zero unused bits"},
      {"AES_256_CM_HMAC_SHA1_80 inline:" + k,
       "key for AES_256_CM_HMAC_SHA1_80 must be 46 bytes (key 32 + salt 14), got 30"},
      {"AEAD_AES_128_GCM inline:" + k,
       "key for AEAD_AES_128_GCM must be 28 bytes (key 16 + salt 12), got 30"},
      {p + k + "|2^49", "lifetime \"2^49\" is out of range"},
      {p + k + "|2^0", "lifetime \"2^0\" is out of range"},
      {p + k + "|2^", "malformed lifetime \"2^\""},
      {p + k + "|2^x", "malformed lifetime: expected a packet count or 2^n"},
      {p + k + "|0", "lifetime 0 is out of range"},
      {p + k + "|-5", "malformed lifetime \"-5\""},
      {p + k + "|+5", "malformed lifetime \"+5\""},
      {p + k + "|abc", "malformed lifetime"},
      {p + k + "|", "malformed lifetime \"\""},
      {p + k + "|18446744073709551616", "lifetime \"18446744073709551616\" is too large"},
      {p + k + "|1:5", "MKI length \"5\" is out of range: Sluice supports 1 to 4 bytes"},
      {p + k + "|1:0", "MKI length \"0\" is out of range"},
      {p + k + "|256:1", "MKI value \"256\" does not fit in its length of 1 byte"},
      {p + k + "|4294967296:4", "MKI value \"4294967296\" does not fit in its length of 4 bytes"},
      {p + k + "|x:1", "malformed MKI"},
      {p + k + "|1:", "malformed MKI \"1:\""},
      {p + k + "|:1", "malformed MKI \":1\""},
      {p + k + "|1:2:3", "malformed MKI \"1:2:3\""},
      {p + k + "|2^20|7", "malformed MKI \"7\""},
      {p + k + "|1:4|2^20", "MKI before the lifetime"},
      {p + k + "|2^20|1:4|5", "4 '|'-separated fields"},
      {p + k + "|2^20|1:4;inline:" + k + "|2^20|2:4",
       "2 key parameters separated by ';': only one inline key is supported"},
      {p + k + ";", "only one inline key is supported"},
      {p + k + " inline:" + k, "only one inline key is supported"},
      {p + k + " KDR=1",
       "key derivation rate KDR=1 is not supported: Sluice derives session keys once (KDR=0)"},
      {p + k + " KDR=5",
       "key derivation rate KDR=5 is not supported: Sluice derives session keys once (KDR=0)"},
      {p + k + " KDR=x", "malformed key derivation rate KDR: expected KDR=0"},
      {p + k + " KDR", "malformed key derivation rate"},
      {p + k + " KDR=0 KDR=0", "KDR appears twice"},
      {p + k + " UNENCRYPTED_SRTP", "UNENCRYPTED_SRTP is not supported"},
      {p + k + " UNAUTHENTICATED_SRTP", "UNAUTHENTICATED_SRTP is not supported"},
      {p + k + " FEC_ORDER=FEC_SRTP", "FEC_ORDER is not supported"},
      {p + k + " FEC_KEY=inline:" + k, "FEC_KEY is not supported"},
      {p + k + " UNENCRYPTED_SRTCP=1", "UNENCRYPTED_SRTCP takes no value"},
      {p + k + " UNENCRYPTED_SRTCP UNENCRYPTED_SRTCP", "UNENCRYPTED_SRTCP appears twice"},
      {p + k + " WSH=32", "window size hint WSH=32 is too small"},
      {p + k + " WSH=63", "window size hint WSH=63 is too small"},
      {p + k + " WSH=abc", "malformed window size hint WSH: expected WSH=<n>, n >= 64"},
      {p + k + " WSH=4294967296", "window size hint WSH=4294967296 is too large"},
      {p + k + " WSH=64 WSH=128", "WSH appears twice"},
      {p + k + " FOO=1", "unknown session parameter \"FOO\""},
      {p + k + " foo", "unknown session parameter:"},
  };
}

TEST(SdesErrorTest, EachErrorSaysWhatIsWrong) {
  for (const BadInput& bad : BadInputs()) {
    SCOPED_TRACE(bad.input);
    absl::StatusOr<SdesCrypto> crypto = ParseSdesCrypto(bad.input);
    ASSERT_FALSE(crypto.ok());
    EXPECT_EQ(crypto.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(crypto.status().message(), HasSubstr(bad.message));
  }
}

// Keys a person would recognise in a log: the RFC one, one of upper-case
// letters and digits only (the characters a suite or parameter name has),
// and one of digits only (the characters a lifetime or MKI has). All three
// decode to 30 bytes.
const char* const kRecognisableKeys[] = {
    kRfcKey,
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCD",
    "1234567890123456789012345678901234567890",
};

// Every place a key could end up in a malformed attribute.
const char* const kKeyPlacements[] = {
    "KEY",
    "1 KEY",
    "KEY AES_CM_128_HMAC_SHA1_80",
    "1 KEY inline:KEY",
    "inline:KEY",
    "AES_CM_128_HMAC_SHA1_80 KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY!",
    "AES_CM_128_HMAC_SHA1_80 inline:!KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEYA",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY=",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY==",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY\tKEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEYKEY",
    "AES_256_CM_HMAC_SHA1_80 inline:KEY",
    "AEAD_AES_256_GCM inline:KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY|KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY|2^KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY|KEY:4",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY|1:KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|KEY:1",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:4|KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY;inline:KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY inline:KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY KEY=1",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY KDR=KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY WSH=KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY FEC_KEY=inline:KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY UNENCRYPTED_SRTCP=KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY FOO=KEY",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY UNENCRYPTED_SRTP",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY KDR=1",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY|2^49",
    "AES_CM_128_HMAC_SHA1_80 inline:KEY|1:5",
};

TEST(SdesErrorTest, NeverQuotesTheKey) {
  int refused = 0;
  for (const char* key : kRecognisableKeys) {
    for (const char* placement : kKeyPlacements) {
      const std::string input = absl::StrReplaceAll(placement, {{"KEY", key}});
      SCOPED_TRACE(input);
      absl::StatusOr<SdesCrypto> crypto = ParseSdesCrypto(input);
      ASSERT_FALSE(crypto.ok());
      ++refused;
      const absl::string_view message = crypto.status().message();
      EXPECT_THAT(message, Not(HasSubstr(key)));
      EXPECT_THAT(message, Not(HasSubstr(std::string(key).substr(0, 16))));
      EXPECT_THAT(message, Not(HasSubstr(std::string(key).substr(24))));
    }
  }
  EXPECT_EQ(refused, 3 * static_cast<int>(std::size(kKeyPlacements)));
  // The table of error classes with the RFC key in it, too.
  for (const BadInput& bad : BadInputs()) {
    absl::StatusOr<SdesCrypto> crypto = ParseSdesCrypto(bad.input);
    EXPECT_THAT(crypto.status().message(), Not(HasSubstr(std::string(kRfcKey).substr(0, 16))))
        << bad.input;
  }
}

TEST(SdesErrorTest, KeyPlacementsAreValidWithAGoodKey) {
  // The recognisable keys themselves parse: what the test above refuses is
  // the placement, not the key.
  for (const char* key : kRecognisableKeys) {
    absl::StatusOr<SdesCrypto> crypto =
        ParseSdesCrypto(absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", key));
    EXPECT_TRUE(crypto.ok()) << key << ": " << crypto.status();
  }
}

// --- MasterKey ---------------------------------------------------------------

MasterKey RfcMasterKey() {
  absl::StatusOr<SdesCrypto> crypto = ParseSdesCrypto(kRfcExample);
  EXPECT_TRUE(crypto.ok()) << crypto.status();
  return crypto->key;
}

TEST(MasterKeyTest, SameKeyAs) {
  const MasterKey a = RfcMasterKey();
  MasterKey b = a;
  EXPECT_TRUE(a.SameKeyAs(b));

  // Lifetime, MKI and bytes past the suite's lengths are not the key.
  b.lifetime = 5;
  b.mki = {9, 9, 9, 9};
  b.key[20] ^= 1;  // AES-128: only 16 key bytes are used
  EXPECT_TRUE(a.SameKeyAs(b));

  MasterKey c = a;
  c.key[15] ^= 0x80;
  EXPECT_FALSE(a.SameKeyAs(c));
  MasterKey d = a;
  d.salt[13] ^= 0x01;
  EXPECT_FALSE(a.SameKeyAs(d));
  // The same key under a suite that only changes the tag length derives the
  // same keystream: still the same key.
  MasterKey e = a;
  e.suite = crypto::Suite::kAesCm128HmacSha1_32;
  EXPECT_TRUE(a.SameKeyAs(e));
  // A different key size is a different key.
  MasterKey f = a;
  f.suite = crypto::Suite::kAes256CmHmacSha1_80;
  EXPECT_FALSE(a.SameKeyAs(f));
}

// The reuse check keeps fingerprints, not keys: they must agree with
// SameKeyAs on every kind of pair, across suites and salt sizes.
TEST(MasterKeyTest, FingerprintsMatchExactlyWhenSameKeyAs) {
  const MasterKey a = RfcMasterKey();
  std::vector<MasterKey> keys = {a};
  MasterKey k = a;
  k.lifetime = 5;
  k.mki = {9, 9, 9, 9};
  k.key[20] ^= 1;  // past AES-128's 16 bytes
  keys.push_back(k);
  k = a;
  k.key[15] ^= 0x80;
  keys.push_back(k);
  k = a;
  k.salt[13] ^= 0x01;  // past AES-GCM's 12 salt bytes, within AES-CM's 14
  keys.push_back(k);
  k = a;
  k.salt[11] ^= 0x01;
  keys.push_back(k);
  k = a;
  k.suite = crypto::Suite::kAesCm128HmacSha1_32;
  keys.push_back(k);
  k = a;
  k.suite = crypto::Suite::kAeadAes128Gcm;  // same key size, 12-byte salt
  keys.push_back(k);
  k.salt[12] ^= 0x01;  // not part of a GCM salt
  keys.push_back(k);
  k = a;
  k.suite = crypto::Suite::kAes256CmHmacSha1_80;
  keys.push_back(k);
  k = a;
  k.suite = crypto::Suite::kNullHmacSha1_80;
  keys.push_back(k);
  int same = 0, different = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t j = 0; j < keys.size(); ++j) {
      const bool want = keys[i].SameKeyAs(keys[j]);
      EXPECT_EQ(KeyFingerprint(keys[i]).Matches(KeyFingerprint(keys[j])), want)
          << "keys " << i << " and " << j;
      (want ? same : different)++;
    }
  }
  // Both answers were exercised, beyond each key against itself.
  EXPECT_GT(same, static_cast<int>(keys.size()));
  EXPECT_GT(different, 0);
}

TEST(MasterKeyTest, DestructorWipesKeySaltAndMki) {
  alignas(MasterKey) unsigned char storage[sizeof(MasterKey)];
  MasterKey* key = new (storage) MasterKey(RfcMasterKey());
  key->key.fill(0xa5);
  key->salt.fill(0x5a);
  key->mki.fill(0x11);
  const size_t key_at = offsetof(MasterKey, key);
  const size_t salt_at = offsetof(MasterKey, salt);
  const size_t mki_at = offsetof(MasterKey, mki);
  ASSERT_EQ(storage[key_at], 0xa5);

  key->~MasterKey();
  for (size_t i = 0; i < sizeof(MasterKey::key); ++i) EXPECT_EQ(storage[key_at + i], 0) << i;
  for (size_t i = 0; i < sizeof(MasterKey::salt); ++i) EXPECT_EQ(storage[salt_at + i], 0) << i;
  for (size_t i = 0; i < sizeof(MasterKey::mki); ++i) EXPECT_EQ(storage[mki_at + i], 0) << i;
}

}  // namespace
}  // namespace sluice::srtp
