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
// Dialogs as rtpengine keeps them: an offer or answer repeated with the same
// SDP gets the same reply and changes nothing; a call has a branch (its own
// sessions) per via-branch it was offered on; delete is scoped by tags and
// via-branch, now or after delete-delay. See docs/ng-protocol.md.
//
// Control thread only. Keys are generated with OpenSSL's CSPRNG, held in
// wiping strings, and leave only inside the SDP of a reply.
#ifndef SLUICE_NG_HANDLER_H_
#define SLUICE_NG_HANDLER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/control/operations.h"
#include "sluice/ng/bencode.h"
#include "sluice/ng/sdp.h"

namespace sluice::ng {

struct HandlerOptions {
  std::string default_interface;  // legs go here unless "direction"/"interface" say otherwise
  // SDES suites without an SRTP authentication tag (AES_CM_128_NULL_AUTH)
  // are neither accepted from an offerer nor offered to an answerer unless
  // this is set ([ng] allow_null_auth).
  bool allow_null_auth = false;
  size_t max_calls = 100000;         // calls at once; an offer for one more is refused
  uint64_t offer_timeout_ms = 3600000;  // a call never answered is deleted after this
  uint64_t delete_delay_ms = 30000;  // a deleted call or branch lingers this long (ng "delete-delay")
  std::function<uint64_t()> now_ms;  // a monotonic clock; default steady_clock
};

class Handler {
 public:
  Handler(control::Operations& operations, HandlerOptions options);
  ~Handler();

  // One request dictionary in, one reply dictionary out: "result" is "ok",
  // "pong" or "error" (with "error-reason"); "warning" lists what was ignored.
  Value Handle(const Value& request);

  size_t call_count() const { return calls_.size(); }

  // Deletes the calls whose first offer has waited offer_timeout_ms without
  // an answer (Handle does this too, before each request).
  void ExpireUnanswered();

  // The timers with no request needed: unanswered offers expire and
  // delete-delay'd deletes fall due. The control loop calls it each pass.
  void Tick();

  // A session the session manager deleted on a timeout ([media] timeout_s
  // and the others): its media section is forgotten, and the call with its
  // last session, so a later query answers "Unknown call-id" and a delete
  // "Call-ID not found" (ok, with that warning).
  void SessionExpired(const std::string& session);

  // Replication ([ha], docs/ha.md "ng call state"): what the handler knows
  // of the call a session belongs to (the call's tags and dialog state, its
  // branch, the session's media section with the keys of the latest offer
  // and the replies' SDP) as one bencoded document that holds keys, for the
  // caller to seal and wipe. None for a session of no ng call.
  std::optional<String> ExportSession(const std::string& session) const;
  // Whether `state` is such a document, for a session named `session`
  // (any bytes: an error, never a crash).
  static absl::Status CheckSessionState(std::string_view state, const std::string& session);
  // Takes back the state of a session restored with `create`: its call is
  // known again (query, re-offer, answer, delete). The key-reuse check
  // knows the session's keys of now, not those it had before them.
  absl::Status RestoreSession(std::string_view state, const control::CreateRequest& create);
  // Told each live session of a call that an offer, answer or delete
  // changed (the replicator writes them again).
  void SetOnChanged(std::function<void(const std::string& session)> on_changed) {
    on_changed_ = std::move(on_changed);
  }

 private:
  struct Stream;
  struct Branch;
  struct Call;
  struct Request;
  struct OfferedMedia;
  struct AnswerUpdates;
  friend class StateCodec;  // ExportSession's and RestoreSession's (handler_replication.cc)
  void Changed(const std::string& call_id);

  static absl::Status ParseRequest(const Value& request, Request& r);
  static absl::Status MergeRtppFlags(std::map<std::string, const Value*>& keys, Request& r);
  static absl::Status ParseAddressing(const Value* family, const Value* address, Request& r);
  static Value Full(const Request& r, Value& reply, std::string_view message);
  Value Offer(Request& r, Value& reply);
  Value Answer(Request& r, Value& reply);

  // Offer, in order: which side offers, what each section offers and
  // accepts (keys, the offerer's address), a session for each new section,
  // the SDP for the answerer.
  static void WarnIgnoredOfferFlags(const SdesPolicy& policy, Request& r);
  static absl::StatusOr<int> OffererSide(const Branch& call, const std::string& from_tag);
  static absl::StatusOr<std::vector<OfferedMedia>> PlanOffer(const Sdp& sdp,
                                                             const SdesPolicy& policy,
                                                             const Request& r,
                                                             const std::string& transport);
  static absl::Status PlanWebrtc(size_t i, const SdpMedia& m, const Request& r, OfferedMedia& o);
  static absl::Status AcceptOffererCrypto(size_t i, const SdpMedia& m, const SdesPolicy& policy,
                                          OfferedMedia& o);
  static absl::Status OfferCryptoToAnswerer(size_t i, const SdpMedia& m,
                                            const SdesPolicy& policy, OfferedMedia& o);
  // Rolls back the sessions it created when one fails.
  absl::Status CreateSessions(const Request& r, const Sdp& sdp,
                              const std::vector<OfferedMedia>& offered, int offerer, size_t branch,
                              Branch& call);
  static absl::Status KeepsTransports(size_t i, const OfferedMedia& o, const Stream& stream,
                                      int offerer);
  control::CreateRequest SessionRequest(const Request& r, size_t i, const SdpMedia& m,
                                        const OfferedMedia& o, int offerer, size_t branch) const;
  static String RewriteForAnswerer(const Request& r, const Sdp& sdp,
                                   const std::vector<OfferedMedia>& offered,
                                   const std::vector<Stream>& streams, int answerer);

  // Answer, in order: every section's updates checked, then applied, then
  // the SDP for the offerer.
  static absl::StatusOr<std::vector<std::optional<AnswerUpdates>>> PlanAnswer(
      Request& r, const Sdp& sdp, const Branch& call);
  static absl::Status OffererWebrtcUpdate(size_t i, const Request& r, const OfferedMedia& o,
                                          const Stream& stream, int offerer, AnswerUpdates& u);
  static absl::Status AnswererWebrtc(size_t i, const SdpMedia& m, const OfferedMedia& o,
                                     const Stream& stream, int answerer, AnswerUpdates& u);
  static absl::StatusOr<control::UpdateRequest> AnswererUpdate(Request& r, const Sdp& sdp,
                                                               size_t i, const OfferedMedia& o,
                                                               const Stream& stream,
                                                               int answerer);
  // What the session manager would refuse (a key that does not parse, a
  // key used before in the session, an address of the wrong family), found
  // before any update is applied, so a failed answer changes nothing.
  absl::Status CheckAnswer(const std::vector<std::optional<AnswerUpdates>>& updates,
                                  const Branch& call);
  absl::Status ApplyAnswer(const std::vector<std::optional<AnswerUpdates>>& updates,
                           Branch& call);
  static String RewriteForOfferer(const Request& r, Sdp& sdp, const Branch& call);
  static void RememberKeys(Stream& stream, int leg, const std::optional<control::CryptoSpec>& rx,
                           const std::optional<control::CryptoSpec>& tx);

  // Dialog state: which branch of a call an offer or answer is for (a
  // new one for an offer on a new via-branch), and deletion of a branch
  // or a whole call, now or after delete-delay.
  static absl::StatusOr<size_t> OfferBranch(Call& call, const Request& r);
  static absl::StatusOr<size_t> AnswerBranch(Call& call, const Request& r);
  void DeleteSessions(Branch& branch);
  void ScheduleOrDelete(const std::string& call_id, std::optional<size_t> branch,
                        uint64_t delay_ms);
  void DeleteDue();

  Value Delete(Request& r, Value& reply);
  Value Query(Request& r, Value& reply);
  Value List(Value& reply);
  Value Statistics(Value& reply);

  control::Operations& operations_;
  HandlerOptions options_;
  std::map<std::string, Call> calls_;  // by call-id
  std::deque<std::pair<uint64_t, std::string>> unanswered_;  // offered at, call-id; oldest first
  struct PendingDelete {
    uint64_t due_ms;
    std::string call_id;
    std::optional<size_t> branch;  // none: the whole call
  };
  std::vector<PendingDelete> pending_deletes_;  // delete-delay
  // Every live session of a call, to its call-id (for SessionExpired).
  void IndexSessions(const std::string& call_id);
  std::unordered_map<std::string, std::string> session_calls_;
  std::function<void(const std::string&)> on_changed_;
};

// The Sluice session name for media section `index` of a call's branch
// (0: the first offer's; more for offers on other via-branches).
std::string SessionName(std::string_view call_id, size_t index, size_t branch = 0);

}  // namespace sluice::ng

#endif  // SLUICE_NG_HANDLER_H_
