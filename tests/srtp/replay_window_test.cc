#include "sluice/srtp/replay_window.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

namespace sluice::srtp {
namespace {

class ReplayWindowTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    words_.assign(ReplayWindow::StorageBits(GetParam()) / 64, 0);
    window_.Init(words_.data(), GetParam());
  }
  std::vector<uint64_t> words_;
  ReplayWindow window_;
};

TEST_P(ReplayWindowTest, FirstIndexIsNewThenReplayed) {
  EXPECT_EQ(window_.Check(1000), ReplayCheck::kNew);
  window_.Accept(1000);
  EXPECT_EQ(window_.Check(1000), ReplayCheck::kReplayed);
  EXPECT_EQ(window_.top(), 1000u);
}

TEST_P(ReplayWindowTest, LateButInsideWindowIsAcceptedOnce) {
  const uint32_t size = GetParam();
  window_.Accept(5000);
  const uint64_t oldest = 5000 - (size - 1);
  EXPECT_EQ(window_.Check(oldest), ReplayCheck::kNew);
  window_.Accept(oldest);
  EXPECT_EQ(window_.Check(oldest), ReplayCheck::kReplayed);
  EXPECT_EQ(window_.Check(5000 - size), ReplayCheck::kTooOld);
  EXPECT_EQ(window_.top(), 5000u) << "a late packet never moves the top";
}

TEST_P(ReplayWindowTest, SlidingForgetsOnlyWhatLeavesTheWindow) {
  const uint32_t size = GetParam();
  for (uint64_t i = 100; i < 100 + size; i += 2) window_.Accept(i);  // even ones
  const uint64_t top = window_.top();
  window_.Accept(top + 10);
  for (uint64_t i = top + 10 - (size - 1); i <= top + 10; ++i) {
    const bool was_accepted = (i >= 100 && i < 100 + size && i % 2 == 0) || i == top + 10;
    EXPECT_EQ(window_.Check(i), was_accepted ? ReplayCheck::kReplayed : ReplayCheck::kNew) << i;
  }
}

TEST_P(ReplayWindowTest, BigJumpClearsEverything) {
  window_.Accept(10);
  window_.Accept(11);
  window_.Accept(10 + 5ull * GetParam());
  EXPECT_EQ(window_.Check(11), ReplayCheck::kTooOld);
  EXPECT_EQ(window_.Check(10 + 5ull * GetParam() - 1), ReplayCheck::kNew);
}

TEST_P(ReplayWindowTest, SeedStartsAtIndexWithoutMarkingIt) {
  window_.Seed(70000);
  EXPECT_FALSE(window_.empty());
  EXPECT_EQ(window_.Check(70000), ReplayCheck::kNew);
  EXPECT_EQ(window_.Check(70000 - GetParam()), ReplayCheck::kTooOld);
}

TEST_P(ReplayWindowTest, ResumeRefusesEverythingUpToIndex) {
  window_.Accept(70005);
  window_.Resume(70000);
  EXPECT_EQ(window_.top(), 70000u);
  for (uint64_t i = 70000 - (GetParam() - 1); i <= 70000; ++i) {
    EXPECT_EQ(window_.Check(i), ReplayCheck::kReplayed) << i;
  }
  EXPECT_EQ(window_.Check(70000 - GetParam()), ReplayCheck::kTooOld);
  EXPECT_EQ(window_.Admit(70002), ReplayCheck::kNew);
  EXPECT_EQ(window_.Check(70001), ReplayCheck::kNew);  // slid in after the top
  EXPECT_EQ(window_.Check(70000), ReplayCheck::kReplayed);
}

// Against a model: a set of accepted indices and the highest one.
TEST_P(ReplayWindowTest, AgreesWithASimpleModel) {
  const uint32_t size = GetParam();
  std::mt19937_64 rng(size);
  std::set<uint64_t> seen;
  uint64_t top = 0;
  bool any = false;
  uint64_t base = 1 << 20;
  for (int step = 0; step < 20000; ++step) {
    base += rng() % 3;
    const uint64_t index = base - (rng() % (size + size / 2));
    ReplayCheck expected;
    if (!any || index > top) {
      expected = ReplayCheck::kNew;
    } else if (top - index >= size) {
      expected = ReplayCheck::kTooOld;
    } else {
      expected = seen.count(index) ? ReplayCheck::kReplayed : ReplayCheck::kNew;
    }
    ASSERT_EQ(window_.Check(index), expected) << "step " << step << " index " << index;
    if (expected == ReplayCheck::kNew && rng() % 4 != 0) {  // some never authenticate
      window_.Accept(index);
      seen.insert(index);
      if (!any || index > top) top = index;
      any = true;
    }
  }
}

// Admit (check and accept in one) and AcceptNextRange (a run in order, as
// protect writes it) leave the window exactly as Check and Accept would.
TEST_P(ReplayWindowTest, AdmitAndRangesAgreeWithCheckThenAccept) {
  const uint32_t size = GetParam();
  std::vector<uint64_t> model_words(ReplayWindow::StorageBits(size) / 64, 0);
  ReplayWindow model;
  model.Init(model_words.data(), size);
  std::mt19937_64 rng(size + 1);
  uint64_t next = 1 << 20;
  for (int step = 0; step < 5000; ++step) {
    const uint64_t kind = rng() % 4;
    if (kind == 0 && !window_.empty()) {
      // A run in order from top + 1, up to the storage size.
      const uint64_t from = window_.top() + 1;
      const uint64_t to = from + rng() % ReplayWindow::StorageBits(size);
      window_.AcceptNextRange(from, to);
      for (uint64_t i = from; i <= to; ++i) {
        ASSERT_EQ(model.Check(i), ReplayCheck::kNew);
        model.Accept(i);
      }
      next = to + 1;
    } else {
      next += rng() % 3;
      const uint64_t index = kind == 1 ? next : next - rng() % (size + size / 2);
      const ReplayCheck expected = model.Check(index);
      if (expected == ReplayCheck::kNew) model.Accept(index);
      ASSERT_EQ(window_.Admit(index), expected) << "step " << step << " index " << index;
    }
    ASSERT_EQ(window_.top(), model.top()) << "step " << step;
    const uint64_t top = model.top();
    for (uint64_t i = top > size + 2 ? top - size - 2 : 0; i <= top + 1; ++i) {
      ASSERT_EQ(window_.Check(i), model.Check(i)) << "step " << step << " index " << i;
    }
  }
}

// 192 and 960 are not powers of two: storage rounds up, the window does not.
INSTANTIATE_TEST_SUITE_P(Sizes, ReplayWindowTest, ::testing::Values(64u, 128u, 192u, 960u, 1024u));

}  // namespace
}  // namespace sluice::srtp
