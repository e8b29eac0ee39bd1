#include "sluice/session/remote.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

namespace sluice::session {
namespace {

using packet::Endpoint;
using packet::IpAddress;

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }

RemoteView View(const char* endpoint, bool has_mac) {
  RemoteView v;
  v.known = true;
  v.has_mac = has_mac;
  v.endpoint = Ep(endpoint);
  if (has_mac) v.mac = {2, 0, 0, 0, 0, 7};
  return v;
}

TEST(RemoteSlot, StoreThenLoadGivesTheViewBack) {
  RemoteSlot slot;
  EXPECT_FALSE(slot.Load().known);
  const RemoteView v = View("[2001:db8::7]:40000", true);
  slot.Store(v);
  const RemoteView got = slot.Load();
  EXPECT_TRUE(got.known);
  EXPECT_TRUE(got.has_mac);
  EXPECT_EQ(got.endpoint, v.endpoint);
  EXPECT_EQ(got.mac, v.mac);
}

TEST(RemoteSlot, MatchesComparesAddressFamilyPortAndOffset) {
  RemoteSlot slot;
  const Endpoint src = Ep("10.0.0.2:40000");
  EXPECT_FALSE(slot.Matches(src.ip, src.port, 0).same) << "unknown peer";
  slot.Store(View("10.0.0.2:40000", false));
  EXPECT_TRUE(slot.Matches(src.ip, src.port, 0).same);
  EXPECT_FALSE(slot.Matches(src.ip, src.port, 0).has_mac);
  EXPECT_FALSE(slot.Matches(src.ip, 40001, 0).same);
  EXPECT_TRUE(slot.Matches(src.ip, 40001, 1).same) << "RTCP on RTP port + 1";
  EXPECT_FALSE(slot.Matches(src.ip, 40000, 1).same);
  EXPECT_FALSE(slot.Matches(Ep("10.0.0.3:40000").ip, 40000, 0).same);
  // An IPv6 address whose first four bytes equal the IPv4 one is another address.
  IpAddress v6 = IpAddress::V6Bytes(src.ip.bytes.data());
  EXPECT_FALSE(slot.Matches(v6, 40000, 0).same);

  slot.Store(View("[2001:db8::1:2]:5004", true));
  const Endpoint six = Ep("[2001:db8::1:2]:5004");
  EXPECT_TRUE(slot.Matches(six.ip, six.port, 0).same);
  EXPECT_TRUE(slot.Matches(six.ip, six.port, 0).has_mac);
  EXPECT_FALSE(slot.Matches(Ep("[2001:db8::1:3]:5004").ip, 5004, 0).same) << "last byte";
  EXPECT_FALSE(slot.Matches(Ep("[2001:db9::1:2]:5004").ip, 5004, 0).same) << "upper half";
  EXPECT_FALSE(slot.Matches(src.ip, src.port, 0).same);
  slot.Store(View("10.0.0.2:65535", false));
  EXPECT_TRUE(slot.Matches(src.ip, 65535, 0).same);
}

TEST(RemoteSlot, VersionAndResolvedWordChangeWithWhatTheyCover) {
  RemoteSlot slot;
  const uint32_t v0 = slot.version();
  const uint64_t r0 = slot.resolved_word();
  slot.Store(View("10.0.0.2:40000", false));
  const uint32_t v1 = slot.version();
  EXPECT_NE(v1, v0);
  EXPECT_EQ(v1 % 2, 0u) << "even once stored";
  EXPECT_EQ(slot.resolved_word(), r0);
  slot.SetResolvedMac({2, 0, 0, 0, 0, 1});
  const uint64_t r1 = slot.resolved_word();
  EXPECT_NE(r1, r0);
  EXPECT_EQ(slot.version(), v1) << "the view did not change";
  slot.SetResolvedMac({2, 0, 0, 0, 0, 2});
  EXPECT_NE(slot.resolved_word(), r1);
  slot.Store(View("10.0.0.2:40000", false));
  EXPECT_NE(slot.version(), v1) << "every store, even of the same view";
}

// A reader running against a writer never sees a mix of two views: the
// address of one with the port of the other would match x or y.
TEST(RemoteSlot, ReadersNeverSeeATornView) {
  RemoteSlot slot;
  const RemoteView a = View("[2001:db8::1]:1111", true), b = View("[2001:db8::2]:2222", false);
  const Endpoint x = Ep("[2001:db8::1]:2222"), y = Ep("[2001:db8::2]:1111");
  slot.Store(a);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) slot.Store(i % 2 ? a : b);
  });
  uint64_t checks = 0, seen_a = 0;
  bool torn = false;
  for (; checks < 200000 && !torn; ++checks) {
    torn |= slot.Matches(x.ip, x.port, 0).same || slot.Matches(y.ip, y.port, 0).same;
    const RemoteSlot::Match m = slot.Matches(a.endpoint.ip, a.endpoint.port, 0);
    torn |= m.same && !m.has_mac;  // a's endpoint with b's flags
    seen_a += m.same;
    const RemoteView v = slot.Load();
    torn |= !((v.endpoint == a.endpoint && v.has_mac) || (v.endpoint == b.endpoint && !v.has_mac));
  }
  stop = true;
  writer.join();
  EXPECT_FALSE(torn) << "after " << checks << " reads";
  std::printf("%llu of %llu reads saw the first view\n", static_cast<unsigned long long>(seen_a),
              static_cast<unsigned long long>(checks));
}

}  // namespace
}  // namespace sluice::session
