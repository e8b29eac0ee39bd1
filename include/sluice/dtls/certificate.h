// sluiced's DTLS certificate: generated at start (ECDSA P-256, self-signed,
// as WebRTC peers use) or loaded from PEM files, with its fingerprints for
// the SDP Sluice answers with (RFC 8122 §5).
//
// Made on the control thread at start; then immutable, so copies (which
// share it) may be used on any thread. The private key never leaves the
// object: there is no way to print or export it.
#ifndef SLUICE_DTLS_CERTIFICATE_H_
#define SLUICE_DTLS_CERTIFICATE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sluice/dtls/fingerprint.h"

namespace sluice::dtls {

namespace internal {
struct CertificateState;  // OpenSSL objects; src/dtls/ only
}

class Certificate {
 public:
  struct GenerateOptions {
    std::string common_name = "sluice";
    // Valid from now - backdate_days (peers with a slow clock still accept
    // it) to now + valid_days.
    int valid_days = 30;
    int backdate_days = 1;
  };

  // A new ECDSA P-256 key and a self-signed X.509 v3 certificate for it,
  // with a random 64-bit serial, signed with SHA-256.
  static absl::StatusOr<Certificate> Generate(const GenerateOptions& options);
  static absl::StatusOr<Certificate> Generate() { return Generate(GenerateOptions{}); }

  // A PEM certificate (the first one in the file; DTLS-SRTP peers check only
  // its fingerprint) and its PEM private key: ECDSA, or RSA of 2048 bits or
  // more. The key must match the certificate.
  static absl::StatusOr<Certificate> LoadPemFiles(const std::string& cert_file,
                                                  const std::string& key_file);
  static absl::StatusOr<Certificate> FromPem(absl::string_view cert_pem,
                                             absl::string_view key_pem);

  // The certificate in DER, which fingerprints hash.
  std::span<const uint8_t> der() const;
  Fingerprint GetFingerprint(HashFunction hash = HashFunction::kSha256) const;
  // The certificate (not the key) in PEM.
  std::string CertificatePem() const;

  // For src/dtls/ (which alone sees OpenSSL): the certificate's objects.
  const internal::CertificateState& state() const { return *state_; }

 private:
  explicit Certificate(std::shared_ptr<const internal::CertificateState> state)
      : state_(std::move(state)) {}

  std::shared_ptr<const internal::CertificateState> state_;
};

}  // namespace sluice::dtls

#endif  // SLUICE_DTLS_CERTIFICATE_H_
