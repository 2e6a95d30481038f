// Master/slave replication (SPEC "Replication").
//
// The slave pulls: ReplicationSlave sends `replicate` requests carrying its
// log end (durable on the slave: append_raw fdatasyncs before returning), the
// master's ReplicationMaster answers with raw log bytes from there (whole
// records, never across a segment boundary) or parks the request until new
// records are visible. The slave writes them at the same positions, so
// segment files, offsets and message ids are identical. The position in each
// request is the slave's acknowledgement: with sync replication a send is
// answered once some slave's acknowledged position covers it (one report
// covers every batch below it), SLAVE_NOT_AVAILABLE when no slave is
// connected, FLUSH_SLAVE_TIMEOUT after the replication timeout; the records
// are stored on the master in every case. A master that has just started gives
// its slaves a grace (kSlaveGrace, at most the replication timeout) to
// reconnect before it answers SLAVE_NOT_AVAILABLE: sends that arrive first wait
// for one, so restarting a master does not fail the sends right after it.
//
// Consumer offsets (the offset table, which also holds the delay levels'
// progress under %SCHEDULE%) follow with `sync_offsets`: every 500 ms (and
// right after each (re)connection) the slave sends the offsets it holds above
// what it last got from the master — commits made on the slave while the
// master was away — and gets the master's whole table back when it changed.
// Both merge with OffsetTable::reconcile (higher epoch, else higher offset),
// and the slave persists its table like any broker, so a promoted slave
// continues each group and each delay level where the master was, or a little
// before: the slave adopts a table of the master only once its own log holds
// everything the master's log held when the table was taken (HeldOffsets).
// The delay levels' progress counts a %SCHEDULE% record as delivered once its
// copy is in the master's log; a slave adopting it before it had that copy
// would never deliver the retry after a promotion. Holding back only ever
// delivers a message once more.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "broker/broker.h"
#include "broker/long_poll.h"
#include "broker/offset_table.h"
#include "broker/topics.h"
#include "net/asio.h"
#include "net/channel.h"
#include "storage/message_store.h"
#include "util/log_limit.h"
#include "util/parse.h"

namespace mq::broker {

// A slave retries a lost master at most this far apart (doubling from 100 ms),
// and a master that has just started waits this long for its slaves to come
// back: longer than the retry, so that a slave that was connected before the
// restart is in time.
constexpr Millis kSlaveRetryMax{1000};
constexpr Millis kSlaveGrace{2000};

struct ReplicationOptions {
  bool sync = false;           // --replication sync
  Millis timeout{3000};        // --replication-timeout
  uint32_t max_chunk = 4u << 20;  // bytes per replicate answer
  net::ClientSecurity security;   // slaves: TLS and credentials towards the master
  OffsetTable* offsets = nullptr;  // replicated both ways when set; outlives master and slave
  Millis offsets_interval{500};    // slaves: how often offsets are synced
};

// The master's offset tables a slave got and may not adopt yet (see above).
// A table is released once the slave's log end reaches a bound: a master log
// end read after the table was taken (the master_end of a replicate answer
// to a request sent after the table arrived). The master's log end when a
// table is taken covers every record whose progress the table counts, so
// does any later one, and the slave's log is a prefix of the master's. The
// oldest bounded table and the newest table are kept (a newer snapshot
// replaces the newest), so a lagging slave still adopts tables as it catches
// up. Not thread-safe.
class HeldOffsets {
 public:
  void hold(std::vector<protocol::GroupOffset> table);
  // Bounds every held table that has no bound yet by `master_end`, a master
  // log end read after they were all taken.
  void bound(uint64_t master_end);
  // True when a held table waits for its bound.
  bool unbounded() const { return !held_.empty() && !held_.back().bound; }
  // The tables whose bound `log_end` reaches, oldest first; they leave the hold.
  std::vector<std::vector<protocol::GroupOffset>> release(uint64_t log_end);
  void clear() { held_.clear(); }
  size_t size() const { return held_.size(); }

 private:
  struct Held {
    std::optional<uint64_t> bound;
    std::vector<protocol::GroupOffset> table;
  };
  std::deque<Held> held_;
};

// Master side. Registers the replicate handler, the hello slave list and (with
// sync replication) the ack gate on `broker`; call before serving. `store`,
// `topics` and `broker` must outlive it; the io_context must be stopped
// before it is destroyed. Thread-safe.
class ReplicationMaster {
 public:
  ReplicationMaster(net::asio::io_context& io, Broker& broker, storage::MessageStore& store,
                    TopicRegistry& topics, ReplicationOptions options);
  ~ReplicationMaster();
  ReplicationMaster(const ReplicationMaster&) = delete;
  ReplicationMaster& operator=(const ReplicationMaster&) = delete;

  // Calls done(ok) once a slave has acknowledged `end` durable,
  // done(slave_not_available) when no slave is connected (at once, or when the
  // start grace ends with none connected yet), done(flush_slave_timeout) after
  // the timeout. Any thread; `done` runs on the caller's thread, the
  // replicate handler's or the timer's.
  void await(uint64_t end, std::function<void(protocol::Code)> done);
  // Advertised addresses of the connected slaves.
  std::vector<std::string> slaves() const;
  // Highest position a connected slave acknowledged.
  uint64_t acked() const;
  // Every slave seen since start (connected ones first) and how far behind it is.
  protocol::ReplicationStatusResponse status() const;
  // Answers parked requests and every waiter (flush_slave_timeout).
  void shutdown();

 private:
  struct Slave {
    std::string addr;
    uint64_t acked = 0;
  };
  struct Waiter {
    uint64_t end;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(protocol::Code)> done;
  };
  void replicate(protocol::Frame& f, const net::Responder& r);
  // A new slave's log must be a prefix of this master's: ok, or why it is not.
  Status same_log(const protocol::ReplicateRequest& req) const;
  void sync_offsets(protocol::Frame& f, const net::Responder& r);
  void connection_closed(uint64_t id);
  void arm_timer();
  void expire();

  net::asio::io_context& io_;
  storage::MessageStore& store_;
  TopicRegistry& topics_;
  ReplicationOptions opt_;
  PullParking parking_;
  net::asio::steady_timer timer_;
  mutable std::mutex mu_;
  std::map<uint64_t, Slave> slaves_;  // by connection id
  std::map<std::string, uint64_t> gone_;  // disconnected slaves: address -> last acknowledged
  uint64_t acked_ = 0;
  std::multimap<uint64_t, Waiter> waiters_;  // by end position
  // Until then, with no slave connected since start, sends wait for one.
  std::chrono::steady_clock::time_point grace_until_;
  bool had_slave_ = false;  // a slave connected since start
  bool stopped_ = false;
  LogLimit refused_log_;  // refused slaves: said once a minute
};

// Slave side: a thread that keeps pulling the master's log into `store`,
// reconnecting with backoff after any error and resuming at its own log end.
// Also marks the store as a replica (producers' appends fail).
class ReplicationSlave {
 public:
  ReplicationSlave(storage::MessageStore& store, TopicRegistry& topics, std::string master,
                   std::string own_addr, ReplicationOptions options = {});
  ~ReplicationSlave();  // stop()
  void start();
  // Interrupts the request in flight and joins the thread. Idempotent.
  void stop();
  bool caught_up() const { return caught_up_.load(); }

 private:
  void run();
  // One replicate round trip; false (and `err`) on any failure.
  bool step(Status& err);
  // At a new connection: every topic of the master is made known here (one without
  // records would be otherwise), and, for a store holding no record (`fresh`), the
  // queues of which the master keeps no record go to empty_queues_. False (and
  // `err`) on a transport failure or a malformed answer.
  bool learn_topics(bool fresh, Status& err);
  // One sync_offsets round trip; false (and `err`) on a transport failure.
  bool sync_offsets(Status& err);
  void backoff_sleep(Millis d);

  storage::MessageStore& store_;
  TopicRegistry& topics_;
  std::string master_;
  std::string own_addr_;
  ReplicationOptions opt_;
  std::unique_ptr<net::IoThread> io_;
  std::shared_ptr<net::Channel> channel_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<bool> caught_up_{false};
  bool connected_ = false;
  // (topic, queue, next offset) of the master's queues that keep no record, for a
  // store that starts its log mid-way (learn_topics).
  std::vector<std::tuple<std::string, uint32_t, uint64_t>> empty_queues_;
  // Offset sync state (replication thread only).
  bool offsets_supported_ = true;  // false once the master answered unknown_type
  uint64_t known_version_ = protocol::kNoVersion;
  std::vector<protocol::GroupOffset> master_view_;  // the master's table as last received
  HeldOffsets held_;  // tables of the master not adopted yet
  std::chrono::steady_clock::time_point next_sync_{};
};

}  // namespace mq::broker
