#!/usr/bin/env python3
"""faultproxy: a TCP proxy that injects faults between a client and a broker (or slave and master).

  faultproxy.py --target HOST:PORT --ready-file FILE [--listen HOST:PORT] [--seed N]
  faultproxy.py ctl CTL_HOST:PORT COMMAND...       # send commands, print the answers

The ready file gets two lines once listening: the proxy's HOST:PORT, then the control HOST:PORT.
Control: one command per line over TCP, answered with one line ("ok ..." or "error ...").
  pass             forward bytes as they come (the default)
  delay=MS         hold every chunk MS milliseconds before forwarding it (order kept)
  slice=N          forward in N-byte pieces, one send each (TCP_NODELAY): frames arrive split
  drop-after=BYTES every connection is cut (both sides closed) once BYTES more bytes have gone
                   through it in either direction, counted from the moment the mode is set or
                   the connection opens — in the middle of a frame
  reset            RST every current connection now (one-shot; the mode stays what it was)
  sever            current connections go silent for good: bytes are read (acked by TCP) and
                   dropped in both directions, nothing is closed — a peer whose decoder lost
                   sync or a half-open link (one-shot; new connections follow the mode)
  blackhole        new connections are accepted and never forwarded; current ones stall
                   (nothing read, nothing forwarded) until the mode changes
  corrupt=P        flip one random bit in a forwarded chunk with probability P (0..1)
  corrupt-up=P     the same, client -> server direction only
  stats            connections accepted/open, bytes forwarded, resets, cuts, corruptions
Modes replace each other (one at a time). Stops on SIGTERM/SIGINT. Python 3 stdlib only.
"""
import argparse
import asyncio
import os
import random
import signal
import socket
import struct
import sys


class Proxy:
    def __init__(self, target, seed):
        self.th, tp = target.rsplit(":", 1)
        self.tp = int(tp)
        self.mode = ("pass", None)
        self.epoch = 0                 # bumps on every mode change (drop-after restarts counting)
        self.conns = set()
        self.rng = random.Random(seed)
        self.changed = asyncio.Event()
        self.st = {"accepted": 0, "bytes": 0, "resets": 0, "cuts": 0, "corrupted": 0,
                   "blackholed": 0, "severed": 0}

    # ---- control ----------------------------------------------------------------------------
    def command(self, line):
        line = line.strip()
        if not line:
            return "error empty command"
        name, _, arg = line.partition("=")
        try:
            if name == "pass" or name == "blackhole":
                self.set_mode(name, None)
            elif name == "delay":
                self.set_mode(name, int(arg) / 1000.0)
            elif name == "slice" or name == "drop-after":
                n = int(arg)
                if n < (1 if name == "slice" else 0):
                    raise ValueError(arg)
                self.set_mode(name, n)
            elif name in ("corrupt", "corrupt-up"):
                p = float(arg)
                if not 0 <= p <= 1:
                    raise ValueError(arg)
                self.set_mode(name, p)
            elif name == "reset":
                n = len(self.conns)
                for c in list(self.conns):
                    c.kill(rst=True)
                self.st["resets"] += n
                return f"ok reset {n}"
            elif name == "sever":
                n = len(self.conns)
                for c in list(self.conns):
                    c.severed = True
                self.st["severed"] += n
                return f"ok sever {n}"
            elif name == "stats":
                return "ok " + " ".join(f"{k}={v}" for k, v in self.st.items()) + \
                    f" open={len(self.conns)} mode={self.mode_str()}"
            else:
                return f"error unknown command {name!r}"
        except ValueError:
            return f"error bad value in {line!r}"
        return "ok " + self.mode_str()

    def set_mode(self, name, val):
        self.mode = (name, val)
        self.epoch += 1
        self.changed.set()
        self.changed = asyncio.Event()

    def mode_str(self):
        n, v = self.mode
        if v is None:
            return n
        return f"{n}={int(v * 1000) if n == 'delay' else v}"

    async def control(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write((self.command(line.decode(errors="replace")) + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    # ---- data -------------------------------------------------------------------------------
    async def accept(self, reader, writer):
        self.st["accepted"] += 1
        set_nodelay(writer)
        if self.mode[0] == "blackhole":
            self.st["blackholed"] += 1
            c = Conn(self, reader, writer, None, None)
            self.conns.add(c)
            try:
                while await reader.read(65536):
                    pass
            except (ConnectionError, OSError):
                pass
            finally:
                c.kill()
            return
        try:
            ur, uw = await asyncio.open_connection(self.th, self.tp)
        except OSError:
            writer.transport.abort()
            return
        set_nodelay(uw)
        c = Conn(self, reader, writer, ur, uw)
        self.conns.add(c)
        await c.run()


def set_nodelay(writer):
    s = writer.get_extra_info("socket")
    if s is not None:
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def abort(writer, rst):
    if writer is None:
        return
    if rst:
        s = writer.get_extra_info("socket")
        if s is not None:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
    writer.transport.abort()


class Conn:
    def __init__(self, proxy, cr, cw, ur, uw):
        self.p, self.cr, self.cw, self.ur, self.uw = proxy, cr, cw, ur, uw
        self.dead = False
        self.severed = False
        self.budget_epoch = proxy.epoch
        self.passed = 0          # bytes through this connection since budget_epoch
        self.tasks = []

    def kill(self, rst=False):
        if self.dead:
            return
        self.dead = True
        abort(self.cw, rst)
        abort(self.uw, rst)
        self.p.conns.discard(self)
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()

    async def run(self):
        self.tasks = [asyncio.ensure_future(self.pump(self.cr, self.uw, True)),
                      asyncio.ensure_future(self.pump(self.ur, self.cw, False))]
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.kill()

    async def pump(self, src, dst, up):
        p = self.p
        q = asyncio.Queue()
        sender = asyncio.ensure_future(self.send_loop(q, dst, up))
        self.tasks.append(sender)
        try:
            while not self.dead:
                while p.mode[0] == "blackhole" and not self.dead:   # stall: stop reading
                    await p.changed.wait()
                data = await src.read(65536)
                if not data:
                    break
                await q.put((asyncio.get_running_loop().time(), data))
            await q.put(None)
            await sender
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.kill()

    async def send_loop(self, q, dst, up):
        p = self.p
        loop = asyncio.get_running_loop()
        while True:
            item = await q.get()
            if item is None:
                return
            t0, data = item
            if self.severed:
                continue
            while p.mode[0] == "blackhole" and not self.dead:
                await p.changed.wait()
            name, val = p.mode
            if name == "delay":
                wait = t0 + val - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            elif (name == "corrupt" or (name == "corrupt-up" and up)) and p.rng.random() < val:
                b = bytearray(data)
                b[p.rng.randrange(len(b))] ^= 1 << p.rng.randrange(8)
                data = bytes(b)
                p.st["corrupted"] += 1
            elif name == "drop-after":
                if self.budget_epoch != p.epoch:
                    self.budget_epoch, self.passed = p.epoch, 0
                room = val - self.passed
                if room < len(data):
                    if room > 0:
                        dst.write(data[:room])
                        p.st["bytes"] += room
                        await dst.drain()
                    p.st["cuts"] += 1
                    self.kill()
                    return
                self.passed += len(data)
            if name == "slice":
                for i in range(0, len(data), val):
                    dst.write(data[i:i + val])   # sent at once while the socket has room
                    await dst.drain()
            else:
                dst.write(data)
                await dst.drain()
            p.st["bytes"] += len(data)


async def serve(args):
    proxy = Proxy(args.target, args.seed)
    ans = proxy.command(args.mode)
    if not ans.startswith("ok"):
        raise SystemExit(f"faultproxy: --mode: {ans}")
    lh, lp = args.listen.rsplit(":", 1)
    srv = await asyncio.start_server(proxy.accept, lh, int(lp), backlog=1024)
    ctl = await asyncio.start_server(proxy.control, "127.0.0.1", 0)
    addr = srv.sockets[0].getsockname()
    caddr = ctl.sockets[0].getsockname()
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{addr[0]}:{addr[1]}\n{caddr[0]}:{caddr[1]}\n")
    os.replace(tmp, args.ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    srv.close()
    ctl.close()
    for c in list(proxy.conns):
        c.kill()


def ctl(addr, cmds):
    h, p = addr.rsplit(":", 1)
    rc = 0
    with socket.create_connection((h, int(p)), timeout=10) as s:
        f = s.makefile("rw")
        for c in cmds:
            f.write(c + "\n")
            f.flush()
            ans = f.readline().strip()
            print(ans)
            if not ans.startswith("ok"):
                rc = 1
    return rc


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "ctl":
        if len(sys.argv) < 4:
            print("usage: faultproxy.py ctl CTL_HOST:PORT COMMAND...", file=sys.stderr)
            return 2
        return ctl(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description="TCP fault-injection proxy")
    ap.add_argument("--target", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mode", default="pass", help="initial mode (a control command)")
    args = ap.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
