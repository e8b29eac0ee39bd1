// Certificates made at test time with OpenSSL: a CA, and leaf certificates
// it (or another CA) signs, written as PEM files (keys mode 0600).
//
// Test thread only. Header-only: the TLS unit tests and the daemon-level
// control tests share it.
#ifndef SLUICE_TESTS_CONTROL_TEST_CERTS_H_
#define SLUICE_TESTS_CONTROL_TEST_CERTS_H_

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::control::testing {

struct CertSpec {
  std::string cn;
  std::vector<std::string> san;  // "DNS:name", "IP:127.0.0.1", "URI:..."
  long valid_from_s = -3600;     // relative to now
  long valid_until_s = 365L * 86400;
  bool ca = false;
  bool rsa = false;  // RSA-2048 instead of P-256
  bool client = false;  // extendedKeyUsage clientAuth instead of serverAuth
};

struct Issued {
  std::shared_ptr<X509> cert;
  std::shared_ptr<EVP_PKEY> key;
  std::string cert_file;  // PEM certificate
  std::string key_file;   // PEM private key, mode 0600
};

inline void Require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what);
}

inline void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  Require(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// Makes a certificate for `spec`, signed by `issuer` (self-signed when null),
// and writes <dir>/<name>.pem and <dir>/<name>.key.
inline Issued MakeCert(const CertSpec& spec, const Issued* issuer, const std::string& dir,
                       const std::string& name) {
  Issued out;
  out.key.reset(spec.rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"), EVP_PKEY_free);
  Require(out.key != nullptr, "key");
  out.cert.reset(X509_new(), X509_free);
  X509* x = out.cert.get();
  X509_set_version(x, 2);
  unsigned char serial[8];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
  BN_free(bn);
  X509_time_adj_ex(X509_getm_notBefore(x), 0, spec.valid_from_s, nullptr);
  X509_time_adj_ex(X509_getm_notAfter(x), 0, spec.valid_until_s, nullptr);
  X509_set_pubkey(x, out.key.get());
  X509_NAME* subject = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Sluice tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : x;
  EVP_PKEY* issuer_key = issuer != nullptr ? issuer->key.get() : out.key.get();
  X509_set_issuer_name(x, X509_get_subject_name(issuer_cert));
  AddExtension(x, issuer_cert, NID_subject_key_identifier, "hash");
  if (spec.ca) {
    AddExtension(x, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(x, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(x, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(x, issuer_cert, NID_authority_key_identifier, "keyid:always");
    AddExtension(x, issuer_cert, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
  }
  if (!spec.san.empty()) {
    std::string san;
    for (const std::string& s : spec.san) san += (san.empty() ? "" : ",") + s;
    AddExtension(x, issuer_cert, NID_subject_alt_name, san);
  }
  Require(X509_sign(x, issuer_key, EVP_sha256()) > 0, "sign");

  out.cert_file = dir + "/" + name + ".pem";
  out.key_file = dir + "/" + name + ".key";
  FILE* f = std::fopen(out.cert_file.c_str(), "w");
  Require(f != nullptr && PEM_write_X509(f, x) == 1, "write certificate");
  std::fclose(f);
  f = std::fopen(out.key_file.c_str(), "w");
  Require(f != nullptr, "open key file");
  chmod(out.key_file.c_str(), 0600);
  Require(PEM_write_PrivateKey(f, out.key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "write key");
  std::fclose(f);
  return out;
}

}  // namespace sluice::control::testing

#endif  // SLUICE_TESTS_CONTROL_TEST_CERTS_H_
