// RTP packets for benchmarks: `count` buffers of one packet size, one SSRC,
// each with tailroom for a tag, 64-byte aligned as mbuf data would be; and the
// fixed master keys benchmarks use.
//
// Benchmark code, single thread. Allocates only in the constructor.
#ifndef SLUICE_BENCH_RTP_PACKETS_H_
#define SLUICE_BENCH_RTP_PACKETS_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "sluice/crypto/suite.h"
#include "sluice/srtp/master_key.h"

namespace sluice::bench {

inline constexpr uint32_t kBenchSsrc = 0x5e1c0de5;
inline constexpr uint32_t kRtpHeaderLen = 12;

// Packets in an unprotect ring. Unprotect works in place and the replay
// window refuses a packet twice, so when the ring runs out it is restored from
// a pristine copy and a fresh receiver context takes over, off the clock.
// 4096 packets of 172 bytes fill about 1 MiB: in L2, like the protect burst.
inline constexpr size_t kUnprotectRing = 4096;

class RtpPackets {
 public:
  // Room after each packet for the largest SRTP/SRTCP trailer and then some.
  static constexpr uint32_t kTailroom = 64;

  // Packets of `size` bytes (12-byte RTP header, no CSRC or extension, then
  // payload), sequence numbers first_seq, first_seq + 1, ...
  RtpPackets(size_t count, uint32_t size, uint16_t first_seq = 0);

  size_t count() const { return count_; }
  uint32_t size() const { return size_; }
  uint32_t capacity() const { return size_ + kTailroom; }
  uint8_t* data(size_t i) { return storage_.get() + i * stride_; }
  const uint8_t* data(size_t i) const { return storage_.get() + i * stride_; }

  // One 16-bit store: this runs in timed loops.
  void SetSeq(size_t i, uint16_t seq) noexcept {
    const uint16_t be = __builtin_bswap16(seq);
    std::memcpy(data(i) + 2, &be, 2);
  }

  // Numbers every packet first_seq, first_seq + 1, ... and returns the next
  // number. Runs in timed loops: the members are read once, since a byte
  // store into a packet could alias them and SetSeq in a loop reloads them
  // after each one.
  uint16_t SetSeqs(uint16_t first_seq) noexcept {
    uint8_t* p = storage_.get() + 2;
    const size_t stride = stride_;
    uint16_t seq = first_seq;
    for (size_t i = 0, n = count_; i < n; ++i, p += stride, ++seq) {
      const uint16_t be = __builtin_bswap16(seq);
      std::memcpy(p, &be, 2);
    }
    return seq;
  }

  // Copies every buffer (packet and tailroom) of `other`, which has the same
  // count and size.
  void CopyFrom(const RtpPackets& other);

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  size_t count_;
  uint32_t size_;
  size_t stride_;
  std::unique_ptr<uint8_t[], Free> storage_;
};

// A fixed master key and salt for `suite` (benchmarks need no secrets; fixed
// bytes keep runs comparable).
srtp::MasterKey BenchMasterKey(crypto::Suite suite);

// key || salt, as libsrtp2 takes it.
std::vector<uint8_t> KeyAndSalt(const srtp::MasterKey& key);

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_RTP_PACKETS_H_
