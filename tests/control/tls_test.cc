// The control protocol over mutual TLS: an in-process Server with a TLS
// listener on loopback, certificates made by OpenSSL at test time, and
// clients that should and should not get in.
#include "log_capture.h"
#include "sluice/control/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fake_operations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/control/client.h"
#include "sluice/control/protocol.h"
#include "sluice/control/server.h"
#include "test_certs.h"

namespace sluice::control {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::CertSpec;
using testing::FakeOperations;
using testing::Issued;
using testing::MakeCert;
using Clock = std::chrono::steady_clock;

constexpr char kServerName[] = "sluice.test";
constexpr int kTimeoutMs = 5000;

Json Parse(const std::string& line) {
  Json j = Json::parse(line, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << line;
  return j;
}

// A TCP socket connected to 127.0.0.1:port, or -1.
int TcpConnect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{kTimeoutMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static std::atomic<int> counter{0};
    dir_ = new std::string(absl::StrCat("/tmp/sluice-tls-test-", getpid(), "-", counter++));
    std::filesystem::create_directories(*dir_);
    const std::string& d = *dir_;
    ca_ = new Issued(MakeCert({.cn = "Sluice test CA", .ca = true}, nullptr, d, "ca"));
    other_ca_ = new Issued(MakeCert({.cn = "Another CA", .ca = true}, nullptr, d, "other-ca"));
    // RSA, so that TLS 1.2 suites with RSA key exchange (no forward secrecy)
    // could be negotiated if the server allowed them.
    server_ = new Issued(MakeCert(
        {.cn = "sluiced", .san = {"DNS:sluice.test", "IP:127.0.0.1"}, .rsa = true}, ca_, d, "server"));
    client_ = new Issued(MakeCert({.cn = "sbc1", .client = true}, ca_, d, "client"));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete ca_;
    delete other_ca_;
    delete server_;
    delete client_;
    delete dir_;
  }

  void SetUp() override {
    socket_path_ = absl::StrCat(*dir_, "/ctl-", ::testing::UnitTest::GetInstance()->random_seed(),
                                "-", next_socket_++, ".sock");
  }
  void TearDown() override { Stop(); server.reset(); }

  TlsServerOptions TlsOptions() const {
    TlsServerOptions tls;
    tls.listen = "127.0.0.1:0";
    tls.cert_file = server_->cert_file;
    tls.key_file = server_->key_file;
    tls.ca_file = ca_->cert_file;
    tls.server_name = kServerName;
    tls.allowed_clients = {"sbc1", "sbc2.example.net"};
    return tls;
  }

  void Start(ServerOptions options = {}) {
    options.socket_path = socket_path_;
    if (!options.tls) options.tls = TlsOptions();
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Create(ops_, std::move(options));
    ASSERT_TRUE(s.ok()) << s.status();
    server = std::move(*s);
    running_ = true;
    thread_ = std::thread([this] {
      while (running_) {
        if (absl::Status st = server->Poll(10); !st.ok()) ADD_FAILURE() << st;
      }
    });
  }
  void Stop() {
    if (thread_.joinable()) {
      running_ = false;
      thread_.join();
    }
  }

  std::string Log() {
    return absl::StrJoin(log_.lines(), "\n");
  }
  // Waits until the log holds `text` (the server logs from its own thread).
  std::string WaitForLog(const std::string& text) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      const std::string log = Log();
      if (log.find(text) != std::string::npos) return log;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Log();
  }

  TlsConnectOptions ClientOptions(const Issued& client) const {
    TlsConnectOptions o;
    o.address = absl::StrCat("127.0.0.1:", server->tls_port());
    o.server_name = kServerName;
    o.files.ca_file = ca_->cert_file;
    o.files.cert_file = client.cert_file;
    o.files.key_file = client.key_file;
    return o;
  }

  // A ping over TLS with `client`'s certificate: the reply, or the error.
  absl::StatusOr<Json> PingAs(const Issued& client) {
    absl::StatusOr<Client> c = Client::ConnectTls(ClientOptions(client), kTimeoutMs);
    if (!c.ok()) return c.status();
    absl::StatusOr<std::string> reply = c->Call(R"({"id":1,"op":"ping"})");
    if (!reply.ok()) return reply.status();
    return Parse(*reply);
  }

  // A client certificate of the test CA (or `issuer`) written under `name`.
  static Issued ClientCert(const std::string& name, CertSpec spec, const Issued* issuer = nullptr) {
    spec.client = true;
    return MakeCert(spec, issuer != nullptr ? issuer : ca_, *dir_, name);
  }

  static std::string* dir_;
  static Issued* ca_;
  static Issued* other_ca_;
  static Issued* server_;
  static Issued* client_;
  static inline int next_socket_ = 0;

  FakeOperations ops_;
  std::string socket_path_;
  std::unique_ptr<Server> server;
  std::thread thread_;
  std::atomic<bool> running_{false};
  sluice::testing::LogCapture log_;
};

std::string* TlsTest::dir_ = nullptr;
Issued* TlsTest::ca_ = nullptr;
Issued* TlsTest::other_ca_ = nullptr;
Issued* TlsTest::server_ = nullptr;
Issued* TlsTest::client_ = nullptr;

TEST_F(TlsTest, GoodClientServedOverTls13) {
  Start();
  ASSERT_NE(server->tls_port(), 0);
  absl::StatusOr<Client> c = Client::ConnectTls(ClientOptions(*client_), kTimeoutMs);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<std::string> reply = c->Call(R"({"id":7,"op":"ping"})");
  ASSERT_TRUE(reply.ok()) << reply.status();
  const Json ping = Parse(*reply);
  EXPECT_EQ(ping["id"], 7);
  EXPECT_EQ(ping["ok"], true);
  EXPECT_EQ(ping["workers"], 3);

  // Many pipelined requests in one write: every reply, in order (records
  // split across reads and replies across writes).
  std::string burst;
  for (int i = 0; i < 5000; ++i) burst += absl::StrCat(R"({"id":)", i, R"(,"op":"ping"})", "\n");
  ASSERT_TRUE(c->Write(burst).ok());
  for (int i = 0; i < 5000; ++i) {
    absl::StatusOr<std::string> line = c->ReadLine();
    ASSERT_TRUE(line.ok()) << line.status();
    ASSERT_EQ(Parse(*line)["id"], i);
  }
  // A generated key comes back over TLS as it would over the Unix socket.
  reply = c->Call(
      R"({"id":"c","op":"session.create","session":"s1","legs":[)"
      R"({"name":"a","interface":"a","rx":{"plain":true},"tx":{"suite":"AES_CM_128_HMAC_SHA1_80"}},)"
      R"({"name":"b","interface":"b","rx":{"plain":true},"tx":{"plain":true}}]})");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_THAT(*reply, HasSubstr(testing::kGeneratedKeyMarker));

  reply = c->Call(R"({"id":"s","op":"stats"})");
  ASSERT_TRUE(reply.ok()) << reply.status();
  Json stats = Parse(*reply);
  EXPECT_EQ(stats["control"]["tls"]["connections_accepted"], 1);
  EXPECT_EQ(stats["control"]["tls"]["handshakes_failed"], 0);
  EXPECT_FALSE(stats["control"]["tls"].contains("warning"));
  const std::string log = WaitForLog("TLS client");
  EXPECT_THAT(log, ::testing::ContainsRegex(
                       "event=control.tls_client peer=127.0.0.1:[0-9]+ client=\"CN=sbc1,O=Sluice "
                       "tests, TLSv1.3 TLS_[A-Z0-9_]+, SNI sluice.test\""));
  EXPECT_THAT(log, Not(HasSubstr("PRIVATE")));
}

TEST_F(TlsTest, ClientListedBySanAccepted) {
  Start();
  const Issued san = ClientCert("by-san", {.cn = "not-listed", .san = {"DNS:sbc2.example.net"}});
  absl::StatusOr<Json> r = PingAs(san);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["ok"], true);
}

struct Refusal {
  const char* name;
  CertSpec spec;
  bool other_ca;
  const char* logged;
};

TEST_F(TlsTest, BadClientCertificatesRefusedWithTheReasonLogged) {
  Start();
  const Refusal cases[] = {
      {"expired", {.cn = "sbc1", .valid_from_s = -30L * 86400, .valid_until_s = -86400}, false,
       "client certificate CN=sbc1,O=Sluice tests: certificate has expired"},
      {"not-yet-valid", {.cn = "sbc1", .valid_from_s = 86400, .valid_until_s = 30L * 86400}, false,
       "client certificate CN=sbc1,O=Sluice tests: certificate is not yet valid"},
      {"wrong-ca", {.cn = "sbc1"}, true,
       "client certificate CN=sbc1,O=Sluice tests: unable to get local issuer certificate"},
      {"unlisted", {.cn = "intruder", .san = {"DNS:intruder.example.net"}}, false,
       "client certificate CN=intruder,O=Sluice tests is not on control.tls.allowed_clients "
       "(its names: intruder, intruder.example.net)"},
  };
  uint64_t refused = 0;
  for (const Refusal& r : cases) {
    SCOPED_TRACE(r.name);
    const Issued cert = ClientCert(r.name, r.spec, r.other_ca ? other_ca_ : nullptr);
    absl::StatusOr<Json> reply = PingAs(cert);
    EXPECT_FALSE(reply.ok()) << "served: " << reply->dump();
    ++refused;
    EXPECT_THAT(WaitForLog(r.logged), HasSubstr("event=control.tls_refused peer=127.0.0.1:"));
    EXPECT_THAT(Log(), HasSubstr(r.logged));
  }
  // A certificate issued for servers only (extendedKeyUsage serverAuth).
  const Issued server_only = MakeCert({.cn = "sbc1"}, ca_, *dir_, "server-only");
  EXPECT_FALSE(PingAs(server_only).ok());
  ++refused;
  EXPECT_THAT(WaitForLog("unsuitable certificate purpose"),
              HasSubstr("client certificate CN=sbc1,O=Sluice tests: unsuitable certificate purpose"));
  // The good client still gets in.
  absl::StatusOr<Json> good = PingAs(*client_);
  ASSERT_TRUE(good.ok()) << good.status();
  Stop();
  EXPECT_EQ(server->counters().tls_handshakes_failed, refused);
  EXPECT_EQ(server->counters().tls_connections_accepted, 1u);
  // Certificates are named by subject; no key material reaches the log.
  const std::string log = Log();
  EXPECT_THAT(log, Not(HasSubstr("PRIVATE")));
  EXPECT_THAT(log, Not(HasSubstr("BEGIN")));
}

TEST_F(TlsTest, ClientWithoutCertificateRefused) {
  Start();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx.get(), ca_->cert_file.c_str(), nullptr), 1);
  const int fd = TcpConnect(server->tls_port());
  ASSERT_GE(fd, 0);
  SslPtr ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  SSL_connect(ssl.get());  // TLS 1.3: completes; the server decides after
  const char ping[] = "{\"id\":1,\"op\":\"ping\"}\n";
  SSL_write(ssl.get(), ping, sizeof(ping) - 1);
  char buf[256];
  EXPECT_LE(SSL_read(ssl.get(), buf, sizeof(buf)), 0);
  ERR_clear_error();
  close(fd);
  EXPECT_THAT(WaitForLog("certificate"), HasSubstr("peer did not return a certificate"));
}

// A raw client with its own version and cipher limits: true when the
// handshake completes and a ping is answered.
bool HandshakeWith(uint16_t port, int min_version, int max_version, const char* tls12_ciphers,
                   const Issued& ca, const Issued& client, std::string* negotiated = nullptr) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  // Old versions and weak suites are off by default in OpenSSL 3; this
  // client offers them anyway, as an old peer would.
  SSL_CTX_set_security_level(ctx.get(), 0);
  SSL_CTX_set_min_proto_version(ctx.get(), min_version);
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  if (tls12_ciphers != nullptr) SSL_CTX_set_cipher_list(ctx.get(), tls12_ciphers);
  SSL_CTX_load_verify_locations(ctx.get(), ca.cert_file.c_str(), nullptr);
  SSL_CTX_use_certificate_file(ctx.get(), client.cert_file.c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_use_PrivateKey_file(ctx.get(), client.key_file.c_str(), SSL_FILETYPE_PEM);
  const int fd = TcpConnect(port);
  if (fd < 0) return false;
  SslPtr ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  bool served = false;
  if (SSL_connect(ssl.get()) == 1) {
    if (negotiated != nullptr) {
      *negotiated = absl::StrCat(SSL_get_version(ssl.get()), " ",
                                 SSL_CIPHER_get_name(SSL_get_current_cipher(ssl.get())));
    }
    const char ping[] = "{\"id\":1,\"op\":\"ping\"}\n";
    char buf[512];
    served = SSL_write(ssl.get(), ping, sizeof(ping) - 1) > 0 &&
             SSL_read(ssl.get(), buf, sizeof(buf)) > 0;
  }
  ERR_clear_error();
  close(fd);
  return served;
}

TEST_F(TlsTest, OnlyTls12WithForwardSecrecyAndAeadOrNewer) {
  Start();
  const uint16_t port = server->tls_port();
  std::string negotiated;
  // Default client: TLS 1.3.
  EXPECT_TRUE(HandshakeWith(port, 0, 0, nullptr, *ca_, *client_, &negotiated));
  EXPECT_THAT(negotiated, HasSubstr("TLSv1.3"));
  // TLS 1.2 with ECDHE and an AEAD: accepted.
  for (const char* suite : {"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                            "ECDHE-RSA-CHACHA20-POLY1305"}) {
    SCOPED_TRACE(suite);
    EXPECT_TRUE(
        HandshakeWith(port, TLS1_2_VERSION, TLS1_2_VERSION, suite, *ca_, *client_, &negotiated));
    EXPECT_EQ(negotiated, absl::StrCat("TLSv1.2 ", suite));
  }
  // TLS 1.2 offering only suites without forward secrecy (RSA key exchange)
  // or without an AEAD (CBC): refused.
  EXPECT_FALSE(HandshakeWith(port, TLS1_2_VERSION, TLS1_2_VERSION,
                             "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES128-SHA", *ca_,
                             *client_));
  EXPECT_THAT(WaitForLog("no shared cipher"), HasSubstr("no shared cipher"));
  EXPECT_FALSE(HandshakeWith(port, TLS1_2_VERSION, TLS1_2_VERSION,
                             "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA",
                             *ca_, *client_));
  // TLS 1.1 and 1.0: refused.
  EXPECT_FALSE(HandshakeWith(port, TLS1_1_VERSION, TLS1_1_VERSION, "ALL:@SECLEVEL=0", *ca_,
                             *client_));
  EXPECT_THAT(WaitForLog("unsupported protocol"), HasSubstr("unsupported protocol"));
  EXPECT_FALSE(HandshakeWith(port, TLS1_VERSION, TLS1_VERSION, "ALL:@SECLEVEL=0", *ca_, *client_));
  Stop();
  EXPECT_EQ(server->counters().tls_handshakes_failed, 4u);
  EXPECT_EQ(server->counters().tls_connections_accepted, 4u);
}

TEST_F(TlsTest, NoRenegotiationNoCompression) {
  Start();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_2_VERSION);
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx.get(), ca_->cert_file.c_str(), nullptr), 1);
  ASSERT_EQ(SSL_CTX_use_certificate_file(ctx.get(), client_->cert_file.c_str(), SSL_FILETYPE_PEM), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(ctx.get(), client_->key_file.c_str(), SSL_FILETYPE_PEM), 1);
  const int fd = TcpConnect(server->tls_port());
  ASSERT_GE(fd, 0);
  SslPtr ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  ASSERT_EQ(SSL_connect(ssl.get()), 1);
  EXPECT_EQ(SSL_get_current_compression(ssl.get()), nullptr);
  const char ping[] = "{\"id\":1,\"op\":\"ping\"}\n";
  char buf[512];
  ASSERT_GT(SSL_write(ssl.get(), ping, sizeof(ping) - 1), 0);
  ASSERT_GT(SSL_read(ssl.get(), buf, sizeof(buf)), 0);
  // The client asks to renegotiate: the server declines (RFC 5746's
  // no_renegotiation alert) and the new handshake never completes.
  ERR_clear_error();
  ASSERT_EQ(SSL_renegotiate(ssl.get()), 1);
  EXPECT_NE(SSL_do_handshake(ssl.get()), 1);
  EXPECT_THAT(DrainSslErrors(), HasSubstr("no renegotiation"));
  close(fd);
  EXPECT_TRUE(PingAs(*client_).ok());
}

TEST_F(TlsTest, PlaintextClientOnTheTlsPortRefused) {
  Start();
  const int fd = TcpConnect(server->tls_port());
  ASSERT_GE(fd, 0);
  const std::string ping = "{\"id\":1,\"op\":\"ping\"}\n";
  ASSERT_EQ(write(fd, ping.data(), ping.size()), static_cast<ssize_t>(ping.size()));
  std::string got;
  char buf[512];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  EXPECT_THAT(got, Not(HasSubstr("\"ok\"")));  // at most a TLS alert, never a reply
  EXPECT_THAT(WaitForLog("control.tls_refused"),
              ::testing::ContainsRegex(
                  "event=control.tls_refused peer=127.0.0.1:[0-9]+ reason=\"[^\"]*wrong version number"));
  // The Unix socket and TLS still serve.
  absl::StatusOr<Client> unix_client = Client::Connect(socket_path_, kTimeoutMs);
  ASSERT_TRUE(unix_client.ok());
  EXPECT_TRUE(unix_client->Call(R"({"id":1,"op":"ping"})").ok());
  EXPECT_TRUE(PingAs(*client_).ok());
}

TEST_F(TlsTest, StalledHandshakesTimeOutWithoutHoldingOthersUp) {
  ServerOptions options;
  options.tls = TlsOptions();
  options.tls->handshake_timeout_ms = 300;
  Start(options);
  std::vector<int> stalled;
  for (int i = 0; i < 50; ++i) {
    const int fd = TcpConnect(server->tls_port());
    ASSERT_GE(fd, 0);
    if (i % 2 == 0) {
      ASSERT_EQ(write(fd, "\x16\x03\x01", 3), 3);  // half a record header
    }
    stalled.push_back(fd);
  }
  const auto t = Clock::now();
  absl::StatusOr<Json> r = PingAs(*client_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(Clock::now() - t, std::chrono::seconds(1));
  // Each stalled client is closed once its time is up.
  for (int fd : stalled) {
    char c;
    EXPECT_EQ(recv(fd, &c, 1, 0), 0);
    close(fd);
  }
  EXPECT_LT(Clock::now() - t, std::chrono::seconds(3));
  Stop();
  EXPECT_EQ(server->counters().tls_handshake_timeouts, 50u);
  EXPECT_THAT(Log(), ::testing::ContainsRegex("event=control.tls_handshake_timeout peer=127.0.0.1:[0-9]+ "
                                               "timeout_ms=300"));
}

// Each listener has its own limit: TLS clients never take a Unix client's
// slot, nor the other way round.
TEST_F(TlsTest, EachListenerHasItsOwnConnectionLimit) {
  ServerOptions options;
  options.max_connections = 1;
  options.tls = TlsOptions();
  options.tls->max_connections = 1;
  Start(options);
  absl::StatusOr<Client> a = Client::ConnectTls(ClientOptions(*client_), kTimeoutMs);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(a->Call(R"({"id":1,"op":"ping"})").ok());
  absl::StatusOr<Client> b = Client::Connect(socket_path_, kTimeoutMs);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->Call(R"({"id":2,"op":"ping"})").ok()) << "the TLS client is not counted here";
  // Over its limit, a TLS client is told so once its handshake is done...
  absl::StatusOr<Client> c = Client::ConnectTls(ClientOptions(*client_), kTimeoutMs);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<std::string> line = c->ReadLine();
  ASSERT_TRUE(line.ok()) << line.status();
  const Json refused = Parse(*line);
  EXPECT_EQ(refused["ok"], false);
  EXPECT_EQ(refused["error"]["code"], "resource_exhausted");
  EXPECT_THAT(refused["error"]["message"].get<std::string>(), HasSubstr("at most 1 TLS clients"));
  EXPECT_FALSE(c->ReadLine().ok());  // and closed
  // ... and so is a Unix one over the Unix socket's.
  absl::StatusOr<Client> d = Client::Connect(socket_path_, kTimeoutMs);
  ASSERT_TRUE(d.ok());
  line = d->ReadLine();
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(Parse(*line)["error"]["code"], "resource_exhausted");
  // A freed TLS slot takes a TLS client again.
  *a = std::move(*d);  // closes the first TLS client
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  bool served = false;
  while (!served && Clock::now() < deadline) {
    absl::StatusOr<Json> r = PingAs(*client_);
    served = r.ok() && (*r)["ok"] == true;
  }
  EXPECT_TRUE(served);
  Stop();
  EXPECT_GE(server->counters().connections_refused_limit, 2u);
}

// Anyone who reaches the TLS port can open idle TCP connections: more than
// its limit leaves the Unix socket answering, and each is closed (and
// counted) when its handshake deadline passes, which frees the TLS listener.
TEST_F(TlsTest, IdleTcpConnectionsBeyondTheTlsLimitNeverLockOutTheUnixSocket) {
  constexpr int kTlsLimit = 8;
  constexpr int kIdle = kTlsLimit + 30;  // past the limit and the few told so
  ServerOptions options;
  options.max_connections = 2;
  options.tls = TlsOptions();
  options.tls->max_connections = kTlsLimit;
  options.tls->handshake_timeout_ms = 500;
  Start(options);
  std::vector<int> idle;
  for (int i = 0; i < kIdle; ++i) {
    const int fd = TcpConnect(server->tls_port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // Every idle connection has been accepted (or closed) by now.
  const auto full_by = Clock::now() + std::chrono::seconds(5);
  while (server->tls_connections() < kTlsLimit && Clock::now() < full_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(server->tls_connections(), static_cast<size_t>(kTlsLimit));
  const auto t = Clock::now();
  absl::StatusOr<Client> local = Client::Connect(socket_path_, kTimeoutMs);
  ASSERT_TRUE(local.ok()) << local.status();
  absl::StatusOr<std::string> reply = local->Call(R"({"id":1,"op":"ping"})");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(Parse(*reply)["ok"], true) << *reply;
  EXPECT_LT(Clock::now() - t, std::chrono::milliseconds(400)) << "answered before any deadline";
  // The handshake deadline closes them all.
  for (int fd : idle) {
    char ch;
    EXPECT_LE(recv(fd, &ch, 1, 0), 0);
    close(fd);
  }
  absl::StatusOr<Json> r = PingAs(*client_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["ok"], true);
  Stop();
  EXPECT_EQ(server->counters().tls_handshake_timeouts, static_cast<uint64_t>(kTlsLimit) + 16u)
      << "the clients within the limit and those waiting to be told";
}

// A served TLS client that goes silent is closed after idle_timeout_ms; one
// that keeps talking is not.
TEST_F(TlsTest, SilentServedTlsClientIsClosedAfterIdleTimeout) {
  ServerOptions options;
  options.tls = TlsOptions();
  options.tls->idle_timeout_ms = 300;
  Start(options);
  absl::StatusOr<Client> silent = Client::ConnectTls(ClientOptions(*client_), kTimeoutMs);
  ASSERT_TRUE(silent.ok()) << silent.status();
  ASSERT_TRUE(silent->Call(R"({"id":1,"op":"ping"})").ok());
  absl::StatusOr<Client> busy = Client::ConnectTls(ClientOptions(*client_), kTimeoutMs);
  ASSERT_TRUE(busy.ok()) << busy.status();
  const auto t = Clock::now();
  for (int i = 0; i < 8; ++i) {  // 800 ms of a ping every 100 ms
    ASSERT_TRUE(busy->Call(R"({"id":2,"op":"ping"})").ok()) << "ping " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(silent->ReadLine().ok()) << "closed";
  EXPECT_LT(Clock::now() - t, std::chrono::seconds(3));
  Stop();
  EXPECT_EQ(server->counters().tls_idle_timeouts, 1u);
  EXPECT_THAT(Log(), ::testing::ContainsRegex("event=control.tls_idle_closed peer=127.0.0.1:[0-9]+ "
                                               "idle_ms=300"));
}

TEST_F(TlsTest, CertificateExpiringWithin30DaysWarnsInLogAndStats) {
  const Issued soon = MakeCert(
      {.cn = "sluiced-soon", .san = {"DNS:sluice.test"}, .valid_until_s = 10L * 86400}, ca_,
      *dir_, "server-soon");
  ServerOptions options;
  options.tls = TlsOptions();
  options.tls->cert_file = soon.cert_file;
  options.tls->key_file = soon.key_file;
  Start(options);
  EXPECT_THAT(WaitForLog("warning"),
              HasSubstr("event=control.tls_certificate warning=\"the control TLS certificate "
                        "CN=sluiced-soon,O=Sluice tests expires at "));
  absl::StatusOr<Json> stats = [&]() -> absl::StatusOr<Json> {
    absl::StatusOr<Client> c = Client::ConnectTls(ClientOptions(*client_), kTimeoutMs);
    if (!c.ok()) return c.status();
    absl::StatusOr<std::string> reply = c->Call(R"({"id":1,"op":"stats"})");
    if (!reply.ok()) return reply.status();
    return Parse(*reply);
  }();
  ASSERT_TRUE(stats.ok()) << stats.status();
  Json& tls = (*stats)["control"]["tls"];
  ASSERT_TRUE(tls.contains("warning")) << stats->dump();
  EXPECT_THAT(tls["warning"].get<std::string>(),
              ::testing::ContainsRegex("expires at 20[0-9-]+T[0-9:]+Z, in (9|10) days"));
  const int64_t left = tls["certificate_not_after"].get<int64_t>() - time(nullptr);
  EXPECT_GT(left, 9L * 86400);
  EXPECT_LE(left, 10L * 86400);
}

TEST_F(TlsTest, StartRefusedForABadServerSetup) {
  const auto create = [&](TlsServerOptions tls) {
    ServerOptions options;
    options.socket_path = socket_path_;
    options.tls = std::move(tls);
    return Server::Create(ops_, std::move(options)).status();
  };
  TlsServerOptions tls = TlsOptions();
  tls.server_name = "other.test";
  absl::Status s = create(tls);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("has no subjectAltName matching control.tls.server_name "
                                     "\"other.test\" (clients check it); its names: sluiced, "
                                     "sluice.test, 127.0.0.1"));
  // The IP SAN counts for an address.
  tls = TlsOptions();
  tls.server_name = "127.0.0.1";
  EXPECT_TRUE(create(tls).ok());

  const Issued expired = MakeCert(
      {.cn = "old", .san = {"DNS:sluice.test"}, .valid_from_s = -86400 * 30, .valid_until_s = -60},
      ca_, *dir_, "server-expired");
  tls = TlsOptions();
  tls.cert_file = expired.cert_file;
  tls.key_file = expired.key_file;
  EXPECT_THAT(create(tls).message(), HasSubstr("control.tls.cert: the certificate CN=old,O=Sluice tests expired at"));

  tls = TlsOptions();
  tls.key_file = client_->key_file;  // another certificate's key
  EXPECT_THAT(create(tls).message(), HasSubstr("is not the key of"));

  const std::string open_key = *dir_ + "/open.key";
  std::filesystem::copy_file(server_->key_file, open_key,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(chmod(open_key.c_str(), 0644), 0);
  tls = TlsOptions();
  tls.key_file = open_key;
  s = create(tls);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("has mode 0644; other users must have no access"));
  ASSERT_EQ(chmod(open_key.c_str(), 0640), 0);  // group-readable is fine
  EXPECT_TRUE(create(tls).ok());

  tls = TlsOptions();
  tls.allowed_clients.clear();
  EXPECT_THAT(create(tls).message(), HasSubstr("allowed_clients is empty"));
  tls = TlsOptions();
  tls.listen = "localhost:7443";
  EXPECT_THAT(create(tls).message(), HasSubstr("is not an IP address"));
  tls.listen = "127.0.0.1";
  EXPECT_THAT(create(tls).message(), HasSubstr("expected HOST:PORT"));
}

TEST_F(TlsTest, ClientChecksTheServerName) {
  Start();
  TlsConnectOptions o = ClientOptions(*client_);
  o.server_name = "impostor.test";
  absl::StatusOr<Client> c = Client::ConnectTls(o, kTimeoutMs);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("hostname mismatch"));
  // A server certificate from another CA is refused too.
  o = ClientOptions(*client_);
  o.files.ca_file = other_ca_->cert_file;
  c = Client::ConnectTls(o, kTimeoutMs);
  ASSERT_FALSE(c.ok());
  // (The server sends its CA along with its certificate: the chain ends in
  // a root the client does not trust.)
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("the server's certificate: self-signed certificate in certificate chain"));
  // sluicectl's own key must be private too.
  const std::string open_key = *dir_ + "/client-open.key";
  std::filesystem::copy_file(client_->key_file, open_key,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(chmod(open_key.c_str(), 0604), 0);
  o = ClientOptions(*client_);
  o.files.key_file = open_key;
  c = Client::ConnectTls(o, kTimeoutMs);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("tls-key: private key " + open_key + " has mode 0604"));
  // The address itself is a name the certificate carries.
  o = ClientOptions(*client_);
  o.server_name = "";
  c = Client::ConnectTls(o, kTimeoutMs);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->Call(R"({"id":1,"op":"ping"})").ok());
}

TEST(SplitHostPort, Forms) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(SplitHostPort("127.0.0.1:7443", "x", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 7443);
  ASSERT_TRUE(SplitHostPort("[::1]:0", "x", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(SplitHostPort("sluice.example.net:1", "x", &host, &port).ok());
  EXPECT_EQ(host, "sluice.example.net");
  for (const char* bad : {"", ":1", "host", "host:", "::1:7443", "[::1]", "h:65536", "h:-1",
                          "h:+1", "[]:1"}) {
    EXPECT_FALSE(SplitHostPort(bad, "x", &host, &port).ok()) << bad;
  }
}

}  // namespace
}  // namespace sluice::control
