#include "sluice/ha/sealer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "absl/strings/str_cat.h"

namespace sluice::ha {
namespace {

constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kHeaderBytes = 1 + 4;
constexpr char kKekIdLabel[] = "sluice-ha-kek-id";

uint32_t ReadBe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

std::string ModeText(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

std::string KekIdText(uint32_t id) {
  char text[9];
  std::snprintf(text, sizeof(text), "%08x", id);
  return text;
}

}  // namespace

struct Sealer::Kek {
  std::array<uint8_t, kKekBytes> bytes{};
  ~Kek() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

Sealer::Sealer(Sealer&&) noexcept = default;
Sealer& Sealer::operator=(Sealer&&) noexcept = default;
Sealer::~Sealer() = default;

Sealer Sealer::FromKey(const std::array<uint8_t, kKekBytes>& kek) {
  Sealer s;
  s.kek_ = std::make_unique<Kek>();
  s.kek_->bytes = kek;
  unsigned char input[sizeof(kKekIdLabel) - 1 + kKekBytes];
  std::memcpy(input, kKekIdLabel, sizeof(kKekIdLabel) - 1);
  std::memcpy(input + sizeof(kKekIdLabel) - 1, kek.data(), kek.size());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_Digest(input, sizeof(input), digest, &digest_len, EVP_sha256(), nullptr);
  OPENSSL_cleanse(input, sizeof(input));
  s.kek_id_ = ReadBe32(reinterpret_cast<const char*>(digest));
  return s;
}

absl::StatusOr<Sealer> Sealer::FromFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("ha.kek_file ", path, ": cannot open: ", std::strerror(errno)));
  }
  struct stat st {};
  std::array<uint8_t, kKekBytes> kek{};
  absl::Status status;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    status = absl::FailedPreconditionError(absl::StrCat("ha.kek_file ", path, ": not a regular file"));
  } else if ((st.st_mode & 077) != 0) {
    status = absl::FailedPreconditionError(absl::StrCat(
        "ha.kek_file ", path, ": mode ", ModeText(st.st_mode),
        " lets group or others read the key-encryption key; chmod 0600 it"));
  } else if (st.st_size != static_cast<off_t>(kKekBytes) ||
             read(fd, kek.data(), kek.size()) != static_cast<ssize_t>(kKekBytes)) {
    status = absl::FailedPreconditionError(absl::StrCat(
        "ha.kek_file ", path, ": must hold exactly 32 bytes (head -c 32 /dev/urandom > FILE)"));
  }
  close(fd);
  if (!status.ok()) {
    OPENSSL_cleanse(kek.data(), kek.size());
    return status;
  }
  Sealer s = FromKey(kek);
  OPENSSL_cleanse(kek.data(), kek.size());
  return s;
}

void Sealer::SetPrevious(Sealer previous) {
  previous.previous_.reset();  // one generation back at most
  previous_ = std::make_unique<Sealer>(std::move(previous));
}

absl::StatusOr<uint32_t> Sealer::KekIdOf(std::string_view sealed) {
  if (sealed.size() < kSealOverhead) return absl::DataLossError("sealed value truncated");
  if (static_cast<uint8_t>(sealed[0]) != kSealVersion) {
    return absl::DataLossError(
        absl::StrCat("sealed value of unknown version ", static_cast<int>(sealed[0])));
  }
  return ReadBe32(sealed.data() + 1);
}

absl::StatusOr<std::string> Sealer::Seal(std::string_view plaintext, std::string_view aad) const {
  std::string out(kHeaderBytes + kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  p[0] = kSealVersion;
  for (int i = 0; i < 4; ++i) p[1 + i] = static_cast<unsigned char>(kek_id_ >> (24 - 8 * i));
  unsigned char* nonce = p + kHeaderBytes;
  if (RAND_bytes(nonce, kNonceBytes) != 1) return absl::InternalError("no random source for a nonce");
  unsigned char* body = nonce + kNonceBytes;
  CipherCtx c;
  int len = 0;
  // The header is authenticated too: a changed KEK id or version fails.
  const bool ok =
      c.ctx != nullptr &&
      EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, kek_->bytes.data(), nonce) == 1 &&
      EVP_EncryptUpdate(c.ctx, nullptr, &len, p, kHeaderBytes) == 1 &&
      EVP_EncryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(c.ctx, body, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(c.ctx, body + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, body + plaintext.size()) == 1;
  if (!ok) return absl::InternalError("AES-256-GCM sealing failed");
  return out;
}

absl::StatusOr<std::string> Sealer::Unseal(std::string_view sealed, std::string_view aad) const {
  absl::StatusOr<uint32_t> id = KekIdOf(sealed);
  if (!id.ok()) return id.status();
  if (*id != kek_id_) {
    if (previous_ != nullptr && *id == previous_->kek_id_) return previous_->Unseal(sealed, aad);
    return absl::FailedPreconditionError(absl::StrCat(
        "sealed under KEK id ", KekIdText(*id), ", but ha.kek_file is KEK id ", KekIdText(kek_id_),
        previous_ ? absl::StrCat(" and ha.previous_kek_file ", KekIdText(previous_->kek_id_)) : "",
        ": wrong key-encryption key"));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(sealed.data());
  const unsigned char* nonce = p + kHeaderBytes;
  const unsigned char* body = nonce + kNonceBytes;
  const size_t body_len = sealed.size() - kSealOverhead;
  std::string out(body_len, '\0');
  std::array<unsigned char, kTagBytes> tag;
  std::memcpy(tag.data(), body + body_len, kTagBytes);
  CipherCtx c;
  int len = 0;
  const bool ok =
      c.ctx != nullptr &&
      EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, kek_->bytes.data(), nonce) == 1 &&
      EVP_DecryptUpdate(c.ctx, nullptr, &len, p, kHeaderBytes) == 1 &&
      EVP_DecryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(c.ctx, reinterpret_cast<unsigned char*>(out.data()), &len, body,
                        static_cast<int>(body_len)) == 1 &&
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(c.ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &len) == 1;
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return absl::DataLossError("sealed value does not authenticate (damaged, or sealed for another session)");
  }
  return out;
}

}  // namespace sluice::ha
