#include "sluice/metrics/exposition.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>


namespace sluice::metrics {
namespace {

TEST(ExpositionTest, FamilyWritesHelpThenType) {
  Exposition out;
  out.Family("sluice_x_total", "counter", "Things.");
  out.Sample("sluice_x_total", {}, uint64_t{7});
  EXPECT_EQ(out.text(), "# HELP sluice_x_total Things.\n# TYPE sluice_x_total counter\n"
                        "sluice_x_total 7\n");
}

TEST(ExpositionTest, LabelValuesAreEscaped) {
  Exposition out;
  out.Sample("m", {{"a", "back\\slash"}, {"b", "quo\"te"}, {"c", "new\nline"}}, uint64_t{1});
  EXPECT_EQ(out.text(), "m{a=\"back\\\\slash\",b=\"quo\\\"te\",c=\"new\\nline\"} 1\n");
}

TEST(ExpositionTest, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(Exposition::EscapeHelp("a\\b\n\"c\""), "a\\\\b\\n\"c\"");
}

TEST(ExpositionTest, DoublesRoundTripAndSpecialValuesAreSpelledAsTheFormatSays) {
  Exposition out;
  out.Sample("a", {}, 0.25);
  out.Sample("b", {}, 1234567.5);
  out.Sample("c", {}, std::numeric_limits<double>::infinity());
  out.Sample("d", {}, -std::numeric_limits<double>::infinity());
  out.Sample("e", {}, std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(out.text(), "a 0.25\nb 1234567.5\nc +Inf\nd -Inf\ne NaN\n");
}

TEST(ExpositionTest, LargeCountersAreExact) {
  Exposition out;
  out.Sample("m", {}, uint64_t{18446744073709551615u});
  EXPECT_EQ(out.text(), "m 18446744073709551615\n");
}

TEST(ExpositionTest, HistogramBucketsAreCumulativeEndWithInfAndCarrySumAndCount) {
  const std::array<double, 3> bounds = {0.1, 0.5, 1};
  const std::array<uint64_t, 3> counts = {2, 0, 3};
  Exposition out;
  out.Family("lat_seconds", "histogram", "Latency.");
  out.Histogram("lat_seconds", {{"protocol", "ng"}},
                {.bounds = bounds, .counts = counts, .overflow = 1, .sum = 4.5});
  EXPECT_EQ(out.text(),
            "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{protocol=\"ng\",le=\"0.1\"} 2\n"
            "lat_seconds_bucket{protocol=\"ng\",le=\"0.5\"} 2\n"
            "lat_seconds_bucket{protocol=\"ng\",le=\"1\"} 5\n"
            "lat_seconds_bucket{protocol=\"ng\",le=\"+Inf\"} 6\n"
            "lat_seconds_sum{protocol=\"ng\"} 4.5\n"
            "lat_seconds_count{protocol=\"ng\"} 6\n");
}

TEST(ExpositionTest, NamesAreChecked) {
  EXPECT_TRUE(Exposition::ValidMetricName("sluice_a:b_total"));
  EXPECT_FALSE(Exposition::ValidMetricName("9lives"));
  EXPECT_FALSE(Exposition::ValidMetricName("a-b"));
  EXPECT_FALSE(Exposition::ValidMetricName(""));
  EXPECT_TRUE(Exposition::ValidLabelName("worker"));
  EXPECT_FALSE(Exposition::ValidLabelName("a:b"));
  EXPECT_FALSE(Exposition::ValidLabelName("__reserved"));
}

}  // namespace
}  // namespace sluice::metrics
