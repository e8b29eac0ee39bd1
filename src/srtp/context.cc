#include "sluice/srtp/context.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sluice::srtp {

absl::StatusOr<std::unique_ptr<Context>> Context::Create(std::span<const MasterKey> keys,
                                                         const ContextOptions& options) {
  if (keys.empty() || keys.size() > kMaxMasterKeys) {
    return absl::InvalidArgumentError(
        absl::StrCat("a crypto context holds 1 to ", kMaxMasterKeys, " master keys, got ",
                     keys.size()));
  }
  if (options.replay_window < 64 || options.replay_window > 1024 ||
      options.replay_window % 64 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "replay window must be 64 to 1024 packets in steps of 64, got ", options.replay_window));
  }
  if (options.max_streams < 1 || options.max_streams > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_streams must be 1 to 64, got ", options.max_streams));
  }
  const crypto::Suite suite = keys[0].suite;
  const uint8_t mki_len = keys[0].mki_len;
  if (mki_len > kMaxMkiLen) {
    return absl::InvalidArgumentError(absl::StrCat("MKI length must be at most ", kMaxMkiLen,
                                                   " bytes, got ", mki_len));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].suite != suite) {
      return absl::InvalidArgumentError(
          absl::StrCat("master key ", i, " is for ", std::string(crypto::SuiteName(keys[i].suite)),
                       " but the context is ", std::string(crypto::SuiteName(suite))));
    }
    if (keys[i].mki_len != mki_len) {
      return absl::InvalidArgumentError(
          absl::StrCat("every master key of a context needs the same MKI length; key ", i,
                       " has ", keys[i].mki_len, ", key 0 has ", mki_len));
    }
    for (size_t j = 0; j < i; ++j) {
      if (mki_len > 0 && std::memcmp(keys[i].mki.data(), keys[j].mki.data(), mki_len) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("master keys ", j, " and ", i, " have the same MKI"));
      }
      if (keys[i].SameKeyAs(keys[j])) {
        return absl::InvalidArgumentError(
            absl::StrCat("master keys ", j, " and ", i, " are the same key"));
      }
    }
  }
  if (keys.size() > 1 && mki_len == 0 && !options.trial_keys) {
    return absl::InvalidArgumentError("several master keys in one context need MKIs");
  }

  std::unique_ptr<Context> ctx(new Context());
  ctx->suite_ = &crypto::GetSuiteInfo(suite);
  ctx->options_ = options;
  ctx->mki_len_ = mki_len;
  ctx->srtp_overhead_ = static_cast<uint8_t>(ctx->suite_->srtp_tag_len + mki_len);
  ctx->keys_.resize(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::StatusOr<crypto::SessionKeys> session =
        crypto::DeriveSessionKeys(*ctx->suite_, keys[i].key_bytes(), keys[i].salt_bytes());
    if (!session.ok()) return session.status();
    Key& k = ctx->keys_[i];
    k.session = std::move(*session);
    k.mki = keys[i].mki;
    // RFC 3711 §9.2: at most 2^48 SRTP and 2^31 SRTCP packets per master key;
    // the SDES lifetime can only lower that.
    const uint64_t lifetime = keys[i].lifetime;
    k.srtp_limit = lifetime == 0 ? ctx->suite_->max_srtp_packets
                                 : std::min(lifetime, ctx->suite_->max_srtp_packets);
    k.srtcp_limit = lifetime == 0 ? ctx->suite_->max_srtcp_packets
                                  : std::min(lifetime, ctx->suite_->max_srtcp_packets);
  }
  const uint32_t words = ReplayWindow::StorageBits(options.replay_window) / 64;
  ctx->window_words_.assign(size_t{options.max_streams} * 2 * words, 0);
  ctx->streams_.resize(options.max_streams);
  for (uint32_t i = 0; i < options.max_streams; ++i) {
    Stream& s = ctx->streams_[i];
    s.rtp_window.Init(&ctx->window_words_[(2 * i) * words], options.replay_window);
    s.rtcp_window.Init(&ctx->window_words_[(2 * i + 1) * words], options.replay_window);
  }
  ctx->SetActiveKey(0);
  return ctx;
}

Context::~Context() = default;  // SessionKey destructors wipe the keys

bool Context::exhausted(int index) const {
  const Key& k = keys_[static_cast<size_t>(index)];
  return k.srtp_count >= k.srtp_limit || k.srtcp_count >= k.srtcp_limit;
}

void Context::AdoptStreamsFrom(const Context& old) noexcept {
  for (const Stream& from : old.streams_) {
    if (!from.in_use) continue;
    Stream* to = FindOrAddStream(from.ssrc);
    if (to == nullptr) return;  // fewer slots than before: the rest start afresh
    to->rtp_window.CopyFrom(from.rtp_window);
    to->rtcp_window.CopyFrom(from.rtcp_window);
    to->srtcp_index = from.srtcp_index;
  }
}

void Context::SeedRtpStream(uint32_t ssrc, uint32_t roc, uint16_t highest_seq) noexcept {
  if (Stream* s = FindOrAddStream(ssrc)) {
    s->rtp_window.Seed((uint64_t{roc} << 16) | highest_seq);
  }
}

int Context::FindKeyByMki(const uint8_t* mki) const noexcept {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (std::memcmp(keys_[i].mki.data(), mki, mki_len_) == 0) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace sluice::srtp
