// The process-wide key registry: keys in use by one session refused to
// another, released keys remembered for the window, bounded.
#include "sluice/control/key_registry.h"

#include <gtest/gtest.h>

#include "sluice/srtp/sdes.h"

namespace sluice::control {
namespace {

constexpr char kKey1[] = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
constexpr char kKey2[] = "AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
constexpr char kKey3[] = "AEAD_AES_128_GCM inline:KCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQw==";

TEST(KeyRegistryTest, BoundedForgettingReleasedKeysOldestFirst) {
  srtp::MasterKey k1 = srtp::ParseSdesCrypto(kKey1)->key;
  srtp::MasterKey k2 = srtp::ParseSdesCrypto(kKey2)->key;
  srtp::MasterKey k3 = srtp::ParseSdesCrypto(kKey3)->key;
  const srtp::KeyFingerprint f1(k1), f2(k2), f3(k3);
  KeyRegistry registry(/*window_ms=*/1000, /*capacity=*/2);
  ASSERT_TRUE(registry.Reserve(2, 10));
  registry.Acquire(f1, 1);
  registry.Acquire(f2, 2);
  EXPECT_FALSE(registry.Conflicts(f1, 1, 10)) << "its own session";
  EXPECT_TRUE(registry.Conflicts(f1, 2, 10));
  EXPECT_FALSE(registry.Reserve(1, 10)) << "full of keys in use";
  const srtp::KeyFingerprint released[] = {f1};
  registry.Release(released, 1, 20);
  EXPECT_TRUE(registry.Conflicts(f1, 1, 500)) << "released: refused even to its old session";
  EXPECT_TRUE(registry.Reserve(1, 500)) << "the released key makes room";
  EXPECT_EQ(registry.size(), 1u);
  registry.Acquire(f3, 3);
  registry.Release(std::span<const srtp::KeyFingerprint>(&f3, 1), 3, 600);
  EXPECT_TRUE(registry.Conflicts(f3, 4, 1599));
  EXPECT_FALSE(registry.Conflicts(f3, 4, 1600)) << "aged out";
  EXPECT_EQ(registry.size(), 1u);
}

}  // namespace
}  // namespace sluice::control
