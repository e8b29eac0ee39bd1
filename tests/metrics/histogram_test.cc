#include "sluice/metrics/histogram.h"

#include <gtest/gtest.h>

namespace sluice::metrics {
namespace {

TEST(HistogramTest, ObservationsFallInTheFirstBucketAtOrAboveThem) {
  Histogram h;
  h.Observe(0.00005);  // exactly the first bound: le is inclusive
  h.Observe(0.0003);   // (0.00025, 0.0005]
  h.Observe(10);       // above every bound
  const HistogramValue v = h.Value();
  EXPECT_EQ(v.counts[0], 1u);
  EXPECT_EQ(v.counts[3], 1u);
  EXPECT_EQ(v.overflow, 1u);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_DOUBLE_EQ(h.sum(), 10.00035);
}

TEST(HistogramTest, BoundsAscend) {
  for (size_t i = 1; i < Histogram::kLatencyBounds.size(); ++i) {
    EXPECT_LT(Histogram::kLatencyBounds[i - 1], Histogram::kLatencyBounds[i]);
  }
}

}  // namespace
}  // namespace sluice::metrics
