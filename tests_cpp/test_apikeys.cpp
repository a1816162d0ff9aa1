// API keys: CRC32 and HMAC-SHA256 known answers, token shape, every malformed-input path, rotation.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "blocktrust/apikeys.hpp"

namespace ak = blocktrust::apikeys;

namespace {

std::string hex(const ak::Digest& d) {
  static const char* k = "0123456789abcdef";
  std::string out;
  for (auto b : d) {
    out.push_back(k[b >> 4]);
    out.push_back(k[b & 15]);
  }
  return out;
}

const std::string kSecret(32, 'k');

}  // namespace

TEST(ApiKey, Crc32KnownAnswers) {
  EXPECT_EQ(ak::crc32(""), 0u);
  EXPECT_EQ(ak::crc32("123456789"), 0xCBF43926u);  // the CRC-32/ISO-HDLC check value
  EXPECT_EQ(ak::crc32("The quick brown fox jumps over the lazy dog"), 0x414FA339u);
}

// RFC 4231 test cases 6 and 7 use a 131-byte key (hashed first, as HMAC requires).
TEST(ApiKey, HmacMatchesRfc4231) {
  const std::string key(131, '\xaa');
  ak::Hmac h(key);
  EXPECT_EQ(hex(h.mac("Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(hex(h.mac("This is a test using a larger than block-size key and a larger than "
                      "block-size data. The key needs to be hashed before being used by the "
                      "HMAC algorithm.")),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
  // A 32-byte key (no hashing, zero-padded), cross-checked with Python's hmac module.
  ak::Hmac h32(std::string(32, '\x0b'));
  EXPECT_EQ(hex(h32.mac("Hi There")),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7");
}

TEST(ApiKey, ShortSecretIsConfigErrorWithoutTheSecret) {
  try {
    ak::Codec c("btk_live", "short-secret-value");
    FAIL() << "accepted a short secret";
  } catch (const blocktrust::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("at least 32 bytes"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("short-secret-value"), std::string::npos);
  }
}

TEST(ApiKey, PrefixesAreValidated) {
  for (const char* ok : {"btk_live", "btk_test", "a", "k9", "btk_v2_x"}) {
    EXPECT_NO_THROW(ak::validate_prefix(ok)) << ok;
  }
  for (const char* bad : {"", "Btk", "9btk", "btk_", "_btk", "btk__live", "btk-live", "btk live",
                          "abcdefghijklmnopqrstuvwxyzabcdefg"}) {
    EXPECT_THROW(ak::validate_prefix(bad), blocktrust::ConfigError) << bad;
  }
}

TEST(ApiKey, GeneratedTokensHaveTheDocumentedShape) {
  ak::Codec c("btk_live", kSecret);
  const std::string t = c.generate();
  ASSERT_EQ(t.size(), c.token_length());
  EXPECT_EQ(t.size(), 9u + 12 + 28 + 6);
  EXPECT_EQ(t.rfind("btk_live_", 0), 0u);
  const auto parsed = c.parse(t);
  EXPECT_EQ(parsed.key_id, std::string_view(t).substr(9, 12));
  EXPECT_NE(c.generate(), t);
  EXPECT_TRUE(c.verify(t, std::string(reinterpret_cast<const char*>(c.digest(t).data()), 32)));
}

TEST(ApiKey, EveryMalformedTokenIsRejectedWithItsReason) {
  ak::Codec c("btk_live", kSecret);
  const std::string t = c.generate();
  std::string typo = t;
  typo[12] = typo[12] == 'a' ? 'b' : 'a';
  std::string bad_crc = t;
  bad_crc.back() = bad_crc.back() == '0' ? '1' : '0';
  struct Case {
    std::string token;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {std::string(300, 'a'), "too long"},
      {t.substr(0, 20) + "\xc3\xa9" + t.substr(22), "non-ASCII"},
      {" " + t.substr(1), "whitespace"},
      {"btk_test_" + t.substr(9), "prefix 'btk_live_'"},
      {t.substr(0, t.size() - 1), "wrong length"},
      {t + "0", "wrong length"},
      {t.substr(0, 20) + "-" + t.substr(21), "outside base62"},
      {typo, "checksum"},
      {bad_crc, "checksum"},
  };
  for (const Case& k : cases) {
    try {
      (void)c.parse(k.token);
      ADD_FAILURE() << "accepted: " << k.reason;
    } catch (const ak::InvalidApiKey& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(k.reason), std::string::npos) << what;
      if (k.token.size() > 20) {
        EXPECT_EQ(what.find(k.token.substr(9)), std::string::npos);
      }
    }
    const auto before = ak::hmac_count();
    EXPECT_THROW((void)c.verify(k.token, std::string(32, '\0')), ak::InvalidApiKey);
    EXPECT_EQ(ak::hmac_count(), before) << "an HMAC ran for: " << k.reason;
  }
}

TEST(ApiKey, VerifyRejectsWrongDigestsAndSizes) {
  ak::Codec c("btk_live", kSecret);
  const std::string t = c.generate();
  const auto d = c.digest(t);
  std::string good(reinterpret_cast<const char*>(d.data()), d.size());
  std::string flipped = good;
  flipped[31] = static_cast<char>(flipped[31] ^ 1);
  EXPECT_TRUE(c.verify(t, good));
  EXPECT_FALSE(c.verify(t, flipped));
  EXPECT_THROW((void)c.verify(t, good.substr(0, 31)), blocktrust::ConfigError);
  ak::Codec other("btk_live", std::string(32, 'o'));
  EXPECT_FALSE(other.verify(t, good));

  const std::string bad = "btk_live_nope";
  auto many = c.verify_many({t, t, bad, t}, {good, flipped, good, good.substr(1)});
  EXPECT_EQ(many, (std::vector<bool>{true, false, false, false}));
  EXPECT_THROW((void)c.verify_many({t}, {}), blocktrust::ConfigError);
}

TEST(ApiKey, KeyRingSaysWhichSecretMatched) {
  const std::string old_secret(40, 'o'), new_secret(32, 'n');
  ak::Codec old_codec("btk_live", old_secret);
  const std::string t = old_codec.generate();
  const auto d = old_codec.digest(t);
  const std::string old_digest(reinterpret_cast<const char*>(d.data()), d.size());
  ak::KeyRing ring("btk_live", {new_secret, old_secret});
  EXPECT_EQ(ring.size(), 2u);
  EXPECT_EQ(ring.match(t, old_digest), 1);
  const auto nd = ring.current().digest(t);
  EXPECT_EQ(ring.match(t, std::string(reinterpret_cast<const char*>(nd.data()), 32)), 0);
  const auto before = ak::hmac_count();
  EXPECT_EQ(ring.match(t, std::string(32, 'x')), -1);
  EXPECT_EQ(ring.match(t, old_digest), 1);
  EXPECT_EQ(ak::hmac_count() - before, 4u);  // both secrets tried on both calls
  EXPECT_THROW(ak::KeyRing("btk_live", {}), blocktrust::ConfigError);
  EXPECT_THROW(ak::KeyRing("btk_live", {new_secret, "short"}), blocktrust::ConfigError);
}

TEST(ApiKey, ThreadsShareOneCodec) {
  ak::Codec c("btk_live", kSecret);
  std::vector<std::string> tokens;
  std::vector<std::string> digests;
  for (int i = 0; i < 64; ++i) {
    tokens.push_back(c.generate());
    const auto d = c.digest(tokens.back());
    digests.emplace_back(reinterpret_cast<const char*>(d.data()), d.size());
  }
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < 200; ++round) {
        for (std::size_t i = 0; i < tokens.size(); ++i) ok[w] += c.verify(tokens[i], digests[i]);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int v : ok) EXPECT_EQ(v, 200 * 64);
}

TEST(ApiKey, ThreadsShareOneKeyRing) {
  const std::string old_secret(40, 'o'), new_secret(32, 'n');
  ak::Codec old_codec("btk_live", old_secret);
  ak::KeyRing ring("btk_live", {new_secret, old_secret});
  std::vector<std::string> tokens, digests;
  for (int i = 0; i < 32; ++i) {
    tokens.push_back(old_codec.generate());
    const auto d = old_codec.digest(tokens.back());
    digests.emplace_back(reinterpret_cast<const char*>(d.data()), d.size());
  }
  std::vector<std::thread> threads;
  std::vector<int> matched(4, 0);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < 50; ++round) {
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          matched[w] += ring.match(tokens[i], digests[i]) == 1 ? 1 : 0;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int v : matched) EXPECT_EQ(v, 50 * 32);
}
