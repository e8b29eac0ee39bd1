#include "sluice/ha/sealer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace sluice::ha {
namespace {

std::array<uint8_t, kKekBytes> Kek(uint8_t fill) {
  std::array<uint8_t, kKekBytes> k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(fill + i);
  return k;
}

const std::string kKeyText = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

TEST(SealerTest, RoundTripHidesThePlaintextAndUsesAFreshNonce) {
  const Sealer s = Sealer::FromKey(Kek(1));
  absl::StatusOr<std::string> a = s.Seal(kKeyText, "call-1/0/rx");
  absl::StatusOr<std::string> b = s.Seal(kKeyText, "call-1/0/rx");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), kKeyText.size() + kSealOverhead);
  EXPECT_EQ(a->find("inline:"), std::string::npos);
  EXPECT_EQ(a->find("WVNfX19z"), std::string::npos);
  EXPECT_NE(*a, *b) << "a nonce is never used twice";
  absl::StatusOr<std::string> back = s.Unseal(*a, "call-1/0/rx");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, kKeyText);
  EXPECT_EQ(*Sealer::KekIdOf(*a), s.kek_id());
}

TEST(SealerTest, OtherAssociatedDataFails) {
  const Sealer s = Sealer::FromKey(Kek(1));
  const std::string sealed = *s.Seal(kKeyText, "call-1/0/rx");
  for (const char* aad : {"call-2/0/rx", "call-1/1/rx", "call-1/0/tx", ""}) {
    absl::StatusOr<std::string> r = s.Unseal(sealed, aad);
    EXPECT_TRUE(absl::IsDataLoss(r.status())) << aad << ": " << r.status();
  }
}

TEST(SealerTest, WrongKekIsToldApartFromDamage) {
  const Sealer right = Sealer::FromKey(Kek(1));
  const Sealer wrong = Sealer::FromKey(Kek(2));
  ASSERT_NE(right.kek_id(), wrong.kek_id());
  const std::string sealed = *right.Seal(kKeyText, "s");
  absl::StatusOr<std::string> r = wrong.Unseal(sealed, "s");
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("wrong key-encryption key"), std::string::npos);
  // A KEK that forges the right id still fails: the id is authenticated
  // and the tag is the KEK's.
  std::string forged = *wrong.Seal(kKeyText, "s");
  for (int i = 0; i < 4; ++i) forged[1 + i] = sealed[1 + i];
  EXPECT_TRUE(absl::IsDataLoss(right.Unseal(forged, "s").status()));
}

// Rotation: the previous KEK still opens what it sealed; new seals are
// under the current one only.
TEST(SealerTest, PreviousKekOpensWhatItSealedAndSealsNothing) {
  const Sealer old_kek = Sealer::FromKey(Kek(1));
  const std::string old_sealed = *old_kek.Seal(kKeyText, "s");
  Sealer current = Sealer::FromKey(Kek(2));
  EXPECT_TRUE(absl::IsFailedPrecondition(current.Unseal(old_sealed, "s").status()));
  current.SetPrevious(Sealer::FromKey(Kek(1)));
  absl::StatusOr<std::string> back = current.Unseal(old_sealed, "s");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, kKeyText);
  const std::string new_sealed = *current.Seal(kKeyText, "s");
  EXPECT_EQ(*Sealer::KekIdOf(new_sealed), current.kek_id());
  EXPECT_TRUE(absl::IsFailedPrecondition(old_kek.Unseal(new_sealed, "s").status()));
  absl::StatusOr<std::string> third = Sealer::FromKey(Kek(3)).Seal(kKeyText, "s");
  absl::StatusOr<std::string> r = current.Unseal(*third, "s");
  EXPECT_NE(r.status().message().find("previous_kek_file"), std::string::npos) << r.status();
}

TEST(SealerTest, EveryDamagedByteAndEveryTruncationFails) {
  const Sealer s = Sealer::FromKey(Kek(1));
  const std::string sealed = *s.Seal(kKeyText, "s");
  for (size_t i = 5; i < sealed.size(); ++i) {  // past the header: damage, not another KEK
    std::string bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(s.Unseal(bad, "s").ok()) << "byte " << i;
  }
  for (size_t n = 0; n < sealed.size(); ++n) {
    EXPECT_FALSE(s.Unseal(sealed.substr(0, n), "s").ok()) << "length " << n;
  }
  std::string version = sealed;
  version[0] = 2;
  EXPECT_TRUE(absl::IsDataLoss(s.Unseal(version, "s").status()));
}

class KekFileTest : public ::testing::Test {
 protected:
  void Write(const std::string& bytes, mode_t mode) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
    ASSERT_EQ(chmod(path_.c_str(), mode), 0);
  }
  void TearDown() override { std::remove(path_.c_str()); }
  const std::string path_ = (std::filesystem::temp_directory_path() /
                             ("sluice-kek-test-" + std::to_string(getpid())))
                                .string();
};

TEST_F(KekFileTest, AcceptsThirtyTwoBytesReadableByTheOwnerOnly) {
  const std::array<uint8_t, kKekBytes> k = Kek(7);
  Write(std::string(k.begin(), k.end()), 0600);
  absl::StatusOr<Sealer> s = Sealer::FromFile(path_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kek_id(), Sealer::FromKey(k).kek_id());
  Write(std::string(k.begin(), k.end()), 0400);
  EXPECT_TRUE(Sealer::FromFile(path_).ok());
}

TEST_F(KekFileTest, RefusesAModeOpenToGroupOrOthers) {
  const std::array<uint8_t, kKekBytes> k = Kek(7);
  for (mode_t mode : {0640, 0604, 0644, 0660}) {
    Write(std::string(k.begin(), k.end()), mode);
    absl::StatusOr<Sealer> s = Sealer::FromFile(path_);
    EXPECT_FALSE(s.ok()) << std::oct << mode;
    EXPECT_NE(s.status().message().find("chmod 0600"), std::string::npos) << s.status();
  }
}

TEST_F(KekFileTest, RefusesAnotherSizeOrNoFile) {
  Write(std::string(31, 'k'), 0600);
  EXPECT_FALSE(Sealer::FromFile(path_).ok());
  Write(std::string(33, 'k'), 0600);
  EXPECT_FALSE(Sealer::FromFile(path_).ok());
  EXPECT_FALSE(Sealer::FromFile(path_ + ".absent").ok());
}

}  // namespace
}  // namespace sluice::ha
