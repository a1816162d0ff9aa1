// The C++ rate-limit core alone: decisions per second from N threads over 1,000 keys.
// Built and run by bench/bench_ratelimit.py against the static core library of a CMake build.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "blocktrust/ratelimit.hpp"

namespace rl = blocktrust::ratelimit;

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const long per_thread = argc > 2 ? std::atol(argv[2]) : 5'000'000;
  const char* algo = argc > 3 ? argv[3] : "gcra";
  rl::RateLimiter lim(rl::parse_rules("100/second"), rl::Options{rl::parse_algorithm(algo)});
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back("user:" + std::to_string(i));
  std::atomic<long> admitted{0};
  std::vector<std::thread> pool;
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      long ok = 0;
      // Each thread serves its own slice of the keys, as when clients spread over workers.
      const std::size_t lo = static_cast<std::size_t>(t) * keys.size() / threads;
      const std::size_t hi = static_cast<std::size_t>(t + 1) * keys.size() / threads;
      std::size_t k = lo;
      for (long i = 0; i < per_thread; ++i) {
        ok += lim.hit(keys[k]).allowed ? 1 : 0;
        k = (k + 1 == hi) ? lo : k + 1;
      }
      admitted += ok;
    });
  }
  for (auto& th : pool) th.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%.0f %ld\n", threads * per_thread / secs, admitted.load());
  return 0;
}
