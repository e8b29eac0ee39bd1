// dtls::Endpoint against other DTLS-SRTP peers:
//  - GnuTLS (its own DTLS 1.2 state machine, its own RFC 5764 exporter), in
//    process, through memory, in both roles; GnuTLS 3.7 knows the two
//    AES-CM profiles.
//  - the openssl command (s_server, s_client) over UDP on loopback, for the
//    GCM profiles, comparing the keying material it prints.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/crypto/suite.h"
#include "sluice/dtls/certificate.h"
#include "sluice/dtls/endpoint.h"
#include "sluice/dtls/fingerprint.h"

namespace sluice::dtls {
namespace {

using Datagram = std::vector<uint8_t>;

// A GnuTLS DTLS 1.2 peer with a fresh ECDSA P-256 self-signed certificate.
class GnutlsPeer {
 public:
  GnutlsPeer(Role role, const char* profiles, unsigned int mtu) {
    Check(gnutls_certificate_allocate_credentials(&cred_));
    MakeCertificate();
    Check(gnutls_init(&session_, (role == Role::kClient ? GNUTLS_CLIENT : GNUTLS_SERVER) |
                                     GNUTLS_DATAGRAM | GNUTLS_NONBLOCK));
    Check(gnutls_priority_set_direct(session_, "NORMAL:-VERS-ALL:+VERS-DTLS1.2", nullptr));
    Check(gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, cred_));
    if (role == Role::kServer) gnutls_certificate_server_set_request(session_, GNUTLS_CERT_REQUIRE);
    Check(gnutls_srtp_set_profile_direct(session_, profiles, nullptr));
    gnutls_dtls_set_mtu(session_, mtu);
    gnutls_transport_set_ptr(session_, this);
    gnutls_transport_set_push_function(session_, Push);
    gnutls_transport_set_pull_function(session_, Pull);
    gnutls_transport_set_pull_timeout_function(session_, PullTimeout);
  }
  ~GnutlsPeer() {
    gnutls_deinit(session_);
    gnutls_certificate_free_credentials(cred_);
    gnutls_x509_crt_deinit(crt_);
    gnutls_x509_privkey_deinit(key_);
  }

  // 0 when done, GNUTLS_E_AGAIN while waiting, another error when failed.
  int Step() {
    if (result_ == GNUTLS_E_AGAIN) result_ = gnutls_handshake(session_);
    return result_;
  }
  void Feed(const Datagram& d) { incoming_.push_back(d); }
  std::vector<Datagram> TakeOutgoing() { return std::exchange(outgoing_, {}); }
  Datagram CertificateDer() const { return der_; }

  // The DER certificate the peer presented, as GnuTLS received it.
  Datagram PeerCertificateDer() const {
    unsigned int n = 0;
    const gnutls_datum_t* certs = gnutls_certificate_get_peers(session_, &n);
    if (certs == nullptr || n == 0) return {};
    return Datagram(certs[0].data, certs[0].data + certs[0].size);
  }

  struct Keys {
    Datagram client_key, client_salt, server_key, server_salt;
  };
  std::optional<Keys> SrtpKeys() {
    uint8_t material[128];
    gnutls_datum_t ck, cs, sk, ss;
    if (gnutls_srtp_get_keys(session_, material, sizeof material, &ck, &cs, &sk, &ss) < 0) {
      return std::nullopt;
    }
    auto bytes = [](const gnutls_datum_t& d) { return Datagram(d.data, d.data + d.size); };
    return Keys{bytes(ck), bytes(cs), bytes(sk), bytes(ss)};
  }
  std::optional<gnutls_srtp_profile_t> Profile() {
    gnutls_srtp_profile_t p;
    if (gnutls_srtp_get_selected_profile(session_, &p) < 0) return std::nullopt;
    return p;
  }

 private:
  static void Check(int rc) {
    if (rc < 0) throw std::runtime_error(gnutls_strerror(rc));
  }

  void MakeCertificate() {
    Check(gnutls_x509_privkey_init(&key_));
    Check(gnutls_x509_privkey_generate(key_, GNUTLS_PK_ECDSA,
                                       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
    Check(gnutls_x509_crt_init(&crt_));
    const unsigned char serial[] = {0x42};
    Check(gnutls_x509_crt_set_version(crt_, 3));
    Check(gnutls_x509_crt_set_serial(crt_, serial, sizeof serial));
    Check(gnutls_x509_crt_set_activation_time(crt_, std::time(nullptr) - 3600));
    Check(gnutls_x509_crt_set_expiration_time(crt_, std::time(nullptr) + 86400));
    Check(gnutls_x509_crt_set_dn_by_oid(crt_, GNUTLS_OID_X520_COMMON_NAME, 0, "gnutls", 6));
    Check(gnutls_x509_crt_set_key(crt_, key_));
    Check(gnutls_x509_crt_sign2(crt_, crt_, key_, GNUTLS_DIG_SHA256, 0));
    Check(gnutls_certificate_set_x509_key(cred_, &crt_, 1, key_));
    gnutls_datum_t der;
    Check(gnutls_x509_crt_export2(crt_, GNUTLS_X509_FMT_DER, &der));
    der_.assign(der.data, der.data + der.size);
    gnutls_free(der.data);
  }

  static ssize_t Push(gnutls_transport_ptr_t ptr, const void* data, size_t len) {
    auto* self = static_cast<GnutlsPeer*>(ptr);
    const auto* p = static_cast<const uint8_t*>(data);
    self->outgoing_.emplace_back(p, p + len);
    return static_cast<ssize_t>(len);
  }
  static ssize_t Pull(gnutls_transport_ptr_t ptr, void* data, size_t len) {
    auto* self = static_cast<GnutlsPeer*>(ptr);
    if (self->incoming_.empty()) {
      gnutls_transport_set_errno(self->session_, EAGAIN);
      return -1;
    }
    const Datagram d = std::move(self->incoming_.front());
    self->incoming_.pop_front();
    const size_t n = std::min(len, d.size());
    std::memcpy(data, d.data(), n);
    return static_cast<ssize_t>(n);
  }
  static int PullTimeout(gnutls_transport_ptr_t ptr, unsigned int /*ms*/) {
    return static_cast<GnutlsPeer*>(ptr)->incoming_.empty() ? 0 : 1;
  }

  gnutls_certificate_credentials_t cred_ = nullptr;
  gnutls_x509_privkey_t key_ = nullptr;
  gnutls_x509_crt_t crt_ = nullptr;
  gnutls_session_t session_ = nullptr;
  Datagram der_;
  std::deque<Datagram> incoming_;
  std::vector<Datagram> outgoing_;
  int result_ = GNUTLS_E_AGAIN;
};

const Certificate& SluiceCert() {
  static const Certificate cert = *Certificate::Generate();
  return cert;
}

// Runs Sluice's endpoint against the GnuTLS peer until both are done.
void RunHandshake(Endpoint& sluice, GnutlsPeer& gnutls, size_t* largest_datagram = nullptr) {
  sluice.Start(1000);
  for (int step = 0; step < 50; ++step) {
    for (Datagram& d : sluice.TakeOutgoing()) {
      if (largest_datagram) *largest_datagram = std::max(*largest_datagram, d.size());
      gnutls.Feed(d);
    }
    const int rc = gnutls.Step();
    for (Datagram& d : gnutls.TakeOutgoing()) sluice.Feed(d, 1000);
    const bool sluice_done = sluice.state() == State::kKeyed || sluice.state() == State::kFailed;
    if (sluice_done && rc != GNUTLS_E_AGAIN && sluice.TakeOutgoing().empty()) break;
  }
}

struct Case {
  Role sluice_role;
  SrtpProfile profile;
  const char* gnutls_profile;
  unsigned int mtu;
};

class InteropTest : public ::testing::TestWithParam<Case> {};

// Keyed on both sides with the same profile; each side's certificate seen
// by the other with the fingerprint Sluice computes; the keys Sluice
// exports are the ones GnuTLS derives, each in its place (RFC 5764 §4.2).
TEST_P(InteropTest, HandshakeAgreesWithGnutls) {
  const Case& c = GetParam();
  const Role peer_role = c.sluice_role == Role::kClient ? Role::kServer : Role::kClient;
  GnutlsPeer gnutls(peer_role, c.gnutls_profile, c.mtu);
  EndpointOptions o;
  o.role = c.sluice_role;
  o.peer_fingerprints = {ComputeFingerprint(gnutls.CertificateDer(), HashFunction::kSha256)};
  o.mtu = c.mtu;
  o.profiles = {c.profile};
  auto sluice = *Endpoint::Create(SluiceCert(), o);
  size_t largest = 0;
  RunHandshake(*sluice, gnutls, &largest);
  ASSERT_EQ(sluice->state(), State::kKeyed) << sluice->failure_reason();
  ASSERT_EQ(gnutls.Step(), 0) << gnutls_strerror(gnutls.Step());
  EXPECT_LE(largest, c.mtu);
  EXPECT_EQ(gnutls.Profile(), GetSrtpProfileInfo(c.profile).id);
  // GnuTLS's own SHA-256 of the certificate it received is Sluice's
  // fingerprint.
  const Datagram seen = gnutls.PeerCertificateDer();
  ASSERT_FALSE(seen.empty());
  uint8_t digest[32];
  size_t digest_len = sizeof digest;
  const gnutls_datum_t der = {const_cast<uint8_t*>(seen.data()), static_cast<unsigned>(seen.size())};
  ASSERT_EQ(gnutls_fingerprint(GNUTLS_DIG_SHA256, &der, digest, &digest_len), 0);
  const Fingerprint ours = SluiceCert().GetFingerprint();
  EXPECT_EQ(Datagram(digest, digest + digest_len),
            Datagram(ours.digest_bytes().begin(), ours.digest_bytes().end()));

  std::optional<GnutlsPeer::Keys> theirs = gnutls.SrtpKeys();
  std::optional<SrtpKeys> keys = sluice->TakeKeys();
  ASSERT_TRUE(theirs && keys);
  const bool client = c.sluice_role == Role::kClient;
  auto bytes = [](std::span<const uint8_t> s) { return Datagram(s.begin(), s.end()); };
  EXPECT_EQ(bytes(keys->send.key_bytes()), client ? theirs->client_key : theirs->server_key);
  EXPECT_EQ(bytes(keys->send.salt_bytes()), client ? theirs->client_salt : theirs->server_salt);
  EXPECT_EQ(bytes(keys->receive.key_bytes()), client ? theirs->server_key : theirs->client_key);
  EXPECT_EQ(bytes(keys->receive.salt_bytes()), client ? theirs->server_salt : theirs->client_salt);
}

INSTANTIATE_TEST_SUITE_P(
    Gnutls, InteropTest,
    ::testing::Values(
        Case{Role::kClient, SrtpProfile::kAes128CmSha1_80, "SRTP_AES128_CM_HMAC_SHA1_80", 1200},
        Case{Role::kServer, SrtpProfile::kAes128CmSha1_80, "SRTP_AES128_CM_HMAC_SHA1_80", 1200},
        Case{Role::kClient, SrtpProfile::kAes128CmSha1_32, "SRTP_AES128_CM_HMAC_SHA1_32", 1200},
        Case{Role::kServer, SrtpProfile::kAes128CmSha1_32, "SRTP_AES128_CM_HMAC_SHA1_32", 300},
        Case{Role::kClient, SrtpProfile::kAes128CmSha1_80, "SRTP_AES128_CM_HMAC_SHA1_80", 300}),
    [](const auto& info) {
      return std::string(RoleName(info.param.sluice_role)) + "_" +
             std::string(GetSrtpProfileInfo(info.param.profile).name) + "_mtu" +
             std::to_string(info.param.mtu);
    });

// A server that goes on without SRTP (RFC 5764 §4.1.1 lets it) is refused
// by Sluice's client before any key exists.
TEST(InteropTest, ClientRefusesAServerThatChoseNoProfile) {
  GnutlsPeer gnutls(Role::kServer, "SRTP_NULL_HMAC_SHA1_80", 1200);
  EndpointOptions o;
  o.role = Role::kClient;
  o.peer_fingerprints = {ComputeFingerprint(gnutls.CertificateDer(), HashFunction::kSha256)};
  auto sluice = *Endpoint::Create(SluiceCert(), o);
  RunHandshake(*sluice, gnutls);
  EXPECT_EQ(sluice->state(), State::kFailed);
  EXPECT_EQ(sluice->failure(), Failure::kNoCommonProfile);
  EXPECT_EQ(sluice->failure_reason(), "no common SRTP profile: the server chose none");
  EXPECT_FALSE(sluice->TakeKeys());
  EXPECT_LT(gnutls.Step(), 0);  // the alert ended GnuTLS's handshake too
}

TEST(InteropTest, GnutlsCertificateWithAnotherFingerprintIsRefused) {
  GnutlsPeer gnutls(Role::kServer, "SRTP_AES128_CM_HMAC_SHA1_80", 1200);
  EndpointOptions o;
  o.role = Role::kClient;
  o.peer_fingerprints = {SluiceCert().GetFingerprint()};  // not GnuTLS's
  auto sluice = *Endpoint::Create(SluiceCert(), o);
  RunHandshake(*sluice, gnutls);
  EXPECT_EQ(sluice->failure(), Failure::kFingerprintMismatch);
  EXPECT_FALSE(sluice->TakeKeys());
  EXPECT_LT(gnutls.Step(), 0);
}

// --- The openssl command over UDP on loopback.

extern "C" char** environ;

// An openssl s_server or s_client: stdin held open (they quit at its end),
// output to a file. Killed and reaped when destroyed.
class OpensslCommand {
 public:
  OpensslCommand(const std::vector<std::string>& args, const std::string& out_file)
      : out_file_(out_file) {
    int in[2];
    if (pipe(in) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_addclose(&actions, in[1]);
    posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "openssl", &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    stdin_ = in[1];
  }
  ~OpensslCommand() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    if (stdin_ >= 0) close(stdin_);
  }
  bool running() const { return pid_ > 0; }

  // The hex after "Keying material: " in its output, once printed.
  std::optional<std::string> KeyingMaterial() const {
    std::ifstream in(out_file_);
    std::string line;
    while (std::getline(in, line)) {
      const size_t at = line.find("Keying material: ");
      if (at != std::string::npos) return line.substr(at + 17);
    }
    return std::nullopt;
  }
  std::string Output() const {
    std::stringstream ss;
    ss << std::ifstream(out_file_).rdbuf();
    return ss.str();
  }

 private:
  std::string out_file_;
  pid_t pid_ = -1;
  int stdin_ = -1;
};

int UdpSocket(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

bool ConnectLoopback(int fd, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Drives the endpoint over the socket (connected, or connected to the first
// sender when `learn_peer`) until it is done and openssl has printed its
// keying material, or 5 s pass.
void RunOverUdp(Endpoint& e, int fd, bool learn_peer, const OpensslCommand& openssl) {
  const uint64_t end = NowMs() + 5000;
  e.Start(NowMs());
  while (NowMs() < end) {
    const bool done = e.state() == State::kKeyed || e.state() == State::kFailed;
    if (done && openssl.KeyingMaterial()) break;
    for (const Datagram& d : e.TakeOutgoing()) send(fd, d.data(), d.size(), 0);
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 20) == 1) {
      Datagram buf(kMaxDatagramLen + 1);
      sockaddr_in from{};
      socklen_t from_len = sizeof from;
      const ssize_t n =
          recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n > 0 && learn_peer) {
        learn_peer = !ConnectLoopback(fd, ntohs(from.sin_port));
      }
      if (n > 0) e.Feed(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)), NowMs());
    }
    e.OnTimer(NowMs());
  }
}

class OpensslCommandTest : public ::testing::TestWithParam<std::tuple<Role, SrtpProfile>> {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/sluice-dtls-openssl-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    const int rc = std::system(
        ("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=peer "
         "-days 1 -keyout " + dir_ + "/key.pem -out " + dir_ + "/cert.pem >/dev/null 2>&1")
            .c_str());
    if (rc != 0) GTEST_SKIP() << "no openssl command";
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string dir_;
};

// Sluice as client against s_server, or as server against s_client; the
// keying material openssl prints for the exporter is client key, server
// key, client salt, server salt (RFC 5764 §4.2), as Sluice placed it.
TEST_P(OpensslCommandTest, KeysMatchWhatOpensslExports) {
  const auto [role, profile] = GetParam();
  const absl::StatusOr<Certificate> peer_cert =
      Certificate::LoadPemFiles(dir_ + "/cert.pem", dir_ + "/key.pem");
  ASSERT_TRUE(peer_cert.ok()) << peer_cert.status();
  const crypto::SuiteInfo& suite = crypto::GetSuiteInfo(GetSrtpProfileInfo(profile).suite);
  const int material_len = 2 * suite.key_salt_len();
  uint16_t port = 0;
  const int fd = UdpSocket(&port);
  ASSERT_GE(fd, 0);
  const std::string name(GetSrtpProfileInfo(profile).name);
  std::vector<std::string> args = {"openssl", role == Role::kClient ? "s_server" : "s_client",
                                   "-dtls1_2", "-use_srtp", name, "-cert", dir_ + "/cert.pem",
                                   "-key", dir_ + "/key.pem", "-keymatexport",
                                   "EXTRACTOR-dtls_srtp", "-keymatexportlen",
                                   std::to_string(material_len)};
  uint16_t server_port = port;
  if (role == Role::kClient) {  // s_server on a port of its own
    const int probe = UdpSocket(&server_port);
    close(probe);
    args.insert(args.end(), {"-accept", absl::StrCat("127.0.0.1:", server_port), "-verify", "1",
                             "-naccept", "1"});
    ASSERT_TRUE(ConnectLoopback(fd, server_port));
  } else {
    args.insert(args.end(), {"-connect", absl::StrCat("127.0.0.1:", port)});
  }
  OpensslCommand openssl(args, dir_ + "/out.txt");
  ASSERT_TRUE(openssl.running());
  EndpointOptions o;
  o.role = role;
  o.peer_fingerprints = {peer_cert->GetFingerprint()};
  o.profiles = {profile};
  o.initial_retransmit_ms = 100;
  auto sluice = *Endpoint::Create(SluiceCert(), o);
  RunOverUdp(*sluice, fd, role == Role::kServer, openssl);
  close(fd);
  ASSERT_EQ(sluice->state(), State::kKeyed) << sluice->failure_reason() << openssl.Output();
  std::optional<std::string> hex = openssl.KeyingMaterial();
  ASSERT_TRUE(hex) << openssl.Output();
  const std::string material = absl::HexStringToBytes(*hex);
  ASSERT_EQ(material.size(), static_cast<size_t>(material_len));
  std::optional<SrtpKeys> keys = sluice->TakeKeys();
  ASSERT_TRUE(keys);
  const srtp::MasterKey& client = role == Role::kClient ? keys->send : keys->receive;
  const srtp::MasterKey& server = role == Role::kClient ? keys->receive : keys->send;
  auto hex_of = [](std::span<const uint8_t> s) {
    return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(s.data()), s.size()));
  };
  const std::string expected = hex_of(client.key_bytes()) + hex_of(server.key_bytes()) +
                               hex_of(client.salt_bytes()) + hex_of(server.salt_bytes());
  EXPECT_EQ(absl::BytesToHexString(material), expected);
}

INSTANTIATE_TEST_SUITE_P(
    Loopback, OpensslCommandTest,
    ::testing::Values(std::tuple{Role::kClient, SrtpProfile::kAeadAes128Gcm},
                      std::tuple{Role::kServer, SrtpProfile::kAeadAes256Gcm},
                      std::tuple{Role::kServer, SrtpProfile::kAes128CmSha1_80}),
    [](const auto& info) {
      return std::string(RoleName(std::get<0>(info.param))) + "_" +
             std::string(GetSrtpProfileInfo(std::get<1>(info.param)).name);
    });

}  // namespace
}  // namespace sluice::dtls
