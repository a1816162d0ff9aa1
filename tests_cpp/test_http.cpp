// The blocking HttpClient against a loopback server: keep-alive reuse, chunked bodies, garbage.
#include <gtest/gtest.h>

#include "blocktrust/http.hpp"
#include "loopback_server.hpp"

using blocktrust::http::HttpClient;
using blocktrust::http::HttpConfigError;
using blocktrust::http::HttpRequest;

TEST(HttpClient, KeepAliveReusesOneConnection) {
  LoopbackServer srv;
  HttpClient client;
  for (int i = 0; i < 5; ++i) {
    auto r = client.request({"GET", srv.url() + "/n" + std::to_string(i), {}, ""});
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"token":"abc","path":"/n)" + std::to_string(i) + "\"}");
    EXPECT_EQ(r.reused_connection, i > 0);
  }
  EXPECT_EQ(srv.connections(), 1);
}

TEST(HttpClient, ChunkedBodyIsReassembled) {
  LoopbackServer srv;
  HttpClient client;
  auto r = client.request({"GET", srv.url() + "/chunked", {}, ""});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.body, "{\"a\":1}");
}

TEST(HttpClient, GarbageIsAFailureNotACrash) {
  LoopbackServer srv;
  HttpClient client;
  auto r = client.request({"GET", srv.url() + "/garbage", {}, ""});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("read response"), std::string::npos) << r.error;
  // The client recovers on a fresh connection.
  auto ok = client.request({"GET", srv.url() + "/after", {}, ""});
  EXPECT_TRUE(ok.ok()) << ok.error;
}

TEST(HttpClient, BadUrlsThrowConfigErrors) {
  HttpClient client;
  EXPECT_THROW((void)client.request({"GET", "ftp://x/", {}, ""}), HttpConfigError);
  EXPECT_THROW((void)client.request({"GET", "http://:80/", {}, ""}), HttpConfigError);
  EXPECT_THROW((void)client.request({"GET", "http://h:8a/", {}, ""}), HttpConfigError);
}
