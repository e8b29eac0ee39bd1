#include "sluice/crypto/backend_kind.h"

#include <gtest/gtest.h>

namespace sluice::crypto {
namespace {

// The names are the configuration's `crypto.backend` values and what stats
// report: each kind round-trips through its name.
TEST(BackendKindTest, EveryKindRoundTripsThroughItsName) {
  for (BackendKind kind : {BackendKind::kAuto, BackendKind::kIpsecMb, BackendKind::kOpenssl}) {
    absl::StatusOr<BackendKind> back = BackendKindFromName(BackendKindName(kind));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, kind);
  }
  EXPECT_EQ(BackendKindName(BackendKind::kIpsecMb), "ipsec-mb");
  EXPECT_EQ(BackendKindName(BackendKind::kOpenssl), "openssl");
  EXPECT_EQ(BackendKindName(BackendKind::kAuto), "auto");
}

TEST(BackendKindTest, AnUnknownNameIsRefusedWithTheChoices) {
  for (const char* name : {"", "ipsecmb", "IPSEC-MB", "openssl ", "libsrtp2"}) {
    absl::StatusOr<BackendKind> kind = BackendKindFromName(name);
    ASSERT_FALSE(kind.ok()) << name;
    EXPECT_EQ(kind.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(kind.status().message().find("auto, ipsec-mb or openssl"), std::string::npos)
        << kind.status();
  }
}

}  // namespace
}  // namespace sluice::crypto
