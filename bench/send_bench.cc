// send_bench: N concurrent producers, each sending one message at a time and
// waiting for its ack (mq-send --mode sync semantics) straight over the wire
// protocol; prints throughput and ack latency percentiles as one JSON line.
//   send_bench --broker HOST:PORT [--producers N] [--seconds S] [--size B] [--topic T]
//   send_bench --rtt N: the machine's loopback TCP round trip (1-byte ping-pong, N times, no
//   broker) as the same JSON line, for make bench's limits.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "net/channel.h"
#include "protocol/frame.h"
#include "protocol/message_id.h"
#include "protocol/messages.h"
#include "storage/record.h"
#include "util/bytes.h"

using namespace mq;
using Clock = std::chrono::steady_clock;

namespace {

void print_latencies(int producers, std::vector<double>& all, double elapsed) {
  std::sort(all.begin(), all.end());
  auto pct = [&](double q) { return all[std::min(all.size() - 1, static_cast<size_t>(q * static_cast<double>(all.size())))]; };
  std::printf("{\"producers\": %d, \"messages\": %zu, \"msgs_per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f}\n",
              producers, all.size(), static_cast<double>(all.size()) / elapsed, pct(0.5), pct(0.99));
}

// 1-byte ping-pong over loopback TCP (TCP_NODELAY) between two threads.
int rtt(int n) {
  int srv = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (srv < 0 || ::bind(srv, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(srv, 1) != 0 ||
      ::getsockname(srv, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::perror("send_bench: rtt listen");
    return 1;
  }
  std::thread echo([srv] {
    int c = ::accept(srv, nullptr, nullptr);
    int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b;
    while (::recv(c, &b, 1, 0) == 1 && ::send(c, &b, 1, 0) == 1) {
    }
    ::close(c);
  });
  int c = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("send_bench: rtt connect");
    return 1;
  }
  std::vector<double> all;
  all.reserve(static_cast<size_t>(n));
  char b = 'p';
  auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    if (::send(c, &b, 1, 0) != 1 || ::recv(c, &b, 1, 0) != 1) {
      std::perror("send_bench: rtt");
      return 1;
    }
    all.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(c);
  echo.join();
  ::close(srv);
  print_latencies(1, all, elapsed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string broker = "127.0.0.1:9876", topic = "bench-sync";
  int producers = 1;
  double seconds = 3;
  size_t size = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--broker") broker = argv[i + 1];
    else if (a == "--producers") producers = std::atoi(argv[i + 1]);
    else if (a == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (a == "--size") size = static_cast<size_t>(std::atol(argv[i + 1]));
    else if (a == "--topic") topic = argv[i + 1];
    else if (a == "--rtt") return rtt(std::max(1, std::atoi(argv[i + 1])));
    else {
      std::fprintf(stderr, "send_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  net::IoThread io1, io2;
  std::vector<std::shared_ptr<net::Channel>> chans;
  for (int p = 0; p < producers; ++p) chans.push_back(net::Channel::create(p % 2 ? io1.io() : io2.io(), broker));
  std::vector<std::vector<double>> lat(static_cast<size_t>(producers));
  std::atomic<bool> failed{false};
  auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      storage::Message m;
      m.topic = topic;
      m.queue = static_cast<uint32_t>(p % 4);
      m.body.assign(size, 'x');
      while (Clock::now() < deadline && !failed) {
        m.id = protocol::new_message_id();
        std::string payload;
        ByteWriter(payload).u32(1);
        storage::encode_record(m, payload);
        auto t0 = Clock::now();
        auto r = chans[static_cast<size_t>(p)]->call(protocol::Type::send, std::move(payload), Millis(5000));
        if (!r || r->header.status != protocol::Code::ok) {
          std::fprintf(stderr, "send_bench: send failed: %s\n",
                       r ? std::string(protocol::code_name(r->header.status)).c_str() : r.status().to_string().c_str());
          failed = true;
          break;
        }
        lat[static_cast<size_t>(p)].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  if (failed || all.empty()) return 1;
  print_latencies(producers, all, elapsed);
  return 0;
}
