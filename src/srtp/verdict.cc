#include "sluice/srtp/verdict.h"

namespace sluice::srtp {

const char* VerdictName(Verdict v) noexcept {
  switch (v) {
    case Verdict::kOk: return "ok";
    case Verdict::kMalformed: return "malformed";
    case Verdict::kAuthFailed: return "auth_failed";
    case Verdict::kReplayed: return "replayed";
    case Verdict::kTooOld: return "too_old";
    case Verdict::kUnknownMki: return "unknown_mki";
    case Verdict::kLifetimeExhausted: return "lifetime_exhausted";
    case Verdict::kNoTailroom: return "no_tailroom";
    case Verdict::kStreamLimit: return "stream_limit";
    case Verdict::kCryptoError: return "crypto_error";
    case Verdict::kKeyRetired: return "key_retired";
  }
  return "unknown";
}

}  // namespace sluice::srtp
