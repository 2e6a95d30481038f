#!/usr/bin/env python3
"""mqcheck: compare what producers were promised with what consumers read.

Inputs
  -r FILE   mq-send --receipts output: LINE<TAB>MSG_ID<TAB>BROKER<TAB>QUEUE<TAB>OFFSET<TAB>STATUS
            FILE=PREFIX: that producer's message on input line N had the body PREFIX-N (FILE=
            alone: the body N, as from `seq`); JSON
            reads of its ids are then checked byte for byte (figure corrupt=N)
  -R FILE   the same, from a producer whose per-queue order is promised (--mode sync, one
            producer): within each queue, SEND_OK offsets must grow with LINE
  -c FILE   one consumer session's stream, in the order it was read: `mq-consume --format json`
            lines, or TSV lines ID[<TAB>QUEUE<TAB>OFFSET] (e.g. written by an --exec command).
            Within each queue of one file offsets must grow, except for a rewind to offsets the
            stream already read (a redelivery); a restarted consumer is a new file
  -u FILE   reads whose order means nothing (several concurrent --exec commands appending)
  -d FILE   reads from another topic that hold the same messages (e.g. `%DLQ%G` as JSON): their
            ids count as read, their positions are not compared with the receipts
  (every option repeats; `-` is not accepted: always files)

Figures (one line on stdout)
  acked       distinct message ids with a SEND_OK receipt
  read        distinct ids read
  lost        acked ids never read (lost_ids=... names the first few)
  duplicated  reads beyond the first of each id (redeliveries and stored copies)
  unexpected  ids read that no receipt names
  order_violations   within one consumer stream a queue's offset below one already read that
                     the stream had not read before (out of order, not a rewind), or a
                     -R producer's acked offsets are not in input order within a queue
  offset_conflicts   two different ids read at one (topic, queue, offset), or an acked receipt's
                     (queue, offset) holds another id
  recovered   (extra) ids with a non-OK receipt (FAILED, timeouts) that were read anyway
  corrupt     (only with FILE=PREFIX) reads whose body is not the body that was sent

Exit status 1 when a promised property fails: lost > --allow-loss (default 0), any offset
conflict, any order violation, any unexpected id, duplicated > --max-dup (if given); 2 on usage
errors; 0 otherwise. --name NAME prefixes the line. --topic T ignores JSON reads of other topics.
--self-test runs the built-in checks.
"""
import argparse
import json
import os
import sys
import tempfile

OK = "SEND_OK"


class Figures:
    def __init__(self):
        self.acked_ids = {}        # id -> (queue, offset) of its SEND_OK receipt
        self.sent_ids = set()      # every id a receipt names, whatever its status
        self.reads = {}            # id -> count
        self.positions = {}        # (topic, queue, offset) -> id first seen there
        self.order_violations = 0
        self.offset_conflicts = 0
        self.conflict_examples = []
        self.order_examples = []
        self.bad_lines = 0
        self.bodies = {}           # id -> body sent (receipts given as FILE=PREFIX)
        self.corrupt = None        # None: bodies not checked
        self.corrupt_examples = []

    # ---- receipts ---------------------------------------------------------------------------
    def add_receipts(self, path, ordered):
        prefix = None
        if "=" in path and not os.path.exists(path):
            path, prefix = path.split("=", 1)
            self.corrupt = 0
        last = {}  # queue -> (line, offset) of the previous SEND_OK in this file
        with open(path, encoding="utf-8", errors="replace") as f:
            for raw in f:
                parts = raw.rstrip("\n").split("\t")
                if len(parts) != 6:
                    self.bad_lines += 1   # e.g. a producer killed mid-line
                    continue
                line, mid, _broker, queue, offset, status = parts
                self.sent_ids.add(mid)
                if prefix is not None:
                    self.bodies[mid] = f"{prefix}-{line}" if prefix else line
                if status != OK:
                    continue
                try:
                    q, o, ln = int(queue), int(offset), int(line)
                except ValueError:
                    self.bad_lines += 1
                    continue
                prev = self.acked_ids.get(mid)
                if prev is not None and prev != (q, o):
                    self.conflict(f"id {mid} acked at {prev} and at {(q, o)}")
                self.acked_ids[mid] = (q, o)
                if ordered:
                    if q in last and not (last[q][0] < ln and last[q][1] < o):
                        self.order(f"{os.path.basename(path)}: queue {q} line {ln} offset {o} "
                                   f"after line {last[q][0]} offset {last[q][1]}")
                    last[q] = (ln, o)

    # ---- reads ------------------------------------------------------------------------------
    def add_reads(self, path, ordered, topic, positions=True):
        last = {}  # (topic, queue) -> offset last read in this stream
        with open(path, encoding="utf-8", errors="replace") as f:
            for raw in f:
                raw = raw.rstrip("\n")
                if not raw:
                    continue
                t, q, o = "", None, None
                if raw.startswith("{"):
                    try:
                        rec = json.loads(raw)
                        mid = rec["id"]
                        t, q, o = rec.get("topic", ""), int(rec["queue"]), int(rec["offset"])
                    except (ValueError, KeyError, TypeError):
                        self.bad_lines += 1
                        continue
                    if topic is not None and t != topic:
                        continue
                    want = self.bodies.get(mid)
                    if want is not None and rec.get("body") != want:
                        self.corrupt += 1
                        if len(self.corrupt_examples) < 3:
                            got = rec.get("body", "b64:" + str(rec.get("body_b64")))
                            self.corrupt_examples.append(f"id {mid}: body {got!r}, sent {want!r}")
                else:
                    parts = raw.split("\t")
                    mid = parts[0]
                    if len(parts) >= 3:
                        try:
                            q, o = int(parts[1]), int(parts[2])
                        except ValueError:
                            self.bad_lines += 1
                            continue
                self.reads[mid] = self.reads.get(mid, 0) + 1
                if q is None or not positions:
                    continue
                pos = (t, q, o)
                held = self.positions.setdefault(pos, mid)
                if held != mid:
                    self.conflict(f"queue {q} offset {o} read as {held} and as {mid}")
                if ordered:
                    # a rewind to offsets this stream already read is a redelivery (counted in
                    # duplicated); reading an offset below one already passed that this stream
                    # never read is delivery out of order
                    key = (t, q)
                    hi, seen = last.setdefault(key, [-1, set()])
                    if o < hi and o not in seen:
                        self.order(f"{os.path.basename(path)}: queue {q} offset {o} "
                                   f"read after {hi}")
                    seen.add(o)
                    last[key][0] = max(hi, o)

    def conflict(self, what):
        self.offset_conflicts += 1
        if len(self.conflict_examples) < 3:
            self.conflict_examples.append(what)

    def order(self, what):
        self.order_violations += 1
        if len(self.order_examples) < 3:
            self.order_examples.append(what)

    # ---- verdict ----------------------------------------------------------------------------
    def finish(self):
        # an acked receipt's position must hold that id when the position was read at all
        by_pos = {}
        for (t, q, o), mid in self.positions.items():
            by_pos.setdefault((q, o), set()).add(mid)
        topics = {t for (t, _q, _o) in self.positions}
        if len(topics) <= 1:   # receipts carry no topic: only comparable for one topic
            for mid, (q, o) in self.acked_ids.items():
                held = by_pos.get((q, o))
                if held is not None and mid not in held:
                    self.conflict(f"acked {mid} at queue {q} offset {o}, "
                                  f"read there: {sorted(held)[0]}")
        lost = sorted(m for m in self.acked_ids if m not in self.reads)
        res = {
            "acked": len(self.acked_ids),
            "read": len(self.reads),
            "lost": len(lost),
            "duplicated": sum(n - 1 for n in self.reads.values()),
            "unexpected": sum(1 for m in self.reads if m not in self.sent_ids),
            "order_violations": self.order_violations,
            "offset_conflicts": self.offset_conflicts,
            "recovered": sum(1 for m in self.reads if m in self.sent_ids and m not in self.acked_ids),
        }
        if self.corrupt is not None:
            res["corrupt"] = self.corrupt
        return res, lost


def line_for(name, res, lost):
    keys = ["acked", "read", "lost", "duplicated", "unexpected", "order_violations",
            "offset_conflicts", "recovered", "corrupt"]
    s = " ".join(f"{k}={res[k]}" for k in keys if k in res)
    if lost:
        s += " lost_ids=" + ",".join(lost[:5])
    return (name + ": " if name else "") + s


def verdict(res, allow_loss, max_dup, have_receipts):
    why = []
    if res["lost"] > allow_loss:
        why.append(f"lost {res['lost']} > allowed {allow_loss}")
    if res["offset_conflicts"]:
        why.append("offset conflicts")
    if res["order_violations"]:
        why.append("order violations")
    if res["unexpected"] and have_receipts:
        why.append("unexpected ids")
    if res.get("corrupt"):
        why.append("corrupt bodies served")
    if max_dup is not None and res["duplicated"] > max_dup:
        why.append(f"duplicated {res['duplicated']} > bound {max_dup}")
    return why


def run(argv, out=sys.stdout, err=sys.stderr):
    ap = argparse.ArgumentParser(prog="mqcheck", description=__doc__.split("\n")[0])
    ap.add_argument("-r", action="append", default=[], metavar="FILE", help="receipts")
    ap.add_argument("-R", action="append", default=[], metavar="FILE",
                    help="receipts of an order-preserving (sync) producer")
    ap.add_argument("-c", action="append", default=[], metavar="FILE",
                    help="one consumer stream (json or ID[TAB QUEUE TAB OFFSET])")
    ap.add_argument("-u", action="append", default=[], metavar="FILE", help="unordered reads")
    ap.add_argument("-d", action="append", default=[], metavar="FILE",
                    help="reads of another topic (ids only)")
    ap.add_argument("--topic", help="only JSON reads of this topic")
    ap.add_argument("--name", default="", help="prefix of the figures line")
    ap.add_argument("--allow-loss", type=int, default=0, metavar="N")
    ap.add_argument("--max-dup", type=int, default=None, metavar="N")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test(out)
    if not (a.r or a.R) and not (a.c or a.u or a.d):
        ap.print_usage(err)
        print("mqcheck: give receipts (-r/-R) and/or reads (-c/-u)", file=err)
        return 2
    fig = Figures()
    try:
        for p in a.r:
            fig.add_receipts(p, False)
        for p in a.R:
            fig.add_receipts(p, True)
        for p in a.c:
            fig.add_reads(p, True, a.topic)
        for p in a.u:
            fig.add_reads(p, False, a.topic)
        for p in a.d:
            fig.add_reads(p, False, None, positions=False)
    except OSError as e:
        print(f"mqcheck: {e.filename}: {e.strerror}", file=err)
        return 2
    res, lost = fig.finish()
    print(line_for(a.name, res, lost), file=out)
    why = verdict(res, a.allow_loss, a.max_dup, bool(a.r or a.R))
    for ex in fig.conflict_examples + fig.order_examples + fig.corrupt_examples:
        print(f"mqcheck: {ex}", file=err)
    if why:
        print("mqcheck: FAILED: " + "; ".join(why), file=err)
        return 1
    return 0


# ---- self test ------------------------------------------------------------------------------
def self_test(out):
    failures = []

    def case(name, files, args, want_rc, want):
        with tempfile.TemporaryDirectory() as d:
            argv = []
            for opt, content in files:
                suffix = ""
                if opt.endswith("=P"):   # receipts with a body prefix
                    opt, suffix = opt[:-2], "=P"
                p = os.path.join(d, f"f{len(argv)}")
                with open(p, "w") as f:
                    f.write(content)
                argv += [opt, p + suffix]
            import io
            o, e = io.StringIO(), io.StringIO()
            rc = run(argv + args, o, e)
            line = o.getvalue().strip()
            got = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            bad = [f"{k}={got.get(k)} (want {v})" for k, v in want.items() if got.get(k) != str(v)]
            if rc != want_rc:
                bad.append(f"rc={rc} (want {want_rc})")
            if bad:
                failures.append(f"{name}: " + ", ".join(bad) + f" | {line} | {e.getvalue()}")

    def rc(line, mid, q, o, st="SEND_OK"):
        return f"{line}\t{mid}\t127.0.0.1:1\t{q}\t{o}\t{st}\n"

    def js(mid, q, o, topic="t", body="x"):
        return json.dumps({"topic": topic, "queue": q, "offset": o, "id": mid, "body": body,
                           "reconsume": 0}) + "\n"

    rec = rc(1, "a", 0, 0) + rc(2, "b", 1, 0) + rc(3, "c", 0, 1)
    case("all read", [("-R", rec), ("-c", js("a", 0, 0) + js("b", 1, 0) + js("c", 0, 1))], [], 0,
         {"acked": 3, "read": 3, "lost": 0, "duplicated": 0, "offset_conflicts": 0})
    case("one lost", [("-r", rec), ("-c", js("a", 0, 0) + js("b", 1, 0))], [], 1,
         {"lost": 1, "lost_ids": "c"})
    case("loss allowed", [("-r", rec), ("-c", js("a", 0, 0))], ["--allow-loss", "2"], 0,
         {"lost": 2})
    case("failed receipt read = recovered, not lost",
         [("-r", rec + rc(4, "d", "-", "-", "FAILED")),
          ("-c", js("a", 0, 0) + js("b", 1, 0) + js("c", 0, 1) + js("d", 1, 1))], [], 0,
         {"acked": 3, "recovered": 1, "unexpected": 0})
    case("truncated receipt line is ignored", [("-r", rec + "4\tdd\t127"), ("-u", "a\nb\nc\n")],
         [], 0, {"acked": 3, "lost": 0})
    case("duplicate across restarted consumers",
         [("-r", rec), ("-c", js("a", 0, 0) + js("c", 0, 1)),
          ("-c", js("c", 0, 1) + js("b", 1, 0))], ["--max-dup", "1"], 0,
         {"duplicated": 1, "order_violations": 0})
    case("duplicates beyond the bound",
         [("-r", rec), ("-u", "a\na\na\nb\nc\n")], ["--max-dup", "1"], 1, {"duplicated": 2})
    case("order violation within one stream",
         [("-r", rec), ("-c", js("c", 0, 1) + js("a", 0, 0) + js("b", 1, 0))], [], 1,
         {"order_violations": 1})
    case("rewind within a stream is a redelivery, not disorder",
         [("-r", rec), ("-c", js("a", 0, 0) + js("c", 0, 1) + js("a", 0, 0) + js("c", 0, 1)
                       + js("b", 1, 0))], [], 0, {"order_violations": 0, "duplicated": 2})
    case("sync producer order", [("-R", rc(1, "a", 0, 5) + rc(2, "b", 0, 4))], [], 1,
         {"order_violations": 1})
    case("two ids at one offset",
         [("-r", rec), ("-u", js("a", 0, 0) + js("b", 1, 0) + js("c", 0, 1) + js("x", 0, 1))],
         [], 1, {"offset_conflicts": 1, "unexpected": 1})
    case("acked position holds another id",
         [("-r", rec), ("-u", js("a", 0, 0) + js("b", 1, 0) + js("c", 0, 2) + js("a", 0, 1))],
         [], 1, {"offset_conflicts": 1, "duplicated": 1, "lost": 0})
    case("other topics are ignored with --topic",
         [("-r", rec), ("-c", js("a", 0, 0) + js("q", 3, 3, "%RETRY%g") + js("b", 1, 0)
                       + js("c", 0, 1))], ["--topic", "t"], 0, {"read": 3, "unexpected": 0})
    case("tsv reads with positions", [("-r", rec), ("-c", "a\t0\t0\nb\t1\t0\nc\t0\t1\n")], [], 0,
         {"read": 3, "order_violations": 0})
    case("bodies checked against PREFIX-LINE",
         [("-r=P", rec), ("-c", js("a", 0, 0, body="P-1") + js("b", 1, 0, body="P-2")
                         + js("c", 0, 1, body="P-4"))], [], 1, {"corrupt": 1, "lost": 0})
    case("intact bodies", [("-r=P", rec), ("-c", js("a", 0, 0, body="P-1"))], ["--allow-loss", "2"],
         0, {"corrupt": 0})
    case("dead letters count as read, their positions are another topic's",
         [("-r", rec), ("-u", "a\n"), ("-d", js("b", 0, 0, "%DLQ%g") + js("c", 0, 1, "%DLQ%g"))],
         [], 0, {"lost": 0, "offset_conflicts": 0, "read": 3})
    if failures:
        for f in failures:
            print("mqcheck self-test FAIL: " + f, file=out)
        return 1
    print("mqcheck self-test: ok (17 cases)", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
