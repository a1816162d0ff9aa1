// The flow runner's cookie jar (RFC 6265 section 5): domain and host-only matching, public
// suffixes, paths, Secure, expiry, and cookie dates.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "cookie_jar.hpp"

using blocktrust::http::CookieJar;
using blocktrust::http::is_public_suffix;
using blocktrust::http::parse_cookie_date;
using blocktrust::http::ParsedUrl;

namespace {

using namespace std::chrono_literals;

const CookieJar::Clock::time_point kNow = CookieJar::Clock::from_time_t(1'700'000'000);

ParsedUrl url(const std::string& text) {
  ParsedUrl u;
  std::string why;
  EXPECT_TRUE(blocktrust::http::parse_url(text, u, why)) << text << ": " << why;
  return u;
}

struct Jar {
  CookieJar jar;
  void set(const std::string& from, const std::string& set_cookie,
           CookieJar::Clock::time_point at = kNow) {
    jar.store(url(from), set_cookie, at);
  }
  std::string get(const std::string& to, CookieJar::Clock::time_point at = kNow) const {
    return jar.header_for(url(to), at);
  }
};

}  // namespace

TEST(CookieJar, WithoutDomainACookieIsHostOnly) {
  Jar j;
  j.set("http://example.com/", "a=1");
  EXPECT_EQ(j.get("http://example.com/"), "a=1");
  EXPECT_EQ(j.get("http://EXAMPLE.com/x"), "a=1");  // host names compare case-insensitively
  EXPECT_EQ(j.get("http://www.example.com/"), "");  // not for subdomains
  EXPECT_EQ(j.get("http://example.org/"), "");
}

TEST(CookieJar, ADomainAttributeCoversTheDomainAndItsSubdomains) {
  Jar j;
  j.set("http://www.example.com/", "a=1; Domain=.Example.COM");  // leading dot, any case
  EXPECT_EQ(j.get("http://example.com/"), "a=1");
  EXPECT_EQ(j.get("http://www.example.com/"), "a=1");
  EXPECT_EQ(j.get("http://api.v2.example.com/"), "a=1");
  EXPECT_EQ(j.get("http://notexample.com/"), "");  // a suffix, but not after a dot
  EXPECT_EQ(j.get("http://example.com.evil.net/"), "");
}

TEST(CookieJar, AForeignDomainIsRefused) {
  Jar j;
  j.set("http://www.example.com/", "a=1; Domain=other.com");
  j.set("http://www.example.com/", "b=1; Domain=api.www.example.com");  // a subdomain of the host
  EXPECT_TRUE(j.jar.empty());
}

TEST(CookieJar, APublicSuffixDomainIsRefused) {
  Jar j;
  // Any one may register under these: a cookie for all of them would reach strangers' sites.
  j.set("http://shop.example.co.uk/", "a=1; Domain=co.uk");
  j.set("http://shop.example.co.uk/", "b=1; Domain=uk");
  j.set("http://alice.github.io/", "c=1; Domain=github.io");
  j.set("http://shop.example.com.au/", "d=1; Domain=com.au");
  j.set("http://www.example.com/", "e=1; Domain=com");
  EXPECT_TRUE(j.jar.empty());
  EXPECT_EQ(j.get("http://bank.co.uk/"), "");
  EXPECT_EQ(j.get("http://bob.github.io/"), "");
  // The registrable domain under the suffix is fine.
  j.set("http://shop.example.co.uk/", "f=1; Domain=example.co.uk");
  EXPECT_EQ(j.get("http://www.example.co.uk/"), "f=1");
  EXPECT_EQ(j.get("http://other.co.uk/"), "");
}

TEST(CookieJar, APublicSuffixHostGetsAHostOnlyCookie) {
  // RFC 6265 5.3 step 5: Domain equal to the (public suffix) host is kept, as host-only.
  Jar j;
  j.set("http://co.uk/", "a=1; Domain=co.uk");
  EXPECT_EQ(j.get("http://co.uk/"), "a=1");
  EXPECT_EQ(j.get("http://x.co.uk/"), "");
  j.set("http://localhost:8080/", "b=1; Domain=localhost");
  EXPECT_EQ(j.get("http://localhost:8080/"), "b=1");
  EXPECT_EQ(j.get("http://app.localhost:8080/"), "");
}

TEST(CookieJar, PublicSuffixRules) {
  for (const char* d : {"com", "uk", "localhost", "co.uk", "org.uk", "com.au", "co.jp", "com.br",
                        "github.io", "herokuapp.com", "vercel.app", "s3.amazonaws.com"}) {
    EXPECT_TRUE(is_public_suffix(d)) << d;
  }
  for (const char* d : {"example.com", "example.co.uk", "uk.com", "co.ukk", "o.uk", "io.github",
                        "user.github.io", "amazonaws.com"}) {
    EXPECT_FALSE(is_public_suffix(d)) << d;
  }
}

TEST(CookieJar, IpAddressesNeverDomainMatch) {
  Jar j;
  j.set("http://127.0.0.1:9/", "a=1; Domain=0.0.1");
  EXPECT_TRUE(j.jar.empty());
  j.set("http://127.0.0.1:9/", "b=1; Domain=127.0.0.1");  // equal: kept, host-only
  EXPECT_EQ(j.get("http://127.0.0.1:9/"), "b=1");
}

TEST(CookieJar, DefaultPathIsTheDirectoryOfTheRequest) {
  Jar j;
  j.set("http://h.test/a/b/c?q=1", "a=1");
  EXPECT_EQ(j.get("http://h.test/a/b"), "a=1");
  EXPECT_EQ(j.get("http://h.test/a/b/"), "a=1");
  EXPECT_EQ(j.get("http://h.test/a/b/x/y"), "a=1");
  EXPECT_EQ(j.get("http://h.test/a"), "");
  EXPECT_EQ(j.get("http://h.test/a/bc"), "");  // a prefix, but not at a '/'
  j.set("http://h.test/top", "b=1");
  EXPECT_EQ(j.get("http://h.test/anything"), "b=1");  // directory of "/top" is "/"
}

TEST(CookieJar, PathAttributeAndOrderLongerPathsFirst) {
  Jar j;
  j.set("http://h.test/", "outer=1; Path=/");
  j.set("http://h.test/", "inner=2; Path=/docs");
  j.set("http://h.test/docs/x", "bad=3; Path=docs");  // not starting with '/': default path
  EXPECT_EQ(j.get("http://h.test/docs/x"), "inner=2; bad=3; outer=1");
  EXPECT_EQ(j.get("http://h.test/docs"), "inner=2; bad=3; outer=1");
  EXPECT_EQ(j.get("http://h.test/docsx"), "outer=1");
  EXPECT_EQ(j.get("http://h.test/"), "outer=1");
}

TEST(CookieJar, EqualPathsKeepCreationOrderAcrossReplacement) {
  Jar j;
  j.set("http://h.test/", "a=1");
  j.set("http://h.test/", "b=1", kNow + 1s);
  j.set("http://h.test/", "a=2", kNow + 2s);  // replaces a, keeping its place
  EXPECT_EQ(j.get("http://h.test/", kNow + 3s), "a=2; b=1");
}

TEST(CookieJar, SecureCookiesOnlyFromAndToHttps) {
  Jar j;
  j.set("http://h.test/", "planted=1; Secure");  // plain http cannot set one
  EXPECT_TRUE(j.jar.empty());
  j.set("https://h.test/", "sid=1; Secure");
  EXPECT_EQ(j.get("https://h.test/"), "sid=1");
  EXPECT_EQ(j.get("http://h.test/"), "");
  j.set("http://h.test/", "sid=evil");  // nor overwrite it
  EXPECT_EQ(j.get("https://h.test/"), "sid=1");
}

TEST(CookieJar, MaxAgeExpiresAndWinsOverExpires) {
  Jar j;
  j.set("http://h.test/", "a=1; Max-Age=10; Expires=Wed, 21 Oct 2065 07:28:00 GMT");
  EXPECT_EQ(j.get("http://h.test/", kNow + 9s), "a=1");
  EXPECT_EQ(j.get("http://h.test/", kNow + 10s), "");
  j.set("http://h.test/", "b=1; Expires=Wed, 21 Oct 2065 07:28:00 GMT");
  EXPECT_EQ(j.get("http://h.test/", kNow + 3650 * 24h), "b=1");
  j.set("http://h.test/", "session=1");  // no expiry: kept for the jar's life
  EXPECT_EQ(j.get("http://h.test/", kNow + 3650 * 24h), "b=1; session=1");
}

TEST(CookieJar, AnExpiryInThePastDeletesTheCookie) {
  Jar j;
  j.set("http://h.test/", "a=1");
  j.set("http://h.test/", "b=1");
  j.set("http://h.test/", "c=1");
  j.set("http://h.test/", "a=gone; Max-Age=0");
  j.set("http://h.test/", "b=gone; Max-Age=-1");
  j.set("http://h.test/", "c=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_TRUE(j.jar.empty());
}

TEST(CookieJar, MalformedValuesAreIgnored) {
  Jar j;
  j.set("http://h.test/", "no-equals-sign");
  j.set("http://h.test/", "=value-without-name");
  EXPECT_TRUE(j.jar.empty());
  j.set("http://h.test/", "a=1; Max-Age=soon");  // a bad attribute is skipped, not the cookie
  EXPECT_EQ(j.get("http://h.test/", kNow + 3650 * 24h), "a=1");
}

TEST(CookieDate, TheFormatsBrowsersAccept) {
  CookieJar::Clock::time_point t;
  ASSERT_TRUE(parse_cookie_date("Wed, 21 Oct 2015 07:28:00 GMT", t));
  EXPECT_EQ(CookieJar::Clock::to_time_t(t), 1445412480);
  ASSERT_TRUE(parse_cookie_date("Sunday, 06-Nov-94 08:49:37 GMT", t));  // RFC 850, 2-digit year
  EXPECT_EQ(CookieJar::Clock::to_time_t(t), 784111777);
  ASSERT_TRUE(parse_cookie_date("Sun Nov  6 08:49:37 1994", t));  // asctime()
  EXPECT_EQ(CookieJar::Clock::to_time_t(t), 784111777);
  EXPECT_FALSE(parse_cookie_date("yesterday", t));
  EXPECT_FALSE(parse_cookie_date("Wed, 32 Oct 2015 07:28:00 GMT", t));
  EXPECT_FALSE(parse_cookie_date("Wed, 21 Oct 2015 24:00:00 GMT", t));
  EXPECT_FALSE(parse_cookie_date("Wed, 21 Oct 1600 07:28:00 GMT", t));
}
