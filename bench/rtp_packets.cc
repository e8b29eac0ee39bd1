#include "rtp_packets.h"

#include <cstring>
#include <new>

namespace sluice::bench {

RtpPackets::RtpPackets(size_t count, uint32_t size, uint16_t first_seq)
    : count_(count), size_(size), stride_((size + kTailroom + 63) / 64 * 64) {
  storage_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, count_ * stride_)));
  if (!storage_) throw std::bad_alloc();
  std::memset(storage_.get(), 0, count_ * stride_);
  for (size_t i = 0; i < count_; ++i) {
    uint8_t* p = data(i);
    p[0] = 0x80;  // V=2, no padding, no extension, no CSRC
    p[1] = 0;     // PT 0 (PCMU), no marker
    const uint32_t ts = static_cast<uint32_t>(i) * 160;
    p[4] = static_cast<uint8_t>(ts >> 24);
    p[5] = static_cast<uint8_t>(ts >> 16);
    p[6] = static_cast<uint8_t>(ts >> 8);
    p[7] = static_cast<uint8_t>(ts);
    p[8] = static_cast<uint8_t>(kBenchSsrc >> 24);
    p[9] = static_cast<uint8_t>(kBenchSsrc >> 16);
    p[10] = static_cast<uint8_t>(kBenchSsrc >> 8);
    p[11] = static_cast<uint8_t>(kBenchSsrc);
    for (uint32_t b = kRtpHeaderLen; b < size_; ++b) p[b] = static_cast<uint8_t>(b * 31 + i);
    SetSeq(i, static_cast<uint16_t>(first_seq + i));
  }
}

void RtpPackets::CopyFrom(const RtpPackets& other) {
  std::memcpy(storage_.get(), other.storage_.get(), count_ * stride_);
}

srtp::MasterKey BenchMasterKey(crypto::Suite suite) {
  srtp::MasterKey key;
  key.suite = suite;
  for (size_t i = 0; i < key.key.size(); ++i) key.key[i] = static_cast<uint8_t>(0xa0 + 3 * i);
  for (size_t i = 0; i < key.salt.size(); ++i) key.salt[i] = static_cast<uint8_t>(0x50 + 7 * i);
  return key;
}

std::vector<uint8_t> KeyAndSalt(const srtp::MasterKey& key) {
  std::vector<uint8_t> out(key.key_bytes().begin(), key.key_bytes().end());
  out.insert(out.end(), key.salt_bytes().begin(), key.salt_bytes().end());
  return out;
}

}  // namespace sluice::bench
