#include "sluice/session/session.h"

#include "absl/strings/str_cat.h"

namespace sluice::session {
namespace {

absl::StatusOr<std::unique_ptr<srtp::Context>> MaybeContext(
    const std::vector<srtp::MasterKey>& keys, srtp::ContextOptions options, bool encrypt_srtcp,
    const std::string& what) {
  if (keys.empty()) return std::unique_ptr<srtp::Context>();
  options.encrypt_srtcp = encrypt_srtcp;
  absl::StatusOr<std::unique_ptr<srtp::Context>> ctx = srtp::Context::Create(keys, options);
  if (!ctx.ok()) {
    return absl::Status(ctx.status().code(), absl::StrCat(what, ": ", ctx.status().message()));
  }
  return ctx;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Session>> Session::Create(uint64_t id, const LegSpec& a,
                                                         const LegSpec& b,
                                                         const SessionOptions& options) {
  std::unique_ptr<Session> s(new Session());
  s->id_ = id;
  s->legs_ = {a, b};
  for (int i = 0; i < 2; ++i) {
    const LegSpec& leg = s->legs_[i];
    if (leg.local.ip.unset() || leg.local.port == 0) {
      return absl::InvalidArgumentError(absl::StrCat("leg ", leg.name, ": no local address"));
    }
    if (leg.remote && leg.remote->ip.family != leg.local.ip.family) {
      return absl::InvalidArgumentError(absl::StrCat(
          "leg ", leg.name, ": remote ", leg.remote->ToString(), " is not the family of local ",
          leg.local.ToString()));
    }
    if (leg.strict_source && !leg.remote) {
      return absl::InvalidArgumentError(
          absl::StrCat("leg ", leg.name, ": strict source needs a remote address"));
    }
    auto rx = MaybeContext(leg.rx_keys, options.srtp, true, absl::StrCat("legs[", i, "].rx"));
    if (!rx.ok()) return rx.status();
    auto tx = MaybeContext(leg.tx_keys, options.srtp, leg.tx_encrypt_srtcp,
                           absl::StrCat("legs[", i, "].tx"));
    if (!tx.ok()) return tx.status();
    s->rx_[i] = std::move(*rx);
    s->tx_[i] = std::move(*tx);
    RemoteView view;
    if (leg.remote) {
      view.known = true;
      view.endpoint = *leg.remote;
      if (leg.remote_mac) {
        view.has_mac = true;
        view.mac = *leg.remote_mac;
      }
    }
    s->remotes_[i].Store(view);
  }
  for (int i = 0; i < 2; ++i) {
    const LegSpec& in = s->legs_[i];
    const LegSpec& out = s->legs_[1 - i];
    Flow& f = s->flows_[i];
    f.id = (id << 1) | static_cast<uint64_t>(i);
    f.in_local = in.local;
    f.rtcp_mux = in.rtcp_mux;
    f.strict_source = in.strict_source;
    f.out_port = out.port_id;
    f.out_vlan = out.vlan;
    f.out_src_mac = out.port_mac;
    f.out_local = out.local;
    f.out_rtcp_mux = out.rtcp_mux;
    f.rx = s->rx_[i].get();
    f.tx = s->tx_[1 - i].get();
    f.in_remote = &s->remotes_[i];
    f.out_remote = &s->remotes_[1 - i];
    f.learn_packets = options.learn_packets;
  }
  return s;
}

Session::~Session() = default;

absl::Status Session::Publish(FlowTable& table) {
  for (int i = 0; i < 2; ++i) {
    const LegSpec& leg = legs_[i];
    std::vector<std::pair<packet::Endpoint, bool>> keys = {{leg.local, false}};
    if (!leg.rtcp_mux) {
      packet::Endpoint rtcp = leg.local;
      rtcp.port = static_cast<uint16_t>(rtcp.port + 1);
      keys.push_back({rtcp, true});
    }
    for (const auto& [endpoint, rtcp_port] : keys) {
      absl::Status s = table.Add(endpoint, &flows_[i], rtcp_port);
      if (!s.ok()) {
        Unpublish(table);
        return s;
      }
      published_.push_back(endpoint);
    }
  }
  return absl::OkStatus();
}

void Session::Unpublish(FlowTable& table) {
  for (const packet::Endpoint& endpoint : published_) table.Remove(endpoint).IgnoreError();
  published_.clear();
}

}  // namespace sluice::session
