// session.create and session.delete over a control::Client, for the load
// helpers of tests/testing/ (one request at a time; replies parsed).
// One thread at a time, as the client.
#ifndef SLUICE_TESTS_TESTING_SESSION_REQUESTS_H_
#define SLUICE_TESTS_TESTING_SESSION_REQUESTS_H_

#include <netinet/in.h>

#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/control/client.h"

namespace sluice::testing {

// session.create of `session` with two legs; the reply, when it is a
// success (it may hold a generated key: the caller wipes what it keeps).
absl::StatusOr<nlohmann::json> CreateSession(control::Client& control, const std::string& session,
                                             const nlohmann::json& leg_a,
                                             const nlohmann::json& leg_b);

// A reply leg's "local" (IPv4 "ip:port") as a socket address.
absl::StatusOr<sockaddr_in> LocalAddress(const nlohmann::json& leg);

// session.delete of each; the first failure.
absl::Status DeleteSessions(control::Client& control, std::span<const std::string> sessions);

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TESTING_SESSION_REQUESTS_H_
