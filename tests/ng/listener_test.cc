// The ng UDP listener: cookies, the reply cache (retransmissions answered
// without repeating the command; bounded by entries and age), undecodable
// and cookie-less datagrams, and a real round trip on loopback.
#include "sluice/ng/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "../control/fake_operations.h"

namespace sluice::ng {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string S(const String& s) { return std::string(s.data(), s.size()); }

constexpr char kOffer[] =
    "d7:command5:offer7:call-id2:c18:from-tag1:a3:sdp73:v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\nc=IN IP4 "
    "10.0.0.2\r\nm=audio 4000 RTP/AVP 0\r\ne";

class ListenerTest : public ::testing::Test {
 protected:
  void Make(size_t entries, uint64_t ms) {
    ListenerOptions options;
    options.listen = packet::Endpoint{*packet::IpAddress::Parse("127.0.0.1"), 0};
    options.cache_entries = entries;
    options.cache_ms = ms;
    options.now_ms = [this] { return now_; };
    auto l = Listener::Create(handler_, options);
    ASSERT_TRUE(l.ok()) << l.status();
    listener_ = std::move(*l);
  }
  void SetUp() override { Make(4, 1000); }

  uint64_t now_ = 1;
  control::testing::FakeOperations ops_;
  Handler handler_{ops_, HandlerOptions{"a"}};
  std::unique_ptr<Listener> listener_;
};

TEST_F(ListenerTest, RepliesCarryTheCookie) {
  EXPECT_EQ(S(listener_->Process("5323_1 d7:command4:pinge")), "5323_1 d6:result4:ponge");
  EXPECT_EQ(listener_->counters().requests, 1u);
}

TEST_F(ListenerTest, RetransmissionsGetTheFirstReplyWithoutRepeatingTheCommand) {
  const std::string offer = std::string("c-1 ") + kOffer;
  const std::string first = S(listener_->Process(offer));
  ASSERT_THAT(first, StartsWith("c-1 d"));
  ASSERT_THAT(first, HasSubstr("6:result2:ok"));
  EXPECT_EQ(handler_.call_count(), 1u);
  const std::string again = S(listener_->Process(offer));
  EXPECT_EQ(again, first);  // same ports, byte for byte
  EXPECT_EQ(listener_->counters().requests, 1u);
  EXPECT_EQ(listener_->counters().retransmissions, 1u);
  // A new cookie is a new request: the same offer again is a re-offer.
  EXPECT_THAT(S(listener_->Process(std::string("c-2 ") + kOffer)), HasSubstr("6:result2:ok"));
  EXPECT_EQ(listener_->counters().requests, 2u);
}

TEST_F(ListenerTest, TheCacheIsBoundedInEntriesAndAge) {
  for (const char* c : {"a", "b", "c", "d", "e"}) {
    listener_->Process(std::string(c) + " d7:command4:pinge");
  }
  EXPECT_EQ(listener_->counters().requests, 5u);
  listener_->Process("e d7:command4:pinge");  // still cached
  EXPECT_EQ(listener_->counters().retransmissions, 1u);
  listener_->Process("a d7:command4:pinge");  // pushed out by the fifth
  EXPECT_EQ(listener_->counters().requests, 6u);
  now_ += 1000;  // everything is too old now
  listener_->Process("e d7:command4:pinge");
  EXPECT_EQ(listener_->counters().requests, 7u);
  EXPECT_EQ(listener_->counters().retransmissions, 1u);
}

TEST_F(ListenerTest, BadMessagesGetErrorsOrAreCounted) {
  EXPECT_EQ(S(listener_->Process("nocookie")), "");
  EXPECT_EQ(S(listener_->Process(" d7:command4:pinge")), "");
  EXPECT_EQ(S(listener_->Process(std::string(65, 'x') + " d7:command4:pinge")), "");
  EXPECT_EQ(S(listener_->Process(std::string("a\x01 d7:command4:pinge"))), "");
  EXPECT_EQ(listener_->counters().dropped, 4u);
  const std::string bad = S(listener_->Process("k1 d7:command4:ping"));
  EXPECT_THAT(bad, StartsWith("k1 d12:error-reason"));
  EXPECT_THAT(bad, HasSubstr("unexpected end of input inside a dictionary"));
  EXPECT_THAT(bad, HasSubstr("6:result5:error"));
  EXPECT_THAT(S(listener_->Process("k2 li1ee")), HasSubstr("not a dictionary"));
  EXPECT_THAT(S(listener_->Process("k3 ")), HasSubstr("empty input"));
  EXPECT_EQ(listener_->counters().errors, 3u);
  // The counts are in the statistics reply.
  const std::string stats = S(listener_->Process("k4 d7:command10:statisticse"));
  EXPECT_THAT(stats, HasSubstr("2:ngd7:droppedi4e6:errorsi3e8:requestsi4e15:retransmissionsi0ee"));
}

TEST_F(ListenerTest, AnswersOverUdpOnLoopback) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(listener_->port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::string ping = "77 d7:command4:pinge";
  ASSERT_EQ(sendto(fd, ping.data(), ping.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
            static_cast<ssize_t>(ping.size()));
  ASSERT_TRUE(listener_->Poll(1000).ok());
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 1000), 1);
  char buf[256];
  const ssize_t n = recv(fd, buf, sizeof(buf), 0);
  close(fd);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "77 d6:result4:ponge");
}

TEST(ListenerCreateTest, ABusyPortIsAClearError) {
  control::testing::FakeOperations ops;
  Handler handler(ops, HandlerOptions{"a"});
  ListenerOptions options;
  options.listen = packet::Endpoint{*packet::IpAddress::Parse("127.0.0.1"), 0};
  auto first = Listener::Create(handler, options);
  ASSERT_TRUE(first.ok());
  options.listen.port = (*first)->port();
  auto second = Listener::Create(handler, options);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot bind UDP 127.0.0.1:"));
}

}  // namespace
}  // namespace sluice::ng
