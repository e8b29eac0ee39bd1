#include "keyed_watch.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace sluice::testing {

absl::StatusOr<std::unique_ptr<KeyedWatch>> KeyedWatch::Start(const std::string& socket_path,
                                                              size_t calls, int interval_ms) {
  absl::StatusOr<control::Client> client = control::Client::Connect(socket_path);
  if (!client.ok()) return client.status();
  std::unique_ptr<KeyedWatch> w(new KeyedWatch(*std::move(client), calls, interval_ms));
  w->thread_ = std::thread([p = w.get()] { p->Run(); });
  return w;
}

KeyedWatch::~KeyedWatch() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void KeyedWatch::Watch(size_t call, const std::string& session, int leg) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.push_back({call, session, leg, Clock::now()});
}

std::vector<KeyedWatch::Outcome> KeyedWatch::Outcomes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outcomes_;
}

// Takes the legs in turn, each at most once per interval; sleeps a little
// when none is due.
void KeyedWatch::Run() {
  while (!stop_.load()) {
    Pending p;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_.empty() || pending_.front().next > Clock::now()) {
        p.call = SIZE_MAX;
      } else {
        p = std::move(pending_.front());
        pending_.pop_front();
      }
    }
    if (p.call == SIZE_MAX) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      continue;
    }
    if (!Ask(p)) {
      p.next = Clock::now() + interval_;
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back(std::move(p));
    }
  }
}

bool KeyedWatch::Ask(const Pending& p) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  absl::StatusOr<std::string> reply = client_.Call(absl::StrCat(
      "{\"id\":0,\"op\":\"session.get\",\"session\":", nlohmann::json(p.session).dump(), "}"));
  const Clock::time_point at = Clock::now();
  Outcome o;
  o.at = at;
  if (!reply.ok()) {
    o.done = true;
    o.reason = absl::StrCat("session.get: ", reply.status().message());
  } else {
    const nlohmann::json j = nlohmann::json::parse(*reply, nullptr, false);
    const nlohmann::json* dtls = nullptr;
    if (!j.is_discarded() && j.value("ok", false) && j["legs"].size() > static_cast<size_t>(p.leg) &&
        j["legs"][p.leg].contains("dtls")) {
      dtls = &j["legs"][p.leg]["dtls"];
    }
    const std::string state = dtls != nullptr ? dtls->value("state", "") : "";
    // Keyed, and the keys installed: sluiced says "keyed" only once the
    // control loop has put its keys in the workers; the suite is checked
    // too, so a sluiced that said it before its keys were in is not trusted.
    o.keyed = state == "keyed" && j["legs"][p.leg].value("rx_suite", "") != "pending";
    o.done = o.keyed || state == "failed" || dtls == nullptr;
    if (state == "failed") o.reason = (*dtls)["reason"].is_string() ? (*dtls)["reason"] : "";
    if (dtls == nullptr) o.reason = absl::StrCat("session.get gave no dtls: ", reply->substr(0, 200));
  }
  if (!o.done) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    outcomes_[p.call] = std::move(o);
  }
  done_.fetch_add(1, std::memory_order_release);
  return true;
}

}  // namespace sluice::testing
