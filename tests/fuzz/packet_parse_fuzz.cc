// Fuzz target: ParseFrame must take any bytes. What it calls UDP must lie
// inside the input, and headers written back from it by WriteUdpHeaders must
// parse to the same datagram. Also the address parsers, on the same bytes as
// text: whatever they accept must print and parse back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/string_view.h"
#include "sluice/packet/address.h"
#include "sluice/packet/parse.h"
#include "sluice/packet/rewrite.h"

namespace {

using sluice::packet::Endpoint;
using sluice::packet::FrameKind;
using sluice::packet::HeaderLength;
using sluice::packet::IpAddress;
using sluice::packet::kMaxFrameLen;
using sluice::packet::ParsedFrame;
using sluice::packet::ParseFrame;
using sluice::packet::ParseOptions;
using sluice::packet::Prefix;
using sluice::packet::UdpHeaderSpec;
using sluice::packet::WriteUdpHeaders;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "packet_parse_fuzz: %s\n", what);
    std::abort();
  }
}

// Room for the largest header (66 bytes) and any payload ParseFrame accepts.
uint8_t scratch[128 + kMaxFrameLen];

void CheckUdp(const ParsedFrame& f, size_t size) {
  Check(f.error == sluice::packet::ParseError::kNone, "kUdp with an error");
  Check(f.l3_offset >= 14 && f.l3_offset < f.l4_offset, "l3/l4 offsets out of order");
  Check(f.payload_offset == f.l4_offset + 8, "payload does not follow the UDP header");
  Check(size_t{f.payload_offset} + f.payload_len <= size, "payload past the input");
  Check(f.src.ip.family == f.dst.ip.family && !f.src.ip.unset(), "endpoint families");
  Check(f.vlan_count <= 2, "more than two VLAN tags");
}

// Writes fresh headers for the parsed datagram in front of a copy of its
// payload and parses the result again.
void RoundTrip(const uint8_t* data, const ParsedFrame& f, bool offload) {
  UdpHeaderSpec spec;
  spec.src_mac = {0x02, 0, 0, 0, 0, 1};
  spec.dst_mac = {0x02, 0, 0, 0, 0, 2};
  spec.vlan_id = f.vlan_count > 0 ? f.vlan_id : 0;
  spec.src = f.src;
  spec.dst = f.dst;
  spec.udp_checksum_offload = offload;
  spec.ip_checksum_offload = offload;
  const uint32_t header_len = HeaderLength(spec);
  Check(f.payload_len <= sluice::packet::MaxUdpPayload(spec), "payload too long to rewrite");
  uint8_t* payload = scratch + 128;
  std::memcpy(payload, data + f.payload_offset, f.payload_len);
  uint8_t* frame = WriteUdpHeaders(payload, f.payload_len, spec, 0x1234);
  Check(frame == payload - header_len, "frame start");

  ParseOptions verify;
  verify.verify_ip_checksum = !offload;
  verify.verify_udp_checksum = !offload;
  const uint32_t frame_len = header_len + f.payload_len;
  if (frame_len > kMaxFrameLen) return;  // a maximal datagram behind a VLAN tag
  const ParsedFrame g = ParseFrame(frame, frame_len, verify);
  Check(g.kind == FrameKind::kUdp, "rewritten frame is not UDP");
  Check(g.src == f.src && g.dst == f.dst, "rewritten endpoints differ");
  Check(g.payload_offset == header_len && g.payload_len == f.payload_len, "rewritten payload");
  Check(g.payload_kind == f.payload_kind, "rewritten payload kind");
  Check(g.vlan_id == spec.vlan_id, "rewritten VLAN");
}

void FuzzAddresses(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ip = IpAddress::Parse(text)) {
    Check(IpAddress::Parse(ip->ToString()) == ip, "address round trip");
  }
  if (auto e = Endpoint::Parse(text)) {
    Check(e->port != 0, "endpoint port 0");
    Check(Endpoint::Parse(e->ToString()) == e, "endpoint round trip");
  }
  if (auto p = Prefix::Parse(text)) {
    Check(Prefix::Parse(p->ToString()) == p, "prefix round trip");
    Check(p->Contains(p->ip), "prefix does not contain its address");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxFrameLen + 1) return 0;
  const uint32_t len = static_cast<uint32_t>(size);
  for (bool verify : {true, false}) {
    ParseOptions options;
    options.verify_ip_checksum = verify;
    options.verify_udp_checksum = verify;
    const ParsedFrame f = ParseFrame(data, len, options);
    Check((f.kind == FrameKind::kDrop) == (f.error != sluice::packet::ParseError::kNone),
          "kind and error disagree");
    if (f.kind != FrameKind::kUdp) continue;
    CheckUdp(f, size);
    RoundTrip(data, f, /*offload=*/false);
    RoundTrip(data, f, /*offload=*/true);
  }
  if (size < 128) FuzzAddresses(data, size);
  return 0;
}
