#include "sluice/control/protocol.h"

#include <string>
#include <variant>

#include "fake_operations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace sluice::control {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing::FakeOperations;
using testing::kGeneratedKeyMarker;

// A recognisable "key": 40 base64 characters, as an AES-128 key||salt is.
constexpr char kKey[] = "SECRETKEYsecretkey+/SECRETKEYsecretkey==";
constexpr char kKeyFragment[] = "SECRETKEY";

std::string Dump(const Json& j) {
  const WipedString text = j.dump();
  return std::string(text.data(), text.size());
}

std::string Crypto(const std::string& suite = "AES_CM_128_HMAC_SHA1_80") {
  return absl::StrCat(suite, " inline:", kKey, "|2^31|1:1");
}

// The create request from the issue, with `legs` spliced in as given.
std::string CreateLine(const std::string& legs) {
  return absl::StrCat(R"({"id":2,"op":"session.create","session":"call-123","legs":)", legs, "}");
}

std::string TwoLegs(const std::string& a_extra = "", const std::string& b_extra = "") {
  return absl::StrCat(R"([{"name":"a","interface":"a","remote":"10.200.1.2:40000","rtcp":"mux",)",
                      R"("rx":{"crypto":")", Crypto(), R"("},"tx":{"suite":"AEAD_AES_256_GCM"})",
                      a_extra, R"(},{"name":"b","interface":"b","rx":{"plain":true},"tx":{"plain":true})",
                      b_extra, "}]");
}

// Decoding is expected to fail: the code and the message.
struct Failure {
  ErrorCode code;
  std::string message;
};

Failure DecodeFailure(absl::string_view line) {
  absl::StatusOr<Request> r = DecodeRequest(line);
  EXPECT_FALSE(r.ok()) << line;
  if (r.ok()) return {ErrorCode::kInternal, ""};
  return {ErrorCodeFromStatus(r.status()), std::string(r.status().message())};
}

// --- Decoding: every operation ----------------------------------------------

TEST(DecodeRequest, Ping) {
  absl::StatusOr<Request> r = DecodeRequest(R"({"id":1,"op":"ping"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->op, "ping");
  EXPECT_EQ(r->id, 1);
  EXPECT_TRUE(std::holds_alternative<PingRequest>(r->payload));
}

TEST(DecodeRequest, IdIsAnyScalarKeptVerbatim) {
  for (const char* id : {"1", "-7", "18446744073709551615", "1.5", "\"abc\"", "true", "null"}) {
    absl::StatusOr<Request> r = DecodeRequest(absl::StrCat(R"({"op":"ping","id":)", id, "}"));
    ASSERT_TRUE(r.ok()) << id << ": " << r.status();
    EXPECT_EQ(Dump(r->id), id);
  }
}

TEST(DecodeRequest, CreateFromTheIssue) {
  absl::StatusOr<Request> r = DecodeRequest(CreateLine(TwoLegs()));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& create = std::get<CreateRequest>(r->payload);
  EXPECT_EQ(create.session, "call-123");
  ASSERT_EQ(create.legs.size(), 2u);
  const LegRequest& a = create.legs[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.interface, "a");
  ASSERT_TRUE(a.remote.has_value());
  EXPECT_EQ(a.remote->ToString(), "10.200.1.2:40000");
  EXPECT_EQ(a.rtcp, RtcpMode::kMux);
  EXPECT_FALSE(a.strict_source);
  EXPECT_EQ(a.rx.kind, CryptoSpec::Kind::kSdes);
  EXPECT_EQ(a.rx.sdes, Crypto());
  EXPECT_EQ(a.tx.kind, CryptoSpec::Kind::kGenerate);
  EXPECT_EQ(a.tx.suite, crypto::Suite::kAeadAes256Gcm);
  const LegRequest& b = create.legs[1];
  EXPECT_EQ(b.name, "b");
  EXPECT_FALSE(b.remote.has_value());
  EXPECT_EQ(b.rtcp, RtcpMode::kSeparate);
  EXPECT_EQ(b.rx.kind, CryptoSpec::Kind::kPlain);
  EXPECT_EQ(b.tx.kind, CryptoSpec::Kind::kPlain);
}

TEST(DecodeRequest, RocOnRekeyPerLeg) {
  absl::StatusOr<Request> r = DecodeRequest(CreateLine(TwoLegs(
      R"(,"roc_on_rekey":"reset")", R"(,"roc_on_rekey":"keep")")));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& create = std::get<CreateRequest>(r->payload);
  EXPECT_EQ(create.legs[0].roc_on_rekey, RocOnRekey::kReset);
  EXPECT_EQ(create.legs[1].roc_on_rekey, RocOnRekey::kKeep);
}

constexpr char kFp[] =
    "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:AA:3A:8F:B6:"
    "0C:E3:2E:9C:F6:47:2D";

// A WebRTC leg: dtls in place of rx and tx, ice with or without the peer's
// credentials; an update re-keys by a new handshake or restarts ICE.
TEST(DecodeRequest, DtlsAndIceLegs) {
  const std::string leg_a = absl::StrCat(
      R"([{"name":"a","interface":"a","rtcp":"mux","dtls":{"setup":"actpass","local_setup":"passive","fingerprints":[")",
      kFp, R"("]},"ice":{"ufrag":"Ab+/","pwd":"0123456789abcdefghij+/"}},)");
  absl::StatusOr<Request> r = DecodeRequest(CreateLine(
      leg_a + R"({"name":"b","interface":"b","rx":{"plain":true},"tx":{"plain":true},"ice":{}}])"));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& create = std::get<CreateRequest>(r->payload);
  ASSERT_TRUE(create.legs[0].dtls.has_value());
  EXPECT_EQ(create.legs[0].dtls->setup, "actpass");
  EXPECT_EQ(create.legs[0].dtls->local_setup, "passive");
  EXPECT_THAT(create.legs[0].dtls->fingerprints, ::testing::ElementsAre(kFp));
  ASSERT_TRUE(create.legs[0].ice.has_value());
  EXPECT_EQ(create.legs[0].ice->ufrag, "Ab+/");
  EXPECT_EQ(create.legs[0].ice->pwd, "0123456789abcdefghij+/");
  EXPECT_FALSE(create.legs[1].dtls.has_value());
  ASSERT_TRUE(create.legs[1].ice.has_value());
  EXPECT_TRUE(create.legs[1].ice->ufrag.empty());

  r = DecodeRequest(absl::StrCat(
      R"({"id":1,"op":"session.update","session":"s","leg":"a","dtls":{"setup":"active","fingerprints":[")",
      kFp, R"("]},"ice":{"restart":true,"ufrag":"wxyz","pwd":"abcdefghijklmnopqrstuv"}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& update = std::get<UpdateRequest>(r->payload);
  ASSERT_TRUE(update.dtls.has_value());
  EXPECT_EQ(update.dtls->setup, "active");
  EXPECT_TRUE(update.dtls->local_setup.empty()) << "absent: Sluice picks";
  ASSERT_TRUE(update.ice.has_value());
  EXPECT_TRUE(update.ice->restart);
  EXPECT_EQ(update.ice->ufrag, "wxyz");

  // Sluice offers first: neither the peer's setup nor its fingerprints yet.
  r = DecodeRequest(CreateLine(
      R"([{"name":"a","interface":"a","rtcp":"mux","dtls":{"local_setup":"passive"},"ice":{}},)"
      R"({"name":"b","interface":"b","rx":{"plain":true},"tx":{"plain":true}}])"));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& awaited = std::get<CreateRequest>(r->payload);
  ASSERT_TRUE(awaited.legs[0].dtls.has_value());
  EXPECT_TRUE(awaited.legs[0].dtls->setup.empty() && awaited.legs[0].dtls->fingerprints.empty());
  EXPECT_EQ(awaited.legs[0].dtls->local_setup, "passive");

  struct Case {
    std::string line, message;
  };
  const std::string dtls_b = R"({"name":"b","interface":"b","rx":{"plain":true},"tx":{"plain":true}}])";
  const Case cases[] = {
      {CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","dtls":{"setup":"holdconn","fingerprints":[")",
                               kFp, R"("]}},)", dtls_b)),
       "legs[0].dtls.setup: required: the peer's a=setup, \"actpass\", \"active\" or \"passive\""},
      {CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","dtls":{"setup":"active","local_setup":"actpass","fingerprints":[")",
                               kFp, R"("]}},)", dtls_b)),
       "legs[0].dtls.local_setup: must be \"active\" or \"passive\""},
      {CreateLine(R"([{"name":"a","interface":"a","dtls":{"setup":"active","fingerprints":[]}},)" + dtls_b),
       "legs[0].dtls.fingerprints: required: 1 to 8 of the peer's a=fingerprint values"},
      {CreateLine(R"([{"name":"a","interface":"a","dtls":{"setup":"active","fingerprints":[7]}},)" + dtls_b),
       "legs[0].dtls.fingerprints: each must be a string such as \"sha-256 AB:CD:...\""},
      {CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rx":{"plain":true},"dtls":{"setup":"active","fingerprints":[")",
                               kFp, R"("]}},)", dtls_b)),
       "legs[0].rx: not with \"dtls\": the handshake keys both directions"},
      {CreateLine(R"([{"name":"a","interface":"a","rx":{"plain":true},"tx":{"plain":true},"ice":{"ufrag":"abcd"}},)" + dtls_b),
       "legs[0].ice: the peer's \"ufrag\" and \"pwd\" come together"},
      {CreateLine(R"([{"name":"a","interface":"a","rx":{"plain":true},"tx":{"plain":true},"ice":{"ufrag":"ab c","pwd":"0123456789abcdefghij+/"}},)" + dtls_b),
       "legs[0].ice.ufrag: must be 4 to 256 characters from A-Z a-z 0-9 + /"},
      {CreateLine(R"([{"name":"a","interface":"a","rx":{"plain":true},"tx":{"plain":true},"ice":{"ufrag":"abcd","pwd":"short"}},)" + dtls_b),
       "legs[0].ice.pwd: must be 22 to 256 characters from A-Z a-z 0-9 + /"},
      {CreateLine(R"([{"name":"a","interface":"a","rx":{"plain":true},"tx":{"plain":true},"ice":{"restart":true}},)" + dtls_b),
       "legs[0].ice.restart: unknown field; expected ufrag, pwd"},
  };
  for (const Case& c : cases) {
    const Failure f = DecodeFailure(c.line);
    EXPECT_EQ(f.code, ErrorCode::kInvalidArgument) << c.line;
    EXPECT_EQ(f.message, c.message) << c.line;
  }
}

TEST(DecodeRequest, CreateOptionalFields) {
  absl::StatusOr<Request> r = DecodeRequest(CreateLine(TwoLegs(
      R"(,"strict_source":true)", R"(,"remote":null,"rtcp":"separate")")));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& create = std::get<CreateRequest>(r->payload);
  EXPECT_TRUE(create.legs[0].strict_source);
  EXPECT_FALSE(create.legs[1].remote.has_value());
  EXPECT_EQ(create.legs[1].roc_on_rekey, RocOnRekey::kAuto);
  EXPECT_EQ(create.legs[0].family, 0);
  EXPECT_FALSE(create.legs[0].aes192_kdf.has_value());
  r = DecodeRequest(CreateLine(TwoLegs(R"(,"aes192_kdf":"libsrtp-legacy")",
                                       R"(,"aes192_kdf":"rfc6188")")));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::get<CreateRequest>(r->payload).legs[0].aes192_kdf,
            crypto::Aes192Kdf::kLibsrtpLegacy);
  EXPECT_EQ(std::get<CreateRequest>(r->payload).legs[1].aes192_kdf, crypto::Aes192Kdf::kRfc6188);
  r = DecodeRequest(CreateLine(TwoLegs(R"(,"family":"ipv4")", R"(,"family":"ipv6")")));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::get<CreateRequest>(r->payload).legs[0].family, 4);
  EXPECT_EQ(std::get<CreateRequest>(r->payload).legs[1].family, 6);
  // IPv6 remote and an SDES attribute with a tag first.
  r = DecodeRequest(CreateLine(absl::StrCat(
      R"([{"name":"x","interface":"core","remote":"[fd00::1]:4000",)",
      R"("rx":{"crypto":"7 )", Crypto("AEAD_AES_128_GCM"), R"("},"tx":{"crypto":")",
      Crypto("AES_256_CM_HMAC_SHA1_32"), R"("}},)",
      R"({"name":"y","interface":"access","rx":{"plain":true},"tx":{"suite":"NULL_HMAC_SHA1_80"}}])")));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& c2 = std::get<CreateRequest>(r->payload);
  EXPECT_EQ(c2.legs[0].remote->ToString(), "[fd00::1]:4000");
  EXPECT_EQ(c2.legs[0].rx.sdes, "7 " + Crypto("AEAD_AES_128_GCM"));
  EXPECT_EQ(c2.legs[1].tx.suite, crypto::Suite::kNullHmacSha1_80);
}

TEST(DecodeRequest, Update) {
  absl::StatusOr<Request> r = DecodeRequest(absl::StrCat(
      R"({"id":"u","op":"session.update","session":"call-123","leg":"a","rx":{"crypto":")",
      Crypto(), R"("},"tx":{"suite":"AES_CM_128_HMAC_SHA1_32"},"remote":"10.0.0.9:5000"})"));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& u = std::get<UpdateRequest>(r->payload);
  EXPECT_EQ(u.session, "call-123");
  EXPECT_EQ(u.leg, "a");
  ASSERT_TRUE(u.rx.has_value());
  EXPECT_EQ(u.rx->sdes, Crypto());
  ASSERT_TRUE(u.tx.has_value());
  EXPECT_EQ(u.tx->suite, crypto::Suite::kAesCm128HmacSha1_32);
  EXPECT_EQ(u.remote->ToString(), "10.0.0.9:5000");

  r = DecodeRequest(R"({"id":1,"op":"session.update","session":"s","leg":"b","tx":{"plain":true}})");
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& u2 = std::get<UpdateRequest>(r->payload);
  EXPECT_FALSE(u2.rx.has_value());
  EXPECT_FALSE(u2.remote.has_value());
  EXPECT_EQ(u2.tx->kind, CryptoSpec::Kind::kPlain);
}

TEST(DecodeRequest, DeleteGetListStats) {
  absl::StatusOr<Request> r = DecodeRequest(R"({"id":1,"op":"session.delete","session":"a.b@c:d-e_f"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::get<DeleteRequest>(r->payload).session, "a.b@c:d-e_f");
  r = DecodeRequest(R"({"id":1,"op":"session.get","session":"call-1"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::get<GetRequest>(r->payload).session, "call-1");
  r = DecodeRequest(R"({"id":1,"op":"session.list"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::get<ListRequest>(r->payload).offset, 0u);
  EXPECT_EQ(std::get<ListRequest>(r->payload).limit, 100u);
  r = DecodeRequest(R"({"id":1,"op":"session.list","offset":5,"limit":1000})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(std::get<ListRequest>(r->payload).offset, 5u);
  EXPECT_EQ(std::get<ListRequest>(r->payload).limit, 1000u);
  r = DecodeRequest(R"({"op":"stats","id":9})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(std::holds_alternative<StatsRequest>(r->payload));
}

TEST(DecodeRequest, LongestLineAccepted) {
  std::string line = R"({"id":1,"op":"ping"})";
  line.insert(1, std::string(kMaxLineBytes - line.size(), ' '));
  ASSERT_EQ(line.size(), kMaxLineBytes);
  EXPECT_TRUE(DecodeRequest(line).ok());
}

// --- Decoding: every error code ---------------------------------------------

TEST(DecodeRequest, ParseErrors) {
  for (const char* line : {"", "not json", "{", "{\"id\":1,", "[1,2]", "\"ping\"", "42", "null",
                           "{\"id\":1}{\"id\":2}", "\xff\xfe", "{\"id\":\"\xc3\x28\",\"op\":\"ping\"}"}) {
    const Failure f = DecodeFailure(line);
    EXPECT_EQ(f.code, ErrorCode::kParseError) << line << ": " << f.message;
  }
  EXPECT_THAT(DecodeFailure("{\"id\":1,,}").message, HasSubstr("at byte 9"));
  EXPECT_EQ(DecodeFailure("[]").message, "a request must be a JSON object");
}

TEST(DecodeRequest, InvalidRequests) {
  struct Case {
    std::string line;
    std::string message;
  };
  const Case cases[] = {
      {R"({"op":"ping"})", "id: required"},
      {R"({"id":[1],"op":"ping"})", "id: must be a string, a number, true, false or null"},
      {R"({"id":{},"op":"ping"})", "id: must be"},
      {R"({"id":1})", "op: required, one of ping, session.create"},
      {R"({"id":1,"op":7})", "op: must be a string"},
      {R"({"id":1,"op":"session.creat"})", "op: unknown operation \"session.creat\""},
      {R"({"id":1,"op":"ping","extra":1})", "extra: unknown field; expected id, op"},
      {R"({"id":1,"op":"session.get","session":"s","leg":"a"})", "leg: unknown field"},
      {std::string(kMaxLineBytes + 1, ' '), "line longer than 65536 bytes"},
      {R"({"id":1,"id":2,"op":"ping"})", "a field appears twice in one object: \"id\""},
      {R"({"id":1,"op":"session.get","session":"a","session":"b"})", "appears twice"},
      {CreateLine(TwoLegs(R"(,"rtcp":"separate")")), "a field appears twice in one object: \"rtcp\""},
  };
  for (const Case& c : cases) {
    const Failure f = DecodeFailure(c.line);
    EXPECT_EQ(f.code, ErrorCode::kInvalidRequest) << c.line.substr(0, 80);
    EXPECT_THAT(f.message, HasSubstr(c.message)) << c.line.substr(0, 80);
  }
}

TEST(DecodeRequest, IdKnownWhenDecodingFailsLater) {
  Json id;
  EXPECT_FALSE(DecodeRequest(R"({"id":"abc","op":"nope"})", &id).ok());
  EXPECT_EQ(id, "abc");
  EXPECT_FALSE(DecodeRequest(R"({"id":[1],"op":"ping"})", &id).ok());
  EXPECT_TRUE(id.is_null());
  EXPECT_FALSE(DecodeRequest("garbage", &id).ok());
  EXPECT_TRUE(id.is_null());
}

TEST(DecodeRequest, InvalidArgumentsNameTheField) {
  struct Case {
    std::string line;
    std::string message;  // exact
  };
  const std::string plain = R"({"plain":true})";
  auto leg = [&](const std::string& fields) {
    return CreateLine(absl::StrCat("[{", fields, R"(},{"name":"b","interface":"b","rx":)", plain,
                                   R"(,"tx":)", plain, "}]"));
  };
  const std::string ok_leg = R"("name":"a","interface":"a","rx":{"plain":true},"tx":{"plain":true})";
  const Case cases[] = {
      {leg(absl::StrCat(R"("name":"a","interface":"a","rx":{"crypto":"AES_CM_129_HMAC_SHA1_80 inline:)",
                        kKey, R"("},"tx":{"plain":true})")),
       "legs[0].rx.crypto: unknown suite \"AES_CM_129_HMAC_SHA1_80\""},
      {leg(R"("name":"a","interface":"a","rx":{"crypto":"AES_CM_128_HMAC_SHA1_80"},"tx":{"plain":true})"),
       "legs[0].rx.crypto: expected \"inline:<base64 key||salt>\" after the suite name"},
      {leg(R"("name":"a","interface":"a","rx":{"crypto":""},"tx":{"plain":true})"),
       "legs[0].rx.crypto: must be an SDES crypto attribute value, \"<suite> inline:<base64 "
       "key||salt>[|lifetime][|MKI:length]\""},
      {leg(R"("name":"a","interface":"a","rx":{"crypto":7},"tx":{"plain":true})"),
       "legs[0].rx.crypto: must be a string"},
      {leg(R"("name":"a","interface":"a","rx":{"suite":"AEAD_AES_128_GCM"},"tx":{"plain":true})"),
       "legs[0].rx.suite: only tx can have a generated key; rx takes the key the peer sends "
       "with, as \"crypto\""},
      {leg(R"("name":"a","interface":"a","rx":{"plain":true},"tx":{"suite":"AES_CM_129_HMAC_SHA1_80"})"),
       "legs[0].tx.suite: unknown suite \"AES_CM_129_HMAC_SHA1_80\""},
      {leg(R"("name":"a","interface":"a","rx":{"plain":true},"tx":{"suite":1})"),
       "legs[0].tx.suite: must be a suite name string"},
      {leg(R"("name":"a","interface":"a","rx":{"plain":false},"tx":{"plain":true})"),
       "legs[0].rx.plain: must be true (leave it out to protect the stream)"},
      {leg(R"("name":"a","interface":"a","rx":{},"tx":{"plain":true})"),
       "legs[0].rx: must be exactly one of {\"crypto\": \"<SDES attribute>\"}, {\"plain\": "
       "true} or {\"passthrough\": true}"},
      {leg(R"("name":"a","interface":"a","rx":{"plain":true},"tx":{"plain":true,"suite":"AEAD_AES_128_GCM"})"),
       "legs[0].tx: must be exactly one of {\"crypto\": \"<SDES attribute>\"}, {\"suite\": "
       "\"<name>\"}, {\"plain\": true} or {\"passthrough\": true}"},
      {leg(R"("name":"a","interface":"a","rx":"plain","tx":{"plain":true})"),
       "legs[0].rx: must be {\"crypto\": \"<SDES attribute>\"}, {\"plain\": true} or "
       "{\"passthrough\": true}"},
      {leg(R"("name":"a","interface":"a","rx":{"plain":true,"bogus":1},"tx":{"plain":true})"),
       "legs[0].rx.bogus: unknown field; expected crypto, suite, plain, passthrough"},
      {leg(R"("name":"a","interface":"a","tx":{"plain":true})"),
       "legs[0].rx: required ({\"plain\": true} for none, or \"dtls\")"},
      {leg(R"("name":"a","interface":"a","rx":{"plain":true})"),
       "legs[0].tx: required ({\"plain\": true} for none, or \"dtls\")"},
      {leg(absl::StrCat(ok_leg, R"(,"colour":"red")")),
       "legs[0].colour: unknown field; expected name, interface, remote, rtcp, strict_source, family, rx, tx, roc_on_rekey, aes192_kdf, dtls, ice"},
      {leg(absl::StrCat(ok_leg, R"(,"family":"IP6")")),
       "legs[0].family: must be \"ipv4\" or \"ipv6\""},
      {leg(R"("interface":"a","rx":{"plain":true},"tx":{"plain":true})"), "legs[0].name: required"},
      {leg(R"("name":"","interface":"a","rx":{"plain":true},"tx":{"plain":true})"),
       "legs[0].name: must be a string of 1 to 64 characters from A-Z a-z 0-9 ._@:-"},
      {leg(R"("name":"a","rx":{"plain":true},"tx":{"plain":true})"), "legs[0].interface: required"},
      {leg(R"("name":"a","interface":"a b","rx":{"plain":true},"tx":{"plain":true})"),
       "legs[0].interface: must be a string of 1 to 64 characters from A-Z a-z 0-9 ._-"},
      {leg(absl::StrCat(ok_leg, R"(,"remote":"10.0.0.1")")),
       "legs[0].remote: must be \"IP:port\", such as \"10.0.0.1:4000\" or \"[fd00::1]:4000\""},
      {leg(absl::StrCat(ok_leg, R"(,"remote":"fd00::1:4000")")),
       "legs[0].remote: must be \"IP:port\", such as \"10.0.0.1:4000\" or \"[fd00::1]:4000\""},
      {leg(absl::StrCat(ok_leg, R"(,"remote":4000)")),
       "legs[0].remote: must be \"IP:port\", such as \"10.0.0.1:4000\" or \"[fd00::1]:4000\""},
      {leg(absl::StrCat(ok_leg, R"(,"rtcp":"both")")), "legs[0].rtcp: must be \"mux\" or \"separate\""},
      {leg(absl::StrCat(ok_leg, R"(,"strict_source":1)")), "legs[0].strict_source: must be true or false"},
      {leg(absl::StrCat(ok_leg, R"(,"roc_on_rekey":"zero")")),
       "legs[0].roc_on_rekey: must be \"auto\", \"keep\" or \"reset\""},
      {leg(absl::StrCat(ok_leg, R"(,"aes192_kdf":"auto")")),
       "legs[0].aes192_kdf: must be \"rfc6188\" or \"libsrtp-legacy\""},
      {leg(absl::StrCat(ok_leg, R"(,"aes192_kdf":1)")),
       "legs[0].aes192_kdf: must be \"rfc6188\" or \"libsrtp-legacy\""},
      {CreateLine(absl::StrCat("[{", ok_leg, "},{", ok_leg, "}]")), "legs[1].name: must differ from legs[0].name"},
      {CreateLine(absl::StrCat("[{", ok_leg, "}]")), "legs: must have exactly 2 legs, not 1"},
      {CreateLine("[1,2,3]"), "legs: must have exactly 2 legs, not 3"},
      {CreateLine("{}"), "legs: must be an array of exactly 2 legs"},
      {CreateLine("[1,2]"), "legs[0]: must be an object"},
      {R"({"id":1,"op":"session.create","session":"s"})", "legs: required: an array of exactly 2 legs"},
      {R"({"id":1,"op":"session.create","legs":[]})", "session: required"},
      {R"({"id":1,"op":"session.get","session":""})",
       "session: must be a string of 1 to 128 characters from A-Z a-z 0-9 ._@:-"},
      {R"({"id":1,"op":"session.get","session":"call 1"})",
       "session: must be a string of 1 to 128 characters from A-Z a-z 0-9 ._@:-"},
      {absl::StrCat(R"({"id":1,"op":"session.get","session":")", std::string(129, 'x'), "\"}"),
       "session: must be a string of 1 to 128 characters from A-Z a-z 0-9 ._@:-"},
      {R"({"id":1,"op":"session.delete","session":5})",
       "session: must be a string of 1 to 128 characters from A-Z a-z 0-9 ._@:-"},
      {R"({"id":1,"op":"session.update","session":"s","leg":"a"})",
       "session.update needs at least one of \"rx\", \"tx\", \"remote\", \"dtls\" or \"ice\""},
      {R"({"id":1,"op":"session.update","session":"s","rx":{"plain":true}})", "leg: required"},
      {R"({"id":1,"op":"session.update","session":"s","leg":"a","rx":{"suite":"AEAD_AES_128_GCM"}})",
       "rx.suite: only tx can have a generated key; rx takes the key the peer sends with, as \"crypto\""},
      {R"({"id":1,"op":"session.update","session":"s","leg":"a","remote":"x"})",
       "remote: must be \"IP:port\", such as \"10.0.0.1:4000\" or \"[fd00::1]:4000\""},
      {R"({"id":1,"op":"session.list","limit":1001})", "limit: must be an integer from 0 to 1000"},
      {R"({"id":1,"op":"session.list","limit":-1})", "limit: must be an integer from 0 to 1000"},
      {R"({"id":1,"op":"session.list","offset":1.5})",
       "offset: must be an integer from 0 to 18446744073709551615"},
      {R"({"id":1,"op":"session.list","offset":"3"})",
       "offset: must be an integer from 0 to 18446744073709551615"},
  };
  for (const Case& c : cases) {
    const Failure f = DecodeFailure(c.line);
    EXPECT_EQ(f.code, ErrorCode::kInvalidArgument) << c.line;
    EXPECT_EQ(f.message, c.message) << c.line;
  }
}

// Key material in every wrong place: no error message repeats it.
TEST(DecodeRequest, KeysNeverInErrorMessages) {
  const std::string key = kKey;
  const std::string attr = Crypto();
  const std::string lines[] = {
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rx":{"crypto":"AES_CM_129 inline:)", key,
                              R"("},"tx":{"plain":true}},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rx":{"crypto":"inline:)", key,
                              R"("},"tx":{"plain":true}},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rx":{"crypto":")", key,
                              R"("},"tx":{"plain":true}},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rx":{"crypto":")", key, " ", key,
                              R"("},"tx":{"plain":true}},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rx":{"plain":true},"tx":{"suite":")",
                              attr, R"("}},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rx":{"plain":true},"tx":{"suite":")",
                              key, R"("}},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rx":{"plain":")", attr,
                              R"("},"tx":{"plain":true}},{}])")),
      CreateLine(absl::StrCat(R"([{"name":")", attr, R"(","interface":"a"},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":")", attr, R"("},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","remote":")", attr, R"("},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rtcp":")", attr, R"("},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a",")", attr, R"(":1},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a",")", key, R"(":1},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rx":{")", key, R"(":1}},{}])")),
      CreateLine(absl::StrCat(R"([{"name":"a","interface":"a","rx":{"crypto":")", attr,
                              R"("},"tx":{"crypto":")", attr, R"(","plain":true}},{}])")),
      CreateLine(absl::StrCat("\"", attr, "\"")),
      absl::StrCat(R"({"id":1,"op":"session.create","session":")", attr, R"(","legs":[]})"),
      absl::StrCat(R"({"id":1,"op":")", attr, R"("})"),
      absl::StrCat(R"({"id":1,"op":")", key, R"("})"),
      absl::StrCat(R"({"id":1,"op":"ping",")", key, R"(":1})"),
      absl::StrCat(R"({"id":1,"op":"ping",")", key, R"(":1,")", key, R"(":2})"),
      absl::StrCat(R"({"id":1,"op":"ping",")", attr, R"(":1})"),
      absl::StrCat(R"({"id":1,"op":"session.update","session":"s","leg":")", attr,
                   R"(","rx":{"plain":true}})"),
      absl::StrCat(R"({"id":1,"op":"session.update","session":"s","leg":"a","remote":")", attr, R"("})"),
      absl::StrCat(R"({"id":1,"op":"session.update","session":"s","leg":"a","rx":{"suite":")", attr,
                   R"("}})"),
      absl::StrCat(R"({"id":1,"op":"session.list","limit":")", attr, R"("})"),
      // Syntax errors next to the key: the parser's own message would quote it.
      absl::StrCat(R"({"id":1,"op":"session.create","legs":[{"rx":{"crypto":")", attr),
      absl::StrCat(R"({"id":1,"op":"session.create","legs":[{"rx":{"crypto":)", key, "}}]}"),
      absl::StrCat(R"({"id":1,)", key, "}"),
      absl::StrCat(R"({"id":1,"op":"ping","x":")", attr, "\x01\"}"),
  };
  FakeOperations ops;
  for (const std::string& line : lines) {
    absl::StatusOr<Request> r = DecodeRequest(line);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr(kKeyFragment))) << line;
    EXPECT_THAT(HandleLine(ops, line), Not(HasSubstr(kKeyFragment))) << line;
  }
  EXPECT_EQ(ops.calls, 0u);
}

// --- Encoders ----------------------------------------------------------------

SessionInfo SampleSession(bool with_generated_key) {
  SessionInfo info;
  info.session = "call-123";
  info.hold = true;
  LegInfo a;
  a.name = "a";
  a.interface = "ia";
  a.local = *packet::Endpoint::Parse("10.200.1.1:30000");
  a.remote = *packet::Endpoint::Parse("10.200.1.2:40000");
  a.remote_learned = true;
  a.rtcp = RtcpMode::kMux;
  a.rx_suite = "AES_CM_128_HMAC_SHA1_80";
  a.tx_suite = "AEAD_AES_256_GCM";
  a.encryption = "encrypted";
  a.counters = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  if (with_generated_key) a.tx_crypto = absl::StrCat("AEAD_AES_256_GCM inline:", kGeneratedKeyMarker);
  LegInfo b;
  b.name = "b";
  b.interface = "ib";
  b.local = *packet::Endpoint::Parse("[fd00::1]:30002");
  b.rx_suite = "plain";
  b.tx_suite = "plain";
  b.encryption = "plain";
  info.legs = {a, b};
  info.encryption = "plain";
  return info;
}

TEST(Encode, OkAndErrorLines) {
  Json body = Json::object();
  body["version"] = "1";
  const std::string ok = EncodeOk(7, body);
  EXPECT_EQ(ok, "{\"id\":7,\"ok\":true,\"version\":\"1\"}\n");
  EXPECT_EQ(EncodeOk("x", nullptr), "{\"id\":\"x\",\"ok\":true}\n");
  EXPECT_EQ(EncodeError(nullptr, ErrorCode::kNotFound, "no \"s\""),
            "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":\"no \\\"s\\\"\"}}\n");
  // Invalid UTF-8 in a message is replaced, not thrown.
  EXPECT_THAT(EncodeError(1, ErrorCode::kInternal, "bad \xff byte"), HasSubstr("bad \xef\xbf\xbd byte"));
}

TEST(Encode, CodeNames) {
  EXPECT_EQ(ErrorCodeName(ErrorCode::kParseError), "parse_error");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kInvalidRequest), "invalid_request");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kNotFound), "not_found");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kAlreadyExists), "already_exists");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kKeyReuse), "key_reuse");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kResourceExhausted), "resource_exhausted");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kEncryptionRequired), "encryption_required");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kInternal), "internal");
  // The manager's refusal reaches the wire as its code, without the prefix.
  const absl::Status refused =
      absl::FailedPreconditionError("encryption_required: legs[1] is plain");
  EXPECT_EQ(ErrorCodeFromStatus(refused), ErrorCode::kEncryptionRequired);
  EXPECT_EQ(ErrorMessageFromStatus(refused), "legs[1] is plain");
}

TEST(Encode, SessionInfo) {
  const Json body = EncodeSessionInfo(SampleSession(true), /*with_tx_crypto=*/true);
  const std::string expected_a = absl::StrCat(
      R"({"name":"a","interface":"ia","local":"10.200.1.1:30000","remote":"10.200.1.2:40000",)",
      R"("remote_learned":true,"rtcp":"mux","rx_suite":"AES_CM_128_HMAC_SHA1_80",)",
      R"("tx_suite":"AEAD_AES_256_GCM","encryption":"encrypted",)",
      R"("counters":{"rx_packets":1,"rx_bytes":2,"tx_packets":3,)",
      R"("tx_bytes":4,"auth_failures":5,"replay_drops":6,"other_drops":7,"remote_changes":8,)"
      R"("rx_rtcp_packets":9,"rx_rtcp_bytes":10,"tx_rtcp_packets":11,"tx_rtcp_bytes":12},)"
      R"("key_used_percent":{},"rekey_needed":[],"rx":{"roc_after_rekey":"none"},)",
      R"("tx":{"crypto":"AEAD_AES_256_GCM inline:)", kGeneratedKeyMarker, R"("}})");
  const std::string expected_b = absl::StrCat(
      R"({"name":"b","interface":"ib","local":"[fd00::1]:30002","remote":null,)",
      R"("remote_learned":false,"rtcp":"separate","rx_suite":"plain","tx_suite":"plain",)",
      R"("encryption":"plain",)",
      R"("counters":{"rx_packets":0,"rx_bytes":0,"tx_packets":0,"tx_bytes":0,"auth_failures":0,)",
      R"("replay_drops":0,"other_drops":0,"remote_changes":0,"rx_rtcp_packets":0,)"
      R"("rx_rtcp_bytes":0,"tx_rtcp_packets":0,"tx_rtcp_bytes":0},)"
      R"("key_used_percent":{},"rekey_needed":[],"rx":{"roc_after_rekey":"none"}})");
  EXPECT_EQ(Dump(body), absl::StrCat(R"({"session":"call-123","hold":true,"encryption":"plain",)",
                                      R"("legs":[)", expected_a, ",",
                                      expected_b, "]}"));
  // Without with_tx_crypto the key never appears, even when set.
  const std::string no_key = Dump(EncodeSessionInfo(SampleSession(true), false));
  EXPECT_THAT(no_key, Not(HasSubstr(kGeneratedKeyMarker)));
  EXPECT_THAT(no_key, Not(HasSubstr("\"tx\"")));
}

// A DTLS leg's state and an ICE leg's credentials: the ICE password only
// where a generated key would go (create and update replies).
TEST(Encode, DtlsAndIceState) {
  SessionInfo info = SampleSession(false);
  LegInfo::Dtls dtls;
  dtls.state = "keyed";
  dtls.setup = "active";
  dtls.fingerprint = kFp;
  dtls.profile = "AES_CM_128_HMAC_SHA1_80";
  dtls.counts = {4, {{"unchecked_source", 3}}};
  info.legs[0].dtls = dtls;
  LegInfo::Ice ice;
  ice.ufrag = "ufrg";
  ice.pwd = "PASSWORDPASSWORDPASSWORD";
  ice.candidates = {"1 1 UDP 2130706431 10.200.1.1 30000 typ host"};
  ice.selected = packet::Endpoint::Parse("10.200.1.2:40000");
  ice.consent_age_ms = 1500;
  ice.counts = {2, {{"wrong_username", 5}, {"bad_integrity", 1}}};
  info.legs[0].ice = ice;
  info.legs[1].dtls = LegInfo::Dtls{"failed", "fingerprint mismatch", "passive", kFp, ""};
  const Json body = EncodeSessionInfo(info, /*with_tx_crypto=*/true);
  EXPECT_EQ(Dump(body["legs"][0]["dtls"]),
            absl::StrCat(R"({"state":"keyed","setup":"active","fingerprint":")", kFp,
                         R"(","profile":"AES_CM_128_HMAC_SHA1_80","reason":null,)"
                         R"("received":4,"dropped":{"unchecked_source":3}})"));
  EXPECT_EQ(Dump(body["legs"][0]["ice"]),
            R"({"ufrag":"ufrg","candidates":["1 1 UDP 2130706431 10.200.1.1 30000 typ host"],)"
            R"("pwd":"PASSWORDPASSWORDPASSWORD","selected":"10.200.1.2:40000","consent_age_ms":1500,)"
            R"("answered":2,"dropped":{"wrong_username":5,"bad_integrity":1}})");
  EXPECT_EQ(Dump(body["legs"][1]["dtls"]["reason"]), R"("fingerprint mismatch")");
  EXPECT_EQ(Dump(body["legs"][1]["dtls"]["profile"]), "null");
  EXPECT_FALSE(body["legs"][1].contains("ice"));
  const std::string get = Dump(EncodeSessionInfo(info, /*with_tx_crypto=*/false));
  EXPECT_THAT(get, Not(HasSubstr("PASSWORDPASSWORD")));
  EXPECT_THAT(get, HasSubstr(R"("ufrag":"ufrg")"));
}

TEST(Encode, ListPingStats) {
  ListResult list;
  list.total = 5;
  list.sessions = {SampleSession(true)};
  const std::string l = Dump(EncodeListResult(list));
  EXPECT_THAT(l, StartsWith(R"({"total":5,"sessions":[{"session":"call-123","hold":true,)"
                            R"("encryption":"plain","legs":[{"name":"a")"));
  EXPECT_THAT(l, Not(HasSubstr(kGeneratedKeyMarker)));
  EXPECT_EQ(Dump(EncodePing("0.1.0", 4)), R"({"version":"0.1.0","workers":4})");

  Stats stats;
  stats.sessions = 2;
  WorkerStats w;
  w.id = 1;
  w.lcore = 3;
  w.rx_packets = 10;
  w.tx_packets = 9;
  w.busy_cycles = 100;
  w.idle_cycles = 200;
  w.handshake_packets = 7;
  w.neighbor_held = 17;
  w.drops = {{"auth_failed", 1}};
  w.quiescent_ms_ago = 1500;
  w.stalled = true;
  stats.workers = {w};
  stats.sessions_reclaiming = 1;
  stats.timed_out = {4, 5, 6};
  stats.webrtc = {7, 8, 9, 10, {{"received", 11}, {"malformed", 0}}};
  stats.neighbor_hold = {18, 19, 20};
  stats.drops = {{"auth_failed", 1}, {"no_flow", 2}};
  PortStats port;
  port.interface = "access";
  port.rx_packets = 11;
  port.rx_bytes = 1100;
  port.tx_packets = 12;
  port.tx_bytes = 1200;
  port.rx_missed = 13;
  port.rx_errors = 14;
  port.rx_no_mbuf = 15;
  port.tx_errors = 16;
  stats.ports = {port};
  EXPECT_EQ(Dump(EncodeStats(stats, nullptr)),
            R"({"sessions":2,"sessions_reclaiming":1,)"
            R"("sessions_timed_out":{"timeout":4,"silent_timeout":5,"final_timeout":6},)"
            R"("webrtc":{"dtls_keyed":7,"dtls_failed":8,"ice_selected":9,"ice_consent_lost":10,)"
            R"("handshake_thread":{"received":11,"malformed":0}},)"
            R"("ports":[{"interface":"access",)"
            R"("rx_packets":11,"rx_bytes":1100,)"
            R"("tx_packets":12,"tx_bytes":1200,"rx_missed":13,"rx_errors":14,"rx_no_mbuf":15,)"
            R"("tx_errors":16}],"workers":[{"id":1,"lcore":3,"rx_packets":10,"tx_packets":9,)"
            R"("busy_cycles":100,"idle_cycles":200,"handshake_packets":7,"neighbor_held":17,)"
            R"("drops":{"auth_failed":1},"quiescent_ms_ago":1500,"stalled":true}],)"
            R"("neighbor_hold":{"waiting":18,"sent":19,"dropped":20},)"
            R"("drops":{"auth_failed":1,"no_flow":2},"keys_near_limit":0,"rekey_needed":[]})");
  stats.memory = MemoryStats{7488, 3, 2u << 20};
  EXPECT_THAT(Dump(EncodeStats(stats, nullptr)),
              HasSubstr(R"({"sessions":2,"sessions_reclaiming":1,)"
                        R"("sessions_timed_out":{"timeout":4,"silent_timeout":5,"final_timeout":6},)"
                        R"("webrtc":{"dtls_keyed":7,"dtls_failed":8,"ice_selected":9,)"
                        R"("ice_consent_lost":10,"handshake_thread":{"received":11,"malformed":0}},)"
                        R"("memory":{"session_state_bytes":7488,)"
                        R"("session_state_blocks":3,"mapped_bytes":2097152},"ports":[)"));
  ControlCounters control;
  control.connections_open = 1;
  control.requests = 42;
  EXPECT_THAT(Dump(EncodeStats(stats, &control)),
              HasSubstr(R"("control":{"connections":1,"connections_accepted":0,)"
                        R"("connections_refused_limit":0,"connections_refused_credentials":0,)"
                        R"("requests":42,"errors":0,"lines_too_long":0})"));
}

// --- HandleLine --------------------------------------------------------------

Json Reply(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "exactly one line";
  return Json::parse(line);
}

TEST(HandleLine, EveryOperation) {
  FakeOperations ops;
  ControlCounters counters;
  Json r = Reply(HandleLine(ops, R"({"id":1,"op":"ping"})", &counters));
  EXPECT_EQ(Dump(r), R"({"id":1,"ok":true,"version":"9.9.9-test","workers":3})");

  r = Reply(HandleLine(ops, CreateLine(TwoLegs()), &counters));
  ASSERT_TRUE(r["ok"].get<bool>()) << Dump(r);
  EXPECT_EQ(r["id"], 2);
  EXPECT_EQ(r["session"], "call-123");
  EXPECT_EQ(r["legs"][0]["local"], "10.0.0.1:30000");
  EXPECT_EQ(r["legs"][0]["tx_suite"], "AEAD_AES_256_GCM");
  EXPECT_EQ(r["legs"][0]["tx"]["crypto"],
            absl::StrCat("AEAD_AES_256_GCM inline:", kGeneratedKeyMarker));
  EXPECT_FALSE(r["legs"][1].contains("tx"));
  EXPECT_THAT(Dump(r), Not(HasSubstr(kKeyFragment)));  // the rx key sent in

  r = Reply(HandleLine(ops, R"({"id":3,"op":"session.get","session":"call-123"})", &counters));
  EXPECT_TRUE(r["ok"].get<bool>());
  EXPECT_EQ(r["legs"][1]["rx_suite"], "plain");
  EXPECT_THAT(Dump(r), Not(HasSubstr(kGeneratedKeyMarker)));

  r = Reply(HandleLine(ops, R"({"id":4,"op":"session.update","session":"call-123","leg":"b","tx":{"suite":"AES_CM_128_HMAC_SHA1_80"}})", &counters));
  EXPECT_TRUE(r["ok"].get<bool>()) << Dump(r);
  EXPECT_EQ(r["legs"][1]["tx"]["crypto"],
            absl::StrCat("AES_CM_128_HMAC_SHA1_80 inline:", kGeneratedKeyMarker));

  r = Reply(HandleLine(ops, R"({"id":5,"op":"session.list","offset":0,"limit":10})", &counters));
  EXPECT_EQ(r["total"], 1);
  EXPECT_EQ(r["sessions"][0]["session"], "call-123");
  EXPECT_EQ(ops.last_list_limit, 10u);

  r = Reply(HandleLine(ops, R"({"id":6,"op":"stats"})", &counters));
  EXPECT_EQ(r["sessions"], 1);
  EXPECT_EQ(r["workers"].size(), 2u);
  EXPECT_EQ(r["drops"]["no_flow"], 7);
  EXPECT_EQ(r["control"]["requests"], 6);

  r = Reply(HandleLine(ops, R"({"id":7,"op":"session.delete","session":"call-123"})", &counters));
  EXPECT_TRUE(r["ok"].get<bool>());
  EXPECT_EQ(r["legs"][0]["counters"]["rx_packets"], 10);
  r = Reply(HandleLine(ops, R"({"id":8,"op":"session.get","session":"call-123"})", &counters));
  EXPECT_EQ(r["error"]["code"], "not_found");
  EXPECT_EQ(counters.requests, 8u);
  EXPECT_EQ(counters.errors, 1u);
}

TEST(HandleLine, KeysNeverInGetOrList) {
  FakeOperations ops;
  ops.leak_tx_crypto_in_get = true;
  Reply(HandleLine(ops, CreateLine(TwoLegs())));
  EXPECT_THAT(HandleLine(ops, R"({"id":1,"op":"session.get","session":"call-123"})"),
              Not(HasSubstr(kGeneratedKeyMarker)));
  EXPECT_THAT(HandleLine(ops, R"({"id":1,"op":"session.list"})"), Not(HasSubstr(kGeneratedKeyMarker)));
  EXPECT_THAT(HandleLine(ops, R"({"id":1,"op":"session.delete","session":"call-123"})"),
              Not(HasSubstr(kGeneratedKeyMarker)));
}

TEST(HandleLine, MapsEveryStatusCode) {
  struct Case {
    absl::Status status;
    const char* code;
    const char* message;
  };
  const Case cases[] = {
      {absl::InvalidArgumentError("legs[0].rx.crypto: bad base64"), "invalid_argument",
       "legs[0].rx.crypto: bad base64"},
      {absl::NotFoundError("no session \"x\""), "not_found", "no session \"x\""},
      {absl::AlreadyExistsError("session \"x\" exists"), "already_exists", "session \"x\" exists"},
      {KeyReuseError("legs[0].rx.crypto: key already used in this session"), "key_reuse",
       "legs[0].rx.crypto: key already used in this session"},
      {absl::ResourceExhaustedError("no free port on interface a"), "resource_exhausted",
       "no free port on interface a"},
      {absl::FailedPreconditionError("something else"), "failed_precondition", "something else"},
      {absl::InternalError("rte_hash_add_key failed"), "internal", "rte_hash_add_key failed"},
      {absl::UnavailableError(""), "internal", "internal"},
  };
  for (const Case& c : cases) {
    FakeOperations ops;
    ControlCounters counters;
    ops.fail_next = c.status;
    const Json r = Reply(HandleLine(ops, R"({"id":"x","op":"session.get","session":"s"})", &counters));
    EXPECT_EQ(Dump(r), absl::StrCat(R"({"id":"x","ok":false,"error":{"code":")", c.code,
                                     R"(","message":)", Dump(Json(c.message)), "}}"));
    EXPECT_EQ(counters.errors, 1u);
  }
}

TEST(HandleLine, CodecErrorsCarryTheId) {
  FakeOperations ops;
  EXPECT_EQ(HandleLine(ops, "nonsense"),
            R"J({"id":null,"ok":false,"error":{"code":"parse_error","message":"not valid JSON (syntax error at byte 2)"}})J"
            "\n");
  Json r = Reply(HandleLine(ops, R"({"id":"q","op":"zap"})"));
  EXPECT_EQ(r["id"], "q");
  EXPECT_EQ(r["error"]["code"], "invalid_request");
  r = Reply(HandleLine(ops, R"({"id":[],"op":"ping"})"));
  EXPECT_TRUE(r["id"].is_null());
  r = Reply(HandleLine(ops, R"({"id":12,"op":"session.get","session":"a b"})"));
  EXPECT_EQ(r["id"], 12);
  EXPECT_EQ(r["error"]["code"], "invalid_argument");
}

TEST(HandleLine, OperationsThatThrowGiveInternal) {
  FakeOperations ops;
  ops.throw_next = true;
  ControlCounters counters;
  const Json r = Reply(HandleLine(ops, R"({"id":1,"op":"session.get","session":"s"})", &counters));
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"]["code"], "internal");
  EXPECT_EQ(counters.errors, 1u);
  // And the next request is served normally.
  EXPECT_EQ(Reply(HandleLine(ops, R"({"id":2,"op":"ping"})"))["ok"], true);
}

TEST(HandleLine, KeyReuseFromTheSessionManager) {
  FakeOperations ops;
  Reply(HandleLine(ops, CreateLine(TwoLegs())));
  const std::string update = absl::StrCat(
      R"({"id":1,"op":"session.update","session":"call-123","leg":"a","rx":{"crypto":")",
      Crypto("AES_CM_128_HMAC_SHA1_32"), R"("}})");
  EXPECT_EQ(Reply(HandleLine(ops, update))["ok"], true);
  const Json r = Reply(HandleLine(ops, update));
  EXPECT_EQ(r["error"]["code"], "key_reuse");
  EXPECT_EQ(r["error"]["message"], "rx: this key was used before");
}

TEST(HandleLine, ArbitraryBytesGiveOneLine) {
  FakeOperations ops;
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= bytes.size(); n += 17) {
    const Json r = Reply(HandleLine(ops, bytes.substr(0, n)));
    EXPECT_TRUE(r.contains("id"));
    EXPECT_EQ(r["ok"], false);
  }
  // Deep nesting is parsed without recursion and refused.
  const std::string deep = std::string(30000, '[') + std::string(30000, ']');
  EXPECT_EQ(Reply(HandleLine(ops, deep))["error"]["code"], "parse_error");
  const std::string deep_id = absl::StrCat(R"({"op":"ping","id":)", std::string(20000, '['),
                                           std::string(20000, ']'), "}");
  EXPECT_EQ(Reply(HandleLine(ops, deep_id))["error"]["code"], "invalid_request");
  std::string deep_objects = R"({"id":1,"op":"ping","x":)";
  for (int i = 0; i < 10000; ++i) deep_objects += R"({"a":)";
  deep_objects += "1" + std::string(10001, '}');
  EXPECT_EQ(Reply(HandleLine(ops, deep_objects))["error"]["code"], "invalid_request");
}

TEST(Wipe, StringsAndSpecs) {
  std::string s = "secret material that is long enough to be on the heap";
  const char* data = s.data();
  const size_t capacity = s.capacity();
  WipeString(s);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.data(), data);
  for (size_t i = 0; i < capacity; ++i) EXPECT_EQ(data[i], '\0');
}

}  // namespace
}  // namespace sluice::control
