// Fuzz target: the ng protocol's SDP parser and rewriter. Beyond not
// crashing: a parsed body rewrites, the rewrite parses again with the same
// number of sections, ports and transports in place, and errors never quote
// the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/ng/sdp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sluice::ng::Sdp> sdp = sluice::ng::ParseSdp(input);
  if (!sdp.ok()) {
    const std::string message(sdp.status().message());
    if (message.rfind("sdp: ", 0) != 0) __builtin_trap();
    return 0;
  }
  std::vector<sluice::ng::MediaRewrite> plans(sdp->media.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    plans[i].local = *sluice::packet::Endpoint::Parse("192.0.2.1:30000");
    plans[i].local.port = static_cast<uint16_t>(30000 + 2 * i);
    plans[i].rtcp_mux = i % 2 == 1;
    plans[i].proto = sluice::ng::WithSrtp(sdp->media[i].proto, i % 2 == 0);
    plans[i].crypto.push_back({1, "AES_CM_128_HMAC_SHA1_80",
                               sluice::ng::String("AES_CM_128_HMAC_SHA1_80 inline:x")});
  }
  sluice::ng::RewriteOptions options;
  options.replace_origin = true;
  const sluice::ng::String out = sluice::ng::RewriteSdp(*sdp, plans, options);
  absl::StatusOr<sluice::ng::Sdp> again =
      sluice::ng::ParseSdp(std::string_view(out.data(), out.size()));
  if (!again.ok() || again->media.size() != sdp->media.size()) __builtin_trap();
  for (size_t i = 0; i < plans.size(); ++i) {
    const sluice::ng::SdpMedia& m = again->media[i];
    if (sdp->media[i].disabled()) {
      if (!m.disabled()) __builtin_trap();
      continue;
    }
    if (m.port != plans[i].local.port || m.proto != plans[i].proto ||
        m.rtcp_mux != plans[i].rtcp_mux || m.crypto.size() != 1 ||
        again->Address(i) != plans[i].local.ip) {
      __builtin_trap();
    }
  }
  return 0;
}
