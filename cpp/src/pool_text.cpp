// Parsers for the text forms PostgreSQL sends (DateStyle ISO, bytea hex), used by the bindings to
// build Python values without a detour through Python string parsing.
#include <string>

#include "blocktrust/pool.hpp"

namespace blocktrust::pool::text {

namespace {

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads exactly `n` digits at s[pos]; advances pos.
bool digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  pos += n;
  return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

bool parse_date_at(std::string_view s, std::size_t& pos, DateTime& out) {
  // Years above 9999 have more digits; BC dates and infinity have no Python equivalent.
  std::size_t end = pos;
  while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
  if (end - pos != 4) return false;
  return digits(s, pos, 4, out.year) && expect(s, pos, '-') && digits(s, pos, 2, out.month) &&
         expect(s, pos, '-') && digits(s, pos, 2, out.day);
}

bool parse_time_at(std::string_view s, std::size_t& pos, DateTime& out) {
  if (!(digits(s, pos, 2, out.hour) && expect(s, pos, ':') && digits(s, pos, 2, out.minute) &&
        expect(s, pos, ':') && digits(s, pos, 2, out.second))) {
    return false;
  }
  out.micro = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int scale = 100000, n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      out.micro += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
      if (++n > 6) return false;
    }
    if (n == 0) return false;
  }
  out.has_tz = false;
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    int h = 0, m = 0, sec = 0;
    if (!digits(s, pos, 2, h)) return false;
    if (pos < s.size() && s[pos] == ':' && !(expect(s, pos, ':') && digits(s, pos, 2, m))) {
      return false;
    }
    if (pos < s.size() && s[pos] == ':' && !(expect(s, pos, ':') && digits(s, pos, 2, sec))) {
      return false;
    }
    out.has_tz = true;
    out.tz_seconds = sign * (h * 3600 + m * 60 + sec);
  }
  return out.hour < 24 && out.minute < 60 && out.second < 60;
}

}  // namespace

std::string decode_bytea(std::string_view hex) {
  if (hex.size() < 2 || hex[0] != '\\' || hex[1] != 'x' || hex.size() % 2 != 0) {
    throw ConfigError("bytea value is not in hex format (set bytea_output = 'hex')");
  }
  std::string out;
  out.resize((hex.size() - 2) / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hexval(hex[2 + 2 * i]), lo = hexval(hex[3 + 2 * i]);
    if (hi < 0 || lo < 0) throw ConfigError("bytea value has a non-hex digit");
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

bool parse_date(std::string_view s, DateTime& out) {
  std::size_t pos = 0;
  return parse_date_at(s, pos, out) && pos == s.size();
}

bool parse_time(std::string_view s, DateTime& out) {
  std::size_t pos = 0;
  return parse_time_at(s, pos, out) && pos == s.size();
}

bool parse_timestamp(std::string_view s, DateTime& out) {
  std::size_t pos = 0;
  return parse_date_at(s, pos, out) && expect(s, pos, ' ') && parse_time_at(s, pos, out) &&
         pos == s.size();
}

}  // namespace blocktrust::pool::text
