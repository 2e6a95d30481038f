// send_bench: N concurrent producers, each sending one message at a time and
// waiting for its ack (mq-send --mode sync semantics) straight over the wire
// protocol, all on one epoll thread like redis-benchmark; prints throughput and
// ack latency percentiles as one JSON line.
//   send_bench --broker HOST:PORT [--producers N] [--seconds S] [--size B] [--topic T]
//              [--topics N: round the topics T-0 .. T-(N-1)]
//   send_bench --rtt N: the machine's loopback TCP round trip (1-byte ping-pong, N times, no
//   broker) as the same JSON line, for make bench's limits.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

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

// N producers on one thread, like redis-benchmark's -c N -P 1: each
// connection has one send in flight and sends the next when its answer
// arrives. One epoll loop, so the client costs the 2 shared cores as little
// as the peer's client does (a thread per producer spent more CPU than the
// broker, time the broker then lacked).
int producers_loop(const std::string& broker, const std::string& topic, int producers, double seconds,
                   size_t size, int topics) {
  auto colon = broker.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (colon == std::string::npos || ::inet_pton(AF_INET, broker.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "send_bench: --broker %s: expected IPv4:PORT\n", broker.c_str());
    return 2;
  }
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(broker.c_str() + colon + 1)));
  struct Conn {
    int fd = -1;
    uint32_t queue = 0;
    uint32_t next_id = 1;
    Clock::time_point sent;
    std::string out;  // unsent bytes of the current request
    protocol::FrameDecoder in;
    std::vector<double> lat;
  };
  std::vector<Conn> conns(static_cast<size_t>(producers));
  int ep = ::epoll_create1(0);
  storage::Message m;
  m.topic = topic;
  m.body.assign(size, 'x');
  auto fail = [&](const char* what) {
    std::fprintf(stderr, "send_bench: %s: %s\n", what, std::strerror(errno));
    return 1;
  };
  // Writes what is left of c.out; false on a broken connection.
  auto flush_out = [](Conn& c) {
    while (!c.out.empty()) {
      ssize_t k = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (k < 0 && errno == EAGAIN) return true;  // EPOLLOUT is armed: the rest follows
      if (k <= 0) return false;
      c.out.erase(0, static_cast<size_t>(k));
    }
    return true;
  };
  uint64_t sent = 0;
  auto send_next = [&](Conn& c) {
    m.queue = c.queue;
    // --topics N: the sends go round the topics TOPIC-0 .. TOPIC-(N-1)
    if (topics > 1) m.topic = topic + "-" + std::to_string(sent % static_cast<uint64_t>(topics));
    ++sent;
    m.id = protocol::new_message_id();
    std::string payload;
    ByteWriter(payload).u32(1);
    storage::encode_record(m, payload);
    c.out.clear();
    protocol::encode_frame(c.out, protocol::Type::send, 0, c.next_id++, protocol::Code::ok, payload);
    c.sent = Clock::now();
    return flush_out(c);
  };
  for (int p = 0; p < producers; ++p) {
    Conn& c = conns[static_cast<size_t>(p)];
    c.queue = static_cast<uint32_t>(p % 4);
    c.fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return fail("connect");
    ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u32 = static_cast<uint32_t>(p);
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) != 0) return fail("epoll_ctl");
  }
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  for (auto& c : conns)
    if (!send_next(c)) return fail("send");
  int in_flight = producers;
  std::vector<epoll_event> evs(static_cast<size_t>(producers));
  while (in_flight > 0) {
    int n = ::epoll_wait(ep, evs.data(), producers, 5000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "send_bench: no answer within 5s\n");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      Conn& c = conns[evs[static_cast<size_t>(i)].data.u32];
      if ((evs[static_cast<size_t>(i)].events & EPOLLOUT) && !flush_out(c)) return fail("send");
      if (!(evs[static_cast<size_t>(i)].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      for (;;) {
        char* at = c.in.prepare(4096);
        ssize_t k = ::recv(c.fd, at, 4096, 0);
        if (k < 0 && errno == EAGAIN) {
          c.in.commit(0);
          break;
        }
        if (k <= 0) {
          c.in.commit(0);
          std::fprintf(stderr, "send_bench: connection lost\n");
          return 1;
        }
        c.in.commit(static_cast<size_t>(k));
        // Less than asked for: the socket had no more (one request in flight,
        // like redis-benchmark's one read per readable event); the next
        // answer raises a new edge. Saves a recv that would say EAGAIN.
        bool drained = k < 4096;
        protocol::Frame f;
        while (c.in.next(f) == protocol::FrameDecoder::State::frame) {
          if (f.header.status != protocol::Code::ok) {
            std::fprintf(stderr, "send_bench: send failed: %s\n",
                         std::string(protocol::code_name(f.header.status)).c_str());
            return 1;
          }
          auto now = Clock::now();
          c.lat.push_back(std::chrono::duration<double, std::micro>(now - c.sent).count());
          if (now < deadline) {
            if (!send_next(c)) return fail("send");
          } else {
            --in_flight;
          }
        }
        if (drained) break;
      }
    }
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& c : conns) {
    all.insert(all.end(), c.lat.begin(), c.lat.end());
    ::close(c.fd);
  }
  ::close(ep);
  if (all.empty()) return 1;
  print_latencies(producers, all, elapsed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string broker = "127.0.0.1:9876", topic = "bench-sync";
  int producers = 1, topics = 1;
  double seconds = 3;
  size_t size = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--broker") broker = argv[i + 1];
    else if (a == "--producers") producers = std::atoi(argv[i + 1]);
    else if (a == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (a == "--size") size = static_cast<size_t>(std::atol(argv[i + 1]));
    else if (a == "--topic") topic = argv[i + 1];
    else if (a == "--topics") topics = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--rtt") return rtt(std::max(1, std::atoi(argv[i + 1])));
    else {
      std::fprintf(stderr, "send_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  return producers_loop(broker, topic, producers, seconds, size, topics);
}
