#include "session_requests.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sluice::testing {

using json = nlohmann::json;

absl::StatusOr<json> CreateSession(control::Client& control, const std::string& session,
                                   const json& leg_a, const json& leg_b) {
  std::string request =
      json{{"id", 0}, {"op", "session.create"}, {"session", session}, {"legs", {leg_a, leg_b}}}
          .dump();
  absl::StatusOr<std::string> reply = control.Call(request);
  OPENSSL_cleanse(request.data(), request.size());  // it may hold an rx key
  if (!reply.ok()) return reply.status();
  json j = json::parse(*reply, nullptr, false);
  OPENSSL_cleanse(reply->data(), reply->size());
  if (j.is_discarded() || !j.value("ok", false)) {
    return absl::InternalError(absl::StrCat("creating ", session, ": ",
                                            j.is_discarded() ? "reply is not JSON"
                                                             : j["error"].dump()));
  }
  return j;
}

absl::StatusOr<sockaddr_in> LocalAddress(const json& leg) {
  const std::string local = leg.is_object() ? leg.value("local", "") : "";
  const size_t colon = local.rfind(':');
  uint32_t port = 0;
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  if (colon == std::string::npos || !absl::SimpleAtoi(local.substr(colon + 1), &port) ||
      port > 65535 || inet_pton(AF_INET, local.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("leg local \"", local, "\" is not IPv4:port"));
  }
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

absl::Status DeleteSessions(control::Client& control, std::span<const std::string> sessions) {
  for (const std::string& s : sessions) {
    absl::StatusOr<std::string> reply = control.Call(
        absl::StrCat("{\"id\":0,\"op\":\"session.delete\",\"session\":", json(s).dump(), "}"));
    if (!reply.ok()) return reply.status();
    if (reply->find("\"ok\":true") == std::string::npos) {
      return absl::InternalError(absl::StrCat("deleting ", s, ": ", *reply));
    }
  }
  return absl::OkStatus();
}

}  // namespace sluice::testing
