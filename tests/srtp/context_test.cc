// srtp::Context's memory: one block per context, and no key left in it when
// it is freed. The block comes from the hot arena, or from operator new
// where the arena passes blocks through (AddressSanitizer builds): this
// binary replaces the global operator new and delete to watch those.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <vector>

#include "sluice/crypto/session_key.h"
#include "sluice/memory/hot_arena.h"
#include "sluice/srtp/context.h"
#include "sluice/srtp/master_key.h"

namespace {

// Counted while `counting`; the block at `watched` is copied into
// `last_freed` just before it is freed.
bool counting = false;
int allocations = 0;
void* watched = nullptr;
size_t watched_size = 0;
std::vector<unsigned char>* last_freed = nullptr;

void* Allocate(size_t n, size_t align) {
  if (counting) ++allocations;
  void* p = align > alignof(std::max_align_t)
                ? std::aligned_alloc(align, (std::max<size_t>(n, 1) + align - 1) / align * align)
                : std::malloc(std::max<size_t>(n, 1));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void Free(void* p) noexcept {
  if (p != nullptr && p == watched && last_freed != nullptr) {
    const auto* bytes = static_cast<const unsigned char*>(p);
    last_freed->assign(bytes, bytes + watched_size);
  }
  std::free(p);
}

}  // namespace

void* operator new(size_t n) { return Allocate(n, alignof(std::max_align_t)); }
void* operator new[](size_t n) { return Allocate(n, alignof(std::max_align_t)); }
void* operator new(size_t n, std::align_val_t a) { return Allocate(n, static_cast<size_t>(a)); }
void* operator new[](size_t n, std::align_val_t a) { return Allocate(n, static_cast<size_t>(a)); }
void operator delete(void* p) noexcept { Free(p); }
void operator delete[](void* p) noexcept { Free(p); }
void operator delete(void* p, size_t) noexcept { Free(p); }
void operator delete[](void* p, size_t) noexcept { Free(p); }
void operator delete(void* p, std::align_val_t) noexcept { Free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { Free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { Free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { Free(p); }

namespace sluice::srtp {
namespace {

MasterKey RandomKey(crypto::Suite suite, std::mt19937_64& rng, uint8_t mki = 0) {
  MasterKey k;
  k.suite = suite;
  for (auto& b : k.key) b = static_cast<uint8_t>(rng());
  for (auto& b : k.salt) b = static_cast<uint8_t>(rng());
  if (mki != 0) {
    k.mki_len = 1;
    k.mki[0] = mki;
  }
  return k;
}

bool Contains(const std::vector<unsigned char>& haystack, const uint8_t* needle, size_t n) {
  return std::search(haystack.begin(), haystack.end(), needle, needle + n) != haystack.end();
}

class ContextMemoryTest : public ::testing::TestWithParam<crypto::Suite> {};

TEST_P(ContextMemoryTest, OneAllocationHoldingKeysStreamsAndWindows) {
  std::mt19937_64 rng(7);
  const MasterKey keys[] = {RandomKey(GetParam(), rng, 1), RandomKey(GetParam(), rng, 2)};
  ContextOptions options;
  options.replay_window = 1024;
  options.max_streams = 8;
  crypto::DeriveSessionKeys(crypto::GetSuiteInfo(GetParam()), keys[0].key_bytes(),
                            keys[0].salt_bytes())
      .IgnoreError();  // the control thread's ipsec-mb manager exists before counting
  allocations = 0;
  const uint64_t arena_blocks = memory::GetHotArenaStats().in_use_blocks;
  counting = true;
  absl::StatusOr<std::unique_ptr<Context>> ctx = Context::Create(keys, options);
  counting = false;
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  const uint64_t from_arena = memory::GetHotArenaStats().in_use_blocks - arena_blocks;
  EXPECT_EQ(allocations + from_arena, 1u) << allocations << " from operator new";
  EXPECT_EQ(from_arena, memory::HotArenaUsesRegions() ? 1u : 0u);
  EXPECT_EQ((*ctx)->key_count(), 2);
  // Every stream slot, with its windows, is usable.
  for (uint32_t ssrc = 1; ssrc <= options.max_streams; ++ssrc) {
    Context::Stream* s = (*ctx)->FindOrAddStream(ssrc, 0);
    ASSERT_NE(s, nullptr) << ssrc;
    EXPECT_EQ(s->rtp_window.size(), 1024u);
    EXPECT_EQ(s->rtcp_window.size(), 1024u);
  }
  EXPECT_EQ((*ctx)->FindOrAddStream(options.max_streams + 1, 0), nullptr);
}

TEST_P(ContextMemoryTest, FreedBlockHoldsNoKey) {
  std::mt19937_64 rng(11);
  const MasterKey key = RandomKey(GetParam(), rng);
  const crypto::SuiteInfo& info = crypto::GetSuiteInfo(GetParam());
  // The same derivation outside the context: what its block holds while alive.
  absl::StatusOr<crypto::SessionKeys> want =
      crypto::DeriveSessionKeys(info, key.key_bytes(), key.salt_bytes());
  ASSERT_TRUE(want.ok()) << want.status();
  struct Secret {
    const char* what;
    const uint8_t* bytes;
    size_t len;
  };
  std::vector<Secret> secrets;
  for (const crypto::SessionKey* sk : {want->srtp.get(), want->srtcp.get()}) {
    secrets.push_back({"session salt", sk->salt(), info.salt_len});
    if (info.cipher != crypto::CipherKind::kNull) {
      secrets.push_back({"session key", sk->enc_key(), info.key_len});
    }
    if (info.srtp_auth == crypto::AuthKind::kHmacSha1) {
      secrets.push_back({"HMAC inner state", sk->hmac_ipad_state, 20});
      secrets.push_back({"HMAC outer state", sk->hmac_opad_state, 20});
    }
  }

  absl::StatusOr<std::unique_ptr<Context>> ctx = Context::Create({&key, 1}, ContextOptions{});
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  // The block holds them while the context lives (so the search below
  // would find them) ...
  const auto* base = reinterpret_cast<const unsigned char*>(ctx->get());
  const size_t size = (*ctx)->memory_bytes();
  const std::vector<unsigned char> alive(base, base + size);
  for (const Secret& s : secrets) {
    ASSERT_TRUE(Contains(alive, s.bytes, s.len)) << s.what << " is not in the context's block";
  }
  // ... and not once it is destroyed: a block freed to the arena stays
  // mapped there (and is read in place); one freed to operator delete is
  // copied just before.
  std::vector<unsigned char> freed;
  watched = ctx->get();
  watched_size = size;
  last_freed = &freed;
  ctx->reset();
  last_freed = nullptr;
  watched = nullptr;
  if (memory::HotArenaUsesRegions()) freed.assign(base, base + size);
  ASSERT_EQ(freed.size(), size);
  for (const Secret& s : secrets) EXPECT_FALSE(Contains(freed, s.bytes, s.len)) << s.what;
}

// With one master key and the default options, the block's first
// kLeadingLines lines hold all an RTP packet reads (this object, the key's
// line, its SRTP session key, the first stream): what a worker loads a burst
// ahead knowing nothing but the context's address.
TEST_P(ContextMemoryTest, LeadingLinesHoldWhatAnRtpPacketReads) {
  std::mt19937_64 rng(13);
  const MasterKey key = RandomKey(GetParam(), rng);
  const crypto::SuiteInfo& info = crypto::GetSuiteInfo(GetParam());
  absl::StatusOr<crypto::SessionKeys> want =
      crypto::DeriveSessionKeys(info, key.key_bytes(), key.salt_bytes());
  ASSERT_TRUE(want.ok()) << want.status();
  absl::StatusOr<std::unique_ptr<Context>> ctx = Context::Create({&key, 1}, ContextOptions{});
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  const auto* base = reinterpret_cast<const unsigned char*>(ctx->get());
  const std::vector<unsigned char> leading(base, base + Context::kLeadingLines * 64);
  ASSERT_LE(leading.size(), (*ctx)->memory_bytes());
  const crypto::SessionKey& srtp = *want->srtp;
  EXPECT_TRUE(Contains(leading, srtp.salt(), info.salt_len)) << "SRTP session salt";
  if (info.cipher != crypto::CipherKind::kNull) {
    EXPECT_TRUE(Contains(leading, srtp.enc_key(), info.key_len)) << "SRTP session key";
  }
  if (info.srtp_auth == crypto::AuthKind::kHmacSha1) {
    EXPECT_TRUE(Contains(leading, srtp.hmac_ipad_state, 20)) << "HMAC inner state";
    EXPECT_TRUE(Contains(leading, srtp.hmac_opad_state, 20)) << "HMAC outer state";
  }
  const auto* stream = reinterpret_cast<const unsigned char*>(&(*ctx)->streams()[0]);
  EXPECT_GE(stream, base);
  EXPECT_LE(stream + sizeof(Context::Stream), base + leading.size()) << "first stream";
}

// A million sessions hold four contexts each: with one master key and the
// default options a context is its object, the key's line, two session keys,
// the windows, four stream slots and their retired records (21 lines, GCM's
// tables aside); only a context that detects a peer's ROC reset on re-key
// has a line more, for detection's per-stream state.
TEST_P(ContextMemoryTest, DefaultContextHasNoLineToSpare) {
  std::mt19937_64 rng(17);
  const MasterKey key = RandomKey(GetParam(), rng);
  const crypto::SuiteInfo& info = crypto::GetSuiteInfo(GetParam());
  const size_t tables = info.cipher == crypto::CipherKind::kAesGcm ? 2 * sizeof(crypto::GcmTables) : 0;
  absl::StatusOr<std::unique_ptr<Context>> keep = Context::Create({&key, 1}, ContextOptions{});
  ASSERT_TRUE(keep.ok()) << keep.status();
  EXPECT_EQ((*keep)->memory_bytes(), 21 * 64 + tables);
  EXPECT_EQ((*keep)->roc_after_rekey(), RocAfterRekey::kNone);
  absl::StatusOr<std::unique_ptr<Context>> detect =
      Context::Create({&key, 1}, {.roc_on_rekey = RocOnRekey::kDetect});
  ASSERT_TRUE(detect.ok()) << detect.status();
  EXPECT_EQ((*detect)->memory_bytes(), (*keep)->memory_bytes() + 64);
}

INSTANTIATE_TEST_SUITE_P(Suites, ContextMemoryTest,
                         ::testing::Values(crypto::Suite::kAesCm128HmacSha1_80,
                                           crypto::Suite::kAes256CmHmacSha1_32,
                                           crypto::Suite::kAeadAes128Gcm,
                                           crypto::Suite::kNullHmacSha1_80),
                         [](const ::testing::TestParamInfo<crypto::Suite>& info) {
                           std::string name(crypto::SuiteName(info.param));
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// HA (docs/ha.md): a stream restored from a checkpoint accepts nothing at
// or below its indices again, and a snapshot reads back what was restored.
TEST(ContextRestoreTest, RestoredStreamsResumeAboveTheirCheckpoint) {
  std::mt19937_64 rng(21);
  const MasterKey key = RandomKey(crypto::Suite::kAesCm128HmacSha1_80, rng);
  absl::StatusOr<std::unique_ptr<Context>> rx = Context::Create({&key, 1}, ContextOptions{});
  absl::StatusOr<std::unique_ptr<Context>> tx = Context::Create({&key, 1}, ContextOptions{});
  ASSERT_TRUE(rx.ok() && tx.ok());
  const uint64_t top = (uint64_t{1} << 16) | 65500;  // ROC 1, SEQ 65500
  ASSERT_TRUE((*rx)->RestoreStream({0xabc, true, top, 40}, false));
  ASSERT_TRUE((*tx)->RestoreStream({0xabc, true, top, 90}, true));
  const Context::Stream* s = (*rx)->FindStream(0xabc);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->roc(), 1u);
  EXPECT_EQ(s->rtp_window.Check(top), ReplayCheck::kReplayed);
  EXPECT_EQ(s->rtp_window.Check(top - 5), ReplayCheck::kReplayed);
  EXPECT_EQ(s->rtp_window.Check(top + 1), ReplayCheck::kNew);
  EXPECT_EQ(s->rtcp_window.Check(40), ReplayCheck::kReplayed);
  EXPECT_EQ(s->rtcp_window.Check(41), ReplayCheck::kNew);
  EXPECT_EQ((*tx)->FindStream(0xabc)->srtcp_index, 90u);  // the next SRTCP index is 91
  const std::vector<StreamState> snap = (*rx)->SnapshotStreams(false);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].ssrc, 0xabcu);
  EXPECT_EQ(snap[0].rtp_top, top);
  EXPECT_EQ(snap[0].rtcp_index, 40u);
  EXPECT_EQ((*tx)->SnapshotStreams(true)[0].rtcp_index, 90u);
  // More streams than slots: refused, not overwritten.
  for (uint32_t ssrc = 1; ssrc < ContextOptions{}.max_streams; ++ssrc) {
    EXPECT_TRUE((*rx)->RestoreStream({ssrc, false, 0, 0}, false));
  }
  EXPECT_FALSE((*rx)->RestoreStream({0xdef, true, 5, 0}, false));
}

}  // namespace
}  // namespace sluice::srtp
