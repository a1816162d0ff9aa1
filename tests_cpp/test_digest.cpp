// Known answers (NIST FIPS 180-4 / FIPS 202 examples), streaming = one-shot, files, errors,
// threads.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "blocktrust/digest.hpp"

namespace dg = blocktrust::digest;

namespace {

std::string hex(const dg::Bytes& b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (auto c : b) {
    out.push_back(kDigits[c >> 4U]);
    out.push_back(kDigits[c & 0xFU]);
  }
  return out;
}

dg::ByteView view(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct Vector {
  const char* algorithm;
  std::string message;
  const char* expected;
};

const std::string kAbc = "abc";
const std::string k448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
const std::string k896 =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopq"
    "rs"
    "mnopqrstnopqrstu";

const std::vector<Vector>& vectors() {
  static const std::vector<Vector> v = {
      {"sha256", kAbc, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"sha256", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"sha256", k448, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"sha256", std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
      {"sha224", kAbc, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
      {"sha384", kAbc,
       "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c"
       "8"
       "25a7"},
      {"sha512", kAbc,
       "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3f"
       "e"
       "ebbd454d4423643ce80e2a9ac94fa54ca49f"},
      {"sha512", "",
       "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877"
       "e"
       "ec2f63b931bd47417a81a538327af927da3e"},
      {"sha512", k896,
       "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b"
       "5"
       "433ac7d329eeb6dd26545e96e55b874be909"},
      {"sha3_224", kAbc, "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf"},
      {"sha3_256", kAbc, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"},
      {"sha3_256", "", "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"},
      {"sha3_256", k448, "41c0dba2a9d6240849100376a8235e2c82e1b9998a999e21db32dd97496d3376"},
      {"sha3_256", std::string(1000000, 'a'),
       "5c8875ae474a3634ba4fd55ec85bffd661f32aca75c6d699d0cdcb6c115891c1"},
      {"sha3_512", kAbc,
       "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e"
       "3"
       "934057340b4cf408d5a56592f8274eec53f0"},
  };
  return v;
}

// A scratch directory removed at the end of each test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "bt_digest_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string write(const std::string& name, const std::string& content) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFFU);
  return s;
}

}  // namespace

TEST(Digest, NistKnownAnswers) {
  for (const auto& v : vectors()) {
    const auto alg = dg::parse_algorithm(v.algorithm);
    EXPECT_EQ(hex(dg::hash(alg, view(v.message))), v.expected) << v.algorithm;
    EXPECT_EQ(dg::hash(alg, view(v.message)).size(), dg::digest_size(alg));
  }
  EXPECT_EQ(hex(dg::sha256(view(kAbc))), vectors()[0].expected);
  EXPECT_EQ(hex(dg::sha512(view(kAbc))), vectors()[6].expected);
  EXPECT_EQ(hex(dg::sha3_256(view(kAbc))), vectors()[10].expected);
}

TEST(Digest, StreamingInPiecesMatchesOneShot) {
  for (const auto& v : vectors()) {
    const auto alg = dg::parse_algorithm(v.algorithm);
    dg::Hasher h(alg);
    // Odd piece sizes cross every block boundary.
    for (std::size_t off = 0; off < v.message.size();) {
      const std::size_t n = std::min<std::size_t>(off % 977 + 1, v.message.size() - off);
      h.update(view(v.message).subspan(off, n));
      off += n;
    }
    EXPECT_EQ(hex(h.digest()), v.expected) << v.algorithm;
    EXPECT_EQ(hex(h.digest()), v.expected) << "digest() must not reset";
  }
}

TEST(Digest, CopyIsIndependent) {
  dg::Hasher h(dg::Algorithm::kSha256);
  h.update(view("ab"));
  auto c = h.copy();
  c->update(view("c"));
  h.update(view("x"));
  EXPECT_EQ(hex(c->digest()), vectors()[0].expected);
  EXPECT_EQ(h.digest(), dg::sha256(view("abx")));
  EXPECT_EQ(c->algorithm(), dg::Algorithm::kSha256);
}

TEST(Digest, AlgorithmNames) {
  EXPECT_EQ(dg::parse_algorithm("sha256"), dg::Algorithm::kSha256);
  EXPECT_EQ(dg::parse_algorithm("SHA-256"), dg::Algorithm::kSha256);
  EXPECT_EQ(dg::parse_algorithm("SHA3-256"), dg::Algorithm::kSha3_256);
  EXPECT_EQ(dg::parse_algorithm("sha3_256"), dg::Algorithm::kSha3_256);
  EXPECT_EQ(dg::algorithm_name(dg::Algorithm::kSha3_512), "sha3_512");
  EXPECT_EQ(dg::block_size(dg::Algorithm::kSha256), 64U);
  EXPECT_EQ(dg::block_size(dg::Algorithm::kSha3_256), 136U);
  EXPECT_EQ(dg::algorithm_names().size(), 8U);
  for (const char* bad : {"md5", "", "sha 256", "sha256\n", "blake2b"}) {
    try {
      (void)dg::parse_algorithm(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const blocktrust::ConfigError& e) {
      // The message quotes the rejected name.
      std::string quoted(1, '\'');
      quoted.append(bad).push_back('\'');
      EXPECT_NE(std::string(e.what()).find(quoted), std::string::npos) << e.what();
    }
  }
}

TEST(Digest, HashFileMatchesOneShot) {
  const TempDir dir;
  // Sizes around the 1 MiB read block; from 4 MiB up a helper thread reads ahead.
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, dg::kFileBlock - 1, dg::kFileBlock, dg::kFileBlock + 1,
        3 * dg::kFileBlock + 17, 4 * dg::kFileBlock, 5 * dg::kFileBlock + 3, 8 * dg::kFileBlock}) {
    const std::string data = random_bytes(n, static_cast<unsigned>(n));
    const std::string p = dir.write(std::to_string(n) + ".bin", data);
    EXPECT_EQ(dg::hash_file(dg::Algorithm::kSha256, p), dg::sha256(view(data))) << n;
    EXPECT_EQ(dg::hash_file(dg::Algorithm::kSha3_256, p), dg::sha3_256(view(data))) << n;
    const auto batch = dg::hash_files(dg::Algorithm::kSha512, {&p, 1}, 1, true);
    EXPECT_EQ(batch.at(0).digest, dg::sha512(view(data))) << n;
  }
}

TEST(Digest, HashFileErrorsNameThePath) {
  const TempDir dir;
  const std::string missing = dir.path() + "/missing.bin";
  try {
    (void)dg::hash_file(dg::Algorithm::kSha256, missing);
    FAIL() << "no error";
  } catch (const blocktrust::FileReadError& e) {
    EXPECT_EQ(e.path(), missing);
    EXPECT_EQ(e.error_number(), ENOENT);
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("open"), std::string::npos) << e.what();
  }
  try {
    (void)dg::hash_file(dg::Algorithm::kSha256, dir.path());
    FAIL() << "no error for a directory";
  } catch (const blocktrust::FileReadError& e) {
    EXPECT_EQ(e.error_number(), EISDIR);
    EXPECT_NE(std::string(e.what()).find("read"), std::string::npos) << e.what();
  }
  if (::geteuid() != 0) {  // root reads anything
    const std::string secret = dir.write("noperm", "x");
    ASSERT_EQ(::chmod(secret.c_str(), 0), 0);
    try {
      (void)dg::hash_file(dg::Algorithm::kSha256, secret);
      FAIL() << "no error for an unreadable file";
    } catch (const blocktrust::FileReadError& e) {
      EXPECT_EQ(e.error_number(), EACCES);
    }
  }
}

TEST(Digest, HashFilesInInputOrderWithPerFileErrors) {
  const TempDir dir;
  std::vector<std::string> paths;
  std::vector<std::string> contents;
  for (int i = 0; i < 200; ++i) {
    contents.push_back(random_bytes(static_cast<std::size_t>(i) * 97, static_cast<unsigned>(i)));
    paths.push_back(dir.write(std::to_string(i) + ".bin", contents.back()));
  }
  paths[57] = dir.path() + "/gone";
  for (unsigned threads : {0U, 1U, 3U, 64U}) {
    const auto r = dg::hash_files(dg::Algorithm::kSha512, paths, threads, false);
    ASSERT_EQ(r.size(), paths.size());
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (i == 57) {
        EXPECT_EQ(r[i].status, dg::FileDigest::Status::kFailed);
        EXPECT_EQ(r[i].error_number, ENOENT);
        EXPECT_EQ(r[i].failed_step, "open");
        EXPECT_TRUE(r[i].digest.empty());
      } else {
        ASSERT_EQ(r[i].status, dg::FileDigest::Status::kOk) << i;
        EXPECT_EQ(r[i].digest, dg::sha512(view(contents[i]))) << i << " threads " << threads;
      }
    }
  }
}

TEST(Digest, HashFilesStopsAfterFirstErrorWhenAsked) {
  const TempDir dir;
  std::vector<std::string> paths(1000, dir.write("a", "a"));
  paths[0] = dir.path() + "/gone";
  const auto r = dg::hash_files(dg::Algorithm::kSha256, paths, 1, true);
  EXPECT_EQ(r[0].status, dg::FileDigest::Status::kFailed);
  // One worker stops right after the failure, so every later file is skipped.
  for (std::size_t i = 1; i < r.size(); ++i) {
    EXPECT_EQ(r[i].status, dg::FileDigest::Status::kSkipped) << i;
  }
  EXPECT_TRUE(dg::hash_files(dg::Algorithm::kSha256, {}, 0, true).empty());
}

TEST(Digest, EffectiveThreads) {
  EXPECT_EQ(dg::effective_threads(4, 2), 2U);
  EXPECT_EQ(dg::effective_threads(4, 100), 4U);
  EXPECT_EQ(dg::effective_threads(4, 0), 1U);
  EXPECT_GE(dg::effective_threads(0, 1000), 1U);
}

TEST(Digest, SharedHasherFromManyThreads) {
  // Every update is the same 1000 bytes, so the final digest is independent of interleaving.
  const std::string chunk = random_bytes(1000, 7);
  dg::Hasher shared(dg::Algorithm::kSha256);
  std::vector<std::jthread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        shared.update(view(chunk));
        (void)shared.digest();
      }
    });
  }
  ts.clear();
  std::string all;
  for (int i = 0; i < 2000; ++i) all += chunk;
  EXPECT_EQ(shared.digest(), dg::sha256(view(all)));
}

TEST(Digest, Keccak256KnownAnswers) {
  // Ethereum's Keccak-256 (original padding): the empty string and "abc", then one byte short of,
  // exactly and one byte over the 136-byte rate, and a million 'a's (values from pycryptodome's
  // Crypto.Hash.keccak); then a selector and an event topic everyone knows.
  const std::pair<std::string, std::string_view> cases[] = {
      {"", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"},
      {kAbc, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"},
      {std::string(135, 'a'), "34367dc248bbd832f4e3e69dfaac2f92638bd0bbd18f2912ba4ef454919cf446"},
      {std::string(136, 'a'), "a6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb4b60aa386e"},
      {std::string(137, 'a'), "d869f639c7046b4929fc92a4d988a8b22c55fbadb802c0c66ebcd484f1915f39"},
      {std::string(1000000, 'a'),
       "fadae6b49f129bbb812be8407b7b2894f34aecf6dbd1f9b0f0c7e9853098fc96"},
      {"Transfer(address,address,uint256)",
       "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"},
  };
  for (const auto& [message, expected] : cases) {
    EXPECT_EQ(hex(dg::keccak256(view(message))), expected) << message.size() << " bytes";
  }
  EXPECT_EQ(hex(dg::keccak256(view("transfer(address,uint256)"))).substr(0, 8), "a9059cbb");
  EXPECT_NE(dg::keccak256(view(kAbc)), dg::sha3_256(view(kAbc)));  // not FIPS 202's padding
}
