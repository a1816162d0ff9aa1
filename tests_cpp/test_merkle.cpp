// RFC 6962 Merkle Tree Hash and audit paths against the Certificate Transparency reference tree
// (expected values computed by an independent recursive implementation of RFC 6962 2.1), and
// RFC 9162 inclusion verification including every tampering we can think of.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "blocktrust/merkle.hpp"

namespace mk = blocktrust::merkle;
namespace dg = blocktrust::digest;

namespace {

std::string hex(const mk::Hash& h) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (auto c : h) {
    out.push_back(kDigits[c >> 4U]);
    out.push_back(kDigits[c & 0xFU]);
  }
  return out;
}

mk::Hash unhex(const std::string& s) {
  mk::Hash h{};
  for (std::size_t i = 0; i < 32; ++i)
    h[i] = static_cast<std::uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return h;
}

// The CT reference test leaves.
const std::vector<std::string>& ct_leaves() {
  static const std::vector<std::string> v = {
      "",
      std::string(1, '\x00'),
      "\x10",
      "\x20\x21",
      "\x30\x31",
      "\x40\x41\x42\x43",
      "\x50\x51\x52\x53\x54\x55\x56\x57",
      "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
  };
  return v;
}

// Roots of the first n reference leaves, n = 0..8.
const char* const kCtRoots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct PathVector {
  std::size_t index;
  std::size_t size;
  std::vector<const char*> path;
};

const std::vector<PathVector>& ct_paths() {
  static const std::vector<PathVector> v = {
      {0, 1, {}},
      {0,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5,
       8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {1,
       5,
       {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
      {6,
       7,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
  };
  return v;
}

std::vector<dg::ByteView> views(const std::vector<std::string>& leaves, std::size_t n) {
  std::vector<dg::ByteView> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.emplace_back(reinterpret_cast<const std::uint8_t*>(leaves[i].data()), leaves[i].size());
  }
  return out;
}

std::vector<std::string> numbered_leaves(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back("leaf " + std::to_string(i));
  return out;
}

dg::ByteView view(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

TEST(Merkle, CtReferenceRoots) {
  for (std::size_t n = 0; n <= 8; ++n) {
    const auto v = views(ct_leaves(), n);
    EXPECT_EQ(hex(mk::root(v)), kCtRoots[n]) << n;
    EXPECT_EQ(hex(mk::Tree(v).root()), kCtRoots[n]) << n;
    EXPECT_EQ(mk::Tree(v).size(), n);
  }
}

TEST(Merkle, CtReferencePathsAndVerification) {
  const auto v = views(ct_leaves(), 8);
  for (const auto& pv : ct_paths()) {
    const auto sub = std::span(v).first(pv.size);
    const mk::Tree tree(sub);
    const auto path = tree.proof(pv.index);
    ASSERT_EQ(path.size(), pv.path.size()) << pv.index << "/" << pv.size;
    for (std::size_t i = 0; i < path.size(); ++i) EXPECT_EQ(hex(path[i]), pv.path[i]);
    EXPECT_TRUE(
        mk::verify_inclusion(sub[pv.index], pv.index, pv.size, path, unhex(kCtRoots[pv.size])));
  }
}

TEST(Merkle, LeafAndNodeHashPrefixes) {
  const std::string leaf_input = std::string(1, '\x00') + "doc";
  const auto h = dg::sha256(view(leaf_input));
  EXPECT_TRUE(std::equal(h.begin(), h.end(), mk::leaf_hash(view("doc")).begin()));
  const mk::Hash a = mk::leaf_hash(view("a"));
  const mk::Hash b = mk::leaf_hash(view("b"));
  const std::string node_input =
      std::string(1, '\x01') + std::string(a.begin(), a.end()) + std::string(b.begin(), b.end());
  const auto n = dg::sha256(view(node_input));
  EXPECT_TRUE(std::equal(n.begin(), n.end(), mk::node_hash(a, b).begin()));
}

TEST(Merkle, RootTreeAndPackedAgree) {
  for (std::size_t n : {1, 2, 3, 5, 31, 32, 33, 100, 1000}) {
    std::string packed;
    std::vector<std::string> leaves;
    for (std::size_t i = 0; i < n; ++i) {
      leaves.emplace_back(32, static_cast<char>(i * 7 + 1));
      packed += leaves.back();
    }
    const auto v = views(leaves, n);
    const auto r = mk::root(v);
    EXPECT_EQ(mk::Tree(v).root(), r) << n;
    EXPECT_EQ(mk::root_packed(view(packed), 32), r) << n;
  }
  EXPECT_EQ(hex(mk::root_packed({}, 32)), kCtRoots[0]);
  EXPECT_THROW((void)mk::root_packed(view("abc"), 2), mk::InvalidProof);
  EXPECT_THROW((void)mk::root_packed(view("abc"), 0), mk::InvalidProof);
}

TEST(Merkle, EveryProofOfTreesUpTo70VerifiesAndTamperingFails) {
  const auto leaves = numbered_leaves(70);
  for (std::size_t n = 1; n <= 70; ++n) {
    const auto v = views(leaves, n);
    const mk::Tree tree(v);
    for (std::size_t i = 0; i < n; ++i) {
      auto path = tree.proof(i);
      ASSERT_TRUE(mk::verify_inclusion(v[i], i, n, path, tree.root())) << i << "/" << n;
      EXPECT_FALSE(mk::verify_inclusion(view("forged"), i, n, path, tree.root()));
      if (n > 1) {
        EXPECT_FALSE(mk::verify_inclusion(v[i], (i + 1) % n, n, path, tree.root()));
      }
      EXPECT_FALSE(mk::verify_inclusion(v[i], n, n, path, tree.root()));  // index == size
      if (!path.empty()) {
        auto flipped = path;
        flipped.back()[31] ^= 1U;
        EXPECT_FALSE(mk::verify_inclusion(v[i], i, n, flipped, tree.root()));
        auto shorter = path;
        shorter.pop_back();
        EXPECT_FALSE(mk::verify_inclusion(v[i], i, n, shorter, tree.root()));
      }
      auto longer = path;
      longer.push_back(tree.root());
      EXPECT_FALSE(mk::verify_inclusion(v[i], i, n, longer, tree.root()));
      auto bad_root = tree.root();
      bad_root[0] ^= 0x80U;
      EXPECT_FALSE(mk::verify_inclusion(v[i], i, n, path, bad_root));
    }
  }
}

TEST(Merkle, ProofIndexOutOfRange) {
  const auto leaves = numbered_leaves(5);
  const mk::Tree tree(views(leaves, 5));
  EXPECT_THROW((void)tree.proof(5), mk::LeafIndexError);
  EXPECT_THROW((void)tree.leaf(99), mk::LeafIndexError);
  const mk::Tree empty(views(leaves, 0));
  EXPECT_THROW((void)empty.proof(0), mk::LeafIndexError);
  EXPECT_FALSE(mk::verify_inclusion(view("x"), 0, 0, {}, empty.root()));
}

TEST(Merkle, ConcurrentReadersShareOneTree) {
  const auto leaves = numbered_leaves(513);
  const auto v = views(leaves, leaves.size());
  const mk::Tree tree(v);
  std::atomic<int> failures{0};
  std::vector<std::jthread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (std::size_t i = static_cast<std::size_t>(t); i < v.size(); i += 4) {
        if (!mk::verify_inclusion(v[i], i, v.size(), tree.proof(i), tree.root())) ++failures;
        if (mk::root(v) != tree.root()) ++failures;
      }
    });
  }
  ts.clear();
  EXPECT_EQ(failures.load(), 0);
}
