#include "sluice/control/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sluice::control {
namespace {

// TLS 1.2: ECDHE key exchange (forward secrecy) with an AEAD cipher only.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
// TLS 1.3 suites are all AEAD with (EC)DHE; CCM is left out.
constexpr char kTls13Suites[] =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
constexpr char kGroups[] = "X25519:P-256:P-384";
constexpr int kVerifyDepth = 8;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};

std::string Subject(const X509* cert) {
  if (cert == nullptr) return "(none)";
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr) return "(?)";
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0,
                     XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  std::string subject = n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
  return subject.empty() ? "(empty subject)" : subject;
}

// An ASN1 string as text, or nothing when it holds a NUL (a name that
// could be read two ways is no name).
bool AsnText(const ASN1_STRING* s, std::string* out) {
  if (s == nullptr) return false;
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return false;
  out->assign(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out->find('\0') == std::string::npos;
}

// The names a client certificate can be listed by: subject CNs and DNS, URI,
// email and IP SANs.
std::vector<std::string> CertificateNames(X509* cert) {
  std::vector<std::string> names;
  const X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
    std::string cn;
    if (AsnText(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)), &cn)) {
      names.push_back(std::move(cn));
    }
  }
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
    std::string text;
    switch (gn->type) {
      case GEN_DNS:
      case GEN_URI:
      case GEN_EMAIL:
        if (AsnText(gn->d.ia5, &text)) names.push_back(std::move(text));
        break;
      case GEN_IPADD: {
        const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
        char buf[INET6_ADDRSTRLEN] = {};
        const int len = ASN1_STRING_length(ip);
        const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
        if (family != 0 && inet_ntop(family, ASN1_STRING_get0_data(ip), buf, sizeof(buf))) {
          names.emplace_back(buf);
        }
        break;
      }
      default:
        break;
    }
  }
  return names;
}

// Per connection: why its certificate was refused, set by the verify callback.
void FreeReason(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

int ReasonIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeReason);
  return index;
}

void SetReason(SSL* ssl, std::string reason) {
  if (SSL_get_ex_data(ssl, ReasonIndex()) != nullptr) return;  // the first reason is the cause
  auto* stored = new std::string(std::move(reason));
  if (SSL_set_ex_data(ssl, ReasonIndex(), stored) != 1) delete stored;
}

// Chain checks are OpenSSL's; on top, the leaf must be on the allow-list
// (kept as the SSL_CTX's app data).
int VerifyClient(int ok, X509_STORE_CTX* store) {
  SSL* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr) return 0;
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  const int depth = X509_STORE_CTX_get_error_depth(store);
  if (!ok) {
    const int err = X509_STORE_CTX_get_error(store);
    SetReason(ssl, absl::StrCat(depth == 0 ? "client certificate " : "certificate ",
                                Subject(cert), depth == 0 ? "" : absl::StrCat(" (chain depth ", depth, ")"),
                                ": ", X509_verify_cert_error_string(err)));
    return 0;
  }
  if (depth != 0) return 1;
  const auto* allowed =
      static_cast<const std::vector<std::string>*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  const std::vector<std::string> names = CertificateNames(cert);
  for (const std::string& name : names) {
    for (const std::string& entry : *allowed) {
      if (absl::EqualsIgnoreCase(name, entry)) return 1;
    }
  }
  SetReason(ssl, absl::StrCat("client certificate ", Subject(cert),
                              " is not on control.tls.allowed_clients (its names: ",
                              names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

time_t AsnTimeToUnix(const ASN1_TIME* t) {
  tm when{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &when) != 1) return 0;
  return timegm(&when);
}

std::string FormatTime(time_t t) {
  tm when{};
  gmtime_r(&t, &when);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &when);
  return buf;
}

bool IsIpAddress(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

absl::Status SslError(absl::string_view what) {
  const std::string why = DrainSslErrors();
  return absl::InvalidArgumentError(why.empty() ? std::string(what) : absl::StrCat(what, ": ", why));
}

// A private key other users can read is no longer private; one the group can
// change is not ours. Group read is allowed, for a key owned by root and
// readable by the daemon's group (mode 0640).
absl::Status CheckKeyFile(const std::string& path, absl::string_view setting) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(setting, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(setting, ": ", path, " is not a regular file"));
  }
  if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return absl::PermissionDeniedError(absl::StrCat(
        setting, ": private key ", path, " has mode ", mode,
        "; other users must have no access and the group no write (chmod 600 or 640)"));
  }
  return absl::OkStatus();
}

// Versions, suites and options both sides share.
absl::StatusOr<SslCtxPtr> NewContext(const SSL_METHOD* method) {
  SslCtxPtr ctx(SSL_CTX_new(method));
  if (ctx == nullptr) return SslError("SSL_CTX_new");
  SSL_CTX* c = ctx.get();
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(c, kTls13Suites) != 1 || SSL_CTX_set1_groups_list(c, kGroups) != 1) {
    return SslError("setting TLS versions and cipher suites");
  }
  // Requests carry SDES keys: received plaintext is wiped from OpenSSL's
  // record buffer once handed over (we wipe our own copies).
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_CLEANSE_PLAINTEXT);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  // Replies are written straight from a buffer that may move between tries;
  // idle connections give their record buffers back.
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify_depth(c, kVerifyDepth);
  return ctx;
}

// Our certificate chain and key, and the CA the peer must chain to.
absl::Status LoadIdentity(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file,
                          const std::string& ca_file, absl::string_view prefix) {
  if (absl::Status s = CheckKeyFile(key_file, absl::StrCat(prefix, "key")); !s.ok()) return s;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return SslError(absl::StrCat(prefix, "cert: cannot load a PEM certificate chain from ",
                                 cert_file));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return SslError(absl::StrCat(prefix, "key: cannot load a PEM private key from ", key_file));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return SslError(absl::StrCat(prefix, "key: ", key_file, " is not the key of ", cert_file));
  }
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return SslError(absl::StrCat(prefix, "ca: cannot load PEM CA certificates from ", ca_file));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SplitHostPort(absl::string_view text, absl::string_view what, std::string* host,
                           uint16_t* port) {
  const auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": expected HOST:PORT or [IPV6]:PORT, like 127.0.0.1:7443; got \"",
        absl::CHexEscape(text.substr(0, 128)), "\""));
  };
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return bad();
  absl::string_view h = text.substr(0, colon);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return bad();
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != absl::string_view::npos) {
    return bad();  // a bare IPv6 address: which colon starts the port?
  }
  uint32_t p = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &p) || p > 65535 ||
      !absl::ascii_isdigit(static_cast<unsigned char>(text[colon + 1]))) {
    return bad();
  }
  *host = std::string(h);
  *port = static_cast<uint16_t>(p);
  return absl::OkStatus();
}

std::string DrainSslErrors() {
  std::string out;
  while (const unsigned long err = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(err);
    const std::string text = reason != nullptr ? reason : absl::StrCat("error ", err);
    if (out.find(text) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<TlsServerContext>> TlsServerContext::Create(
    const TlsServerOptions& options, time_t now) {
  if (now == 0) now = time(nullptr);
  if (options.server_name.empty()) {
    return absl::InvalidArgumentError("control.tls.server_name is required");
  }
  if (options.allowed_clients.empty()) {
    return absl::InvalidArgumentError(
        "control.tls.allowed_clients is empty: no client could ever connect");
  }
  std::unique_ptr<TlsServerContext> self(new TlsServerContext());
  self->allowed_ = options.allowed_clients;
  ERR_clear_error();
  absl::StatusOr<SslCtxPtr> ctx = NewContext(TLS_server_method());
  if (!ctx.ok()) return ctx.status();
  self->ctx_ = std::move(*ctx);
  SSL_CTX* c = self->ctx_.get();
  if (absl::Status s =
          LoadIdentity(c, options.cert_file, options.key_file, options.ca_file, "control.tls.");
      !s.ok()) {
    return s;
  }
  STACK_OF(X509_NAME)* client_cas = SSL_load_client_CA_file(options.ca_file.c_str());
  if (client_cas == nullptr) {
    return SslError(absl::StrCat("control.tls.ca: no CA certificate in ", options.ca_file));
  }
  SSL_CTX_set_client_CA_list(c, client_cas);
  SSL_CTX_set_purpose(c, X509_PURPOSE_SSL_CLIENT);
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_app_data(c, &self->allowed_);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, VerifyClient);

  // Our own certificate: it must carry the name clients will check, and be
  // valid now.
  X509* cert = SSL_CTX_get0_certificate(c);
  self->subject_ = Subject(cert);
  const std::string& name = options.server_name;
  const int match =
      IsIpAddress(name)
          ? X509_check_ip_asc(cert, name.c_str(), 0)
          : X509_check_host(cert, name.data(), name.size(),
                            X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                                X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                            nullptr);
  if (match != 1) {
    std::vector<std::string> names;
    for (std::string& n : CertificateNames(cert)) names.push_back(std::move(n));
    return absl::FailedPreconditionError(absl::StrCat(
        "control.tls.cert: the certificate ", self->subject_, " in ", options.cert_file,
        " has no subjectAltName matching control.tls.server_name \"", name,
        "\" (clients check it); its names: ", names.empty() ? "none" : absl::StrJoin(names, ", ")));
  }
  if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("control.tls.cert: the certificate ", self->subject_, " is not valid before ",
                     FormatTime(AsnTimeToUnix(X509_get0_notBefore(cert)))));
  }
  self->not_after_ = AsnTimeToUnix(X509_get0_notAfter(cert));
  if (X509_cmp_time(X509_get0_notAfter(cert), &now) < 0) {
    return absl::FailedPreconditionError(absl::StrCat("control.tls.cert: the certificate ",
                                                      self->subject_, " expired at ",
                                                      FormatTime(self->not_after_)));
  }
  return self;
}

SslPtr TlsServerContext::NewConnection(int fd) const {
  SslPtr ssl(SSL_new(ctx_.get()));
  if (ssl == nullptr || SSL_set_fd(ssl.get(), fd) != 1) return nullptr;
  SSL_set_accept_state(ssl.get());
  return ssl;
}

CertificateStatus TlsServerContext::Certificate(time_t now) const {
  if (now == 0) now = time(nullptr);
  CertificateStatus status;
  status.subject = subject_;
  status.not_after = not_after_;
  const int64_t left = static_cast<int64_t>(not_after_) - static_cast<int64_t>(now);
  if (left < kCertificateWarningSeconds) {
    status.warning =
        left <= 0 ? absl::StrCat("the control TLS certificate ", subject_, " expired at ",
                                 FormatTime(not_after_), "; clients will refuse it")
                  : absl::StrCat("the control TLS certificate ", subject_, " expires at ",
                                 FormatTime(not_after_), ", in ", left / 86400, " days ",
                                 (left % 86400) / 3600, " hours; renew it");
  }
  return status;
}

std::string TlsServerContext::FailureReason(SSL* ssl) {
  std::string reason;
  if (const auto* stored = static_cast<const std::string*>(SSL_get_ex_data(ssl, ReasonIndex()))) {
    reason = *stored;
  } else if (const long verify = SSL_get_verify_result(ssl); verify != X509_V_OK) {
    reason = X509_verify_cert_error_string(verify);
  }
  const std::string queued = DrainSslErrors();
  if (reason.empty()) reason = queued;
  return reason.empty() ? "the connection closed during the handshake" : reason;
}

std::string TlsServerContext::Describe(SSL* ssl) {
  X509* peer = SSL_get0_peer_certificate(ssl);
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  return absl::StrCat(Subject(peer), ", ", SSL_get_version(ssl), " ",
                      SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)),
                      sni != nullptr ? absl::StrCat(", SNI ", absl::CHexEscape(sni)) : "");
}

absl::StatusOr<SslCtxPtr> MakeTlsClientContext(const TlsClientOptions& options) {
  ERR_clear_error();
  absl::StatusOr<SslCtxPtr> ctx = NewContext(TLS_client_method());
  if (!ctx.ok()) return ctx.status();
  if (absl::Status s = LoadIdentity(ctx->get(), options.cert_file, options.key_file,
                                    options.ca_file, "tls-");
      !s.ok()) {
    return s;
  }
  SSL_CTX_set_verify(ctx->get(), SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_purpose(ctx->get(), X509_PURPOSE_SSL_SERVER);
  return ctx;
}

absl::StatusOr<SslPtr> NewTlsClient(SSL_CTX* ctx, int fd, const std::string& server_name) {
  ERR_clear_error();
  SslPtr ssl(SSL_new(ctx));
  if (ssl == nullptr || SSL_set_fd(ssl.get(), fd) != 1) return SslError("SSL_new");
  if (server_name.empty()) return absl::InvalidArgumentError("a TLS server name is required");
  if (IsIpAddress(server_name)) {
    // RFC 6066 §3: no IP literals in SNI; the address is checked against the IP SANs.
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), server_name.c_str()) != 1) {
      return SslError("setting the server address to verify");
    }
  } else {
    if (SSL_set_tlsext_host_name(ssl.get(), server_name.c_str()) != 1 ||
        SSL_set1_host(ssl.get(), server_name.c_str()) != 1) {
      return SslError("setting the server name");
    }
    SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  SSL_set_connect_state(ssl.get());
  return ssl;
}

}  // namespace sluice::control
