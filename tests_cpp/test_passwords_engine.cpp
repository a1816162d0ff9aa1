// The two Argon2 engines: libsodium and libargon2 give the same PHC strings, each string goes to
// the engine that can compute it, and odd strings still get libargon2's verdict.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "blocktrust/passwords.hpp"
#include "passwords_engine.hpp"
#include "sodium_memory.hpp"

namespace pw = blocktrust::passwords;
namespace en = blocktrust::passwords::engine;
using namespace std::string_literals;
using namespace std::string_view_literals;

namespace {

// Known answers made once with argon2-cffi 25.1.0 (argon2-cffi-bindings 26.2.0, which bundles
// its own optimised Argon2: a third implementation), e.g.
//   argon2.low_level.hash_secret(b"correct horse battery staple", b"blocktrust-salt!",
//       time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, type=Type.ID)
struct Vector {
  std::string password;
  std::vector<unsigned char> salt;
  pw::Params params;
  std::string phc;
};

std::vector<unsigned char> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

std::vector<unsigned char> counting(unsigned char from) {
  std::vector<unsigned char> out(16);
  for (unsigned char i = 0; i < 16; ++i) out[i] = static_cast<unsigned char>(from + i);
  return out;
}

const std::vector<Vector>& sodium_vectors() {
  static const std::vector<Vector> v = {
      {"correct horse battery staple",
       bytes("blocktrust-salt!"),
       {19456, 2, 1, 32, 16},
       "$argon2id$v=19$m=19456,t=2,p=1$YmxvY2t0cnVzdC1zYWx0IQ$"
       "pj6Fr9k0MTBb6U1q2ojTAQC7wnS2fdXeusL49cte4XA"},
      // Empty password, m not a multiple of 4 (both round the block count down alike), 16-byte
      // hash.
      {"",
       counting(0),
       {1023, 3, 1, 16, 16},
       "$argon2id$v=19$m=1023,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg"},
      // UTF-8 password, the minimum-ish memory, a 64-byte hash (longer than one BLAKE2b block).
      {"p\xc3\xa4ssw\xc3\xb6rd",
       counting(16),
       {64, 1, 1, 64, 16},
       "$argon2id$v=19$m=64,t=1,p=1$EBESExQVFhcYGRobHB0eHw$"
       "JVCM8DDPUao3hsSC/IR6TmAoyijJ6UtZ2oYbMxZCnClIIb9cW7pNUGYcQqskeAavpr0rAm/L8zXWE3WPDRz7Cg"},
  };
  return v;
}

// Same tool: two lanes (p = 2), which libsodium cannot compute.
const std::string kTwoLanes =
    "$argon2id$v=19$m=1024,t=1,p=2$YmxvY2t0cnVzdC1zYWx0IQ$dPTC5THT1RoyuNzig+"
    "5h3GBHKt0cfHDOGU9Ub7xJ3J8";
// Same tool: Argon2 version 1.0 (v=16) and Argon2i, p = 1 and 16-byte salts: libargon2's alone.
const std::string kVersion16 =
    "$argon2id$v=16$m=256,t=1,p=1$YmxvY2t0cnVzdC1zYWx0IQ$TRmLOsKiqRL8O/STM5LURhzhCvxd9H4NaDM/"
    "OZFXVuY";
const std::string kArgon2i =
    "$argon2i$v=19$m=256,t=1,p=1$YmxvY2t0cnVzdC1zYWx0IQ$"
    "sKrE9VstkkzS1Pz8m18bSpc10xvhiREDHRG2erIKSO0";
// The phc-winner-argon2 README vector: p = 1 but an 8-byte salt ("somesalt").
const std::string kEightByteSalt =
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";

}  // namespace

TEST(PasswordEngine, BothEnginesMatchArgon2CffiKnownAnswers) {
  for (const Vector& v : sodium_vectors()) {
    EXPECT_EQ(en::choose(v.params.memory_kib, v.params.iterations, v.params.parallelism,
                         v.salt.size(), v.params.hash_len),
              en::Engine::kSodium)
        << v.phc;
    EXPECT_EQ(en::hash_with_salt(en::Engine::kSodium, v.password, v.salt, v.params), v.phc);
    EXPECT_EQ(en::hash_with_salt(en::Engine::kLibargon2, v.password, v.salt, v.params), v.phc);
  }
}

TEST(PasswordEngine, BothEnginesAgreeAcrossParameters) {
  const std::vector<unsigned char> salt = bytes("\x00\xff salt 16 bytes"sv);
  ASSERT_EQ(salt.size(), 16u);
  for (std::uint32_t m : {8u, 9u, 100u, 1024u}) {
    for (std::uint32_t t : {1u, 2u, 3u}) {
      for (std::uint32_t len : {16u, 17u, 33u, 512u}) {
        const pw::Params params{m, t, 1, len, 16};
        const std::string password = "pw-" + std::to_string(m * 100 + t * 10 + len);
        const std::string a = en::hash_with_salt(en::Engine::kSodium, password, salt, params);
        const std::string b = en::hash_with_salt(en::Engine::kLibargon2, password, salt, params);
        EXPECT_EQ(a, b) << "m=" << m << " t=" << t << " len=" << len;
      }
    }
  }
}

TEST(PasswordEngine, VerifyUsesLibsodiumForP1With16ByteSalts) {
  for (const Vector& v : sodium_vectors()) {
    auto before = en::sodium_runs();
    EXPECT_TRUE(pw::verify(v.password, v.phc)) << v.phc;
    EXPECT_EQ(en::sodium_runs() - before, 1u) << v.phc;
    EXPECT_FALSE(pw::verify(v.password + "x", v.phc)) << v.phc;
    // Any other hash bytes are a mismatch, not an error.
    std::string flipped = v.phc;
    flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(pw::verify(v.password, flipped)) << flipped;
  }
}

TEST(PasswordEngine, OtherStringsStillVerifyWithLibargon2) {
  struct Case {
    const std::string& phc;
    const char* password;
  };
  for (const Case& c : {Case{kTwoLanes, "two lanes"}, Case{kVersion16, "version 16"},
                        Case{kArgon2i, "argon2i"}, Case{kEightByteSalt, "password"}}) {
    const auto before = en::sodium_runs();
    EXPECT_TRUE(pw::verify(c.password, c.phc)) << c.phc;
    EXPECT_FALSE(pw::verify(std::string(c.password) + "!", c.phc)) << c.phc;
    EXPECT_EQ(en::sodium_runs(), before) << c.phc;
  }
}

TEST(PasswordEngine, HashPicksTheEngineByParameters) {
  struct Case {
    pw::Params params;
    std::uint64_t sodium = 0;
  };
  for (const Case& c : {Case{{1024, 1, 1, 32, 16}, 1}, Case{{1024, 1, 2, 32, 16}, 0},
                        Case{{1024, 1, 1, 32, 24}, 0}, Case{{1024, 1, 1, 16, 16}, 1}}) {
    auto before = en::sodium_runs();
    const std::string phc = pw::hash("engine pick", c.params);
    EXPECT_EQ(en::sodium_runs() - before, c.sodium) << phc;
    before = en::sodium_runs();
    EXPECT_TRUE(pw::verify("engine pick", phc)) << phc;
    EXPECT_EQ(en::sodium_runs() - before, c.sodium) << phc;
  }
}

TEST(PasswordEngine, DualCheckRunsBothOnLibsodium) {
  auto [normal, duress] = pw::hash_dual("normal-pw", "duress-pw", pw::Params{1024, 1, 1, 32, 16});
  const auto before = en::sodium_runs();
  const auto count = pw::verify_count();
  EXPECT_EQ(pw::check_dual("duress-pw", normal, duress), pw::DualResult::kDuress);
  EXPECT_EQ(en::sodium_runs() - before, 2u);
  EXPECT_EQ(pw::verify_count() - count, 2u);
}

TEST(PasswordEngine, DecodeAcceptsOnlyTheCanonicalForm) {
  const std::string good = sodium_vectors()[1].phc;
  auto d = en::decode_canonical(good);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->m, 1023u);
  EXPECT_EQ(d->t, 3u);
  EXPECT_EQ(d->p, 1u);
  EXPECT_EQ(d->salt, counting(0));
  EXPECT_EQ(d->hash.size(), 16u);
  EXPECT_EQ(en::encode(d->m, d->t, d->p, d->salt, d->hash), good);
  for (const std::string& bad : std::vector<std::string>{
           "$argon2id$m=1023,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg",  // no v=
           "$argon2id$v=16$m=1023,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg",
           "$argon2i$v=19$m=1023,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg",
           "$argon2id$v=19$t=3,m=1023,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg",
           "$argon2id$v=19$m=01023,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg",
           "$argon2id$v=19$m=4294967296,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg",
           "$argon2id$v=19$m=1023,t=3,p=1,data=YQ$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg",
           "$argon2id$v=19$m=1023,t=3,p=1$AAECAwQFBgcICQoLDA0ODx$6Ok4P3xZmKHDAq+BGzgFjg",  // bits
           "$argon2id$v=19$m=1023,t=3,p=1$AAECAwQFBgcICQoLDA0ODw==$6Ok4P3xZmKHDAq+BGzgFjg",
           "$argon2id$v=19$m=1023,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg$",
           "$argon2id$v=19$m=1023,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFj",  // 1 mod 4
           "$argon2id$v=19$m=1023,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg\0"s,
       }) {
    EXPECT_FALSE(en::decode_canonical(bad)) << bad;
  }
}

TEST(PasswordEngine, NonCanonicalStringsKeepLibargon2sVerdict) {
  // Non-zero leftover bits in the hash: libargon2 refuses to decode it, as before.
  const std::string bits =
      "$argon2id$v=19$m=1023,t=3,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjh";
  EXPECT_THROW((void)pw::verify("", bits), pw::InvalidPasswordHash);
  // Parameters out of their order: our parser reads them, libargon2 refuses them, as before.
  const std::string order =
      "$argon2id$v=19$t=3,m=1023,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg";
  EXPECT_THROW((void)pw::verify("", order), pw::InvalidPasswordHash);
  // t = 0 with p = 1 and a 16-byte salt: libsodium is not asked; libargon2 says it is invalid.
  const std::string t0 =
      "$argon2id$v=19$m=1023,t=0,p=1$AAECAwQFBgcICQoLDA0ODw$6Ok4P3xZmKHDAq+BGzgFjg";
  const auto before = en::sodium_runs();
  EXPECT_THROW((void)pw::verify("", t0), pw::InvalidPasswordHash);
  EXPECT_EQ(en::sodium_runs(), before);
}

TEST(PasswordEngine, ForcingLibsodiumOnParametersItCannotComputeIsAConfigError) {
  const std::vector<unsigned char> salt = counting(0);
  EXPECT_THROW(
      (void)en::hash_with_salt(en::Engine::kSodium, "x", salt, pw::Params{1024, 1, 2, 32, 16}),
      blocktrust::ConfigError);
}

TEST(PasswordEngine, WorkAreasAreReusedAndRightAfterwards) {
  // 4 MiB work areas: the first hash of this size may map one, the next ones reuse it.
  pw::Params params;
  params.memory_kib = 4096;
  params.iterations = 1;
  params.parallelism = 1;
  const std::string first = pw::hash("reuse-me", params);
  const auto maps = en::sodium_region_maps();
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(pw::verify("reuse-me", first));
    EXPECT_FALSE(pw::verify("reuse-me!", first));
  }
  EXPECT_EQ(en::sodium_region_maps(), maps);
  // A reused (released) area gives the same bytes as libargon2's freshly allocated one.
  const std::vector<unsigned char> salt(16, 0x42);
  EXPECT_EQ(en::hash_with_salt(en::Engine::kSodium, "reuse-me", salt, params),
            en::hash_with_salt(en::Engine::kLibargon2, "reuse-me", salt, params));
  // Mappings that are not work areas go straight to the kernel and back.
  void* small = blocktrust_sodium_mmap(nullptr, 4096, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(small, MAP_FAILED);
  EXPECT_EQ(blocktrust_sodium_munmap(small, 4096), 0);
  EXPECT_EQ(en::sodium_region_maps(), maps);
}

TEST(PasswordEngine, GivenBackWorkAreasAreWipedBeforeReuse) {
  // A work-area-sized mapping filled with "password-derived" bytes and given back comes out of
  // the next request of that size as the same mapping, all zero (odd length: the tail too).
  const std::size_t len = (std::size_t{3} << 20) + 24;
  auto* area = static_cast<unsigned char*>(blocktrust_sodium_mmap(
      nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(static_cast<void*>(area), MAP_FAILED);
  std::memset(area, 0xA5, len);
  ASSERT_EQ(blocktrust_sodium_munmap(area, len), 0);
  auto* again = static_cast<unsigned char*>(blocktrust_sodium_mmap(
      nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_EQ(again, area);
  EXPECT_EQ(std::count(again, again + len, 0), static_cast<std::ptrdiff_t>(len));
  ASSERT_EQ(blocktrust_sodium_munmap(again, len), 0);
}
