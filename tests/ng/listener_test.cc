// The ng listeners: cookies, the reply cache (retransmissions answered
// without repeating the command; bounded by entries and age, keyed by source
// and cookie), sources not allowed (no reply), undecodable and cookie-less
// datagrams, short error replies, a real round trip on loopback, and the
// Unix stream socket Kamailio's "unix:" speaks.
#include "sluice/ng/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../control/fake_operations.h"

namespace sluice::ng {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string S(const String& s) { return std::string(s.data(), s.size()); }

constexpr char kOffer[] =
    "d7:command5:offer7:call-id2:c18:from-tag1:a3:sdp73:v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\nc=IN IP4 "
    "10.0.0.2\r\nm=audio 4000 RTP/AVP 0\r\ne";

const packet::Endpoint kLocal = *packet::Endpoint::Parse("127.0.0.1:40000");

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
  EXPECT_EQ(S(listener_->Process("5323_1 d7:command4:pinge", kLocal)), "5323_1 d6:result4:ponge");
  EXPECT_EQ(listener_->counters().requests, 1u);
}

TEST_F(ListenerTest, RetransmissionsGetTheFirstReplyWithoutRepeatingTheCommand) {
  const std::string offer = std::string("c-1 ") + kOffer;
  const std::string first = S(listener_->Process(offer, kLocal));
  ASSERT_THAT(first, StartsWith("c-1 d"));
  ASSERT_THAT(first, HasSubstr("6:result2:ok"));
  EXPECT_EQ(handler_.call_count(), 1u);
  const std::string again = S(listener_->Process(offer, kLocal));
  EXPECT_EQ(again, first);  // same ports, byte for byte
  EXPECT_EQ(listener_->counters().requests, 1u);
  EXPECT_EQ(listener_->counters().retransmissions, 1u);
  // A new cookie is a new request: the same offer again is a re-offer.
  EXPECT_THAT(S(listener_->Process(std::string("c-2 ") + kOffer, kLocal)), HasSubstr("6:result2:ok"));
  EXPECT_EQ(listener_->counters().requests, 2u);
}

TEST_F(ListenerTest, TheCacheIsBoundedInEntriesAndAge) {
  for (const char* c : {"a", "b", "c", "d", "e"}) {
    listener_->Process(std::string(c) + " d7:command4:pinge", kLocal);
  }
  EXPECT_EQ(listener_->counters().requests, 5u);
  listener_->Process("e d7:command4:pinge", kLocal);  // still cached
  EXPECT_EQ(listener_->counters().retransmissions, 1u);
  listener_->Process("a d7:command4:pinge", kLocal);  // pushed out by the fifth
  EXPECT_EQ(listener_->counters().requests, 6u);
  now_ += 1000;  // everything is too old now
  listener_->Process("e d7:command4:pinge", kLocal);
  EXPECT_EQ(listener_->counters().requests, 7u);
  EXPECT_EQ(listener_->counters().retransmissions, 1u);
}

TEST_F(ListenerTest, BadMessagesGetErrorsOrAreCounted) {
  EXPECT_EQ(S(listener_->Process("nocookie", kLocal)), "");
  EXPECT_EQ(S(listener_->Process(" d7:command4:pinge", kLocal)), "");
  EXPECT_EQ(S(listener_->Process(std::string(65, 'x') + " d7:command4:pinge", kLocal)), "");
  EXPECT_EQ(S(listener_->Process(std::string("a\x01 d7:command4:pinge"), kLocal)), "");
  EXPECT_EQ(listener_->counters().dropped, 4u);
  const std::string bad = S(listener_->Process("k1 d7:command4:ping", kLocal));
  EXPECT_THAT(bad, StartsWith("k1 d12:error-reason"));
  EXPECT_THAT(bad, HasSubstr("unexpected end of input inside a dictionary"));
  EXPECT_THAT(bad, HasSubstr("6:result5:error"));
  EXPECT_THAT(S(listener_->Process("k2 li1ee", kLocal)), HasSubstr("not a dictionary"));
  EXPECT_THAT(S(listener_->Process("k3 ", kLocal)), HasSubstr("empty input"));
  EXPECT_EQ(listener_->counters().errors, 3u);
  // The counts are in the statistics reply.
  const std::string stats = S(listener_->Process("k4 d7:command10:statisticse", kLocal));
  EXPECT_THAT(stats, HasSubstr("2:ngd7:droppedi4e6:errorsi3e7:refusedi0e8:requestsi4e15:retransmissionsi0ee"));
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

TEST_F(ListenerTest, SourcesNotAllowedGetNoReplyAndChangeNothing) {
  const packet::Endpoint stranger = *packet::Endpoint::Parse("10.9.9.9:5060");
  EXPECT_EQ(S(listener_->Process(std::string("c-1 ") + kOffer, stranger)), "");
  EXPECT_EQ(S(listener_->Process("k d7:command4:liste", stranger)), "");
  EXPECT_EQ(S(listener_->Process("garbage", stranger)), "");  // not even counted as dropped
  EXPECT_EQ(handler_.call_count(), 0u);
  EXPECT_EQ(listener_->counters().refused, 3u);
  EXPECT_EQ(listener_->counters().requests, 0u);
  EXPECT_EQ(listener_->counters().dropped, 0u);
  // IPv6 loopback is allowed by default, as is all of 127/8.
  EXPECT_EQ(S(listener_->Process("p d7:command4:pinge", *packet::Endpoint::Parse("[::1]:9"))),
            "p d6:result4:ponge");
  EXPECT_EQ(S(listener_->Process("p d7:command4:pinge", *packet::Endpoint::Parse("127.1.2.3:9"))),
            "p d6:result4:ponge");
}

TEST_F(ListenerTest, TheCacheAnswersACookieOnlyToItsSource) {
  const std::string offer = std::string("k-1 ") + kOffer;
  const std::string reply = S(listener_->Process(offer, kLocal));
  ASSERT_THAT(reply, HasSubstr("6:result2:ok"));
  // Another local process guessing the cookie gets its own request done,
  // not the offer's reply.
  const packet::Endpoint other = *packet::Endpoint::Parse("127.0.0.1:40001");
  EXPECT_EQ(S(listener_->Process("k-1 d7:command4:pinge", other)), "k-1 d6:result4:ponge");
  EXPECT_EQ(listener_->counters().retransmissions, 0u);
  // The offer's own source still gets its cached reply.
  EXPECT_EQ(S(listener_->Process(offer, kLocal)), reply);
  EXPECT_EQ(listener_->counters().retransmissions, 1u);
}

TEST_F(ListenerTest, ErrorRepliesStayShort) {
  // Thousands of unknown keys (each named in the warning) and a failing
  // command: the reply is bounded, not an echo of the request.
  std::string many = "d";
  for (int i = 0; i < 3000; ++i) many += "6:x" + std::to_string(100000 + i).substr(1) + "i0e";
  std::string request = "w " + many;
  request.insert(request.size(), "7:command5:offere");  // keys need no order
  const std::string reply = S(listener_->Process(request, kLocal));
  EXPECT_THAT(reply, HasSubstr("5:error"));
  EXPECT_LT(reply.size(), 700u);
  EXPECT_GT(request.size(), 30000u);
  // A decoding error names an offset, not the input.
  const std::string bad = S(listener_->Process("b d4:" + std::string(5000, 'z') + "e", kLocal));
  EXPECT_LT(bad.size(), 250u);
}

class ListenerUnixTest : public ListenerTest {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/ng_test_" + std::to_string(getpid()) + ".sock";
    ListenerOptions options;
    options.listen = packet::Endpoint{*packet::IpAddress::Parse("127.0.0.1"), 0};
    options.socket_path = path_;
    options.now_ms = [this] { return now_; };
    auto l = Listener::Create(handler_, options);
    ASSERT_TRUE(l.ok()) << l.status();
    listener_ = std::move(*l);
  }
  // Sends `parts` on one connection, serving the listener between them, and
  // returns everything read back until the listener closes it.
  std::string RoundTrip(const std::vector<std::string>& parts) {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    for (const std::string& part : parts) {
      EXPECT_EQ(write(fd, part.data(), part.size()), static_cast<ssize_t>(part.size()));
      for (int i = 0; i < 3; ++i) EXPECT_TRUE(listener_->Poll(50).ok());
    }
    std::string out;
    char buf[4096];
    pollfd p{fd, POLLIN, 0};
    while (poll(&p, 1, 1000) == 1) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return out;
  }
  std::string path_;
};

TEST_F(ListenerUnixTest, AnswersKamailiosUnixFormWithoutCookie) {
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(RoundTrip({"d7:command4:pinge"}), "d6:result4:ponge");
  // A request split across writes is answered once whole.
  const std::string offer = kOffer;
  const std::string reply = RoundTrip({offer.substr(0, 40), offer.substr(40)});
  EXPECT_THAT(reply, StartsWith("d"));
  EXPECT_THAT(reply, HasSubstr("6:result2:ok"));
  EXPECT_EQ(handler_.call_count(), 1u);
  // The cookie form gets its cookie back.
  EXPECT_EQ(RoundTrip({"77 d7:command4:pinge"}), "77 d6:result4:ponge");
  listener_.reset();
  EXPECT_NE(stat(path_.c_str(), &st), 0);  // removed on close
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

// With no ng request arriving, the control loop's Poll still expires an
// unanswered offer and carries out a delete-delay'd delete.
TEST(ListenerTimersTest, PollRunsTheHandlerTimersWithoutTraffic) {
  control::testing::FakeOperations ops;
  uint64_t now = 1000;
  HandlerOptions handler_options{"a"};
  handler_options.offer_timeout_ms = 60000;
  handler_options.now_ms = [&now] { return now; };
  Handler handler(ops, handler_options);
  ListenerOptions options;
  options.listen = packet::Endpoint{*packet::IpAddress::Parse("127.0.0.1"), 0};
  auto listener = Listener::Create(handler, options);
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_THAT(S((*listener)->Process(std::string("o-1 ") + kOffer, kLocal)),
              HasSubstr("6:result2:ok"));
  ASSERT_EQ(handler.call_count(), 1u);
  now += 59999;
  ASSERT_TRUE((*listener)->Poll(0).ok());
  EXPECT_EQ(handler.call_count(), 1u);
  now += 1;
  ASSERT_TRUE((*listener)->Poll(0).ok());
  EXPECT_EQ(handler.call_count(), 0u);  // never answered: gone

  ASSERT_THAT(S((*listener)->Process(std::string("o-2 ") + kOffer, kLocal)),
              HasSubstr("6:result2:ok"));
  ASSERT_THAT(S((*listener)->Process("d-1 d7:command6:delete7:call-id2:c112:delete-delayi5ee",
                                     kLocal)),
              HasSubstr("6:result2:ok"));
  now += 4999;
  ASSERT_TRUE((*listener)->Poll(0).ok());
  EXPECT_EQ(handler.call_count(), 1u);
  now += 1;
  ASSERT_TRUE((*listener)->Poll(0).ok());
  EXPECT_EQ(handler.call_count(), 0u);  // deleted when its delay passed
}

}  // namespace
}  // namespace sluice::ng
