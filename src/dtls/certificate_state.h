// What a dtls::Certificate holds: its OpenSSL objects, and the SSL_CTX that
// endpoint.cc builds for it on first use (one per certificate, shared by its
// endpoints: building one costs more than a handshake's share of it).
//
// src/dtls/ only. Immutable after construction but for the context, which
// std::call_once makes once whatever thread asks first.
#ifndef SLUICE_SRC_DTLS_CERTIFICATE_STATE_H_
#define SLUICE_SRC_DTLS_CERTIFICATE_STATE_H_

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <mutex>
#include <vector>

namespace sluice::dtls::internal {

struct CertificateState {
  CertificateState(X509* x509_in, EVP_PKEY* key_in) : x509(x509_in), key(key_in) {}
  CertificateState(const CertificateState&) = delete;
  CertificateState& operator=(const CertificateState&) = delete;
  ~CertificateState() {
    SSL_CTX_free(ctx);
    EVP_PKEY_free(key);
    X509_free(x509);
  }

  X509* x509;
  EVP_PKEY* key;
  std::vector<uint8_t> der;

  mutable std::once_flag ctx_once;
  mutable SSL_CTX* ctx = nullptr;  // nullptr after call_once: it could not be built
};

}  // namespace sluice::dtls::internal

#endif  // SLUICE_SRC_DTLS_CERTIFICATE_STATE_H_
