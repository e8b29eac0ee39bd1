#include "sluice/log/logger.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice::log {
namespace {

class LoggerTest : public ::testing::Test {
 protected:
  Logger Make(uint32_t burst = 3, uint32_t per_minute = 60, bool prefix = false) {
    Logger::Options o;
    o.burst = burst;
    o.per_minute = per_minute;
    o.syslog_prefix = prefix;
    o.write = [this](std::string_view line) { lines_.emplace_back(line); };
    o.now_ms = [this] { return now_ms_; };
    return Logger(std::move(o));
  }
  std::vector<std::string> lines_;
  uint64_t now_ms_ = 1000;
};

TEST_F(LoggerTest, OneEventALineWithLevelNameAndFields) {
  Logger log = Make();
  log.Event(Level::kInfo, "session.deleted", {{"session", "call-1"}, {"id", 7}, {"reason", "timeout"}});
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0], "sluiced: level=info event=session.deleted session=call-1 id=7 reason=timeout");
}

TEST_F(LoggerTest, JournalPrefixCarriesTheSyslogPriority) {
  Logger log = Make(3, 60, /*prefix=*/true);
  log.Event(Level::kWarning, "worker.stalled", {{"worker", 1}});
  log.Event(Level::kError, "config.invalid", {});
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0], "<4>level=warning event=worker.stalled worker=1");
  EXPECT_EQ(lines_[1], "<3>level=error event=config.invalid");
}

TEST_F(LoggerTest, ValuesAreQuotedAndEscapedSoALineStaysOneLine) {
  Logger log = Make();
  log.Event(Level::kNotice, "control.client_refused",
            {{"reason", "not in group \"sluice\""}, {"peer", "a=b"}, {"name", std::string("x\ny\\\x01", 5)},
             {"empty", ""}});
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0],
            "sluiced: level=notice event=control.client_refused reason=\"not in group \\\"sluice\\\"\" "
            "peer=\"a=b\" name=\"x\\x0ay\\\\\\x01\" empty=\"\"");
  EXPECT_EQ(lines_[0].find('\n'), std::string::npos);
}

TEST_F(LoggerTest, AFloodOfOneEventIsCutToItsBurstAndTheRestCounted) {
  Logger log = Make(/*burst=*/3, /*per_minute=*/60);
  for (int i = 0; i < 1000; ++i) log.Event(Level::kNotice, "control.tls_refused", {{"n", i}});
  // Another event is not held back by the first one's flood.
  log.Event(Level::kInfo, "session.deleted", {});
  ASSERT_EQ(lines_.size(), 4u);
  EXPECT_EQ(lines_[2], "sluiced: level=notice event=control.tls_refused n=2");
  EXPECT_EQ(lines_[3], "sluiced: level=info event=session.deleted");
  EXPECT_EQ(log.suppressed(), 997u);
  // One line a second comes back (60 a minute), saying what was withheld.
  now_ms_ += 1000;
  log.Event(Level::kNotice, "control.tls_refused", {{"n", 1000}});
  ASSERT_EQ(lines_.size(), 5u);
  EXPECT_EQ(lines_[4], "sluiced: level=notice event=control.tls_refused n=1000 suppressed=997");
  log.Event(Level::kNotice, "control.tls_refused", {{"n", 1001}});
  EXPECT_EQ(lines_.size(), 5u);
  // The bucket refills to its burst, no further.
  now_ms_ += 3600 * 1000;
  for (int i = 0; i < 10; ++i) log.Event(Level::kNotice, "control.tls_refused", {});
  EXPECT_EQ(lines_.size(), 8u);
  EXPECT_NE(lines_[5].find("suppressed=1"), std::string::npos);
}

TEST_F(LoggerTest, DefaultIsReplacedAndRestored) {
  Logger log = Make();
  SetDefault(&log);
  Event(Level::kInfo, "daemon.ready", {{"workers", 2}});
  SetDefault(nullptr);
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0], "sluiced: level=info event=daemon.ready workers=2");
}

}  // namespace
}  // namespace sluice::log
