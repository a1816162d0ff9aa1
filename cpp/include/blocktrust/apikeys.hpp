// API keys: prefixed random tokens with a CRC32 checksum, HMAC-SHA256 digests under a server
// secret, constant-time verification and secret rotation (KeyRing).
//
// Token layout (see docs/tour_apikeys.md):  <prefix>_<key id: 12><secret: 28><checksum: 6>
// - key id: 12 base62 chars (~71 bits) from the CSPRNG; public, for an O(1) database lookup.
// - secret: 28 base62 chars (~166.7 bits) from the CSPRNG; independent of the key id, so
//   publishing the key id leaves >= 160 bits unknown.
// - checksum: CRC32 (IEEE, as zlib.crc32) of "<prefix>_<key id><secret>" as 6 base62 chars,
//   big-endian, zero-padded; rejects typos and truncated pastes before any lookup.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blocktrust/error.hpp"

namespace blocktrust::apikeys {

/// Raised when a token is malformed (prefix, length, characters, checksum); never echoes it.
class InvalidApiKey : public Error {
 public:
  using Error::Error;
};

/// Base62 characters of the public key id segment.
inline constexpr std::size_t kKeyIdChars = 12;
/// Base62 characters of the secret segment (28 x log2(62) ~ 166.7 bits).
inline constexpr std::size_t kSecretChars = 28;
/// Base62 characters of the CRC32 checksum (62^6 > 2^32).
inline constexpr std::size_t kChecksumChars = 6;
/// Longest accepted prefix, in characters.
inline constexpr std::size_t kMaxPrefixChars = 32;
/// Tokens longer than this are rejected before anything else is looked at.
inline constexpr std::size_t kMaxTokenChars = 256;
/// Shortest accepted server secret, in bytes.
inline constexpr std::size_t kMinSecretBytes = 32;
/// Bytes of an HMAC-SHA256 digest.
inline constexpr std::size_t kDigestBytes = 32;

/// An HMAC-SHA256 digest.
using Digest = std::array<std::uint8_t, kDigestBytes>;

/// Throws ConfigError unless `prefix` matches [a-z][a-z0-9]*(_[a-z0-9]+)* and is short enough.
void validate_prefix(std::string_view prefix);

/// CRC32 (IEEE 802.3, the one zlib.crc32 computes) of `data`.
[[nodiscard]] std::uint32_t crc32(std::string_view data) noexcept;

/// HMACs computed so far by the calling thread (lets tests prove that malformed tokens never
/// reach the HMAC and that KeyRing tries every secret).
[[nodiscard]] std::uint64_t hmac_count() noexcept;

/// The parts of a well-formed token (views into the token passed to parse).
struct Parsed {
  std::string_view key_id;  ///< the public key id segment
  std::string_view body;    ///< key id + secret (what the checksum covers after the prefix)
};

/// HMAC-SHA256 under one server secret; the key is prepared once, then shared by threads.
class Hmac final {
 public:
  /// Throws ConfigError when `secret` is shorter than kMinSecretBytes (never echoing it).
  explicit Hmac(std::string_view secret);
  ~Hmac();
  Hmac(const Hmac&) = delete;
  Hmac& operator=(const Hmac&) = delete;
  Hmac(Hmac&&) noexcept;
  Hmac& operator=(Hmac&&) noexcept;
  /// HMAC-SHA256(secret, data); safe to call from many threads at once.
  [[nodiscard]] Digest mac(std::string_view data) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Makes, parses, digests and verifies the tokens of one prefix under one server secret.
class Codec final {
 public:
  /// Throws ConfigError for a bad prefix or a secret shorter than 32 bytes.
  Codec(std::string prefix, std::string_view secret);
  /// The prefix without the trailing underscore (e.g. "btk_live").
  [[nodiscard]] const std::string& prefix() const noexcept { return prefix_; }
  /// Exact length of every token of this codec.
  [[nodiscard]] std::size_t token_length() const noexcept;
  /// A fresh token from the CSPRNG.
  [[nodiscard]] std::string generate() const;
  /// Checks size, ASCII, prefix, length, alphabet and checksum (in that order) without any HMAC;
  /// throws InvalidApiKey naming the first problem.
  [[nodiscard]] Parsed parse(std::string_view token) const;
  /// HMAC-SHA256(secret, token) of a well-formed token (parse first; throws InvalidApiKey).
  [[nodiscard]] Digest digest(std::string_view token) const;
  /// True when `digest` is the token's digest; constant-time compare. Throws InvalidApiKey for
  /// a malformed token and ConfigError for a digest that is not 32 bytes.
  [[nodiscard]] bool verify(std::string_view token, std::string_view digest) const;
  /// verify for each pair; a malformed token or a digest of the wrong size gives false.
  [[nodiscard]] std::vector<bool> verify_many(const std::vector<std::string_view>& tokens,
                                              const std::vector<std::string_view>& digests) const;

 private:
  friend class KeyRing;  // tries each secret's HMAC after one parse
  std::string prefix_;
  Hmac hmac_;
};

/// The current server secret plus previous ones still accepted during a rotation window.
class KeyRing final {
 public:
  /// secrets[0] is current; the rest are previous. Throws ConfigError for an empty list, a bad
  /// prefix or any secret shorter than 32 bytes.
  KeyRing(const std::string& prefix, const std::vector<std::string_view>& secrets);
  /// The codec of the current secret (for generate, parse and digest).
  [[nodiscard]] const Codec& current() const noexcept { return codecs_.front(); }
  /// Number of secrets (current + previous).
  [[nodiscard]] std::size_t size() const noexcept { return codecs_.size(); }
  /// Index of the first secret whose digest matches (0 = current), or -1. Computes the HMAC
  /// under every secret, always, so timing does not tell which matched. Throws InvalidApiKey
  /// for a malformed token and ConfigError for a digest that is not 32 bytes.
  [[nodiscard]] int match(std::string_view token, std::string_view digest) const;

 private:
  std::vector<Codec> codecs_;
};

}  // namespace blocktrust::apikeys
