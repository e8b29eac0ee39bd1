#include "sluice/dtls/certificate.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/dtls/fingerprint.h"

namespace sluice::dtls {
namespace {

using ::testing::HasSubstr;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

X509Ptr ParseDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  return X509Ptr(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

std::string CommonName(X509* x) {
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
  return cn;
}

// Seconds from now to an ASN1_TIME (negative: in the past).
int64_t SecondsFromNow(const ASN1_TIME* t) {
  int days = 0, seconds = 0;
  EXPECT_EQ(ASN1_TIME_diff(&days, &seconds, nullptr, t), 1);
  return int64_t{days} * 86400 + seconds;
}

TEST(CertificateTest, GeneratedIsSelfSignedP256WithTheAskedValidity) {
  absl::StatusOr<Certificate> cert = Certificate::Generate();
  ASSERT_TRUE(cert.ok()) << cert.status();
  X509Ptr x = ParseDer(cert->der());
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(CommonName(x.get()), "sluice");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(x.get()), X509_get_issuer_name(x.get())), 0);
  EXPECT_EQ(X509_get_version(x.get()), X509_VERSION_3);
  EVP_PKEY* key = X509_get0_pubkey(x.get());
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(key, "EC"));
  char group[64] = {};
  size_t group_len = 0;
  EXPECT_EQ(EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &group_len), 1);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_EQ(X509_verify(x.get(), key), 1);  // signed by its own key
  EXPECT_EQ(X509_get_signature_nid(x.get()), NID_ecdsa_with_SHA256);
  const int64_t day = 86400;
  EXPECT_NEAR(SecondsFromNow(X509_get0_notBefore(x.get())), -day, 60);
  EXPECT_NEAR(SecondsFromNow(X509_get0_notAfter(x.get())), 30 * day, 60);
}

TEST(CertificateTest, SerialsAndKeysAreRandom) {
  Certificate a = *Certificate::Generate();
  Certificate b = *Certificate::Generate();
  X509Ptr xa = ParseDer(a.der());
  X509Ptr xb = ParseDer(b.der());
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(xa.get()), X509_get0_serialNumber(xb.get())),
            0);
  for (X509* x : {xa.get(), xb.get()}) {
    std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(
        ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr), BN_free);
    EXPECT_FALSE(BN_is_zero(serial.get()) || BN_is_negative(serial.get()));
    EXPECT_LE(BN_num_bits(serial.get()), 64);
  }
  EXPECT_NE(FormatFingerprint(a.GetFingerprint()), FormatFingerprint(b.GetFingerprint()));
}

TEST(CertificateTest, OptionsAreUsedAndChecked) {
  Certificate::GenerateOptions o;
  o.common_name = "relay-7";
  o.valid_days = 2;
  o.backdate_days = 0;
  X509Ptr x = ParseDer(Certificate::Generate(o)->der());
  EXPECT_EQ(CommonName(x.get()), "relay-7");
  EXPECT_NEAR(SecondsFromNow(X509_get0_notBefore(x.get())), 0, 60);
  EXPECT_NEAR(SecondsFromNow(X509_get0_notAfter(x.get())), 2 * 86400, 60);
  o.valid_days = 0;
  EXPECT_EQ(Certificate::Generate(o).status().code(), absl::StatusCode::kInvalidArgument);
}

// The fingerprint is OpenSSL's X509_digest of the certificate, in RFC 8122
// notation.
TEST(CertificateTest, FingerprintIsTheDigestOfTheDer) {
  Certificate cert = *Certificate::Generate();
  X509Ptr x = ParseDer(cert.der());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ASSERT_EQ(X509_digest(x.get(), EVP_sha256(), md, &len), 1);
  const Fingerprint fp = cert.GetFingerprint();
  EXPECT_EQ(fp.hash, HashFunction::kSha256);
  EXPECT_EQ(std::vector<uint8_t>(md, md + len),
            std::vector<uint8_t>(fp.digest_bytes().begin(), fp.digest_bytes().end()));
  EXPECT_TRUE(MatchFingerprints(cert.der(), std::vector{cert.GetFingerprint(HashFunction::kSha384)})
                  .ok());
}

// --- PEM files.

class PemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/sluice-dtls-cert-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  static std::string KeyPem(EVP_PKEY* key) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(n));
  }

  // A self-signed certificate for `key`, made with OpenSSL directly.
  static std::string CertPem(EVP_PKEY* key) {
    X509Ptr x(X509_new());
    ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 7);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
    X509_set_pubkey(x.get(), key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x.get()), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("peer"), -1, -1, 0);
    X509_set_issuer_name(x.get(), X509_get_subject_name(x.get()));
    X509_sign(x.get(), key, EVP_PKEY_is_a(key, "ED25519") ? nullptr : EVP_sha256());
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_X509(bio.get(), x.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(n));
  }

  std::string dir_;
};

TEST_F(PemTest, LoadsEcdsaAndRsaCertificatesWithTheirKeys) {
  PkeyPtr keys[] = {PkeyPtr(EVP_EC_gen("P-384")), PkeyPtr(EVP_RSA_gen(2048))};
  for (const PkeyPtr& key : keys) {
    const std::string cert_pem = CertPem(key.get());
    absl::StatusOr<Certificate> cert = Certificate::LoadPemFiles(Write("c.pem", cert_pem),
                                                                 Write("k.pem", KeyPem(key.get())));
    ASSERT_TRUE(cert.ok()) << cert.status();
    EXPECT_EQ(cert->CertificatePem(), cert_pem);
    EXPECT_EQ(CommonName(ParseDer(cert->der()).get()), "peer");
    EXPECT_TRUE(Certificate::FromPem(cert_pem, KeyPem(key.get())).ok());
  }
}

TEST_F(PemTest, RefusesWithAClearMessage) {
  PkeyPtr ec(EVP_EC_gen("P-256"));
  PkeyPtr other(EVP_EC_gen("P-256"));
  PkeyPtr small_rsa(EVP_RSA_gen(1024));
  PkeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  const std::string cert = Write("c.pem", CertPem(ec.get()));
  const std::string key = Write("k.pem", KeyPem(ec.get()));
  struct Case {
    absl::StatusOr<Certificate> result;
    absl::StatusCode code;
    std::string says;
  };
  const Case cases[] = {
      {Certificate::LoadPemFiles(dir_ + "/none.pem", key), absl::StatusCode::kNotFound,
       "none.pem: No such file"},
      {Certificate::LoadPemFiles(cert, dir_ + "/none.pem"), absl::StatusCode::kNotFound,
       "DTLS key file " + dir_ + "/none.pem"},
      {Certificate::LoadPemFiles(Write("junk.pem", "not a pem"), key),
       absl::StatusCode::kInvalidArgument, "junk.pem: no PEM certificate"},
      {Certificate::LoadPemFiles(cert, cert), absl::StatusCode::kInvalidArgument,
       "no unencrypted PEM private key"},
      {Certificate::FromPem(CertPem(ec.get()), KeyPem(other.get())),
       absl::StatusCode::kInvalidArgument, "does not match the certificate"},
      {Certificate::FromPem(CertPem(small_rsa.get()), KeyPem(small_rsa.get())),
       absl::StatusCode::kInvalidArgument, "RSA of 1024 bits"},
      {Certificate::FromPem(CertPem(ed.get()), KeyPem(ed.get())),
       absl::StatusCode::kInvalidArgument, "ED25519 is not supported"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.says);
    ASSERT_FALSE(c.result.ok());
    EXPECT_EQ(c.result.status().code(), c.code);
    EXPECT_THAT(c.result.status().message(), HasSubstr(c.says));
  }
}

}  // namespace
}  // namespace sluice::dtls
