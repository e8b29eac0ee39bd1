#include "traffic_calls.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "sluice/crypto/suite.h"

namespace sluice::bench {
namespace {

using json = nlohmann::json;

constexpr crypto::Suite kSuite = crypto::Suite::kAesCm128HmacSha1_80;
// Calls per write: two batches of replies stay far below what sluiced buffers
// for a client, so neither side waits on the other's reading.
constexpr size_t kCallsPerBatch = 128;
// Room for a batch of creates (about 600 bytes each), reserved once.
constexpr size_t kBatchBytes = kCallsPerBatch * 1024;

// A fresh master key and salt from OpenSSL's CSPRNG.
absl::StatusOr<srtp::MasterKey> RandomKey() {
  srtp::MasterKey key;
  key.suite = kSuite;
  const crypto::SuiteInfo& info = key.info();
  if (RAND_bytes(key.key.data(), info.key_len) != 1 ||
      RAND_bytes(key.salt.data(), info.salt_len) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  return key;
}

// Appends {"crypto":"<suite> inline:base64(key || salt)"} (RFC 4568 §6.1) to
// `out`, which has room reserved (a reallocation would leave a copy of the key
// behind) and which the caller wipes.
void AppendCrypto(std::string* out, const srtp::MasterKey& key) {
  const crypto::SuiteInfo& info = key.info();
  uint8_t raw[46];
  std::memcpy(raw, key.key.data(), info.key_len);
  std::memcpy(raw + info.key_len, key.salt.data(), info.salt_len);
  char base64[65];
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(base64), raw,
                                info.key_len + info.salt_len);
  out->append("{\"crypto\":\"").append(info.name).append(" inline:").append(base64, n);
  out->append("\"}");
  OPENSSL_cleanse(raw, sizeof raw);
  OPENSSL_cleanse(base64, sizeof base64);
}

void AppendLeg(std::string* out, absl::string_view name, const char* phone, size_t call,
               const srtp::MasterKey& rx, const srtp::MasterKey& tx) {
  absl::StrAppend(out, "{\"name\":\"", name, "\",\"interface\":\"", name, "\",\"remote\":\"",
                  phone, ":", kPhonePortBase + 2 * call, "\",\"rtcp\":\"mux\",\"rx\":");
  AppendCrypto(out, rx);
  out->append(",\"tx\":");
  AppendCrypto(out, tx);
  out->append("}");
}

// Leg a's local port in a session.create reply; 0 when missing.
uint16_t RelayPortA(const json& reply) {
  if (!reply.contains("legs") || !reply["legs"].is_array() || reply["legs"].empty()) return 0;
  const std::string local = reply["legs"][0].value("local", "");
  uint32_t port = 0;
  if (!absl::SimpleAtoi(absl::string_view(local).substr(local.rfind(':') + 1), &port)) return 0;
  return static_cast<uint16_t>(port);
}

// Why a reply is not the success of request `id` (sluiced's error code and
// message: it keeps keys out of errors).
std::string Describe(const json& reply, uint64_t id) {
  if (reply.is_discarded()) return "reply is not JSON";
  if (!reply.contains("id") || reply["id"] != id) return absl::StrCat("reply out of order at ", id);
  if (reply.contains("error")) return reply["error"].dump();
  return "";
}

// Writes `batch` and reads one reply a line, handing each to `on_reply`.
absl::Status Exchange(control::Client& client, std::string& batch, size_t lines,
                      const std::function<void(json&)>& on_reply) {
  absl::Status written = client.Write(batch);
  OPENSSL_cleanse(batch.data(), batch.size());
  batch.clear();  // keeps its capacity
  if (!written.ok()) return written;
  for (size_t i = 0; i < lines; ++i) {
    absl::StatusOr<std::string> line = client.ReadLine();
    if (!line.ok()) return line.status();
    json reply = json::parse(*line, nullptr, false);
    OPENSSL_cleanse(line->data(), line->size());
    on_reply(reply);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<TrafficCall>> InstallCalls(control::Client& client, size_t count) {
  std::vector<TrafficCall> calls(count);
  std::string batch, error;
  batch.reserve(kBatchBytes);
  for (size_t first = 0; first < count; first += kCallsPerBatch) {
    const size_t last = std::min(count, first + kCallsPerBatch);
    for (size_t i = first; i < last; ++i) {
      absl::StatusOr<srtp::MasterKey> keys[4] = {RandomKey(), RandomKey(), RandomKey(),
                                                 RandomKey()};
      for (const auto& k : keys) {
        if (!k.ok()) return k.status();
      }
      calls[i].send_key = *keys[0];
      calls[i].verify_key = *keys[1];
      absl::StrAppend(&batch, "{\"id\":", i, ",\"op\":\"session.create\",\"session\":\"traffic-",
                      i, "\",\"legs\":[");
      AppendLeg(&batch, "a", kTrafficPhoneA, i, calls[i].send_key, *keys[2]);
      batch.append(",");
      AppendLeg(&batch, "b", kTrafficPhoneB, i, *keys[3], calls[i].verify_key);
      batch.append("]}\n");
    }
    size_t id = first;
    absl::Status s = Exchange(client, batch, last - first, [&](json& reply) {
      const std::string why = Describe(reply, id);
      const uint16_t port = why.empty() ? RelayPortA(reply) : 0;
      if (port == 0 && error.empty()) {
        error = absl::StrCat("session.create traffic-", id, ": ",
                             why.empty() ? "no local port on leg a" : why);
      }
      calls[id++].relay_port_a = port;
    });
    if (!s.ok()) return s;
    if (!error.empty()) return absl::InternalError(error);
  }
  return calls;
}

RekeyResult RekeyCalls(control::Client& client, size_t count,
                       const std::function<void(KeyChange)>& publish) {
  RekeyResult r;
  const auto start = std::chrono::steady_clock::now();
  std::string batch;
  batch.reserve(kBatchBytes);
  std::vector<srtp::MasterKey> new_send(kCallsPerBatch);
  for (size_t first = 0; first < count; first += kCallsPerBatch) {
    const size_t last = std::min(count, first + kCallsPerBatch);
    for (size_t i = first; i < last; ++i) {
      absl::StatusOr<srtp::MasterKey> send = RandomKey(), verify = RandomKey();
      if (!send.ok() || !verify.ok()) {
        r.errors = 2 * count;
        r.first_error = "RAND_bytes failed";
        return r;
      }
      new_send[i - first] = *send;
      publish(KeyChange{static_cast<uint32_t>(i), KeyChange::Leg::kVerifyB, *verify});
      absl::StrAppend(&batch, "{\"id\":", 2 * i, ",\"op\":\"session.update\",\"session\":\"traffic-",
                      i, "\",\"leg\":\"b\",\"tx\":");
      AppendCrypto(&batch, *verify);
      absl::StrAppend(&batch, "}\n{\"id\":", 2 * i + 1,
                      ",\"op\":\"session.update\",\"session\":\"traffic-", i,
                      "\",\"leg\":\"a\",\"rx\":");
      AppendCrypto(&batch, *send);
      batch.append("}\n");
      r.requests += 2;
    }
    uint64_t id = 2 * first;
    absl::Status s = Exchange(client, batch, 2 * (last - first), [&](json& reply) {
      const std::string why = Describe(reply, id);
      if (!why.empty()) {
        ++r.errors;
        if (r.first_error.empty()) r.first_error = absl::StrCat("request ", id, ": ", why);
      } else if (id % 2 == 1) {
        const size_t call = id / 2;
        publish(KeyChange{static_cast<uint32_t>(call), KeyChange::Leg::kSendA,
                          new_send[call - first]});
      }
      ++id;
    });
    if (!s.ok()) {
      r.errors += 2 * count - id;
      if (r.first_error.empty()) r.first_error = std::string(s.message());
      break;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace sluice::bench
