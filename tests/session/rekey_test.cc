// The make-before-break hand-over between the control thread and a flow's
// owning worker: what Offer, Adopt and TakeRetired do to a flow's contexts.
#include "sluice/session/rekey.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "sluice/srtp/context.h"
#include "sluice/srtp/master_key.h"

namespace sluice::session {
namespace {

std::unique_ptr<srtp::Context> MakeContext(uint8_t fill) {
  srtp::MasterKey key;
  key.key.fill(fill);
  key.salt.fill(static_cast<uint8_t>(fill + 1));
  auto ctx = srtp::Context::Create(std::span<const srtp::MasterKey>(&key, 1), {});
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return *std::move(ctx);
}

TEST(RekeyTest, AdoptTakesTheOfferedContextsAndParksTheReplacedOnes) {
  auto rx_old = MakeContext(1), tx_old = MakeContext(2);
  auto rx_new = MakeContext(3), tx_new = MakeContext(4);
  Flow flow;
  flow.rx = rx_old.get();
  flow.tx = tx_old.get();
  flow.rekey_overlap_tsc = 500;

  EXPECT_EQ(rekey::Offer(flow.rx_next, rx_new.get()), nullptr);
  EXPECT_EQ(rekey::Offer(flow.tx_next, tx_new.get()), nullptr);
  EXPECT_TRUE(rekey::Pending(flow));
  rekey::Adopt(flow, 1000);

  EXPECT_EQ(flow.rx, rx_new.get());
  EXPECT_EQ(flow.tx, tx_new.get());
  EXPECT_EQ(flow.rx_next.load(), nullptr);
  EXPECT_EQ(flow.tx_next.load(), nullptr);
  // The replaced receive key is tried for the overlap; a send side switches
  // at once and has no deadline.
  EXPECT_EQ(rx_new->trial_deadline(), 1500u);
  EXPECT_EQ(tx_new->trial_deadline(), UINT64_MAX);
  EXPECT_TRUE(rekey::Pending(flow)) << "the replaced contexts wait to be collected";
  EXPECT_EQ(rekey::TakeRetired(flow.rx_retired), rx_old.get());
  EXPECT_EQ(rekey::TakeRetired(flow.tx_retired), tx_old.get());
  EXPECT_EQ(rekey::TakeRetired(flow.rx_retired), nullptr);
  EXPECT_FALSE(rekey::Pending(flow));
}

// The key carried from the replaced receive context keeps counting from
// where the worker left it there: the count belongs to the master key.
TEST(RekeyTest, AdoptCarriesTheReplacedKeysPacketCounts) {
  auto rx_old = MakeContext(1);
  srtp::MasterKey key;
  key.key.fill(5);
  key.salt.fill(6);
  srtp::ContextOptions options;
  options.trial_keys = true;
  auto rx_new = *srtp::Context::Create(std::span<const srtp::MasterKey>(&key, 1), options,
                                       rx_old.get());
  // The worker counts on with the old context after the new one is made.
  rx_old->SetKeyCountsForTesting(0, 1000, 40);
  Flow flow;
  flow.rx = rx_old.get();
  rekey::Offer(flow.rx_next, rx_new.get());
  rekey::Adopt(flow, 1);
  ASSERT_EQ(flow.rx, rx_new.get());
  ASSERT_EQ(rx_new->carried_key(), 1);
  EXPECT_EQ(rx_new->srtp_packets(1), 1000u);
  EXPECT_EQ(rx_new->srtcp_packets(1), 40u);
  EXPECT_EQ(rx_new->srtp_packets(0), 0u) << "the new key starts at zero";
  EXPECT_EQ(rekey::TakeRetired(flow.rx_retired), rx_old.get());
}

TEST(RekeyTest, NothingOfferedLeavesTheFlowAlone) {
  auto rx = MakeContext(1);
  Flow flow;
  flow.rx = rx.get();
  EXPECT_FALSE(rekey::Pending(flow));
  rekey::Adopt(flow, 1000);
  EXPECT_EQ(flow.rx, rx.get());
  EXPECT_EQ(flow.tx, nullptr);
  EXPECT_EQ(flow.rx_retired.load(), nullptr);
  EXPECT_EQ(rx->trial_deadline(), UINT64_MAX);
}

TEST(RekeyTest, AWorkerAdoptsNoMoreUntilTheRetiredContextIsCollected) {
  auto first = MakeContext(1), second = MakeContext(2), third = MakeContext(3);
  Flow flow;
  flow.rx = first.get();
  rekey::Offer(flow.rx_next, second.get());
  rekey::Adopt(flow, 0);
  ASSERT_EQ(flow.rx, second.get());
  rekey::Offer(flow.rx_next, third.get());
  rekey::Adopt(flow, 0);
  EXPECT_EQ(flow.rx, second.get()) << "one retired context per side at a time";
  EXPECT_EQ(flow.rx_next.load(), third.get());
  EXPECT_EQ(rekey::TakeRetired(flow.rx_retired), first.get());
  rekey::Adopt(flow, 0);
  EXPECT_EQ(flow.rx, third.get());
  EXPECT_EQ(rekey::TakeRetired(flow.rx_retired), second.get());
}

TEST(RekeyTest, PlainSwitchesASideToPlainRtpAndRetiresItsContext) {
  auto tx = MakeContext(1);
  Flow flow;
  flow.tx = tx.get();
  rekey::Offer(flow.tx_next, rekey::Plain());
  rekey::Adopt(flow, 0);
  EXPECT_EQ(flow.tx, nullptr);
  EXPECT_EQ(rekey::TakeRetired(flow.tx_retired), tx.get());

  // From plain to keyed: nothing is retired.
  auto rx = MakeContext(2);
  rekey::Offer(flow.rx_next, rx.get());
  rekey::Adopt(flow, 0);
  EXPECT_EQ(flow.rx, rx.get());
  EXPECT_EQ(flow.rx_retired.load(), nullptr);
}

TEST(RekeyTest, AnOfferTheWorkerNeverTookGoesBackToTheControlThread) {
  auto a = MakeContext(1), b = MakeContext(2);
  Flow flow;
  EXPECT_EQ(rekey::Offer(flow.rx_next, a.get()), nullptr);
  EXPECT_EQ(rekey::Offer(flow.rx_next, b.get()), a.get());
  EXPECT_EQ(rekey::Offer(flow.rx_next, rekey::Plain()), b.get());
  rekey::Adopt(flow, 0);
  EXPECT_EQ(flow.rx, nullptr);
  EXPECT_FALSE(rekey::Pending(flow));
}

// A worker adopting while the control thread offers and collects: every
// context offered is either adopted and retired, handed back by a later
// Offer, or still pending at the end; none is lost or seen twice.
TEST(RekeyTest, ConcurrentOffersAndAdoptionsLoseNoContext) {
  constexpr int kContexts = 2000;
  std::vector<std::unique_ptr<srtp::Context>> contexts;
  for (int i = 0; i < kContexts; ++i) contexts.push_back(MakeContext(static_cast<uint8_t>(i)));
  Flow flow;
  std::atomic<bool> stop{false};
  std::thread worker([&] {
    uint64_t now = 0;
    while (!stop.load(std::memory_order_acquire)) rekey::Adopt(flow, ++now);
    rekey::Adopt(flow, ++now);
  });
  std::vector<srtp::Context*> returned;
  for (int i = 0; i < kContexts; ++i) {
    if (srtp::Context* back = rekey::Offer(flow.rx_next, contexts[i].get())) returned.push_back(back);
    if (srtp::Context* old = rekey::TakeRetired(flow.rx_retired)) returned.push_back(old);
  }
  stop.store(true, std::memory_order_release);
  worker.join();
  if (srtp::Context* old = rekey::TakeRetired(flow.rx_retired)) returned.push_back(old);
  if (srtp::Context* pending = flow.rx_next.load()) returned.push_back(pending);
  if (flow.rx != nullptr) returned.push_back(flow.rx);
  std::sort(returned.begin(), returned.end());
  EXPECT_EQ(std::adjacent_find(returned.begin(), returned.end()), returned.end());
  EXPECT_EQ(returned.size(), static_cast<size_t>(kContexts));
}

}  // namespace
}  // namespace sluice::session
