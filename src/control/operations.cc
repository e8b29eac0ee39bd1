#include "sluice/control/operations.h"

namespace sluice::control {

CryptoSpec::~CryptoSpec() { WipeString(sdes); }

LegInfo::~LegInfo() {
  if (tx_crypto.has_value()) WipeString(*tx_crypto);
}

}  // namespace sluice::control
