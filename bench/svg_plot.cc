#include "svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

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

std::string RenderPanel(const PlotPanel& p, double x0) {
  std::string out;
  const double w = kPanelWidth - kLeft - kRight, h = kPanelHeight - kTop - kBottom;
  double xmin = INFINITY, xmax = -INFINITY, ymax = 0;
  for (const PlotSeries& s : p.series) {
    for (const PlotPoint& pt : s.points) {
      xmin = std::min(xmin, pt.x);
      xmax = std::max(xmax, pt.x);
      ymax = std::max(ymax, pt.y);
    }
  }
  if (!(xmax >= xmin)) return out;  // no points
  auto fx = [&](double x) {
    if (p.log_x) {
      const double a = std::log10(xmin), b = std::log10(std::max(xmax, xmin * 10));
      return x0 + kLeft + (std::log10(x) - a) / (b - a) * w;
    }
    const double span = xmax > xmin ? xmax - xmin : 1;
    return x0 + kLeft + (x - xmin) / span * w;
  };
  const double ystep = NiceStep(ymax > 0 ? ymax : 1, 5);
  const double ytop = std::ceil((ymax > 0 ? ymax : 1) / ystep) * ystep;
  auto fy = [&](double y) { return kTop + h - y / ytop * h; };

  absl::StrAppendFormat(&out,
                        "<text x=\"%.1f\" y=\"30\" font-size=\"14\" text-anchor=\"middle\">%s"
                        "</text>\n",
                        x0 + kLeft + w / 2, Escape(p.title));
  // Grid and y ticks.
  for (double y = 0; y <= ytop + ystep / 2; y += ystep) {
    absl::StrAppendFormat(&out,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s"
                          "</text>\n",
                          x0 + kLeft, fy(y), x0 + kLeft + w, fy(y), x0 + kLeft - 6, fy(y) + 4,
                          Number(y));
  }
  // X ticks: each measured x.
  std::vector<double> xs;
  for (const PlotSeries& s : p.series) {
    for (const PlotPoint& pt : s.points) xs.push_back(pt.x);
  }
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  for (double x : xs) {
    absl::StrAppendFormat(&out,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%s"
                          "</text>\n",
                          fx(x), kTop + h, fx(x), kTop + h + 5, fx(x), kTop + h + 18, Number(x));
  }
  absl::StrAppendFormat(
      &out,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n"
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n"
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
      x0 + kLeft, kTop, w, h, x0 + kLeft + w / 2, kTop + h + 40, Escape(p.x_label),
      x0 + 20, kTop + h / 2, x0 + 20, kTop + h / 2, Escape(p.y_label));
  // Series and legend.
  int i = 0;
  for (const PlotSeries& s : p.series) {
    const char* colour = kColours[i % 5];
    if (!s.points.empty()) {
      std::string pts;
      for (const PlotPoint& pt : s.points) {
        absl::StrAppendFormat(&pts, "%.1f,%.1f ", fx(pt.x), fy(pt.y));
        absl::StrAppendFormat(&out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                              fx(pt.x), fy(pt.y), colour);
      }
      absl::StrAppendFormat(&out,
                            "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
                            "stroke-width=\"2\"/>\n",
                            pts, colour);
    }
    const double ly = kTop + 14 + 16 * i;
    absl::StrAppendFormat(&out,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                          "stroke-width=\"2\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%s</text>\n",
                          x0 + kLeft + w - 150, ly - 4, x0 + kLeft + w - 130, ly - 4, colour,
                          x0 + kLeft + w - 125, ly, Escape(s.name));
    ++i;
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
