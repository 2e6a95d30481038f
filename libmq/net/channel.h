// Client side of one connection to one broker: request ids, pipelining,
// per-request timeouts, reconnect on the next request after a failure or
// after a timeout on a connection gone silent.
//
// Threading: request()/oneway() may be called from any thread; the socket
// lives on the io_context given to create() (run it on one thread, e.g. with
// net::IoThread). Callbacks run on that io thread, exactly once per request.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "net/asio.h"
#include "protocol/frame.h"
#include "util/parse.h"
#include "util/status.h"

namespace boost::asio::ssl {
class context;
}

namespace mq::net {

// Who the client is and how it talks to brokers: TLS (when `tls` is set,
// the broker's certificate must chain to its CA and name the host the
// channel connects to) and credentials (when `user` is set, every new
// connection authenticates before any request is sent).
struct ClientSecurity {
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::string user;
  std::string key;  // protocol::auth_key(password): the password itself is not kept
};

struct ChannelOptions {
  Millis connect_timeout{3000};  // covers TCP connect, TLS handshake and authentication
  uint32_t max_frame = protocol::kDefaultMaxFrame;
  std::string client_name = "mq";  // sent in hello
  ClientSecurity security;
};

class Channel {
 public:
  // `address` is HOST:PORT. Does not connect yet: the first request does.
  static std::shared_ptr<Channel> create(asio::io_context& io, std::string address,
                                         ChannelOptions options = {});
  virtual ~Channel() = default;

  // The response frame (whatever its status), or a transport error:
  // unavailable (cannot connect, connection lost before the answer) or
  // timeout (no answer within `timeout`; a late answer is dropped). After a
  // timeout the connection stays up if a request sent no earlier than the
  // timed-out one was answered meanwhile, or else if a hello sent as a probe
  // is answered within half the timeout (0.1 to 1 s); otherwise it is silent
  // (half open, a stopped peer) and is dropped: the requests still waiting
  // on it fail with unavailable and the next request reconnects.
  using Callback = std::function<void(Result<protocol::Frame>)>;
  virtual void request(protocol::Type type, std::string payload, Millis timeout, Callback done) = 0;
  // Fire and forget (kFlagOneway). `written` runs once the bytes were handed
  // to the socket, or with the transport error.
  virtual void oneway(protocol::Type type, std::string payload, std::function<void(Status)> written) = 0;
  // Blocking convenience for non-io threads: waits for the callback. Never
  // call it on the io thread (it would wait for itself).
  Result<protocol::Frame> call(protocol::Type type, std::string payload, Millis timeout);

  virtual const std::string& address() const = 0;
  // Requests waiting for an answer (for windows and diagnostics).
  virtual size_t in_flight() const = 0;
  // Fails every pending request with unavailable and closes the socket.
  virtual void close() = 0;
};

// An io_context running on its own thread, stopped and joined on destruction.
class IoThread {
 public:
  IoThread();
  ~IoThread();
  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

// "host:port" -> endpoint pieces; invalid_argument names the bad text.
Result<std::pair<std::string, uint16_t>> split_host_port(std::string_view address);
// Same, for listen addresses: port 0 (any free port) is allowed too.
Result<std::pair<std::string, uint16_t>> split_listen_address(std::string_view address);
// "host:port", with brackets around an IPv6 host ("[::1]:9").
std::string join_host_port(std::string_view host, uint16_t port);

}  // namespace mq::net
