// The runner: one io_context per worker thread, one coroutine per virtual user (closed model) or
// per scheduled iteration (open model). Stats are per worker and merged once at the end.
#include "blocktrust/flows.hpp"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "blocktrust/histogram.hpp"
#include "cookie_jar.hpp"
#include "flows_tally.hpp"
#include "http_conn.hpp"

namespace blocktrust::flows {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using http::asio::awaitable;
namespace asio = http::asio;
namespace bhttp = http::bhttp;

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// A retried step's limits for one execution (from Retry, rendered).
struct RetryPlan {
  std::int64_t attempts = std::numeric_limits<std::int64_t>::max();
  std::optional<Clock::duration> within;
  Clock::duration interval{};
};

struct VuState {
  std::int64_t id = 0;
  std::vector<std::unique_ptr<http::Conn>> conns;
  std::map<std::string, json, std::less<>> vars;
  http::CookieJar cookies;
};

}  // namespace

struct FlowRun::Impl {
  // NOLINTNEXTLINE(bugprone-random-generator-seed): start() seeds rng from std::random_device
  struct Worker : Tally {
    int index = 0;
    std::mt19937_64 rng;                    // seeded from std::random_device when the run starts
    std::deque<Clock::time_point> backlog;  // open model: scheduled starts waiting for a slot
    std::vector<std::unique_ptr<VuState>> free_slots;
    std::int64_t slots_made = 0, slot_cap = 1;
    std::thread thread;
    // Declared last so it is destroyed first: pending coroutine frames die before the stats.
    std::unique_ptr<asio::io_context> ioc;
    // Idle open-model slots hold keep-alive sockets, which must close while `ioc` still exists.
    ~Worker() { free_slots.clear(); }
  };

  Flow flow;
  RunOptions opts;
  std::string base;
  std::optional<asio::ssl::context> tls;
  std::vector<std::unique_ptr<Worker>> workers;
  Clock::time_point started;
  std::optional<Clock::time_point> deadline;
  std::atomic<bool> cancelled{false};
  std::atomic<std::int64_t> n_iter{0}, n_iter_failed{0}, n_req{0}, n_req_failed{0}, n_active{0};
  std::atomic<int> running{0};
  std::mutex mu;
  std::condition_variable done_cv;
  bool started_flag = false;
  bool joined = false;

  bool stopping(std::int64_t it_index) const {
    if (cancelled.load(std::memory_order_relaxed)) return true;
    if (opts.iterations > 0 && it_index >= opts.iterations) return true;
    return deadline && Clock::now() >= *deadline;
  }

  http::Conn& conn_for(Worker& w, VuState& vu, const http::Origin& o) {
    for (auto& c : vu.conns) {
      if (c->origin() == o) return *c;
    }
    vu.conns.push_back(
        std::make_unique<http::Conn>(w.ioc->get_executor(), tls ? &*tls : nullptr, o));
    return *vu.conns.back();
  }

  void record_failure(Worker& w, const Step& st, const VuState& vu, std::int64_t iteration,
                      const http::HttpResponse& res, std::string reason) {
    if (static_cast<int>(w.failures.size()) >= opts.max_failures) return;
    w.failures.push_back({(Clock::now() - started).count(), st.name, vu.id, iteration, res.status,
                          std::move(reason), redacted_excerpt(res)});
  }

  // `method` is the step's, or GET after a 303; `same_origin` is false once a redirect left
  // the step's origin: its Authorization, Cookie and Proxy-Authorization then stay behind.
  void build_request(const Step& st, const std::string& method, bool same_origin,
                     const RenderContext& ctx, const VuState& vu, const http::ParsedUrl& u,
                     bhttp::request<bhttp::string_body>& req, std::mt19937_64& rng) {
    req.method_string(method);
    req.target(u.target);
    req.version(11);
    req.set(bhttp::field::host, u.origin.host);
    req.set(bhttp::field::user_agent, "blocktrust-native-flows");
    bool has_cookie = false, has_ct = false;
    for (const auto& [k, t] : st.headers) {
      if (!same_origin && http::credential_header(k)) continue;
      req.insert(k, t.render(ctx));
      has_cookie = has_cookie || iequals(k, "cookie");
      has_ct = has_ct || iequals(k, "content-type");
    }
    if (!has_cookie) {
      auto c = vu.cookies.header_for(u, std::chrono::system_clock::now());
      if (!c.empty()) req.set(bhttp::field::cookie, c);
    }
    if (method != st.method) {  // a 303 (or a POST's 301/302) turned into a GET: no body
      req.prepare_payload();
      return;
    }
    std::string ct = st.content_type;
    switch (st.body) {
      case Step::Body::kNone:
        break;
      case Step::Body::kJson:
        req.body() = render_json_tree(st.json_body, ctx).dump();
        if (ct.empty()) ct = "application/json";
        break;
      case Step::Body::kForm: {
        std::string b;
        auto enc = [](const std::string& s) {
          static const char* hex = "0123456789ABCDEF";
          std::string o;
          for (unsigned char c : s) {
            if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
              o += char(c);
            else if (c == ' ')
              o += '+';
            else {
              o += '%';
              o += hex[c >> 4];
              o += hex[c & 15];
            }
          }
          return o;
        };
        for (const auto& [k, t] : st.form) {
          if (!b.empty()) b += '&';
          b += enc(k) + "=" + enc(t.render(ctx));
        }
        req.body() = std::move(b);
        if (ct.empty()) ct = "application/x-www-form-urlencoded";
        break;
      }
      case Step::Body::kRaw:
        req.body() = st.raw.render(ctx);
        break;
      case Step::Body::kMultipart: {
        std::string boundary = "----blocktrust" + make_uuid(rng);
        std::string b;
        for (const auto& p : st.parts) {
          b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + p.name + "\"";
          if (p.is_file) {
            b += "; filename=\"" + p.filename + "\"\r\nContent-Type: " + p.content_type +
                 "\r\n\r\n" + (p.value_is_content ? p.value.render(ctx) : p.data) + "\r\n";
          } else {
            b += "\r\n\r\n" + p.value.render(ctx) + "\r\n";
          }
        }
        b += "--" + boundary + "--\r\n";
        req.body() = std::move(b);
        ct = "multipart/form-data; boundary=" + boundary;
        break;
      }
    }
    if (!has_ct && !ct.empty()) req.set(bhttp::field::content_type, ct);
    if (st.hmac) {  // over the exact bytes sent, so the receiver's check sees what we signed
      const auto& h = *st.hmac;
      req.set(h.header,
              hmac_signature(h.algorithm, h.secret.render(ctx), req.body(), h.base64, h.prefix));
    }
    if (st.body != Step::Body::kNone || st.method == "POST" || st.method == "PUT" ||
        st.method == "PATCH") {
      req.prepare_payload();
    }
  }

  static void take_cookies(VuState& vu, const http::ParsedUrl& from,
                           const http::HttpResponse& res) {
    const auto now = std::chrono::system_clock::now();
    for (const auto& [k, v] : res.headers) {
      if (iequals(k, "set-cookie")) vu.cookies.store(from, v, now);
    }
  }

  // One exchange of a step (following redirects when the step asks); the outcome lands in `res`.
  awaitable<void> exchange(Worker& w, VuState& vu, const Step& st, const RenderContext& ctx,
                           const http::HttpOptions& hopts, http::HttpResponse& res) {
    std::string url = st.url.render(ctx);
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) url = base + url;
    std::string method = st.method;
    http::Origin first;
    int retries = 0;
    for (int hop = 0;; ++hop) {
      http::ParsedUrl u;
      std::string why;
      if (!http::parse_url(url, u, why)) {
        res = {};
        res.error = "url ";
        res.error += url;
        res.error += ": ";
        res.error += why;
        co_return;
      }
      if (u.origin.tls && !tls) {
        res = {};
        res.error = "https URL but TLS is not set up";
        co_return;
      }
      if (hop == 0) first = u.origin;
      bhttp::request<bhttp::string_body> req;
      build_request(st, method, http::credentials_may_follow(first, u.origin), ctx, vu, u, req,
                    w.rng);
      res = {};
      co_await conn_for(w, vu, u.origin).exchange(req, hopts, res);
      retries += res.retries;
      res.retries = retries;
      if (res.ok()) take_cookies(vu, u, res);
      const auto* loc = res.header("location");
      bool redirect = res.ok() && loc && res.status >= 301 && res.status <= 308 &&
                      res.status != 304 && res.status != 305 && res.status != 306;
      if (!redirect || !st.follow_redirects) co_return;
      if (hop >= opts.http.max_redirects) {
        res.error = "too many redirects";
        co_return;
      }
      if (!http::resolve_location(u, *loc, url, why)) {
        res.error = why;
        co_return;
      }
      if ((res.status == 303 && method != "HEAD") ||
          ((res.status == 301 || res.status == 302) && method == "POST")) {
        method = "GET";
      }
    }
  }

  // Completion of a top-level coroutine: an exception that escaped every step (it should not)
  // is counted as a failed iteration with its reason, never swallowed.
  auto on_exit(Worker& w) {
    return [this, &w](const std::exception_ptr& e) {
      if (!e) return;
      ++w.iterations;
      ++w.failed_iterations;
      n_iter.fetch_add(1, std::memory_order_relaxed);
      n_iter_failed.fetch_add(1, std::memory_order_relaxed);
      if (static_cast<int>(w.failures.size()) < opts.max_failures) {
        w.failures.push_back({(Clock::now() - started).count(), "(runner)", -1, -1, 0,
                              "internal error: " + http::what(e), ""});
      }
    };
  }

  // A step's retry limits, rendered when the step starts; false when one is not a number.
  static bool plan_retry(const Retry& r, const RenderContext& ctx, RetryPlan& plan) {
    double x = 0;
    if (r.attempts) {
      if (!render_seconds(*r.attempts, ctx, x) || x < 1) return false;
      plan.attempts =
          x >= 1e12 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(x);
    }
    if (r.within) {
      if (!render_seconds(*r.within, ctx, x) || x > 1e9) return false;
      plan.within = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(x));
    }
    if (!render_seconds(r.interval, ctx, x) || x > 1e6) return false;
    plan.interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(x));
    return true;
  }

  // What the report hands back: VU 0's variables (those the flow reports) after an iteration.
  void remember_captures(Worker& w, const VuState& vu) const {
    json out = json::object();
    if (flow.reported) {
      for (const auto& name : *flow.reported) {
        if (auto it = vu.vars.find(name); it != vu.vars.end()) out[name] = it->second;
      }
    } else {
      for (const auto& [k, v] : vu.vars) out[k] = v;
    }
    w.captures = std::move(out);
  }

  // How a step ended: passed, failed (recorded with its reason), or cut short by cancel().
  enum class StepEnd { kPassed, kFailed, kCancelled };

  // The outcome of one attempt of a step: the response and the verdict on it.
  struct Attempt {
    http::HttpResponse res;
    bool ok = false;
    std::string reason;
    int failed_assert = -1;
  };

  // One attempt of a step: send it, then check the answer. Whatever throws while building,
  // sending or checking is this attempt's failure: never a coroutine that dies silently and
  // leaves a green report behind.
  awaitable<Attempt> attempt(Worker& w, VuState& vu, const Step& st, const RenderContext& ctx,
                             const http::HttpOptions& hopts) {
    Attempt a;
    const auto t0 = Clock::now();
    try {
      co_await exchange(w, vu, st, ctx, hopts, a.res);
    } catch (const std::exception& e) {
      a.res = {};
      a.res.error = std::string("internal error: ") + e.what();
    }
    if (!a.res.ok()) {
      a.reason = a.res.error;
      co_return a;
    }
    try {
      Verdict v = check_response(st, a.res, (Clock::now() - t0).count(), vu.vars, ctx);
      a.ok = v.ok;
      a.reason = std::move(v.reason);
      a.failed_assert = v.failed_assert;
    } catch (const std::exception& e) {
      a.ok = false;
      a.reason = std::string("internal error while checking the response: ") + e.what();
    }
    co_return a;
  }

  // A step's outcome in its stats (latency, statuses, transport errors, failed asserts).
  static void count_step(StepStats& ss, const Attempt& last, std::int64_t attempts,
                         std::int64_t retries, std::int64_t latency_ns) {
    ss.latency.record_ns(latency_ns);
    ++ss.requests;
    ss.attempts += attempts + retries;
    ss.retries += retries;
    if (last.ok) {
      ++ss.statuses[last.res.status];
      return;
    }
    ++ss.failures;
    if (!last.res.ok() || attempts == 0) {
      if (ss.errors.size() < 64 || ss.errors.count(last.reason)) ++ss.errors[last.reason];
    } else {
      ++ss.statuses[last.res.status];
      if (last.failed_assert >= 0)
        ++ss.assert_failures[static_cast<std::size_t>(last.failed_assert)];
    }
  }

  // Step `si` of an iteration: its request, retried as the step says, and its checks; the
  // outcome goes into the worker's stats (a failure with its reason).
  awaitable<StepEnd> run_step(Worker& w, VuState& vu, std::int64_t it, std::size_t si,
                              const RenderContext& ctx) {
    const Step& st = flow.steps[si];
    std::optional<http::HttpOptions> own;  // copied only when the step overrides the timeout
    if (st.timeout_ms > 0) {
      own = opts.http;
      own->request_timeout_ms = st.timeout_ms;
    }
    const http::HttpOptions& hopts = own ? *own : opts.http;
    Attempt last;
    std::int64_t attempts = 0, retries = 0;
    RetryPlan plan;
    const auto t0 = Clock::now();
    if (st.retry && !plan_retry(*st.retry, ctx, plan)) {
      last.reason = "retry: attempts, within and interval must be numbers >= 0";
    } else {
      for (;;) {
        ++attempts;
        last = co_await attempt(w, vu, st, ctx, hopts);
        retries += last.res.retries;
        if (last.ok || !st.retry || attempts >= plan.attempts) break;
        const auto next = Clock::now() + plan.interval;
        if ((plan.within && next - t0 > *plan.within) || (deadline && next >= *deadline)) break;
        asio::steady_timer timer(w.ioc->get_executor(), next);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (cancelled.load(std::memory_order_relaxed)) co_return StepEnd::kCancelled;
      }
    }
    const auto latency = (Clock::now() - t0).count();
    count_step(w.steps[si], last, attempts, retries, latency);
    n_req.fetch_add(1, std::memory_order_relaxed);
    if (last.ok) co_return StepEnd::kPassed;
    if (attempts > 1) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " (after %lld attempts in %.1f s)",
                    static_cast<long long>(attempts), static_cast<double>(latency) / 1e9);
      last.reason += buf;
    }
    n_req_failed.fetch_add(1, std::memory_order_relaxed);
    record_failure(w, st, vu, it, last.res, std::move(last.reason));
    co_return StepEnd::kFailed;
  }

  // Counts an iteration in flight for progress(): up when it starts, down however it ends
  // (finished, cancelled, or an exception that escaped it).
  class InFlight {
   public:
    explicit InFlight(std::atomic<std::int64_t>& n) : n_(n) {
      n_.fetch_add(1, std::memory_order_relaxed);
    }
    ~InFlight() { n_.fetch_sub(1, std::memory_order_relaxed); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    std::atomic<std::int64_t>& n_;
  };

  // One iteration: every step in order, stopping at the first failure. Latency counts from
  // `scheduled` (the open model's planned start), so queueing delay is never hidden.
  awaitable<void> iteration(Worker& w, VuState& vu, std::int64_t it, Clock::time_point scheduled) {
    const InFlight in_flight(n_active);
    vu.vars.clear();
    vu.cookies.clear();
    RenderContext ctx{&vu.vars, vu.id, it, &w.rng};
    for (const auto& [k, v] : flow.values) vu.vars[k] = v;
    for (const auto& [k, t] : flow.vars) vu.vars[k] = t.render_json(ctx);
    bool iteration_ok = true;
    for (std::size_t si = 0; si < flow.steps.size(); ++si) {
      if (cancelled.load(std::memory_order_relaxed)) co_return;  // a cancelled one is not counted
      const StepEnd end = co_await run_step(w, vu, it, si, ctx);
      if (end == StepEnd::kCancelled) co_return;
      if (end == StepEnd::kFailed) {
        iteration_ok = false;
        break;
      }
    }
    w.flow.record_ns((Clock::now() - scheduled).count());
    if (vu.id == 0) remember_captures(w, vu);
    ++w.iterations;
    n_iter.fetch_add(1, std::memory_order_relaxed);
    if (!iteration_ok) {
      ++w.failed_iterations;
      n_iter_failed.fetch_add(1, std::memory_order_relaxed);
    }
  }

  awaitable<void> closed_vu(Worker& w, std::int64_t vu_id, Clock::duration delay) {
    VuState vu;
    vu.id = vu_id;
    if (delay.count() > 0) {
      asio::steady_timer t(w.ioc->get_executor(), delay);
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    for (std::int64_t it = 0; !stopping(it); ++it) {
      co_await iteration(w, vu, it, Clock::now());
    }
  }

  // Open model: runs one scheduled iteration, then keeps draining the backlog with the same slot.
  awaitable<void> open_slot(Worker& w, std::unique_ptr<VuState> vu, std::int64_t it,
                            Clock::time_point scheduled) {
    for (;;) {
      co_await iteration(w, *vu, it, scheduled);
      if (w.backlog.empty() || cancelled.load(std::memory_order_relaxed)) break;
      scheduled = w.backlog.front();
      w.backlog.pop_front();
      it = -1;  // backlog entries keep their schedule; the index is informative only
    }
    w.free_slots.push_back(std::move(vu));
  }

  awaitable<void> arrivals(Worker& w, int nworkers) {
    const double period_s = 1.0 / opts.rate;
    asio::steady_timer timer(w.ioc->get_executor());
    for (std::int64_t k = 0;; ++k) {
      const std::int64_t global = w.index + k * nworkers;
      if (opts.iterations > 0 && global >= opts.iterations) break;
      const auto scheduled = started + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(period_s * global));
      if (deadline && scheduled >= *deadline) break;
      if (cancelled.load(std::memory_order_relaxed)) break;
      if (scheduled > Clock::now()) {
        timer.expires_at(scheduled);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (cancelled.load(std::memory_order_relaxed)) break;
      }
      std::unique_ptr<VuState> slot;
      if (!w.free_slots.empty()) {
        slot = std::move(w.free_slots.back());
        w.free_slots.pop_back();
      } else if (w.slots_made < w.slot_cap) {
        slot = std::make_unique<VuState>();
        slot->id = w.index + w.slots_made * nworkers;
        ++w.slots_made;
      }
      if (slot) {
        asio::co_spawn(*w.ioc, open_slot(w, std::move(slot), global, scheduled), on_exit(w));
      } else {
        w.backlog.push_back(scheduled);  // all slots busy: it waits, and its latency shows it
      }
    }
  }
};

FlowRun::FlowRun(const std::string& flow_json, RunOptions options)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.flow = compile_flow(flow_json);
  m.opts = std::move(options);
  if (m.opts.vus < 1) throw FlowSpecError("vus must be at least 1");
  if (m.opts.iterations < 0) throw FlowSpecError("iterations must be >= 0");
  if (!(m.opts.duration_s >= 0) || !(m.opts.ramp_up_s >= 0) || !(m.opts.rate >= 0)) {
    throw FlowSpecError("duration, ramp_up and rate must be >= 0");
  }
  if (m.opts.iterations == 0 && m.opts.duration_s == 0) {
    throw FlowSpecError("give iterations or duration (or both)");
  }
  if (m.opts.max_failures < 0) throw FlowSpecError("max_failures must be >= 0");
  m.base = m.opts.base_url;
  while (!m.base.empty() && m.base.back() == '/') m.base.pop_back();
  if (!m.base.empty()) {
    http::ParsedUrl u;
    std::string why;
    if (!http::parse_url(m.base + "/", u, why)) {
      throw http::HttpConfigError("base_url " + m.opts.base_url + ": " + why);
    }
  }
  // TLS context made once, and only when a request may need it: loading the CA store costs tens
  // of milliseconds, which short runs (one iteration of a deploy check) would pay every time.
  // Errors (a bad ca_file) surface here, before any request.
  bool need_tls = !m.opts.http.ca_file.empty() || http::lower(m.base.substr(0, 8)) == "https://";
  for (const auto& st : m.flow.steps) need_tls = need_tls || st.may_use_tls;
  if (need_tls) m.tls.emplace(http::make_tls_context(m.opts.http));
}

FlowRun::~FlowRun() {
  cancel();
  if (impl_->started_flag) (void)wait_for(std::chrono::hours(1));
}

void FlowRun::start() {
  auto& m = *impl_;
  if (m.started_flag) throw ConfigError("a FlowRun can be started only once");
  m.started_flag = true;
  int n = m.opts.threads > 0 ? m.opts.threads
                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const bool open = m.opts.rate > 0;
  if (!open) n = std::min(n, m.opts.vus);
  m.started = Clock::now();
  if (m.opts.duration_s > 0) {
    m.deadline = m.started + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(m.opts.duration_s));
  }
  std::random_device rd;
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Impl::Worker>();
    w->index = i;
    w->rng.seed((static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ static_cast<std::uint64_t>(i));
    w->steps.resize(m.flow.steps.size());
    for (std::size_t s = 0; s < m.flow.steps.size(); ++s) {
      w->steps[s].assert_failures.assign(m.flow.steps[s].asserts.size(), 0);
    }
    w->ioc = std::make_unique<asio::io_context>(1);
    w->slot_cap = std::max<std::int64_t>(1, (m.opts.vus + n - 1 - i) / n);
    m.workers.push_back(std::move(w));
  }
  if (open) {
    for (auto& w : m.workers) asio::co_spawn(*w->ioc, m.arrivals(*w, n), m.on_exit(*w));
  } else {
    for (int v = 0; v < m.opts.vus; ++v) {
      auto delay = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(m.opts.ramp_up_s * v / m.opts.vus));
      auto& w = *m.workers[static_cast<std::size_t>(v % n)];
      asio::co_spawn(*w.ioc, m.closed_vu(w, v, delay), m.on_exit(w));
    }
  }
  m.running = n;
  for (auto& w : m.workers) {
    w->thread = std::thread([&m, wp = w.get()] {
      wp->ioc->run();
      std::lock_guard lk(m.mu);
      if (--m.running == 0) m.done_cv.notify_all();
    });
  }
}

bool FlowRun::wait_for(std::chrono::milliseconds timeout) {
  auto& m = *impl_;
  if (!m.started_flag) return true;
  {
    std::unique_lock lk(m.mu);
    if (!m.done_cv.wait_for(lk, timeout, [&] { return m.running == 0; })) return false;
  }
  if (!m.joined) {
    for (auto& w : m.workers) w->thread.join();
    m.joined = true;
  }
  return true;
}

Progress FlowRun::progress() const noexcept {
  const auto& m = *impl_;
  Progress p;
  if (m.started_flag) p.elapsed_s = std::chrono::duration<double>(Clock::now() - m.started).count();
  p.iterations = m.n_iter.load();
  p.failed_iterations = m.n_iter_failed.load();
  p.requests = m.n_req.load();
  p.failed_requests = m.n_req_failed.load();
  p.active = m.n_active.load();
  return p;
}

void FlowRun::cancel() noexcept {
  auto& m = *impl_;
  m.cancelled = true;
  // Stopping the loops abandons requests in flight; only finished work is reported.
  for (auto& w : m.workers) w->ioc->stop();
}

std::string FlowRun::report_json() {
  auto& m = *impl_;
  while (!wait_for(std::chrono::milliseconds(200))) {
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - m.started).count();
  std::vector<const Tally*> tallies;
  tallies.reserve(m.workers.size());
  for (const auto& w : m.workers) tallies.push_back(w.get());
  return report(m.flow, m.opts, tallies, elapsed, m.cancelled.load())
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace blocktrust::flows
