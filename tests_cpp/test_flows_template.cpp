// Templates (variables, built-ins, env, typed JSON substitution) and RFC 6901 JSON pointers as
// the flow runner uses them (captures and asserts through check_response).
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

#include "flows_model.hpp"
// GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s <regex> at -O2 with sanitizers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "flows_template.hpp"

using blocktrust::flows::FlowSpecError;
using blocktrust::flows::RenderContext;
using blocktrust::flows::Template;
using json = nlohmann::json;

namespace {

struct Ctx {
  std::map<std::string, json, std::less<>> vars;
  std::mt19937_64 rng{1};
  RenderContext ctx() { return {&vars, 7, 3, &rng}; }
};

}  // namespace

TEST(Template, LiteralsAndVariables) {
  Ctx c;
  c.vars["user"] = "alice";
  c.vars["n"] = 42;
  EXPECT_EQ(Template::parse("plain", "t").render(c.ctx()), "plain");
  EXPECT_EQ(Template::parse("/u/{{user}}/{{ n }}?x=1", "t").render(c.ctx()), "/u/alice/42?x=1");
  EXPECT_EQ(Template::parse("{{missing}}", "t").render(c.ctx()), "");
  EXPECT_TRUE(Template::parse("abc", "t").is_literal());
  auto vars = Template::parse("{{a}}{{uuid}}{{b}}", "t").variables();
  EXPECT_EQ(vars, (std::vector<std::string>{"a", "b"}));
}

TEST(Template, BuiltIns) {
  Ctx c;
  EXPECT_EQ(Template::parse("{{vu}}-{{iteration}}", "t").render(c.ctx()), "7-3");
  auto uuid = Template::parse("{{uuid}}", "t").render(c.ctx());
  EXPECT_TRUE(std::regex_match(
      uuid, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << uuid;
  EXPECT_NE(uuid, Template::parse("{{uuid}}", "t").render(c.ctx()));
  auto email = Template::parse("{{email}}", "t").render(c.ctx());
  EXPECT_TRUE(std::regex_match(email, std::regex("vu7-it3-[0-9a-f]{8}@example\\.test"))) << email;
  auto ts = std::stoll(Template::parse("{{timestamp}}", "t").render(c.ctx()));
  EXPECT_GT(ts, 1'600'000'000);
  auto iso = Template::parse("{{iso_time}}", "t").render(c.ctx());
  EXPECT_TRUE(std::regex_match(iso, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
}

TEST(Template, EnvironmentIsReadAtParseTime) {
  ::setenv("BT_TEMPLATE_TEST", "from-env", 1);
  Ctx c;
  EXPECT_EQ(Template::parse("x={{env.BT_TEMPLATE_TEST}}", "t").render(c.ctx()), "x=from-env");
  ::unsetenv("BT_TEMPLATE_TEST_MISSING");
  EXPECT_THROW((void)Template::parse("{{env.BT_TEMPLATE_TEST_MISSING}}", "t"), FlowSpecError);
}

TEST(Template, ErrorsNameThePlace) {
  try {
    (void)Template::parse("/a/{{oops", "steps[1].request.path");
    FAIL() << "no throw";
  } catch (const FlowSpecError& e) {
    EXPECT_STREQ(e.what(), "steps[1].request.path: unterminated {{ in template");
  }
  EXPECT_THROW((void)Template::parse("{{}}", "t"), FlowSpecError);
  EXPECT_THROW((void)Template::parse("{{a b}}", "t"), FlowSpecError);
}

TEST(Template, JsonTreeKeepsTypesOfWholeVariables) {
  Ctx c;
  c.vars["n"] = 5;
  c.vars["obj"] = json{{"k", true}};
  c.vars["s"] = "text";
  json body = {{"n", "{{n}}"}, {"o", "{{obj}}"}, {"mixed", "n={{n}}"}, {"arr", {"{{s}}", 1}}};
  json out = blocktrust::flows::render_json_tree(body, c.ctx());
  EXPECT_EQ(out["n"], 5);
  EXPECT_EQ(out["o"], (json{{"k", true}}));
  EXPECT_EQ(out["mixed"], "n=5");
  EXPECT_EQ(out["arr"], (json{"text", 1}));
}

namespace {

blocktrust::flows::Step step_with(const json& captures, const json& asserts) {
  json flow = {{"steps",
                {{{"name", "s"},
                  {"method", "GET"},
                  {"url", "/x"},
                  {"captures", captures},
                  {"asserts", asserts}}}}};
  return blocktrust::flows::compile_flow(flow.dump()).steps.at(0);
}

blocktrust::http::HttpResponse response(const std::string& body, int status = 200) {
  blocktrust::http::HttpResponse r;
  r.status = status;
  r.body = body;
  r.headers = {{"Content-Type", "application/json"}, {"Set-Cookie", "sid=secret123"}};
  return r;
}

}  // namespace

TEST(JsonPointer, CapturesFollowRfc6901) {
  // RFC 6901 section 5 examples, including escapes ~0 (~) and ~1 (/).
  const std::string doc =
      R"({"foo":["bar","baz"],"":0,"a/b":1,"c%d":2,"e^f":3,"g|h":4,"i\\j":5,"k\"l":6," ":7,"m~n":8})";
  json caps = json::array();
  const std::vector<std::pair<std::string, json>> cases = {{"/foo", json{"bar", "baz"}},
                                                           {"/foo/0", "bar"},
                                                           {"/", 0},
                                                           {"/a~1b", 1},
                                                           {"/c%d", 2},
                                                           {"/e^f", 3},
                                                           {"/g|h", 4},
                                                           {"/i\\j", 5},
                                                           {"/k\"l", 6},
                                                           {"/ ", 7},
                                                           {"/m~0n", 8}};
  for (std::size_t i = 0; i < cases.size(); ++i) {
    caps.push_back(
        {{"var", "v" + std::to_string(i)}, {"from", "json"}, {"pointer", cases[i].first}});
  }
  auto st = step_with(caps, json::array());
  std::map<std::string, json, std::less<>> vars;
  Ctx c;
  auto v = blocktrust::flows::check_response(st, response(doc), 1000, vars, c.ctx());
  ASSERT_TRUE(v.ok) << v.reason;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(vars["v" + std::to_string(i)], cases[i].second) << cases[i].first;
  }
}

TEST(JsonPointer, BadPointersAreRejectedAtCompileTime) {
  for (const char* bad : {"foo", "/a~2", "/a~"}) {
    json caps = {{{"var", "t"}, {"from", "json"}, {"pointer", bad}}};
    try {
      (void)step_with(caps, json::array());
      ADD_FAILURE() << bad;
    } catch (const FlowSpecError& e) {
      EXPECT_STREQ(e.what(), "steps[0].captures[0].pointer: not a JSON pointer");
    }
  }
}

TEST(JsonPointer, MissingCaptureAndAssertOperators) {
  Ctx c;
  std::map<std::string, json, std::less<>> vars;
  auto st = step_with({{{"var", "t"}, {"from", "json"}, {"pointer", "/nope"}}}, json::array());
  auto v = blocktrust::flows::check_response(st, response(R"({"a":1})"), 1, vars, c.ctx());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "capture t: /nope not in the response");

  json asserts = {
      {{"label", "n>3"}, {"kind", "json"}, {"pointer", "/n"}, {"op", "gt"}, {"value", 3}},
      {{"label", "re"}, {"kind", "json"}, {"pointer", "/s"}, {"op", "matches"}, {"value", "^a.c$"}},
      {{"label", "ex"}, {"kind", "json"}, {"pointer", "/x"}, {"op", "exists"}, {"value", false}},
      {{"label", "st"}, {"kind", "status"}, {"allowed", {{200, 299}}}},
      {{"label", "ct"},
       {"kind", "header"},
       {"name", "content-type"},
       {"op", "contains"},
       {"value", "json"}}};
  auto st2 = step_with(json::array(), asserts);
  EXPECT_TRUE(
      blocktrust::flows::check_response(st2, response(R"({"n":4,"s":"abc"})"), 1, vars, c.ctx())
          .ok);
  auto bad =
      blocktrust::flows::check_response(st2, response(R"({"n":3,"s":"abc"})"), 1, vars, c.ctx());
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.failed_assert, 0);
  EXPECT_EQ(bad.reason, "assert n>3 failed: got 3");
  auto st3 = blocktrust::flows::check_response(st2, response(R"({"n":4,"s":"abc"})", 404), 1, vars,
                                               c.ctx());
  EXPECT_EQ(st3.failed_assert, 3);
}

TEST(Redaction, SecretsNeverReachTheExcerpt) {
  auto r = response(R"({"access_token":"tok-xyz","user":{"password":"pw1"},"ok":1})");
  r.headers.emplace_back("Authorization", "Bearer abc");
  auto ex = blocktrust::flows::redacted_excerpt(r);
  EXPECT_EQ(ex.find("secret123"), std::string::npos);
  EXPECT_EQ(ex.find("tok-xyz"), std::string::npos);
  EXPECT_EQ(ex.find("pw1"), std::string::npos);
  EXPECT_EQ(ex.find("Bearer abc"), std::string::npos);
  EXPECT_NE(ex.find("\"ok\":1"), std::string::npos);
}
