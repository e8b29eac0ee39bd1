#include "sluice/config/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sluice::config {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// This file's directory. meson gives the compiler __FILE__ relative to the
// build directory, which is the working directory under `meson test` but not
// when the binary is run by hand; the build directory is then an ancestor of
// the binary.
std::filesystem::path SourceDir() {
  const std::filesystem::path file(__FILE__);
  if (file.is_absolute()) return file.parent_path();
  std::vector<std::filesystem::path> bases = {std::filesystem::current_path()};
  std::error_code ec;
  for (std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
       !ec && p.has_relative_path(); p = p.parent_path()) {
    bases.push_back(p);
  }
  for (const auto& base : bases) {
    if (std::filesystem::exists(base / file)) return (base / file).parent_path().lexically_normal();
  }
  return file.parent_path();
}

const std::filesystem::path kSourceDir = SourceDir();
const std::filesystem::path kConfigsDir = (kSourceDir / "../../configs").lexically_normal();
const std::filesystem::path kCorpusDir = (kSourceDir / "../fuzz/corpus/config").lexically_normal();

// Issue 4's example, verbatim.
constexpr absl::string_view kIssueExample = R"toml(
[eal]
args = ["-l", "0-1", "--no-huge", "-m", "1024", "--no-pci",
        "--vdev=net_af_packet0,iface=veth-a0", "--vdev=net_af_packet1,iface=veth-b0"]
[[interface]]
name = "a"                  # legs say which interface they live on
device = "net_af_packet0"   # DPDK port by device name: a vdev name or a PCI address
ipv4 = "10.200.1.1/24"      # and/or ipv6 = "fd00:1::1/64"
# gateway = "10.200.1.254"  # next hop for peers outside the subnet
[[interface]]
name = "b"
device = "net_af_packet1"
ipv4 = "10.200.2.1/24"
[workers]
lcores = [1]                # one poll-mode worker per lcore; the main lcore runs the control plane
[media]
port_min = 30000
port_max = 39999
replay_window = 128
rekey_overlap_ms = 2000
[control]
socket = "/run/sluice/control.sock"
[crypto]
backend = "auto"            # auto | ipsec-mb | openssl
)toml";

// A valid configuration with one interface; each part can be replaced or
// extended. `rest` may add tables and further [[interface]] entries.
std::string Cfg(absl::string_view iface_extra = "", absl::string_view rest = "",
                absl::string_view workers = "lcores = [1]\n") {
  return absl::StrCat("[[interface]]\nname = \"a\"\ndevice = \"net0\"\n", iface_extra,
                      "\n[workers]\n", workers, "\n", rest);
}
constexpr absl::string_view kIpv4 = "ipv4 = \"10.0.0.1/24\"\n";

std::string ErrorOf(absl::string_view text) {
  absl::StatusOr<Config> c = ParseConfig(text, "test.toml");
  if (c.ok()) return "OK";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
  return std::string(c.status().message());
}

packet::Prefix P(absl::string_view text) { return *packet::Prefix::Parse(text); }
packet::IpAddress A(absl::string_view text) { return *packet::IpAddress::Parse(text); }

TEST(ConfigTest, IssueExampleParses) {
  absl::StatusOr<Config> c = ParseConfig(kIssueExample, "issue.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eal_args, ElementsAre("-l", "0-1", "--no-huge", "-m", "1024", "--no-pci",
                                       "--vdev=net_af_packet0,iface=veth-a0",
                                       "--vdev=net_af_packet1,iface=veth-b0"));
  ASSERT_EQ(c->interfaces.size(), 2u);
  const InterfaceConfig& a = c->interfaces[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.device, "net_af_packet0");
  ASSERT_TRUE(a.ipv4.has_value());
  EXPECT_EQ(*a.ipv4, P("10.200.1.1/24"));
  EXPECT_FALSE(a.ipv6.has_value());
  EXPECT_FALSE(a.gateway.has_value());
  EXPECT_FALSE(a.gateway6.has_value());
  EXPECT_EQ(a.vlan, 0);
  EXPECT_EQ(a.mtu, 1500);
  EXPECT_EQ(a.rx_queues, 0);
  EXPECT_EQ(a.rx_ring_size, 1024);
  EXPECT_EQ(a.tx_ring_size, 1024);
  EXPECT_TRUE(a.checksum_offload);
  EXPECT_EQ(c->interfaces[1].name, "b");
  EXPECT_EQ(c->interfaces[1].device, "net_af_packet1");
  EXPECT_EQ(*c->interfaces[1].ipv4, P("10.200.2.1/24"));
  EXPECT_THAT(c->workers.lcores, ElementsAre(1u));
  EXPECT_EQ(c->workers.burst, 32);
  EXPECT_EQ(c->workers.stall_ms, 1000u);
  EXPECT_EQ(c->media.port_min, 30000);
  EXPECT_EQ(c->media.port_max, 39999);
  EXPECT_EQ(c->media.replay_window, 128u);
  EXPECT_EQ(c->media.rekey_overlap_ms, 2000u);
  EXPECT_EQ(c->control.socket, "/run/sluice/control.sock");
  EXPECT_EQ(c->crypto.backend, crypto::BackendKind::kAuto);
  EXPECT_EQ(c->source, "issue.toml");
}

TEST(ConfigTest, DefaultsApplyToMissingKeys) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(kIpv4), "min.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  const Config defaults;
  EXPECT_TRUE(c->eal_args.empty());
  EXPECT_EQ(c->workers.burst, defaults.workers.burst);
  EXPECT_EQ(c->media.port_min, defaults.media.port_min);
  EXPECT_EQ(c->media.port_max, defaults.media.port_max);
  EXPECT_EQ(c->media.replay_window, defaults.media.replay_window);
  EXPECT_EQ(c->media.rekey_overlap_ms, defaults.media.rekey_overlap_ms);
  EXPECT_EQ(c->media.max_ssrcs_per_leg, 4u);
  EXPECT_EQ(c->media.port_reuse_delay_s, 60u);
  EXPECT_EQ(c->media.learn_packets, 3u);
  EXPECT_EQ(c->media.ssrc_reuse_idle_ms, 10000u);
  EXPECT_FALSE(c->media.learn_before_answer);
  EXPECT_EQ(c->control.socket, "/run/sluice/control.sock");
  EXPECT_EQ(c->control.group, "");
  EXPECT_EQ(c->control.max_connections, 1024u);
  EXPECT_EQ(c->crypto.backend, crypto::BackendKind::kAuto);
  EXPECT_EQ(c->limits.max_sessions, 100000u);
  EXPECT_EQ(c->limits.mbufs, 0u);
  EXPECT_EQ(c->limits.leg_max_pps, 0u);
  EXPECT_EQ(c->limits.session_hugepages, memory::HugepageSource::kAuto);
}

TEST(ConfigTest, EveryKeyIsRead) {
  const std::string text = R"toml(
[eal]
args = ["-l", "0-3"]
[[interface]]
name = "core-1"
device = "0000:3b:00.0"
ipv4 = "192.0.2.10/24"
ipv6 = "2001:db8::10/64"
gateway = "192.0.2.1"
gateway6 = "fe80::1"
vlan = 4094
mtu = 9000
rx_queues = 3
rx_ring_size = 2048
tx_ring_size = 512
checksum_offload = false
[workers]
lcores = [3, 1, 2]
burst = 64
stall_ms = 250
[media]
port_min = 1024
port_max = 65535
replay_window = 1024
rekey_overlap_ms = 0
max_ssrcs_per_leg = 64
port_reuse_delay_s = 0
learn_packets = 1
ssrc_reuse_idle_ms = 1000
learn_before_answer = true
[control]
socket = "/tmp/s.sock"
group = "sluice"
max_connections = 7
[crypto]
backend = "openssl"
[limits]
max_sessions = 1
mbufs = 65536
leg_max_pps = 500
session_hugepages = "transparent"
)toml";
  absl::StatusOr<Config> c = ParseConfig(text, "all.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->interfaces.size(), 1u);
  const InterfaceConfig& i = c->interfaces[0];
  EXPECT_EQ(i.name, "core-1");
  EXPECT_EQ(i.device, "0000:3b:00.0");
  EXPECT_EQ(*i.ipv4, P("192.0.2.10/24"));
  EXPECT_EQ(*i.ipv6, P("2001:db8::10/64"));
  EXPECT_EQ(*i.gateway, A("192.0.2.1"));
  EXPECT_EQ(*i.gateway6, A("fe80::1"));
  EXPECT_EQ(i.vlan, 4094);
  EXPECT_EQ(i.mtu, 9000);
  EXPECT_EQ(i.rx_queues, 3);
  EXPECT_EQ(i.rx_ring_size, 2048);
  EXPECT_EQ(i.tx_ring_size, 512);
  EXPECT_FALSE(i.checksum_offload);
  EXPECT_THAT(c->workers.lcores, ElementsAre(3u, 1u, 2u));
  EXPECT_EQ(c->workers.burst, 64);
  EXPECT_EQ(c->workers.stall_ms, 250u);
  EXPECT_EQ(c->media.port_min, 1024);
  EXPECT_EQ(c->media.port_max, 65535);
  EXPECT_EQ(c->media.replay_window, 1024u);
  EXPECT_EQ(c->media.rekey_overlap_ms, 0u);
  EXPECT_EQ(c->media.max_ssrcs_per_leg, 64u);
  EXPECT_EQ(c->media.port_reuse_delay_s, 0u);
  EXPECT_EQ(c->media.learn_packets, 1u);
  EXPECT_EQ(c->media.ssrc_reuse_idle_ms, 1000u);
  EXPECT_TRUE(c->media.learn_before_answer);
  EXPECT_EQ(c->control.socket, "/tmp/s.sock");
  EXPECT_EQ(c->control.group, "sluice");
  EXPECT_EQ(c->control.max_connections, 7u);
  EXPECT_EQ(c->crypto.backend, crypto::BackendKind::kOpenssl);
  EXPECT_EQ(c->limits.max_sessions, 1u);
  EXPECT_EQ(c->limits.mbufs, 65536u);
  EXPECT_EQ(c->limits.leg_max_pps, 500u);
  EXPECT_EQ(c->limits.session_hugepages, memory::HugepageSource::kTransparent);
}

TEST(ConfigTest, CryptoBackendNames) {
  for (const auto& [name, kind] : {std::pair{"auto", crypto::BackendKind::kAuto},
                                   std::pair{"ipsec-mb", crypto::BackendKind::kIpsecMb},
                                   std::pair{"openssl", crypto::BackendKind::kOpenssl}}) {
    absl::StatusOr<Config> c =
        ParseConfig(Cfg(kIpv4, absl::StrCat("[crypto]\nbackend = \"", name, "\"\n")), "t");
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->crypto.backend, kind) << name;
  }
}

TEST(ConfigTest, DottedKeysAndInlineTablesAreTheSameTables) {
  const std::string text =
      "interface = [{name = \"a\", device = \"d0\", ipv4 = \"10.0.0.1/24\"}]\n"
      "workers.lcores = [2]\nmedia.port_min = 40000\nmedia.port_max = 40100\n";
  absl::StatusOr<Config> c = ParseConfig(text, "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->interfaces[0].device, "d0");
  EXPECT_THAT(c->workers.lcores, ElementsAre(2u));
  EXPECT_EQ(c->media.port_min, 40000);
  EXPECT_EQ(c->media.port_max, 40100);
}

TEST(ConfigTest, FindInterface) {
  absl::StatusOr<Config> c = ParseConfig(kIssueExample, "issue.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_NE(c->FindInterface("b"), nullptr);
  EXPECT_EQ(c->FindInterface("b")->device, "net_af_packet1");
  EXPECT_EQ(c->FindInterface("a"), &c->interfaces[0]);
  EXPECT_EQ(c->FindInterface("c"), nullptr);
  EXPECT_EQ(c->FindInterface(""), nullptr);
}

// --- Unknown tables and keys -------------------------------------------------

struct Case {
  std::string text;
  std::vector<std::string> expected;  // substrings of the message
};

void ExpectErrors(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    const std::string error = ErrorOf(c.text);
    EXPECT_NE(error, "OK") << c.text;
    for (const std::string& e : c.expected) {
      EXPECT_THAT(error, HasSubstr(e)) << c.text;
    }
  }
}

// --- [control.tls] -------------------------------------------------------------

constexpr absl::string_view kTls = R"toml([control.tls]
listen = "[::1]:7443"
cert = "/etc/sluice/server.pem"
key = "/etc/sluice/server.key"
ca = "/etc/sluice/ca.pem"
server_name = "sluice.example.net"
allowed_clients = ["sbc1.example.net", "sbc2"]
)toml";

TEST(ConfigTest, ControlTls) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(kIpv4), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->control.tls.has_value());
  c = ParseConfig(Cfg(kIpv4, kTls), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->control.tls.has_value());
  const ControlTlsConfig& tls = *c->control.tls;
  EXPECT_EQ(tls.listen.ToString(), "[::1]:7443");
  EXPECT_EQ(tls.cert, "/etc/sluice/server.pem");
  EXPECT_EQ(tls.key, "/etc/sluice/server.key");
  EXPECT_EQ(tls.ca, "/etc/sluice/ca.pem");
  EXPECT_EQ(tls.server_name, "sluice.example.net");
  EXPECT_THAT(tls.allowed_clients, ElementsAre("sbc1.example.net", "sbc2"));
  EXPECT_EQ(tls.handshake_timeout_ms, 5000u);
  EXPECT_EQ(tls.max_connections, 64u);
  EXPECT_EQ(tls.idle_timeout_ms, 300000u);
  c = ParseConfig(Cfg(kIpv4, absl::StrCat(kTls, "max_connections = 8\nidle_timeout_ms = 0\n")),
                  "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->control.tls->max_connections, 8u);
  EXPECT_EQ(c->control.tls->idle_timeout_ms, 0u);

  const auto with = [](absl::string_view from, absl::string_view to) {
    std::string text(kTls);
    text.replace(text.find(std::string(from)), from.size(), std::string(to));
    return Cfg(kIpv4, text);
  };
  ExpectErrors({
      {with("listen = \"[::1]:7443\"\n", ""), {"control.tls.listen: is required in [control.tls]"}},
      {with("allowed_clients = [\"sbc1.example.net\", \"sbc2\"]\n", ""),
       {"control.tls.allowed_clients: is required"}},
      {with("listen = \"[::1]:7443\"", "listen = \"localhost:7443\""),
       {"control.tls.listen: expected an IP address and a port"}},
      {with("listen = \"[::1]:7443\"", "listen = \"10.0.0.1\""),
       {"control.tls.listen: expected an IP address and a port"}},
      {with("cert = \"/etc/sluice/server.pem\"", "cert = \"\""), {"control.tls.cert: is empty"}},
      {with("[\"sbc1.example.net\", \"sbc2\"]", "[]"),
       {"control.tls.allowed_clients: expected a non-empty array"}},
      {with("[\"sbc1.example.net\", \"sbc2\"]", "[\"a\", 3]"),
       {"control.tls.allowed_clients: expected a non-empty array"}},
      {with("server_name", "name"), {"control.tls.name: unknown key"}},
      {Cfg(kIpv4, absl::StrCat(kTls, "handshake_timeout_ms = 50\n")),
       {"control.tls.handshake_timeout_ms: must be between 100 and 60000"}},
      {Cfg(kIpv4, absl::StrCat(kTls, "max_connections = 0\n")),
       {"control.tls.max_connections: must be between 1 and 65536; got 0"}},
      {Cfg(kIpv4, absl::StrCat(kTls, "idle_timeout_ms = 500\n")),
       {"control.tls.idle_timeout_ms: must be 0 (never) or between 1000 and 86400000; got 500"}},
      {Cfg(kIpv4, "[control]\ntls = 1\n"), {"control.tls: expected a table, got an integer"}},
  });
}

// --- [security] ----------------------------------------------------------------

TEST(ConfigTest, Security) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(kIpv4), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->security.core_dumps);
  EXPECT_EQ(c->security.user, "");
  // Every Debian system has the user nobody and the group nogroup.
  c = ParseConfig(Cfg(kIpv4, "[security]\ncore_dumps = true\nuser = \"nobody\"\n"
                             "group = \"nogroup\"\n"),
                  "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->security.core_dumps);
  EXPECT_EQ(c->security.user, "nobody");
  EXPECT_EQ(c->security.group, "nogroup");
  ExpectErrors({
      {Cfg(kIpv4, "[security]\ncore_dumps = 1\n"),
       {"security.core_dumps: expected true or false, got an integer"}},
      {Cfg(kIpv4, "[security]\nuser = \"no-such-user-sluice\"\n"),
       {"security.user: no user \"no-such-user-sluice\" on this system"}},
      {Cfg(kIpv4, "[security]\nuser = \"nobody\"\ngroup = \"no-such-group-sluice\"\n"),
       {"security.group: no group \"no-such-group-sluice\""}},
      {Cfg(kIpv4, "[security]\ngroup = \"nogroup\"\n"), {"security.group: a group is dropped to with a user"}},
      {Cfg(kIpv4, "[security]\nuid = 5\n"), {"security.uid: unknown key"}},
  });
}

TEST(ConfigTest, Metrics) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(kIpv4), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->metrics.has_value());  // off unless configured
  c = ParseConfig(Cfg(kIpv4, "[metrics]\nlisten = \"127.0.0.1:9464\"\n"), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->metrics.has_value());
  EXPECT_EQ(c->metrics->listen.ToString(), "127.0.0.1:9464");
  c = ParseConfig(Cfg(kIpv4, "[metrics]\nlisten = \"[::1]:9464\"\n"), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  c = ParseConfig(Cfg(kIpv4, "[metrics]\nlisten = \"10.0.0.1:9464\"\nallow_remote = true\n"), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->metrics->allow_remote);
  ExpectErrors({
      {Cfg(kIpv4, "[metrics]\nlisten = \"10.0.0.1:9464\"\n"),
       {"metrics.listen: 10.0.0.1:9464 is not a loopback address", "allow_remote = true"}},
      {Cfg(kIpv4, "[metrics]\nlisten = \"0.0.0.0:9464\"\n"), {"is not a loopback address"}},
      {Cfg(kIpv4, "[metrics]\nallow_remote = true\n"), {"metrics.listen: required"}},
      {Cfg(kIpv4, "[metrics]\nlisten = \"127.0.0.1\"\n"),
       {"metrics.listen: expected an address and TCP port"}},
      {Cfg(kIpv4, "[metrics]\nlisten = \"127.0.0.1:9464\"\npath = \"/x\"\n"),
       {"metrics.path: unknown key"}},
  });
}

TEST(ConfigTest, RequireEncryption) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(kIpv4), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->media.require_encryption, RequireEncryption::kNone);
  c = ParseConfig(Cfg(kIpv4, "[media]\nrequire_encryption = \"all-legs\"\n"), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->media.require_encryption, RequireEncryption::kAllLegs);
  c = ParseConfig(Cfg(kIpv4, "[media]\nrequire_encryption = \"one-leg\"\n"), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->media.require_encryption, RequireEncryption::kOneLeg);
  ExpectErrors({
      {Cfg(kIpv4, "[media]\nrequire_encryption = \"yes\"\n"),
       {"media.require_encryption: must be \"none\", \"one-leg\" or \"all-legs\"; got \"yes\""}},
      {Cfg(kIpv4, "[media]\nrequire_encryption = true\n"), {"media.require_encryption"}},
  });
}

TEST(ConfigTest, KeySettings) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(kIpv4), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->media.key_limit_warn_percent, 90u);
  EXPECT_EQ(c->security.key_reuse_window_s, 86400u);
  EXPECT_FALSE(c->security.allow_unlocked_keys);
  c = ParseConfig(Cfg(kIpv4, "[media]\nkey_limit_warn_percent = 50\n[security]\n"
                             "key_reuse_window_s = 0\nallow_unlocked_keys = true\n"),
                  "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->media.key_limit_warn_percent, 50u);
  EXPECT_EQ(c->security.key_reuse_window_s, 0u);
  EXPECT_TRUE(c->security.allow_unlocked_keys);
  ExpectErrors({
      {Cfg(kIpv4, "[media]\nkey_limit_warn_percent = 0\n"),
       {"media.key_limit_warn_percent: must be between 1 and 99"}},
      {Cfg(kIpv4, "[media]\nkey_limit_warn_percent = 100\n"),
       {"media.key_limit_warn_percent: must be between 1 and 99"}},
      {Cfg(kIpv4, "[security]\nkey_reuse_window_s = 2592001\n"),
       {"security.key_reuse_window_s: must be between 0 and 2592000"}},
      {Cfg(kIpv4, "[security]\nallow_unlocked_keys = \"yes\"\n"),
       {"security.allow_unlocked_keys: expected true or false"}},
  });
}

TEST(ConfigTest, Aes192Kdf) {
  absl::StatusOr<Config> c = ParseConfig(Cfg(kIpv4), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->media.aes192_kdf, crypto::Aes192Kdf::kRfc6188);
  c = ParseConfig(Cfg(kIpv4, "[media]\naes192_kdf = \"libsrtp-legacy\"\n"), "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->media.aes192_kdf, crypto::Aes192Kdf::kLibsrtpLegacy);
  ExpectErrors({
      {Cfg(kIpv4, "[media]\naes192_kdf = \"libsrtp\"\n"),
       {"media.aes192_kdf: must be \"rfc6188\" or \"libsrtp-legacy\"; got \"libsrtp\""}},
  });
}

TEST(ConfigTest, UnknownKeysNameTheFullPath) {
  const std::string two = absl::StrCat(
      "[[interface]]\nname = \"b\"\ndevice = \"net1\"\nipv4 = \"10.0.1.1/24\"\nipv5 = \"x\"\n");
  ExpectErrors({
      {Cfg(kIpv4, two), {"interface[1].ipv5: unknown key", "known keys: name, device"}},
      {Cfg(absl::StrCat(kIpv4, "speed = 10\n")), {"interface[0].speed: unknown key"}},
      {Cfg(kIpv4, "[media]\nport_minimum = 30000\n"), {"media.port_minimum: unknown key"}},
      {Cfg(kIpv4, "[control.http]\nport = 80\n"), {"control.http: unknown table"}},
      {Cfg(kIpv4, "[eal]\nargv = []\n"), {"eal.argv: unknown key"}},
      {Cfg(kIpv4, "[workers]\n"), {"invalid TOML"}},  // [workers] twice
      {Cfg(kIpv4, "[limits]\nmax_session = 1\n"), {"limits.max_session: unknown key"}},
      {Cfg(kIpv4, "[crypto]\nengine = \"openssl\"\n"), {"crypto.engine: unknown key"}},
      {Cfg(kIpv4, "[sessions]\nmax = 1\n"), {"sessions: unknown table", "known tables: eal"}},
      {absl::StrCat("port_min = 30000\n", Cfg(kIpv4)),
       {"port_min: unknown key at the top level; it belongs in [media]"}},
      {absl::StrCat("verbose = true\n", Cfg(kIpv4)), {"verbose: unknown key"}},
      {Cfg(kIpv4, "[media]\n\"port min\" = 1\n"), {"media.\"port min\": unknown key"}},
  });
}

TEST(ConfigTest, ErrorsNameTheLine) {
  const std::string text = Cfg(kIpv4, "[media]\nport_min = 30000\nport_max = 20\n");
  // [[interface]](1) name(2) device(3) ipv4(4) blank(5) [workers](6) lcores(7)
  // blank(8) [media](9) port_min(10) port_max(11).
  EXPECT_THAT(ErrorOf(text), HasSubstr("test.toml:11: media.port_max: must be between 1024"));
}

// --- Types -------------------------------------------------------------------------

TEST(ConfigTest, TypeErrorsNameKeyAndExpectedType) {
  ExpectErrors({
      {Cfg(kIpv4, "[media]\nport_min = \"30000\"\n"),
       {"media.port_min: expected an integer, got a string"}},
      {Cfg(kIpv4, "[media]\nreplay_window = 128.0\n"),
       {"media.replay_window: expected an integer, got a floating-point number"}},
      {Cfg(kIpv4, "[eal]\nargs = \"-l 0-1\"\n"),
       {"eal.args: expected an array of strings, got a string"}},
      {Cfg(kIpv4, "[eal]\nargs = [\"-l\", 1]\n"),
       {"eal.args[1]: expected a string, got an integer"}},
      {Cfg(kIpv4, "", "lcores = 1\n"), {"workers.lcores: expected an array"}},
      {Cfg(kIpv4, "", "lcores = [\"1\"]\n"),
       {"workers.lcores[0]: expected an lcore id (an integer), got a string"}},
      {Cfg(kIpv4, "", "lcores = [1]\nburst = true\n"),
       {"workers.burst: expected an integer, got a boolean"}},
      {"[interface]\nname = \"a\"\n[workers]\nlcores = [1]\n",
       {"interface: expected an array of tables, written [[interface]], got a table"}},
      {"interface = [1]\n[workers]\nlcores = [1]\n",
       {"interface[0]: expected a table, got an integer"}},
      {"interface = 1\n[workers]\nlcores = [1]\n", {"interface: expected an array of tables"}},
      {absl::StrCat("media = 5\n", Cfg(kIpv4)), {"media: expected a table, got an integer"}},
      {absl::StrCat("workers = \"1\"\n[[interface]]\nname=\"a\"\ndevice=\"d\"\n", kIpv4),
       {"workers: expected a table, got a string"}},
      {"[[interface]]\nname = 1\ndevice = \"d\"\n",
       {"interface[0].name: expected a string, got an integer"}},
      {"[[interface]]\nname = \"a\"\ndevice = [\"d\"]\n",
       {"interface[0].device: expected a string, got an array"}},
      {Cfg("ipv4 = 167772161\n"), {"interface[0].ipv4: expected a string, got an integer"}},
      {Cfg(absl::StrCat(kIpv4, "gateway = 1979-05-27\n")),
       {"interface[0].gateway: expected a string, got a date or time"}},
      {Cfg(absl::StrCat(kIpv4, "vlan = \"10\"\n")), {"interface[0].vlan: expected an integer"}},
      {Cfg(kIpv4, "[control]\nsocket = true\n"),
       {"control.socket: expected a string, got a boolean"}},
      {Cfg(kIpv4, "[control]\ngroup = 0\n"), {"control.group: expected a string, got an integer"}},
      {Cfg(kIpv4, "[control]\nmax_connections = {}\n"),
       {"control.max_connections: expected an integer, got a table"}},
      {Cfg(kIpv4, "[crypto]\nbackend = 1\n"),
       {"crypto.backend: expected a string, got an integer"}},
      {Cfg(kIpv4, "[limits]\nleg_max_pps = 1.5\n"), {"limits.leg_max_pps: expected an integer"}},
      {Cfg(kIpv4, "[limits]\nsession_hugepages = \"reserved\"\n"),
       {"limits.session_hugepages: expected \"auto\" or \"transparent\"; got \"reserved\""}},
      {Cfg(kIpv4, "[limits]\nmbufs = \"auto\"\n"),
       {"limits.mbufs: expected an integer, got a string"}},
  });
}

// --- Validation --------------------------------------------------------------------

TEST(ConfigTest, MediaValidation) {
  ExpectErrors({
      {Cfg(kIpv4, "[media]\nport_min = 30001\n"),
       {"media.port_min: must be even", "30000 or 30002"}},
      {Cfg(kIpv4, "[media]\nport_min = 1000\n"),
       {"media.port_min: must be between 1024 and 65535; got 1000"}},
      {Cfg(kIpv4, "[media]\nport_min = 1022\nport_max = 1023\n"),
       {"media.port_min: must be between 1024"}},
      {Cfg(kIpv4, "[media]\nport_max = 65536\n"),
       {"media.port_max: must be between 1024 and 65535"}},
      {Cfg(kIpv4, "[media]\nport_min = 40000\n"),
       {"media.port_min: media.port_min (40000) must be below media.port_max (39999)"}},
      {Cfg(kIpv4, "[media]\nport_min = 30000\nport_max = 30000\n"),
       {"media.port_max: media.port_min (30000) must be below"}},
      {Cfg(kIpv4, "[media]\nport_max = -5\n"),
       {"media.port_max: must be between 1024 and 65535; got -5"}},
      {Cfg(kIpv4, "[media]\nreplay_window = 100\n"),
       {"media.replay_window: must be a multiple of 64; got 100"}},
      {Cfg(kIpv4, "[media]\nreplay_window = 32\n"),
       {"media.replay_window: must be between 64 and 1024"}},
      {Cfg(kIpv4, "[media]\nreplay_window = 1088\n"),
       {"media.replay_window: must be between 64 and 1024"}},
      {Cfg(kIpv4, "[media]\nmax_ssrcs_per_leg = 0\n"),
       {"media.max_ssrcs_per_leg: must be between 1 and 64"}},
      {Cfg(kIpv4, "[media]\nmax_ssrcs_per_leg = 65\n"),
       {"media.max_ssrcs_per_leg: must be between 1 and 64"}},
      {Cfg(kIpv4, "[media]\nrekey_overlap_ms = 60001\n"),
       {"media.rekey_overlap_ms: must be between 0 and 60000"}},
      {Cfg(kIpv4, "[media]\nrekey_overlap_ms = -1\n"), {"media.rekey_overlap_ms: must be between"}},
      {Cfg(kIpv4, "[media]\nport_reuse_delay_s = 3601\n"),
       {"media.port_reuse_delay_s: must be between 0 and 3600"}},
      {Cfg(kIpv4, "[media]\nlearn_packets = 0\n"),
       {"media.learn_packets: must be between 1 and 1000"}},
      {Cfg(kIpv4, "[media]\nssrc_reuse_idle_ms = 999\n"),
       {"media.ssrc_reuse_idle_ms: must be between 1000 and 600000"}},
      {Cfg(kIpv4, "[media]\nssrc_reuse_idle_ms = 600001\n"),
       {"media.ssrc_reuse_idle_ms: must be between 1000 and 600000"}},
      {Cfg(kIpv4, "[media]\nlearn_before_answer = 1\n"),
       {"media.learn_before_answer: expected true or false"}},
  });
  EXPECT_EQ(ErrorOf(Cfg(kIpv4, "[media]\nport_min = 1024\nport_max = 1025\n")), "OK");
  EXPECT_EQ(ErrorOf(Cfg(kIpv4, "[media]\nreplay_window = 64\n")), "OK");
}

TEST(ConfigTest, InterfaceListValidation) {
  const std::string second =
      "[[interface]]\nname = \"b\"\ndevice = \"net1\"\nipv4 = \"10.0.1.1/24\"\n";
  ExpectErrors({
      {"[workers]\nlcores = [1]\n", {"interface: at least one [[interface]] is required"}},
      {"interface = []\n[workers]\nlcores = [1]\n",
       {"interface: at least one [[interface]] is required"}},
      {Cfg(kIpv4, "[[interface]]\nname = \"a\"\ndevice = \"net1\"\nipv4 = \"10.0.1.1/24\"\n"),
       {"interface[1].name: \"a\" is already the name of interface[0]"}},
      {Cfg(kIpv4, "[[interface]]\nname = \"b\"\ndevice = \"net0\"\nipv4 = \"10.0.1.1/24\"\n"),
       {"interface[1].device: \"net0\" is already the device of interface[0]"}},
      {Cfg(kIpv4, "[[interface]]\nname = \"b\"\ndevice = \"net1\"\nipv4 = \"10.0.0.1/16\"\n"),
       {"interface[1].ipv4: 10.0.0.1 is already an address of interface[0]"}},
      {Cfg("ipv6 = \"fd00::1/64\"\n",
           "[[interface]]\nname = \"b\"\ndevice = \"net1\"\nipv6 = \"fd00::1/48\"\n"),
       {"interface[1].ipv6: fd00::1 is already an address of interface[0]"}},
      {"[[interface]]\ndevice = \"net0\"\nipv4 = \"10.0.0.1/24\"\n",
       {"interface[0].name: required"}},
      {"[[interface]]\nname = \"a\"\nipv4 = \"10.0.0.1/24\"\n", {"interface[0].device: required"}},
      {"[[interface]]\nname = \"\"\ndevice = \"net0\"\n", {"interface[0].name: must be 1 to 64"}},
      {"[[interface]]\nname = \"a b\"\ndevice = \"net0\"\n",
       {"interface[0].name: must be 1 to 64"}},
      {"[[interface]]\nname = \"a\"\ndevice = \"\"\n",
       {"interface[0].device: must be a DPDK device name"}},
      {"[[interface]]\nname = \"a\"\ndevice = \"net_af_packet0,iface=x\"\n",
       {"interface[0].device: must be"}},
      {"[[interface]]\nname = \"a\\u0000b\"\ndevice = \"d\"\n",
       {"interface[0].name: contains a NUL character"}},
      {Cfg(""), {"interface[0].ipv4: an interface needs an address"}},
      {Cfg(kIpv4, second + "[[interface]]\nname = \"c\"\ndevice = \"net2\"\n"),
       {"interface[2].ipv4: an interface needs an address"}},
  });
  EXPECT_EQ(ErrorOf(Cfg(kIpv4, second)), "OK");
  EXPECT_EQ(ErrorOf(Cfg("ipv6 = \"fd00::1/64\"\n")), "OK");
}

TEST(ConfigTest, AddressValidation) {
  ExpectErrors({
      {Cfg("ipv4 = \"10.0.0.300/24\"\n"),
       {"interface[0].ipv4: not an address/prefix: \"10.0.0.300/24\""}},
      {Cfg("ipv4 = \"10.0.0.1\"\n"),
       {"interface[0].ipv4: not an address/prefix", "\"10.200.1.1/24\""}},
      {Cfg("ipv4 = \"10.0.0.1/33\"\n"), {"interface[0].ipv4: not an address/prefix"}},
      {Cfg("ipv4 = \"fd00::1/64\"\n"),
       {"interface[0].ipv4: expected an IPv4 address/prefix", "got IPv6"}},
      {Cfg("ipv6 = \"10.0.0.1/24\"\n"),
       {"interface[0].ipv6: expected an IPv6 address/prefix", "got IPv4"}},
      {Cfg("ipv4 = \"10.0.0.0/24\"\n"), {"interface[0].ipv4: 10.0.0.0 is the network address"}},
      {Cfg("ipv4 = \"10.0.0.255/24\"\n"),
       {"interface[0].ipv4: 10.0.0.255 is the broadcast address"}},
      {Cfg("ipv4 = \"0.0.0.0/0\"\n"), {"interface[0].ipv4: 0.0.0.0 is not a unicast address"}},
      {Cfg("ipv4 = \"239.1.1.1/24\"\n"), {"interface[0].ipv4: 239.1.1.1 is not a unicast address"}},
      {Cfg("ipv6 = \"::/0\"\n"), {"interface[0].ipv6: :: is not a unicast address"}},
      {Cfg("ipv6 = \"ff02::1/64\"\n"), {"interface[0].ipv6: ff02::1 is not a unicast address"}},
  });
  // /31 and /32 have no network or broadcast address (RFC 3021).
  EXPECT_EQ(ErrorOf(Cfg("ipv4 = \"10.0.0.0/31\"\n")), "OK");
  EXPECT_EQ(ErrorOf(Cfg("ipv4 = \"10.0.0.7/32\"\n")), "OK");
}

TEST(ConfigTest, GatewayValidation) {
  const std::string dual = "ipv4 = \"10.0.0.1/24\"\nipv6 = \"fd00:1::1/64\"\n";
  ExpectErrors({
      {Cfg(dual + "gateway = \"fd00:1::fe\"\n"),
       {"interface[0].gateway: expected an IPv4 address, got IPv6 fd00:1::fe", "gateway6"}},
      {Cfg(dual + "gateway6 = \"10.0.0.254\"\n"),
       {"interface[0].gateway6: expected an IPv6 address, got IPv4 10.0.0.254"}},
      {Cfg(dual + "gateway = \"10.0.1.254\"\n"),
       {"interface[0].gateway: 10.0.1.254 is outside this interface's subnet 10.0.0.1/24"}},
      {Cfg(dual + "gateway = \"10.0.0.1\"\n"),
       {"interface[0].gateway: 10.0.0.1 is this interface's own address"}},
      {Cfg(dual + "gateway = \"gw.example\"\n"), {"interface[0].gateway: not an IPv4 address"}},
      {Cfg(dual + "gateway6 = \"fd00:2::1\"\n"),
       {"interface[0].gateway6: fd00:2::1 is neither link-local", "fd00:1::1/64"}},
      {Cfg(dual + "gateway6 = \"fd00:1::1\"\n"),
       {"interface[0].gateway6: fd00:1::1 is this interface's own address"}},
      {Cfg("ipv6 = \"fd00:1::1/64\"\ngateway = \"10.0.0.254\"\n"),
       {"interface[0].gateway: set, but the interface has no ipv4"}},
      {Cfg("ipv4 = \"10.0.0.1/24\"\ngateway6 = \"fe80::1\"\n"),
       {"interface[0].gateway6: set, but the interface has no ipv6"}},
  });
  EXPECT_EQ(ErrorOf(Cfg(dual + "gateway = \"10.0.0.254\"\ngateway6 = \"fe80::1\"\n")), "OK");
  EXPECT_EQ(ErrorOf(Cfg(dual + "gateway6 = \"fd00:1::fe\"\n")), "OK");
}

TEST(ConfigTest, PortSettingsValidation) {
  const std::string v6 = "ipv6 = \"fd00::1/64\"\n";
  ExpectErrors({
      {Cfg(absl::StrCat(kIpv4, "vlan = 4095\n")),
       {"interface[0].vlan: must be between 0 and 4094; got 4095"}},
      {Cfg(absl::StrCat(kIpv4, "vlan = -1\n")), {"interface[0].vlan: must be between 0 and 4094"}},
      {Cfg(absl::StrCat(kIpv4, "mtu = 575\n")),
       {"interface[0].mtu: must be between 576 and 9000; got 575"}},
      {Cfg(absl::StrCat(kIpv4, "mtu = 9001\n")),
       {"interface[0].mtu: must be between 576 and 9000"}},
      {Cfg(v6 + "mtu = 1279\n"),
       {"interface[0].mtu: must be at least 1280 on an interface with ipv6"}},
      {Cfg(absl::StrCat(kIpv4, "rx_queues = 1025\n")),
       {"interface[0].rx_queues: must be between 0 and 1024"}},
      {Cfg(absl::StrCat(kIpv4, "rx_ring_size = 1000\n")),
       {"interface[0].rx_ring_size: must be a power of two"}},
      {Cfg(absl::StrCat(kIpv4, "tx_ring_size = 32\n")),
       {"interface[0].tx_ring_size: must be between 64 and 32768"}},
      {Cfg(absl::StrCat(kIpv4, "tx_ring_size = 65536\n")),
       {"interface[0].tx_ring_size: must be between 64 and 32768"}},
      {Cfg(absl::StrCat(kIpv4, "checksum_offload = \"no\"\n")),
       {"interface[0].checksum_offload: expected true or false, got a string"}},
  });
  EXPECT_EQ(ErrorOf(Cfg(absl::StrCat(kIpv4, "mtu = 576\n"))), "OK");
  EXPECT_EQ(ErrorOf(Cfg(v6 + "mtu = 1280\n")), "OK");
}

TEST(ConfigTest, WorkersValidation) {
  ExpectErrors({
      {Cfg(kIpv4, "", ""), {"workers.lcores: required"}},
      {"[[interface]]\nname = \"a\"\ndevice = \"d\"\nipv4 = \"10.0.0.1/24\"\n",
       {"workers.lcores: required"}},
      {Cfg(kIpv4, "", "lcores = []\n"), {"workers.lcores: at least one worker lcore is required"}},
      {Cfg(kIpv4, "", "lcores = [1, 2, 1]\n"),
       {"workers.lcores[2]: lcore 1 is already workers.lcores[0]"}},
      {Cfg(kIpv4, "", "lcores = [-1]\n"),
       {"workers.lcores[0]: must be an lcore id between 0 and 1023; got -1"}},
      {Cfg(kIpv4, "", "lcores = [1024]\n"), {"workers.lcores[0]: must be an lcore id"}},
      {Cfg(kIpv4, "", "lcores = [1]\nburst = 0\n"),
       {"workers.burst: must be between 1 and 64; got 0"}},
      {Cfg(kIpv4, "", "lcores = [1]\nburst = 65\n"), {"workers.burst: must be between 1 and 64"}},
      {Cfg(kIpv4, "", "lcores = [1]\nstall_ms = 5\n"),
       {"workers.stall_ms: must be between 10 and 600000; got 5"}},
  });
}

TEST(ConfigTest, ControlCryptoLimitsEalValidation) {
  ExpectErrors({
      {Cfg(kIpv4, "[control]\nsocket = \"run/sluice.sock\"\n"),
       {"control.socket: must be an absolute path", "\"run/sluice.sock\""}},
      {Cfg(kIpv4, "[control]\nsocket = \"\"\n"), {"control.socket: must be an absolute path"}},
      {Cfg(kIpv4, absl::StrCat("[control]\nsocket = \"/", std::string(107, 's'), "\"\n")),
       {"control.socket: must name a file in at most 107 bytes", "got 108 bytes"}},
      {Cfg(kIpv4, "[control]\nsocket = \"/run/sluice/\"\n"), {"control.socket: must name a file"}},
      {Cfg(kIpv4, "[control]\ngroup = \"sluice admins\"\n"),
       {"control.group: must be a group name"}},
      {Cfg(kIpv4, "[control]\nmax_connections = 0\n"),
       {"control.max_connections: must be between 1"}},
      {Cfg(kIpv4, "[crypto]\nbackend = \"aesni\"\n"),
       {"crypto.backend: expected \"auto\", \"ipsec-mb\" or \"openssl\"; got \"aesni\""}},
      {Cfg(kIpv4, "[limits]\nmax_sessions = 0\n"),
       {"limits.max_sessions: must be between 1 and 4294967295; got 0"}},
      {Cfg(kIpv4, "[limits]\nmax_sessions = 4294967296\n"),
       {"limits.max_sessions: must be between 1 and 4294967295"}},
      {Cfg(kIpv4, "[limits]\nleg_max_pps = -1\n"), {"limits.leg_max_pps: must be between 0"}},
      {Cfg(kIpv4, "[eal]\nargs = [\"-l\", \"\"]\n"), {"eal.args[1]: is empty"}},
      {Cfg(kIpv4, "[eal]\nargs = [\"-l\\u0000x\"]\n"), {"eal.args[0]: contains a NUL character"}},
  });
  EXPECT_EQ(
      ErrorOf(Cfg(kIpv4, absl::StrCat("[control]\nsocket = \"/", std::string(106, 's'), "\"\n"))),
      "OK");
  EXPECT_EQ(ErrorOf(Cfg(kIpv4, "[eal]\nargs = []\n")), "OK");
}

// --- Syntax, size and nesting ---------------------------------------------------

TEST(ConfigTest, SyntaxErrorsGiveLineAndColumnWithoutTheText) {
  const std::string missing_value = ErrorOf("[media]\nport_min = \n");
  EXPECT_THAT(missing_value, AllOf(HasSubstr("test.toml:2:12: invalid TOML"),
                                   HasSubstr("missing value"), HasSubstr("line 2, column 12")));

  // The offending line's text is not repeated: it could hold a value that
  // must not reach a log.
  const std::string unterminated = ErrorOf("[control]\ngroup = \"hunter2-not-a-secret\n");
  EXPECT_THAT(unterminated, AllOf(HasSubstr("test.toml:2:"), HasSubstr("invalid TOML"),
                                  Not(HasSubstr("hunter2"))));

  const std::string twice = ErrorOf("[media]\nport_min = 30000\nport_min = 30002\n");
  EXPECT_THAT(twice, AllOf(HasSubstr("test.toml:3:"), HasSubstr("already exists"),
                           Not(HasSubstr("30002"))));

  EXPECT_THAT(ErrorOf("[media\n"), HasSubstr("test.toml:1:"));
  // toml11 saturates an integer that overflows 64 bits; the range check still refuses it.
  EXPECT_THAT(ErrorOf(Cfg(kIpv4, "[media]\nport_min = 99999999999999999999\n")),
              HasSubstr("media.port_min: must be between 1024 and 65535"));
  EXPECT_THAT(ErrorOf("= 1\n"), HasSubstr("test.toml:1:1: invalid TOML"));
}

TEST(ConfigTest, DeepNestingIsRefusedBeforeParsing) {
  EXPECT_THAT(ErrorOf(absl::StrCat("a = ", std::string(100000, '['))),
              HasSubstr("test.toml:1: nested deeper than 16 levels"));
  std::string inline_tables = "a = ";
  for (int i = 0; i < 5000; ++i) inline_tables += "{b=";
  EXPECT_THAT(ErrorOf(inline_tables), HasSubstr("nested deeper"));
  std::string dotted = "\n\na";
  for (int i = 0; i < 100000; ++i) dotted += ".a";
  EXPECT_THAT(ErrorOf(dotted + " = 1\n"), HasSubstr("test.toml:3: nested deeper"));
  // Brackets and dots in strings and comments do not count.
  EXPECT_EQ(ErrorOf(Cfg(kIpv4, absl::StrCat("# ", std::string(100, '['), "\n[eal]\nargs = [\"",
                                            std::string(100, '{'), std::string(100, '.'), "\", '''",
                                            std::string(100, '['), "''']\n"))),
            "OK");
}

TEST(ConfigTest, InvalidUtf8IsRefusedBeforeParsing) {
  // A literal string holding invalid UTF-8 once made toml11 read out of bounds.
  EXPECT_THAT(ErrorOf("[eal]\nargs = ['c.d.e.\x9a\xd2g']\n"),
              HasSubstr("test.toml:2:16: not valid UTF-8"));
  EXPECT_THAT(ErrorOf("a = \"\xc0\xaf\"\n"),
              HasSubstr("test.toml:1:6: not valid UTF-8"));                          // overlong
  EXPECT_THAT(ErrorOf("a = \"\xed\xa0\x80\"\n"), HasSubstr("not valid UTF-8"));      // surrogate
  EXPECT_THAT(ErrorOf("a = \"\xf4\x90\x80\x80\"\n"), HasSubstr("not valid UTF-8"));  // > U+10FFFF
  EXPECT_THAT(ErrorOf("# \xe2\x82\n"), HasSubstr("not valid UTF-8"));                // truncated
  // Valid UTF-8 in comments and strings is fine, and so is a byte-order mark.
  EXPECT_EQ(ErrorOf(absl::StrCat("\xef\xbb\xbf# caf\xc3\xa9 \xf0\x9f\x93\x9e\n",
                                 Cfg(kIpv4, "[eal]\nargs = [\"--file-prefix=\xe2\x82\xac\"]\n"))),
            "OK");
}

TEST(ConfigTest, OversizedInputIsRefused) {
  const std::string big(kMaxConfigBytes + 1, '\n');
  EXPECT_THAT(ErrorOf(big), HasSubstr("too large"));
  // toml11 is quadratic in the length of a line with many values.
  EXPECT_THAT(ErrorOf(absl::StrCat("\n[eal]\nargs = [", std::string(5000, ' '), "]\n")),
              HasSubstr("test.toml:3: line longer than 4096 bytes"));
  EXPECT_EQ(ErrorOf(Cfg(kIpv4, absl::StrCat("[eal]\nargs = [", std::string(4000, ' '), "]\n"))),
            "OK");
}

TEST(ConfigTest, EmptyInputNeedsInterfaces) {
  EXPECT_THAT(ErrorOf(""), HasSubstr("interface: at least one"));
}

// --- Files ------------------------------------------------------------------------------

TEST(ConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<Config> c = LoadConfigFile("/nonexistent/sluice.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("/nonexistent/sluice.toml: cannot open"));
}

TEST(ConfigTest, DirectoryIsRefused) {
  absl::StatusOr<Config> c = LoadConfigFile(kConfigsDir.string());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("not a regular file"));
}

TEST(ConfigTest, FileErrorsNameTheFile) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     absl::StrCat("sluice_config_test_", getpid(), ".toml");
  {
    std::ofstream out(path);
    out << Cfg(kIpv4, "[media]\nport_min = 3\n");
  }
  absl::StatusOr<Config> c = LoadConfigFile(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr(absl::StrCat(path.string(), ":10: media.port_min")));
}

TEST(ConfigTest, EveryExampleConfigLoads) {
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kConfigsDir)) {
    if (entry.path().extension() != ".toml") continue;
    absl::StatusOr<Config> c = LoadConfigFile(entry.path().string());
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->source, entry.path().string());
    EXPECT_FALSE(c->interfaces.empty());
    ++loaded;
  }
  EXPECT_GE(loaded, 2);
}

TEST(ConfigTest, ServerExampleHasWhatItSays) {
  absl::StatusOr<Config> c = LoadConfigFile((kConfigsDir / "sluice.toml").string());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->interfaces.size(), 2u);
  EXPECT_EQ(c->interfaces[0].device, "0000:3b:00.0");
  EXPECT_TRUE(c->interfaces[0].ipv6.has_value());
  EXPECT_TRUE(c->interfaces[0].gateway6.has_value());
  EXPECT_EQ(c->interfaces[1].vlan, 120);
  EXPECT_EQ(c->workers.lcores.size(), 8u);
  EXPECT_EQ(c->interfaces[0].rx_queues, 8);
  EXPECT_EQ(c->limits.leg_max_pps, 2000u);
  ASSERT_TRUE(c->metrics.has_value());
  EXPECT_EQ(c->metrics->listen.ToString(), "127.0.0.1:9464");
}

TEST(ConfigTest, LaptopExampleUsesVirtualDevices) {
  absl::StatusOr<Config> c = LoadConfigFile((kConfigsDir / "laptop.toml").string());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eal_args, ::testing::Contains("--no-huge"));
  EXPECT_EQ(c->interfaces[0].device, "net_af_packet0");
  EXPECT_EQ(c->workers.lcores.size(), 1u);
}

// The fuzz corpus: files named valid_* load, invalid_* are refused, and none
// of them crashes or throws.
TEST(ConfigTest, FuzzCorpusVerdicts) {
  int valid = 0;
  int invalid = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kCorpusDir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string name = entry.path().filename().string();
    absl::StatusOr<Config> c = ParseConfig(text, name);
    if (name.rfind("valid_", 0) == 0) {
      EXPECT_TRUE(c.ok()) << name << ": " << c.status();
      ++valid;
    } else if (name.rfind("invalid_", 0) == 0) {
      EXPECT_FALSE(c.ok()) << name;
      ++invalid;
    }
  }
  EXPECT_GE(valid, 3);
  EXPECT_GE(invalid, 10);
}

TEST(ConfigTest, MediaTimeouts) {
  // rtpengine's defaults: --timeout 60, --silent-timeout 3600, no final timeout.
  absl::StatusOr<Config> c = ParseConfig(Cfg(kIpv4), "min.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->media.timeout_s, 60u);
  EXPECT_EQ(c->media.silent_timeout_s, 3600u);
  EXPECT_EQ(c->media.final_timeout_s, 0u);
  c = ParseConfig(
      Cfg(kIpv4, "[media]\ntimeout_s = 0\nsilent_timeout_s = 2\nfinal_timeout_s = 2592000\n"),
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->media.timeout_s, 0u);
  EXPECT_EQ(c->media.silent_timeout_s, 2u);
  EXPECT_EQ(c->media.final_timeout_s, 2592000u);
  ExpectErrors({
      {Cfg(kIpv4, "[media]\ntimeout_s = -1\n"), {"media.timeout_s: must be between 0 and 2592000"}},
      {Cfg(kIpv4, "[media]\nsilent_timeout_s = 2592001\n"),
       {"media.silent_timeout_s: must be between 0 and 2592000"}},
      {Cfg(kIpv4, "[media]\nfinal_timeout_s = \"1h\"\n"), {"media.final_timeout_s"}},
  });
}

}  // namespace
}  // namespace sluice::config
