// Command-line options of sluice-bench's commands: "--name value" and
// "--name=value", with the messages every command gives for bad ones.
//
// Benchmark code.
#ifndef SLUICE_BENCH_OPTIONS_H_
#define SLUICE_BENCH_OPTIONS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace sluice::bench {

// abseil 20220623's string_view is not std::string_view.
inline std::string Str(std::string_view s) { return std::string(s); }
inline std::string Str(absl::string_view s) { return std::string(s); }

class OptionReader {
 public:
  OptionReader(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // Moves to the next option; false when there is none.
  bool Next() {
    if (++i_ >= argc_) return false;
    name_ = argv_[i_];
    inline_ = false;
    if (const size_t eq = name_.find('='); name_.starts_with("--") && eq != std::string_view::npos) {
      value_ = name_.substr(eq + 1);
      name_ = name_.substr(0, eq);
      inline_ = true;
    }
    return true;
  }

  std::string_view name() const { return name_; }

  // The option's value: after '=', or the next argument.
  absl::StatusOr<std::string_view> Value() {
    if (!inline_) {
      if (i_ + 1 >= argc_) {
        return absl::InvalidArgumentError(absl::StrCat(Str(name_), " needs a value"));
      }
      value_ = argv_[++i_];
      inline_ = true;
    }
    return value_;
  }

  absl::Status Unknown() const {
    return absl::InvalidArgumentError(absl::StrCat("unknown option \"", Str(name_), "\""));
  }
  // For the value Value() returned.
  absl::Status Bad(std::string_view expected) const {
    return absl::InvalidArgumentError(absl::StrCat("bad value \"", Str(value_), "\" for ",
                                                   Str(name_), ": expected ", Str(expected)));
  }

 private:
  int argc_;
  char** argv_;
  int i_ = -1;
  std::string_view name_;
  std::string_view value_;
  bool inline_ = false;
};

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_OPTIONS_H_
