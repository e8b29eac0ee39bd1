// The standby against a real redis-server on a Unix socket: its mirror
// (a full scan, then keyspace notifications; records checked as a restore
// checks them), its watch over the heartbeat, the heartbeat taken on each
// of TakeHeartbeat's terms, and an active fenced by a heartbeat another
// instance took.
#include "sluice/ha/standby.h"

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include "absl/strings/match.h"
#include "redis_server.h"
#include "sluice/ha/record.h"
#include "sluice/ha/replicator.h"
#include "sluice/ha/restore.h"

namespace sluice::ha {
namespace {

using testing::RedisServer;

const std::string kKey = "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
constexpr char kHeartbeat[] = "sluice:t:heartbeat";

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

class StandbyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::Installed()) GTEST_SKIP() << "redis-server is not installed (scripts/setup-deps)";
    ASSERT_TRUE(redis_.Start());
    config_.redis = "unix:" + redis_.socket();
    config_.instance = "t";
    config_.heartbeat_ms = 100;
    config_.heartbeat_ttl_ms = 300;
    config_.promote_after_ms = 100;
  }

  std::unique_ptr<Standby> MakeStandby(Standby::ClockFn clock = {}) {
    return std::make_unique<Standby>(
        config_, Sealer::FromKey(kek_),
        [](const std::string& name) { return name == "a" || name == "b"; }, std::move(clock));
  }

  // A session's record as the active writes it, its keys sealed.
  void Put(const std::string& name, const std::string& interface = "a") {
    SessionRecord r;
    r.session = name;
    for (int i = 0; i < 2; ++i) {
      LegRecord& leg = r.legs[static_cast<size_t>(i)];
      leg.name = i == 0 ? "x" : "y";
      leg.interface = i == 0 ? interface : "b";
      leg.local_port = static_cast<uint16_t>(30000 + 2 * i);
      leg.rx = {SealedCrypto::Kind::kSdes,
                *Sealer::FromKey(kek_).Seal(kKey, name + "/" + std::to_string(i) + "/rx")};
    }
    ASSERT_TRUE(redis_.Command({"HSET", "sluice:t:s:" + name, "record", EncodeSession(r),
                                "streams", EncodeStreams(StreamsRecord{})}));
  }

  // Polls until `done` (at most 5 s); whether Poll asked for a promotion.
  template <typename Done>
  bool PollUntil(Standby& s, Done done) {
    bool promote = false;
    for (const uint64_t until = NowMs() + 5000; !done() && NowMs() < until;) {
      promote = s.Poll() || promote;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return promote;
  }

  RedisServer redis_;
  config::HaConfig config_;
  std::array<uint8_t, kKekBytes> kek_{7, 7, 7};
};

TEST_F(StandbyTest, MirrorsAndChecksEveryRecordWithoutInstallingAny) {
  ASSERT_TRUE(redis_.Command({"SET", kHeartbeat, "active 1", "PX", "100000"}));
  Put("one");
  Put("elsewhere", "zz");  // an interface this sluiced lacks
  ASSERT_TRUE(redis_.Command({"HSET", "sluice:t:s:garbage", "record", "{", "streams", "{}"}));
  std::unique_ptr<Standby> s = MakeStandby();
  // Connected: both connections up, the subscription's too, which may come
  // after the scan has mirrored everything.
  PollUntil(*s, [&] {
    return s->Stats().mirrored == 1 && s->Stats().mirror_refused == 2 && s->Stats().connected;
  });
  control::HaStats st = s->Stats();
  EXPECT_EQ(st.role, "standby");
  EXPECT_EQ(st.mirrored, 1u);
  EXPECT_EQ(st.mirror_refused, 2u);
  EXPECT_EQ(st.sessions, 3u);
  EXPECT_TRUE(s->mirror().at("sluice:t:s:one"));
  EXPECT_FALSE(s->mirror().at("sluice:t:s:elsewhere"));
  // Keyspace notifications turned on (K, h, g at least) and followed: a new
  // session, a damaged one repaired, a deleted one.
  ASSERT_TRUE(s->Stats().connected);
  redisContext* c = redisConnectUnix(redis_.socket().c_str());
  ASSERT_TRUE(c != nullptr && c->err == 0);
  auto* flags = static_cast<redisReply*>(redisCommand(c, "CONFIG GET notify-keyspace-events"));
  ASSERT_TRUE(flags != nullptr && flags->elements == 2);
  const std::string set(flags->element[1]->str, flags->element[1]->len);
  freeReplyObject(flags);
  redisFree(c);
  EXPECT_TRUE(absl::StrContains(set, "K") && absl::StrContains(set, "h") &&
              absl::StrContains(set, "g"))
      << set;
  Put("two");
  Put("elsewhere", "a");
  ASSERT_TRUE(redis_.Command({"DEL", "sluice:t:s:one"}));
  PollUntil(*s, [&] { return s->Stats().mirrored == 2 && s->mirror().count("sluice:t:s:one") == 0; });
  st = s->Stats();
  EXPECT_EQ(st.mirrored, 2u) << "two, elsewhere";
  EXPECT_EQ(s->mirror().count("sluice:t:s:one"), 0u);
  EXPECT_TRUE(s->mirror().at("sluice:t:s:two"));
  EXPECT_GE(st.last_update_age_ms, 0);
  EXPECT_GE(st.heartbeat_age_ms, 0);
  EXPECT_LT(st.heartbeat_age_ms, 1000);
}

// The heartbeat present: no promotion; absent for promote_after_ms: one.
TEST_F(StandbyTest, AsksForPromotionOnlyOnceTheHeartbeatIsGone) {
  ASSERT_TRUE(redis_.Command({"SET", kHeartbeat, "active 1", "PX", "100000"}));
  std::unique_ptr<Standby> s = MakeStandby();
  const uint64_t until = NowMs() + 600;
  bool promote = PollUntil(*s, [&] { return NowMs() >= until; });
  EXPECT_FALSE(promote);
  ASSERT_TRUE(redis_.Command({"DEL", kHeartbeat}));
  const uint64_t gone = NowMs();
  bool asked = false;
  for (const uint64_t end = NowMs() + 5000; !asked && NowMs() < end;) {
    asked = s->Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(asked);
  EXPECT_GE(NowMs() - gone, config_.promote_after_ms);
  // Without auto_promote, never.
  config_.auto_promote = false;
  s = MakeStandby();
  const uint64_t later = NowMs() + 600;
  EXPECT_FALSE(PollUntil(*s, [&] { return NowMs() >= later; }));
}

// A clock that moves between two readings in one Poll (every reading a
// millisecond on), as under load: the heartbeat's absence, first seen while
// a reply is handled, must still last promote_after_ms before a promotion.
TEST_F(StandbyTest, WaitsOutTheAbsenceWhenTheClockTicksWithinAPoll) {
  uint64_t t = 1000;
  std::unique_ptr<Standby> s = MakeStandby([&t]() { return ++t; });
  uint64_t first_absent = 0;
  bool asked = false;
  for (const uint64_t end = NowMs() + 5000; !asked && NowMs() < end;) {
    asked = s->Poll();
    if (first_absent == 0 && s->Stats().connected && s->Stats().heartbeat_age_ms < 0) {
      first_absent = t;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(asked) << "no promotion asked with the heartbeat absent";
  ASSERT_NE(first_absent, 0u);
  EXPECT_GE(t - first_absent, config_.promote_after_ms) << "asked before the absence lasted";
}

TEST_F(StandbyTest, TakesTheHeartbeatOnlyOnItsTerms) {
  EXPECT_TRUE(TakeHeartbeat(config_, "stb", TakeIf::kAbsent).ok());
  EXPECT_TRUE(absl::StartsWith(*redis_.Command({"GET", kHeartbeat}), "stb "));
  const absl::Status other = TakeHeartbeat(config_, "act", TakeIf::kAbsent);
  EXPECT_TRUE(absl::IsFailedPrecondition(other)) << other;
  EXPECT_TRUE(absl::StrContains(other.message(), "held by another instance (\"stb ")) << other;
  EXPECT_TRUE(absl::IsFailedPrecondition(TakeHeartbeat(config_, "act", TakeIf::kAbsentOrOurs)));
  EXPECT_TRUE(TakeHeartbeat(config_, "stb", TakeIf::kAbsentOrOurs).ok());
  EXPECT_TRUE(TakeHeartbeat(config_, "act", TakeIf::kAlways).ok());
  EXPECT_TRUE(absl::StartsWith(*redis_.Command({"GET", kHeartbeat}), "act "));
  const std::string ttl = *redis_.Command({"PTTL", kHeartbeat});
  EXPECT_GT(std::stoi(ttl), 0);
  EXPECT_LE(std::stoi(ttl), 300);
  redis_.Stop();
  EXPECT_TRUE(absl::IsUnavailable(TakeHeartbeat(config_, "act", TakeIf::kAlways)));
}

// An active whose heartbeat another instance took stops writing: no
// heartbeat of its own, no session.
TEST_F(StandbyTest, AnActiveFindingTheHeartbeatAnothersIsFenced) {
  Replicator::Options options{"unix:" + redis_.socket(), "", "t", 50, 50, 300, "act"};
  Replicator r(options, Sealer::FromKey(kek_), {});
  for (const uint64_t until = NowMs() + 5000; r.heartbeat_confirmed_ms() == 0 && NowMs() < until;) {
    r.Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_NE(r.heartbeat_confirmed_ms(), 0u);
  EXPECT_TRUE(absl::StartsWith(*redis_.Command({"GET", kHeartbeat}), "act "));
  ASSERT_TRUE(TakeHeartbeat(config_, "stb", TakeIf::kAlways).ok());
  for (const uint64_t until = NowMs() + 5000; !r.fenced() && NowMs() < until;) {
    r.Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(r.fenced());
  EXPECT_TRUE(r.Stats().fenced);
  EXPECT_TRUE(absl::StrContains(r.Stats().last_error, "heartbeat held by another instance"));
  control::CreateRequest req;
  req.session = "late";
  for (const char* name : {"a", "b"}) {
    control::LegRequest& leg = req.legs.emplace_back();
    leg.name = leg.interface = name;
  }
  control::SessionInfo info;
  for (int i = 0; i < 2; ++i) info.legs.emplace_back().local = *packet::Endpoint::Parse("10.0.0.1:30000");
  r.OnCreated(req, info);
  for (int i = 0; i < 200; ++i) {
    r.Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(redis_.Command({"EXISTS", "sluice:t:s:late"}), "0") << "a fenced active wrote";
  // The standby's heartbeat expired (nobody writes it here), and the
  // fenced active did not take it back.
  EXPECT_EQ(redis_.Command({"EXISTS", kHeartbeat}), "0");
}

}  // namespace
}  // namespace sluice::ha
