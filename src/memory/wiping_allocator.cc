#include "sluice/memory/wiping_allocator.h"

#include <openssl/crypto.h>

namespace sluice::memory {

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

}  // namespace sluice::memory
