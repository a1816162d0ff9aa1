// Parsing of rate-limit rules in the notation of the Python `limits` package.
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "blocktrust/ratelimit.hpp"

namespace blocktrust::ratelimit {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
// `limits` counts a month as 30 days and a year as 12 such months; we follow it.
constexpr std::int64_t kDay = 86'400 * kSecond;
constexpr std::int64_t kMaxPeriod = 100 * 365 * kDay;
constexpr std::int64_t kMaxLimit = 1'000'000'000'000;

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

[[noreturn]] void bad(std::string_view rule, std::string_view whole, const std::string& why) {
  std::string msg = "invalid rate limit rule '" + std::string(rule) + "'";
  if (whole != rule) msg += " in '" + std::string(whole) + "'";
  throw ConfigError(msg + ": " + why);
}

// Reads digits at `pos`; returns false when there are none. Caps at kMaxLimit + 1 so an overflow
// is reported as "too large" instead of wrapping.
bool read_number(std::string_view s, std::size_t& pos, std::int64_t& out) {
  std::size_t start = pos;
  out = 0;
  while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])) != 0) {
    if (out <= kMaxLimit) out = out * 10 + (s[pos] - '0');
    ++pos;
  }
  return pos > start;
}

void skip_space(std::string_view s, std::size_t& pos) {
  while (pos < s.size() && is_space(s[pos])) ++pos;
}

std::int64_t unit_ns(const std::string& u) {
  static constexpr struct {
    const char* name;
    std::int64_t ns;
  } kUnits[] = {{"second", kSecond}, {"minute", 60 * kSecond}, {"hour", 3600 * kSecond},
                {"day", kDay},       {"month", 30 * kDay},     {"year", 360 * kDay}};
  for (const auto& unit : kUnits) {
    std::string_view name(unit.name);
    if (u == name || (u.size() == name.size() + 1 && u.back() == 's' && u.starts_with(name))) {
      return unit.ns;
    }
  }
  return 0;
}

Rule parse_one(std::string_view raw, std::string_view whole) {
  const std::string_view item = trim(raw);
  if (item.empty()) bad(raw, whole, "empty rule");
  const std::string expect = "expected '<count>/<period>' such as '5/15minutes' or '10 per hour'";
  std::size_t pos = 0;
  Rule r;
  if (!read_number(item, pos, r.limit)) bad(item, whole, expect);
  skip_space(item, pos);
  if (pos < item.size() && item[pos] == '/') {
    ++pos;
  } else if (item.size() - pos >= 3 && lower(item.substr(pos, 3)) == "per") {
    pos += 3;
  } else {
    bad(item, whole, expect);
  }
  skip_space(item, pos);
  std::int64_t multiple = 1;
  if (pos < item.size() && std::isdigit(static_cast<unsigned char>(item[pos])) != 0) {
    read_number(item, pos, multiple);
    skip_space(item, pos);
  }
  std::size_t unit_start = pos;
  while (pos < item.size() && std::isalpha(static_cast<unsigned char>(item[pos])) != 0) ++pos;
  const std::string unit = lower(item.substr(unit_start, pos - unit_start));
  skip_space(item, pos);
  if (unit.empty() || pos != item.size()) bad(item, whole, expect);
  const std::int64_t ns = unit_ns(unit);
  if (ns == 0) {
    bad(item, whole, "unknown period '" + unit + "' (second, minute, hour, day, month, year)");
  }
  if (r.limit < 1) bad(item, whole, "the count must be at least 1");
  if (r.limit > kMaxLimit) bad(item, whole, "the count is too large");
  if (multiple < 1) bad(item, whole, "the period multiple must be at least 1");
  if (multiple > kMaxPeriod / ns) bad(item, whole, "the period is longer than 100 years");
  r.period_ns = multiple * ns;
  if (r.limit > r.period_ns) bad(item, whole, "more than one unit per nanosecond");
  r.text = std::string(item);
  return r;
}

}  // namespace

std::vector<Rule> parse_rules(std::string_view text) {
  std::vector<Rule> rules;
  if (trim(text).empty()) throw ConfigError("invalid rate limit rule '': empty rule");
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == ';' || text[i] == ',' || text[i] == '|') {
      rules.push_back(parse_one(text.substr(start, i - start), text));
      start = i + 1;
    }
  }
  return rules;
}

Algorithm parse_algorithm(std::string_view name) {
  std::string n = lower(trim(name));
  for (char& c : n) {
    if (c == '-') c = '_';
  }
  if (n == "gcra") return Algorithm::kGcra;
  if (n == "sliding_window" || n == "sliding" || n == "sliding_window_counter") {
    return Algorithm::kSlidingWindow;
  }
  if (n == "fixed_window" || n == "fixed") return Algorithm::kFixedWindow;
  throw ConfigError("unknown rate limit algorithm '" + std::string(name) +
                    "' (gcra, sliding_window, fixed_window)");
}

const char* algorithm_name(Algorithm a) noexcept {
  switch (a) {
    case Algorithm::kGcra:
      return "gcra";
    case Algorithm::kSlidingWindow:
      return "sliding_window";
    case Algorithm::kFixedWindow:
      return "fixed_window";
  }
  return "gcra";
}

}  // namespace blocktrust::ratelimit
