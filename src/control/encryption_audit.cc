#include "sluice/control/encryption_audit.h"

#include <optional>

#include "sluice/crypto/suite.h"

namespace sluice::control {

std::string_view EncryptionName(Encryption level) {
  switch (level) {
    case Encryption::kPlain: return "plain";
    case Encryption::kUnauthenticated: return "unauthenticated";
    case Encryption::kEncrypted: return "encrypted";
  }
  return "plain";
}

namespace {

Encryption OfSuite(crypto::Suite suite) {
  const crypto::SuiteInfo& info = crypto::GetSuiteInfo(suite);
  // NULL_HMAC_SHA1_*: authenticated, but the media is readable.
  if (info.cipher == crypto::CipherKind::kNull) return Encryption::kPlain;
  // RFC 3711 §9.5: without authentication, SRTP payloads can be altered.
  if (info.srtp_auth == crypto::AuthKind::kNull) return Encryption::kUnauthenticated;
  return Encryption::kEncrypted;
}

}  // namespace

Encryption SpecEncryption(const CryptoSpec& spec) {
  switch (spec.kind) {
    case CryptoSpec::Kind::kPlain: return Encryption::kPlain;
    case CryptoSpec::Kind::kPassthrough: return Encryption::kEncrypted;
    case CryptoSpec::Kind::kGenerate: return OfSuite(spec.suite);
    case CryptoSpec::Kind::kSdes: break;
  }
  const std::string_view value = spec.sdes;
  const std::optional<crypto::Suite> suite = crypto::SuiteFromName(value.substr(0, value.find(' ')));
  return suite ? OfSuite(*suite) : Encryption::kEncrypted;
}

Encryption SuiteEncryption(std::string_view suite) {
  if (suite == "passthrough") return Encryption::kEncrypted;
  const std::optional<crypto::Suite> known = crypto::SuiteFromName(suite);
  return known ? OfSuite(*known) : Encryption::kPlain;
}

Encryption LegEncryption(std::string_view rx_suite, std::string_view tx_suite, bool dtls) {
  if (dtls) return Encryption::kEncrypted;
  return Weaker(SuiteEncryption(rx_suite), SuiteEncryption(tx_suite));
}

Encryption RequestedLegEncryption(const LegRequest& leg) {
  if (leg.dtls) return Encryption::kEncrypted;
  if (leg.await_answer && leg.rx.kind == CryptoSpec::Kind::kPlain) return SpecEncryption(leg.tx);
  return Weaker(SpecEncryption(leg.rx), SpecEncryption(leg.tx));
}

}  // namespace sluice::control
