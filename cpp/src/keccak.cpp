// Keccak-256 as Ethereum uses it: the Keccak[c=512] sponge with the original padding (0x01 ...
// 0x80), not FIPS 202's SHA3-256 (0x06 ... 0x80). Function selectors, event topics and addresses
// are all Keccak-256. OpenSSL 3.0 offers only the FIPS variants, hence this file. The permutation
// follows FIPS 202 section 3.2; its round constants and rotation offsets are derived here from
// the specification's definitions (the LFSR and the (x, y) walk) rather than typed in.
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "blocktrust/digest.hpp"

namespace blocktrust::digest {
namespace {

constexpr int kRounds = 24;
constexpr std::size_t kRate = 136;  // bytes: 1600 - 2 * 256 bits

// RC[i] (FIPS 202 algorithms 5 and 6): bit 2^j - 1 of round i's constant is rc(j + 7i), the
// output of the LFSR x^8 + x^6 + x^5 + x^4 + 1 started at 1.
constexpr std::array<std::uint64_t, kRounds> round_constants() {
  std::array<std::uint64_t, kRounds> rc{};
  unsigned lfsr = 1;
  for (auto& c : rc) {
    for (int j = 0; j < 7; ++j) {
      if ((lfsr & 1U) != 0) c |= std::uint64_t{1} << ((1U << j) - 1);
      lfsr = (lfsr & 0x80U) != 0 ? ((lfsr << 1) ^ 0x171U) : (lfsr << 1);
    }
  }
  return rc;
}

// The rho offset of lane (x, y) (index x + 5y): (t + 1)(t + 2) / 2 mod 64 along the walk
// (x, y) <- (y, 2x + 3y) from (1, 0) (FIPS 202 algorithm 2); lane (0, 0) is not rotated.
constexpr std::array<int, 25> rotations() {
  std::array<int, 25> r{};
  int x = 1, y = 0;
  for (int t = 0; t < 24; ++t) {
    r[static_cast<std::size_t>(x) + 5 * static_cast<std::size_t>(y)] = ((t + 1) * (t + 2) / 2) % 64;
    const int nx = y;
    y = (2 * x + 3 * y) % 5;
    x = nx;
  }
  return r;
}

constexpr auto kRoundConstants = round_constants();
constexpr auto kRotations = rotations();
static_assert(kRoundConstants[0] == 1 && kRoundConstants[1] == 0x8082);
static_assert(kRotations[1] == 1 && kRotations[2] == 62);

void keccak_f1600(std::array<std::uint64_t, 25>& a) noexcept {
  for (const std::uint64_t rc : kRoundConstants) {
    // theta
    std::array<std::uint64_t, 5> c{};
    for (int x = 0; x < 5; ++x) {
      c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    }
    for (int x = 0; x < 5; ++x) {
      const std::uint64_t d = c[(x + 4) % 5] ^ std::rotl(c[(x + 1) % 5], 1);
      for (int y = 0; y < 25; y += 5) a[x + y] ^= d;
    }
    // rho and pi: lane (x, y) moves to (y, 2x + 3y)
    std::array<std::uint64_t, 25> b{};
    for (int x = 0; x < 5; ++x) {
      for (int y = 0; y < 5; ++y) {
        b[y + 5 * ((2 * x + 3 * y) % 5)] = std::rotl(a[x + 5 * y], kRotations[x + 5 * y]);
      }
    }
    // chi
    for (int y = 0; y < 25; y += 5) {
      for (int x = 0; x < 5; ++x) {
        a[x + y] = b[x + y] ^ (~b[(x + 1) % 5 + y] & b[(x + 2) % 5 + y]);
      }
    }
    // iota
    a[0] ^= rc;
  }
}

// XORs one rate-sized block into the state (lanes are little-endian).
void absorb(std::array<std::uint64_t, 25>& a, const std::uint8_t* block) noexcept {
  for (std::size_t i = 0; i < kRate / 8; ++i) {
    std::uint64_t lane = 0;
    for (int k = 7; k >= 0; --k) lane = (lane << 8) | block[i * 8 + static_cast<std::size_t>(k)];
    a[i] ^= lane;
  }
}

}  // namespace

Bytes keccak256(ByteView data) {
  std::array<std::uint64_t, 25> a{};
  std::size_t off = 0;
  for (; data.size() - off >= kRate; off += kRate) {
    absorb(a, data.data() + off);
    keccak_f1600(a);
  }
  std::array<std::uint8_t, kRate> last{};
  if (data.size() > off) std::memcpy(last.data(), data.data() + off, data.size() - off);
  last[data.size() - off] ^= 0x01;
  last[kRate - 1] ^= 0x80;
  absorb(a, last.data());
  keccak_f1600(a);
  Bytes out(32);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::uint8_t>(a[i / 8] >> (8 * (i % 8)));
  }
  return out;
}

}  // namespace blocktrust::digest
