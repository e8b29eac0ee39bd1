#include "sluice/control/operations.h"

#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace sluice::control {
namespace {

// A short value lives inside the string object itself (no heap buffer), so
// the object's own storage shows what the destructor left behind.
constexpr char kSecret[] = "K3yM4t3r1al";

bool Contains(const unsigned char* storage, size_t size, std::string_view needle) {
  const std::string_view bytes(reinterpret_cast<const char*>(storage), size);
  return bytes.find(needle) != std::string_view::npos;
}

TEST(CryptoSpecTest, DestructorWipesTheSdesValue) {
  alignas(CryptoSpec) unsigned char storage[sizeof(CryptoSpec)];
  std::memset(storage, 0, sizeof(storage));
  auto* spec = new (storage) CryptoSpec;
  spec->kind = CryptoSpec::Kind::kSdes;
  spec->sdes = kSecret;
  ASSERT_TRUE(Contains(storage, sizeof(storage), kSecret));
  spec->~CryptoSpec();
  EXPECT_FALSE(Contains(storage, sizeof(storage), kSecret));
  EXPECT_FALSE(Contains(storage, sizeof(storage), "K3y"));
}

TEST(LegInfoTest, DestructorWipesTheGeneratedTxCrypto) {
  alignas(LegInfo) unsigned char storage[sizeof(LegInfo)];
  std::memset(storage, 0, sizeof(storage));
  auto* leg = new (storage) LegInfo;
  leg->tx_crypto = kSecret;
  ASSERT_TRUE(Contains(storage, sizeof(storage), kSecret));
  leg->~LegInfo();
  EXPECT_FALSE(Contains(storage, sizeof(storage), "K3y"));
}

TEST(KeyReuseErrorTest, IsAFailedPreconditionNamedKeyReuse) {
  const absl::Status status = KeyReuseError("tx.crypto repeats a key");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "key_reuse: tx.crypto repeats a key");
}

}  // namespace
}  // namespace sluice::control
