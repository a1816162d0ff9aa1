// The two Argon2 engines behind blocktrust::passwords, private to cpp/src: libsodium's
// (runtime-dispatched SIMD fill, Argon2id v1.3 with p = 1 and 16-byte salts only) and Debian's
// libargon2 (the portable reference build, for everything else).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "blocktrust/passwords.hpp"

namespace blocktrust::passwords::engine {

enum class Engine { kSodium, kLibargon2 };

/// The fields of "$argon2id$v=19$m=M,t=T,p=P$<salt>$<hash>".
struct Decoded {
  std::uint32_t m = 0, t = 0, p = 0;
  std::vector<unsigned char> salt, hash;
};

/// Decodes `phc` when it is an Argon2id v1.3 string in exactly the form libargon2 and
/// argon2-cffi write (that field order, decimals without leading zeros, unpadded standard Base64
/// with zero trailing bits, nothing after the hash). Anything else gives nullopt and is left to
/// libargon2, so its verdicts and error messages on odd strings stay what they were. Never throws.
[[nodiscard]] std::optional<Decoded> decode_canonical(std::string_view phc);

/// "$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>" exactly as libargon2 encodes it.
[[nodiscard]] std::string encode(std::uint32_t m, std::uint32_t t, std::uint32_t p,
                                 std::span<const unsigned char> salt,
                                 std::span<const unsigned char> hash);

/// The engine for Argon2id v1.3 with these parameters: libsodium when it can compute them
/// (p = 1, 16-byte salt, hash >= 16 bytes, t >= 1, m >= 8) and initialised, else libargon2.
[[nodiscard]] Engine choose(std::uint32_t m, std::uint32_t t, std::uint32_t p, std::size_t salt_len,
                            std::size_t hash_len) noexcept;

/// The PHC string of `password` under `salt` and `params`, computed by `engine` (hash() passes
/// choose(); tests force each engine to prove both give the same string).
[[nodiscard]] std::string hash_with_salt(Engine engine, std::string_view password,
                                         std::span<const unsigned char> salt, const Params& params);

/// Recomputes `d` with libsodium and compares in constant time. nullopt when libsodium cannot
/// compute it (choose() says libargon2, or out of memory): the caller then asks libargon2.
[[nodiscard]] std::optional<bool> verify_sodium(std::string_view password, const Decoded& d);

/// Argon2 computations run by libsodium so far in this process (lets tests prove which engine
/// verify() and hash() used).
[[nodiscard]] std::uint64_t sodium_runs() noexcept;

}  // namespace blocktrust::passwords::engine
