#include "client/group_consumer.h"

#include <spdlog/spdlog.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "client/exec.h"
#include "client/process_queue.h"
#include "client/topic_info.h"
#include "protocol/group_messages.h"
#include "protocol/message_id.h"
#include "protocol/messages.h"
#include "util/bytes.h"

namespace mq::client {

using protocol::QueueRef;
using protocol::Type;
using Clock = std::chrono::steady_clock;

namespace {

// How long an answered heartbeat vouches for the queues it assigned, from
// when it was sent: the broker's session timeout less a margin (the broker
// counts from when it received it, later).
constexpr auto kLease = Millis(protocol::kSessionTimeoutMs - 2000);

const std::vector<Millis> kDefaultOrderlyDelays = {
    Millis(1000),   Millis(5000),   Millis(10000),  Millis(30000),  Millis(60000),   Millis(120000),
    Millis(180000), Millis(240000), Millis(300000), Millis(360000), Millis(420000),  Millis(480000),
    Millis(540000), Millis(600000), Millis(1200000), Millis(1800000), Millis(3600000), Millis(7200000)};

std::string make_client_id() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  auto id = protocol::new_message_id();
  return fmt::format("{}:{}:{}", host, ::getpid(), storage::id_to_hex(id).substr(24));
}

}  // namespace

struct GroupConsumer::Impl {
  struct Msg {
    // The record as delivered: a view into the pulled buffer it came in, which
    // `buf` keeps alive (shared by every message of one pull, never modified).
    std::shared_ptr<const std::string> buf;
    std::string_view record;
    uint64_t offset = 0;
    uint32_t reconsume = 0;  // attempts so far (orderly retries in place add to it)
    Clock::time_point not_before{};
    uint32_t gen = 0;  // Q::gen when pulled
  };
  struct Q {
    size_t node = 0;
    QueueRef ref;
    std::string pull_error_said;  // the broker's pull error last logged at warn
    ProcessQueue pq;
    uint32_t epoch = 0;
    bool ready = false;      // start offset known
    bool pulling = false;
    bool caught_up = false;
    bool dropping = false;   // no longer assigned: finish running work, commit, release
    int running = 0;         // messages dispatched and not finished
    int64_t last_committed = -1;
    uint32_t gen = 0;        // bumped by a reset: messages pulled before it count for nothing
    Clock::time_point retry_at{};
    std::deque<Msg> pending;  // orderly: waiting their turn
    bool busy = false;        // orderly: one at a time
  };
  using Key = std::tuple<size_t, std::string, uint32_t>;
  struct Node {
    size_t index = 0;
    Clock::time_point next_heartbeat{};
    bool hb_in_flight = false;
    bool joined = false;
    std::vector<QueueRef> released;
    // Failover: the master-slave pair (master first) and the one requests go to.
    std::vector<size_t> route;
    size_t serving = 0;
    int failures = 0;  // heartbeats in a row that did not reach `serving`
    // Until when the queues assigned here are ours for sure (Clock ticks): the
    // send time of the last answered heartbeat plus kLease. A member frozen
    // (SIGSTOP, a swapped-out machine) past the broker's session timeout has lost
    // them to another; on waking it starts nothing of them until a heartbeat says.
    // Shared with the workers: --orderly --exec lets a command run only within it.
    std::shared_ptr<std::atomic<int64_t>> lease_until = std::make_shared<std::atomic<int64_t>>(0);
    Clock::time_point next_probe{};
    bool probing = false;
    bool down_said = false;  // "unreachable" was said (no other broker of the pair to go on with)
  };
  struct Job {
    Key key;
    Msg msg;
    std::shared_ptr<const std::atomic<int64_t>> lease_until;  // --orderly: Node::lease_until
  };
  // Jobs waiting for a worker, taken from their queues in turn: a member
  // holding several queues runs them side by side, rather than one queue's
  // whole pull (up to 1000 messages) before the next queue's first.
  struct Jobs {
    std::map<Key, std::deque<Job>> by_queue;
    std::deque<Key> turn;  // queues with jobs, in the order they are served
    size_t size = 0;
    bool empty() const { return size == 0; }
    void push(Job j) {
      auto& d = by_queue[j.key];
      if (d.empty()) turn.push_back(j.key);
      d.push_back(std::move(j));
      ++size;
    }
    Job pop() {  // not empty()
      Key k = std::move(turn.front());
      turn.pop_front();
      auto it = by_queue.find(k);
      Job j = std::move(it->second.front());
      it->second.pop_front();
      --size;
      if (it->second.empty()) by_queue.erase(it);
      else turn.push_back(std::move(k));
      return j;
    }
    size_t erase(const Key& k) {
      auto it = by_queue.find(k);
      if (it == by_queue.end()) return 0;
      size_t n = it->second.size();
      by_queue.erase(it);
      std::erase(turn, k);
      size -= n;
      return n;
    }
  };

  Cluster& cluster;
  GroupOptions opt;
  std::string client_id, host;
  std::vector<uint32_t> tag_hashes;
  std::map<Key, std::unique_ptr<Q>> queues;
  std::vector<Node> nodes;
  GroupStats stats;
  uint64_t dispatched = 0;
  int pending_sendbacks = 0;
  int pending_commits = 0;
  bool stopping = false;
  Status fatal;
  std::string commit_refused;  // why the broker refused the last commit ("" = it took it)
  std::string init_refused;    // why a broker last refused a start offset (said once per reason)
  std::string commit_error;    // why the last commit got no answer ("" once one is answered)
  std::string sendback_failure_said;  // the send-back failure last logged at warn
  Clock::time_point sendback_failing_since{};  // of the send-back failures in a row

  // Event queue: io callbacks and exec workers post here, run() executes.
  std::shared_ptr<std::mutex> mu = std::make_shared<std::mutex>();
  std::shared_ptr<std::condition_variable> cv = std::make_shared<std::condition_variable>();
  std::shared_ptr<std::deque<std::function<void()>>> events = std::make_shared<std::deque<std::function<void()>>>();
  std::multimap<Clock::time_point, std::function<void()>> timers;

  // Exec workers.
  std::mutex job_mu;
  std::condition_variable job_cv;
  Jobs jobs;
  std::vector<std::thread> workers;
  std::atomic<bool> workers_quit{false};
  std::atomic<bool> kill_running{false};

  // Each queue's range when this consumer started, per read source. --from
  // latest and -N count from these ends, not from the end when the queue is
  // assigned (a heartbeat later): what is sent in between is not skipped,
  // and a topic created later is read from its start, as the tail does.
  std::map<std::pair<size_t, uint32_t>, std::pair<uint64_t, uint64_t>> start_ranges;  // min, max
  std::set<size_t> start_known;  // sources that answered at start

  // Blocking, before the event loop (like the tail's start). A pair whose
  // brokers all fail to answer is left out: its queues count from the end at
  // assignment, as before.
  void read_start_ranges() {
    for (auto& n : nodes) {
      for (size_t via : n.route) {
        auto info = fetch_topic_info(cluster.node(via), opt.topic, opt.request_timeout);
        if (!info) continue;
        for (auto& t : info->topics)
          if (t.topic == opt.topic)
            for (auto& qs : t.queues)
              start_ranges[{n.index, qs.queue}] = {std::min(qs.min_offset, qs.max_offset), qs.max_offset};
        start_known.insert(n.index);
        break;
      }
    }
    if (start_known.size() == nodes.size() && start_ranges.empty()) say_topic_missing(opt.topic, opt.to_end);
  }

  const GroupConsumer::OnMessage* on_message = nullptr;
  const std::function<uint64_t()>* written = nullptr;
  struct Unflushed {
    uint64_t end;
    Key key;
    uint64_t offset;
    uint32_t gen;
  };
  std::deque<Unflushed> unflushed;  // written to the output buffer, not yet to stdout

  void settle_output() {
    if (unflushed.empty()) return;
    uint64_t w = (*written)();
    while (!unflushed.empty() && unflushed.front().end <= w) {
      auto& u = unflushed.front();
      finished(u.key, u.offset, u.gen, true);
      unflushed.pop_front();
    }
  }

  Impl(Cluster& c, GroupOptions o) : cluster(c), opt(std::move(o)) {
    client_id = make_client_id();
    char h[256] = {};
    ::gethostname(h, sizeof h - 1);
    host = h;
    for (auto& t : opt.tags) tag_hashes.push_back(storage::tag_hash(t));
    if (opt.orderly_delays.empty()) opt.orderly_delays = kDefaultOrderlyDelays;
    if (opt.concurrency < 1) opt.concurrency = 1;
    if (opt.orderly) opt.concurrency = std::max(opt.concurrency, 1);
  }

  ~Impl() {
    workers_quit = true;
    kill_running = true;
    job_cv.notify_all();
    for (auto& w : workers) w.join();
  }

  void post(std::function<void()> f) {
    {
      std::lock_guard lk(*mu);
      events->push_back(std::move(f));
    }
    cv->notify_one();
  }
  // A callback that is safe to hand to the io thread: it only posts.
  template <class F>
  auto poster(F f) {
    auto m = mu;
    auto c = cv;
    auto e = events;
    return [m, c, e, f = std::move(f)](Result<protocol::Frame> r) mutable {
      {
        std::lock_guard lk(*m);
        e->push_back([f = std::move(f), r = std::move(r)]() mutable { f(std::move(r)); });
      }
      c->notify_one();
    };
  }

  // Where the requests for a pair go now: its master, or a slave while the master is away.
  BrokerNode& bn(size_t node) { return cluster.node(nodes_by_index(node).serving); }
  // The master of a node's pair (its queues' owner), also while its slave serves them.
  const std::string& master_of(size_t node) {
    Node& n = nodes_by_index(node);
    return cluster.node(n.route.empty() ? n.serving : n.route.front()).address;
  }

  // ---- heartbeats and assignment ----

  void send_heartbeat(Node& n) {
    protocol::HeartbeatRequest req;
    req.group = opt.group;
    req.client_id = client_id;
    req.host = host;
    req.pid = static_cast<uint32_t>(::getpid());
    req.orderly = opt.orderly;
    req.topics = {opt.topic, protocol::retry_topic(opt.group)};
    req.released = n.released;
    auto now = Clock::now();
    for (auto& [k, q] : queues) {
      if (q->node != n.index || !q->ready) continue;
      protocol::QueueProgress p;
      p.q = q->ref;
      p.committed = static_cast<uint64_t>(std::max<int64_t>(0, q->last_committed));
      auto b = q->pq.blocker(now);
      if (b.any) {
        p.lowest_in_flight = static_cast<int64_t>(b.offset);
        p.in_flight_age_ms = static_cast<uint64_t>(b.age.count());
        p.reconsume = b.reconsume;
        p.finished_behind = b.finished_behind;
      }
      req.progress.push_back(std::move(p));
    }
    std::string payload;
    req.encode(payload);
    n.hb_in_flight = true;
    n.next_heartbeat = now + opt.heartbeat_interval;
    auto released = n.released;
    size_t idx = n.index;
    bn(idx).channel->request(Type::heartbeat, std::move(payload), opt.request_timeout,
                             poster([this, idx, released, now](Result<protocol::Frame> r) {
                               on_heartbeat(idx, released, now, std::move(r));
                             }));
  }

  // Whether a lease (Node::lease_until) still holds; any thread.
  static bool holds(const std::atomic<int64_t>& lease_until) {
    return Clock::now().time_since_epoch().count() < lease_until.load();
  }
  // Whether q's broker confirmed our ownership recently enough.
  bool leased(const Q& q) { return holds(*nodes_by_index(q.node).lease_until); }

  void on_heartbeat(size_t idx, const std::vector<QueueRef>& released, Clock::time_point sent,
                    Result<protocol::Frame> r) {
    Node& n = nodes_by_index(idx);
    n.hb_in_flight = false;
    track_route(n, static_cast<bool>(r));
    if (!r || r->header.status != protocol::Code::ok) {
      Status s = r ? protocol::status_from_response(r->header.status, r->payload) : r.status();
      spdlog::debug("heartbeat to {}: {}", bn(idx).address, s.to_string());
      if (r && (r->header.status == protocol::Code::unknown_type || r->header.status == protocol::Code::denied ||
                r->header.status == protocol::Code::bad_request))
        fatal = s.with_context(bn(idx).address);
      return;
    }
    protocol::HeartbeatResponse resp;
    if (!resp.decode(r->payload)) {
      spdlog::warn("heartbeat to {}: malformed answer", bn(idx).address);
      return;
    }
    // The broker has seen these releases now.
    std::erase_if(n.released, [&](const QueueRef& q) {
      return std::find(released.begin(), released.end(), q) != released.end();
    });
    n.joined = true;
    int64_t until = (sent + kLease).time_since_epoch().count();
    if (until > n.lease_until->load()) n.lease_until->store(until);  // (only this thread stores)
    std::set<QueueRef> assigned(resp.assigned.begin(), resp.assigned.end());
    for (auto& ref : resp.assigned) {
      Key k{idx, ref.topic, ref.queue};
      if (!queues.count(k)) {
        if (stopping) continue;  // not taking new work
        auto q = std::make_unique<Q>();
        q->node = idx;
        q->ref = ref;
        Q* qp = q.get();
        queues.emplace(k, std::move(q));
        spdlog::debug("{}: took {}:{}", bn(idx).address, ref.topic, ref.queue);
        fetch_offset(qp);
      } else if (queues[k]->dropping) {
        // Assigned again before we let go: keep it. Messages that were waiting
        // their turn (orderly) were dropped: pull again from the commit point.
        Q& q = *queues[k];
        q.dropping = false;
        if (opt.orderly) q.pq.reset(q.pq.commit_offset());
      }
    }
    for (auto& [k, q] : queues)
      if (q->node == idx && !assigned.count(q->ref) && !q->dropping) {
        q->dropping = true;
        drop_pending(*q);
        drop_queued_jobs(*q);  // not started: left unfinished for the next owner
        spdlog::debug("{}: giving up {}:{}", bn(idx).address, q->ref.topic, q->ref.queue);
      }
    for (auto& ref : resp.reset) {
      auto it = queues.find({idx, ref.topic, ref.queue});
      if (it == queues.end()) continue;
      // From now on nothing pulled before the reset starts or is committed,
      // even before the new offset is known.
      forget_in_flight(*it->second);
      if (it->second->ready) fetch_offset(it->second.get(), /*after_reset=*/true);
    }
  }

  Node& nodes_by_index(size_t idx) {
    for (auto& n : nodes)
      if (n.index == idx) return n;
    return nodes.front();
  }

  void drop_pending(Q& q) {
    // Messages not started yet stay unfinished in the ProcessQueue, so the
    // commit cannot pass them; the next owner gets them.
    q.pending.clear();
  }

  void fetch_offset(Q* q, bool after_reset = false) {
    q->ready = false;
    protocol::QueryOffsetsRequest req;
    req.group = opt.group;
    req.queues = {q->ref};
    std::string payload;
    req.encode(payload);
    Key k{q->node, q->ref.topic, q->ref.queue};
    bn(q->node).channel->request(
        Type::query_offsets, std::move(payload), opt.request_timeout,
        poster([this, k, after_reset](Result<protocol::Frame> r) {
          auto it = queues.find(k);
          if (it == queues.end()) return;
          Q* q = it->second.get();
          protocol::QueryOffsetsResponse resp;
          if (!r || r->header.status != protocol::Code::ok || !resp.decode(r->payload) || resp.entries.size() != 1) {
            timers.emplace(Clock::now() + Millis(1000), [this, k, after_reset] {
              auto it = queues.find(k);
              if (it != queues.end()) fetch_offset(it->second.get(), after_reset);
            });
            return;
          }
          auto& e = resp.entries[0];
          if (e.offset >= 0) {
            if (after_reset) spdlog::info("{}:{}: offset reset to {}", q->ref.topic, q->ref.queue, e.offset);
            start_at(*q, static_cast<uint64_t>(e.offset), e.epoch);
          } else {
            init_offset(q);
          }
        }));
  }

  void start_at(Q& q, uint64_t offset, uint32_t epoch) {
    forget_in_flight(q);
    q.pq.reset(offset);
    q.epoch = epoch;
    q.last_committed = static_cast<int64_t>(offset);
    q.ready = true;
    q.caught_up = false;
  }

  // A reset (or a new start offset): messages of q not started yet are dropped
  // (pulled again when the new offset is behind them), and those still running
  // or being written finish without touching q's in-flight state (finished()
  // and on_exec_done() compare generations), so none of them is committed.
  void forget_in_flight(Q& q) {
    ++q.gen;
    drop_queued_jobs(q);
    q.pending.clear();
  }

  // Jobs of this queue no worker has started yet.
  void drop_queued_jobs(Q& q) {
    std::lock_guard lk(job_mu);
    auto n = jobs.erase(Key{q.node, q.ref.topic, q.ref.queue});
    q.running -= static_cast<int>(n);
    dispatched -= n;
    if (n > 0) q.busy = false;  // orderly: the job holding the queue never started
  }

  // A queue the group has no offset for: --from decides, then it is committed
  // (init_only: if another member got there first, its value wins).
  void init_offset(Q* q) {
    bool retry = q->ref.topic != opt.topic;
    Key k{q->node, q->ref.topic, q->ref.queue};
    auto commit_init = [this, k](uint64_t off) {
      auto it = queues.find(k);
      if (it == queues.end()) return;
      Q* q = it->second.get();
      protocol::CommitRequest req;
      req.group = opt.group;
      req.client_id = client_id;
      req.init_only = true;
      req.entries.push_back({q->ref, static_cast<int64_t>(off), 0});
      std::string payload;
      req.encode(payload);
      bn(q->node).channel->request(Type::commit_offsets, std::move(payload), opt.request_timeout,
                                   poster([this, k](Result<protocol::Frame> r) {
                                     auto it = queues.find(k);
                                     if (it == queues.end()) return;
                                     protocol::CommitResponse resp;
                                     if (!r || r->header.status != protocol::Code::ok || !resp.decode(r->payload) ||
                                         resp.results.size() != 1 || resp.results[0].offset < 0) {
                                       // A broker that refuses it (offsets not being saved): said once per
                                       // reason; the queue waits, since an unsaved start could be lost.
                                       if (r && r->header.status != protocol::Code::ok) {
                                         Status why = protocol::status_from_response(r->header.status, r->payload);
                                         // -e reads what is there now and ends: it does not wait for
                                         // the broker to save offsets again (it waited forever).
                                         if (opt.to_end) {
                                           fatal = why.with_context(fmt::format(
                                               "cannot start {}:{}: {} refused the group's start offset",
                                               it->second->ref.topic, it->second->ref.queue,
                                               bn(it->second->node).address));
                                           return;
                                         }
                                         if (why.message() != init_refused)
                                           spdlog::warn("cannot start {}:{}: {} refused the group's start offset: {} "
                                                        "(will retry)",
                                                        it->second->ref.topic, it->second->ref.queue,
                                                        bn(it->second->node).address, why.message());
                                         init_refused = why.message();
                                       }
                                       timers.emplace(Clock::now() + Millis(1000), [this, k] {
                                         auto it = queues.find(k);
                                         if (it != queues.end()) fetch_offset(it->second.get());
                                       });
                                       return;
                                     }
                                     start_at(*it->second, static_cast<uint64_t>(resp.results[0].offset),
                                              resp.results[0].epoch);
                                   }));
    };
    if (retry || opt.from == FromKind::earliest) return commit_init(0);
    if (opt.from == FromKind::offset) return commit_init(opt.from_offset);
    if (opt.from == FromKind::time) {
      protocol::OffsetForTimeRequest req{q->ref.topic, q->ref.queue, opt.from_ms};
      std::string payload;
      req.encode(payload);
      bn(q->node).channel->request(Type::offset_for_time, std::move(payload), opt.request_timeout,
                                   poster([this, k, commit_init](Result<protocol::Frame> r) {
                                     uint64_t off = 0;
                                     if (r && r->header.status == protocol::Code::ok && r->payload.size() == 8) {
                                       off = load_u64(r->payload.data());
                                       commit_init(off);
                                     } else {
                                       timers.emplace(Clock::now() + Millis(1000), [this, k] {
                                         auto it = queues.find(k);
                                         if (it != queues.end()) fetch_offset(it->second.get());
                                       });
                                     }
                                   }));
      return;
    }
    // latest: the queue's end at start; back: that many before it
    uint64_t back = opt.from == FromKind::back ? opt.from_offset : 0;
    if (start_known.count(q->node)) {
      auto it = start_ranges.find({q->node, q->ref.queue});
      if (it == start_ranges.end()) return commit_init(0);  // created since: all of it
      auto [min, end] = it->second;
      return commit_init(end - std::min(back, end - min));
    }
    std::string payload;
    ByteWriter(payload).str16(q->ref.topic);
    uint32_t queue = q->ref.queue;
    bn(q->node).channel->request(
        Type::topic_info, std::move(payload), opt.request_timeout,
        poster([this, k, queue, back, commit_init](Result<protocol::Frame> r) {
          protocol::TopicInfoResponse resp;
          if (r && r->header.status == protocol::Code::ok && resp.decode(r->payload)) {
            uint64_t end = 0, min = 0;
            for (auto& t : resp.topics)
              for (auto& qs : t.queues)
                if (qs.queue == queue) {
                  end = qs.max_offset;
                  min = std::min(qs.min_offset, end);
                }
            commit_init(end - std::min(back, end - min));
          } else {
            timers.emplace(Clock::now() + Millis(1000), [this, k] {
              auto it = queues.find(k);
              if (it != queues.end()) fetch_offset(it->second.get());
            });
          }
        }));
  }

  // ---- failover between a master and its slaves ----
  // Two heartbeats in a row that do not reach the broker move the pair to the
  // next of its brokers (master -> slave): the queues held stay as they are
  // and continue at their position there (identical logs, offsets replicated),
  // the broker there assigns the queues anew. While a slave serves, the
  // master is probed every 2 s and takes over again once it answers.

  void track_route(Node& n, bool reached) {
    if (reached) {
      n.failures = 0;
      if (n.down_said) spdlog::info("{} answers again: its queues are consumed again", cluster.node(n.serving).address);
      n.down_said = false;
      return;
    }
    ++n.failures;
    if (n.route.size() < 2) {
      // Nothing to go on with: said once (a member that waited in silence looked hung).
      if (n.failures >= 3 && !n.down_said && !stopping)
        spdlog::warn("{} unreachable: its queues wait for it (no slave listed or known; retrying)",
                     cluster.node(n.serving).address);
      n.down_said = n.down_said || n.failures >= 3;
      return;
    }
    if (n.failures < 2) return;
    auto it = std::find(n.route.begin(), n.route.end(), n.serving);
    size_t next = n.route[(static_cast<size_t>(it - n.route.begin()) + 1) % n.route.size()];
    spdlog::warn("{} unreachable: continuing on {}{}", cluster.node(n.serving).address, cluster.node(next).address,
                 next == n.route.front() ? "" : " (a slave: reads and commits, failed messages wait)");
    switch_to(n, next);
  }

  void switch_to(Node& n, size_t to) {
    n.serving = to;
    n.failures = 0;
    n.next_heartbeat = Clock::now();
    n.next_probe = Clock::now() + Millis(2000);
    for (auto& [k, q] : queues)
      if (q->node == n.index) {
        q->retry_at = {};        // pull from the new broker at once
        q->last_committed = -1;  // and tell it where we are at the next commit
      }
  }

  void probe_master(Node& n, Clock::time_point now) {
    if (n.route.empty() || n.serving == n.route.front() || n.probing || now < n.next_probe || stopping) return;
    n.probing = true;
    n.next_probe = now + Millis(2000);
    size_t idx = n.index, master = n.route.front();
    std::string payload;
    ByteWriter(payload).str16(cluster.channel_options().client_name);
    cluster.node(master).channel->request(
        Type::hello, std::move(payload), opt.request_timeout, poster([this, idx, master](Result<protocol::Frame> r) {
          Node& n = nodes_by_index(idx);
          n.probing = false;
          protocol::HelloResponse h;
          if (!r || r->header.status != protocol::Code::ok || !h.decode(r->payload) ||
              h.role != protocol::Role::master || n.serving == master)
            return;
          spdlog::info("{} is back: continuing on it", cluster.node(master).address);
          switch_to(n, master);
        }));
  }

  // ---- pulling and dispatch ----

  bool may_pull(const Q& q) {
    if (!q.ready || q.pulling || q.dropping || stopping || !leased(q)) return false;
    if (opt.count && dispatched >= opt.count) return false;
    if (Clock::now() < q.retry_at) return false;
    return q.pq.may_pull(opt.max_span, opt.max_buffered_msgs, opt.max_buffered_bytes);
  }

  void issue_pull(Q& q) {
    protocol::PullRequest req;
    req.topic = q.ref.topic;
    req.queue = q.ref.queue;
    req.offset = q.pq.next_pull();
    req.max_msgs = static_cast<uint32_t>(std::min<uint64_t>(q.pq.pull_budget(opt.max_span),
                                                             std::min<size_t>(opt.max_buffered_msgs, 1000)));
    req.max_bytes = 4u << 20;
    req.wait_ms = (opt.to_end && !q.caught_up) ? 0 : opt.wait_ms;
    if (q.ref.topic == opt.topic) req.tag_hashes = tag_hashes;
    std::string payload;
    req.encode(payload);
    q.pulling = true;
    Key k{q.node, q.ref.topic, q.ref.queue};
    uint64_t asked = req.offset;
    bn(q.node).channel->request(Type::pull, std::move(payload), opt.request_timeout + Millis(req.wait_ms),
                                poster([this, k, asked](Result<protocol::Frame> r) { on_pull(k, asked, std::move(r)); }));
  }

  bool tag_ok(const storage::RecordView& v) const {
    if (opt.tags.empty() || v.topic != opt.topic) return true;
    for (auto& t : opt.tags)
      if (v.tag == t) return true;
    return false;
  }

  void on_pull(const Key& k, uint64_t asked, Result<protocol::Frame> r) {
    auto it = queues.find(k);
    if (it == queues.end()) return;
    Q& q = *it->second;
    q.pulling = false;
    if (q.dropping || !q.ready || q.pq.next_pull() != asked) return;  // stale answer (reset meanwhile)
    if (!leased(q)) return;  // answered while we were frozen: pulled again once confirmed
    protocol::PullResponse resp;
    if (!r || r->header.status != protocol::Code::ok || !resp.decode(r->payload)) {
      Status s = !r ? r.status()
                    : (r->header.status != protocol::Code::ok ? protocol::status_from_response(r->header.status, r->payload)
                                                              : Status::corruption("malformed pull answer"));
      // The broker answered with an error (e.g. a damaged record): said once per
      // reason, so that a stuck queue is not silent. A lost connection is the
      // fail-over's business.
      if (r && s.to_string() != q.pull_error_said) {
        spdlog::warn("pull {}:{} from {}: {} (retrying)", q.ref.topic, q.ref.queue, bn(q.node).address, s.to_string());
        q.pull_error_said = s.to_string();
      } else {
        spdlog::debug("pull {}:{} from {}: {}", q.ref.topic, q.ref.queue, bn(q.node).address, s.to_string());
      }
      q.retry_at = Clock::now() + Millis(500);
      return;
    }
    q.pull_error_said.clear();
    // Each record is checked once, here (decode_record: its checksum); later steps
    // only view it.
    auto buf = std::make_shared<const std::string>(std::move(resp.records));
    std::vector<storage::RecordView> recs;
    std::string bad;  // why the record after recs is not one ("": all were)
    for (std::string_view rest = *buf; !rest.empty();) {
      storage::RecordView v;
      if (storage::decode_record(rest, v, &bad) != storage::DecodeResult::ok) {
        if (bad.empty()) bad = "truncated record";
        break;
      }
      rest.remove_prefix(v.bytes.size());
      recs.push_back(v);
    }
    if (std::string why; !answers_pull(q, asked, resp, recs, bad.empty(), why)) {
      spdlog::warn("pull {}:{} from {}: {}; pulling again", q.ref.topic, q.ref.queue, bn(q.node).address, why);
      q.retry_at = Clock::now() + Millis(500);
      return;
    }
    if (asked < resp.min_offset)  // the broker skipped them: said, not silence
      spdlog::warn("{}:{} on {}: offsets {} to {} were deleted (--retention) before group {} consumed them: "
                   "{} messages skipped",
                   q.ref.topic, q.ref.queue, bn(q.node).address, asked, resp.min_offset - 1, opt.group,
                   resp.min_offset - asked);
    auto now = Clock::now();
    for (auto& v : recs) {
      if (v.offset < q.pq.next_pull()) continue;
      if (!tag_ok(v)) {
        q.pq.advance_to(v.offset + 1);
        continue;
      }
      q.pq.add(v.offset, v.reconsume, v.bytes.size(), now);
      Msg m{buf, v.bytes, v.offset, v.reconsume, {}, q.gen};
      if (opt.orderly)
        q.pending.push_back(std::move(m));
      else
        dispatch(k, q, std::move(m));
    }
    if (!bad.empty()) {
      spdlog::warn("pull {}:{} from {}: bad record: {}", q.ref.topic, q.ref.queue, bn(q.node).address, bad);
      q.retry_at = now + Millis(1000);
    } else {
      q.pq.advance_to(resp.next_offset);
    }
    q.caught_up = resp.count == 0 && resp.next_offset >= resp.max_offset;
  }

  // Whether a pull answer is one for `asked`: records from max(asked, min)
  // (the broker skips what retention deleted) in offset order, dense unless a
  // tag filter skips some, next_offset past them and not beyond the queue's
  // end unless we asked beyond it. An answer for another offset (the request
  // damaged on the way) would move the commit point past records never seen.
  // recs: the answer's records up to the first that is not one (whole: all were).
  bool answers_pull(const Q& q, uint64_t asked, const protocol::PullResponse& resp,
                    const std::vector<storage::RecordView>& recs, bool whole, std::string& why) const {
    bool filtered = q.ref.topic == opt.topic && !tag_hashes.empty();
    uint64_t from = std::max(asked, resp.min_offset), expect = from;
    for (auto& v : recs) {
      if (filtered ? v.offset < expect : v.offset != expect) {
        why = fmt::format("answer for another offset (asked {}, record {} where {} was due)", asked, v.offset, expect);
        return false;
      }
      expect = v.offset + 1;
    }
    bool next_ok = filtered ? resp.next_offset >= expect : (whole ? resp.next_offset == expect : true);
    if (!next_ok || (resp.next_offset > resp.max_offset && resp.next_offset != from) ||
        (whole && recs.size() != resp.count)) {
      why = fmt::format("answer for another offset (asked {}, next {}, end {})", asked, resp.next_offset,
                        resp.max_offset);
      return false;
    }
    return true;
  }

  // The topic a person should see: the original one for retried messages.
  static void present(storage::RecordView& v) {
    std::string_view origin;
    if (v.topic.substr(0, 1) == "%" && v.prop(protocol::kPropOriginTopic, origin)) v.topic = origin;
  }

  void dispatch(const Key& k, Q& q, Msg m) {
    if (opt.count && dispatched >= opt.count) return;  // stays unfinished: not committed past
    if (stopping) return;  // a pull answered after the stop: the same
    ++dispatched;
    ++q.running;
    if (opt.exec.empty()) {
      storage::RecordView v;
      if (!storage::view_record(m.record, v)) {  // checked in on_pull
        --q.running;
        return;
      }
      present(v);
      auto end = (*on_message)(v, master_of(q.node));
      if (!end) {
        --q.running;
        --dispatched;
        stopping = true;  // output closed: this message was not consumed
        return;
      }
      unflushed.push_back({*end, k, m.offset, m.gen});
      settle_output();
      return;
    }
    {
      std::lock_guard lk(job_mu);
      jobs.push(Job{k, std::move(m), opt.orderly ? nodes_by_index(q.node).lease_until : nullptr});
    }
    job_cv.notify_one();
  }

  void worker() {
    for (;;) {
      Job job;
      {
        std::unique_lock lk(job_mu);
        job_cv.wait(lk, [&] { return workers_quit || !jobs.empty(); });
        if (workers_quit && jobs.empty()) return;
        job = jobs.pop();
      }
      auto v = storage::parse_record(job.msg.record);
      Result<ExecResult> res = Status::corruption("bad record");
      if (v) {
        present(*v);
        std::string_view oq, oo;
        std::string queue = std::to_string(v->queue), offset = std::to_string(v->offset);
        if (v->prop(protocol::kPropOriginQueue, oq)) queue.assign(oq);
        if (v->prop(protocol::kPropOriginOffset, oo)) offset.assign(oo);
        std::vector<std::pair<std::string, std::string>> env = {
            {"MQ_TOPIC", std::string(v->topic)},
            {"MQ_QUEUE", queue},
            {"MQ_OFFSET", offset},
            {"MQ_MSG_ID", storage::id_to_hex(v->id)},
            {"MQ_KEY", std::string(v->key)},
            {"MQ_TAG", std::string(v->tag)},
            {"MQ_RECONSUME", std::to_string(job.msg.reconsume)},
            {"MQ_GROUP", opt.group},
        };
        // --orderly: a member frozen after taking the message (SIGSTOP, a swapped-out
        // machine) may have lost the queue to another, which runs it and what follows:
        // on waking its command runs only while the lease still holds.
        std::function<bool()> may_start;
        if (job.lease_until) may_start = [lease = job.lease_until] { return holds(*lease); };
        res = run_command(opt.exec, v->body, env, opt.consume_timeout, &kill_running, may_start);
      }
      post([this, job = std::move(job), res = std::move(res)]() mutable { on_exec_done(job, res); });
    }
  }

  // Standard output is a pipe or socket whose reader has gone.
  static bool stdout_gone() {
    pollfd p{STDOUT_FILENO, POLLOUT, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0;
  }

  void on_exec_done(Job& job, const Result<ExecResult>& res) {
    auto it = queues.find(job.key);
    if (it == queues.end()) return;
    Q& q = *it->second;
    if (job.msg.gen != q.gen) {  // pulled before a reset: neither committed nor retried
      finished(job.key, job.msg.offset, job.msg.gen, res && res->ok());
      return;
    }
    if (res && res->ok()) {
      finished(job.key, job.msg.offset, job.msg.gen, true);
      return;
    }
    if (res && res->not_started) {
      // The lease lapsed before it ran (--orderly): it stays first in its queue, run
      // once a heartbeat confirms the queue is still ours, or left to its next owner.
      --q.running;
      --dispatched;
      q.busy = false;
      return;
    }
    // Killed by SIGPIPE, or a shell saying its command was (exit 128+13: sh -c runs the
    // command as its child unless it execs it).
    bool broken_pipe = res && (res->signal == SIGPIPE || (res->signal == 0 && res->exit_code == 128 + SIGPIPE));
    if (broken_pipe && stdout_gone()) {
      // It wrote to our standard output, whose reader is gone (| head -n 3): the end of
      // the run, as when the bodies are written there. Not consumed, not failed:
      // delivered again later.
      if (!stopping) spdlog::debug("standard output closed: stopping");
      stopping = true;
      output_gone = true;
      --q.running;
      if (opt.orderly) q.busy = false;
      return;
    }
    std::string why = res ? res->describe() : res.status().to_string();
    bool dlq_now = res && res->exit_code == kExitDeadLetter && !res->timed_out && res->signal == 0;
    auto v = storage::parse_record(job.msg.record);
    spdlog::debug("{}:{}@{} failed ({}), reconsume {}", q.ref.topic, q.ref.queue, job.msg.offset, why,
                  job.msg.reconsume);
    ++stats.failed;
    if (kill_running && stopping) {
      // Terminated because we are stopping: not consumed, not committed past, redelivered later.
      --q.running;
      if (opt.orderly) q.busy = false;
      return;
    }
    if (opt.orderly && !dlq_now) {
      uint32_t next = job.msg.reconsume + 1;
      if (next <= opt.max_retries) {
        size_t level = std::min<size_t>(next, opt.orderly_delays.size());
        job.msg.reconsume = next;
        q.pq.retried(job.msg.offset, next);  // mq-offset show names its attempts
        job.msg.not_before = Clock::now() + opt.orderly_delays[level - 1];
        --q.running;
        --dispatched;
        if (!q.pending.empty() && q.pending.front().offset == job.msg.offset)
          q.pending.front() = std::move(job.msg);  // retried in place: it holds the queue
        q.busy = false;
        return;
      }
    }
    send_back(job.key, std::move(job.msg), dlq_now, why);
  }

  void send_back(const Key& k, Msg m, bool dlq_now, const std::string& why) {
    auto it = queues.find(k);
    if (it == queues.end()) return;
    Q& q = *it->second;
    protocol::SendBackRequest req;
    req.group = opt.group;
    req.max_retries = opt.max_retries;
    req.dead_letter_now = dlq_now || (opt.orderly && m.reconsume >= opt.max_retries);
    req.reason = why;
    req.record = m.record;
    // the in-place retries count as attempts (on our copy: the pulled buffer is shared)
    if (opt.orderly && m.reconsume > 0) storage::set_record_reconsume(req.record.data(), m.reconsume);
    std::string payload;
    req.encode(payload);
    ++pending_sendbacks;
    // Dead-lettered: asked for, or (the broker's rule) retried too often already.
    bool dlq = req.dead_letter_now || static_cast<uint64_t>(m.reconsume) + 1 > static_cast<uint64_t>(opt.max_retries);
    bn(q.node).channel->request(
        Type::send_back, std::move(payload), opt.request_timeout,
        poster([this, k, m = std::move(m), dlq_now, why, dlq](Result<protocol::Frame> r) mutable {
          --pending_sendbacks;
          if (r && r->header.status == protocol::Code::ok) {
            sendback_failure_said.clear();
            sendback_failing_since = {};
            if (dlq) ++stats.dead_lettered;
            finished(k, m.offset, m.gen, false);
            return;
          }
          Status s = r ? protocol::status_from_response(r->header.status, r->payload) : r.status();
          // A run that is to end (-e, -n) cannot wait for the broker to take failed messages
          // back (a full disk may last): once send-backs have failed for 10 s (a broker that
          // restarts meanwhile is waited for) it ends, exit 1, and what was not sent back stays
          // unfinished (not committed past: delivered again later).
          auto now = Clock::now();
          if (sendback_failing_since == Clock::time_point{}) sendback_failing_since = now;
          if ((opt.to_end || opt.count) && now - sendback_failing_since >= Millis(10000) && fatal.is_ok()) {
            fatal = Status::unavailable(fmt::format(
                "a failed message could not be sent back for its retry: {} (it will be delivered again)", s.message()));
            return;
          }
          if (stopping) {
            // Not retried now: it stays unfinished, so it is delivered again later.
            spdlog::warn("sending a failed message back failed ({}); it will be delivered again", s.to_string());
            if (auto it = queues.find(k); it != queues.end()) {
              --it->second->running;
              if (opt.orderly) it->second->busy = false;
            }
            return;
          }
          // Said once per reason (a master that is down fails every one of them alike).
          if (s.to_string() != sendback_failure_said) {
            spdlog::warn("sending a failed message back failed ({}); retrying", s.to_string());
            sendback_failure_said = s.to_string();
          } else {
            spdlog::debug("sending a failed message back failed ({}); retrying", s.to_string());
          }
          ++pending_sendbacks;
          timers.emplace(Clock::now() + Millis(1000), [this, k, m = std::move(m), dlq_now, why]() mutable {
            --pending_sendbacks;
            send_back(k, std::move(m), dlq_now, why);
          });
        }));
  }

  // gen: the generation the message was pulled in; one from before a reset
  // only stops counting as running (the in-flight state it belonged to is gone).
  void finished(const Key& k, uint64_t offset, uint32_t gen, bool ok) {
    auto it = queues.find(k);
    if (it == queues.end()) return;
    Q& q = *it->second;
    --q.running;
    if (ok) ++stats.consumed;
    if (opt.orderly) q.busy = false;  // it held the queue, whichever generation
    if (gen != q.gen) return;
    q.pq.finish(offset);
    if (opt.orderly && !q.pending.empty() && q.pending.front().offset == offset) q.pending.pop_front();
  }

  void run_orderly() {
    auto now = Clock::now();
    for (auto& [k, q] : queues) {
      if (q->busy || q->pending.empty() || q->dropping || stopping || !leased(*q)) continue;
      if (q->pending.front().not_before > now) continue;
      q->busy = true;
      Msg m = q->pending.front();  // stays at the front until finished
      dispatch(k, *q, std::move(m));
      if (!opt.exec.empty()) continue;
    }
  }

  // ---- commits ----

  // Early commits: one at a time, and none while commits fail (the interval retries those).
  bool span_commit_due() const {
    if (pending_commits > 0 || !commit_error.empty() || !commit_refused.empty()) return false;
    for (auto& [k, q] : queues) {
      if (!q->ready) continue;
      auto off = static_cast<int64_t>(q->pq.commit_offset());
      if (q->last_committed >= 0 && off - q->last_committed >= static_cast<int64_t>(opt.max_span)) return true;
    }
    return false;
  }

  void commit_all(bool wait) {
    std::map<size_t, protocol::CommitRequest> reqs;
    std::map<size_t, std::vector<Key>> keys;
    for (auto& [k, q] : queues) {
      if (!q->ready) continue;
      int64_t off = static_cast<int64_t>(q->pq.commit_offset());
      if (off == q->last_committed) continue;
      auto& r = reqs[q->node];
      r.group = opt.group;
      r.client_id = client_id;
      r.entries.push_back({q->ref, off, q->epoch});
      keys[q->node].push_back(k);
    }
    for (auto& [node, req] : reqs) {
      std::string payload;
      req.encode(payload);
      ++pending_commits;
      auto ks = keys[node];
      auto sent = req.entries;
      bn(node).channel->request(Type::commit_offsets, std::move(payload), opt.request_timeout,
                                poster([this, ks, sent, node](Result<protocol::Frame> r) {
                                  --pending_commits;
                                  protocol::CommitResponse resp;
                                  if (r && r->header.status != protocol::Code::ok) {
                                    // The broker refused it (e.g. it cannot save offsets): say so,
                                    // once per reason; a refused last commit fails the run.
                                    Status why = protocol::status_from_response(r->header.status, r->payload);
                                    if (why.message() != commit_refused)
                                      spdlog::warn("commit refused by {}: {} (will retry)", bn(node).address,
                                                   why.message());
                                    commit_refused = why.message();
                                    return;
                                  }
                                  if (!r || !resp.decode(r->payload) || resp.results.size() != ks.size()) {
                                    commit_error = r ? std::string("malformed answer from ") + bn(node).address
                                                     : reach_error(r.status()).message();
                                    spdlog::debug("commit failed: {}; will retry", commit_error);
                                    return;
                                  }
                                  commit_refused.clear();
                                  commit_error.clear();
                                  ++stats.commits;
                                  for (size_t i = 0; i < ks.size(); ++i) {
                                    auto it = queues.find(ks[i]);
                                    if (it == queues.end()) continue;
                                    Q& q = *it->second;
                                    auto& res = resp.results[i];
                                    if (res.accepted) {
                                      // What the broker holds now: when that is not what was sent (the
                                      // request damaged on the way), the next round commits again.
                                      q.last_committed = res.offset;
                                      if (res.offset > sent[i].offset)
                                        spdlog::warn("{}:{}: broker committed {} for {}; committing again",
                                                     q.ref.topic, q.ref.queue, res.offset, sent[i].offset);
                                    } else if (res.epoch != q.epoch && res.offset >= 0) {
                                      spdlog::info("{}:{}: offset reset to {} by an admin", q.ref.topic, q.ref.queue,
                                                   res.offset);
                                      start_at(q, static_cast<uint64_t>(res.offset), res.epoch);
                                    }
                                  }
                                }));
    }
    if (!wait) return;
    auto deadline = Clock::now() + opt.request_timeout;
    while (pending_commits > 0 && Clock::now() < deadline) drain(Millis(50));
  }

  // Runs queued events, waiting up to `wait` for the first. Returns how many ran.
  size_t drain(Millis wait) {
    std::deque<std::function<void()>> batch;
    {
      std::unique_lock lk(*mu);
      if (events->empty() && wait.count() > 0) cv->wait_for(lk, wait);
      batch.swap(*events);
    }
    for (auto& f : batch) f();
    return batch.size();
  }

  void run_timers() {
    auto now = Clock::now();
    while (!timers.empty() && timers.begin()->first <= now) {
      auto f = std::move(timers.begin()->second);
      timers.erase(timers.begin());
      f();
    }
  }

  // Queues we gave up: once nothing runs, commit and report them released.
  void settle_dropped() {
    for (auto it = queues.begin(); it != queues.end();) {
      Q& q = *it->second;
      if (q.dropping && q.running == 0 && !q.pulling) {
        int64_t off = static_cast<int64_t>(q.pq.commit_offset());
        if (q.ready && off != q.last_committed) {
          protocol::CommitRequest req;
          req.group = opt.group;
          req.client_id = client_id;
          req.entries.push_back({q.ref, off, q.epoch});
          std::string payload;
          req.encode(payload);
          bn(q.node).channel->request(Type::commit_offsets, std::move(payload), opt.request_timeout,
                                      [](Result<protocol::Frame>) {});
        }
        auto& n = nodes_by_index(q.node);
        n.released.push_back(q.ref);
        n.next_heartbeat = Clock::now();  // tell the broker soon so the next owner can start
        it = queues.erase(it);
      } else {
        ++it;
      }
    }
  }

  bool all_caught_up() const {
    for (auto& n : nodes)
      if (!n.joined) return false;
    if (pending_sendbacks > 0) return false;
    for (auto& [k, q] : queues)
      if (!q->ready || !q->caught_up || q->running > 0 || q->pq.unfinished() > 0 || !q->pending.empty())
        return false;
    return true;
  }

  int running_total() const {
    int n = 0;
    for (auto& [k, q] : queues) n += q->running;
    return n;
  }

  // Stopping (a signal, or a normal end): nothing more is pulled or started;
  // queued messages stay unfinished (not committed past, delivered again
  // later). Running commands get stop_grace to finish, then are terminated
  // (SIGTERM, SIGKILL after kKillGrace) and count as unfinished too.
  bool wound_down = false;
  bool output_gone = false;  // stopping because standard output cannot take more (its reader left)
  Clock::time_point grace_end{};
  void wind_down() {
    if (!wound_down) {
      wound_down = true;
      for (auto& [k, q] : queues) drop_queued_jobs(*q);
      grace_end = Clock::now() + opt.stop_grace;
      if (int n = running_total(); n > 0 && !opt.exec.empty() && !output_gone)  // a normal end: quiet
        spdlog::info("stopping: waiting up to {} for {} running command{}", format_duration(opt.stop_grace), n,
                     n == 1 ? "" : "s");
    }
    if (!kill_running && !opt.exec.empty() && Clock::now() >= grace_end && running_total() > 0) {
      int n = running_total();
      spdlog::warn("stopping: terminating {} command{} still running (delivered again later)", n, n == 1 ? "" : "s");
      kill_running = true;
    }
  }

  Status run(const GroupConsumer::OnMessage& msg_cb, const std::function<uint64_t()>& written_cb,
             const std::function<bool()>& on_idle, const std::atomic<bool>& stop) {
    on_message = &msg_cb;
    written = &written_cb;
    for (size_t i : cluster.read_sources()) {
      Node n{i, Clock::now(), false, false, {}};
      n.route = cluster.pair_of(i);
      cluster.say_if_slave_read(i);  // as a tail says it (a member moving later says so too)
      n.serving = i;
      nodes.push_back(std::move(n));
    }
    if (nodes.empty()) return Status::unavailable("no broker reachable");
    // A listed master that is down with no slave up: its queues are not consumed by
    // this run (said now; with -e the run ends with it, exit 1).
    Status absent;
    if (auto missing = cluster.unaccounted(); !missing.empty()) {
      absent = unaccounted_error(cluster, missing,
                                 opt.to_end ? "queues are not consumed" : "queues are not consumed by this run");
      if (!opt.to_end) spdlog::warn("{}", absent.message());
    }
    read_start_ranges();
    if (!opt.exec.empty())
      for (int i = 0; i < opt.concurrency; ++i) workers.emplace_back([this] { worker(); });
    auto next_commit = Clock::now() + opt.commit_interval;
    bool idle_flushed = true;
    auto next_idle_look = Clock::now();
    for (;;) {
      if (!fatal.is_ok()) {
        stopping = true;
        break;
      }
      if (stop.load()) stopping = true;
      if (opt.count && dispatched >= opt.count && running_total() == 0 && pending_sendbacks == 0) stopping = true;
      if (opt.to_end && all_caught_up()) stopping = true;
      if (stopping) wind_down();
      if (stopping && !unflushed.empty()) {
        bool alive = on_idle();
        settle_output();
        // A reader that still takes the output gets it (heartbeats go on meanwhile)
        // until the stop's grace ends; what stdout did not take then stays
        // unfinished: forget it, it is not committed past.
        bool reader_takes_it = !unflushed.empty() && alive && !(stop.load() && Clock::now() >= grace_end);
        if (!reader_takes_it) {
          for (auto& u : unflushed) {
            auto it = queues.find(u.key);
            if (it != queues.end()) --it->second->running;
          }
          unflushed.clear();
        }
      }
      if (stopping && running_total() == 0 && pending_sendbacks == 0) break;
      auto now = Clock::now();
      // Heartbeats go on while stopping: a member that went silent for the
      // broker's session timeout would lose its queues and have its final
      // commit refused.
      for (auto& n : nodes)
        if (!n.hb_in_flight && now >= n.next_heartbeat) send_heartbeat(n);
      for (auto& n : nodes) probe_master(n, now);
      if (opt.orderly) run_orderly();
      for (auto& [k, q] : queues)
        if (may_pull(*q)) issue_pull(*q);
      settle_dropped();
      settle_output();  // the output thread wrote more meanwhile
      if (now >= next_commit) {
        commit_all(false);
        next_commit = now + opt.commit_interval;
      } else if (span_commit_due()) {
        // A queue finished --max-span offsets past its last commit: committed now, so
        // that a crash delivers again at most about twice the span per queue (the
        // unfinished span and what finished since the last commit), whatever the interval.
        commit_all(false);
      }
      run_timers();
      size_t ran = drain(idle_flushed ? Millis(50) : Millis(0));
      if (ran == 0 && (!idle_flushed || Clock::now() >= next_idle_look)) {
        // Idle: once at once, then every 200 ms, so that a reader of the output that
        // went away meanwhile (| head -n 3 after the member caught up) ends the run.
        if (!on_idle()) stopping = output_gone = true;
        settle_output();
        idle_flushed = true;
        next_idle_look = Clock::now() + Millis(200);
      } else if (ran > 0) {
        idle_flushed = false;
      }
    }
    on_idle();
    kill_running = true;
    commit_all(true);
    if (!fatal.is_ok()) return fatal;
    if (!commit_refused.empty())
      return Status::io_error(fmt::format("the last commit was refused: {} (what was consumed since the last "
                                          "saved commit will be delivered again)", commit_refused));
    // No answer to the last commit (the broker down): the progress is not saved either.
    size_t unsaved = 0;
    for (auto& [k, q] : queues)
      if (q->ready && static_cast<int64_t>(q->pq.commit_offset()) != q->last_committed) ++unsaved;
    if (unsaved > 0)
      return Status::unavailable(fmt::format("the last commit of {} queue{} was not saved: {} (what was consumed "
                                             "since the last saved commit will be delivered again)",
                                             unsaved, unsaved == 1 ? "" : "s",
                                             commit_error.empty() ? "no answer" : commit_error));
    if (opt.to_end && !absent.is_ok() && !stop.load()) return absent;
    return Status::ok();
  }
};

GroupConsumer::GroupConsumer(Cluster& cluster, GroupOptions opt)
    : impl_(std::make_unique<Impl>(cluster, std::move(opt))) {}
GroupConsumer::~GroupConsumer() = default;

Status GroupConsumer::run(const OnMessage& on_message, const std::function<uint64_t()>& written,
                          const std::function<bool()>& on_idle, const std::atomic<bool>& stop) {
  return impl_->run(on_message, written, on_idle, stop);
}

GroupStats GroupConsumer::stats() const { return impl_->stats; }

}  // namespace mq::client
