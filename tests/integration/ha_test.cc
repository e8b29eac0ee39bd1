// [ha] end to end: a real sluiced replicating to a real redis-server (on a
// Unix socket in a temporary directory), killed with SIGKILL and started
// again with the same configuration while libsrtp2 phones keep calling;
// Redis stopped mid-call; damaged records, an unknown interface, a wrong or
// exposed KEK. docs/ha.md says what each proves.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "harness.h"
#include "ng_peer.h"
#include "redis_server.h"
#include "sluice/crypto/session_key.h"
#include "sluice/ha/sealer.h"
#include "sluice/ng/handler.h"
#include "sluice/srtp/master_key.h"
#include "webrtc_call.h"

namespace sluice::testing {
namespace {

using json = nlohmann::json;
constexpr char kPrefix[] = "sluice:hatest:s:";
constexpr uint16_t kNgPort = 2231;

// Every key under Redis and its value(s), read through hiredis.
std::map<std::string, std::string> Dump(const std::string& socket) {
  std::map<std::string, std::string> out;
  redisContext* c = redisConnectUnix(socket.c_str());
  if (c == nullptr || c->err != 0) {
    if (c) redisFree(c);
    return out;
  }
  std::string cursor = "0";
  do {
    auto* r = static_cast<redisReply*>(redisCommand(c, "SCAN %s COUNT 1000", cursor.c_str()));
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2) break;
    cursor.assign(r->element[0]->str, r->element[0]->len);
    for (size_t i = 0; i < r->element[1]->elements; ++i) {
      const std::string key(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
      auto* v = static_cast<redisReply*>(redisCommand(c, "HGETALL %b", key.data(), key.size()));
      if (v != nullptr && v->type == REDIS_REPLY_ARRAY) {
        for (size_t j = 0; j < v->elements; ++j) {
          out[key].append(v->element[j]->str, v->element[j]->len).append("\n");
        }
      } else {
        if (v) freeReplyObject(v);
        v = static_cast<redisReply*>(redisCommand(c, "GET %b", key.data(), key.size()));
        if (v != nullptr && v->type == REDIS_REPLY_STRING) out[key].assign(v->str, v->len);
      }
      if (v) freeReplyObject(v);
    }
    freeReplyObject(r);
  } while (cursor != "0");
  redisFree(c);
  return out;
}

// Every byte string the keys of `sdes` are made of, and what they derive:
// the master key and salt (raw, hex, base64) and each session key and salt
// (RFC 3711 §4.3).
std::vector<std::pair<std::string, std::string>> Secrets(const std::string& sdes) {
  srtp::MasterKey key;
  ParseKey(sdes, &key);
  const auto bytes = [](std::span<const uint8_t> s) {
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  };
  std::vector<std::pair<std::string, std::string>> out;
  const std::string master = bytes(key.key_bytes()), salt = bytes(key.salt_bytes());
  out.emplace_back("master key", master);
  out.emplace_back("master salt", salt);
  out.emplace_back("master key (base64)", absl::Base64Escape(master + salt).substr(0, 20));
  out.emplace_back("master key (hex)", absl::BytesToHexString(master));
  out.emplace_back("master key (HEX)", absl::AsciiStrToUpper(absl::BytesToHexString(master)));
  const crypto::SuiteInfo& info = key.info();
  const std::pair<crypto::KeyLabel, size_t> labels[] = {
      {crypto::KeyLabel::kSrtpEncryption, info.key_len},
      {crypto::KeyLabel::kSrtpAuthentication, info.auth_key_len},
      {crypto::KeyLabel::kSrtpSalt, info.salt_len},
      {crypto::KeyLabel::kSrtcpEncryption, info.key_len},
      {crypto::KeyLabel::kSrtcpAuthentication, info.auth_key_len},
      {crypto::KeyLabel::kSrtcpSalt, info.salt_len}};
  for (const auto& [label, n] : labels) {
    if (n == 0) continue;
    std::vector<uint8_t> derived(n);
    crypto::DeriveKey(info, key.key_bytes(), key.salt_bytes(), label, derived);
    out.emplace_back(absl::StrCat("session key, label ", static_cast<int>(label)), bytes(derived));
  }
  return out;
}

// The SBC's side of the ng calls (ng_peer.h), on the daemon namespace's
// loopback, and their phones' keys.
struct NgSide {
  explicit NgSide(Daemon& d) : daemon(d) {}
  bool Open() {
    client = std::make_unique<NgClient>();
    return client->Open(daemon.topology(), "relay", "127.0.0.1", kNgPort);
  }
  // Offer from a with key ka, answer from b with kb (a's port + 2): the
  // phones armed with the keys the replies carry; the SDP each side got.
  std::pair<SdpView, SdpView> OfferAnswer(const std::string& call, Phone& a, Phone& b,
                                          const std::string& ka, const std::string& kb,
                                          uint16_t port) {
    ng::Value reply = client->Call(
        NgOffer(call, "tag-a", PhoneSdp(daemon.phone_ip(0), port, "RTP/SAVP", {ka})));
    EXPECT_EQ(Result(reply), "ok") << ErrorReason(reply);
    const SdpView to_b = ViewSdp(reply);
    reply = client->Call(NgAnswer(call, "tag-a", "tag-b",
                                  PhoneSdp(daemon.phone_ip(1), port + 2, "RTP/SAVP", {kb})));
    EXPECT_EQ(Result(reply), "ok") << ErrorReason(reply);
    const SdpView to_a = ViewSdp(reply);
    if (to_a.crypto.empty() || to_b.crypto.empty()) return {to_a, to_b};
    a.relay = Addr(to_a.ip, to_a.port);
    b.relay = Addr(to_b.ip, to_b.port);
    Arm(a, ka, to_a.crypto[0]);
    Arm(b, kb, to_b.crypto[0]);
    keys.insert(keys.end(), {ka, kb, to_a.crypto[0], to_b.crypto[0]});
    return {to_a, to_b};
  }
  // Packets each way until one gets through both ways (the restart's ARP),
  // bounded; what arrives must verify.
  static bool Through(Phone& a, Phone& b, int* bad) {
    bool got[2] = {false, false};
    for (int i = 0; i < 500 && !(got[0] && got[1]); ++i) {
      a.SendNext();
      b.SendNext();
      got[0] = !b.Receive(10, bad).empty() || got[0];
      got[1] = !a.Receive(0, bad).empty() || got[1];
    }
    a.Receive(100, bad);
    b.Receive(100, bad);
    return got[0] && got[1];
  }

  Daemon& daemon;
  std::unique_ptr<NgClient> client;
  std::vector<std::string> keys;  // every SDES key of the calls
};

class HaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!RedisServer::Installed()) {
      skip_reason_ = "redis-server is not installed (scripts/setup-deps)";
      return;
    }
    redis_ = new RedisServer();
    if (!redis_->Start()) {
      skip_reason_ = "redis-server did not start";
      return;
    }
    kek_ = redis_->dir() + "/kek";
    WriteKek(RandomKek(), 0600);
    daemon_ = new Daemon();
    DaemonOptions options;
    options.name = "ha";
    options.subnet_a = "10.211.1";
    options.subnet_b = "10.211.2";
    options.extra_config = absl::StrCat(
        "[media]\nport_min = 31000\nport_max = 31999\n[ng]\nlisten = \"127.0.0.1:", kNgPort,
        "\"\ndelete_delay_ms = 0\nallowed_sources = [\"127.0.0.1\"]\n"
        "[ha]\nredis = \"unix:", redis_->socket(), "\"\ninstance = \"hatest\"\nkek_file = \"",
        kek_, "\"\nprevious_kek_file = \"", kek_, ".previous\"\ncheckpoint_ms = 100\n");
    skip_reason_ = daemon_->Start(options);
  }

  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
    delete redis_;
    redis_ = nullptr;
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "skipped: " << skip_reason_;
    ASSERT_TRUE(daemon_->running()) << "sluiced is not running";
    ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  }

  static std::string RandomKek() {
    std::string k(32, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(k.data()), 32);
    return k;
  }
  static void WriteKek(const std::string& bytes, mode_t mode) {
    std::ofstream(kek_, std::ios::binary | std::ios::trunc) << bytes;
    chmod(kek_.c_str(), mode);
  }
  static std::string ReadKek() {
    std::ifstream in(kek_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  json Stats() { return control_.Call({{"op", "stats"}}); }
  // Waits (at most 10 s) until Redis has every change.
  bool WaitSynced() {
    for (int i = 0; i < 500; ++i) {
      const json s = Stats();
      if (s.contains("ha") && s["ha"]["connected"] == true && s["ha"]["backlog"] == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // A call with SRTP on both legs, its phones armed; seq: the phones' next
  // sequence numbers.
  struct Call {
    Phone a, b;
    std::vector<std::string> keys;  // every master key of the call (SDES)
  };
  Call MakeCall(const std::string& name, uint16_t phone_port, uint32_t ssrc, uint16_t seq) {
    Call call;
    const std::string key_a = FreshKey("AES_CM_128_HMAC_SHA1_80");
    const std::string key_b = FreshKey("AEAD_AES_256_GCM");
    const std::string remote_a = absl::StrCat(daemon_->phone_ip(0), ":", phone_port);
    const std::string remote_b = absl::StrCat(daemon_->phone_ip(1), ":", phone_port + 2);
    json r = daemon_->Create(control_, name,
                             SrtpLeg("a", "a", remote_a, key_a, "AES_CM_128_HMAC_SHA1_80"),
                             SrtpLeg("b", "b", remote_b, key_b, "AEAD_AES_256_GCM"));
    EXPECT_TRUE(r.value("ok", false)) << r.dump();
    if (!r.value("ok", false)) return call;
    call.a = daemon_->MakePhone(0, daemon_->phone_ip(0), phone_port, ssrc);
    call.b = daemon_->MakePhone(1, daemon_->phone_ip(1), phone_port + 2, ssrc + 1);
    call.a.relay = Addr(daemon_->relay_ip(0), LocalPort(r["legs"][0]));
    call.b.relay = Addr(daemon_->relay_ip(1), LocalPort(r["legs"][1]));
    const std::string tx_a = r["legs"][0]["tx"]["crypto"], tx_b = r["legs"][1]["tx"]["crypto"];
    Arm(call.a, key_a, tx_a);
    Arm(call.b, key_b, tx_b);
    call.a.seq = seq;
    call.b.seq = static_cast<uint16_t>(seq + 50);
    call.keys = {key_a, key_b, tx_a, tx_b};
    return call;
  }

  // The relay's failures on a session's legs: auth failures and replays.
  uint64_t Failures(const std::string& session) {
    const json g = control_.Call({{"op", "session.get"}, {"session", session}});
    uint64_t n = 0;
    for (const json& leg : g["legs"]) {
      n += leg["counters"]["auth_failures"].get<uint64_t>() +
           leg["counters"]["replay_drops"].get<uint64_t>();
    }
    return n;
  }

  inline static RedisServer* redis_ = nullptr;
  inline static Daemon* daemon_ = nullptr;
  inline static std::string kek_;
  inline static std::string skip_reason_;
  inline static std::vector<std::string> all_keys_;  // every call's master keys
  ControlClient control_;
};

// (1) and its ROC-wrap variant: SIGKILL mid-call, the same configuration
// started again; every packet after the gap verifies at the phones and at
// the relay, in order. In "wrap" the sequence numbers wrap (ROC 0 -> 1)
// while sluiced is down.
TEST_F(HaTest, CallsSurviveSigkillAndRestart) {
  Call plain = MakeCall("survivor", 42000, 0x5a000001, 1000);
  Call wrap = MakeCall("wrap", 42010, 0x5a000011, 65350);
  for (const std::string& k : plain.keys) all_keys_.push_back(k);
  for (const std::string& k : wrap.keys) all_keys_.push_back(k);
  EXPECT_TRUE(Flows(plain.a, plain.b, 100));
  EXPECT_TRUE(Flows(wrap.a, wrap.b, 100));
  ASSERT_TRUE(WaitSynced());
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a checkpoint or two more

  daemon_->Kill();
  const auto killed = std::chrono::steady_clock::now();
  // The phones go on talking into the void: 100 packets each way (the
  // wrap call's sequence numbers pass 65535 here).
  for (Call* c : {&plain, &wrap}) {
    for (int i = 0; i < 100; ++i) {
      c->a.SendNext();
      c->b.SendNext();
    }
  }
  EXPECT_LT(wrap.a.seq, 1000) << "the wrap call's sequence numbers wrapped during the outage";
  ASSERT_TRUE(daemon_->Restart()) << daemon_->Log();
  const double restart_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed).count();
  std::printf("sluiced killed and restarted, answering again after %.0f ms\n", restart_ms);
  ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  const json stats = Stats();
  EXPECT_EQ(stats["ha"]["restored"], 2) << stats.dump();
  EXPECT_EQ(stats["sessions"], 2);
  for (Call* c : {&plain, &wrap}) {  // what the void left in the queues
    c->a.Receive(0);
    c->b.Receive(0);
  }
  // The gap: from the kill until a packet gets through each way again (the
  // restart, then ARP for the restored peers). What arrives verifies.
  bool through[2] = {false, false};
  int bad = 0;
  for (int i = 0; i < 500 && !(through[0] && through[1]); ++i) {
    plain.a.SendNext();
    plain.b.SendNext();
    through[0] = !plain.b.Receive(10, &bad).empty() || through[0];
    through[1] = !plain.a.Receive(0, &bad).empty() || through[1];
  }
  ASSERT_TRUE(through[0] && through[1]) << "no packet through after the restart";
  EXPECT_EQ(bad, 0);
  std::printf("media gap (SIGKILL to packets through both ways): %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed)
                  .count());
  plain.a.Receive(100);
  plain.b.Receive(100);
  const ExchangeResult p = Exchange(plain.a, plain.b, 100);
  EXPECT_TRUE(p.Perfect()) << p.Describe();
  EXPECT_EQ(p.bad_a + p.bad_b, 0);
  const ExchangeResult w = Exchange(wrap.a, wrap.b, 100);
  EXPECT_TRUE(w.Perfect()) << w.Describe();
  EXPECT_EQ(w.bad_a + w.bad_b, 0);
  EXPECT_EQ(Failures("survivor"), 0u);
  EXPECT_EQ(Failures("wrap"), 0u);
  if (HasFailure()) std::printf("%s\n", daemon_->Log().c_str());
}

// (3) No byte string of any key of the calls (master keys, salts, session
// keys; raw, hex or base64) is anywhere in Redis.
TEST_F(HaTest, RedisHoldsNoKeyInClear) {
  Call extra = MakeCall("scanned", 42020, 0x5a000021, 7);
  for (const std::string& k : extra.keys) all_keys_.push_back(k);
  EXPECT_TRUE(Flows(extra.a, extra.b, 20));
  ASSERT_TRUE(WaitSynced());
  const std::map<std::string, std::string> dump = Dump(redis_->socket());
  ASSERT_GE(dump.size(), 3u);
  size_t checked = 0;
  for (const std::string& sdes : all_keys_) {
    for (const auto& [what, secret] : Secrets(sdes)) {
      ++checked;
      for (const auto& [key, value] : dump) {
        EXPECT_EQ(value.find(secret), std::string::npos) << what << " in " << key;
        EXPECT_EQ(key.find(secret), std::string::npos) << what << " in a key name";
      }
    }
  }
  EXPECT_GE(checked, 3u * 4u * 8u);
  for (const auto& [key, value] : dump) EXPECT_EQ(value.find("inline:"), std::string::npos);
}

// (4) Redis stopped mid-call: the calls go on, a new call is set up, stats
// show the lag; a Redis back (empty) is given every session.
TEST_F(HaTest, RedisStoppedMidCallThenCaughtUp) {
  Call c = MakeCall("outage", 42030, 0x5a000031, 300);
  ASSERT_TRUE(WaitSynced());
  redis_->Stop();
  EXPECT_TRUE(Flows(c.a, c.b, 100));
  Call d = MakeCall("during-outage", 42040, 0x5a000041, 400);
  EXPECT_TRUE(Flows(d.a, d.b, 50));
  json s = Stats();
  EXPECT_EQ(s["ha"]["connected"], false) << s.dump();
  EXPECT_GE(s["ha"]["backlog"].get<uint64_t>(), 1u) << s.dump();
  EXPECT_GT(s["ha"]["lag_ms"].get<uint64_t>(), 0u) << s.dump();
  ASSERT_TRUE(redis_->Start());
  ASSERT_TRUE(WaitSynced()) << Stats().dump();
  const std::map<std::string, std::string> dump = Dump(redis_->socket());
  for (const char* name : {"survivor", "wrap", "scanned", "outage", "during-outage"}) {
    EXPECT_EQ(dump.count(absl::StrCat(kPrefix, name)), 1u) << name;
  }
  EXPECT_TRUE(Flows(d.a, d.b, 20));
}

// (5) Damaged records, a record for an interface this sluiced lacks, a key
// of another type: refused and counted, the rest restored. A wrong KEK, or
// one others may read: sluiced refuses to start, and Redis is left as it was.
TEST_F(HaTest, BadRecordsAndWrongKekAreRefused) {
  ASSERT_TRUE(WaitSynced());
  const std::string socket = redis_->socket();
  const std::string outage = absl::StrCat(kPrefix, "outage");
  const std::string elsewhere = absl::StrCat(kPrefix, "during-outage");
  const std::string record = redis_->Command({"HGET", outage, "record"}).value_or("");
  const std::string moved = redis_->Command({"HGET", elsewhere, "record"}).value_or("");
  ASSERT_NE(moved.find("\"interface\":\"a\""), std::string::npos) << moved;
  ASSERT_TRUE(redis_->Command({"HSET", absl::StrCat(kPrefix, "garbage"), "record", "\x01\xff{", "streams", "[]"}));
  ASSERT_TRUE(redis_->Command({"HSET", outage, "record", record.substr(0, record.size() / 2)}));
  ASSERT_TRUE(redis_->Command({"HSET", elsewhere, "record",
                   absl::StrReplaceAll(moved, {{"\"interface\":\"a\"", "\"interface\":\"zz\""}})}));
  ASSERT_TRUE(redis_->Command({"SET", absl::StrCat(kPrefix, "a-string"), "x"}));

  daemon_->Kill();
  ASSERT_TRUE(daemon_->Restart()) << daemon_->Log();
  ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  json s = Stats();
  EXPECT_EQ(s["ha"]["refused"]["corrupt"], 3) << s.dump();  // garbage, truncated, a string
  EXPECT_EQ(s["ha"]["refused"]["unknown_interface"], 1) << s.dump();
  EXPECT_EQ(s["ha"]["restored"], 3) << s.dump();  // survivor, wrap, scanned
  EXPECT_EQ(s["sessions"], 3);
  ASSERT_TRUE(WaitSynced());
  // The sessions' keys (the heartbeat expires by itself meanwhile).
  const auto sessions = [&socket] {
    std::map<std::string, std::string> d = Dump(socket);
    d.erase("sluice:hatest:heartbeat");
    return d;
  };
  const std::map<std::string, std::string> before = sessions();

  // The wrong KEK: sluiced exits with a clear error and writes nothing.
  const std::string right = ReadKek();
  daemon_->Kill();
  WriteKek(RandomKek(), 0600);
  EXPECT_FALSE(daemon_->Restart());
  EXPECT_NE(daemon_->Log().find("wrong key-encryption key"), std::string::npos) << daemon_->Log();
  // A KEK file others may read: refused too.
  WriteKek(right, 0644);
  EXPECT_FALSE(daemon_->Restart());
  EXPECT_NE(daemon_->Log().find("chmod 0600"), std::string::npos);
  EXPECT_EQ(sessions(), before) << "a refused start changed Redis";
  // The right KEK again: everything that was restorable is restored.
  WriteKek(right, 0600);
  ASSERT_TRUE(daemon_->Restart()) << daemon_->Log();
  ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  s = Stats();
  EXPECT_EQ(s["ha"]["restored"], 3) << s.dump();
}

// KEK rotation online: the current KEK moved to previous_kek_file, a new
// one in kek_file, `sluicectl ha rekek`: every record in Redis is sealed
// under the new KEK, and a restart (with or without the previous file)
// restores every session.
TEST_F(HaTest, RekekSealsEveryRecordUnderTheNewKek) {
  const std::string old_kek = ReadKek();
  json r = control_.Call({{"op", "ha.rekek"}});
  EXPECT_FALSE(r.value("ok", true)) << "the KEK in use is not a new one: " << r.dump();
  std::ofstream(kek_ + ".previous", std::ios::binary | std::ios::trunc) << old_kek;
  chmod((kek_ + ".previous").c_str(), 0600);
  WriteKek(RandomKek(), 0600);
  r = control_.Call({{"op", "ha.rekek"}});
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_EQ(r["resealed"], 3);
  ASSERT_TRUE(WaitSynced());
  std::array<uint8_t, ha::kKekBytes> new_kek;
  const std::string new_bytes = ReadKek();
  std::copy(new_bytes.begin(), new_bytes.end(), new_kek.begin());
  const uint32_t new_id = ha::Sealer::FromKey(new_kek).kek_id();
  // Every sealed value of the sessions sluiced holds now names the new KEK
  // (the records it refused at its start are left as they were).
  size_t sealed = 0;
  for (const auto& [key, value] : Dump(redis_->socket())) {
    if (key.find("outage") != std::string::npos) continue;
    for (size_t at = value.find("\"sealed\":\""); at != std::string::npos;
         at = value.find("\"sealed\":\"", at + 1)) {
      std::string bytes;
      ASSERT_TRUE(absl::Base64Unescape(value.substr(at + 10, value.find('"', at + 10) - at - 10), &bytes));
      absl::StatusOr<uint32_t> id = ha::Sealer::KekIdOf(bytes);
      ASSERT_TRUE(id.ok()) << key;
      EXPECT_EQ(*id, new_id) << key;
      ++sealed;
    }
  }
  EXPECT_GE(sealed, 3u * 4u);
  daemon_->Kill();
  ASSERT_TRUE(daemon_->Restart()) << daemon_->Log();
  ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  EXPECT_EQ(Stats()["ha"]["restored"], 3);
  std::remove((kek_ + ".previous").c_str());
  daemon_->Kill();
  ASSERT_TRUE(daemon_->Restart()) << daemon_->Log();
  ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  EXPECT_EQ(Stats()["ha"]["restored"], 3) << "no record needs the old KEK";
}

// Rule 2 of the checkpoint rule (docs/ha.md): a plain phone A relayed to
// an SRTP phone B (libsrtp2). Redis's checkpoint of the call is taken, then
// A sends 100 packets B receives, and sluiced is SIGKILLed with Redis still
// holding that checkpoint (written back: the crash came before the next one
// reached Redis). After the restart A, or anyone spoofing it, sends every
// SEQ of before the crash again with other payloads, then carries on. B
// must see no SRTP index twice and verify every packet (0 authentication
// failures, 0 replays), and A's new packets all arrive after the gap, with
// their payloads, at one constant SEQ shift.
TEST_F(HaTest, PlainSourcedSenderNeverReusesAnIndexAfterRestart) {
  const std::string key_b = FreshKey("AES_CM_128_HMAC_SHA1_80");
  const std::string remote_a = absl::StrCat(daemon_->phone_ip(0), ":", 42050);
  const std::string remote_b = absl::StrCat(daemon_->phone_ip(1), ":", 42052);
  json r = daemon_->Create(control_, "plain-source", PlainLeg("a", "a", remote_a),
                           SrtpLeg("b", "b", remote_b, key_b, "AES_CM_128_HMAC_SHA1_80"));
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 42050, 0x5a000051);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 42052, 0x5a000052);
  a.relay = Addr(daemon_->relay_ip(0), LocalPort(r["legs"][0]));
  b.relay = Addr(daemon_->relay_ip(1), LocalPort(r["legs"][1]));
  Arm(b, key_b, r["legs"][1]["tx"]["crypto"]);
  a.seq = 65300;  // A's SEQ wraps before the crash
  // B's SRTP indices (RFC 3711 §3.3.1: B's libsrtp2 verified each at the
  // index its estimate gave, which this follows: no jump reaches 2^15).
  std::set<uint64_t> seen;
  uint64_t top = 0;
  int bad = 0;
  const auto index_of = [&top](const std::vector<uint8_t>& p) {
    const uint16_t seq = static_cast<uint16_t>(p[2] << 8 | p[3]);
    const uint64_t i = top == 0 ? (uint64_t{1} << 32) + seq
                                : top + static_cast<int16_t>(seq - static_cast<uint16_t>(top));
    top = std::max(top, i);
    return i;
  };
  std::vector<uint16_t> sent;  // A's SEQs before the crash
  const auto talk = [&](int n) {
    for (int i = 0; i < n; ++i) {
      sent.push_back(a.seq);
      a.SendNext();
      if (i % 10 == 9) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (const std::vector<uint8_t>& p : b.Receive(200, &bad)) seen.insert(index_of(p));
  };
  talk(100);
  ASSERT_EQ(seen.size(), 100u) << "the call does not flow";
  ASSERT_TRUE(WaitSynced());
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a checkpoint or two more
  const std::string key = absl::StrCat(kPrefix, "plain-source");
  const std::optional<std::string> checkpoint = redis_->Command({"HGET", key, "streams"});
  ASSERT_TRUE(checkpoint.has_value());
  ASSERT_NE(checkpoint->find("\"top\""), std::string::npos) << *checkpoint;
  talk(100);  // after the checkpoint Redis will hold
  ASSERT_EQ(seen.size(), 200u);

  daemon_->Kill();
  ASSERT_TRUE(redis_->Command({"HSET", key, "streams", *checkpoint}));
  ASSERT_TRUE(daemon_->Restart()) << daemon_->Log();
  ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  // Every SEQ of before, other payloads (what a spoofer of A sends), then
  // one of A's next packets, until one of those gets through.
  const auto resend = [&] {
    for (uint16_t s : sent) {
      std::vector<uint8_t> p = a.Rtp(s);
      for (size_t i = 12; i < p.size(); ++i) p[i] ^= 0xa5;
      a.SendRaw(p);
    }
  };
  const auto is_resent = [](const std::vector<uint8_t>& p) {  // Rtp's payload, xored
    for (size_t i = 13; i < p.size(); ++i) {
      if (static_cast<uint8_t>((p[i] ^ 0xa5) - (p[12] ^ 0xa5)) != i - 12) return false;
    }
    return p.size() > 13;
  };
  const auto same_payload = [](const std::vector<uint8_t>& x, const std::vector<uint8_t>& y) {
    return std::equal(x.begin() + 12, x.end(), y.begin() + 12, y.end());
  };
  size_t resent_through = 0;
  bool through = false;
  for (int i = 0; i < 200 && !through; ++i) {
    resend();
    const std::vector<uint8_t> probe = a.SendNext();
    for (const std::vector<uint8_t>& p : b.Receive(20, &bad)) {
      const uint64_t index = index_of(p);
      EXPECT_TRUE(seen.insert(index).second) << "index " << index << " used twice";
      through = through || same_payload(p, probe);
      resent_through += is_resent(p) ? 1 : 0;
    }
  }
  ASSERT_TRUE(through) << "no packet through after the restart";
  resend();  // once more, with the relay up
  // A carries on: every packet arrives, its payload intact, in order, its
  // SEQ shifted by one amount.
  std::vector<std::vector<uint8_t>> next, got;
  for (int i = 0; i < 100; ++i) next.push_back(a.SendNext());
  for (const std::vector<uint8_t>& p : b.Receive(300, &bad)) {
    const uint64_t index = index_of(p);
    EXPECT_TRUE(seen.insert(index).second) << "index " << index << " used twice";
    if (is_resent(p)) {
      ++resent_through;
    } else {
      got.push_back(p);
    }
  }
  ASSERT_EQ(got.size(), next.size()) << "A's packets after the gap were lost";
  const auto seq = [](const std::vector<uint8_t>& p) { return static_cast<uint16_t>(p[2] << 8 | p[3]); };
  const uint16_t shift = static_cast<uint16_t>(seq(got[0]) - seq(next[0]));
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(same_payload(got[i], next[i])) << "packet " << i << " not A's, or out of order";
    EXPECT_EQ(static_cast<uint16_t>(seq(got[i]) - seq(next[i])), shift) << "packet " << i;
  }
  EXPECT_EQ(bad, 0) << "B failed to verify (authentication or replay)";
  std::printf("plain-sourced sender restored: SEQ shift %u; %zu resent SEQs relayed at new "
              "indices, the rest refused\n", shift, resent_through);
}

// The ng front end's calls (docs/ha.md, "ng call state"): an SDES call set
// up by ng offer/answer and an offer not yet answered survive SIGKILL and a
// restart; the restarted sluiced answers query for the call, re-keys it on
// a re-INVITE, takes the late answer, and delete ends both; every packet
// verifies at the phones, and Redis holds none of their keys nor tags.
TEST_F(HaTest, NgCallsSurviveSigkillThenQueryReofferAnswerAndDelete) {
  NgSide ng(*daemon_);
  ASSERT_TRUE(ng.Open());
  const json before = Stats();  // records earlier tests damaged are refused at each start
  const uint64_t sessions_before = before["sessions"].get<uint64_t>();
  const std::string call = "ng-ha-1@sbc.example", pending = "ng-ha-2@sbc.example";
  Phone a = daemon_->MakePhone(0, daemon_->phone_ip(0), 40100, 0x7100);
  Phone b = daemon_->MakePhone(1, daemon_->phone_ip(1), 40102, 0x7200);
  const auto [to_a, to_b] = ng.OfferAnswer(call, a, b, NewSdesKey(), NewSdesKey(), 40100);
  ASSERT_FALSE(to_a.crypto.empty() || to_b.crypto.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // ARP for both peers
  EXPECT_TRUE(Flows(a, b, 50));
  // A second call, offered and not yet answered at the crash.
  const std::string kc = NewSdesKey();
  ng::Value reply = ng.client->Call(
      NgOffer(pending, "tag-c", PhoneSdp(daemon_->phone_ip(0), 40110, "RTP/SAVP", {kc})));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const SdpView to_d = ViewSdp(reply);
  ASSERT_EQ(to_d.crypto.size(), 1u);
  ASSERT_TRUE(WaitSynced());
  EXPECT_NE(Dump(redis_->socket())[kPrefix + call].find("\"ng\":{\"sealed\""), std::string::npos);

  daemon_->Kill();
  const auto killed = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {  // into the void
    a.SendNext();
    b.SendNext();
  }
  ASSERT_TRUE(daemon_->Restart()) << daemon_->Log();
  ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  ASSERT_TRUE(ng.Open());
  const json stats = Stats();
  EXPECT_EQ(stats["ha"]["restored"], sessions_before + 2) << stats.dump();
  EXPECT_EQ(stats["ha"]["refused"], before["ha"]["refused"]) << stats.dump();

  // query: the call is known, with its tags and its one stream.
  reply = ng.client->Call(NgCommand("query", call));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const ng::Value* streams = reply.Find("streams");
  ASSERT_TRUE(streams != nullptr && streams->is_list() && streams->as_list().size() == 1u);
  const ng::Value* legs = streams->as_list()[0].Find("legs");
  ASSERT_TRUE(legs != nullptr && legs->as_list().size() == 2u);
  EXPECT_EQ(legs->as_list()[0].Find("tag")->str(), "tag-a");
  EXPECT_EQ(legs->as_list()[1].Find("tag")->str(), "tag-b");
  reply = ng.client->Call(NgCommand("list", ""));
  EXPECT_EQ(reply.Find("calls")->as_list().size(), 2u);

  // Media on the restored keys: every packet verifies.
  int bad = 0;
  ASSERT_TRUE(ng.Through(a, b, &bad)) << "no packet through after the restart";
  std::printf("ng call: SIGKILL to packets through both ways: %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed)
                  .count());
  EXPECT_EQ(bad, 0);
  EXPECT_TRUE(Flows(a, b, 50));

  // re-INVITE with new keys on both sides: Sluice re-keys both legs.
  const auto [to_a2, to_b2] = ng.OfferAnswer(call, a, b, NewSdesKey(), NewSdesKey(), 40100);
  ASSERT_FALSE(to_a2.crypto.empty() || to_b2.crypto.empty());
  EXPECT_EQ(to_a2.port, to_a.port);
  EXPECT_EQ(to_b2.port, to_b.port);
  EXPECT_NE(to_a2.crypto[0], to_a.crypto[0]);
  EXPECT_NE(to_b2.crypto[0], to_b.crypto[0]);
  EXPECT_TRUE(Flows(a, b, 50));

  // The offer made before the crash, answered after it.
  Phone c = daemon_->MakePhone(0, daemon_->phone_ip(0), 40110, 0x7300);
  Phone d = daemon_->MakePhone(1, daemon_->phone_ip(1), 40112, 0x7400);
  const std::string kd = NewSdesKey();
  reply = ng.client->Call(NgAnswer(pending, "tag-c", "tag-d",
                             PhoneSdp(daemon_->phone_ip(1), 40112, "RTP/SAVP", {kd})));
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const SdpView to_c = ViewSdp(reply);
  ASSERT_EQ(to_c.crypto.size(), 1u);
  c.relay = Addr(to_c.ip, to_c.port);
  d.relay = Addr(to_d.ip, to_d.port);
  Arm(c, kc, to_c.crypto[0]);
  Arm(d, kd, to_d.crypto[0]);
  ng.keys.insert(ng.keys.end(), {kc, kd, to_c.crypto[0], to_d.crypto[0]});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(Flows(c, d, 50));

  // Redis holds none of the calls' keys (master keys, salts, session keys;
  // raw, hex or base64), in their records or elsewhere, nor their tags.
  ASSERT_TRUE(WaitSynced());
  const std::map<std::string, std::string> dump = Dump(redis_->socket());
  ASSERT_NE(dump.at(kPrefix + ng::SessionName(call, 0)).find("\"ng\""), std::string::npos);
  for (const std::string& sdes : ng.keys) {
    for (const auto& [what, secret] : Secrets(sdes)) {
      for (const auto& [key, value] : dump) EXPECT_EQ(value.find(secret), std::string::npos) << what;
    }
  }
  for (const auto& [key, value] : dump) {
    EXPECT_EQ(value.find("inline:"), std::string::npos) << key;
    EXPECT_EQ(value.find("tag-a"), std::string::npos) << key;  // the ng state is sealed whole
  }

  // delete ends both calls: sessions gone, Redis records gone.
  for (const std::string& id : {call, pending}) {
    reply = ng.client->Call(NgCommand("delete", id));
    EXPECT_EQ(Result(reply), "ok");
    EXPECT_EQ(reply.Find("warning"), nullptr) << reply.Find("warning")->str();
  }
  EXPECT_EQ(Stats()["sessions"], sessions_before);
  ASSERT_TRUE(WaitSynced());
  EXPECT_EQ(Dump(redis_->socket()).count(kPrefix + ng::SessionName(call, 0)), 0u);
  EXPECT_EQ(Result(ng.client->Call(NgCommand("query", call))), "error");
  if (HasFailure()) std::printf("%s\n", daemon_->Log().c_str());
}

// (7) A WebRTC call (aiortc as the browser, DTLS-SRTP and ICE-lite with
// Sluice) to a libsrtp2 SDES phone survives SIGKILL and a restart without
// a new handshake: sluiced restores the leg keyed with the exported keys and
// its ICE state, the browser's DTLS transport stays as it was, and media
// verifies both ways at once.
TEST_F(HaTest, WebrtcCallSurvivesSigkillWithoutANewHandshake) {
  if (const std::string why = AiortcMissing(); !why.empty()) GTEST_SKIP() << "skipped: " << why;
  WebrtcCall call;
  ASSERT_TRUE(call.Offer(daemon_->topology(), daemon_->phone_ns(0), daemon_->phone_ip(0)));
  const std::string key = FreshKey("AES_CM_128_HMAC_SHA1_80");
  json r = daemon_->Create(
      control_, "webrtc-ha", WebrtcLeg("web", "a", call.offer),
      SrtpLeg("phone", "b", absl::StrCat(daemon_->phone_ip(1), ":", 42040), key,
              "AES_CM_128_HMAC_SHA1_80"));
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  call.phone = daemon_->MakePhone(1, daemon_->phone_ip(1), 42040, 0x5a000041);
  call.phone.relay = Addr(daemon_->relay_ip(1), LocalPort(r["legs"][1]));
  Arm(call.phone, key, r["legs"][1]["tx"]["crypto"]);
  ASSERT_TRUE(call.Remote(SluiceSdp(r["legs"][0], {.mid = call.offer.mid})));
  ASSERT_TRUE(call.WaitKeyed(control_, "webrtc-ha"));
  call.ExpectMedia(50);
  ASSERT_TRUE(WaitSynced());
  EXPECT_EQ(Stats()["ha"]["not_replicated"], 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a checkpoint or two more

  daemon_->Kill();
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(daemon_->Restart()) << daemon_->Log();
  ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  ASSERT_TRUE(call.Through()) << "no media through after the restart: "
                              << control_.Call({{"op", "session.get"}, {"session", "webrtc-ha"}}).dump();
  std::printf("WebRTC media gap (SIGKILL to packets through both ways): %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed)
                  .count());
  call.ExpectResumed(control_.Call({{"op", "session.get"}, {"session", "webrtc-ha"}}), Stats());
  EXPECT_EQ(Failures("webrtc-ha"), 0u);
  EXPECT_TRUE(control_.Call({{"op", "session.delete"}, {"session", "webrtc-ha"}}).value("ok", false));
  if (HasFailure()) std::printf("%s\n", daemon_->Log().c_str());
}


// (8) The same for a WebRTC call set up by ng: aiortc's offer, answered by
// an SDES phone through the ng front end, survives SIGKILL and a restart
// without a new handshake; the restored ng call answers query and delete.
TEST_F(HaTest, NgWebrtcCallSurvivesSigkillWithoutANewHandshake) {
  if (const std::string why = AiortcMissing(); !why.empty()) GTEST_SKIP() << "skipped: " << why;
  NgSide ng(*daemon_);
  ASSERT_TRUE(ng.Open());
  WebrtcCall call;
  ASSERT_TRUE(call.Offer(daemon_->topology(), daemon_->phone_ns(0), daemon_->phone_ip(0)));
  const std::string id = "ng-webrtc-ha@sbc.example", key = NewSdesKey();
  ng::Value offer = NgOffer(id, "web", call.offer_sdp);
  offer.Set("rtpp-flags", "ICE=remove DTLS=off RTP/SAVP");
  ng::Value reply = ng.client->Call(offer);
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  const SdpView to_phone = ViewSdp(reply);
  ASSERT_FALSE(to_phone.crypto.empty());  // its first suite is the phone's, tag 1
  ng::Value answer =
      NgAnswer(id, "web", "phone", PhoneSdp(daemon_->phone_ip(1), 42050, "RTP/SAVP", {key}));
  answer.Set("rtpp-flags", "ICE=force DTLS=passive");
  reply = ng.client->Call(answer);
  ASSERT_EQ(Result(reply), "ok") << ErrorReason(reply);
  call.phone = daemon_->MakePhone(1, daemon_->phone_ip(1), 42050, 0x5a000051);
  call.phone.relay = Addr(to_phone.ip, to_phone.port);
  Arm(call.phone, key, to_phone.crypto[0]);
  const std::string session = ng::SessionName(id, 0);
  ASSERT_TRUE(call.Remote(std::string(reply.Find("sdp")->str())));
  ASSERT_TRUE(call.WaitKeyed(control_, session));
  ASSERT_TRUE(call.Through()) << "the call never got through";  // the phone's ARP
  call.ExpectMedia(50);
  ASSERT_TRUE(WaitSynced());
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a checkpoint or two more

  daemon_->Kill();
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(daemon_->Restart()) << daemon_->Log();
  ASSERT_TRUE(control_.Connect(daemon_->socket_path()));
  ASSERT_TRUE(ng.Open());
  ASSERT_TRUE(call.Through()) << "no media through after the restart";
  std::printf("ng WebRTC call: SIGKILL to media through both ways: %.0f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed)
                  .count());
  call.ExpectResumed(control_.Call({{"op", "session.get"}, {"session", session}}), Stats());
  EXPECT_EQ(Failures(session), 0u);
  EXPECT_EQ(Result(ng.client->Call(NgCommand("query", id))), "ok");
  EXPECT_EQ(Result(ng.client->Call(NgCommand("delete", id))), "ok");
  if (HasFailure()) std::printf("%s\n", daemon_->Log().c_str());
}
}  // namespace
}  // namespace sluice::testing
