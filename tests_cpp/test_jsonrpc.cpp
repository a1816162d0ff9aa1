// The JSON-RPC client against a loopback HTTP server that answers like a node (and like a bad one).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "blocktrust/jsonrpc.hpp"
#include "loopback_server.hpp"

using blocktrust::ConfigError;
using blocktrust::jsonrpc::Call;
using blocktrust::jsonrpc::ChainConnectionError;
using blocktrust::jsonrpc::Client;
using blocktrust::jsonrpc::JsonRpcError;
using blocktrust::jsonrpc::redact_url;
using nlohmann::json;

namespace {

using Request = LoopbackRequest;
struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};
using Handler = std::function<Reply(const Request&)>;

// A node on 127.0.0.1 (keep-alive, Content-Length bodies): every request goes to `handler`.
class RpcServer {
 public:
  explicit RpcServer(Handler handler) : handler_(std::move(handler)) {}
  std::string url(const std::string& rest = "") const { return "http://" + host_port() + rest; }
  std::string host_port() const { return "127.0.0.1:" + std::to_string(http_.port()); }
  int connections() const { return http_.connections(); }
  Request last() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  bool respond(int c, const Request& req) {
    {
      std::lock_guard lock(mu_);
      last_ = req;
    }
    const Reply r = handler_(req);
    return send_all(
        c, "HTTP/1.1 " + std::to_string(r.status) + " X\r\nContent-Type: " + r.content_type +
               "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n\r\n" + r.body);
  }

  Handler handler_;
  std::mutex mu_;
  Request last_;
  LoopbackHttp http_{16, [this](int c, const Request& req) { return respond(c, req); }};
};

// A node that echoes each call's method and params as its result; "fail" answers an error.
json answer_one(const json& call) {
  if (call["method"] == "fail") {
    return {{"jsonrpc", "2.0"},
            {"id", call["id"]},
            {"error",
             {{"code", -32005},
              {"message", "query returned more than 10000 results"},
              {"data", {{"limit", 10000}}}}}};
  }
  return {{"jsonrpc", "2.0"},
          {"id", call["id"]},
          {"result", {{"method", call["method"]}, {"params", call["params"]}}}};
}

Reply echo_node(const Request& req) {
  const json in = json::parse(req.body);
  if (!in.is_array()) return {200, answer_one(in).dump()};
  json out = json::array();
  for (auto it = in.rbegin(); it != in.rend(); ++it) out.push_back(answer_one(*it));  // reversed
  return {200, out.dump()};
}

std::int64_t request_id(const Request& req) {
  return json::parse(req.body)["id"].get<std::int64_t>();
}

}  // namespace

TEST(JsonRpc, CallReturnsTheResultTextOverOneKeptAliveConnection) {
  RpcServer srv(echo_node);
  Client client(srv.url());
  for (int i = 0; i < 3; ++i) {
    const json r = json::parse(
        client.call("eth_getLogs", R"([{"fromBlock":"0x)" + std::to_string(i) + R"("}])"));
    EXPECT_EQ(r["method"], "eth_getLogs");
    EXPECT_EQ(r["params"][0]["fromBlock"], "0x" + std::to_string(i));
  }
  EXPECT_EQ(srv.connections(), 1);
  const json sent = json::parse(srv.last().body);
  EXPECT_EQ(sent["jsonrpc"], "2.0");
  EXPECT_NE(srv.last().head.find("Content-Type: application/json"), std::string::npos);
}

TEST(JsonRpc, TheResultIsCutOutExactlyWhateverTheMemberOrderAndContent) {
  // Strings holding brackets, quotes, escapes and keys named like envelope members; the result
  // comes first, the id last, with odd spacing; an escaped key spells "error" but is null.
  const std::string result =
      R"({"a": "}]\"{[", "result": [1, -2.5e3, true, null, {"error": "x\\"}], "b\u0022": {}})";
  RpcServer srv([&](const Request& req) {
    return Reply{200, "{ \"result\" :\n " + result +
                          " ,\"\\u0065rror\": null, \"jsonrpc\":\"2.0\"," +
                          " \"id\" : " + std::to_string(request_id(req)) + " }"};
  });
  Client client(srv.url());
  EXPECT_EQ(client.call("x"), result);
  EXPECT_EQ(client.call("x", "{}"), result);
}

TEST(JsonRpc, AScalarOrNullResultIsReturnedAsJson) {
  RpcServer srv([](const Request& req) {
    const std::string result = json::parse(req.body)["method"] == "null" ? "null" : "\"0x1f\"";
    return Reply{200, R"({"jsonrpc":"2.0","id":)" + std::to_string(request_id(req)) +
                          R"(,"result":)" + result + "}"};
  });
  Client client(srv.url());
  EXPECT_EQ(client.call("eth_blockNumber"), "\"0x1f\"");
  EXPECT_EQ(client.call("null"), "null");
}

TEST(JsonRpc, AnErrorObjectIsAnRpcErrorWithTheNodesCodeMessageAndData) {
  RpcServer srv(echo_node);
  Client client(srv.url());
  try {
    (void)client.call("fail", "[]");
    FAIL() << "no error";
  } catch (const JsonRpcError& e) {
    EXPECT_EQ(e.code(), -32005);
    EXPECT_EQ(e.message(), "query returned more than 10000 results");
    EXPECT_EQ(json::parse(e.data()), json({{"limit", 10000}}));
    EXPECT_NE(std::string(e.what()).find("fail: query returned more"), std::string::npos)
        << e.what();
  }
  // An error answer leaves the client usable.
  EXPECT_EQ(json::parse(client.call("ok"))["method"], "ok");
}

TEST(JsonRpc, AnHttpErrorStatusWithAJsonRpcBodyKeepsTheNodesMessage) {
  RpcServer srv([](const Request& req) {
    return Reply{429, R"({"jsonrpc":"2.0","id":)" + std::to_string(request_id(req)) +
                          R"(,"error":{"code":-32029,"message":"too many requests"}})"};
  });
  Client client(srv.url());
  try {
    (void)client.call("eth_chainId");
    FAIL() << "no error";
  } catch (const JsonRpcError& e) {
    EXPECT_EQ(e.code(), -32029);
    EXPECT_EQ(e.message(), "too many requests");
    EXPECT_EQ(e.data(), "");
  }
}

TEST(JsonRpc, AnswersThatAreNotJsonRpcAreChainConnectionErrors) {
  std::atomic<int> mode{0};
  RpcServer srv([&](const Request& req) {
    const std::string id = std::to_string(request_id(req));
    switch (mode.load()) {
      case 0:
        return Reply{502, "<html>Bad Gateway</html>", "text/html"};
      case 1:
        return Reply{200, R"({"jsonrpc":"2.0","id":)" + id + R"(,"result":[1,2)"};  // truncated
      case 2:
        return Reply{200, R"({"jsonrpc":"2.0","id":)" + id + "}"};  // neither result nor error
      case 3:
        return Reply{200, R"({"jsonrpc":"2.0","id":999999,"result":1})"};  // another request's
      default:
        return Reply{200, "[1,2,3]"};
    }
  });
  Client client(srv.url());
  try {
    (void)client.call("eth_blockNumber");
    FAIL() << "no error";
  } catch (const ChainConnectionError& e) {
    EXPECT_EQ(e.http_status(), 502);
    EXPECT_NE(std::string(e.what()).find("HTTP 502"), std::string::npos) << e.what();
  }
  for (int m = 1; m <= 4; ++m) {
    mode = m;
    EXPECT_THROW((void)client.call("eth_blockNumber"), ChainConnectionError) << "mode " << m;
  }
}

TEST(JsonRpc, AnUnreachableNodeIsAChainConnectionErrorWithoutStatus) {
  int port = 0;
  {
    RpcServer gone(echo_node);
    port = std::stoi(gone.url().substr(gone.url().rfind(':') + 1));
  }
  Client client("http://127.0.0.1:" + std::to_string(port));
  try {
    (void)client.call("eth_blockNumber");
    FAIL() << "no error";
  } catch (const ChainConnectionError& e) {
    EXPECT_EQ(e.http_status(), 0);
    EXPECT_NE(std::string(e.what()).find("eth_blockNumber to http://127.0.0.1:"), std::string::npos)
        << e.what();
  }
}

TEST(JsonRpc, ABatchAnsweredOutOfOrderComesBackInCallOrder) {
  RpcServer srv(echo_node);
  Client client(srv.url());
  auto out = client.batch({{"eth_blockNumber", "[]"},
                           {"fail", "[]"},
                           {"eth_getBlockByNumber", R"(["finalized",false])"}});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].ok);
  EXPECT_EQ(json::parse(out[0].result)["method"], "eth_blockNumber");
  EXPECT_FALSE(out[1].ok);
  EXPECT_EQ(out[1].code, -32005);
  EXPECT_EQ(out[1].message, "query returned more than 10000 results");
  EXPECT_TRUE(out[2].ok);
  EXPECT_EQ(json::parse(out[2].result)["params"][0], "finalized");
  EXPECT_TRUE(client.batch({}).empty());
  EXPECT_EQ(srv.connections(), 1);
}

TEST(JsonRpc, ABatchRefusedAsAWholeOrAnsweredIncompletelyThrows) {
  std::atomic<int> mode{0};
  RpcServer srv([&](const Request& req) {
    const json in = json::parse(req.body);
    if (mode == 0) {
      return Reply{200,
                   R"({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"no batches"}})"};
    }
    json out = json::array({answer_one(in[0])});  // the second call gets no answer
    return Reply{200, out.dump()};
  });
  Client client(srv.url());
  try {
    (void)client.batch({{"a", "[]"}, {"b", "[]"}});
    FAIL() << "no error";
  } catch (const JsonRpcError& e) {
    EXPECT_EQ(e.code(), -32600);
    EXPECT_EQ(e.message(), "no batches");
  }
  mode = 1;
  EXPECT_THROW((void)client.batch({{"a", "[]"}, {"b", "[]"}}), ChainConnectionError);
}

TEST(JsonRpc, UrlSecretsAreSentButNeverShown) {
  const std::string key = "k3yK3yK3yK3yK3y0";
  RpcServer srv([&](const Request& req) {
    // A node that echoes the request target in its error message.
    return Reply{200, R"({"jsonrpc":"2.0","id":)" + std::to_string(request_id(req)) +
                          R"(,"error":{"code":-32000,"message":"bad key in )" + req.target +
                          R"("}})"};
  });
  const std::string url =
      "http://alice:pa%3Ass@" + srv.host_port() + "/v3/" + key + "?apikey=Q" + key;
  Client client(url);
  EXPECT_EQ(client.url(), "http://" + srv.host_port() + "/…");
  try {
    (void)client.call("eth_chainId");
    FAIL() << "no error";
  } catch (const JsonRpcError& e) {
    EXPECT_EQ(std::string(e.what()).find(key), std::string::npos) << e.what();
    EXPECT_EQ(e.message().find(key), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("bad key in "), std::string::npos) << e.message();
  }
  const Request got = srv.last();
  EXPECT_EQ(got.target, "/v3/" + key + "?apikey=Q" + key);  // the key still reaches the node
  // alice:pa:ss (percent-decoded) in base64
  EXPECT_NE(got.head.find("Authorization: Basic YWxpY2U6cGE6c3M="), std::string::npos) << got.head;
  EXPECT_EQ(got.head.find("alice"), std::string::npos);  // user info only as the header

  // A transport failure names the endpoint without the secrets either.
  Client gone("https://user:hunter22@127.0.0.1:1/v2/" + key + "?x=" + key);
  try {
    (void)gone.call("eth_chainId");
    FAIL() << "no error";
  } catch (const ChainConnectionError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find(key), std::string::npos) << what;
    EXPECT_EQ(what.find("hunter22"), std::string::npos) << what;
    EXPECT_NE(what.find("https://127.0.0.1:1/…"), std::string::npos) << what;
  }
}

TEST(JsonRpc, RedactUrlKeepsSchemeHostAndPortOnly) {
  EXPECT_EQ(redact_url("https://polygon-amoy.g.alchemy.com/v2/abcdef"),
            "https://polygon-amoy.g.alchemy.com/…");
  EXPECT_EQ(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
  EXPECT_EQ(redact_url("http://127.0.0.1:8545/"), "http://127.0.0.1:8545");
  EXPECT_EQ(redact_url("https://u:p@h.example/"), "https://h.example/…");
  EXPECT_EQ(redact_url("https://h.example?key=1"), "https://h.example/…");
  EXPECT_EQ(redact_url("nonsense"), "(not a URL)");
}

TEST(JsonRpc, BadUrlsAndParamsAreConfigErrorsWithoutSecrets) {
  try {
    Client bad("ftp://user:topsecret@host/x");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Client("http:///path"), ConfigError);
  RpcServer srv(echo_node);
  Client client(srv.url());
  EXPECT_THROW((void)client.call("m", "\"scalar\""), ConfigError);
  EXPECT_THROW((void)client.call("m", "[1,"), ConfigError);
  EXPECT_THROW((void)client.batch({{"m", "[]"}, {"n", "3"}}), ConfigError);
  EXPECT_EQ(srv.connections(), 0);  // nothing was sent
}

TEST(JsonRpc, AResultLargerThanThePlainHttpCapArrives) {
  std::string big = "[";
  for (int i = 0; i < 200000; ++i) {
    if (i) big += ',';
    big +=
        R"({"logIndex":"0x)" + std::to_string(i) + R"(","data":"0x)" + std::string(40, 'a') + "\"}";
  }
  big += ']';
  ASSERT_GT(big.size(), 8u << 20);
  RpcServer srv([&](const Request& req) {
    return Reply{200, R"({"jsonrpc":"2.0","id":)" + std::to_string(request_id(req)) +
                          R"(,"result":)" + big + "}"};
  });
  Client client(srv.url());
  EXPECT_EQ(client.call("eth_getLogs", "[{}]"), big);
}
