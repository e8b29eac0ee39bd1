#include "sluice/metrics/exposition.h"

#include <cassert>
#include <charconv>
#include <cmath>
#include <initializer_list>


namespace sluice::metrics {
namespace {

// Go's ParseFloat reads what to_chars writes (shortest round-trip form);
// the infinities and NaN are spelled as the format says.
void AppendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, r.ptr);
  }
}

void Append(std::string& out, std::initializer_list<std::string_view> parts) {
  for (std::string_view p : parts) out.append(p);
}

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
  out += '\n';
}

bool NameChar(char c, bool first, bool colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return alpha || (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

bool ValidName(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!NameChar(name[i], i == 0, colon)) return false;
  }
  return true;
}

}  // namespace

std::string Exposition::EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Exposition::EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

bool Exposition::ValidMetricName(std::string_view name) { return ValidName(name, true); }
bool Exposition::ValidLabelName(std::string_view name) {
  return ValidName(name, false) && name.substr(0, 2) != "__";
}

void Exposition::Family(std::string_view name, std::string_view type, std::string_view help) {
  assert(ValidMetricName(name));
  Append(out_, {"# HELP ", name, " ", EscapeHelp(help), "\n# TYPE ", name, " ", type, "\n"});
}

void Exposition::Head(std::string_view name, Labels labels, std::string_view extra_name,
                      std::string_view extra_value) {
  assert(ValidMetricName(name));
  out_ += name;
  if (labels.size() == 0 && extra_name.empty()) {
    out_ += ' ';
    return;
  }
  char sep = '{';
  for (const Label& l : labels) {
    assert(ValidLabelName(l.first));
    Append(out_, {std::string_view(&sep, 1), l.first, "=\"", EscapeLabelValue(l.second), "\""});
    sep = ',';
  }
  if (!extra_name.empty()) {
    Append(out_, {std::string_view(&sep, 1), extra_name, "=\"", extra_value, "\""});
  }
  out_ += "} ";
}

void Exposition::Sample(std::string_view name, Labels labels, uint64_t value) {
  Head(name, labels);
  AppendUint(out_, value);
}

void Exposition::Sample(std::string_view name, Labels labels, double value) {
  Head(name, labels);
  AppendDouble(out_, value);
  out_ += '\n';
}

void Exposition::Histogram(std::string_view name, Labels labels, const HistogramValue& value) {
  assert(value.bounds.size() == value.counts.size());
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < value.bounds.size(); ++i) {
    cumulative += value.counts[i];
    std::string le;
    AppendDouble(le, value.bounds[i]);
    Head(bucket, labels, "le", le);
    AppendUint(out_, cumulative);
  }
  cumulative += value.overflow;
  Head(bucket, labels, "le", "+Inf");
  AppendUint(out_, cumulative);
  Head(std::string(name) + "_sum", labels);
  AppendDouble(out_, value.sum);
  out_ += '\n';
  Head(std::string(name) + "_count", labels);
  AppendUint(out_, cumulative);
}

}  // namespace sluice::metrics
