// The ng protocol's commands (ping, offer, answer, delete, query, list,
// statistics) carried out on Sluice's operations, the same ones the native
// protocol drives: one ng call becomes one Sluice session per enabled media
// section, named after the call-id, so `sluicectl session get` shows it.
//
//   offer   parses the offerer's SDP, creates the call's sessions (both legs'
//           ports; the offerer's receive key from its a=crypto), generates
//           Sluice's keys for the far side (one per suite it offers) and for
//           the offerer, and returns the SDP to forward.
//   answer  applies the answerer's key, the key it picked among Sluice's and
//           the offerer's new key (a re-offer re-keys through the session's
//           make-before-break update; a reused key is refused), and returns
//           the SDP for the offerer.
//
// Control thread only. Keys are generated with OpenSSL's CSPRNG, held in
// wiping strings, and leave only inside the SDP of a reply.
#ifndef SLUICE_NG_HANDLER_H_
#define SLUICE_NG_HANDLER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/control/operations.h"
#include "sluice/ng/bencode.h"
#include "sluice/ng/sdp.h"

namespace sluice::ng {

struct HandlerOptions {
  std::string default_interface;  // legs go here unless "direction"/"interface" say otherwise
};

class Handler {
 public:
  Handler(control::Operations& operations, HandlerOptions options);
  ~Handler();

  // One request dictionary in, one reply dictionary out: "result" is "ok",
  // "pong" or "error" (with "error-reason"); "warning" lists what was ignored.
  Value Handle(const Value& request);

  size_t call_count() const { return calls_.size(); }

 private:
  struct Stream;
  struct Call;
  struct Request;

  Value Offer(Request& r, Value& reply);
  Value Answer(Request& r, Value& reply);
  Value Delete(Request& r, Value& reply);
  Value Query(Request& r, Value& reply);
  Value List(Value& reply);
  Value Statistics(Value& reply);

  control::Operations& operations_;
  HandlerOptions options_;
  std::map<std::string, Call> calls_;  // by call-id
};

// The Sluice session name for media section `index` of a call.
std::string SessionName(std::string_view call_id, size_t index);

}  // namespace sluice::ng

#endif  // SLUICE_NG_HANDLER_H_
