// The C++ rate-limit core alone: decisions per second from N threads over 1,000 keys.
// Built and run by bench/bench_ratelimit.py against the static core library of a CMake build.
#include <time.h>

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
  rl::RateLimiter lim(rl::parse_rules("100/second"),
                      rl::Options{rl::parse_algorithm(algo), 100000, nullptr});
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back("user:" + std::to_string(i));
  std::atomic<long> admitted{0};
  std::vector<double> cpu_rate(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      long ok = 0;
      // Each thread serves its own slice of the keys, as when clients spread over workers.
      const std::size_t lo = static_cast<std::size_t>(t) * keys.size() / threads;
      const std::size_t hi = static_cast<std::size_t>(t + 1) * keys.size() / threads;
      std::size_t k = lo;
      timespec c0{};
      timespec c1{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
      for (long i = 0; i < per_thread; ++i) {
        ok += lim.hit(keys[k]).allowed ? 1 : 0;
        k = (k + 1 == hi) ? lo : k + 1;
      }
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
      const double cpu =
          static_cast<double>(c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
      cpu_rate[static_cast<std::size_t>(t)] = static_cast<double>(per_thread) / cpu;
      admitted += ok;
    });
  }
  for (auto& th : pool) th.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Wall-clock rate, then the rate per CPU-second summed over threads (what the threads would do
  // on idle cores of their own: the host may be shared), then the admitted count.
  double on_cpu = 0;
  for (double r : cpu_rate) on_cpu += r;
  std::printf("%.0f %.0f %ld\n", threads * per_thread / secs, on_cpu, admitted.load());
  return 0;
}
