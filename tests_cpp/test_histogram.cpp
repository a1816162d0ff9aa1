// Histogram accuracy against exact percentiles of random samples, merge and serialisation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "blocktrust/histogram.hpp"

using blocktrust::flows::Histogram;
using blocktrust::flows::HistogramFormatError;

namespace {

std::int64_t exact_percentile(std::vector<std::int64_t> v, double p) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

void expect_close(std::int64_t got, std::int64_t want, double p) {
  // 3 significant digits: the bucket width is at most 1/1024 of the value; allow 0.1 %.
  double tol = std::max(1.0, static_cast<double>(want) * 0.001);
  EXPECT_LE(std::fabs(static_cast<double>(got - want)), tol) << "p" << p;
}

}  // namespace

TEST(Histogram, PercentilesOfLogUniformSamplesWithin3Digits) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exp10(0.0, 7.8);  // 1 µs .. ~63 s
  std::vector<std::int64_t> v;
  Histogram h;
  for (int i = 0; i < 200000; ++i) {
    auto x = static_cast<std::int64_t>(std::pow(10.0, exp10(rng)));
    v.push_back(x);
    h.record_us(x);
  }
  for (double p : {0.1, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99}) {
    expect_close(h.percentile_us(p), exact_percentile(v, p), p);
  }
  EXPECT_EQ(h.percentile_us(100), *std::max_element(v.begin(), v.end()));
  EXPECT_EQ(h.percentile_us(0), *std::min_element(v.begin(), v.end()));
  EXPECT_EQ(h.count(), 200000);
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (int i = 1; i <= 2000; ++i) h.record_us(i);
  EXPECT_EQ(h.percentile_us(50), 1000);
  EXPECT_EQ(h.percentile_us(99), 1980);
  EXPECT_DOUBLE_EQ(h.mean_us(), 1000.5);
}

TEST(Histogram, SixtySecondsKeepsPrecisionAndHugeValuesSaturate) {
  Histogram h;
  h.record_us(60'000'000);
  expect_close(h.percentile_us(50), 60'000'000, 50);
  h.record_us(Histogram::kMaxValueUs * 2);
  EXPECT_EQ(h.saturated(), 1);
  EXPECT_EQ(h.max_us(), Histogram::kMaxValueUs);
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> d(1.0 / 5000.0);
  Histogram a, b, all;
  for (int i = 0; i < 50000; ++i) {
    auto x = static_cast<std::int64_t>(d(rng));
    (i % 2 ? a : b).record_us(x);
    all.record_us(x);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double p : {50.0, 90.0, 99.0, 99.9}) EXPECT_EQ(a.percentile_us(p), all.percentile_us(p));
  EXPECT_EQ(a.min_us(), all.min_us());
  EXPECT_EQ(a.max_us(), all.max_us());
}

TEST(Histogram, SerializeRoundTripsAndRejectsGarbage) {
  Histogram h;
  for (int i = 0; i < 10000; ++i) h.record_us(i * 37 % 900000);
  auto bytes = h.serialize();
  auto back = Histogram::deserialize(bytes);
  EXPECT_EQ(back.count(), h.count());
  EXPECT_EQ(back.percentile_us(99), h.percentile_us(99));
  EXPECT_EQ(back.serialize(), bytes);
  EXPECT_THROW((void)Histogram::deserialize("nope"), HistogramFormatError);
  EXPECT_THROW((void)Histogram::deserialize(bytes.substr(0, bytes.size() - 1)),
               HistogramFormatError);
  std::string bad = bytes;
  bad[4] = '\x7f';  // total no longer matches the counts
  EXPECT_THROW((void)Histogram::deserialize(bad), HistogramFormatError);
}
