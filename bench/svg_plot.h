// Line charts as SVG, for sweeps: one or more panels side by side, each with
// its own axes and a legend.
//
// Benchmark code.
#ifndef SLUICE_BENCH_SVG_PLOT_H_
#define SLUICE_BENCH_SVG_PLOT_H_

#include <string>
#include <vector>

namespace sluice::bench {

struct PlotPoint {
  double x;
  double y;
};

struct PlotSeries {
  std::string name;
  std::vector<PlotPoint> points;  // in increasing x
};

struct PlotPanel {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;  // x must then be positive
  std::vector<PlotSeries> series;
};

// A self-contained SVG document (no scripts, no external fonts).
std::string RenderSvg(const std::string& title, const std::vector<PlotPanel>& panels);

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_SVG_PLOT_H_
