#include "sluice/ha/record.h"

#include <string>

#include <gtest/gtest.h>


namespace sluice::ha {
namespace {

SessionRecord Sample() {
  SessionRecord r;
  r.session = "call\n\"1\"";  // any bytes: names are base64 in the record
  r.key_group = "group-1";
  r.hold = true;
  for (int i = 0; i < 2; ++i) {
    LegRecord& leg = r.legs[static_cast<size_t>(i)];
    leg.name = i == 0 ? "caller" : "callee";
    leg.interface = i == 0 ? "a" : "b";
    leg.family = 4;
    leg.local_port = static_cast<uint16_t>(30000 + 2 * i);
    leg.remote = packet::Endpoint::Parse(i == 0 ? "10.0.0.2:4000" : "10.0.1.2:5000");
    leg.strict_source = i == 1;
    leg.await_answer = i == 1;
    leg.rtcp = i == 0 ? control::RtcpMode::kMux : control::RtcpMode::kSeparate;
    leg.roc_on_rekey = i == 0 ? control::RocOnRekey::kKeep : control::RocOnRekey::kAuto;
  }
  r.legs[0].aes192_kdf = crypto::Aes192Kdf::kLibsrtpLegacy;
  r.legs[0].rx = {SealedCrypto::Kind::kSdes, std::string("\x01\x00\xff sealed", 10)};
  r.legs[0].tx = {SealedCrypto::Kind::kPassthrough, ""};
  return r;
}

// `text` with its first `from` replaced by `to`.
std::string Replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(RecordTest, SessionRoundTrip) {
  const SessionRecord r = Sample();
  absl::StatusOr<SessionRecord> back = DecodeSession(EncodeSession(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->session, r.session);
  EXPECT_EQ(back->key_group, r.key_group);
  EXPECT_TRUE(back->hold);
  for (size_t i = 0; i < 2; ++i) {
    const LegRecord& a = r.legs[i];
    const LegRecord& b = back->legs[i];
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.interface, a.interface);
    EXPECT_EQ(b.local_port, a.local_port);
    EXPECT_EQ(b.remote->ToString(), a.remote->ToString());
    EXPECT_EQ(b.strict_source, a.strict_source);
    EXPECT_EQ(b.await_answer, a.await_answer);
    EXPECT_EQ(b.rtcp, a.rtcp);
    EXPECT_EQ(b.roc_on_rekey, a.roc_on_rekey);
    EXPECT_EQ(b.aes192_kdf, a.aes192_kdf);
    EXPECT_EQ(b.rx.kind, a.rx.kind);
    EXPECT_EQ(b.rx.sealed, a.rx.sealed);
    EXPECT_EQ(b.tx.kind, a.tx.kind);
  }
}

// The ng call state rides in the record, sealed, with its own version;
// without it the record has no "ng" at all.
TEST(RecordTest, NgStateRoundTripsAndIsRefusedWhenDamaged) {
  SessionRecord r = Sample();
  EXPECT_EQ(EncodeSession(r).find("\"ng\""), std::string::npos);
  EXPECT_TRUE(DecodeSession(EncodeSession(r))->ng_sealed.empty());
  r.ng_sealed = std::string("\x01\x00ng\xff sealed", 12);
  const std::string text = EncodeSession(r);
  absl::StatusOr<SessionRecord> back = DecodeSession(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ng_sealed, r.ng_sealed);
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_TRUE(absl::IsDataLoss(DecodeSession(text.substr(0, n)).status())) << n;
  }
  const size_t ng = text.find("\"ng\":{");
  ASSERT_NE(ng, std::string::npos);
  const auto with = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    const size_t at = t.find(from, ng);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  for (const std::string& bad : {with("\"v\":1", "\"v\":2"), with("\"v\":1", "\"v\":\"1\""),
                                 with("\"sealed\":\"", "\"sealed\":\"*"),
                                 with("\"sealed\":", "\"sealt\":")}) {
    EXPECT_TRUE(absl::IsDataLoss(DecodeSession(bad).status())) << bad;
  }
}

TEST(RecordTest, StreamsRoundTrip) {
  StreamsRecord s;
  s.at_unix_ms = 1765000000123;
  s.legs[0].rx = {{0xdeadbeef, true, (uint64_t{3} << 16) | 65500, 17}};
  s.legs[1].tx = {{7, false, 0, 0}, {8, true, (uint64_t{1} << 48) - 1, 0x7fffffff}};
  s.legs[1].remote = packet::Endpoint::Parse("[fd00::2]:6000");
  s.legs[1].tx_seq_offset = 65535;  // a restored plain-sourced sender's SEQ shift
  absl::StatusOr<StreamsRecord> back = DecodeStreams(EncodeStreams(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->at_unix_ms, s.at_unix_ms);
  ASSERT_EQ(back->legs[0].rx.size(), 1u);
  EXPECT_EQ(back->legs[0].rx[0].ssrc, 0xdeadbeefu);
  EXPECT_EQ(back->legs[0].rx[0].rtp_top, (uint64_t{3} << 16) | 65500);
  EXPECT_EQ(back->legs[0].rx[0].rtcp_index, 17u);
  ASSERT_EQ(back->legs[1].tx.size(), 2u);
  EXPECT_FALSE(back->legs[1].tx[0].rtp_used);
  EXPECT_EQ(back->legs[1].tx[1].rtcp_index, 0x7fffffffu);
  EXPECT_EQ(back->legs[1].remote->ToString(), "[fd00::2]:6000");
  EXPECT_FALSE(back->legs[0].remote.has_value());
  EXPECT_EQ(back->legs[1].tx_seq_offset, 65535);
  EXPECT_EQ(back->legs[0].tx_seq_offset, 0);  // absent: none (records written before it)
}

TEST(RecordTest, EveryTruncationIsRefusedNeverACrash) {
  const std::string text = EncodeSession(Sample());
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_TRUE(absl::IsDataLoss(DecodeSession(text.substr(0, n)).status())) << n;
  }
  StreamsRecord s;
  s.legs[0].rx = {{1, true, 5, 0}};
  const std::string streams = EncodeStreams(s);
  for (size_t n = 0; n < streams.size(); ++n) {
    EXPECT_FALSE(DecodeStreams(streams.substr(0, n)).ok()) << n;
  }
}

// A WebRTC leg: the peer's DTLS setup and fingerprints, the negotiated
// suite once keyed (its keys then sealed in rx and tx), and its ICE state.
SessionRecord WebRtcSample() {
  SessionRecord r = Sample();
  LegRecord& leg = r.legs[0];
  leg.remote.reset();
  leg.dtls.emplace();
  leg.dtls->setup = "actpass";
  leg.dtls->fingerprints = {"sha-256 AB:CD", "sha-1 01:02"};
  leg.dtls->restored_profile = "AEAD_AES_128_GCM";
  leg.rx = {SealedCrypto::Kind::kSdes, "sealed rx"};
  leg.tx = {SealedCrypto::Kind::kSdes, "sealed tx"};
  leg.ice = IceRecord{"locU", std::string("\x01pwd", 4), "peerU", "peer pwd"};
  return r;
}

TEST(RecordTest, WebRtcLegRoundTrip) {
  const SessionRecord r = WebRtcSample();
  absl::StatusOr<SessionRecord> back = DecodeSession(EncodeSession(r));
  ASSERT_TRUE(back.ok()) << back.status();
  const LegRecord& b = back->legs[0];
  ASSERT_TRUE(b.dtls.has_value());
  EXPECT_EQ(b.dtls->setup, "actpass");
  EXPECT_EQ(b.dtls->fingerprints, r.legs[0].dtls->fingerprints);
  EXPECT_EQ(b.dtls->local_setup, "");
  EXPECT_EQ(b.dtls->restored_profile, "AEAD_AES_128_GCM");
  EXPECT_EQ(b.rx.sealed, "sealed rx");
  EXPECT_EQ(b.tx.sealed, "sealed tx");
  ASSERT_TRUE(b.ice.has_value());
  EXPECT_EQ(b.ice->ufrag, "locU");
  EXPECT_EQ(b.ice->pwd_sealed, r.legs[0].ice->pwd_sealed);
  EXPECT_EQ(b.ice->peer_ufrag, "peerU");
  EXPECT_EQ(b.ice->peer_pwd_sealed, "peer pwd");
  EXPECT_FALSE(back->legs[1].dtls.has_value());
  EXPECT_FALSE(back->legs[1].ice.has_value());

  // Not keyed yet (a handshake under way): no profile, no keys.
  SessionRecord handshaking = WebRtcSample();
  handshaking.legs[0].dtls->restored_profile.clear();
  handshaking.legs[0].rx = handshaking.legs[0].tx = {};
  handshaking.legs[0].ice->peer_ufrag.clear();
  back = DecodeSession(EncodeSession(handshaking));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->legs[0].dtls->restored_profile.empty());
  EXPECT_EQ(back->legs[0].rx.kind, SealedCrypto::Kind::kPlain);
  EXPECT_TRUE(back->legs[0].ice->peer_ufrag.empty());
}

// A profile without keys, keys without a profile, an unknown suite, an ICE
// state without its password: refused.
TEST(RecordTest, RefusesAnInconsistentWebRtcLeg) {
  const std::string good = EncodeSession(WebRtcSample());
  const auto with = [&](const std::string& from, const std::string& to) {
    return Replaced(good, from, to);
  };
  SessionRecord no_profile = WebRtcSample();
  no_profile.legs[0].dtls->restored_profile.clear();
  SessionRecord no_keys = WebRtcSample();
  no_keys.legs[0].tx = {};
  for (const std::string& bad :
       {EncodeSession(no_profile), EncodeSession(no_keys),
        with("\"profile\":\"AEAD_AES_128_GCM\"", "\"profile\":\"NULL\""),
        with("\"ufrag\":\"locU\"", "\"ufrag\":\"\""),
        with("\"fingerprints\":[", "\"fingerprints\":[7,")}) {
    EXPECT_TRUE(absl::IsDataLoss(DecodeSession(bad).status())) << bad.substr(0, 300);
  }
}

TEST(RecordTest, RefusesOutOfRangeAndForeignValues) {
  const std::string good = EncodeSession(Sample());
  const auto with = [&](const std::string& from, const std::string& to) {
    return Replaced(good, from, to);
  };
  for (const std::string& bad :
       {with("\"local_port\":30000", "\"local_port\":95536"),
        with("\"local_port\":30000", "\"local_port\":-1"),
        with("\"local_port\":30000", "\"local_port\":0"),
        with("\"family\":4", "\"family\":5"), with("\"v\":1", "\"v\":2"),
        with("\"rtcp\":\"mux\"", "\"rtcp\":\"both\""),
        with("\"kind\":\"passthrough\"", "\"kind\":\"clear\""),
        with("\"remote\":\"10.0.0.2:4000\"", "\"remote\":\"nowhere\""),
        with("\"roc_on_rekey\":\"keep\"", "\"roc_on_rekey\":7"), std::string("[]"),
        std::string("\xff\xfe"), std::string(100000, '[')}) {
    EXPECT_TRUE(absl::IsDataLoss(DecodeSession(bad).status())) << bad.substr(0, 200);
  }
  EXPECT_FALSE(DecodeStreams(R"({"v":1,"at_ms":1,"legs":[{"rx":[{"ssrc":1,"rtcp":2147483648}],"tx":[]},{"rx":[],"tx":[]}]})").ok());
  EXPECT_FALSE(DecodeStreams(R"({"v":1,"at_ms":1,"legs":[{"rx":[{"ssrc":1,"rtcp":0,"top":281474976710656}],"tx":[]},{"rx":[],"tx":[]}]})").ok());
  EXPECT_FALSE(DecodeStreams(R"({"v":1,"at_ms":1,"legs":[{"rx":[],"tx":[]}]})").ok());
  EXPECT_FALSE(DecodeStreams(R"({"v":1,"at_ms":1,"legs":[{"rx":[],"tx":[],"seq_offset":65536},{"rx":[],"tx":[]}]})").ok());
  EXPECT_FALSE(DecodeStreams(R"({"v":1,"at_ms":1,"legs":[{"rx":[],"tx":[],"seq_offset":-1},{"rx":[],"tx":[]}]})").ok());
}

}  // namespace
}  // namespace sluice::ha
