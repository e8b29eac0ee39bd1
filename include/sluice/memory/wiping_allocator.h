// Wiping of memory that held key material: key material passes through the
// control plane as text (SDES attribute values, SDP bodies, JSON), and these
// keep it from lingering in freed memory.
//
// Any thread. Wiping is OPENSSL_cleanse: the compiler cannot elide it.
#ifndef SLUICE_MEMORY_WIPING_ALLOCATOR_H_
#define SLUICE_MEMORY_WIPING_ALLOCATOR_H_

#include <cstddef>
#include <memory>
#include <string>

namespace sluice::memory {

// Overwrites `size` bytes with zeros.
void WipeMemory(void* data, size_t size) noexcept;
// Overwrites the string's whole buffer (up to its capacity), then empties it.
// Keeps the capacity: does not allocate or free.
void WipeString(std::string& s) noexcept;

// An allocator that wipes memory before handing it back, for strings and
// containers that may hold key material.
template <typename T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() = default;
  template <typename U>
  WipingAllocator(const WipingAllocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) noexcept {
    WipeMemory(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <typename U>
  bool operator==(const WipingAllocator<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const WipingAllocator<U>&) const noexcept { return false; }
};

}  // namespace sluice::memory

#endif  // SLUICE_MEMORY_WIPING_ALLOCATOR_H_
