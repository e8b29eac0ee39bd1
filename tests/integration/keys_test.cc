// Keys at rest and in memory, end to end with the real sluiced: a session's
// master keys appear nowhere in the daemon's memory, even while it is in use
// (only the session keys derived from them do), and a deleted session's
// session keys are gone too (scanned through /proc/<pid>/mem), core dumps are refused unless
// configured, and [security] user drops every privilege once the ports are
// up while media keeps flowing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "harness.h"
#include "sluice/crypto/session_key.h"
#include "sluice/srtp/master_key.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;

// A fresh random AES_CM_128_HMAC_SHA1_80 key and salt as an SDES value, its
// 16 master key bytes, and the SRTP session encryption key derived from it
// (RFC 3711 §4.3), which sluiced holds while the key is in use.
struct TestKey {
  std::string sdes;
  std::string key;          // raw bytes
  std::string session_key;  // raw bytes
};

std::string SessionKeyOf(const srtp::MasterKey& key) {
  uint8_t out[16];
  crypto::DeriveKey(key.info(), key.key_bytes(), key.salt_bytes(),
                    crypto::KeyLabel::kSrtpEncryption, out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

TestKey KeysOf(const std::string& sdes) {
  srtp::MasterKey key;
  ParseKey(sdes, &key);
  TestKey k;
  k.sdes = sdes;
  k.key = std::string(reinterpret_cast<const char*>(key.key.data()), 16);
  k.session_key = SessionKeyOf(key);
  return k;
}

TestKey RandomKey() {
  std::random_device rd;
  std::string key_salt(30, '\0');
  for (char& c : key_salt) c = static_cast<char>(rd());
  return KeysOf("AES_CM_128_HMAC_SHA1_80 inline:" + absl::Base64Escape(key_salt));
}

// How many times `needle` occurs in the readable memory of process `pid`.
size_t CountInMemory(pid_t pid, const std::string& needle) {
  std::ifstream maps(absl::StrCat("/proc/", pid, "/maps"));
  const int fd = open(absl::StrCat("/proc/", pid, "/mem").c_str(), O_RDONLY);
  if (fd < 0 || !maps) {
    ADD_FAILURE() << "cannot read the memory of process " << pid << ": " << std::strerror(errno);
    if (fd >= 0) close(fd);
    return 0;
  }
  size_t found = 0;
  std::vector<char> buf(size_t{1} << 20);
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    if (perms.empty() || perms[0] != 'r' || line.find("[vvar]") != std::string::npos ||
        line.find("[vsyscall]") != std::string::npos) {
      continue;
    }
    const uint64_t start = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    const uint64_t end = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
    // Chunks overlap by the needle's length less one, so nothing is missed
    // at a boundary and nothing is counted twice.
    for (uint64_t at = start; at < end;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - at));
      const ssize_t got = pread(fd, buf.data(), want, static_cast<off_t>(at));
      if (got <= 0) break;  // a region the kernel will not show (device memory)
      const char* p = buf.data();
      const char* last = buf.data() + got;
      while ((p = std::search(p, last, needle.begin(), needle.end())) != last) {
        ++found;
        ++p;
      }
      if (static_cast<size_t>(got) < needle.size() || at + static_cast<uint64_t>(got) >= end) break;
      at += static_cast<uint64_t>(got) - (needle.size() - 1);
    }
  }
  close(fd);
  return found;
}

// The Uid: or Gid: line of /proc/<pid>/status, tabs and all.
std::string StatusLine(pid_t pid, const std::string& field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return line;
  }
  return "";
}

// Who owns /proc/<pid>/mem: the process's user while it is dumpable, root
// when it has refused core dumps (proc(5), PR_SET_DUMPABLE).
uid_t MemOwner(pid_t pid) {
  struct stat st = {};
  if (stat(absl::StrCat("/proc/", pid, "/mem").c_str(), &st) != 0) return static_cast<uid_t>(-1);
  return st.st_uid;
}

// One call, phone A on leg a and phone B on leg b, both SRTP.
struct Call {
  json reply;
  Phone a, b;
};

Call MakeCall(Daemon& daemon, ControlClient& control, const std::string& name,
              const TestKey& key_a, const TestKey& key_b, uint16_t port_a, uint16_t port_b) {
  Call c;
  c.reply = daemon.Create(
      control, name,
      SrtpLeg("a", "a", absl::StrCat(daemon.phone_ip(0), ":", port_a), key_a.sdes,
              "AES_CM_128_HMAC_SHA1_80"),
      SrtpLeg("b", "b", absl::StrCat(daemon.phone_ip(1), ":", port_b), key_b.sdes,
              "AES_CM_128_HMAC_SHA1_80"));
  c.a = daemon.MakePhone(0, daemon.phone_ip(0), port_a, 0xa11ce);
  c.b = daemon.MakePhone(1, daemon.phone_ip(1), port_b, 0xb0b);
  c.a.relay = Addr(daemon.relay_ip(0), LocalPort(c.reply["legs"][0]));
  c.b.relay = Addr(daemon.relay_ip(1), LocalPort(c.reply["legs"][1]));
  Arm(c.a, key_a.sdes, c.reply["legs"][0]["tx"]["crypto"]);
  Arm(c.b, key_b.sdes, c.reply["legs"][1]["tx"]["crypto"]);
  return c;
}

TEST(KeysTest, MasterKeysAreNotKeptAndSessionKeysLeaveWithTheSession) {
  Daemon daemon;
  const std::string skip =
      daemon.Start({"keys", "10.207.1", "10.207.2", "[media]\nport_min = 31000\nport_max = 31099\n"});
  if (!skip.empty()) GTEST_SKIP() << "skipped: " << skip;
  ASSERT_TRUE(daemon.running());
  ControlClient control;
  ASSERT_TRUE(control.Connect(daemon.socket_path()));

  const TestKey key_a = RandomKey(), key_b = RandomKey();
  Call call = MakeCall(daemon, control, "secret-call", key_a, key_b, 41000, 41002);
  ASSERT_EQ(call.reply["ok"], true) << call.reply.dump();
  // The keys Sluice generated for what it sends: in the reply, once.
  const TestKey sent_a = KeysOf(call.reply["legs"][0]["tx"]["crypto"]);
  const TestKey sent_b = KeysOf(call.reply["legs"][1]["tx"]["crypto"]);
  ASSERT_TRUE(Flows(call.a, call.b, 20));

  // While the call lives its session keys are in memory (the scan finds
  // them), its master keys are not.
  const std::vector<std::pair<std::string, const TestKey*>> keys = {
      {"leg a's receive key", &key_a}, {"leg b's receive key", &key_b},
      {"leg a's generated send key", &sent_a}, {"leg b's generated send key", &sent_b}};
  for (const auto& [what, key] : keys) {
    EXPECT_GE(CountInMemory(daemon.pid(), key->session_key), 1u)
        << what << ": its session key not found while in use";
    EXPECT_EQ(CountInMemory(daemon.pid(), key->key), 0u)
        << what << ": the master key is kept while in use";
  }

  json deleted = control.Call({{"op", "session.delete"}, {"session", "secret-call"}});
  ASSERT_EQ(deleted["ok"], true) << deleted.dump();
  // Contexts a worker was still reading are freed after an RCU grace period,
  // on the control thread's next ticks.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(daemon.Alive());
  for (const auto& [what, key] : keys) {
    EXPECT_EQ(CountInMemory(daemon.pid(), key->key), 0u) << what << " still in sluiced's memory";
    EXPECT_EQ(CountInMemory(daemon.pid(), key->session_key), 0u)
        << what << ": its session key still in sluiced's memory";
  }
  // Nor does the SDES text the controller sent.
  const std::string b64 = key_a.sdes.substr(key_a.sdes.find(':') + 1);
  EXPECT_EQ(CountInMemory(daemon.pid(), b64), 0u) << "leg a's SDES value still in memory";
}

TEST(KeysTest, RefusesCoreDumpsAndDropsPrivilegesOnceUp) {
  Daemon daemon;
  const std::string skip = daemon.Start(
      {"keysuser", "10.207.3", "10.207.4",
       "[media]\nport_min = 31000\nport_max = 31099\n"
       "[limits]\nmax_sessions = 100\n"  // key memory within the lock limit once not root
       "[security]\nuser = \"nobody\"\ngroup = \"nogroup\"\n"});
  if (!skip.empty()) GTEST_SKIP() << "skipped: " << skip;
  ASSERT_TRUE(daemon.running());
  EXPECT_EQ(StatusLine(daemon.pid(), "Uid"), "Uid:\t65534\t65534\t65534\t65534");
  EXPECT_EQ(StatusLine(daemon.pid(), "Gid"), "Gid:\t65534\t65534\t65534\t65534");
  EXPECT_EQ(absl::StripTrailingAsciiWhitespace(StatusLine(daemon.pid(), "Groups")), "Groups:")
      << "supplementary groups kept";
  EXPECT_EQ(MemOwner(daemon.pid()), 0u) << "sluiced is dumpable";
  // It still relays and answers its control socket.
  ControlClient control;
  ASSERT_TRUE(control.Connect(daemon.socket_path()));
  Call call = MakeCall(daemon, control, "after-drop", RandomKey(), RandomKey(), 41010, 41012);
  ASSERT_EQ(call.reply["ok"], true) << call.reply.dump();
  EXPECT_TRUE(Flows(call.a, call.b, 20));
}

TEST(KeysTest, CoreDumpsOnlyWhenConfigured) {
  Daemon daemon;
  const std::string skip = daemon.Start(
      {"keysdump", "10.207.5", "10.207.6",
       "[limits]\nmax_sessions = 100\n"  // key memory within the lock limit once not root
       "[security]\ncore_dumps = true\nuser = \"nobody\"\ngroup = \"nogroup\"\n"});
  if (!skip.empty()) GTEST_SKIP() << "skipped: " << skip;
  ASSERT_TRUE(daemon.running());
  EXPECT_EQ(MemOwner(daemon.pid()), 65534u) << "core_dumps = true should leave sluiced dumpable";
}

}  // namespace
}  // namespace sluice::testing
