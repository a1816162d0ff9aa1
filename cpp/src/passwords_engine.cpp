#include "passwords_engine.hpp"

#include <argon2.h>
#include <sodium.h>

#include <atomic>
#include <limits>

namespace blocktrust::passwords::engine {

namespace {

std::atomic<std::uint64_t> g_sodium_runs{0};

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

void b64_append(std::string& out, std::span<const unsigned char> in) {
  std::uint32_t acc = 0;
  unsigned bits = 0;
  for (unsigned char b : in) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64[(acc >> bits) & 0x3F];
    }
    acc &= (1u << bits) - 1;
  }
  if (bits > 0) out += kB64[(acc << (6 - bits)) & 0x3F];
}

// Unpadded standard Base64, as strict as libargon2's decoder: a length of 1 mod 4 and non-zero
// leftover bits are refused.
bool b64_decode(std::string_view in, std::vector<unsigned char>& out) {
  if (in.size() % 4 == 1) return false;
  std::uint32_t acc = 0;
  unsigned bits = 0;
  for (char c : in) {
    const int v = b64_value(c);
    if (v < 0) return false;
    acc = ((acc << 6) | static_cast<std::uint32_t>(v)) & 0xFFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>(acc >> bits));
    }
  }
  return (acc & ((1u << bits) - 1)) == 0;
}

// A decimal without sign or leading zeros that fits 32 bits, followed by `next` (or the end when
// `next` is empty); consumes both.
bool take_decimal(std::string_view& s, std::uint32_t& v, std::string_view next) {
  std::size_t n = 0;
  std::uint64_t acc = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
    acc = acc * 10 + static_cast<std::uint64_t>(s[n] - '0');
    if (acc > std::numeric_limits<std::uint32_t>::max()) return false;
    ++n;
  }
  if (n == 0 || (n > 1 && s[0] == '0')) return false;
  if (s.substr(n, next.size()) != next) return false;
  v = static_cast<std::uint32_t>(acc);
  s.remove_prefix(n + next.size());
  return true;
}

// sodium_init() selects the fastest Argon2 fill for this CPU; it must run once before use.
bool sodium_ready() noexcept {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

std::string hash_libargon2(std::string_view password, std::span<const unsigned char> salt,
                           const Params& params) {
  std::string encoded(
      argon2_encodedlen(params.iterations, params.memory_kib, params.parallelism,
                        static_cast<std::uint32_t>(salt.size()), params.hash_len, Argon2_id),
      '\0');
  int rc = argon2id_hash_encoded(params.iterations, params.memory_kib, params.parallelism,
                                 password.data(), password.size(), salt.data(), salt.size(),
                                 params.hash_len, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) throw Error(std::string("Argon2 failed: ") + argon2_error_message(rc));
  encoded.resize(encoded.find('\0'));
  return encoded;
}

// Raw Argon2id v1.3 by libsodium into `out`; false when it could not compute (out of memory).
bool sodium_raw(std::string_view password, const unsigned char* salt, std::uint32_t m,
                std::uint32_t t, std::span<unsigned char> out) {
  g_sodium_runs.fetch_add(1, std::memory_order_relaxed);
  return crypto_pwhash(out.data(), out.size(), password.data(), password.size(), salt, t,
                       static_cast<std::size_t>(m) * 1024u, crypto_pwhash_ALG_ARGON2ID13) == 0;
}

}  // namespace

std::optional<Decoded> decode_canonical(std::string_view phc) {
  constexpr std::string_view kPrefix = "$argon2id$v=19$m=";
  if (phc.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view s = phc.substr(kPrefix.size());
  Decoded d;
  if (!take_decimal(s, d.m, ",t=") || !take_decimal(s, d.t, ",p=") || !take_decimal(s, d.p, "$")) {
    return std::nullopt;
  }
  const auto dollar = s.find('$');
  if (dollar == std::string_view::npos || !b64_decode(s.substr(0, dollar), d.salt) ||
      !b64_decode(s.substr(dollar + 1), d.hash)) {
    return std::nullopt;
  }
  return d;
}

std::string encode(std::uint32_t m, std::uint32_t t, std::uint32_t p,
                   std::span<const unsigned char> salt, std::span<const unsigned char> hash) {
  std::string out = "$argon2id$v=19$m=" + std::to_string(m) + ",t=" + std::to_string(t) +
                    ",p=" + std::to_string(p) + "$";
  b64_append(out, salt);
  out += '$';
  b64_append(out, hash);
  return out;
}

Engine choose(std::uint32_t m, std::uint32_t t, std::uint32_t p, std::size_t salt_len,
              std::size_t hash_len) noexcept {
  const bool fits = p == 1 && salt_len == crypto_pwhash_SALTBYTES &&
                    hash_len >= crypto_pwhash_BYTES_MIN &&
                    hash_len <= std::numeric_limits<std::uint32_t>::max() && t >= 1 && m >= 8;
  return fits && sodium_ready() ? Engine::kSodium : Engine::kLibargon2;
}

std::string hash_with_salt(Engine engine, std::string_view password,
                           std::span<const unsigned char> salt, const Params& params) {
  if (engine == Engine::kSodium && choose(params.memory_kib, params.iterations, params.parallelism,
                                          salt.size(), params.hash_len) == Engine::kSodium) {
    std::vector<unsigned char> out(params.hash_len);
    const bool ok = sodium_raw(password, salt.data(), params.memory_kib, params.iterations, out);
    std::string phc;
    if (ok) phc = encode(params.memory_kib, params.iterations, params.parallelism, salt, out);
    sodium_memzero(out.data(), out.size());
    if (ok) return phc;
    // Out of memory: let libargon2 try, and report the failure in its words if it fails too.
  } else if (engine == Engine::kSodium) {
    throw ConfigError("libsodium's Argon2id needs p = 1 and a 16-byte salt");
  }
  return hash_libargon2(password, salt, params);
}

std::optional<bool> verify_sodium(std::string_view password, const Decoded& d) {
  if (choose(d.m, d.t, d.p, d.salt.size(), d.hash.size()) != Engine::kSodium) return std::nullopt;
  std::vector<unsigned char> out(d.hash.size());
  std::optional<bool> result;
  if (sodium_raw(password, d.salt.data(), d.m, d.t, out)) {
    result = sodium_memcmp(out.data(), d.hash.data(), out.size()) == 0;
  }
  sodium_memzero(out.data(), out.size());
  return result;
}

std::uint64_t sodium_runs() noexcept {
  return g_sodium_runs.load(std::memory_order_relaxed);
}

}  // namespace blocktrust::passwords::engine
