// Base62 (0-9, A-Z, a-z) helpers shared by the API-key code; private to cpp/src.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace blocktrust::detail {

inline constexpr char kBase62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// True for 0-9, A-Z, a-z.
constexpr bool is_base62(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/// Writes `value` as exactly `width` base62 digits to `out`, most significant first, zero-padded.
inline void base62_fixed_into(std::uint64_t value, char* out, std::size_t width) noexcept {
  for (std::size_t i = width; i-- > 0;) {
    out[i] = kBase62[value % 62];
    value /= 62;
  }
}

/// `value` as exactly `width` base62 digits, most significant first, zero-padded.
inline std::string base62_fixed(std::uint64_t value, std::size_t width) {
  std::string out(width, '0');
  base62_fixed_into(value, out.data(), width);
  return out;
}

}  // namespace blocktrust::detail
