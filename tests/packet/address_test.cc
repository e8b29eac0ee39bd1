#include "sluice/packet/address.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace sluice::packet {
namespace {

TEST(IpAddress, ParsesIpv4) {
  auto a = IpAddress::Parse("10.200.1.1");
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(a->is_v4());
  EXPECT_FALSE(a->is_v6());
  EXPECT_EQ(a->v4_host_order(), 0x0ac80101u);
  EXPECT_EQ(a->bytes[0], 10);
  EXPECT_EQ(a->bytes[3], 1);
  for (size_t i = 4; i < 16; ++i) EXPECT_EQ(a->bytes[i], 0) << i;
  EXPECT_EQ(*a, IpAddress::V4(0x0ac80101));
  EXPECT_EQ(a->size(), 4u);
  EXPECT_EQ(a->ToString(), "10.200.1.1");
}

TEST(IpAddress, ParsesIpv6) {
  auto a = IpAddress::Parse("fd00:1::1");
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(a->is_v6());
  EXPECT_EQ(a->bytes[0], 0xfd);
  EXPECT_EQ(a->bytes[3], 0x01);
  EXPECT_EQ(a->bytes[15], 0x01);
  EXPECT_EQ(a->size(), 16u);
  EXPECT_EQ(a->ToString(), "fd00:1::1");
  // inet_ntop's canonical form (RFC 5952): lower case, longest zero run.
  EXPECT_EQ(IpAddress::Parse("FD00:0000:0000:0000:0000:0000:0000:0001")->ToString(), "fd00::1");
  EXPECT_EQ(IpAddress::Parse("::")->ToString(), "::");
  EXPECT_EQ(IpAddress::Parse("::ffff:10.0.0.1")->ToString(), "::ffff:10.0.0.1");
  EXPECT_TRUE(IpAddress::Parse("::ffff:10.0.0.1")->is_v6());
}

TEST(IpAddress, RefusesBadInput) {
  for (absl::string_view bad :
       {"", " ", "10.0.0", "10.0.0.256", "10.0.0.1 ", " 10.0.0.1", "10.0.0.1/24",
        "010.0.0.1", "0x0a.0.0.1", "10.0.0.1.2", "1", "fd00::1::2", "fd00::g", "[fd00::1]",
        "fe80::1%eth0", "10.0.0.1:80", "localhost",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).has_value()) << "'" << bad << "'";
  }
  // An embedded NUL must not let "10.0.0.1\0junk" through.
  EXPECT_FALSE(IpAddress::Parse(absl::string_view("10.0.0.1\0junk", 13)).has_value());
  // Longer than any address text.
  EXPECT_FALSE(IpAddress::Parse(std::string(1000, '1')).has_value());
}

TEST(IpAddress, BytesConstructorsAndEquality) {
  const uint8_t v4[4] = {192, 0, 2, 7};
  const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
  EXPECT_EQ(IpAddress::V4Bytes(v4), *IpAddress::Parse("192.0.2.7"));
  EXPECT_EQ(IpAddress::V6Bytes(v6), *IpAddress::Parse("2001:db8::7"));
  EXPECT_NE(IpAddress::V4Bytes(v4), *IpAddress::Parse("192.0.2.8"));
  // Same leading bytes, different family.
  const uint8_t v6_like_v4[16] = {192, 0, 2, 7};
  EXPECT_NE(IpAddress::V4Bytes(v4), IpAddress::V6Bytes(v6_like_v4));
  IpAddress unset;
  EXPECT_TRUE(unset.unset());
  EXPECT_EQ(unset.size(), 0u);
  EXPECT_EQ(unset.ToString(), "unset");
}

TEST(IpAddress, Hashes) {
  absl::flat_hash_set<IpAddress> set;
  set.insert(*IpAddress::Parse("10.0.0.1"));
  set.insert(*IpAddress::Parse("10.0.0.1"));
  set.insert(*IpAddress::Parse("::a00:1"));
  EXPECT_EQ(set.size(), 2u);
}

TEST(Endpoint, ParsesAndFormatsBothFamilies) {
  auto e = Endpoint::Parse("10.200.1.1:30000");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->ip, *IpAddress::Parse("10.200.1.1"));
  EXPECT_EQ(e->port, 30000);
  EXPECT_EQ(e->ToString(), "10.200.1.1:30000");

  auto e6 = Endpoint::Parse("[fd00:1::1]:65535");
  ASSERT_TRUE(e6.has_value());
  EXPECT_EQ(e6->ip, *IpAddress::Parse("fd00:1::1"));
  EXPECT_EQ(e6->port, 65535);
  EXPECT_EQ(e6->ToString(), "[fd00:1::1]:65535");

  EXPECT_EQ(Endpoint::Parse("1.2.3.4:1")->port, 1);
  EXPECT_EQ(*Endpoint::Parse(Endpoint::Parse("[::1]:5060")->ToString()),
            *Endpoint::Parse("[::1]:5060"));
}

TEST(Endpoint, RefusesBadInput) {
  for (absl::string_view bad :
       {"", ":", "10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:99999",
        "10.0.0.1:123456", "10.0.0.1:-1", "10.0.0.1:+80", "10.0.0.1: 80", "10.0.0.1:80 ",
        "10.0.0.1:8o", "10.0.0.1:080", "10.0.0.1:0x50", "10.0.0:80", ":80", "fd00::1:80",
        "fd00::1", "[fd00::1]", "[fd00::1]:", "[fd00::1]80", "[fd00::1]:0", "[fd00::1:80",
        "fd00::1]:80", "[10.0.0.1]:80", "[]:80", "[[::1]]:80", "[::1]:80:80",
        "10.0.0.1:80:80", "host:80"}) {
    EXPECT_FALSE(Endpoint::Parse(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(Endpoint, PortZeroFromTheWireStillPrints) {
  Endpoint e;
  e.ip = IpAddress::V4(0x7f000001);
  EXPECT_EQ(e.ToString(), "127.0.0.1:0");
  absl::flat_hash_set<Endpoint> set{e, e};
  EXPECT_EQ(set.size(), 1u);
}

TEST(Prefix, ParsesAndFormats) {
  auto p = Prefix::Parse("10.200.1.1/24");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->ip, *IpAddress::Parse("10.200.1.1"));  // host bits kept
  EXPECT_EQ(p->length, 24);
  EXPECT_EQ(p->ToString(), "10.200.1.1/24");

  auto p6 = Prefix::Parse("fd00:1::1/64");
  ASSERT_TRUE(p6.has_value());
  EXPECT_EQ(p6->length, 64);
  EXPECT_EQ(p6->ToString(), "fd00:1::1/64");

  EXPECT_TRUE(Prefix::Parse("0.0.0.0/0").has_value());
  EXPECT_TRUE(Prefix::Parse("10.0.0.1/32").has_value());
  EXPECT_TRUE(Prefix::Parse("::/0").has_value());
  EXPECT_TRUE(Prefix::Parse("::1/128").has_value());
}

TEST(Prefix, RefusesBadInput) {
  for (absl::string_view bad :
       {"", "/", "10.0.0.1", "10.0.0.1/", "10.0.0.1/33", "10.0.0.1/-1", "10.0.0.1/+8",
        "10.0.0.1/08", "10.0.0.1/ 8", "10.0.0.1/8 ", "10.0.0.1/1000", "/24", "10.0.0/24",
        "fd00::1/129", "fd00::1/256", "fd00::1/1280", "[fd00::1]/64", "10.0.0.1/24/24",
        "10.0.0.1/255.255.255.0"}) {
    EXPECT_FALSE(Prefix::Parse(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(Prefix, ContainsIpv4) {
  auto p = *Prefix::Parse("10.200.1.1/24");
  EXPECT_TRUE(p.Contains(*IpAddress::Parse("10.200.1.1")));
  EXPECT_TRUE(p.Contains(*IpAddress::Parse("10.200.1.0")));
  EXPECT_TRUE(p.Contains(*IpAddress::Parse("10.200.1.255")));
  EXPECT_FALSE(p.Contains(*IpAddress::Parse("10.200.2.1")));
  EXPECT_FALSE(p.Contains(*IpAddress::Parse("11.200.1.1")));
  EXPECT_FALSE(p.Contains(*IpAddress::Parse("::ffff:10.200.1.1")));  // other family
  EXPECT_FALSE(p.Contains(IpAddress{}));

  auto odd = *Prefix::Parse("192.168.0.0/23");  // a length that splits a byte
  EXPECT_TRUE(odd.Contains(*IpAddress::Parse("192.168.1.200")));
  EXPECT_FALSE(odd.Contains(*IpAddress::Parse("192.168.2.0")));

  auto all = *Prefix::Parse("0.0.0.0/0");
  EXPECT_TRUE(all.Contains(*IpAddress::Parse("203.0.113.9")));
  EXPECT_FALSE(all.Contains(*IpAddress::Parse("::1")));

  auto host = *Prefix::Parse("10.0.0.1/32");
  EXPECT_TRUE(host.Contains(*IpAddress::Parse("10.0.0.1")));
  EXPECT_FALSE(host.Contains(*IpAddress::Parse("10.0.0.0")));
}

TEST(Prefix, ContainsIpv6) {
  auto p = *Prefix::Parse("fd00:1::1/64");
  EXPECT_TRUE(p.Contains(*IpAddress::Parse("fd00:1::abcd")));
  EXPECT_TRUE(p.Contains(*IpAddress::Parse("fd00:1:0:0:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(p.Contains(*IpAddress::Parse("fd00:1:0:1::1")));
  EXPECT_FALSE(p.Contains(*IpAddress::Parse("10.0.0.1")));

  auto odd = *Prefix::Parse("2001:db8::/33");
  EXPECT_TRUE(odd.Contains(*IpAddress::Parse("2001:db8:7fff::1")));
  EXPECT_FALSE(odd.Contains(*IpAddress::Parse("2001:db8:8000::1")));

  auto host = *Prefix::Parse("::1/128");
  EXPECT_TRUE(host.Contains(*IpAddress::Parse("::1")));
  EXPECT_FALSE(host.Contains(*IpAddress::Parse("::2")));
  EXPECT_TRUE(Prefix::Parse("::/0")->Contains(*IpAddress::Parse("fe80::1")));
}

TEST(Prefix, AHandBuiltPrefixWithABadLengthContainsNothing) {
  Prefix p;
  p.ip = *IpAddress::Parse("10.0.0.1");
  p.length = 200;
  EXPECT_FALSE(p.Contains(*IpAddress::Parse("10.0.0.1")));
}

}  // namespace
}  // namespace sluice::packet
