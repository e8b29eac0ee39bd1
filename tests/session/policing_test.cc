// Policing: the generic cell rate algorithm that holds a leg to its rate.
#include "sluice/session/policing.h"

#include <gtest/gtest.h>

namespace sluice::session {
namespace {

using policing::WithinRate;

constexpr uint64_t kHz = 1'000'000'000;  // a 1 GHz TSC

TEST(PolicingTest, UnlimitedUnlessConfigured) {
  Flow flow;
  for (int i = 0; i < 10000; ++i) EXPECT_TRUE(WithinRate(flow, 0));
  policing::Configure(flow, 0, kHz);
  EXPECT_EQ(flow.rate_interval_tsc, 0u);
  EXPECT_TRUE(WithinRate(flow, 0));
}

TEST(PolicingTest, ABurstOfTheToleranceThenOnePacketAnInterval) {
  Flow flow;
  policing::Configure(flow, 100, kHz);  // 100 pps: a tenth of a second is 10 < kMinBurst
  EXPECT_EQ(flow.rate_interval_tsc, kHz / 100);
  int passed = 0;
  for (int i = 0; i < 1000; ++i) passed += WithinRate(flow, 0);
  EXPECT_EQ(passed, static_cast<int>(policing::kMinBurst));
  // One interval later, exactly one more conforms.
  EXPECT_TRUE(WithinRate(flow, kHz / 100));
  EXPECT_FALSE(WithinRate(flow, kHz / 100));
}

TEST(PolicingTest, ATenthOfASecondsWorthAtHighRates) {
  Flow flow;
  policing::Configure(flow, 10000, kHz);
  int passed = 0;
  for (int i = 0; i < 5000; ++i) passed += WithinRate(flow, 0);
  EXPECT_EQ(passed, 1000);
}

TEST(PolicingTest, TrafficAtTheRateAlwaysConforms) {
  Flow flow;
  policing::Configure(flow, 50, kHz);
  const uint64_t interval = kHz / 50;
  for (uint64_t i = 0; i < 500; ++i) EXPECT_TRUE(WithinRate(flow, i * interval)) << i;
  // Twice the rate over a long run: about half is refused once the
  // tolerance is spent.
  int passed = 0;
  const uint64_t start = 500 * interval;
  for (uint64_t i = 0; i < 2000; ++i) passed += WithinRate(flow, start + i * interval / 2);
  EXPECT_NEAR(passed, 1000 + static_cast<int>(policing::kMinBurst), 2);
}

TEST(PolicingTest, RefusedPacketsDoNotSpendTheAllowance) {
  Flow flow;
  policing::Configure(flow, 100, kHz);
  for (int i = 0; i < 10000; ++i) WithinRate(flow, 0);
  // However long the flood at t=0 went on, the leg's next interval brings
  // one packet.
  EXPECT_TRUE(WithinRate(flow, kHz / 100));
}

// The handshake rate is one for every flow, each keeping its own arrival
// time: a flood at one flow leaves another's allowance whole.
TEST(PolicingTest, TheHandshakeRateIsSharedEachFlowKeepsItsOwnPace) {
  const policing::Rate rate = policing::MakeRate(200, kHz);
  EXPECT_EQ(rate.interval_tsc, kHz / 200);
  Flow flooded, other;
  int passed = 0;
  for (int i = 0; i < 1000; ++i) passed += policing::HandshakeWithinRate(flooded, rate, false, 0);
  EXPECT_EQ(passed, static_cast<int>(policing::kMinBurst - policing::kPeerReserve));
  for (uint32_t i = 0; i < policing::kMinBurst - policing::kPeerReserve; ++i) {
    EXPECT_TRUE(policing::HandshakeWithinRate(other, rate, false, 0)) << i;
  }
  EXPECT_TRUE(policing::HandshakeWithinRate(flooded, rate, false, kHz / 200));
  // The handshake pace is apart from the media rate's.
  EXPECT_TRUE(WithinRate(flooded, 0));
  const policing::Rate unlimited = policing::MakeRate(0, kHz);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(policing::HandshakeWithinRate(other, unlimited, true, 0));
}

// The peer's address is held to the same rate (anyone can claim it): a
// flood from it passes one burst, and then one an interval, like any. A
// flood from others leaves it the reserve at once, and its turn each
// interval after (others wait until the pace falls below their share).
TEST(PolicingTest, ThePeersAddressIsHeldToTheRateAndKeepsAReserve) {
  const policing::Rate rate = policing::MakeRate(200, kHz);
  Flow spoofed;
  int passed = 0;
  for (int i = 0; i < 1000; ++i) passed += policing::HandshakeWithinRate(spoofed, rate, true, 0);
  EXPECT_EQ(passed, static_cast<int>(policing::kMinBurst));
  EXPECT_FALSE(policing::HandshakeWithinRate(spoofed, rate, false, 0));
  EXPECT_TRUE(policing::HandshakeWithinRate(spoofed, rate, true, kHz / 200));

  Flow flooded;
  for (int i = 0; i < 1000; ++i) policing::HandshakeWithinRate(flooded, rate, false, 0);
  for (uint32_t i = 0; i < policing::kPeerReserve; ++i) {
    EXPECT_TRUE(policing::HandshakeWithinRate(flooded, rate, true, 0)) << i;
  }
  EXPECT_FALSE(policing::HandshakeWithinRate(flooded, rate, true, 0));
  for (uint64_t t = 1; t <= 20; ++t) {  // the flood goes on; the peer checks each interval
    const uint64_t now = t * (kHz / 200);
    for (int i = 0; i < 100; ++i) policing::HandshakeWithinRate(flooded, rate, false, now);
    EXPECT_TRUE(policing::HandshakeWithinRate(flooded, rate, true, now)) << t;
  }
}

}  // namespace
}  // namespace sluice::session
