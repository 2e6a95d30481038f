#include "net/server.h"

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "net/channel.h"
#include "net/tls.h"
#include "protocol/messages.h"
#include "util/log_limit.h"

namespace mq::net {

using error_code = boost::system::error_code;
using protocol::Code;
using protocol::Frame;

namespace {
constexpr size_t kReadChunk = 64 * 1024;
// After a short read, the next one reads into this much: the decoder zero-fills
// what it prepares, and 64 KiB per small request (a sync producer's) is a memset
// costlier than the request itself.
constexpr size_t kSmallReadChunk = 4 * 1024;
// Answers up to this size are written straight from the replying thread when
// the socket's write side is idle (see Connection::try_direct_reply).
constexpr size_t kDirectReplyMax = 64 * 1024;
// Connection::wire_: who owns the socket's write side.
constexpr int kWireIdle = 0;
constexpr int kWireStrand = 1;  // an async write, or a direct write's rest handed to the strand
constexpr int kWireDirect = 2;  // a direct write in progress (one non-blocking sendmsg)
const std::string kNoPeer = "-";
// Past the broker-wide cap on pending answers, a connection may still hand
// requests to the handler while it holds less than this: one that reads its
// answers as they come is served, one that does not waits (and is closed
// once stuck).
constexpr size_t kShareFloor = 64 * 1024;
// What a queued answer piece costs beyond its bytes (string and vector
// slot, allocator rounding): counted with them, so that the limits bound
// memory also when a peer leaves many small answers unread.
constexpr size_t kPieceCost = 64;
// Bodies up to this size are copied behind the header (one piece per answer).
constexpr size_t kJoinBody = 4096;
// A refused connection is closed once its answer is written, or after this.
constexpr auto kRefusalGrace = std::chrono::seconds(5);
}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& io_, ServerOptions o, Handler h, CloseHandler c)
      : io(io_),
        strand(asio::make_strand(io_)),
        acceptor(strand),
        retry_timer(strand),
        opt(o),
        handler(std::move(h)),
        on_close(std::move(c)) {}

  void accept();
  void remove(uint64_t id);
  void turn_away(tcp::socket socket, size_t count);

  asio::io_context& io;
  asio::strand<asio::io_context::executor_type> strand;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  ServerOptions opt;
  Handler handler;
  CloseHandler on_close;
  std::string local;
  std::atomic<uint64_t> next_id{1};
  std::atomic<size_t> in_flight_total{0};
  std::atomic<size_t> out_bytes_total{0};
  std::atomic<size_t> posted_bytes_total{0};
  mutable std::mutex mu;
  // Connections refused over --max-connections: logged once a second at most, with
  // how many were not (a client reconnecting in a loop would flood the log).
  LogLimit refusal_log{1000};
  std::atomic<uint64_t> refusals_unlogged{0};
  // accept() failing (EMFILE at the open-file limit) is retried every 100 ms: said once a
  // minute at most, with how many failures were not.
  LogLimit accept_log{60'000};
  uint64_t accept_failures_unlogged = 0;  // on strand

  // Answer bytes held for all connections (queued or posted, not yet written).
  bool over_total() const {
    return out_bytes_total.load(std::memory_order_relaxed) +
               posted_bytes_total.load(std::memory_order_relaxed) >=
           opt.max_pending_total;
  }
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> conns;  // guarded by mu
  bool accepting = true;  // on strand
  std::atomic<size_t> turning_away{0};  // refused sockets still draining (turn_away)
};

// One accepted socket. Everything below runs on strand_ (the socket's executor).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::shared_ptr<Server::Impl> server, uint64_t id,
             std::string peer)
      : socket_(std::move(socket)),
        stuck_timer_(socket_.get_executor()),
        server_(std::move(server)),
        id_(id),
        peer_(std::make_shared<const std::string>(std::move(peer))),
        decoder_(server_->opt.max_frame) {
    if (server_->opt.unadmitted_max_frame > 0 && server_->opt.unadmitted_max_frame < server_->opt.max_frame) {
      decoder_.set_max_frame(server_->opt.unadmitted_max_frame);
      frame_limited_ = true;
    }
  }

  void start() {
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    spdlog::debug("connection from {}", *peer_);
    if (server_->opt.admission_timeout.count() > 0) {
      admission_timer_ = std::make_unique<asio::steady_timer>(socket_.get_executor());
      admission_timer_->expires_after(server_->opt.admission_timeout);
      admission_timer_->async_wait([self = shared_from_this()](const error_code& ec) {
        if (!ec && !self->admitted_.load())
          self->close(spdlog::level::info,
                      fmt::format("not authenticated within {}", format_duration(self->server_->opt.admission_timeout)));
      });
    }
    if (!server_->opt.tls) return pump();
    tls_ = std::make_unique<ssl::stream<tcp::socket&>>(socket_, *server_->opt.tls);
    // A peer that connects and never completes the handshake is dropped.
    stuck_timer_.expires_after(server_->opt.handshake_timeout);
    stuck_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec && !self->secured_)
        self->close(spdlog::level::info, fmt::format("no TLS handshake within {}",
                                                     format_duration(self->server_->opt.handshake_timeout)));
    });
    tls_->async_handshake(ssl::stream_base::server, [self = shared_from_this()](const error_code& ec) {
      if (self->closed_) return;
      self->secured_ = true;
      self->stuck_timer_.cancel();
      if (ec) return self->close(spdlog::level::info, fmt::format("TLS handshake failed: {}", tls_error_text(ec)));
      self->pump();
    });
  }

  // Any thread.
  void post_reply(protocol::Type type, uint32_t request_id, bool oneway, Code status,
                  std::string head, std::string body) {
    if (!oneway && try_direct_reply(type, request_id, status, head, body)) return;
    // Counted at once, not when the strand gets to it: pump() dispatches a whole
    // read's worth of requests in one go and must see the answers they produced.
    if (!oneway) {
      posted_bytes_.fetch_add(head.size() + body.size(), std::memory_order_relaxed);
      server_->posted_bytes_total.fetch_add(head.size() + body.size(), std::memory_order_relaxed);
    }
    asio::post(socket_.get_executor(),
               [self = shared_from_this(), type, request_id, oneway, status, head = std::move(head),
                body = std::move(body)]() mutable {
                 self->on_reply(type, request_id, oneway, status, std::move(head), std::move(body));
               });
  }

  // On the strand (from the handler): answer, then close once it is written.
  void post_refusal(protocol::Type type, uint32_t request_id, bool oneway, Code status,
                    std::string message) {
    refusing_ = true;
    std::string payload = protocol::encode_error(message);
    if (!oneway) {
      posted_bytes_.fetch_add(payload.size(), std::memory_order_relaxed);
      server_->posted_bytes_total.fetch_add(payload.size(), std::memory_order_relaxed);
    }
    asio::post(socket_.get_executor(), [self = shared_from_this(), type, request_id, oneway, status,
                                        message = std::move(message), payload = std::move(payload)]() mutable {
      self->close_reason_ = std::move(message);
      self->draining_.store(true);
      self->on_reply(type, request_id, oneway, status, std::string(), std::move(payload));
      if (self->close_if_refused()) return;
      self->arm_refusal_timer();
    });
  }

  // On the strand: a frame that cannot be handled (garbage, a response sent as a
  // request). Nothing more is read; the requests before it still get their
  // answers (a send being stored is answered, not left for the client to resend),
  // then the connection closes.
  void close_after_answers(std::string reason) {
    refusing_ = true;
    close_reason_ = std::move(reason);
    draining_.store(true);
    if (close_if_refused()) return;
    arm_refusal_timer();
  }

  // A peer that does not take the answers, or answers that do not come, are not
  // waited for long.
  void arm_refusal_timer() {
    refusal_timer_ = std::make_unique<asio::steady_timer>(socket_.get_executor());
    refusal_timer_->expires_after(kRefusalGrace);
    refusal_timer_->async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec && !self->closed_) self->close(spdlog::level::info, *self->close_reason_);
    });
  }

  // Any thread.
  void post_close(std::string reason) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), reason = std::move(reason)] {
      self->close(spdlog::level::debug, reason);
    });
  }

  uint64_t id() const { return id_; }
  const std::shared_ptr<const std::string>& peer() const { return peer_; }

  // Answer bytes this connection may still be given before it is at a limit: what is
  // left of max_pending_bytes, and of max_pending_total (or, once that is reached, of
  // its 64 KiB share). Any thread.
  size_t room() const {
    size_t held = pending();
    size_t mine = server_->opt.max_pending_bytes > held ? server_->opt.max_pending_bytes - held : 0;
    size_t all = server_->out_bytes_total.load(std::memory_order_relaxed) +
                 server_->posted_bytes_total.load(std::memory_order_relaxed);
    size_t left = server_->opt.max_pending_total > all ? server_->opt.max_pending_total - all : 0;
    size_t share = kShareFloor > held ? kShareFloor - held : 0;
    return std::min(mine, std::max(left, share));
  }

 private:
  size_t pending() const { return out_bytes_ + posted_bytes_.load(std::memory_order_relaxed); }
  // Over the broker-wide cap and holding more than a share: this one waits.
  bool over_share() const { return pending() >= kShareFloor && server_->over_total(); }

  // The answer written by the calling thread (the store's flusher, for sends)
  // with one non-blocking sendmsg when nothing else is being written: no hop
  // to the connection's strand and no wake-up of an io thread before the
  // client has its answer. What the socket does not take at once goes to the
  // strand (it then owns the write side until that is written). False: not
  // taken (TLS, large, or the write side busy): post it as usual.
  bool try_direct_reply(protocol::Type type, uint32_t request_id, Code status,
                        const std::string& head, const std::string& body) {
    size_t total = protocol::kFrameHeaderSize + head.size() + body.size();
    if (server_->opt.tls || total > kDirectReplyMax) return false;
    int idle = kWireIdle;
    if (!wire_.compare_exchange_strong(idle, kWireDirect)) return false;
    if (closing_.load()) {  // close() waits for us to let go; the answer is moot
      wire_.store(kWireIdle);
      return true;
    }
    char header[protocol::kFrameHeaderSize];
    protocol::write_frame_header(header, type, protocol::kFlagResponse, request_id, status,
                                 head.size() + body.size());
    iovec iov[3] = {{header, sizeof header},
                    {const_cast<char*>(head.data()), head.size()},
                    {const_cast<char*>(body.data()), body.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 3;
    ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    size_t sent = n > 0 ? static_cast<size_t>(n) : 0;
    if (sent == total) {
      // Settled before the write side is let go: close() takes it before it
      // settles the counters, so none is counted twice.
      in_flight_.fetch_sub(1);
      server_->in_flight_total.fetch_sub(1, std::memory_order_relaxed);
      wire_.store(kWireIdle);
      if (paused_.load() || draining_.load())
        asio::post(socket_.get_executor(), [self = shared_from_this()] {
          if (self->close_if_refused()) return;
          if (self->paused_.load() && !self->closed_) self->pump();
        });
      return true;
    }
    // Short write, EAGAIN or an error: the strand writes the rest (or meets the error).
    std::string rest;
    rest.reserve(total - sent);
    std::string_view parts[3] = {{header, sizeof header}, head, body};
    size_t skip = sent;
    for (auto part : parts) {
      size_t k = std::min(skip, part.size());
      rest.append(part.substr(k));
      skip -= k;
    }
    posted_bytes_.fetch_add(rest.size(), std::memory_order_relaxed);
    server_->posted_bytes_total.fetch_add(rest.size(), std::memory_order_relaxed);
    wire_.store(kWireStrand);
    asio::post(socket_.get_executor(), [self = shared_from_this(), rest = std::move(rest)]() mutable {
      self->on_direct_rest(std::move(rest));
    });
    return true;
  }

  // On the strand, owning the write side (kWireStrand): a direct answer's rest.
  void on_direct_rest(std::string rest) {
    posted_bytes_.fetch_sub(rest.size(), std::memory_order_relaxed);
    server_->posted_bytes_total.fetch_sub(rest.size(), std::memory_order_relaxed);
    if (closed_) return;  // counters were settled by close(); the write side stays taken
    in_flight_.fetch_sub(1);
    server_->in_flight_total.fetch_sub(1, std::memory_order_relaxed);
    add_out_bytes(rest.size() + kPieceCost);
    out_.insert(out_.begin(), std::move(rest));
    if (stuck() && !stuck_armed_) arm_stuck_timer();
    start_write();
    if (paused_.load()) pump();
  }

  bool over_limit() const {
    return in_flight_ >= server_->opt.max_in_flight || pending() >= server_->opt.max_pending_bytes ||
           over_share();
  }
  // Holding answers its peer does not take: closed unless writes progress
  // within stuck_timeout.
  bool stuck() const { return out_bytes_ > server_->opt.max_pending_bytes || (out_bytes_ > 0 && over_share()); }

  // Hands buffered frames to the handler while the connection is under its
  // limits, then reads more. Over a limit, frames stay in the decoder and the
  // socket is not read (TCP pushes back on the peer) until answers drain.
  void pump() {
    Frame f;
    while (!closed_) {
      if (refusing_) return;  // closed once the refusal is written
      if (over_limit()) {
        if (!paused_.load()) spdlog::debug("connection from {}: reading paused", *peer_);
        paused_.store(true);
        if (stuck() && !stuck_armed_) arm_stuck_timer();
        // A direct reply settles in_flight_ and then looks at paused_: look
        // again after setting it, or both could miss the other.
        if (over_limit()) return;
        paused_.store(false);
        continue;
      }
      // Admitted by a handler (on this strand, so before the next frame): full frames.
      if (frame_limited_ && admitted_.load(std::memory_order_relaxed)) {
        decoder_.set_max_frame(server_->opt.max_frame);
        frame_limited_ = false;
      }
      auto st = decoder_.next(f);
      if (st == protocol::FrameDecoder::State::need_more) break;
      if (st == protocol::FrameDecoder::State::error)
        return close_after_answers(decoder_.error() + (frame_limited_ ? " (not authenticated)" : ""));
      if (f.header.flags & protocol::kFlagResponse) return close_after_answers("sent a response frame as a request");
      dispatch(std::move(f));
    }
    if (closed_) return;
    paused_.store(false);
    read();
  }

  void read() {
    if (closed_ || reading_) return;
    reading_ = true;
    if (!tls_ && !waited_) {
      // The first read waits for bytes before the decoder holds a read buffer:
      // thousands of connections that never send cost no buffer each.
      socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const error_code& ec) {
        self->reading_ = false;
        if (self->closed_) return;
        self->waited_ = true;
        if (ec) return self->on_read(ec, 0);
        self->read();
      });
      return;
    }
    char* at = decoder_.prepare(chunk_);
    auto handler = [self = shared_from_this()](const error_code& ec, size_t n) { self->on_read(ec, n); };
    if (tls_) tls_->async_read_some(asio::buffer(at, chunk_), std::move(handler));
    else socket_.async_read_some(asio::buffer(at, chunk_), std::move(handler));
  }

  void on_read(const error_code& ec, size_t n) {
    reading_ = false;
    decoder_.commit(n);
    chunk_ = n * 2 > chunk_ ? kReadChunk : kSmallReadChunk;  // big reads while data streams in
    if (closed_) return;
    if (ec) {
      bool eof = ec == asio::error::eof || ec == ssl::error::stream_truncated;
      if (eof && decoder_.buffered() > 0)
        return close(spdlog::level::info,
                     fmt::format("hung up in the middle of a frame ({} bytes of it received)",
                                 decoder_.buffered()));
      if (eof) return close(spdlog::level::debug, "closed by the peer");
      return close(spdlog::level::debug, tls_error_text(ec));
    }
    pump();
  }

  void dispatch(Frame f) {
    ++in_flight_;
    server_->in_flight_total.fetch_add(1, std::memory_order_relaxed);
    bool oneway = (f.header.flags & protocol::kFlagOneway) != 0;
    Responder r(weak_from_this(), f.header.type, f.header.request_id, oneway);
    try {
      server_->handler(std::move(f), r);
    } catch (const std::exception& e) {
      spdlog::warn("request from {} failed: {}", *peer_, e.what());
      r.fail(Code::internal, fmt::format("internal error: {}", e.what()));
    }
  }

  void on_reply(protocol::Type type, uint32_t request_id, bool oneway, Code status,
                std::string head, std::string body) {
    if (!oneway) {
      posted_bytes_.fetch_sub(head.size() + body.size(), std::memory_order_relaxed);
      server_->posted_bytes_total.fetch_sub(head.size() + body.size(), std::memory_order_relaxed);
    }
    if (closed_) return;  // counters were settled by close()
    in_flight_.fetch_sub(1);
    server_->in_flight_total.fetch_sub(1, std::memory_order_relaxed);
    if (!oneway) {
      std::string header(protocol::kFrameHeaderSize, '\0');
      protocol::write_frame_header(header.data(), type, protocol::kFlagResponse, request_id,
                                   status, head.size() + body.size());
      // Small heads and bodies ride in the header's buffer; big bodies keep their own.
      header.append(head);
      if (body.size() <= kJoinBody) {
        header.append(body);
        body.clear();
      }
      size_t bytes = header.size() + kPieceCost;
      out_.push_back(std::move(header));
      if (!body.empty()) {
        bytes += body.size() + kPieceCost;
        out_.push_back(std::move(body));
      }
      add_out_bytes(bytes);
      if (stuck() && !stuck_armed_) arm_stuck_timer();
      write_some();
    }
    if (close_if_refused()) return;  // the last answer awaited (a oneway's: none to write)
    if (paused_.load()) pump();
  }

  void add_out_bytes(size_t n) {
    out_bytes_ += n;
    server_->out_bytes_total.fetch_add(n, std::memory_order_relaxed);
  }
  void sub_out_bytes(size_t n) {
    out_bytes_ -= n;
    server_->out_bytes_total.fetch_sub(n, std::memory_order_relaxed);
  }

  void write_some() {
    if (writing_ || out_.empty() || closed_) return;
    int idle = kWireIdle;
    if (!wire_.compare_exchange_strong(idle, kWireStrand)) {
      // kWireStrand: a direct answer's rest is on its way here and writes
      // out_ too. kWireDirect: one sendmsg, a few microseconds: come back.
      if (idle == kWireDirect)
        asio::post(socket_.get_executor(), [self = shared_from_this()] { self->write_some(); });
      return;
    }
    start_write();
  }

  // Owning the write side (kWireStrand).
  void start_write() {
    writing_ = true;
    batch_ = std::move(out_);
    out_.clear();
    size_t bytes = 0;  // as counted by on_reply
    for (auto& s : batch_) bytes += s.size() + kPieceCost;
    auto handler = [self = shared_from_this(), bytes](const error_code& ec, size_t) {
      self->on_written(ec, bytes);
    };
    if (tls_) {
      // One TLS record per write rather than one per answer piece.
      if (batch_.size() > 1) {
        std::string joined;
        joined.reserve(bytes - batch_.size() * kPieceCost);
        for (auto& s : batch_) joined.append(s);
        batch_.assign(1, std::move(joined));
      }
      asio::async_write(*tls_, asio::buffer(batch_.front()), std::move(handler));
      return;
    }
    std::vector<asio::const_buffer> bufs;
    bufs.reserve(batch_.size());
    for (auto& s : batch_) bufs.push_back(asio::buffer(s));
    asio::async_write(socket_, bufs, std::move(handler));
  }

  void on_written(const error_code& ec, size_t bytes) {
    writing_ = false;
    batch_.clear();
    if (closed_) return;  // the write side stays taken: no direct answers after close
    wire_.store(kWireIdle);
    sub_out_bytes(bytes);
    if (ec) return close(spdlog::level::debug, fmt::format("write failed: {}", ec.message()));
    if (stuck_armed_) {  // writes progress: a stuck connection gets a fresh stuck_timeout
      stuck_armed_ = false;
      stuck_timer_.cancel();
      if (stuck()) arm_stuck_timer();
    }
    write_some();
    if (close_if_refused()) return;
    if (paused_.load()) pump();
  }

  // A refusal was answered (or a bad frame met), every request before it is
  // answered, and everything queued is written.
  bool close_if_refused() {
    if (closed_ || !close_reason_ || writing_ || !out_.empty() || in_flight_.load() > 0) return closed_;
    close(spdlog::level::info, *close_reason_);
    return true;
  }

  void arm_stuck_timer() {
    stuck_armed_ = true;
    stuck_timer_.expires_after(server_->opt.stuck_timeout);
    stuck_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->closed_ || !self->stuck_armed_) return;
      self->stuck_armed_ = false;
      // No write finished since the timer was armed (on_written re-arms it).
      if (self->out_bytes_.load() > 0)
        self->close(spdlog::level::warn,
                    fmt::format("not reading its answers ({} bytes waiting for {})",
                                self->out_bytes_.load(), format_duration(self->server_->opt.stuck_timeout)));
    });
  }

  void close(spdlog::level::level_enum level, std::string_view reason) {
    if (closed_) return;
    closed_ = true;
    // Take the write side for good: a direct answer in progress finishes its
    // sendmsg first (the socket must not close under it), later ones see
    // closing_ or find it taken. kWireStrand is ours already (strand work).
    closing_.store(true);
    for (;;) {
      int idle = kWireIdle;
      if (wire_.compare_exchange_strong(idle, kWireStrand) || idle == kWireStrand) break;
      std::this_thread::yield();
    }
    spdlog::log(level, "connection from {} closed: {}", *peer_, reason);
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    stuck_timer_.cancel();
    if (refusal_timer_) refusal_timer_->cancel();
    if (admission_timer_) admission_timer_->cancel();
    server_->in_flight_total.fetch_sub(in_flight_.exchange(0), std::memory_order_relaxed);
    server_->out_bytes_total.fetch_sub(out_bytes_.exchange(0), std::memory_order_relaxed);
    out_.clear();
    server_->remove(id_);
    if (server_->on_close) server_->on_close(id_);
  }

  tcp::socket socket_;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls_;  // with ServerOptions::tls
  asio::steady_timer stuck_timer_;  // also bounds the TLS handshake
  std::shared_ptr<Server::Impl> server_;
  uint64_t id_;
  std::shared_ptr<const std::string> peer_;
  protocol::FrameDecoder decoder_;
  std::vector<std::string> out_;    // answers waiting for the current write
  std::vector<std::string> batch_;  // answers being written (owned until the write completes)
  // Bytes in out_ and batch_, kPieceCost added per piece. Changed on the strand only; atomic
  // because room() reads it from any thread.
  std::atomic<size_t> out_bytes_{0};
  size_t chunk_ = kSmallReadChunk;  // the next read's size
  std::atomic<size_t> in_flight_{0};  // requests handed to the handler, not yet answered
  std::atomic<size_t> posted_bytes_{0};  // answers replied from any thread, not yet in out_
  bool reading_ = false;
  bool writing_ = false;
  std::atomic<bool> paused_{false};  // reading stopped at a limit (direct replies look)
  std::atomic<int> wire_{kWireIdle};   // who writes the socket (kWire*)
  std::atomic<bool> closing_{false};   // close() began: no direct answers
  bool stuck_armed_ = false;
  bool closed_ = false;
  bool secured_ = false;
  bool waited_ = false;  // the first bytes arrived (see read())
  bool refusing_ = false;  // refuse() was called: no more requests are handled
  std::optional<std::string> close_reason_;  // the refusal's answer is queued: close once written
  std::atomic<bool> draining_{false};         // close_reason_ is set (read by direct replies)
  std::unique_ptr<asio::steady_timer> refusal_timer_;  // bounds the wait for the refusal's write
  std::unique_ptr<asio::steady_timer> admission_timer_;  // with ServerOptions::admission_timeout
  std::atomic<bool> admitted_{false};
  bool frame_limited_ = false;  // decoder_ at unadmitted_max_frame until admitted_

  friend class Responder;
};

// --- Responder ---

Responder::Responder(std::weak_ptr<Connection> conn, protocol::Type type, uint32_t request_id,
                     bool oneway)
    : conn_(std::move(conn)),
      answered_(std::make_shared<std::atomic<bool>>(false)),
      type_(type),
      request_id_(request_id),
      oneway_(oneway) {
  if (auto c = conn_.lock()) {
    conn_id_ = c->id();
    peer_ = c->peer();
  }
}

void Responder::reply(Code status, std::string payload) const {
  reply(status, std::string(), std::move(payload));
}

void Responder::reply(Code status, std::string head, std::string body) const {
  if (!answered_ || answered_->exchange(true)) return;
  if (auto c = conn_.lock())
    c->post_reply(type_, request_id_, oneway_, status, std::move(head), std::move(body));
}

void Responder::fail(Code status, std::string_view message) const {
  reply(status, protocol::encode_error(message));
}

void Responder::refuse(Code status, std::string_view message) const {
  if (!answered_ || answered_->exchange(true)) return;
  if (auto c = conn_.lock()) c->post_refusal(type_, request_id_, oneway_, status, std::string(message));
}

void Responder::admit() const {
  if (auto c = conn_.lock()) c->admitted_.store(true, std::memory_order_relaxed);
}

const std::string& Responder::peer() const { return peer_ ? *peer_ : kNoPeer; }

size_t Responder::room() const {
  auto c = conn_.lock();
  return c ? c->room() : 0;
}

// --- Server ---

void Server::Impl::accept() {
  if (!accepting) return;
  acceptor.async_accept(
      asio::make_strand(io), [self = shared_from_this()](const error_code& ec, tcp::socket socket) {
        if (!self->accepting || ec == asio::error::operation_aborted) return;
        if (ec) {
          // EMFILE and friends: wait a little instead of spinning on the error.
          if (self->accept_log.due()) {
            uint64_t more = std::exchange(self->accept_failures_unlogged, 0);
            spdlog::warn("accept on {}: {}{} (retrying every 100ms)", self->local, ec.message(),
                         more ? fmt::format("; {} more failures since the last report", more) : "");
          } else {
            ++self->accept_failures_unlogged;
          }
          self->retry_timer.expires_after(std::chrono::milliseconds(100));
          self->retry_timer.async_wait([self](const error_code& e) {
            if (!e) self->accept();
          });
          return;
        }
        error_code pec;
        auto ep = socket.remote_endpoint(pec);
        std::string peer = pec ? "unknown peer" : join_host_port(ep.address().to_string(), ep.port());
        size_t count;
        {
          std::lock_guard lock(self->mu);
          count = self->conns.size();
        }
        if (count >= self->opt.max_connections) {
          if (self->refusal_log.due()) {
            uint64_t skipped = self->refusals_unlogged.exchange(0);
            spdlog::warn("refusing connection from {}: {} connections already (--max-connections){}", peer, count,
                         skipped ? fmt::format(" ({} more refused in the last second, not logged)", skipped) : "");
          } else {
            self->refusals_unlogged.fetch_add(1);
          }
          self->turn_away(std::move(socket), count);
        } else {
          uint64_t id = self->next_id.fetch_add(1);
          auto conn = std::make_shared<Connection>(std::move(socket), self, id, std::move(peer));
          {
            std::lock_guard lock(self->mu);
            self->conns.emplace(id, conn);
          }
          conn->start();
        }
        self->accept();
      });
}

namespace {
// Reads and drops what a turned-away peer still sends, until it hangs up or
// a second has passed, then closes the socket.
class Drainer : public std::enable_shared_from_this<Drainer> {
 public:
  Drainer(tcp::socket socket, std::shared_ptr<Server::Impl> server)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), server_(std::move(server)) {}
  ~Drainer();
  void start() {
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      error_code ignored;
      if (!ec) self->socket_.close(ignored);
    });
    read();
  }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](const error_code& ec, size_t) {
      if (!ec) return self->read();
      self->timer_.cancel();
      error_code ignored;
      self->socket_.close(ignored);
    });
  }
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<Server::Impl> server_;
  char buf_[1024];
};
}  // namespace

// A connection past max_connections: one BUSY frame (request id 0: no request
// of the peer's is answered), then the socket is drained briefly before it is
// closed, so that the peer reads the frame rather than a reset (closing a
// socket holding unread bytes, such as the peer's first request, resets it).
// TLS peers, and sockets past the few already draining, are closed at once.
void Server::Impl::turn_away(tcp::socket socket, size_t count) {
  constexpr size_t kMaxDraining = 64;
  error_code ignored;
  if (opt.tls || turning_away.load() >= kMaxDraining) {
    socket.close(ignored);
    return;
  }
  std::string frame;
  protocol::encode_frame(frame, protocol::Type::hello, protocol::kFlagResponse, 0, Code::busy,
                         protocol::encode_error(fmt::format(
                             "too many connections ({} already, --max-connections {})", count,
                             opt.max_connections)));
  (void)::send(socket.native_handle(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  turning_away.fetch_add(1);
  std::make_shared<Drainer>(std::move(socket), shared_from_this())->start();
}

Drainer::~Drainer() { server_->turning_away.fetch_sub(1); }

void Server::Impl::remove(uint64_t id) {
  std::shared_ptr<Connection> keep;  // destroyed outside the lock
  std::lock_guard lock(mu);
  auto it = conns.find(id);
  if (it != conns.end()) {
    keep = std::move(it->second);
    conns.erase(it);
  }
}

Server::Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  // The acceptor is closed before the destructor returns, so nothing is accepted on the
  // address afterwards (a client gets "connection refused", not a reset): on the strand
  // while the io_context runs, directly once it has stopped.
  if (impl_->io.stopped()) {
    boost::system::error_code ignored;
    impl_->accepting = false;
    impl_->acceptor.close(ignored);
  } else {
    auto closed = std::make_shared<std::promise<void>>();
    auto done = closed->get_future();
    asio::post(impl_->strand, [impl = impl_, closed] {
      impl->accepting = false;
      boost::system::error_code ignored;
      impl->retry_timer.cancel();
      impl->acceptor.close(ignored);
      closed->set_value();
    });
    done.wait_for(std::chrono::seconds(2));  // bounded: a stalled io thread must not hang us
  }
  close_all();
  // Connections hold the Impl and its map holds them: if the io_context stops before the
  // posted closes run, nothing else would break that cycle. A connection still in use
  // lives on in its pending handlers.
  decltype(impl_->conns) conns;
  {
    std::lock_guard lock(impl_->mu);
    conns.swap(impl_->conns);
  }
}

Result<std::unique_ptr<Server>> Server::listen(asio::io_context& io, std::string_view address,
                                               ServerOptions options, Handler handler,
                                               CloseHandler on_close) {
  auto fail = [&](std::string_view why) {
    return Status::io_error(fmt::format("cannot listen on {}: {}", address, why));
  };
  auto hp = split_listen_address(address);
  if (!hp) return hp.status();
  error_code ec;
  tcp::endpoint ep;
  auto ip = asio::ip::make_address(hp->first, ec);
  if (!ec) {
    ep = tcp::endpoint(ip, hp->second);
  } else {
    tcp::resolver resolver(io);
    auto results = resolver.resolve(hp->first, std::to_string(hp->second), ec);
    if (ec || results.empty()) return fail(ec ? ec.message() : "host not found");
    ep = results.begin()->endpoint();
  }
  auto impl = std::make_shared<Impl>(io, options, std::move(handler), std::move(on_close));
  auto& acc = impl->acceptor;
  acc.open(ep.protocol(), ec);
  if (ec) return fail(ec.message());
  acc.set_option(asio::socket_base::reuse_address(true), ec);
  acc.bind(ep, ec);
  if (ec) return fail(ec.message());
  acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(ec.message());
  auto bound = acc.local_endpoint(ec);
  if (ec) return fail(ec.message());
  impl->local = join_host_port(bound.address().to_string(), bound.port());
  asio::post(impl->strand, [impl] { impl->accept(); });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

const std::string& Server::local_address() const { return impl_->local; }

void Server::stop_accepting() {
  asio::post(impl_->strand, [impl = impl_] {
    if (!impl->accepting) return;
    impl->accepting = false;
    error_code ignored;
    impl->retry_timer.cancel();
    impl->acceptor.close(ignored);
  });
}

void Server::close_all() {
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [id, c] : impl_->conns) all.push_back(c);
  }
  for (auto& c : all) c->post_close("server shutting down");
}

size_t Server::connections() const {
  std::lock_guard lock(impl_->mu);
  return impl_->conns.size();
}

size_t Server::busy() const {
  return impl_->in_flight_total.load(std::memory_order_relaxed) +
         impl_->out_bytes_total.load(std::memory_order_relaxed);
}

}  // namespace mq::net
