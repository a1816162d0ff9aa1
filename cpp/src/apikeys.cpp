#include "blocktrust/apikeys.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>

#include "base62.hpp"

namespace blocktrust::apikeys {

namespace {

constexpr std::size_t kBodyChars = kKeyIdChars + kSecretChars;
constexpr std::size_t kBlock = 64;  // SHA-256 block size, the HMAC key block

// CRC32 slicing-by-8 tables: kCrcTables[0] is the byte-at-a-time table; kCrcTables[k][b] is the CRC
// of byte b followed by k zero bytes, so eight input bytes are folded in with eight independent
// lookups instead of a chain of eight dependent ones (the checksum was most of a verify_many).
constexpr std::array<std::array<std::uint32_t, 256>, 8> make_crc_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[0][i] = c;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFFu];
  }
  return t;
}
constexpr auto kCrcTables = make_crc_tables();

std::uint32_t load_le32(const unsigned char* p) noexcept {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

// Per thread, so counting costs no shared cache line in the hot path.
thread_local std::uint64_t t_hmacs = 0;

// Why a token is malformed, found without computing any HMAC; kOk when well-formed.
enum class Problem {
  kOk,
  kEmpty,
  kTooLong,
  kNonAscii,
  kControl,
  kPrefix,
  kLength,
  kAlphabet,
  kCrc
};

void fail(Problem p, std::string_view token, const std::string& prefix, std::size_t expected) {
  switch (p) {
    case Problem::kOk:
      return;
    case Problem::kEmpty:
      throw InvalidApiKey("API key is empty");
    case Problem::kTooLong:
      throw InvalidApiKey("API key is too long (" + std::to_string(token.size()) +
                          " characters; at most " + std::to_string(kMaxTokenChars) + ")");
    case Problem::kNonAscii:
      throw InvalidApiKey("API key contains a non-ASCII character");
    case Problem::kControl:
      throw InvalidApiKey("API key contains whitespace or a control character");
    case Problem::kPrefix:
      throw InvalidApiKey("API key does not start with the prefix '" + prefix + "_'");
    case Problem::kLength:
      throw InvalidApiKey("API key has the wrong length (" + std::to_string(token.size()) +
                          " characters; expected " + std::to_string(expected) + ")");
    case Problem::kAlphabet:
      throw InvalidApiKey("API key has a character outside base62 after its prefix");
    case Problem::kCrc:
      throw InvalidApiKey("API key checksum does not match (a typo or a truncated paste)");
  }
}

Problem check(std::string_view token, const std::string& prefix, std::size_t expected) {
  if (token.empty()) return Problem::kEmpty;
  if (token.size() > kMaxTokenChars) return Problem::kTooLong;
  for (char c : token) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) return Problem::kNonAscii;
    if (u <= 0x20 || u == 0x7f) return Problem::kControl;
  }
  if (token.size() <= prefix.size() || token.compare(0, prefix.size(), prefix) != 0 ||
      token[prefix.size()] != '_') {
    return Problem::kPrefix;
  }
  if (token.size() != expected) return Problem::kLength;
  const std::string_view rest = token.substr(prefix.size() + 1);
  for (char c : rest) {
    if (!detail::is_base62(c)) return Problem::kAlphabet;
  }
  const std::string_view covered = token.substr(0, prefix.size() + 1 + kBodyChars);
  std::array<char, kChecksumChars> want{};
  detail::base62_fixed_into(crc32(covered), want.data(), want.size());
  if (rest.substr(kBodyChars) != std::string_view(want.data(), want.size())) return Problem::kCrc;
  return Problem::kOk;
}

void check_digest_size(std::string_view digest) {
  if (digest.size() != kDigestBytes) {
    throw ConfigError("stored API key digest must be 32 bytes (got " +
                      std::to_string(digest.size()) + ")");
  }
}

bool same(const Digest& a, std::string_view b) noexcept {
  return CRYPTO_memcmp(a.data(), b.data(), kDigestBytes) == 0;
}

}  // namespace

// --- prefix and checksum

void validate_prefix(std::string_view prefix) {
  auto bad = [&](const char* why) {
    throw ConfigError(std::string("API key prefix ") + why +
                      " (expected [a-z][a-z0-9]*(_[a-z0-9]+)*, e.g. btk_live)");
  };
  if (prefix.empty()) bad("is empty");
  if (prefix.size() > kMaxPrefixChars) bad("is longer than 32 characters");
  if (prefix.front() < 'a' || prefix.front() > 'z') bad("must start with a lowercase letter");
  if (prefix.back() == '_') bad("must not end with '_'");
  char last = 0;
  for (char c : prefix) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) bad("may hold only a-z, 0-9 and '_'");
    if (c == '_' && last == '_') bad("must not contain '__'");
    last = c;
  }
}

std::uint32_t crc32(std::string_view data) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  std::uint32_t c = 0xFFFFFFFFu;
  for (; n >= 8; p += 8, n -= 8) {
    const std::uint32_t lo = load_le32(p) ^ c, hi = load_le32(p + 4);
    c = kCrcTables[7][lo & 0xFFu] ^ kCrcTables[6][(lo >> 8) & 0xFFu] ^
        kCrcTables[5][(lo >> 16) & 0xFFu] ^ kCrcTables[4][lo >> 24] ^ kCrcTables[3][hi & 0xFFu] ^
        kCrcTables[2][(hi >> 8) & 0xFFu] ^ kCrcTables[1][(hi >> 16) & 0xFFu] ^
        kCrcTables[0][hi >> 24];
  }
  for (; n > 0; ++p, --n) c = kCrcTables[0][(c ^ *p) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// --- HMAC with the key prepared once: the inner and outer SHA-256 states after absorbing
// key^ipad and key^opad are kept, and each call copies them (RFC 2104, without re-keying).
// OpenSSL's low-level SHA256_* (deprecated in 3.0 in favour of EVP, as in merkle.cpp): a state
// is a plain struct copied by value, where EVP_MD_CTX_copy_ex duplicates a provider context on
// the heap (an HMAC of a token: about 145 ns against 190 ns through EVP on the dev machine).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

struct Hmac::State {
  SHA256_CTX inner, outer;
  ~State() { OPENSSL_cleanse(this, sizeof *this); }  // key-equivalent
};

Hmac::Hmac(std::string_view secret) : state_(std::make_unique<State>()) {
  if (secret.size() < kMinSecretBytes) {
    throw ConfigError("API key server secret must be at least 32 bytes (got " +
                      std::to_string(secret.size()) + ")");
  }
  std::array<unsigned char, kBlock> key{};
  if (secret.size() > kBlock) {
    SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), key.data());
  } else {
    std::memcpy(key.data(), secret.data(), secret.size());
  }
  std::array<unsigned char, kBlock> pad{};
  auto absorb = [&](SHA256_CTX& ctx, unsigned char x) {
    for (std::size_t i = 0; i < kBlock; ++i) pad[i] = key[i] ^ x;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, pad.data(), pad.size());
  };
  absorb(state_->inner, 0x36);
  absorb(state_->outer, 0x5c);
  OPENSSL_cleanse(key.data(), key.size());
  OPENSSL_cleanse(pad.data(), pad.size());
}

Hmac::~Hmac() = default;
Hmac::Hmac(Hmac&&) noexcept = default;
Hmac& Hmac::operator=(Hmac&&) noexcept = default;

std::uint64_t hmac_count() noexcept {
  return t_hmacs;
}

Digest Hmac::mac(std::string_view data) const {
  ++t_hmacs;
  Digest inner{}, out{};
  SHA256_CTX c = state_->inner;  // the shared states are only read
  SHA256_Update(&c, data.data(), data.size());
  SHA256_Final(inner.data(), &c);
  c = state_->outer;
  SHA256_Update(&c, inner.data(), inner.size());
  SHA256_Final(out.data(), &c);
  OPENSSL_cleanse(&c, sizeof c);
  return out;
}

#pragma GCC diagnostic pop

// --- Codec

Codec::Codec(std::string prefix, std::string_view secret)
    : prefix_((validate_prefix(prefix), std::move(prefix))), hmac_(secret) {}

std::size_t Codec::token_length() const noexcept {
  return prefix_.size() + 1 + kBodyChars + kChecksumChars;
}

std::string Codec::generate() const {
  std::string token = prefix_ + "_";
  token.reserve(token_length());
  // Rejection sampling: bytes >= 248 (= 4 x 62) are dropped so every character is uniform.
  std::array<unsigned char, 64> buf{};
  while (token.size() < prefix_.size() + 1 + kBodyChars) {
    if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
      throw Error("the system random generator failed");
    }
    for (unsigned char b : buf) {
      if (b < 248 && token.size() < prefix_.size() + 1 + kBodyChars) {
        token.push_back(detail::kBase62[b % 62]);
      }
    }
  }
  OPENSSL_cleanse(buf.data(), buf.size());
  token += detail::base62_fixed(crc32(token), kChecksumChars);
  return token;
}

Parsed Codec::parse(std::string_view token) const {
  fail(check(token, prefix_, token_length()), token, prefix_, token_length());
  const std::string_view body = token.substr(prefix_.size() + 1, kBodyChars);
  return Parsed{body.substr(0, kKeyIdChars), body};
}

Digest Codec::digest(std::string_view token) const {
  (void)parse(token);
  return hmac_.mac(token);
}

bool Codec::verify(std::string_view token, std::string_view digest) const {
  (void)parse(token);
  check_digest_size(digest);
  return same(hmac_.mac(token), digest);
}

std::vector<bool> Codec::verify_many(const std::vector<std::string_view>& tokens,
                                     const std::vector<std::string_view>& digests) const {
  if (tokens.size() != digests.size()) {
    throw ConfigError("verify_many needs as many digests as tokens (" +
                      std::to_string(tokens.size()) + " tokens, " + std::to_string(digests.size()) +
                      " digests)");
  }
  std::vector<bool> out(tokens.size(), false);
  const std::size_t expected = token_length();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (digests[i].size() != kDigestBytes || check(tokens[i], prefix_, expected) != Problem::kOk) {
      continue;
    }
    out[i] = same(hmac_.mac(tokens[i]), digests[i]);
  }
  return out;
}

// --- KeyRing

KeyRing::KeyRing(const std::string& prefix, const std::vector<std::string_view>& secrets) {
  if (secrets.empty()) throw ConfigError("KeyRing needs at least the current server secret");
  validate_prefix(prefix);
  codecs_.reserve(secrets.size());
  for (std::string_view s : secrets) codecs_.emplace_back(prefix, s);
}

int KeyRing::match(std::string_view token, std::string_view digest) const {
  (void)current().parse(token);
  check_digest_size(digest);
  int found = -1;
  // Every secret is tried, always; the first match wins without a data-dependent early exit.
  for (std::size_t i = codecs_.size(); i-- > 0;) {
    const bool hit = same(codecs_[i].hmac_.mac(token), digest);
    found = hit ? static_cast<int>(i) : found;
  }
  return found;
}

}  // namespace blocktrust::apikeys
