// Sealing of key material for Redis (docs/ha.md): AES-256-GCM under the
// key-encryption key (KEK), the session name as associated data, a random
// 96-bit nonce per record. A sealed value names its KEK by an id, so that a
// wrong KEK is told apart from a damaged record and an old KEK can be
// rotated out.
//
// Control thread. The KEK is kept in a block of its own, wiped with the
// Sealer; plaintext buffers are wiped by whoever holds them.
#ifndef SLUICE_HA_SEALER_H_
#define SLUICE_HA_SEALER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice::ha {

inline constexpr size_t kKekBytes = 32;
inline constexpr uint8_t kSealVersion = 1;
// version (1) | KEK id (4) | nonce (12) | ciphertext | GCM tag (16)
inline constexpr size_t kSealOverhead = 1 + 4 + 12 + 16;

class Sealer {
 public:
  // Reads the KEK file: exactly 32 bytes, a regular file, no access for
  // group or others (mode 0600 or stricter).
  static absl::StatusOr<Sealer> FromFile(const std::string& path);
  static Sealer FromKey(const std::array<uint8_t, kKekBytes>& kek);

  Sealer(Sealer&&) noexcept;
  Sealer& operator=(Sealer&&) noexcept;
  ~Sealer();

  // The KEK's id: the first 4 bytes of SHA-256("sluice-ha-kek-id" || KEK),
  // which names the key without revealing it.
  uint32_t kek_id() const { return kek_id_; }

  // A KEK being rotated out ([ha] previous_kek_file, docs/ha.md): what it
  // sealed still unseals; Seal always uses this Sealer's own KEK.
  void SetPrevious(Sealer previous);

  absl::StatusOr<std::string> Seal(std::string_view plaintext, std::string_view aad) const;
  // The plaintext (the caller wipes it); FailedPrecondition when sealed
  // under another KEK (its id in the message), DataLoss when damaged or
  // bound to other associated data.
  absl::StatusOr<std::string> Unseal(std::string_view sealed, std::string_view aad) const;
  // The KEK id a sealed value names; DataLoss when it is too short or of
  // another version.
  static absl::StatusOr<uint32_t> KekIdOf(std::string_view sealed);

 private:
  Sealer() = default;
  // The KEK in a block of its own (wiped on destruction).
  struct Kek;
  std::unique_ptr<Kek> kek_;
  uint32_t kek_id_ = 0;
  std::unique_ptr<Sealer> previous_;
};

}  // namespace sluice::ha

#endif  // SLUICE_HA_SEALER_H_
