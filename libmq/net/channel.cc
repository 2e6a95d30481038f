#include "net/channel.h"

#include "net/tls.h"
#include "protocol/messages.h"
#include "util/bytes.h"
#include "util/thread_name.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <future>
#include <unordered_map>
#include <vector>

namespace mq::net {

namespace {

using protocol::Frame;
using protocol::Type;
using error_code = boost::system::error_code;

constexpr size_t kReadChunk = 64 * 1024;
// After a short read (one answer), the next one reads into this much: the
// decoder zero-fills what it prepares (see net/server.cc).
constexpr size_t kSmallReadChunk = 4 * 1024;

// The real channel. Every member below the public API runs on strand_. Async
// handlers carry the connection generation they were started for: drop()
// bumps it, so handlers of a dead connection only release what they own.
class AsioChannel final : public std::enable_shared_from_this<AsioChannel> {
 public:
  AsioChannel(asio::io_context& io, std::string address, ChannelOptions options)
      : strand_(asio::make_strand(io)),
        socket_(strand_),
        resolver_(strand_),
        connect_timer_(strand_),
        address_(std::move(address)),
        opt_(std::move(options)) {}

  void request(Type type, std::string payload, Millis timeout, Channel::Callback done) {
    asio::post(strand_, [self = shared_from_this(), type, payload = std::move(payload), timeout,
                         done = std::move(done)]() mutable {
      self->start_request(type, payload, timeout, std::move(done));
    });
  }

  void oneway(Type type, std::string payload, std::function<void(Status)> written) {
    asio::post(strand_, [self = shared_from_this(), type, payload = std::move(payload),
                         written = std::move(written)]() mutable {
      std::string frame;
      frame.reserve(protocol::kFrameHeaderSize + payload.size());
      protocol::encode_frame(frame, type, protocol::kFlagOneway, self->take_id(),
                             protocol::Code::ok, payload);
      self->enqueue(std::move(frame), std::move(written));
    });
  }

  void close(std::string why) {
    asio::post(strand_, [self = shared_from_this(), why = std::move(why)] {
      self->drop(Status::unavailable(why));
    });
  }

  const std::string& address() const { return address_; }
  size_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

 private:
  // connecting: TCP; securing: TLS handshake; authenticating: auth exchange.
  enum class State { idle, connecting, securing, authenticating, connected };
  struct Pending {
    Channel::Callback done;
    std::unique_ptr<asio::steady_timer> timer;
    uint64_t seq = 0;  // order of sending on this channel (see on_timeout)
    bool probe = false;
  };
  struct Out {
    std::string bytes;
    std::function<void(Status)> written;
  };

  uint32_t take_id() {
    uint32_t id;
    do {
      id = next_id_++;
    } while (id == 0 || pending_.count(id) != 0);
    return id;
  }

  uint32_t start_request(Type type, std::string_view payload, Millis timeout, Channel::Callback done) {
    uint32_t id = take_id();
    auto timer = std::make_unique<asio::steady_timer>(strand_, timeout);
    timer->async_wait([self = shared_from_this(), id, timeout](const error_code& ec) {
      if (!ec) self->on_timeout(id, timeout);
    });
    pending_.emplace(id, Pending{std::move(done), std::move(timer), ++sent_seq_});
    in_flight_.store(pending_.size(), std::memory_order_relaxed);
    std::string frame;
    frame.reserve(protocol::kFrameHeaderSize + payload.size());
    protocol::encode_frame(frame, type, 0, id, protocol::Code::ok, payload);
    enqueue(std::move(frame), nullptr);
    return id;
  }

  void enqueue(std::string frame, std::function<void(Status)> written) {
    out_.push_back(Out{std::move(frame), std::move(written)});
    if (state_ == State::idle) {
      connect();
    } else if (state_ == State::connected) {
      write_some();
    }
  }

  void connect() {
    auto hp = split_host_port(address_);
    if (!hp) return drop(hp.status());
    state_ = State::connecting;
    uint64_t g = ++gen_;
    connect_timed_out_ = false;
    connect_timer_.expires_after(opt_.connect_timeout);
    connect_timer_.async_wait([self = shared_from_this(), g](const error_code& ec) {
      if (ec || g != self->gen_) return;
      if (self->state_ == State::authenticating)
        return self->drop(Status::timeout(fmt::format("no answer to authentication from {} within {}",
                                                      self->address_,
                                                      format_duration(self->opt_.connect_timeout))));
      if (self->state_ != State::connecting && self->state_ != State::securing) return;
      self->connect_timed_out_ = true;
      self->resolver_.cancel();
      error_code ignored;
      self->sock().close(ignored);
    });
    resolver_.async_resolve(
        hp->first, std::to_string(hp->second),
        [self = shared_from_this(), g](const error_code& ec, tcp::resolver::results_type results) {
          if (g != self->gen_) return;
          if (ec) return self->connect_failed(ec);
          asio::async_connect(self->socket_, results,
                              [self, g](const error_code& ec2, const tcp::endpoint&) {
                                if (g != self->gen_) return;
                                if (ec2) return self->connect_failed(ec2);
                                self->connected(g);
                              });
        });
  }

  void connect_failed(const error_code& ec, std::string_view what = "cannot connect to",
                      std::string_view detail = {}) {
    std::string why = connect_timed_out_
                          ? fmt::format("timed out after {}", format_duration(opt_.connect_timeout))
                          : tls_error_text(ec);
    if (!connect_timed_out_ && !detail.empty()) why = fmt::format("{} ({})", why, detail);
    drop(Status::unavailable(fmt::format("{} {}: {}", what, address_, why)));
  }

  // The socket of the current connection (inside the TLS stream when there is one).
  tcp::socket& sock() { return tls_ ? tls_->next_layer() : socket_; }

  void connected(uint64_t g) {
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    heard_ = false;
    decoder_ = std::make_shared<protocol::FrameDecoder>(opt_.max_frame);
    if (!opt_.security.tls) return secured(g);
    // The stream owns the socket from here on; handlers hold it alive, so a
    // drop() while an operation is pending never frees it under them.
    state_ = State::securing;
    tls_ = std::make_shared<ssl::stream<tcp::socket>>(std::move(socket_), *opt_.security.tls);
    auto host = split_host_port(address_)->first;
    boost::system::error_code addr_ec;
    asio::ip::make_address(host, addr_ec);
    if (addr_ec)  // a name, not an address: tell it to the server (SNI)
      SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());
    // Host name check as asio's, noting a mismatch so that the error can say so.
    auto wrong_host = std::make_shared<bool>(false);
    tls_->set_verify_callback([check = ssl::host_name_verification(host), wrong_host](
                                  bool preverified, ssl::verify_context& ctx) mutable {
      bool ok = check(preverified, ctx);
      if (preverified && !ok) *wrong_host = true;
      return ok;
    });
    auto verify_detail = [wrong_host, host](ssl::stream<tcp::socket>& s) -> std::string {
      if (*wrong_host) return fmt::format("the certificate is not for {}", host);
      long v = SSL_get_verify_result(s.native_handle());
      if (v != X509_V_OK) return X509_verify_cert_error_string(v);
      return {};
    };
    tls_->async_handshake(ssl::stream_base::client,
                          [self = shared_from_this(), g, tls = tls_, verify_detail](const error_code& ec) {
                            if (g != self->gen_) return;
                            if (ec) {
                              std::string detail = verify_detail(*tls);
                              // Closed without a TLS answer: a broker without --tls-cert takes the
                              // client's hello for a frame far over its size limit.
                              if (detail.empty() && (ec == ssl::error::stream_truncated || ec == asio::error::eof ||
                                                     tls_error_text(ec) == "wrong version number"))
                                detail = "does the broker serve TLS? one without --tls-cert closes a TLS client";
                              return self->connect_failed(ec, "TLS handshake with", detail);
                            }
                            self->secured(g);
                          });
  }

  // Connected (and TLS set up): authenticate when asked to, then send.
  void secured(uint64_t g) {
    read(g);
    if (opt_.security.user.empty()) return ready();
    state_ = State::authenticating;
    internal_request(Type::auth_challenge, {}, [self = shared_from_this(), g](Frame f) {
      protocol::AuthChallengeResponse ch;
      if (f.header.status != protocol::Code::ok || !ch.decode(f.payload))
        return self->drop(Status::unavailable(
            fmt::format("{} did not answer the authentication challenge", self->address_)));
      protocol::AuthRequest req;
      req.user = self->opt_.security.user;
      req.proof = protocol::auth_proof(self->opt_.security.key, req.user, ch.nonce);
      std::string payload;
      req.encode(payload);
      self->internal_request(Type::auth, std::move(payload), [self](Frame a) {
        if (a.header.status != protocol::Code::ok)
          return self->drop(protocol::status_from_response(a.header.status, a.payload)
                                .with_context(self->address_));
        spdlog::debug("authenticated to {} as {}", self->address_, self->opt_.security.user);
        self->ready();
      });
    });
  }

  void ready() {
    state_ = State::connected;
    connect_timer_.cancel();
    spdlog::debug("connected to {}", address_);
    write_some();
  }

  // A request of the channel's own (authentication), sent ahead of the
  // queued ones. Only an answer reaches `done`: on failure drop() has run.
  void internal_request(Type type, std::string_view payload, std::function<void(Frame)> done) {
    uint32_t id = take_id();
    uint64_t g = gen_;
    auto timer = std::make_unique<asio::steady_timer>(strand_);  // the connect timer bounds it
    pending_.emplace(id, Pending{[self = shared_from_this(), g, done = std::move(done)](
                                     Result<Frame> r) mutable {
                                   if (g != self->gen_ || !r) return;
                                   done(std::move(*r));
                                 },
                                 std::move(timer)});
    std::string frame;
    protocol::encode_frame(frame, type, 0, id, protocol::Code::ok, payload);
    hs_out_.push_back(Out{std::move(frame), nullptr});
    write_some();
  }

  void read(uint64_t g) {
    auto dec = decoder_;
    size_t chunk = chunk_;
    char* at = dec->prepare(chunk);
    auto handler = [self = shared_from_this(), g, dec, chunk, tls = tls_](const error_code& ec, size_t n) {
      dec->commit(n);
      self->chunk_ = n * 2 > chunk ? kReadChunk : kSmallReadChunk;  // big reads while data streams in
      if (g != self->gen_) return;
      if (ec) {
        if (ec == asio::error::eof || ec == ssl::error::stream_truncated)
          return self->drop(Status::unavailable(fmt::format(
              "connection to {} closed by the peer{}", self->address_,
              // A TLS broker closes a plain connection at its first bytes (and never
              // answered one: a broker that did is no TLS broker).
              !self->tls_ && !self->heard_ ? (self->heard_once_ ? " before any answer"
                                                                : " before any answer (if it uses TLS, give --tls-ca)")
                                           : "")));
        return self->drop(Status::unavailable(
            fmt::format("connection to {} lost: {}", self->address_, tls_error_text(ec))));
      }
      Frame f;
      for (;;) {
        auto st = dec->next(f);
        if (st == protocol::FrameDecoder::State::need_more) break;
        if (st == protocol::FrameDecoder::State::error)
          return self->drop(Status::unavailable(
              fmt::format("bad frame from {}: {}", self->address_, dec->error())));
        self->heard_ = true;
        self->heard_once_ = true;
        self->on_frame(std::move(f));
        if (g != self->gen_) return;  // a callback closed the channel
      }
      self->read(g);
    };
    if (tls_) tls_->async_read_some(asio::buffer(at, chunk), std::move(handler));
    else socket_.async_read_some(asio::buffer(at, chunk), std::move(handler));
  }

  void on_frame(Frame f) {
    if ((f.header.flags & protocol::kFlagResponse) == 0) {
      spdlog::debug("ignoring a request frame from {}", address_);
      return;
    }
    if (f.header.request_id == 0) {
      // Request ids start at 1: id 0 is the broker speaking for the connection
      // (BUSY when it is at its connection limit) just before it closes it.
      if (f.header.status != protocol::Code::ok)
        return drop(protocol::status_from_response(f.header.status, f.payload).with_context(address_));
      return;
    }
    auto it = pending_.find(f.header.request_id);
    if (it == pending_.end()) return;  // answered after its timeout: dropped
    auto done = std::move(it->second.done);
    it->second.timer->cancel();
    answered_seq_ = std::max(answered_seq_, it->second.seq);
    pending_.erase(it);
    in_flight_.store(pending_.size(), std::memory_order_relaxed);
    done(std::move(f));
  }

  // A request got no answer in time. When a request sent after it (or it
  // itself) was answered meanwhile, the link works and the broker is only
  // slow on this one: the connection stays, a late answer is dropped. When
  // nothing sent since was answered, a hello goes out as a probe (the
  // broker answers it at once even while other requests wait, e.g. for a
  // slave): answered, the connection stays; not answered within half the
  // timeout (0.1 to 1 s), the connection is silent (a half-open link, a
  // stopped peer, one whose frame decoder lost step) and is dropped, failing
  // the requests still waiting on it; the next request connects afresh.
  void on_timeout(uint32_t id, Millis timeout) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    auto done = std::move(it->second.done);
    bool silent = state_ == State::connected && answered_seq_ < it->second.seq;
    bool probe = it->second.probe;
    pending_.erase(it);
    in_flight_.store(pending_.size(), std::memory_order_relaxed);
    std::string why = fmt::format("no answer from {} within {}", address_, format_duration(timeout));
    if (probe) probing_ = false;
    done(Status::timeout(why));
    if (!silent || state_ != State::connected) return;  // (done may have closed the channel)
    if (probe) return drop(Status::unavailable(fmt::format("{} (a probe): connection dropped", why)));
    if (probing_) return;
    probing_ = true;
    std::string payload;
    ByteWriter(payload).str16(opt_.client_name);
    uint32_t probe_id = start_request(Type::hello, payload, std::clamp(timeout / 2, Millis(100), Millis(1000)),
                  // weak: the callback lives in pending_, a strong self would be a
                  // cycle that outlives a client exiting with the probe in flight
                  [w = weak_from_this()](Result<Frame>) {
                    if (auto self = w.lock()) self->probing_ = false;
                  });
    pending_[probe_id].probe = true;
  }

  void write_some() {
    if (writing_) return;
    // While authenticating only the channel's own requests go out.
    auto& queue = state_ == State::connected ? out_ : hs_out_;
    if (queue.empty() || (state_ != State::connected && state_ != State::authenticating)) return;
    writing_ = true;
    // The batch belongs to the handler: a drop() while it is in flight must
    // not free the bytes the kernel is still being handed.
    auto batch = std::make_shared<std::vector<Out>>(std::move(queue));
    queue.clear();
    auto handler = [self = shared_from_this(), g = gen_, batch, tls = tls_](const error_code& ec, size_t) {
      Status st = ec ? Status::unavailable(fmt::format("write to {}: {}", self->address_,
                                                       tls_error_text(ec)))
                     : Status::ok();
      for (auto& o : *batch)
        if (o.written) o.written(st);
      if (g != self->gen_) return;
      self->writing_ = false;
      if (ec) return self->drop(st);
      self->write_some();
    };
    if (tls_) {
      // One TLS record per write, not one per frame: join small frames.
      auto joined = std::make_shared<std::string>();
      for (auto& o : *batch) joined->append(o.bytes);
      asio::async_write(*tls_, asio::buffer(*joined),
                        [joined, handler = std::move(handler)](const error_code& ec, size_t n) mutable {
                          handler(ec, n);
                        });
      return;
    }
    std::vector<asio::const_buffer> bufs;
    bufs.reserve(batch->size());
    for (auto& o : *batch) bufs.push_back(asio::buffer(o.bytes));
    asio::async_write(socket_, bufs, std::move(handler));
  }

  // Ends the current connection (if any) and fails everything waiting on it.
  void drop(Status why) {
    ++gen_;
    if (state_ != State::idle) spdlog::debug("{}", why.message());
    state_ = State::idle;
    writing_ = false;
    probing_ = false;
    error_code ignored;
    resolver_.cancel();
    connect_timer_.cancel();
    socket_.close(ignored);
    if (tls_) tls_->next_layer().close(ignored);
    tls_.reset();  // pending handlers keep their own reference
    decoder_.reset();
    auto pending = std::move(pending_);
    pending_.clear();
    auto out = std::move(out_);
    out_.clear();
    hs_out_.clear();
    in_flight_.store(0, std::memory_order_relaxed);
    for (auto& o : out)
      if (o.written) o.written(why);
    for (auto& [id, p] : pending) {
      p.timer->cancel();
      p.done(why);
    }
  }

  asio::strand<asio::io_context::executor_type> strand_;
  tcp::socket socket_;  // plain connections; connects before TLS takes it over
  std::shared_ptr<ssl::stream<tcp::socket>> tls_;
  tcp::resolver resolver_;
  asio::steady_timer connect_timer_;
  std::string address_;
  ChannelOptions opt_;
  std::shared_ptr<protocol::FrameDecoder> decoder_;
  State state_ = State::idle;
  uint64_t gen_ = 0;
  size_t chunk_ = kSmallReadChunk;  // the next read's size
  bool connect_timed_out_ = false;
  bool writing_ = false;
  uint32_t next_id_ = 1;
  bool heard_ = false;          // a frame arrived on the current connection
  bool heard_once_ = false;     // ... on any connection of this channel
  bool probing_ = false;       // a probe is waiting for its answer (see on_timeout)
  uint64_t sent_seq_ = 0;      // requests started, ever
  uint64_t answered_seq_ = 0;  // the latest-started request answered so far
  std::unordered_map<uint32_t, Pending> pending_;
  std::vector<Out> out_;
  std::vector<Out> hs_out_;  // authentication requests, sent before out_
  std::atomic<size_t> in_flight_{0};
};

// What create() hands out: dropping the last reference closes the connection
// (the io handlers keep the AsioChannel itself alive until they finish).
class ChannelHandle final : public Channel {
 public:
  explicit ChannelHandle(std::shared_ptr<AsioChannel> impl) : impl_(std::move(impl)) {}
  ~ChannelHandle() override { impl_->close(fmt::format("channel to {} closed", impl_->address())); }
  void request(Type type, std::string payload, Millis timeout, Callback done) override {
    impl_->request(type, std::move(payload), timeout, std::move(done));
  }
  void oneway(Type type, std::string payload, std::function<void(Status)> written) override {
    impl_->oneway(type, std::move(payload), std::move(written));
  }
  const std::string& address() const override { return impl_->address(); }
  size_t in_flight() const override { return impl_->in_flight(); }
  void close() override { impl_->close(fmt::format("channel to {} closed", impl_->address())); }

 private:
  std::shared_ptr<AsioChannel> impl_;
};

Result<std::pair<std::string, uint16_t>> split_address(std::string_view address, bool allow_zero) {
  auto bad = [&](std::string_view why) {
    return Status::invalid(fmt::format("invalid address '{}': {}", address, why));
  };
  std::string_view host, port;
  if (address.empty()) return bad("expected HOST:PORT");
  if (address.front() == '[') {
    auto close = address.find(']');
    if (close == std::string_view::npos) return bad("missing ']' after an IPv6 host");
    host = address.substr(1, close - 1);
    std::string_view rest = address.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return bad("expected [HOST]:PORT");
    port = rest.substr(1);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos) return bad("expected HOST:PORT");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return bad("put an IPv6 host in brackets, e.g. [::1]:9876");
  }
  if (host.empty()) return bad("empty host");
  if (port.empty() || port.size() > 5) return bad("port must be a number from 1 to 65535");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || end != port.data() + port.size() || value > 65535 ||
      (value == 0 && !allow_zero))
    return bad(allow_zero ? "port must be a number from 0 to 65535"
                          : "port must be a number from 1 to 65535");
  return std::pair<std::string, uint16_t>{std::string(host), static_cast<uint16_t>(value)};
}

}  // namespace

std::shared_ptr<Channel> Channel::create(asio::io_context& io, std::string address,
                                         ChannelOptions options) {
  return std::make_shared<ChannelHandle>(
      std::make_shared<AsioChannel>(io, std::move(address), std::move(options)));
}

Result<protocol::Frame> Channel::call(protocol::Type type, std::string payload, Millis timeout) {
  std::promise<Result<protocol::Frame>> promise;
  auto future = promise.get_future();
  request(type, std::move(payload), timeout,
          [&promise](Result<protocol::Frame> r) { promise.set_value(std::move(r)); });
  return future.get();
}

IoThread::IoThread()
    : io_(1), work_(asio::make_work_guard(io_)), thread_([this] {
        name_this_thread("mq-client-io");
        io_.run();
      }) {}

IoThread::~IoThread() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

Result<std::pair<std::string, uint16_t>> split_host_port(std::string_view address) {
  return split_address(address, false);
}

Result<std::pair<std::string, uint16_t>> split_listen_address(std::string_view address) {
  return split_address(address, true);
}

std::string join_host_port(std::string_view host, uint16_t port) {
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

}  // namespace mq::net
