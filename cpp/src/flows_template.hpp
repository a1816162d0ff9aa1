// Private: `{{name}}` templates compiled once, rendered per request against a VU's variables.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "blocktrust/flows.hpp"

namespace blocktrust::flows {

/// What a template is rendered against: variables plus the built-ins' inputs.
struct RenderContext {
  const std::map<std::string, nlohmann::json, std::less<>>* vars = nullptr;
  std::int64_t vu = 0;
  std::int64_t iteration = 0;
  std::mt19937_64* rng = nullptr;
};

/// A parsed template: literal text and references to variables or built-ins.
class Template {
 public:
  Template() = default;
  /// Parses `text`; FlowSpecError (naming `where`) on an unterminated or empty `{{ }}`.
  static Template parse(std::string_view text, std::string_view where);
  /// Renders to text; variables that are not strings are written as JSON.
  [[nodiscard]] std::string render(const RenderContext& ctx) const;
  /// Renders to a JSON value: a template that is exactly one variable keeps that value's type.
  [[nodiscard]] nlohmann::json render_json(const RenderContext& ctx) const;
  /// True when the template has no references.
  [[nodiscard]] bool is_literal() const noexcept;
  /// The variable names referenced (built-ins excluded).
  [[nodiscard]] std::vector<std::string> variables() const;

 private:
  enum class Kind {
    kLiteral,
    kVar,
    kUuid,
    kVu,
    kIteration,
    kEmail,
    kTimestamp,
    kTimestampMs,
    kIsoTime,
    kRandomInt,
    kEnv
  };
  struct Part {
    Kind kind;
    std::string text;  // literal text, variable name or environment value
  };
  void render_part(const Part& p, const RenderContext& ctx, std::string& out) const;
  std::vector<Part> parts_;
};

/// Renders every string inside `value` that contains `{{` (keys are left as written).
nlohmann::json render_json_tree(const nlohmann::json& value, const RenderContext& ctx);

/// A random RFC 4122 version-4 UUID.
std::string make_uuid(std::mt19937_64& rng);

}  // namespace blocktrust::flows
