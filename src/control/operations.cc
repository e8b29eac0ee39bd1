#include "sluice/control/operations.h"

#include <openssl/crypto.h>

namespace sluice::control {

void WipeMemory(void* data, size_t size) noexcept {
  if (data != nullptr && size != 0) OPENSSL_cleanse(data, size);
}

void WipeString(std::string& s) noexcept {
  // resize() to the capacity makes the whole buffer part of the string, so
  // bytes a shorter earlier value left behind are wiped too. It cannot
  // allocate: the capacity is already there.
  s.resize(s.capacity());
  WipeMemory(s.data(), s.size());
  s.clear();
}

CryptoSpec::~CryptoSpec() { WipeString(sdes); }

LegInfo::~LegInfo() {
  if (tx_crypto.has_value()) WipeString(*tx_crypto);
}

}  // namespace sluice::control
