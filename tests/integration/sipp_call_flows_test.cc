// SBC call flows through Kamailio from Debian (configs/kamailio/kamailio.cfg)
// and sluiced, with SIPp (scenarios in tests/integration/sipp/) playing the
// SIP user agents: early media (183 then 200 with the same SDP), a call
// forked to two callees, re-INVITEs that re-key and hold, and two instances
// behind one Kamailio, one full or stopped. SIPp writes every SIP message
// to a file; the test reads the SDP Sluice put in them and checks the media
// between libsrtp2 phones in the phone namespaces, every packet counted and
// verified.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "harness.h"
#include "kamailio.h"
#include "ng_peer.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;

constexpr uint16_t kCallerSip = 5070;
constexpr uint16_t kCalleeSip = 5080;
constexpr uint16_t kCallee2Sip = 5082;
constexpr uint16_t kCallee6Sip = 5084;  // on [::1]

// A SIP message SIPp sent or received, as its message file has it.
struct SipMessage {
  bool received = false;
  std::string text;  // LF line endings
  std::string FirstLine() const { return text.substr(0, text.find('\n')); }
  std::string Body() const {
    const size_t at = text.find("\n\n");
    return at == std::string::npos ? "" : text.substr(at + 2);
  }
  bool IsResponse(int code) const { return text.rfind(absl::StrCat("SIP/2.0 ", code), 0) == 0; }
  bool IsRequest(const std::string& method) const { return text.rfind(method + " ", 0) == 0; }
};

// All of a SIP message (CRLF line ends) is in the file: SIPp may be writing
// the rest.
bool Complete(absl::string_view msg) {
  const size_t at = msg.find("\r\nContent-Length:");
  const size_t end = msg.find("\r\n\r\n");
  if (at == absl::string_view::npos || end == absl::string_view::npos) return false;
  const size_t length = std::strtoul(std::string(msg.substr(at + 17, 12)).c_str(), nullptr, 10);
  return msg.size() >= end + 4 + length;
}

// One SIPp process in the relay namespace, with -trace_msg to a file.
class Sipp {
 public:
  Sipp(const Sipp&) = delete;
  Sipp& operator=(const Sipp&) = delete;
  Sipp() = default;
  ~Sipp() {
    if (pid_ > 0) StopProcess(pid_);
  }

  // args: scenario file name, local SIP port, the rest of SIPp's arguments.
  // SIP goes over local_ip: 127.0.0.1, or ::1 for a phone reached over IPv6.
  void Start(Topology& topo, const std::string& dir, const std::string& scenario, uint16_t port,
             const std::vector<std::string>& args, const std::string& local_ip = "127.0.0.1") {
    messages_ = absl::StrCat(dir, "/", scenario, "-", port, ".msg");
    std::string cmd = absl::StrCat(
        "exec sipp -sf ", SourcePath("tests/integration/sipp/" + scenario), " -i ", local_ip,
        " -p ", port, " -m 1 -nostdin -trace_msg -message_file ", messages_);
    // Values are keys and addresses: no single quote in them.
    for (const std::string& a : args) absl::StrAppend(&cmd, " '", a, "'");
    absl::StrAppend(&cmd, " > ", messages_, ".out 2>&1");
    auto pid = topo.Spawn("relay", {"sh", "-c", cmd});
    ASSERT_TRUE(pid.ok()) << pid.status();
    pid_ = *pid;
  }

  std::vector<SipMessage> Messages() const {
    std::ifstream in(messages_);
    const std::string all(std::istreambuf_iterator<char>(in), {});
    std::vector<SipMessage> out;
    for (absl::string_view chunk : absl::StrSplit(all, "-----------------------------------------------")) {
      const size_t head = chunk.find("\n\n");
      if (head == absl::string_view::npos || !Complete(chunk.substr(head + 2))) continue;
      SipMessage m;
      m.received = chunk.substr(0, head).find("received") != absl::string_view::npos;
      m.text = absl::StrReplaceAll(chunk.substr(head + 2), {{"\r", ""}});
      out.push_back(std::move(m));
    }
    return out;
  }

  // The first message received that `match` accepts, waiting up to timeout_ms.
  SipMessage WaitReceived(const std::function<bool(const SipMessage&)>& match,
                          int timeout_ms = 5000) const {
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
      for (const SipMessage& m : Messages()) {
        if (m.received && match(m)) return m;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "sipp " << messages_ << " did not receive the message awaited; it has:\n"
                  << Transcript();
    return {};
  }
  std::vector<SipMessage> AllReceived(const std::function<bool(const SipMessage&)>& match) const {
    std::vector<SipMessage> out;
    for (const SipMessage& m : Messages()) {
      if (m.received && match(m)) out.push_back(m);
    }
    return out;
  }

  // Waits for SIPp to finish its scenario; its exit status (0: the
  // scenario passed), or -1 when it did not end within timeout_ms.
  int Wait(int timeout_ms = 10000) {
    int status = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  std::string Transcript() const {
    std::string out;
    for (const SipMessage& m : Messages()) {
      absl::StrAppend(&out, m.received ? "<- " : "-> ", m.FirstLine(), "\n");
    }
    std::ifstream screen(messages_ + ".out");
    absl::StrAppend(&out, std::string(std::istreambuf_iterator<char>(screen), {}));
    return out;
  }

 private:
  std::string messages_;
  pid_t pid_ = -1;
};

// Sends one packet each way (or only a's, when b is silent) every 20 ms,
// as a phone does at 50 packets a second, while `more` says so (at most
// max_packets), and collects what arrives.
ExchangeResult Paced(Phone& a, Phone& b, const std::function<bool(int)>& more,
                     bool b_sends = true, int max_packets = 250) {
  ExchangeResult r;
  auto collect = [&](int timeout_ms) {
    auto ra = a.Receive(timeout_ms, &r.bad_a);
    auto rb = b.Receive(0, &r.bad_b);
    r.got_a.insert(r.got_a.end(), ra.begin(), ra.end());
    r.got_b.insert(r.got_b.end(), rb.begin(), rb.end());
  };
  for (int i = 0; i < max_packets && more(i); ++i) {
    r.sent_a.push_back(a.SendNext());
    if (b_sends) r.sent_b.push_back(b.SendNext());
    collect(20);
  }
  collect(300);
  return r;
}

ExchangeResult PacedFor(Phone& a, Phone& b, int packets, bool b_sends = true) {
  return Paced(a, b, [packets](int i) { return i < packets; }, b_sends);
}

std::string Sdp(const SipMessage& m) { return m.Body(); }

class SippCallFlowsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    DaemonOptions options;
    options.name = "sipp";
    options.subnet_a = "10.206.1";
    options.subnet_b = "10.206.2";
    options.ipv6_b = "fd00:206:2";
    options.extra_config = "[media]\nport_min = 34000\nport_max = 34999\n";
    KamailioOptions k;
    k.ipv6 = true;
    StartSuite(options, k);
  }
  // sluiced with `options` (and ng on 127.0.0.1:2223, deletes at once)
  // behind Kamailio; skip_reason_ says why not when either is missing.
  static void StartSuite(DaemonOptions options, const KamailioOptions& k) {
    skip_reason_ = Kamailio::Missing();
    if (skip_reason_.empty() && access("/usr/bin/sipp", X_OK) != 0) {
      skip_reason_ = "sipp is not installed (scripts/setup-deps installs sip-tester)";
    }
    if (!skip_reason_.empty()) return;
    daemon_ = new Daemon;
    options.extra_config += "[ng]\nlisten = \"127.0.0.1:2223\"\ndelete_delay_ms = 0\n";
    skip_reason_ = daemon_->Start(options);
    if (!skip_reason_.empty()) return;
    kamailio_ = new Kamailio;
    ASSERT_TRUE(kamailio_->Start(daemon_->topology(), k));
  }
  static void TearDownTestSuite() {
    delete kamailio_;
    kamailio_ = nullptr;
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("sluice-sipp-", getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // The caller's SIPp: INVITE to `user` at the callee's port through the proxy.
  // callee_ip: "127.0.0.1", or "[::1]" for a callee reached over IPv6.
  void StartCaller(Sipp& sipp, const std::string& scenario, const std::string& user,
                   uint16_t callee_port, int talk_ms, std::vector<std::string> keys,
                   const std::string& callee_ip = "127.0.0.1") {
    std::vector<std::string> args = {"-s", user, "-d", std::to_string(talk_ms), "-key",
                                     "callee_host", absl::StrCat(callee_ip, ":", callee_port)};
    args.insert(args.end(), keys.begin(), keys.end());
    args.push_back(absl::StrCat("127.0.0.1:", kamailio_->sip_port()));
    sipp.Start(daemon_->topology(), dir_, scenario, kCallerSip, args);
  }
  void StartCallee(Sipp& sipp, const std::string& scenario, uint16_t port, int pause_ms,
                   std::vector<std::string> keys, const std::string& sip_ip = "127.0.0.1") {
    std::vector<std::string> args = {"-d", std::to_string(pause_ms)};
    args.insert(args.end(), keys.begin(), keys.end());
    sipp.Start(daemon_->topology(), dir_, scenario, port, args, sip_ip);
  }
  static std::vector<std::string> PhoneKeys(const std::string& ip, uint16_t port,
                                            const std::string& crypto) {
    const std::string family = ip.find(':') == std::string::npos ? "4" : "6";
    return {"-key", "phone_ip",   ip,   "-key", "phone_family", family,
            "-key", "phone_port", std::to_string(port), "-key", "crypto", crypto};
  }

  int SessionCount() {
    const json list = control_.Call({{"op", "session.list"}});
    return list.value("total", -1);
  }

  inline static Daemon* daemon_ = nullptr;
  inline static Kamailio* kamailio_ = nullptr;
  inline static std::string skip_reason_;
  ControlClient control_;
  std::string dir_;
};

bool IsInvite(const SipMessage& m) { return m.IsRequest("INVITE"); }
bool Is183(const SipMessage& m) { return m.IsResponse(183); }
bool Is200(const SipMessage& m) { return m.IsResponse(200); }

// INVITE -> 183 with SDP -> early media -> 200 with the same SDP: media
// goes on with no packet lost or rejected, and the caller is given the same
// port and key in the 200 as in the 183.
TEST_F(SippCallFlowsTest, EarlyMediaThen200KeepsPortKeyAndEveryPacket) {
  const std::string ka = NewSdesKey(), kb = NewSdesKey();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 42000, 0xe1);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 42002, 0xe2);
  Sipp callee, caller;
  StartCallee(callee, "uas_early.xml", kCalleeSip, 1500, PhoneKeys(daemon_->phone_ip(1), 42002, kb));
  std::vector<std::string> keys = PhoneKeys(daemon_->phone_ip(0), 42000, ka);
  keys.insert(keys.end(), {"-key", "extra", "Subject: early media"});
  StartCaller(caller, "uac_call.xml", "callee", kCalleeSip, 2000, keys);

  const SipMessage invite = callee.WaitReceived(IsInvite), progress = caller.WaitReceived(Is183);
  const SdpView to_callee = ViewSdp(Sdp(invite)), early = ViewSdp(Sdp(progress));
  ASSERT_EQ(to_callee.crypto.size(), 1u) << invite.text;
  ASSERT_EQ(early.crypto.size(), 1u) << progress.text;
  EXPECT_EQ(to_callee.ip, daemon_->relay_ip(1));
  EXPECT_EQ(early.ip, daemon_->relay_ip(0));
  a.relay = Addr(early.ip, early.port);
  b.relay = Addr(to_callee.ip, to_callee.port);
  Arm(a, ka, early.crypto[0]);
  Arm(b, kb, to_callee.crypto[0]);
  // The 183's answer gave the relay b's address, and with it an ARP for
  // b's MAC that can still be unanswered when the 183 reaches the caller
  // (packets toward b wait in the relay until then).
  ASSERT_TRUE(Reaches(a, b)) << "no packet from a reached b";

  // Early media, on through the 200, until 25 packets after it arrived.
  int after_200 = -1;
  const ExchangeResult r = Paced(a, b, [&](int i) {
    if (after_200 < 0 && !caller.AllReceived(Is200).empty()) after_200 = i;
    return after_200 < 0 || i < after_200 + 25;
  });
  ASSERT_GE(after_200, 10) << "the 200 came before early media flowed";
  EXPECT_TRUE(r.Perfect()) << r.Describe();

  const std::vector<SipMessage> oks = caller.AllReceived(Is200);
  ASSERT_FALSE(oks.empty());
  const SdpView answered = ViewSdp(Sdp(oks[0]));
  EXPECT_EQ(answered.ip, early.ip);
  EXPECT_EQ(answered.port, early.port);
  EXPECT_EQ(answered.crypto, early.crypto);
  EXPECT_EQ(caller.Wait(), 0) << caller.Transcript();
  EXPECT_EQ(callee.Wait(), 0) << callee.Transcript();
  EXPECT_EQ(SessionCount(), 0);
}


bool FromWinner(const SipMessage& m) { return m.text.find("SIPpTag01") != std::string::npos; }

// One INVITE forked to two callees, both with early media; one answers, the
// other is cancelled. The caller hears each branch's early media, then the
// winner; the losing branch's session is gone once its 487 passed.
TEST_F(SippCallFlowsTest, ForkedCallKeepsTheWinnerAndFreesTheLoser) {
  const std::string ka = NewSdesKey(), kb1 = NewSdesKey(), kb2 = NewSdesKey();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 42010, 0xf1);
  Phone b1 = daemon_->MakePhone(1, daemon_->phone_ip(1), 42012, 0xf2);
  Phone b2 = daemon_->MakePhone(1, daemon_->phone_ip(1), 42014, 0xf3);
  Sipp winner, loser, caller;
  StartCallee(loser, "uas_fork_loser.xml", kCallee2Sip, 0,
              PhoneKeys(daemon_->phone_ip(1), 42014, kb2));
  StartCallee(winner, "uas_early.xml", kCalleeSip, 3000,
              PhoneKeys(daemon_->phone_ip(1), 42012, kb1));
  std::vector<std::string> keys = PhoneKeys(daemon_->phone_ip(0), 42010, ka);
  keys.insert(keys.end(),
              {"-key", "extra", absl::StrCat("X-Fork-To: sip:callee2@127.0.0.1:", kCallee2Sip)});
  StartCaller(caller, "uac_call.xml", "callee", kCalleeSip, 2500, keys);

  const SdpView to_b1 = ViewSdp(Sdp(winner.WaitReceived(IsInvite)));
  const SdpView to_b2 = ViewSdp(Sdp(loser.WaitReceived(IsInvite)));
  const SipMessage early1 = caller.WaitReceived([](const SipMessage& m) {
    return Is183(m) && FromWinner(m);
  });
  const SipMessage early2 = caller.WaitReceived([](const SipMessage& m) {
    return Is183(m) && !FromWinner(m);
  });
  const SdpView e1 = ViewSdp(Sdp(early1)), e2 = ViewSdp(Sdp(early2));
  ASSERT_EQ(to_b1.crypto.size(), 1u) << winner.Transcript();
  ASSERT_EQ(to_b2.crypto.size(), 1u) << loser.Transcript();
  ASSERT_EQ(e1.crypto.size(), 1u) << early1.text;
  ASSERT_EQ(e2.crypto.size(), 1u) << early2.text;
  // Each branch has its own legs: its own ports and keys on both sides.
  EXPECT_NE(to_b1.port, to_b2.port);
  EXPECT_NE(e1.port, e2.port);
  EXPECT_NE(e1.crypto, e2.crypto);

  // Early media from the losing branch, then from the winning one.
  a.relay = Addr(e2.ip, e2.port);
  b2.relay = Addr(to_b2.ip, to_b2.port);
  Arm(a, ka, e2.crypto[0]);
  Arm(b2, kb2, to_b2.crypto[0]);
  ASSERT_TRUE(Reaches(a, b2)) << "no packet from a reached b2";  // ARP, as above
  ExchangeResult r = PacedFor(a, b2, 15);
  EXPECT_TRUE(r.Perfect()) << "losing branch's early media: " << r.Describe();
  a.relay = Addr(e1.ip, e1.port);
  b1.relay = Addr(to_b1.ip, to_b1.port);
  Arm(a, ka, e1.crypto[0]);
  Arm(b1, kb1, to_b1.crypto[0]);
  r = PacedFor(a, b1, 15);
  EXPECT_TRUE(r.Perfect()) << "winning branch's early media: " << r.Describe();
  ASSERT_TRUE(caller.AllReceived(Is200).empty()) << "the 200 came before early media was done";

  // The 200: the winner's SDP as in its 183. The loser is cancelled (487).
  const SdpView answered = ViewSdp(Sdp(caller.WaitReceived(Is200)));
  EXPECT_EQ(answered.port, e1.port);
  EXPECT_EQ(answered.crypto, e1.crypto);
  EXPECT_EQ(loser.Wait(), 0) << loser.Transcript();
  // Only the winner's session is left: its leg toward the callee is the
  // port the winner was offered.
  json list;
  for (int i = 0; i < 100; ++i) {
    list = control_.Call({{"op", "session.list"}});
    if (list.value("total", -1) == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(list.value("total", -1), 1) << list.dump();
  EXPECT_EQ(LocalPort(list["sessions"][0]["legs"][1]), to_b1.port) << list.dump();

  r = PacedFor(a, b1, 25);
  EXPECT_TRUE(r.Perfect()) << "after the answer: " << r.Describe();
  EXPECT_EQ(caller.Wait(), 0) << caller.Transcript();
  EXPECT_EQ(winner.Wait(), 0) << winner.Transcript();
  EXPECT_EQ(SessionCount(), 0);
}


// re-INVITEs from the caller: a new key, hold (a=sendonly), inactive
// (a=inactive), unhold. After each one the phones take the keys the SDP
// gave them, and no packet is lost or fails to verify; the session is on
// hold (silent_timeout_s) from the hold to the unhold.
TEST_F(SippCallFlowsTest, ReInvitesReKeyHoldAndUnholdWithoutLoss) {
  const std::string ka = NewSdesKey(), ka2 = NewSdesKey(), kb = NewSdesKey(), kb2 = NewSdesKey();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 42020, 0xd1);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 42022, 0xd2);
  Sipp callee, caller;
  std::vector<std::string> callee_keys = PhoneKeys(daemon_->phone_ip(1), 42022, kb);
  callee_keys.insert(callee_keys.end(), {"-key", "crypto2", kb2});
  StartCallee(callee, "uas_reinvite.xml", kCalleeSip, 0, callee_keys);
  std::vector<std::string> caller_keys = PhoneKeys(daemon_->phone_ip(0), 42020, ka);
  caller_keys.insert(caller_keys.end(), {"-key", "crypto2", ka2});
  StartCaller(caller, "uac_reinvite.xml", "callee", kCalleeSip, 1500, caller_keys);

  SdpView last_a, last_b;
  const std::string a_key[] = {ka, ka2, ka2, ka2, ka2}, b_key[] = {kb, kb2, kb2, kb2, kb2};
  for (int cseq = 1; cseq <= 5; ++cseq) {
    SCOPED_TRACE(absl::StrCat("INVITE with CSeq ", cseq));
    const std::string tag = absl::StrCat("CSeq: ", cseq, " INVITE");
    const SdpView to_b = ViewSdp(Sdp(callee.WaitReceived([&](const SipMessage& m) {
      return IsInvite(m) && m.text.find(tag) != std::string::npos;
    })));
    const SdpView to_a = ViewSdp(Sdp(caller.WaitReceived([&](const SipMessage& m) {
      return Is200(m) && m.text.find(tag) != std::string::npos;
    })));
    ASSERT_EQ(to_b.crypto.size(), 1u) << callee.Transcript();
    ASSERT_EQ(to_a.crypto.size(), 1u) << caller.Transcript();
    if (cseq > 1) {
      // Same ports throughout; the new key of the second one re-keys.
      EXPECT_EQ(to_a.port, last_a.port);
      EXPECT_EQ(to_b.port, last_b.port);
      if (cseq == 2) {
        EXPECT_NE(to_a.crypto, last_a.crypto);
        EXPECT_NE(to_b.crypto, last_b.crypto);
      }
    }
    last_a = to_a;
    last_b = to_b;
    a.relay = Addr(to_a.ip, to_a.port);
    b.relay = Addr(to_b.ip, to_b.port);
    Arm(a, a_key[cseq - 1], to_a.crypto[0]);
    Arm(b, b_key[cseq - 1], to_b.crypto[0]);
    const json list = control_.Call({{"op", "session.list"}});
    ASSERT_EQ(list.value("total", -1), 1) << list.dump();
    EXPECT_EQ(list["sessions"][0]["hold"], cseq == 3 || cseq == 4) << list.dump();
    // On hold (CSeq 3) only the caller sends; inactive (CSeq 4), neither.
    if (cseq == 4) continue;
    const ExchangeResult r = PacedFor(a, b, 20, /*b_sends=*/cseq != 3);
    EXPECT_TRUE(r.Perfect()) << r.Describe();
  }
  EXPECT_EQ(caller.Wait(), 0) << caller.Transcript();
  EXPECT_EQ(callee.Wait(), 0) << callee.Transcript();
  EXPECT_EQ(SessionCount(), 0);
}

// An IPv4 phone calls an IPv6 phone: the callee is reached over SIP on
// [::1], so Kamailio's branch route asks for address-family=IP6 toward it;
// Sluice gives the callee an IPv6 media address on interface b and the
// caller an IPv4 one on a, and carries the media between the families.
TEST_F(SippCallFlowsTest, Ipv4PhoneCallsIpv6Phone) {
  const std::string ka = NewSdesKey(), kb = NewSdesKey();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 42030, 0xc1);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip6(), 42032, 0xc2);
  Sipp callee, caller;
  StartCallee(callee, "uas_early.xml", kCallee6Sip, 200,
              PhoneKeys(daemon_->phone_ip6(), 42032, kb), "::1");
  std::vector<std::string> keys = PhoneKeys(daemon_->phone_ip(0), 42030, ka);
  keys.insert(keys.end(), {"-key", "extra", "Subject: IPv4 to IPv6"});
  StartCaller(caller, "uac_call.xml", "callee", kCallee6Sip, 1500, keys, "[::1]");

  const SipMessage invite = callee.WaitReceived(IsInvite);
  const SdpView to_b = ViewSdp(Sdp(invite));
  const SdpView to_a = ViewSdp(Sdp(caller.WaitReceived(Is200)));
  EXPECT_THAT(Sdp(invite), ::testing::HasSubstr("c=IN IP6 " + daemon_->relay_ip6() + "\n"))
      << invite.text;
  EXPECT_EQ(to_b.ip, daemon_->relay_ip6());
  EXPECT_EQ(to_a.ip, daemon_->relay_ip(0));
  ASSERT_EQ(to_b.crypto.size(), 1u) << callee.Transcript();
  ASSERT_EQ(to_a.crypto.size(), 1u) << caller.Transcript();
  a.relay = Addr(to_a.ip, to_a.port);
  b.relay6 = Addr6(to_b.ip, to_b.port);
  Arm(a, ka, to_a.crypto[0]);
  Arm(b, kb, to_b.crypto[0]);
  const ExchangeResult r = PacedFor(a, b, 25);
  EXPECT_TRUE(r.Perfect()) << r.Describe();
  const json list = control_.Call({{"op", "session.list"}});
  ASSERT_EQ(list.value("total", -1), 1) << list.dump();
  EXPECT_EQ(list["sessions"][0]["legs"][1]["remote"],
            absl::StrCat("[", daemon_->phone_ip6(), "]:42032"))
      << list.dump();
  EXPECT_EQ(caller.Wait(), 0) << caller.Transcript();
  EXPECT_EQ(callee.Wait(), 0) << callee.Transcript();
  EXPECT_EQ(SessionCount(), 0);
}

std::string Header(const SipMessage& m, const std::string& name) {
  const std::string key = "\n" + name + ": ";
  const size_t at = m.text.find(key);
  if (at == std::string::npos) return "";
  const size_t start = at + key.size();
  return m.text.substr(start, m.text.find('\n', start) - start);
}

// The Call-IDs an instance holds, from its ng `list`.
std::vector<std::string> NgCalls(NgClient& ng) {
  std::vector<std::string> out;
  const ng::Value reply = ng.Call(NgCommand("list", ""));
  const ng::Value* calls = reply.Find("calls");
  if (calls == nullptr || !calls->is_list()) return {"(no list in the reply)"};
  for (const ng::Value& c : calls->as_list()) out.emplace_back(c.str());
  return out;
}

// Two sluiced instances behind one Kamailio as an rtpengine set. Instance
// one (namespaces relay, pa, pb; ng on 127.0.0.1:2223 beside Kamailio;
// [ng] max_calls = 1) has weight 1000, instance two (namespaces relay2,
// pa2, pb2; ng on a veth from Kamailio's namespace) weight 1. Kamailio 5.6's
// module picks a new call's node from the Call-ID's byte sum (below 256)
// modulo the weights' sum, so every new call tries instance one first. A
// `load limit` reply, or no reply within rtpengine_tout_ms and its retries,
// makes it send the same offer to the next node of the set it has not
// asked; the node that took the offer gets the call's answer and delete.
class SippLoadLimitTest : public ::testing::Test {
 protected:
  static constexpr char kLink[] = "10.208.9";  // Kamailio .1, instance two's ng .2

  void SetUp() override {
    std::string skip = Kamailio::Missing();
    if (skip.empty() && access("/usr/bin/sipp", X_OK) != 0) skip = "sipp is not installed";
    if (!skip.empty()) GTEST_SKIP() << "skipped: " << skip;
    DaemonOptions one;
    one.name = "loadlimit-one";
    one.subnet_a = "10.208.1";
    one.subnet_b = "10.208.2";
    one.extra_config = "[ng]\nlisten = \"127.0.0.1:2223\"\ndelete_delay_ms = 0\nmax_calls = 1\n";
    skip = one_.Start(one);
    if (!skip.empty()) GTEST_SKIP() << "skipped: " << skip;
    DaemonOptions two;
    two.name = "loadlimit-two";
    two.subnet_a = "10.209.1";
    two.subnet_b = "10.209.2";
    two.ns_suffix = "2";
    // Any address: the link below comes after sluiced started.
    two.extra_config = absl::StrCat("[ng]\nlisten = \"0.0.0.0:2224\"\ndelete_delay_ms = 0\nallowed_sources = [\"",
                                    kLink, ".1\"]\n");
    ASSERT_EQ(two_.Start(two), "");
    // Topologies of one process share the namespace prefix, so one's veth
    // can reach into two's relay namespace; it goes with that namespace.
    ASSERT_TRUE(one_.topology()
                    .AddVeth(one_.relay_ns(), "ng-k", absl::StrCat(kLink, ".1/30"),
                             two_.relay_ns(), "ng-two", absl::StrCat(kLink, ".2/30"))
                    .ok());
    ASSERT_TRUE(ng_one_.Open(one_.topology(), one_.relay_ns(), "127.0.0.1", 2223));
    ASSERT_TRUE(ng_two_.Open(one_.topology(), one_.relay_ns(), absl::StrCat(kLink, ".2"), 2224));
    KamailioOptions k;
    k.rtpengine_sock = absl::StrCat("udp:127.0.0.1:2223=1000 udp:", kLink, ".2:2224=1");
    ASSERT_TRUE(kamailio_.Start(one_.topology(), k));
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("sluice-sipp-", getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // A call between phones of `relay` through Kamailio: SIPp caller `n` (SIP
  // port 5070 + 2n) to callee `n` (5080 + 2n), which answers 200 ms after
  // its 183; the caller hangs up talk_ms after its ACK. Returns once the
  // caller has the 200, with both phones armed with the keys in the SDP;
  // *call_id is the call's Call-ID.
  void Call(int n, Daemon& relay, Phone& a, Phone& b, int talk_ms, Sipp& caller, Sipp& callee,
            std::string* call_id) {
    const std::string ka = NewSdesKey(), kb = NewSdesKey();
    const uint16_t caller_sip = 5070 + 2 * n, callee_sip = 5080 + 2 * n;
    const auto keys = [](const std::string& ip, uint16_t port, const std::string& crypto) {
      return std::vector<std::string>{"-key", "phone_ip", ip, "-key", "phone_family", "4",
                                      "-key", "phone_port", std::to_string(port), "-key", "crypto",
                                      crypto};
    };
    std::vector<std::string> args = {"-d", "200"};
    for (const std::string& k : keys(relay.phone_ip(1), LocalPortOf(b), kb)) args.push_back(k);
    callee.Start(one_.topology(), dir_, "uas_early.xml", callee_sip, args);
    args = {"-s", "callee", "-d", std::to_string(talk_ms), "-key", "callee_host",
            absl::StrCat("127.0.0.1:", callee_sip), "-key", "extra", absl::StrCat("Subject: call ", n)};
    for (const std::string& k : keys(relay.phone_ip(0), LocalPortOf(a), ka)) args.push_back(k);
    args.push_back(absl::StrCat("127.0.0.1:", kamailio_.sip_port()));
    caller.Start(one_.topology(), dir_, "uac_call.xml", caller_sip, args);

    const SipMessage invite = callee.WaitReceived(IsInvite);
    const SdpView to_b = ViewSdp(Sdp(invite));
    const SdpView to_a = ViewSdp(Sdp(caller.WaitReceived(Is200)));
    *call_id = Header(invite, "Call-ID");
    ASSERT_EQ(to_b.crypto.size(), 1u) << callee.Transcript();
    ASSERT_EQ(to_a.crypto.size(), 1u) << caller.Transcript();
    // Its media goes through `relay`, on both sides.
    EXPECT_EQ(to_a.ip, relay.relay_ip(0));
    EXPECT_EQ(to_b.ip, relay.relay_ip(1));
    a.relay = Addr(to_a.ip, to_a.port);
    b.relay = Addr(to_b.ip, to_b.port);
    Arm(a, ka, to_a.crypto[0]);
    Arm(b, kb, to_b.crypto[0]);
  }
  static uint16_t LocalPortOf(const Phone& p) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(p.fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }

  int Sessions(Daemon& d) {
    ControlClient control;
    if (!control.Connect(d.socket_path())) return -1;
    return control.Call({{"op", "session.list"}}).value("total", -1);
  }

  Daemon one_, two_;
  NgClient ng_one_, ng_two_;
  Kamailio kamailio_;
  std::string dir_;
};

// Instance one holds a call and is full: Kamailio's offer for a second call
// gets `load limit` from it and goes to instance two, which carries that
// call's media while instance one carries the first's. Both calls end with
// BYE and leave nothing behind on either instance.
TEST_F(SippLoadLimitTest, FullInstanceSendsTheNextCallToTheOther) {
  Phone a1 = one_.MakePhone(0, one_.phone_ip(0), 42100, 0x1a);
  Phone b1 = one_.MakePhone(1, one_.phone_ip(1), 42102, 0x1b);
  Phone a2 = two_.MakePhone(0, two_.phone_ip(0), 42104, 0x2a);
  Phone b2 = two_.MakePhone(1, two_.phone_ip(1), 42106, 0x2b);
  Sipp caller1, callee1, caller2, callee2;
  std::string id1, id2;
  ASSERT_NO_FATAL_FAILURE(Call(0, one_, a1, b1, 8000, caller1, callee1, &id1));
  ExchangeResult r = PacedFor(a1, b1, 25);
  EXPECT_TRUE(r.Perfect()) << "call 1 on instance one: " << r.Describe();
  EXPECT_THAT(NgCalls(ng_one_), ::testing::ElementsAre(id1));
  EXPECT_THAT(NgCalls(ng_two_), ::testing::IsEmpty());
  EXPECT_THAT(kamailio_.Log(), ::testing::Not(::testing::HasSubstr("load limit")));

  ASSERT_NO_FATAL_FAILURE(Call(1, two_, a2, b2, 3000, caller2, callee2, &id2));
  EXPECT_NE(id1, id2);
  EXPECT_THAT(kamailio_.Log(),
              ::testing::HasSubstr("proxy udp:127.0.0.1:2223 has reached its load limit"));
  r = PacedFor(a2, b2, 25);
  EXPECT_TRUE(r.Perfect()) << "call 2 on instance two: " << r.Describe();
  r = PacedFor(a1, b1, 10);
  EXPECT_TRUE(r.Perfect()) << "call 1 beside call 2: " << r.Describe();
  EXPECT_THAT(NgCalls(ng_one_), ::testing::ElementsAre(id1));
  EXPECT_THAT(NgCalls(ng_two_), ::testing::ElementsAre(id2));

  EXPECT_EQ(caller2.Wait(), 0) << caller2.Transcript();
  EXPECT_EQ(callee2.Wait(), 0) << callee2.Transcript();
  EXPECT_EQ(caller1.Wait(), 0) << caller1.Transcript();
  EXPECT_EQ(callee1.Wait(), 0) << callee1.Transcript();
  EXPECT_THAT(NgCalls(ng_one_), ::testing::IsEmpty());
  EXPECT_THAT(NgCalls(ng_two_), ::testing::IsEmpty());
  EXPECT_EQ(Sessions(one_), 0);
  EXPECT_EQ(Sessions(two_), 0);
}

// Instance one stopped: it does not answer the offer, so Kamailio marks it
// disabled and places the call on instance two, which carries its media.
TEST_F(SippLoadLimitTest, StoppedInstanceSendsTheCallToTheOther) {
  one_.Stop();
  Phone a = two_.MakePhone(0, two_.phone_ip(0), 42110, 0x3a);
  Phone b = two_.MakePhone(1, two_.phone_ip(1), 42112, 0x3b);
  Sipp caller, callee;
  std::string id;
  ASSERT_NO_FATAL_FAILURE(Call(0, two_, a, b, 1500, caller, callee, &id));
  // The offer went to instance one first (its weight): refused (nothing
  // listens on its port) or unanswered, Kamailio logs it as an error.
  EXPECT_THAT(kamailio_.Log(), ::testing::HasSubstr("RTPEngine <udp:127.0.0.1:2223>"));
  const ExchangeResult r = PacedFor(a, b, 25);
  EXPECT_TRUE(r.Perfect()) << r.Describe();
  EXPECT_THAT(NgCalls(ng_two_), ::testing::ElementsAre(id));
  EXPECT_EQ(caller.Wait(), 0) << caller.Transcript();
  EXPECT_EQ(callee.Wait(), 0) << callee.Transcript();
  EXPECT_THAT(NgCalls(ng_two_), ::testing::IsEmpty());
  EXPECT_EQ(Sessions(two_), 0);
}

// A call whose BYE is lost: the caller's phone goes away after the ACK, so
// Kamailio never sends a delete. Sluice ends the call after [media]
// timeout_s (5 s here: the clock starts at the answer, and the test's
// media starts only once it has read the 200 from SIPp's file) without media, wipes its keys and frees its ports:
// the port range holds one call, and the next call through Kamailio gets
// the very same ports and carries media.
class SippLostByeTest : public SippCallFlowsTest {
 protected:
  static void SetUpTestSuite() {
    DaemonOptions options;
    options.name = "sipp-bye";
    options.subnet_a = "10.207.1";
    options.subnet_b = "10.207.2";
    options.extra_config =
        "[media]\nport_min = 34500\nport_max = 34501\nport_reuse_delay_s = 0\ntimeout_s = 5\n";
    StartSuite(options, {});
  }

  // A call from a to b through Kamailio (caller's scenario `uac`, callee's
  // `uas`, `talk_ms` after the ACK); both phones armed with the keys of the
  // SDP once the caller has the 200; the relay's ports for a and b.
  std::pair<uint16_t, uint16_t> Call(const std::string& uac, const std::string& uas, Phone& a,
                                     Phone& b, uint16_t a_port, uint16_t b_port, Sipp& caller,
                                     Sipp& callee) {
    const std::string ka = NewSdesKey(), kb = NewSdesKey();
    StartCallee(callee, uas, kCalleeSip, 200, PhoneKeys(daemon_->phone_ip(1), b_port, kb));
    std::vector<std::string> keys = PhoneKeys(daemon_->phone_ip(0), a_port, ka);
    keys.insert(keys.end(), {"-key", "extra", "Subject: call"});
    StartCaller(caller, uac, "callee", kCalleeSip, 1000, keys);
    const SdpView to_b = ViewSdp(Sdp(callee.WaitReceived(IsInvite)));
    const SdpView to_a = ViewSdp(Sdp(caller.WaitReceived(Is200)));
    EXPECT_EQ(to_b.crypto.size(), 1u) << callee.Transcript();
    EXPECT_EQ(to_a.crypto.size(), 1u) << caller.Transcript();
    if (to_a.crypto.empty() || to_b.crypto.empty()) return {0, 0};
    a.relay = Addr(to_a.ip, to_a.port);
    b.relay = Addr(to_b.ip, to_b.port);
    Arm(a, ka, to_a.crypto[0]);
    Arm(b, kb, to_b.crypto[0]);
    return {to_a.port, to_b.port};
  }
};

TEST_F(SippLostByeTest, CallTimesOutAndItsPortsServeTheNextCall) {
  NgClient ng;
  ASSERT_TRUE(ng.Open(daemon_->topology(), "relay", "127.0.0.1", 2223));
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 42040, 0xb1);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 42042, 0xb2);
  Sipp caller, callee;
  const auto ports = Call("uac_lost_bye.xml", "uas_lost_bye.xml", a, b, 42040, 42042, caller, callee);
  ASSERT_NE(ports.first, 0);
  ExchangeResult r = PacedFor(a, b, 25);
  // The last packet went 300 ms ago (PacedFor's last wait).
  const auto quiet = std::chrono::steady_clock::now() - std::chrono::milliseconds(300);
  EXPECT_TRUE(r.Perfect()) << r.Describe();
  EXPECT_EQ(caller.Wait(), 0) << caller.Transcript();
  EXPECT_EQ(callee.Wait(), 0) << callee.Transcript();
  ASSERT_EQ(NgCalls(ng).size(), 1u);

  // No BYE, no media: gone after timeout_s, and not before.
  while (SessionCount() == 1 && std::chrono::steady_clock::now() - quiet < std::chrono::seconds(15)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const auto took = std::chrono::steady_clock::now() - quiet;
  EXPECT_EQ(SessionCount(), 0);
  EXPECT_GE(took, std::chrono::milliseconds(4900));  // 5 s after the last packet
  EXPECT_LT(took, std::chrono::seconds(10));
  const json stats = control_.Call({{"op", "stats"}});
  EXPECT_EQ(stats["sessions_timed_out"]["timeout"], 1) << stats.dump();
  EXPECT_THAT(NgCalls(ng), ::testing::IsEmpty());

  // The range has one port per interface: the next call can only have the
  // same two, and it carries media, then ends with its BYE.
  Phone a2 = daemon_->MakePhone(0, daemon_->phone_ip(0), 42044, 0xb3);
  Phone b2 = daemon_->MakePhone(1, daemon_->phone_ip(1), 42046, 0xb4);
  Sipp caller2, callee2;
  EXPECT_EQ(Call("uac_call.xml", "uas_early.xml", a2, b2, 42044, 42046, caller2, callee2), ports);
  r = PacedFor(a2, b2, 25);
  EXPECT_TRUE(r.Perfect()) << r.Describe();
  EXPECT_EQ(caller2.Wait(), 0) << caller2.Transcript();
  EXPECT_EQ(callee2.Wait(), 0) << callee2.Transcript();
  EXPECT_EQ(SessionCount(), 0);
}

}  // namespace
}  // namespace sluice::testing
