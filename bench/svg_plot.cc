#include "svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sluice::bench {
namespace {

constexpr double kPanelWidth = 520;
constexpr double kPanelHeight = 380;
constexpr double kLeft = 70, kRight = 20, kTop = 50, kBottom = 60;
constexpr const char* kColours[] = {"#1f6fb4", "#2a9d3a", "#c0392b", "#8e44ad", "#d68910"};

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A round step for about `ticks` ticks over [0, top].
double NiceStep(double top, int ticks) {
  const double raw = top / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (raw <= m * mag) return m * mag;
  }
  return 10 * mag;
}

std::string Number(double v) {
  if (v >= 1e6 && std::fmod(v, 1e6) == 0) return absl::StrCat(v / 1e6, "M");
  if (v >= 1e3 && std::fmod(v, 1e3) == 0) return absl::StrCat(v / 1e3, "k");
  return absl::StrFormat("%g", v);
}

// Where a panel's values land: its plot area starts kLeft into the panel at
// x0 and spans [xmin, xmax] (log-scaled when asked) by [0, ytop].
struct Frame {
  double x0 = 0;
  double w = kPanelWidth - kLeft - kRight;
  double h = kPanelHeight - kTop - kBottom;
  bool log_x = false;
  double xmin = INFINITY, xmax = -INFINITY;
  double ystep = 1, ytop = 1;

  double X(double x) const {
    if (log_x) {
      const double a = std::log10(xmin), b = std::log10(std::max(xmax, xmin * 10));
      return x0 + kLeft + (std::log10(x) - a) / (b - a) * w;
    }
    const double span = xmax > xmin ? xmax - xmin : 1;
    return x0 + kLeft + (x - xmin) / span * w;
  }
  double Y(double y) const { return kTop + h - y / ytop * h; }
};

// The frame that holds every point of `p`; nullopt when it has none.
std::optional<Frame> FitFrame(const PlotPanel& p, double x0) {
  Frame f;
  f.x0 = x0;
  f.log_x = p.log_x;
  double ymax = 0;
  for (const PlotSeries& s : p.series) {
    for (const PlotPoint& pt : s.points) {
      f.xmin = std::min(f.xmin, pt.x);
      f.xmax = std::max(f.xmax, pt.x);
      ymax = std::max(ymax, pt.y);
    }
  }
  if (!(f.xmax >= f.xmin)) return std::nullopt;
  f.ystep = NiceStep(ymax > 0 ? ymax : 1, 5);
  f.ytop = std::ceil((ymax > 0 ? ymax : 1) / f.ystep) * f.ystep;
  return f;
}

// Title, horizontal grid lines and y ticks.
void AppendYGrid(const PlotPanel& p, const Frame& f, std::string* out) {
  absl::StrAppendFormat(out,
                        "<text x=\"%.1f\" y=\"30\" font-size=\"14\" text-anchor=\"middle\">%s"
                        "</text>\n",
                        f.x0 + kLeft + f.w / 2, Escape(p.title));
  for (double y = 0; y <= f.ytop + f.ystep / 2; y += f.ystep) {
    absl::StrAppendFormat(out,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s"
                          "</text>\n",
                          f.x0 + kLeft, f.Y(y), f.x0 + kLeft + f.w, f.Y(y), f.x0 + kLeft - 6,
                          f.Y(y) + 4, Number(y));
  }
}

// A tick at each measured x, then the plot's border and axis labels.
void AppendXTicksAndAxes(const PlotPanel& p, const Frame& f, std::string* out) {
  std::vector<double> xs;
  for (const PlotSeries& s : p.series) {
    for (const PlotPoint& pt : s.points) xs.push_back(pt.x);
  }
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  const double bottom = kTop + f.h;
  for (double x : xs) {
    absl::StrAppendFormat(out,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%s"
                          "</text>\n",
                          f.X(x), bottom, f.X(x), bottom + 5, f.X(x), bottom + 18, Number(x));
  }
  absl::StrAppendFormat(
      out,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n"
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n"
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
      f.x0 + kLeft, kTop, f.w, f.h, f.x0 + kLeft + f.w / 2, bottom + 40, Escape(p.x_label),
      f.x0 + 20, kTop + f.h / 2, f.x0 + 20, kTop + f.h / 2, Escape(p.y_label));
}

// Series `i`: its points joined by a line, and its entry in the legend.
void AppendSeries(const PlotSeries& s, int i, const Frame& f, std::string* out) {
  const char* colour = kColours[i % 5];
  if (!s.points.empty()) {
    std::string pts;
    for (const PlotPoint& pt : s.points) {
      absl::StrAppendFormat(&pts, "%.1f,%.1f ", f.X(pt.x), f.Y(pt.y));
      absl::StrAppendFormat(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                            f.X(pt.x), f.Y(pt.y), colour);
    }
    absl::StrAppendFormat(out,
                          "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
                          "stroke-width=\"2\"/>\n",
                          pts, colour);
  }
  const double ly = kTop + 14 + 16 * i;
  const double right = f.x0 + kLeft + f.w;
  absl::StrAppendFormat(out,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                        "stroke-width=\"2\"/>\n"
                        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%s</text>\n",
                        right - 150, ly - 4, right - 130, ly - 4, colour, right - 125, ly,
                        Escape(s.name));
}

std::string RenderPanel(const PlotPanel& p, double x0) {
  std::string out;
  const std::optional<Frame> frame = FitFrame(p, x0);
  if (!frame) return out;
  AppendYGrid(p, *frame, &out);
  AppendXTicksAndAxes(p, *frame, &out);
  for (size_t i = 0; i < p.series.size(); ++i) {
    AppendSeries(p.series[i], static_cast<int>(i), *frame, &out);
  }
  return out;
}

}  // namespace

std::string RenderSvg(const std::string& title, const std::vector<PlotPanel>& panels) {
  const double width = kPanelWidth * static_cast<double>(std::max<size_t>(panels.size(), 1));
  const double height = kPanelHeight + 30;
  std::string out = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" fill=\"#444\">%s</text>\n"
      "<g transform=\"translate(0 0)\">\n",
      width, height, width, height, width / 2, kPanelHeight + 20, Escape(title));
  for (size_t i = 0; i < panels.size(); ++i) {
    out += RenderPanel(panels[i], kPanelWidth * static_cast<double>(i));
  }
  out += "</g>\n</svg>\n";
  return out;
}

}  // namespace sluice::bench
