#include "sluice/dtls/certificate.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "certificate_state.h"

namespace sluice::dtls {
namespace {

using internal::CertificateState;

constexpr int kMinRsaBits = 2048;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The reason OpenSSL gives for its last error, and the queue cleared.
std::string OpenSslReason() {
  const unsigned long e = ERR_peek_last_error();
  const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return reason != nullptr ? reason : "unknown OpenSSL error";
}

absl::Status CheckKey(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC")) return absl::OkStatus();
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (EVP_PKEY_get_bits(key) >= kMinRsaBits) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("DTLS private key: RSA of ",
                                                   EVP_PKEY_get_bits(key), " bits; at least ",
                                                   kMinRsaBits, " are required"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("DTLS private key: type ", EVP_PKEY_get0_type_name(key),
                   " is not supported (ECDSA or RSA are)"));
}

// Takes both objects; checks they belong together and caches the DER.
absl::StatusOr<std::shared_ptr<const CertificateState>> MakeState(X509Ptr x509, PkeyPtr key) {
  if (absl::Status s = CheckKey(key.get()); !s.ok()) return s;
  if (X509_check_private_key(x509.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("DTLS private key does not match the certificate");
  }
  auto state = std::make_shared<CertificateState>(x509.release(), key.release());
  unsigned char* der = nullptr;
  const int len = i2d_X509(state->x509, &der);
  if (len <= 0) return absl::InternalError(absl::StrCat("DTLS certificate: ", OpenSslReason()));
  state->der.assign(der, der + len);
  OPENSSL_free(der);
  return state;
}

absl::Status SetValidity(X509* x509, const Certificate::GenerateOptions& options) {
  constexpr long kDay = 24L * 3600;
  if (X509_gmtime_adj(X509_getm_notBefore(x509), -options.backdate_days * kDay) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(x509), options.valid_days * kDay) == nullptr) {
    return absl::InternalError(absl::StrCat("DTLS certificate validity: ", OpenSslReason()));
  }
  return absl::OkStatus();
}

// RFC 5280 §4.1.2.2: a positive serial; 64 random bits, never zero.
absl::Status SetRandomSerial(X509* x509) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_new(), BN_free);
  if (serial == nullptr) return absl::ResourceExhaustedError("DTLS certificate serial");
  do {
    if (BN_rand(serial.get(), 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
      return absl::InternalError(absl::StrCat("DTLS certificate serial: ", OpenSslReason()));
    }
  } while (BN_is_zero(serial.get()));
  if (BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x509)) == nullptr) {
    return absl::InternalError(absl::StrCat("DTLS certificate serial: ", OpenSslReason()));
  }
  return absl::OkStatus();
}

absl::Status FillSelfSigned(X509* x509, EVP_PKEY* key, const Certificate::GenerateOptions& o) {
  X509_NAME* name = X509_get_subject_name(x509);
  if (X509_set_version(x509, X509_VERSION_3) != 1 || X509_set_pubkey(x509, key) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(o.common_name.c_str()),
                                 -1, -1, 0) != 1 ||
      X509_set_issuer_name(x509, name) != 1) {
    return absl::InternalError(absl::StrCat("DTLS certificate: ", OpenSslReason()));
  }
  if (absl::Status s = SetRandomSerial(x509); !s.ok()) return s;
  if (absl::Status s = SetValidity(x509, o); !s.ok()) return s;
  if (X509_sign(x509, key, EVP_sha256()) <= 0) {
    return absl::InternalError(absl::StrCat("DTLS certificate signature: ", OpenSslReason()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const CertificateState>> FromBios(BIO* cert_bio, BIO* key_bio, absl::string_view cert_what,
                                     absl::string_view key_what) {
  X509Ptr x509(PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr));
  if (x509 == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(cert_what, ": no PEM certificate in it"));
  }
  // No passphrase callback: an encrypted key is refused, not prompted for.
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, const_cast<char*>("")));
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_what, ": no unencrypted PEM private key in it"));
  }
  return MakeState(std::move(x509), std::move(key));
}

}  // namespace

absl::StatusOr<Certificate> Certificate::Generate(const GenerateOptions& options) {
  if (options.valid_days <= 0 || options.backdate_days < 0 || options.common_name.empty()) {
    return absl::InvalidArgumentError(
        "DTLS certificate: valid_days > 0, backdate_days >= 0 and a common name are required");
  }
  PkeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr x509(X509_new());
  if (key == nullptr || x509 == nullptr) {
    return absl::InternalError(absl::StrCat("DTLS key generation: ", OpenSslReason()));
  }
  if (absl::Status s = FillSelfSigned(x509.get(), key.get(), options); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const CertificateState>> state =
      MakeState(std::move(x509), std::move(key));
  if (!state.ok()) return state.status();
  return Certificate(*std::move(state));
}

absl::StatusOr<Certificate> Certificate::LoadPemFiles(const std::string& cert_file,
                                                      const std::string& key_file) {
  BioPtr cert_bio(BIO_new_file(cert_file.c_str(), "r"));
  if (cert_bio == nullptr) {
    ERR_clear_error();
    return absl::NotFoundError(
        absl::StrCat("DTLS certificate file ", cert_file, ": ", std::strerror(errno)));
  }
  BioPtr key_bio(BIO_new_file(key_file.c_str(), "r"));
  if (key_bio == nullptr) {
    ERR_clear_error();
    return absl::NotFoundError(
        absl::StrCat("DTLS key file ", key_file, ": ", std::strerror(errno)));
  }
  absl::StatusOr<std::shared_ptr<const CertificateState>> state =
      FromBios(cert_bio.get(), key_bio.get(), absl::StrCat("DTLS certificate file ", cert_file),
               absl::StrCat("DTLS key file ", key_file));
  if (!state.ok()) return state.status();
  return Certificate(*std::move(state));
}

absl::StatusOr<Certificate> Certificate::FromPem(absl::string_view cert_pem,
                                                 absl::string_view key_pem) {
  BioPtr cert_bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  BioPtr key_bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  if (cert_bio == nullptr || key_bio == nullptr) {
    return absl::ResourceExhaustedError("DTLS certificate: out of memory");
  }
  absl::StatusOr<std::shared_ptr<const CertificateState>> state =
      FromBios(cert_bio.get(), key_bio.get(), "DTLS certificate PEM", "DTLS private key PEM");
  if (!state.ok()) return state.status();
  return Certificate(*std::move(state));
}

std::span<const uint8_t> Certificate::der() const { return state_->der; }

Fingerprint Certificate::GetFingerprint(HashFunction hash) const {
  return ComputeFingerprint(state_->der, hash);
}

std::string Certificate::CertificatePem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), state_->x509) != 1) return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace sluice::dtls
