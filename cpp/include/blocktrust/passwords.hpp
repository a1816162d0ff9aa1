// Argon2id password hashing in PHC strings, and the dual (normal + duress) password check.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "blocktrust/error.hpp"

namespace blocktrust::passwords {

/// Raised when a stored hash is not a well-formed Argon2 PHC string; never carries a password.
class InvalidPasswordHash : public Error {
 public:
  using Error::Error;
};

/// Raised for a password that cannot be used (too long, or a duress password equal to the normal).
class PasswordError : public Error {
 public:
  using Error::Error;
};

/// Argon2id cost parameters. The defaults are OWASP's (Password Storage Cheat Sheet, 2023+):
/// m = 19 MiB, t = 2, p = 1.
struct Params {
  std::uint32_t memory_kib = 19456;  ///< memory cost in KiB (m)
  std::uint32_t iterations = 2;      ///< time cost (t)
  std::uint32_t parallelism = 1;     ///< lanes (p)
  std::uint32_t hash_len = 32;       ///< bytes of output
  std::uint32_t salt_len = 16;       ///< bytes of random salt

  /// Throws ConfigError naming the first parameter out of libargon2's range.
  void validate() const;
};

/// Longest password accepted, in bytes (longer input is a PasswordError, not a slow hash).
inline constexpr std::size_t kMaxPasswordBytes = 4096;

/// Hashes `password` with a fresh CSPRNG salt; returns "$argon2id$v=19$m=..,t=..,p=..$salt$hash".
[[nodiscard]] std::string hash(std::string_view password, const Params& params = {});

/// True when `password` matches `phc` (argon2id, argon2i or argon2d); constant-time compare.
/// Throws InvalidPasswordHash when `phc` is malformed.
[[nodiscard]] bool verify(std::string_view password, const std::string& phc);

/// True when `phc` was made with other parameters (or another variant) than `params`.
/// Throws InvalidPasswordHash when `phc` is malformed.
[[nodiscard]] bool needs_rehash(const std::string& phc, const Params& params = {});

/// Which of the two stored hashes a password matched.
enum class DualResult { kNormal, kDuress, kRejected };

/// Checks `password` against both hashes, always both and always in this order, with no early
/// exit: timing does not reveal which matched. A password matching both counts as normal.
[[nodiscard]] DualResult check_dual(std::string_view password, const std::string& normal_phc,
                                    const std::string& duress_phc);

/// Hashes a normal and a duress password; throws PasswordError when they are equal.
[[nodiscard]] std::pair<std::string, std::string> hash_dual(std::string_view normal,
                                                            std::string_view duress,
                                                            const Params& params = {});

/// Number of Argon2 verifications run so far in this process (lets tests prove that
/// check_dual runs both on every path).
[[nodiscard]] std::uint64_t verify_count() noexcept;

}  // namespace blocktrust::passwords
