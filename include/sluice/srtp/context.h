// An SRTP crypto context for one direction of one leg (RFC 3711 §3.2): the
// master keys (by MKI), their derived session keys, and per-SSRC stream state
// (rollover counter, highest sequence, replay windows, SRTCP index).
//
// Created on the control thread. After that, exactly one worker (the owner)
// passes it to Engine; the keys never change, the stream state is written
// only by that worker. Destruction wipes every key.
//
// A context is one allocation: this object, then its master keys' lines,
// their session keys (and AES-GCM tables), the stream slots and their replay
// windows, so that a million sessions' contexts cost no allocator overhead
// and a packet's reads stay within a few lines side by side (see Create).
#ifndef SLUICE_SRTP_CONTEXT_H_
#define SLUICE_SRTP_CONTEXT_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/crypto/session_key.h"
#include "sluice/crypto/suite.h"
#include "sluice/srtp/master_key.h"
#include "sluice/srtp/replay_window.h"
#include "sluice/srtp/stream_state.h"

namespace sluice::srtp {

// What a re-key does to the rollover counter of the streams it carries over.
// RFC 3711 §3.3.1 keeps it across a new master key; RFC 4568 §7.1.4 starts a
// new context (ROC 0) when the new key comes with a new address or port, and
// some peers reset it on any new key. kKeep: carried on. kReset: a send side
// starts fresh streams (ROC 0, new windows). kDetect: a receive side tries
// the kept ROC and then 0 on the first packets of each carried stream under
// the new keys, and keeps whichever authenticates first (see RocAfterRekey).
enum class RocOnRekey : uint8_t { kKeep, kReset, kDetect };

struct ContextOptions {
  // RFC 3711 §3.3.2 replay window, packets: 64 to 1024, a multiple of 64.
  uint32_t replay_window = 128;
  // SSRCs with their own stream state in this context.
  uint32_t max_streams = 4;
  // SRTCP: encrypt what we protect (E flag). Unprotect follows each packet's E.
  bool encrypt_srtcp = true;
  // Several master keys without MKIs: unprotect tries them in order (the
  // first one protects) until the trial deadline. This is the re-key overlap
  // for peers that do not send MKIs: the new key first, the previous one
  // still accepted for packets in flight.
  bool trial_keys = false;
  // How AES-192 session keys come from the master keys (other suites ignore
  // it): RFC 6188, or as libsrtp2 before its AES-192 fix derives them.
  // (Here, in the padding before stream_idle: the options stay 24 bytes.)
  crypto::Aes192Kdf aes192_kdf = crypto::Aes192Kdf::kRfc6188;
  // The re-key rule the context applies when it takes streams over
  // (AdoptStreamsFrom). Only a kDetect context has room for detection's
  // per-stream state (a line of its block). (Also in that padding.)
  RocOnRekey roc_on_rekey = RocOnRekey::kKeep;
  // A sender only: added to every RTP packet's SEQ before protect (modulo
  // 2^16), so its SRTP index is the source's plus this. A restored stream
  // relayed from a plain source starts ahead of every index it may have
  // used before the restart (docs/ha.md, the checkpoint rule); 0 otherwise.
  // (Also in that padding.)
  uint16_t rtp_seq_offset = 0;
  // A stream slot that has carried no packet for this long (Engine::SetNow's
  // clock) may go to a new SSRC once every slot is taken, the least recently
  // used first; a slot used more recently is never taken. UINT64_MAX: slots
  // are never taken back. A reclaimed SSRC is remembered (see
  // kRetiredPerStream) so that it resumes where it stopped if it returns.
  uint64_t stream_idle = UINT64_MAX;
};

inline constexpr int kMaxMasterKeys = 4;


// What detection found for one stream: kNone (not carried, or carried at
// ROC 0, or no detection), kUndecided (no packet under the new keys has
// authenticated yet), kKept, kReset.
enum class RocAfterRekey : uint8_t { kNone, kUndecided, kKept, kReset };
// Packets under the new keys per carried stream that may try ROC 0 after
// failing under the kept ROC; after them, only the kept ROC is tried.
inline constexpr uint8_t kRocTrialPackets = 64;
// Reclaimed streams a context remembers, per stream slot. With all of them
// remembered, no slot is reclaimed until a re-key to a new master key.
inline constexpr uint32_t kRetiredPerStream = 2;

class Context {
 public:
  // 1 to kMaxMasterKeys master keys of one suite. With more than one, each has
  // an MKI of the same length and no two MKIs are equal (or, without MKIs,
  // options.trial_keys). keys[0] protects. With `previous`, its first key
  // (the one it was made with first) follows `keys`, copied as prepared
  // there: the re-key overlap, without anyone keeping the master key.
  // `previous` is only read (its keys never change), so its owner may be
  // using it meanwhile.
  static absl::StatusOr<std::unique_ptr<Context>> Create(std::span<const MasterKey> keys,
                                                         const ContextOptions& options,
                                                         const Context* previous = nullptr);

  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  // Destroys the context (wiping its keys) and frees its block: `delete`
  // (a unique_ptr) is the only way to end a context.
  static void operator delete(Context* ctx, std::destroying_delete_t) noexcept;
  ~Context();

  const crypto::SuiteInfo& suite() const { return *suite_; }
  // Bytes of the block this context is.
  size_t memory_bytes() const { return memory_bytes_; }
  const ContextOptions& options() const { return options_; }
  uint8_t mki_len() const { return mki_len_; }
  int key_count() const { return static_cast<int>(keys_.size()); }

  // Which master key protect uses (owner thread).
  void SetActiveKey(int index) noexcept {
    active_ = static_cast<int8_t>(index);
    active_key_ = &keys_[static_cast<size_t>(index)];
    active_srtp_key_ = active_key_->srtp;
    active_srtp_key_lines_ = static_cast<uint8_t>(active_srtp_key_->hot_lines());
  }
  int active_key() const noexcept { return active_; }

  // Bytes protect appends: SRTP tag + MKI; SRTCP 4-byte index + tag + MKI.
  uint32_t srtp_overhead() const { return srtp_overhead_; }
  uint32_t srtcp_overhead() const { return 4u + suite_->srtcp_tag_len + mki_len_; }

  // Packets protected or unprotected so far with master key `index`, and
  // whether it has reached its lifetime (then protect refuses with
  // kLifetimeExhausted and the control plane should re-key).
  uint64_t srtp_packets(int index) const { return LoadCount(keys_[index].srtp_count); }
  uint64_t srtcp_packets(int index) const { return LoadCount(keys_[index].srtcp_count); }
  bool exhausted(int index) const;
  // How far master key `index` has gone toward its limits, in percent
  // (0 to 100, rounded down): SRTP and SRTCP packets together against the
  // SRTP limit (2^48 or the SDES lifetime: one limit per master key, as
  // libsrtp2 counts it and as RFC 4568 §6.1 words the lifetime), and SRTCP
  // packets alone against 2^31 (RFC 3711 §9.2), whichever is further. Any
  // thread: relaxed reads of the owner's counts.
  uint32_t KeyUsedPercent(int index) const noexcept;
  // The furthest of the keys this context was made with (the carried key
  // ends with the overlap and is not counted). Any thread.
  uint32_t UsedPercent() const noexcept;
  // The owner's counter writes and anyone's reads: relaxed, a plain store
  // and load on x86-64, so another thread may read a count while it moves.
  static void StoreCount(uint64_t& c, uint64_t v) noexcept {
    std::atomic_ref<uint64_t>(c).store(v, std::memory_order_relaxed);
  }
  static uint64_t LoadCount(const uint64_t& c) noexcept {
    return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(c)).load(std::memory_order_relaxed);
  }

  // A master key as the engine uses it: one cache line. The session keys
  // and limits never change after Create; the counts are written by the
  // owner thread only (StoreCount). The SRTP limit bounds SRTP and SRTCP
  // packets together, the SRTCP limit SRTCP packets alone.
  struct alignas(64) Key {
    crypto::SessionKey* srtp = nullptr;   // in the context's block
    crypto::SessionKey* srtcp = nullptr;
    uint64_t srtp_count = 0;   // owner thread
    uint64_t srtcp_count = 0;  // owner thread
    uint64_t srtp_limit = 0;
    uint64_t srtcp_limit = 0;
    std::array<uint8_t, kMaxMkiLen> mki{};
  };
  // Master key `index` (0 to key_count() - 1), and the one protect uses,
  // with its SRTP session key. Owner thread (the counts are its to write).
  Key& key(int index) noexcept { return keys_[static_cast<size_t>(index)]; }
  Key& active() noexcept { return *active_key_; }
  const crypto::SessionKey& active_srtp_key() const noexcept { return *active_srtp_key_; }
  // The index of the master key whose MKI (mki_len() bytes) is at `mki`, or
  // -1. Any thread (the MKIs never change).
  int FindKeyByMki(const uint8_t* mki) const noexcept;
  // Whether unprotect may try keys after the first on a packet that failed
  // authentication: trial keys on, no MKIs, several keys, before the trial
  // deadline. Any thread.
  bool TrialKeysOpen(uint64_t now) const noexcept {
    return options_.trial_keys && mki_len_ == 0 && keys_.size() > 1 && now < trial_until_;
  }

  // Per-SSRC state, owner thread only: one cache line. FindStream,
  // FindOrAddStream and CanAddStream are the owner thread's too.
  struct alignas(64) Stream {
    uint32_t ssrc = 0;
    // SRTCP: the sender's last index (the first packet gets 1, as in
    // libsrtp); the receiver's window over the 31-bit index.
    uint32_t srtcp_index = 0;
    // SRTP: the highest 48-bit packet index (ROC << 16 | SEQ, RFC 3711
    // §3.3.1) is the window's top; the window remembers the ones before it.
    // A sender keeps one too, so no index is ever protected twice.
    ReplayWindow rtp_window;
    ReplayWindow rtcp_window;
    // When the slot last carried a packet: the engine's clock + 1, so that a
    // slot in use is never 0; 0 while free.
    uint64_t last_used = 0;

    bool in_use() const { return last_used != 0; }
    uint32_t roc() const { return static_cast<uint32_t>(rtp_window.top() >> 16); }
    uint16_t highest_seq() const { return static_cast<uint16_t>(rtp_window.top()); }
  };
  // The stream for ssrc, or null.
  Stream* FindStream(uint32_t ssrc) noexcept;
  // The stream for ssrc, its last use now; else a slot for it, if a slot is
  // free or one has been idle for options().stream_idle (then the least
  // recently used, remembered as retired: see ClaimStream); else null. The
  // caller has authenticated the packet (unprotect) or accepted its source
  // (protect): a slot is taken only for packets that may be relayed.
  Stream* FindOrAddStream(uint32_t ssrc, uint64_t now) noexcept;
  // Whether FindOrAddStream(ssrc, now) would find a slot for ssrc, which has
  // none. Out of line: for packets of SSRCs without a slot only.
  bool CanAddStream(uint32_t ssrc, uint64_t now) const noexcept;
  // The highest SRTP index of ssrc, which has no slot, when it was retired
  // from one: its packets resume from there (RFC 3711 §3.3.1 estimate) and
  // nothing at or below it is accepted again. Out of line, as CanAddStream.
  bool RetiredRtpTop(uint32_t ssrc, uint64_t* top) const noexcept;
  std::span<const Stream> streams() const { return {streams_.data(), streams_.size()}; }

  // The streams in use, any thread: relaxed reads of the owner's slots, so a
  // checkpoint may be a few packets behind the worker. `sender`: this
  // context protects (its SRTCP index is the last sent).
  std::vector<StreamState> SnapshotStreams(bool sender) const;
  // Control thread, before the context is published: the stream resumes
  // where `state` says, nothing at or below its indices used or accepted
  // again (RFC 3711 §3.3.2, §9.1). False when no slot is free.
  bool RestoreStream(const StreamState& state, bool sender) noexcept;

  // Sets where a sender's SRTP stream starts, so that its rollover counter
  // carries on; never below an index the stream has used.
  void SeedRtpStream(uint32_t ssrc, uint32_t roc, uint16_t highest_seq) noexcept;

  // Re-key, owner thread: takes over every stream of `old` (RFC 3711 §3.3.1:
  // the rollover counter and highest index belong to the stream, not the
  // key, so they carry on; replay windows carry on too; SRTCP indices keep
  // counting). When this context holds one of old's master keys (the
  // receive side's make-before-break), it also keeps what old remembered of
  // its retired streams under that key; with only new keys it starts none
  // remembered. Does not allocate.
  // With roc_on_rekey() kReset it takes over nothing: every stream starts
  // afresh (RFC 4568 §7.1.4). With kDetect, each carried stream whose ROC is
  // above 0 starts kUndecided.
  void AdoptStreamsFrom(const Context& old) noexcept;

  // The re-key rule this context applies when it takes over
  // (ContextOptions::roc_on_rekey).
  RocOnRekey roc_on_rekey() const noexcept { return options_.roc_on_rekey; }
  // Whether some stream is still kUndecided with trials left: unprotect
  // takes its cold path (MarkRocTrial) only then. Owner thread.
  bool roc_watch() const noexcept { return roc_watch_; }
  // Detection's per-stream state (owner thread); only a kDetect context
  // has it.
  struct RocTrial {
    RocAfterRekey state = RocAfterRekey::kNone;
    uint8_t trials_left = 0;
  };
  RocTrial& roc_trial(const Stream& s) noexcept {
    return roc_trials()[static_cast<size_t>(&s - streams_.data())];
  }
  // Whether a packet of `ssrc` under master key `k` may try ROC 0 (its
  // stream kUndecided with trials left, k not the carried key); counts the
  // trial. Out of line: only while roc_watch().
  bool MarkRocTrial(uint32_t ssrc, int k) noexcept;
  // A packet of `ssrc` under the new keys authenticated with the kept ROC
  // (reset false) or with ROC 0 at kept ROC `kept_roc` (reset true): the
  // first one fixes the stream's rule (on reset its replay window moves down
  // to ROC 0, nothing it held accepted again). False when the stream was
  // already fixed the other way: the packet must be dropped.
  bool DecideRoc(Stream& s, bool reset, uint32_t kept_roc) noexcept;
  // What detection found over the streams: kReset if any stream was reset,
  // else kUndecided if any is undecided, else kKept if any kept, else
  // kNone. Any thread (relaxed reads of the owner's bytes).
  RocAfterRekey roc_after_rekey() const noexcept;

  // Starts loading what protecting or unprotecting this context's next RTP
  // packet reads (the active key's counters and session key, the stream
  // table and its replay windows), so that a burst of packets of many
  // sessions waits for memory once, not once per packet. Owner thread; a
  // hint only, it changes nothing.
  void PrefetchRtp() const noexcept;
  // Starts loading the block's first kLeadingLines lines into the L2 cache
  // without reading anything of it (so with nothing of it loaded yet): this
  // object, the first key, its SRTP session key and, with one master key and
  // the default stream and window options, the replay windows and the first
  // stream: all an RTP packet of that stream reads. For a worker that is a
  // burst or two ahead of the packet; L2 rather than L1, which a burst's
  // worth of contexts would overflow and which holds what the core works on
  // now. PrefetchRtp then finds them, or loads what lies further.
  static constexpr int kLeadingLines = 11;
  void PrefetchLeadingLines() const noexcept {
    for (int line = 0; line < kLeadingLines; ++line) {
      __builtin_prefetch(reinterpret_cast<const char*>(this) + 64 * line, 0, 2);
    }
  }

  // The re-key overlap's end (Engine::SetNow's clock): keys after the first
  // are tried on unprotect only while now < deadline, and the key carried
  // from the previous context (see Create) is refused after it, by MKI too.
  // Default: no deadline.
  void SetTrialDeadline(uint64_t deadline) noexcept { trial_until_ = deadline; }
  uint64_t trial_deadline() const noexcept { return trial_until_; }
  // The index of the key carried from the previous context, or -1.
  int carried_key() const noexcept { return carried_; }
  // Whether master key k is the carried one and the overlap is over. Any
  // thread; on data in this object's first line or two.
  bool KeyRetired(int k, uint64_t now) const noexcept { return k == carried_ && now >= trial_until_; }
  // Re-key, owner thread, with AdoptStreamsFrom: the carried key's packet
  // counts are the master key's, so they go on from what `old` counted with
  // it (RFC 3711 §9.2's limit is per master key, not per context).
  void AdoptKeyCountsFrom(const Context& old) noexcept;
  // Test only: starts master key k's counts at these values, as if it had
  // carried that many packets (a key's limit is 2^48; no test sends that).
  void SetKeyCountsForTesting(int k, uint64_t srtp, uint64_t srtcp) noexcept {
    keys_[static_cast<size_t>(k)].srtp_count = srtp;
    keys_[static_cast<size_t>(k)].srtcp_count = srtcp;
  }

 private:
  struct Layout;  // where each part sits in the block (context.cc)

  Context() = default;
  // Create's steps, in order.
  static absl::Status CheckPrevious(std::span<const MasterKey> keys, const Context* previous);
  static std::unique_ptr<Context> Place(const Layout& at, const crypto::SuiteInfo& info,
                                        const ContextOptions& options, uint8_t mki_len);
  absl::Status DeriveKey(size_t i, const MasterKey& master);
  void CarryKey(const Key& carried);
  // What a stream leaves when its slot is reclaimed: its SSRC and the
  // highest indices it used, so that none is used again under these keys.
  struct Retired {
    static constexpr uint64_t kUsed = uint64_t{1} << 63;
    // Recorded by the context this one took its streams over from.
    static constexpr uint64_t kInherited = uint64_t{1} << 62;
    static constexpr uint64_t kIndexMask = (uint64_t{1} << 49) - 1;
    uint32_t ssrc = 0;
    uint32_t rtcp_next = 0;  // highest SRTCP index sent or received + 1; 0: none
    uint64_t rtp_next = 0;   // highest SRTP index + 1 (0: none), with the flags
    bool used() const { return (rtp_next & kUsed) != 0; }
  };
  static_assert(sizeof(Retired) == 16);

  // FindOrAddStream for an SSRC without a stream (out of line: rare).
  Stream* ClaimStream(uint32_t ssrc, uint64_t now) noexcept;
  // A free slot, else the least recently used one if idle since
  // options_.stream_idle before now, else null.
  const Stream* ReclaimableStream(uint64_t now) const noexcept;
  std::span<Retired> retired() const noexcept {
    return {reinterpret_cast<Retired*>(streams_.data() + streams_.size()),
            streams_.size() * kRetiredPerStream};
  }
  Retired* FindRetired(uint32_t ssrc) const noexcept;
  // One per stream slot, from the line after the retired records; a kDetect
  // context's only.
  RocTrial* roc_trials() const noexcept {
    const std::span<Retired> r = retired();
    const uintptr_t end = reinterpret_cast<uintptr_t>(r.data() + r.size());
    return reinterpret_cast<RocTrial*>((end + 63) & ~uintptr_t{63});
  }
  // Where stream `s`, whose slot goes to `ssrc`, is remembered: null when it
  // needs no record (it used no index), else ssrc's own record or a free
  // one; *full when it needs one and there is none.
  Retired* RetireInto(const Stream& s, uint32_t ssrc, bool* full) const noexcept;
  void Remember(const Stream& s, Retired& into) noexcept;
  static void Resume(const Retired& r, Stream& s) noexcept;
  void InheritRetired(const Context& old) noexcept;
  void SetRocState(Stream& s, RocAfterRekey state, uint8_t trials) noexcept;
  void RecomputeRocWatch() noexcept;

  const crypto::SuiteInfo* suite_ = nullptr;
  ContextOptions options_;
  uint8_t mki_len_ = 0;
  uint8_t srtp_overhead_ = 0;  // suite_->srtp_tag_len + mki_len_
  uint8_t active_srtp_key_lines_ = 0;  // active_srtp_key_->hot_lines()
  // The key carried from the previous context, or -1 (kMaxMasterKeys fits;
  // a byte keeps this object in the two lines PrefetchRtp loads).
  int8_t carried_ = -1;
  int8_t active_ = 0;  // as carried_
  bool roc_watch_ = false;  // owner thread
  // keys_[active_] and its SRTP session key, so that protect finds them in
  // this object and PrefetchRtp needs nothing but this object to be loaded.
  Key* active_key_ = nullptr;
  const crypto::SessionKey* active_srtp_key_ = nullptr;
  uint64_t trial_until_ = UINT64_MAX;
  size_t memory_bytes_ = 0;
  // In the context's block, after this object.
  std::span<Key> keys_;
  std::span<Stream> streams_;
  uint64_t* window_words_ = nullptr;  // backing store of every replay window
  std::span<crypto::GcmTables> gcm_tables_;  // AES-GCM: two per key
};

static_assert(sizeof(Context::Stream) == 64);
static_assert(sizeof(ContextOptions) == 24);
// PrefetchRtp loads this object's two lines ahead of the keys and streams.
static_assert(sizeof(Context) <= 128);

// Per packet in the engine: inline.
inline Context::Stream* Context::FindStream(uint32_t ssrc) noexcept {
  for (Stream& s : streams_) {
    if (s.in_use() && s.ssrc == ssrc) return &s;
  }
  return nullptr;
}

inline Context::Stream* Context::FindOrAddStream(uint32_t ssrc, uint64_t now) noexcept {
  for (Stream& s : streams_) {
    if (s.in_use() && s.ssrc == ssrc) {
      s.last_used = now + 1;  // the line the packet's index is written to
      return &s;
    }
  }
  return ClaimStream(ssrc, now);
}

inline void Context::PrefetchRtp() const noexcept {
  // Addresses from this object only, no loads through them: every prefetch
  // issues at once.
  __builtin_prefetch(active_key_);
  __builtin_prefetch(streams_.data());
  __builtin_prefetch(window_words_);
  // The session key's hot lines (four for AES-128 with HMAC-SHA1); AES-GCM
  // reads its round keys and hash tables from `gcm`, whose address is in the
  // first line.
  const char* sk = reinterpret_cast<const char*>(active_srtp_key_);
  for (int line = 0; line < active_srtp_key_lines_; ++line) __builtin_prefetch(sk + 64 * line);
}

}  // namespace sluice::srtp

#endif  // SLUICE_SRTP_CONTEXT_H_
