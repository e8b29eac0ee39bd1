#include "sluice/dtls/setup_role.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sluice::dtls {
namespace {

using ::testing::HasSubstr;

constexpr Setup kActive = Setup::kActive;
constexpr Setup kPassive = Setup::kPassive;
constexpr Setup kActpass = Setup::kActpass;
constexpr Setup kHoldconn = Setup::kHoldconn;

// RFC 4145 §4 and RFC 5763 §5, every pair of setup values.
TEST(SetupRoleTest, ResolutionTable) {
  struct Case {
    dtls::Setup peer, local;
    std::optional<Role> role;  // nullopt: refused
    const char* says;
  };
  const Case cases[] = {
      {kActpass, kActpass, Role::kClient, ""},  // Sluice answers actpass: active
      {kActive, kActpass, Role::kServer, ""},
      {kPassive, kActpass, Role::kClient, ""},
      {kHoldconn, kActpass, std::nullopt, "the peer is holdconn"},
      {kPassive, kActive, Role::kClient, ""},
      {kActpass, kActive, Role::kClient, ""},
      {kActive, kActive, std::nullopt, "both sides are active"},
      {kHoldconn, kActive, std::nullopt, "the peer is holdconn"},
      {kActive, kPassive, Role::kServer, ""},
      {kActpass, kPassive, Role::kServer, ""},
      {kPassive, kPassive, std::nullopt, "both sides are passive"},
      {kHoldconn, kPassive, std::nullopt, "the peer is holdconn"},
      {kActive, kHoldconn, std::nullopt, "Sluice is holdconn"},
      {kPassive, kHoldconn, std::nullopt, "Sluice is holdconn"},
      {kActpass, kHoldconn, std::nullopt, "Sluice is holdconn"},
      {kHoldconn, kHoldconn, std::nullopt, "holdconn"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "peer " << SetupName(c.peer) << ", local "
                                    << SetupName(c.local));
    absl::StatusOr<Role> role = ResolveRole(c.peer, c.local);
    if (c.role) {
      ASSERT_TRUE(role.ok()) << role.status();
      EXPECT_EQ(*role, *c.role);
    } else {
      ASSERT_FALSE(role.ok());
      EXPECT_EQ(role.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(role.status().message(), HasSubstr(c.says));
    }
  }
}

TEST(SetupRoleTest, LocalDefaultsToActpass) {
  EXPECT_EQ(*ResolveRole(kActpass), Role::kClient);
  EXPECT_EQ(*ResolveRole(kActive), Role::kServer);
  EXPECT_EQ(*ResolveRole(kPassive), Role::kClient);
  EXPECT_FALSE(ResolveRole(kHoldconn).ok());
}

TEST(SetupRoleTest, NamesRoundTripCaseInsensitively) {
  for (dtls::Setup s : {kActive, kPassive, kActpass, kHoldconn}) {
    EXPECT_EQ(SetupFromName(SetupName(s)), s);
  }
  EXPECT_EQ(SetupFromName("ActPass"), kActpass);
  EXPECT_FALSE(SetupFromName("act pass"));
  EXPECT_FALSE(SetupFromName(""));
  EXPECT_EQ(SetupOf(Role::kClient), kActive);
  EXPECT_EQ(SetupOf(Role::kServer), kPassive);
  EXPECT_EQ(RoleName(Role::kClient), "client");
  EXPECT_EQ(RoleName(Role::kServer), "server");
}

}  // namespace
}  // namespace sluice::dtls
