#include "sluice/control/operations.h"

namespace sluice::control {

CryptoSpec::~CryptoSpec() { WipeString(sdes); }

IceSpec::~IceSpec() {
  WipeString(pwd);
  WipeString(local_pwd);
}

LegInfo::~LegInfo() {
  if (tx_crypto.has_value()) WipeString(*tx_crypto);
  if (ice.has_value()) WipeString(ice->pwd);
}

}  // namespace sluice::control
