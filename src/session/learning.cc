#include "sluice/session/learning.h"

namespace sluice::session::learning {

RemoteView GivenRemote(const std::optional<packet::Endpoint>& remote,
                       const std::optional<packet::MacAddress>& next_hop_mac) {
  RemoteView view;
  if (!remote) return view;
  view.known = true;
  view.endpoint = *remote;
  if (next_hop_mac) {
    view.has_mac = true;
    view.mac = *next_hop_mac;
  }
  return view;
}

}  // namespace sluice::session::learning
