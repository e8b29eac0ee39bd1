// rtpengine's "rtpp-flags": the flags of an ng request as one string, as
// Kamailio's rtpengine module sends them when the daemon parses them
// ("replace-origin trust-address SDES-off ICE=remove direction=internal
// direction=external transport-protocol=RTP/AVP"). Parsed into the
// dictionary the same request would carry as keys, so both forms take the
// same path through the handler.
//
// Grammar (space-separated tokens):
//   key=value            the dictionary key `key` with a string value
//   key=[a b c]          ... with a list value (brackets may not nest)
//   direction=X, internal, external     one more "direction" item each
//   SDES-x, replace-x, rtcp-mux-x       one more item of that list
//   ICE-x, DTLS-x                       ICE=x, DTLS=x
//   RTP/AVP ... UDP/TLS/RTP/SAVPF, and RTP, AVP, SRTP, AVPF, DTLS combined
//                        "transport-protocol"
//   anything else        a flag (the "flags" list)
// Keys and flags are returned as given; the handler reads " " and "_" in
// them as "-", as rtpengine does. Control thread only.
#ifndef SLUICE_NG_FLAGS_H_
#define SLUICE_NG_FLAGS_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/ng/bencode.h"

namespace sluice::ng {

// The dictionary of `text`, or an error naming the malformed flag.
absl::StatusOr<Value> ParseRtppFlags(std::string_view text);

}  // namespace sluice::ng

#endif  // SLUICE_NG_FLAGS_H_
