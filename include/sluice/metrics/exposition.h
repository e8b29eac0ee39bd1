// The Prometheus text exposition format, version 0.0.4: a writer that
// builds one scrape's body, family by family (# HELP, # TYPE, then samples).
//
// Control thread only (any single thread). Label values and HELP text are
// escaped as the format requires; metric and label names are the caller's
// constants and are checked (debug builds) to be valid names.
#ifndef SLUICE_METRICS_EXPOSITION_H_
#define SLUICE_METRICS_EXPOSITION_H_

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::metrics {

// The Content-Type a scrape of this format is served with.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

using Label = std::pair<std::string_view, std::string_view>;
using Labels = std::initializer_list<Label>;

// A histogram's state as exposed: counts per upper bound (not cumulative;
// the writer sums them), the observations above the last bound, their sum.
struct HistogramValue {
  std::span<const double> bounds;    // ascending, +Inf not included
  std::span<const uint64_t> counts;  // one per bound
  uint64_t overflow = 0;             // above the last bound
  double sum = 0;
};

class Exposition {
 public:
  // Starts a family: its HELP and TYPE lines. Every sample written after it
  // (until the next family) must carry its name (histograms: the
  // _bucket/_sum/_count lines Histogram writes).
  void Family(std::string_view name, std::string_view type, std::string_view help);

  void Sample(std::string_view name, Labels labels, uint64_t value);
  void Sample(std::string_view name, Labels labels, double value);
  // `name`'s _bucket lines (cumulative, ending with le="+Inf"), _sum and _count.
  void Histogram(std::string_view name, Labels labels, const HistogramValue& value);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

  // Label values: backslash, double quote and line feed escaped.
  static std::string EscapeLabelValue(std::string_view value);
  // HELP text: backslash and line feed escaped.
  static std::string EscapeHelp(std::string_view help);
  // [a-zA-Z_:][a-zA-Z0-9_:]* (metric names); labels omit ':'.
  static bool ValidMetricName(std::string_view name);
  static bool ValidLabelName(std::string_view name);

 private:
  void Head(std::string_view name, Labels labels, std::string_view extra_name = {},
            std::string_view extra_value = {});

  std::string out_;
};

}  // namespace sluice::metrics

#endif  // SLUICE_METRICS_EXPOSITION_H_
