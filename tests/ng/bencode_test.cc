#include "sluice/ng/bencode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace sluice::ng {
namespace {

using ::testing::HasSubstr;

std::string S(const String& s) { return std::string(s.data(), s.size()); }

TEST(BencodeTest, DecodesAnNgOfferAsKamailioSendsIt) {
  // Keys unsorted, as Kamailio's rtpengine module writes them.
  const std::string msg =
      "d7:command5:offer3:sdp12:v=0\r\no=- 1\r\n7:call-id3:abc8:from-tag2:t15:flagsl13:trust-"
      "address9:symmetrice4:SDESl7:no-NULLe8:rtcp-muxl5:offere3:ttli-42ee";
  absl::StatusOr<Value> v = Decode(msg);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->is_dict());
  EXPECT_EQ(v->as_dict().front().first, "command");  // received order kept
  EXPECT_EQ(v->Find("command")->str(), "offer");
  EXPECT_EQ(v->Find("sdp")->str(), "v=0\r\no=- 1\r\n");
  EXPECT_EQ(v->Find("call-id")->str(), "abc");
  EXPECT_EQ(v->Find("from-tag")->str(), "t1");
  const Value* flags = v->Find("flags");
  ASSERT_NE(flags, nullptr);
  ASSERT_TRUE(flags->is_list());
  ASSERT_EQ(flags->as_list().size(), 2u);
  EXPECT_EQ(flags->as_list()[0].str(), "trust-address");
  EXPECT_EQ(flags->as_list()[1].str(), "symmetric");
  EXPECT_EQ(v->Find("SDES")->as_list()[0].str(), "no-NULL");
  EXPECT_EQ(v->Find("rtcp-mux")->as_list()[0].str(), "offer");
  EXPECT_EQ(v->Find("ttl")->as_int(), -42);
  EXPECT_EQ(v->Find("to-tag"), nullptr);
}

TEST(BencodeTest, IntegersAndTheirStrictForms) {
  EXPECT_EQ(Decode("i0e")->as_int(), 0);
  EXPECT_EQ(Decode("i-17e")->as_int(), -17);
  EXPECT_EQ(Decode("i999999999999999999e")->as_int(), 999999999999999999);
  EXPECT_THAT(Decode("i-0e").status().message(), HasSubstr("negative zero"));
  EXPECT_THAT(Decode("i03e").status().message(), HasSubstr("at offset 1: leading zero"));
  EXPECT_THAT(Decode("ie").status().message(), HasSubstr("at offset 1: expected a digit"));
  EXPECT_THAT(Decode("i1").status().message(), HasSubstr("at offset 2: expected 'e'"));
  EXPECT_THAT(Decode("i1000000000000000000e").status().message(), HasSubstr("number too long"));
  EXPECT_THAT(Decode("i+1e").status().message(), HasSubstr("expected a digit"));
}

TEST(BencodeTest, StringsAndTheirStrictForms) {
  EXPECT_EQ(S(Decode("0:")->as_string()), "");
  EXPECT_EQ(S(Decode(std::string("3:a\0b", 5))->as_string()), std::string("a\0b", 3));
  EXPECT_THAT(Decode("01:a").status().message(), HasSubstr("at offset 0: leading zero"));
  EXPECT_THAT(Decode("4:abc").status().message(),
              HasSubstr("at offset 2: string length 4 runs past the end of the input (3 bytes left)"));
  EXPECT_THAT(Decode("3abc").status().message(), HasSubstr("at offset 1: expected ':'"));
  EXPECT_THAT(Decode("99999999999999999999:").status().message(), HasSubstr("number too long"));
}

TEST(BencodeTest, StructureErrorsNameTheOffset) {
  EXPECT_THAT(Decode("").status().message(), HasSubstr("empty input"));
  EXPECT_THAT(Decode("l").status().message(), HasSubstr("at offset 1: unexpected end of input inside a list"));
  EXPECT_THAT(Decode("d3:abc").status().message(), HasSubstr("at offset 6: unexpected end of input, expected a value"));
  EXPECT_THAT(Decode("d3:abci1e").status().message(), HasSubstr("inside a dictionary"));
  EXPECT_THAT(Decode("di1ei2ee").status().message(), HasSubstr("at offset 1: dictionary key is not a string"));
  EXPECT_THAT(Decode("d1:ai1e1:ai2ee").status().message(), HasSubstr("at offset 7: duplicate dictionary key"));
  EXPECT_THAT(Decode("i1ei2e").status().message(), HasSubstr("at offset 3: trailing data after the value (3 bytes)"));
  EXPECT_THAT(Decode("x").status().message(), HasSubstr("at offset 0: expected 'i', 'l', 'd'"));
}

TEST(BencodeTest, LimitsHold) {
  DecodeLimits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(Decode("llleee", limits).ok());
  EXPECT_THAT(Decode("lllleeee", limits).status().message(), HasSubstr("nesting deeper than 3"));
  limits.max_items = 3;
  EXPECT_TRUE(Decode("li1ei2ee", limits).ok());  // the list and two integers
  EXPECT_THAT(Decode("li1ei2ei3ee", limits).status().message(), HasSubstr("more than 3 values"));
  limits.max_size = 4;
  EXPECT_THAT(Decode("5:abcde", limits).status().message(), HasSubstr("exceeds the limit of 4"));
  // A deep document within the default limits does not exhaust the stack;
  // one past them is refused.
  EXPECT_TRUE(Decode(std::string(32, 'l') + std::string(32, 'e')).ok());
  EXPECT_FALSE(Decode(std::string(100000, 'l')).ok());
}

// Keys in reverse order (as an unsorting encoder could send them), each
// "k<number>" with a zero-padded number so all have one length.
std::string ManyKeys(size_t n, const std::string& extra_key = "") {
  std::string out = "d";
  for (size_t i = n; i-- > 0;) {
    std::string key = std::to_string(i);
    key = "k" + std::string(6 - key.size(), '0') + key;
    out += std::to_string(key.size()) + ":" + key + "i" + std::to_string(i) + "e";
    if (i == n / 2 && !extra_key.empty()) {
      out += std::to_string(extra_key.size()) + ":" + extra_key + "i0e";
    }
  }
  return out + "e";
}

TEST(BencodeTest, DuplicateKeysAreFoundInNLogNComparisons) {
  constexpr size_t kKeys = 4000;  // 8001 values: within the default 10000
  DecodeStats stats;
  absl::StatusOr<Value> v = Decode(ManyKeys(kKeys), {}, &stats);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->as_dict().size(), kKeys);
  // A scan per key would take about n^2/2 = 8,000,000 comparisons; sorting
  // takes about n log2 n = 48,000 (12 levels), plus one pass.
  EXPECT_LT(stats.key_comparisons, 3 * kKeys * 12);
  EXPECT_GT(stats.key_comparisons, kKeys);  // it did compare
}

TEST(BencodeTest, DuplicateKeyDeepInsideIsRefusedAtItsOffset) {
  // The repeated key sits in the middle of a large dictionary five levels down.
  const std::string inner = ManyKeys(1000, "k000999");
  const std::string doc = "d1:ald1:xld1:y" + inner + "eeeee";
  absl::StatusOr<Value> v = Decode(doc);
  ASSERT_FALSE(v.ok());
  const size_t at = doc.find("7:k000999", doc.find("7:k000999") + 1);
  EXPECT_THAT(v.status().message(),
              HasSubstr("at offset " + std::to_string(at) + ": duplicate dictionary key"));
  // The same document without the repeat decodes.
  EXPECT_TRUE(Decode("d1:ald1:xld1:y" + ManyKeys(1000) + "eeeee").ok());
  // Of several repeats, the first in the input is named.
  EXPECT_THAT(Decode("d1:bi0e1:ai0e1:bi1e1:ai1ee").status().message(),
              HasSubstr("at offset 13: duplicate dictionary key"));
}

TEST(BencodeTest, EncodesCanonicallyWithSortedKeys) {
  Value reply(Value::Dict{});
  reply.Set("result", "ok");
  reply.Set("sdp", "v=0\r\n");
  reply.Set("created", int64_t{-5});
  reply.Set("warning", Value(Value::List{"a", 7}));
  reply.Set("result", "pong");  // replaces
  EXPECT_EQ(S(Encode(reply)), "d7:createdi-5e6:result4:pong3:sdp5:v=0\r\n7:warningl1:ai7eee");
}

TEST(BencodeTest, RoundTripsWhatItDecodes) {
  static constexpr char kCanonical[] = "d1:ai1e1:bl0:i-3ed1:xleee1:c3:\xff\x00z2:zzi0ee";
  const std::string in(kCanonical, sizeof(kCanonical) - 1);
  absl::StatusOr<Value> v = Decode(in);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(S(Encode(*v)), in);
  // Unsorted input decodes; the encoder sorts it.
  EXPECT_EQ(S(Encode(*Decode("d1:bi2e1:ai1ee"))), "d1:ai1e1:bi2ee");
}

}  // namespace
}  // namespace sluice::ng
