// Layout as in HdrHistogram: 2048 linear sub-buckets (11 bits, so 3 significant digits) in the
// first bucket, then each further bucket doubles the unit and holds the upper 1024 of them.
#include "blocktrust/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace blocktrust::flows {

namespace {

constexpr int kSubBits = 11;                         // 2048 sub-buckets
constexpr std::int64_t kHalf = 1 << (kSubBits - 1);  // 1024
constexpr int kBuckets = 22;                         // 2047 << 21 covers ~71 minutes in µs
constexpr std::size_t kLen = static_cast<std::size_t>((kBuckets + 1) * kHalf);
constexpr char kMagic[4] = {'B', 'T', 'H', '1'};

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::uint64_t get_varint(std::string_view in, std::size_t& pos) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= in.size()) throw HistogramFormatError("histogram bytes: truncated varint");
    auto b = static_cast<unsigned char>(in[pos++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  throw HistogramFormatError("histogram bytes: varint too long");
}

}  // namespace

Histogram::Histogram() : counts_(kLen, 0) {}

std::size_t Histogram::index_of(std::int64_t v) noexcept {
  auto u = static_cast<std::uint64_t>(v);
  int bucket = (63 - std::countl_zero(u | (kHalf * 2 - 1))) - (kSubBits - 1);
  auto sub = static_cast<std::int64_t>(u >> bucket);
  return static_cast<std::size_t>((bucket + 1) * kHalf + (sub - kHalf));
}

std::int64_t Histogram::lowest_of(std::size_t index) noexcept {
  auto i = static_cast<std::int64_t>(index);
  std::int64_t bucket = (i >> (kSubBits - 1)) - 1;
  std::int64_t sub = (i & (kHalf - 1)) + kHalf;
  if (bucket < 0) {
    sub -= kHalf;
    bucket = 0;
  }
  return sub << bucket;
}

std::int64_t Histogram::highest_of(std::size_t index) noexcept {
  auto i = static_cast<std::int64_t>(index);
  std::int64_t bucket = std::max<std::int64_t>((i >> (kSubBits - 1)) - 1, 0);
  return lowest_of(index) + (std::int64_t{1} << bucket) - 1;
}

void Histogram::record_us(std::int64_t v, std::int64_t count) noexcept {
  if (count <= 0) return;
  if (v < 0) v = 0;
  if (v > kMaxValueUs) {
    v = kMaxValueUs;
    saturated_ += count;
  }
  counts_[index_of(v)] += count;
  if (total_ == 0 || v < min_) min_ = v;
  if (v > max_) max_ = v;
  total_ += count;
  sum_ += static_cast<long double>(v) * static_cast<long double>(count);
}

void Histogram::merge(const Histogram& o) noexcept {
  if (o.total_ == 0) return;
  for (std::size_t i = 0; i < kLen; ++i) counts_[i] += o.counts_[i];
  if (total_ == 0 || o.min_ < min_) min_ = o.min_;
  max_ = std::max(max_, o.max_);
  total_ += o.total_;
  saturated_ += o.saturated_;
  sum_ += o.sum_;
}

void Histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = min_ = max_ = saturated_ = 0;
  sum_ = 0;
}

double Histogram::mean_us() const noexcept {
  return total_ ? static_cast<double>(sum_ / static_cast<long double>(total_)) : 0.0;
}

std::int64_t Histogram::percentile_us(double p) const noexcept {
  if (total_ == 0) return 0;
  if (!(p > 0)) return min_;
  if (p >= 100) return max_;
  // The rank of the sample at p (nearest-rank definition), at least 1.
  auto rank = static_cast<std::int64_t>(std::ceil(p / 100.0 * static_cast<double>(total_)));
  rank = std::clamp<std::int64_t>(rank, 1, total_);
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < kLen; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      // The midpoint of the bucket halves the worst error; the extremes are known exactly.
      std::int64_t lo = lowest_of(i), hi = highest_of(i);
      return std::clamp(lo + (hi - lo) / 2, min_, max_);
    }
  }
  return max_;
}

std::string Histogram::serialize() const {
  std::string out(kMagic, sizeof kMagic);
  put_varint(out, static_cast<std::uint64_t>(total_));
  put_varint(out, static_cast<std::uint64_t>(min_));
  put_varint(out, static_cast<std::uint64_t>(max_));
  put_varint(out, static_cast<std::uint64_t>(saturated_));
  // The sum as microseconds rounded: exact for any realistic run.
  put_varint(out, static_cast<std::uint64_t>(std::llround(static_cast<double>(sum_))));
  std::size_t last = 0;
  for (std::size_t i = 0; i < kLen; ++i) {
    if (counts_[i] == 0) continue;
    put_varint(out, i - last);
    put_varint(out, static_cast<std::uint64_t>(counts_[i]));
    last = i;
  }
  return out;
}

Histogram Histogram::deserialize(std::string_view in) {
  if (in.size() < sizeof kMagic || in.substr(0, sizeof kMagic) != std::string_view(kMagic, 4)) {
    throw HistogramFormatError("histogram bytes: bad magic (not a BTH1 histogram)");
  }
  constexpr auto kMaxI64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  auto i64 = [&](std::size_t& pos) {
    auto v = get_varint(in, pos);
    if (v > kMaxI64) throw HistogramFormatError("histogram bytes: value out of range");
    return static_cast<std::int64_t>(v);
  };
  Histogram h;
  std::size_t pos = sizeof kMagic;
  std::int64_t total = i64(pos);
  h.min_ = i64(pos);
  h.max_ = i64(pos);
  h.saturated_ = i64(pos);
  h.sum_ = static_cast<long double>(i64(pos));
  std::size_t index = 0;
  std::int64_t seen = 0;
  while (pos < in.size()) {
    auto delta = get_varint(in, pos);
    if (delta > kLen || index + delta >= kLen) {
      throw HistogramFormatError("histogram bytes: bucket index out of range");
    }
    index += delta;
    std::int64_t c = i64(pos);
    if (c > total - seen) throw HistogramFormatError("histogram bytes: counts exceed total");
    h.counts_[index] += c;
    seen += c;
  }
  if (seen != total || h.min_ > h.max_ || h.max_ > kMaxValueUs) {
    throw HistogramFormatError("histogram bytes: counts do not add up to the total");
  }
  h.total_ = total;
  return h;
}

}  // namespace blocktrust::flows
