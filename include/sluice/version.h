// Sluice's version string, shared by every binary.
#ifndef SLUICE_VERSION_H_
#define SLUICE_VERSION_H_

namespace sluice {

inline constexpr char kVersion[] = "0.1.0";

}  // namespace sluice

#endif  // SLUICE_VERSION_H_
