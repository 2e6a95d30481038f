// Server side of the wire protocol: an Asio acceptor and one Connection per
// socket. Each request frame goes to the handler with a Responder; the
// handler may answer at once or later, from any thread, in any order.
//
// Threading: each connection lives on its own strand of the io_context given
// to listen(); the handler runs on that strand and must not block. A Responder
// may be called from any thread (the answer is posted to the connection).
//
// Bad input (undecodable frames, wrong version, oversized frames, a response
// frame sent as a request) closes that one connection, logging the peer and
// the reason once; a handler does the same for a payload it cannot decode
// with Responder::refuse (the answer is written first). A connection past
// max_connections gets one BUSY frame (request id 0) and is closed. Memory is bounded per connection and in total: reading
// stops while the answers waiting to be written exceed max_pending_bytes or
// the requests being handled exceed max_in_flight; while the answers of all
// connections together exceed max_pending_total, it stops on every
// connection holding more than a small share (64 KiB), so clients that read
// their answers keep being served. Reading resumes once answers drain; a
// peer holding answers over its limit (or its share) whose writes make no
// progress for stuck_timeout is closed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/asio.h"
#include "protocol/frame.h"
#include "util/parse.h"
#include "util/status.h"

namespace boost::asio::ssl {
class context;
}

namespace mq::net {

struct ServerOptions {
  uint32_t max_frame = protocol::kDefaultMaxFrame;
  size_t max_connections = 10000;
  size_t max_pending_bytes = 16u << 20;  // per connection, answers not yet written
  size_t max_pending_total = 256u << 20;  // all connections together
  size_t max_in_flight = 4096;           // per connection, requests not yet answered
  Millis stuck_timeout{30000};           // over max_pending_bytes this long: closed
  std::shared_ptr<boost::asio::ssl::context> tls;  // set: every connection is TLS
  Millis handshake_timeout{10000};       // TLS handshake not done by then: closed
  // Set (a broker with --auth): a connection that no handler admitted (Responder::admit:
  // authenticated, or a request anonymous may make) this long after it was accepted is
  // closed, so connections that never log in cannot hold --max-connections.
  Millis admission_timeout{0};
  // Set (with admission_timeout, when anonymous may do nothing): until admitted, a
  // connection's frames are at most this long, so strangers cannot make the broker buffer
  // max_frame bytes of a partial frame on every connection slot.
  uint32_t unadmitted_max_frame = 0;
};

class Connection;

// How a handler answers one request. Copyable; the first reply() counts,
// later ones are ignored. Replying after the connection closed is harmless.
// A request that is never answered holds one in-flight slot until the
// connection closes. One-way requests must be "answered" too (the reply is
// not sent; it frees the slot).
class Responder {
 public:
  Responder() = default;
  Responder(std::weak_ptr<Connection> conn, protocol::Type type, uint32_t request_id, bool oneway);
  // Any thread.
  void reply(protocol::Code status, std::string payload) const;
  // The payload in two pieces sent back to back (head, then body), so a large
  // body (pull results) is never copied to prepend a small head.
  void reply(protocol::Code status, std::string head, std::string body) const;
  // An error answer: status plus the message as the payload (encode_error).
  void fail(protocol::Code status, std::string_view message) const;
  // Bad input (a payload that does not decode, an unknown request type): the
  // error answer, then the connection is closed once it is written, logging
  // the peer and the message. No further request of that connection is
  // handled. Call it on the connection's strand (from the handler).
  void refuse(protocol::Code status, std::string_view message) const;
  // The connection is admitted (see ServerOptions::admission_timeout). Any thread.
  void admit() const;
  // Answer bytes the connection may still take before it is at its --max-pending limit or
  // its share of --max-pending-total (0 once closed): a handler whose answer's size it
  // chooses (pull) makes it no larger, so that what a peer that never reads its answers
  // makes the broker hold stays near the limits. Any thread.
  size_t room() const;
  // Identifies the connection (for per-connection limits); 0 when detached.
  uint64_t connection_id() const { return conn_id_; }
  const std::string& peer() const;
  bool oneway() const { return oneway_; }

 private:
  std::weak_ptr<Connection> conn_;
  std::shared_ptr<std::atomic<bool>> answered_;
  std::shared_ptr<const std::string> peer_;
  uint64_t conn_id_ = 0;
  protocol::Type type_{};
  uint32_t request_id_ = 0;
  bool oneway_ = false;
};

using Handler = std::function<void(protocol::Frame request, Responder respond)>;
// Called on a connection's strand when it closes (for per-connection state).
using CloseHandler = std::function<void(uint64_t connection_id)>;

class Server {
 public:
  // Binds `address` (HOST:PORT, port 0 = any free port) and starts accepting.
  // "cannot listen on ADDR: reason" when it cannot.
  static Result<std::unique_ptr<Server>> listen(asio::io_context& io, std::string_view address,
                                                ServerOptions options, Handler handler,
                                                CloseHandler on_close = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address as HOST:PORT (the real port when 0 was asked for).
  const std::string& local_address() const;
  // Stops accepting new connections (existing ones carry on). Any thread.
  void stop_accepting();
  // Closes every connection (pending answers not yet written are dropped). Any thread.
  void close_all();
  size_t connections() const;
  // Requests being handled plus answer bytes waiting to be written, over all
  // connections: zero once everything was answered and handed to the kernel.
  size_t busy() const;

  struct Impl;

 private:
  explicit Server(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace mq::net
