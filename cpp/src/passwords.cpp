#include "blocktrust/passwords.hpp"

#include <argon2.h>
#include <openssl/rand.h>

#include <atomic>
#include <charconv>
#include <utility>
#include <vector>

#include "passwords_engine.hpp"

namespace blocktrust::passwords {

namespace {

std::atomic<std::uint64_t> g_verifications{0};

struct Parsed {
  argon2_type type;
  std::uint32_t version = 0, m = 0, t = 0, p = 0;
};

std::uint32_t parse_u32(std::string_view s, const char* what) {
  std::uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) {
    throw InvalidPasswordHash(std::string("Argon2 hash has a malformed ") + what);
  }
  return v;
}

// Reads the variant and parameters of "$argon2id$v=19$m=..,t=..,p=..$salt$hash". libargon2
// checks the rest (salt, hash, lengths) when verifying.
Parsed parse(const std::string& phc) {
  Parsed out{};
  std::string_view s = phc;
  if (s.rfind("$argon2id$", 0) == 0) {
    out.type = Argon2_id;
    s.remove_prefix(10);
  } else if (s.rfind("$argon2i$", 0) == 0) {
    out.type = Argon2_i;
    s.remove_prefix(9);
  } else if (s.rfind("$argon2d$", 0) == 0) {
    out.type = Argon2_d;
    s.remove_prefix(9);
  } else {
    throw InvalidPasswordHash("not an Argon2 PHC string (expected it to start with $argon2id$)");
  }
  out.version = ARGON2_VERSION_10;
  if (s.rfind("v=", 0) == 0) {
    auto end = s.find('$');
    if (end == std::string_view::npos)
      throw InvalidPasswordHash("Argon2 hash is truncated after v=");
    out.version = parse_u32(s.substr(2, end - 2), "version");
    s.remove_prefix(end + 1);
  }
  auto end = s.find('$');
  if (end == std::string_view::npos)
    throw InvalidPasswordHash("Argon2 hash lacks its salt and hash");
  std::string_view params = s.substr(0, end);
  bool seen_m = false, seen_t = false, seen_p = false;
  while (!params.empty()) {
    auto comma = params.find(',');
    std::string_view kv = params.substr(0, comma);
    params = comma == std::string_view::npos ? std::string_view{} : params.substr(comma + 1);
    if (kv.size() < 3 || kv[1] != '=')
      throw InvalidPasswordHash("Argon2 hash has malformed parameters");
    auto v = parse_u32(kv.substr(2), "parameter");
    switch (kv[0]) {
      case 'm':
        out.m = v;
        seen_m = true;
        break;
      case 't':
        out.t = v;
        seen_t = true;
        break;
      case 'p':
        out.p = v;
        seen_p = true;
        break;
      default:
        throw InvalidPasswordHash("Argon2 hash has an unknown parameter");
    }
  }
  if (!seen_m || !seen_t || !seen_p) throw InvalidPasswordHash("Argon2 hash lacks m, t or p");
  return out;
}

void check_length(std::string_view password) {
  if (password.size() > kMaxPasswordBytes) {
    throw PasswordError("password is longer than " + std::to_string(kMaxPasswordBytes) + " bytes");
  }
}

// Verifies without throwing for a mismatch; malformed hashes throw InvalidPasswordHash. Canonical
// Argon2id strings with p = 1 and a 16-byte salt (ours at the OWASP defaults) go to libsodium's
// SIMD engine; everything else to libargon2, which also words every error as before.
bool verify_one(std::string_view password, const std::string& phc) {
  Parsed p = parse(phc);
  g_verifications.fetch_add(1, std::memory_order_relaxed);
  if (auto d = engine::decode_canonical(phc)) {
    if (auto match = engine::verify_sodium(password, *d)) return *match;
  }
  int rc = argon2_verify(phc.c_str(), password.data(), password.size(), p.type);
  if (rc == ARGON2_OK) return true;
  if (rc == ARGON2_VERIFY_MISMATCH) return false;
  throw InvalidPasswordHash(std::string("Argon2 hash cannot be verified: ") +
                            argon2_error_message(rc));
}

}  // namespace

void Params::validate() const {
  if (iterations < ARGON2_MIN_TIME) throw ConfigError("Argon2 iterations must be at least 1");
  if (parallelism < ARGON2_MIN_LANES || parallelism > 255) {
    throw ConfigError("Argon2 parallelism must be between 1 and 255");
  }
  if (memory_kib < 8 * parallelism || memory_kib > (1u << 22)) {
    throw ConfigError("Argon2 memory_kib must be between 8 x parallelism and 4194304 (4 GiB)");
  }
  if (hash_len < 16 || hash_len > 512) throw ConfigError("Argon2 hash_len must be 16..512");
  if (salt_len < 8 || salt_len > 64) throw ConfigError("Argon2 salt_len must be 8..64");
}

std::string hash(std::string_view password, const Params& params) {
  params.validate();
  check_length(password);
  std::vector<unsigned char> salt(params.salt_len);
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    throw Error("the system random generator failed");
  }
  const auto which = engine::choose(params.memory_kib, params.iterations, params.parallelism,
                                    salt.size(), params.hash_len);
  return engine::hash_with_salt(which, password, salt, params);
}

bool verify(std::string_view password, const std::string& phc) {
  check_length(password);
  return verify_one(password, phc);
}

bool needs_rehash(const std::string& phc, const Params& params) {
  Parsed p = parse(phc);
  return p.type != Argon2_id || p.version != ARGON2_VERSION_13 || p.m != params.memory_kib ||
         p.t != params.iterations || p.p != params.parallelism;
}

DualResult check_dual(std::string_view password, const std::string& normal_phc,
                      const std::string& duress_phc) {
  check_length(password);
  // Both, in a fixed order, before looking at either result.
  const bool normal = verify_one(password, normal_phc);
  const bool duress = verify_one(password, duress_phc);
  const int code = static_cast<int>(normal) * 2 + static_cast<int>(duress);
  static constexpr DualResult kTable[4] = {DualResult::kRejected, DualResult::kDuress,
                                           DualResult::kNormal, DualResult::kNormal};
  return kTable[code];
}

std::pair<std::string, std::string> hash_dual(std::string_view normal, std::string_view duress,
                                              const Params& params) {
  if (normal == duress) throw PasswordError("the duress password must differ from the password");
  return {hash(normal, params), hash(duress, params)};
}

std::uint64_t verify_count() noexcept {
  return g_verifications.load(std::memory_order_relaxed);
}

}  // namespace blocktrust::passwords
