"""Crash-fuzz driver: SIGKILL the child at random instants, restart, drain, check.

python scripts/crashfuzz/driver.py EPOCHS [SEED]
Each epoch: a fresh directory; several kill runs (random / startup / slow receiver /
optional corruption of -shm / stale-lock / second process); then a drain run; checks.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = HERE / "child.py"
ROOT = HERE.parents[1]
URLSECRET = "URLTOKEN-should-not-be-on-disk"


class Rec:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict, str]] = []  # (path, body, key)
        self.delay = 0.0
        self.inflight = 0


REC = Rec()


class H(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n)
        with REC.lock:
            REC.inflight += 1
            delay = REC.delay
        if delay:
            time.sleep(delay)
        try:
            data = json.loads(body)
        except ValueError:
            data = {"raw": body.decode(errors="replace")}
        with REC.lock:
            REC.requests.append((self.path, data, self.headers.get("Idempotency-Key", "")))
            REC.inflight -= 1
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        try:
            self.wfile.write(b"ok")
        except OSError:
            pass

    def log_message(self, *a: object) -> None:
        pass


def spawn(store: Path, url: str, seed: int, mode: str, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(store), url, str(seed), mode],
        stdout=subprocess.PIPE, stderr=open(log, "ab"), env=env, cwd=str(store.parent))


def read_lines(p: subprocess.Popen, until: str | None, timeout: float) -> tuple[list[str], bool]:
    """Read lines until one starts with `until` (True) or EOF/timeout (False)."""
    lines: list[str] = []
    got = threading.Event()
    done = threading.Event()

    def rd() -> None:
        assert p.stdout is not None
        for raw in p.stdout:
            line = raw.decode(errors="replace")
            if not line.endswith("\n"):
                break  # cut by the kill
            lines.append(line.rstrip("\n"))
            if until and line.startswith(until):
                got.set()
        done.set()

    t = threading.Thread(target=rd, daemon=True)
    t.start()
    ok = got.wait(timeout) if until else done.wait(timeout)
    p._reader = (t, lines)  # type: ignore[attr-defined]
    return lines, ok


def finish(p: subprocess.Popen) -> list[str]:
    t, lines = p._reader  # type: ignore[attr-defined]
    p.wait(30)
    t.join(30)
    return lines


class Epoch:
    def __init__(self, n: int, seed: int, base: Path, port: int) -> None:
        self.n, self.seed = n, seed
        self.rnd = random.Random(seed)
        self.dir = base / f"e{n}-s{seed}"
        self.dir.mkdir(parents=True)
        self.store = self.dir / "botmon.db"
        self.url = f"http://127.0.0.1:{port}/e{n}?token={URLSECRET}"
        self.path_prefix = f"/e{n}?"
        self.log = self.dir / "child.log"
        self.raising: set[str] = set()
        self.fired: dict[str, str] = {}  # id -> title
        self.acked: set[str] = set()
        self.resolved: set[str] = set()
        self.silenced: set[str] = set()
        self.kills = 0
        self.failures: list[str] = []
        self.kinds: Counter[str] = Counter()
        self.start_times: list[float] = []

    def absorb(self, lines: list[str]) -> None:
        for line in lines:
            w = line.split()
            if not w:
                continue
            if w[0] == "RAISING":
                self.raising.add(w[1])
            elif w[0] == "FIRED":
                self.fired[w[2]] = w[1]
            elif w[0] == "ACKED" and w[2] == "1":
                self.acked.add(w[1])
            elif w[0] == "RESOLVED" and w[2] == "1":
                self.resolved.add(w[1])
            elif w[0] == "SILENCED":
                self.silenced.add(w[1])

    def kill_run(self, kind: str, i: int) -> None:
        self.kinds[kind] += 1
        cseed = self.seed * 1000 + i
        REC.delay = self.rnd.uniform(0.3, 1.5) if kind == "slow" else 0.0
        t0 = time.monotonic()
        p = spawn(self.store, self.url, cseed, "run", self.log)
        if kind == "startup":
            read_lines(p, None, 0)
            time.sleep(self.rnd.uniform(0.0, 0.8))
        else:
            _lines, ok = read_lines(p, "READY", 20)
            if not ok:
                p.kill()
                out = finish(p)
                self.failures.append(f"{kind} run {i} (seed {cseed}): no READY in 20s "
                                     f"(rc {p.returncode}); lines {out[-3:]}; log tail "
                                     f"{self.log.read_text()[-800:]}")
                return
            self.start_times.append(time.monotonic() - t0)
            if kind == "slow":
                # kill while a delivery is in flight at the receiver
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and REC.inflight == 0:
                    time.sleep(0.005)
                time.sleep(self.rnd.uniform(0, REC.delay))
            elif kind == "second":
                q = spawn(self.store, self.url, cseed + 500, "run", self.log)
                _qlines, qok = read_lines(q, "READY", 15)
                if qok:
                    self.failures.append(f"second process on one store started too "
                                         f"(seed {cseed})")
                    q.kill()
                else:
                    try:
                        q.wait(15)
                    except subprocess.TimeoutExpired:
                        self.failures.append(f"second process neither refused nor ran in "
                                             f"15 s (seed {cseed})")
                        q.kill()
                        q.wait()
                    log = self.log.read_text()
                    if "StoreInUseError" not in log and "in use by another process" not in log:
                        self.failures.append(f"second process: no clear refusal; log tail "
                                             f"{log[-500:]}")
                finish(q)
                time.sleep(self.rnd.uniform(0, 0.5))
            else:
                time.sleep(self.rnd.uniform(0.0, 1.5))
        os.kill(p.pid, signal.SIGKILL)
        self.kills += 1
        self.absorb(finish(p))
        REC.delay = 0.0
        if p.returncode != -signal.SIGKILL:
            self.failures.append(f"{kind} run {i} (seed {cseed}) ended by itself rc "
                                 f"{p.returncode}: {self.log.read_text()[-800:]}")

    def corrupt_shm(self) -> None:
        shm = Path(str(self.store) + "-shm")
        if shm.exists() and shm.stat().st_size:
            data = bytearray(shm.read_bytes())
            for _ in range(self.rnd.randint(1, 20)):
                off = self.rnd.randrange(len(data))
                data[off] = self.rnd.randrange(256)
            shm.write_bytes(bytes(data))
            self.kinds["corrupt-shm"] += 1

    def drain(self) -> dict | None:
        REC.delay = 0.0
        t0 = time.monotonic()
        p = spawn(self.store, self.url, self.seed * 1000 + 999, "drain", self.log)
        _lines, ok = read_lines(p, "CLOSED", 90)
        if not ok:
            p.kill()
        out = finish(p)
        self.start_times.append(time.monotonic() - t0)
        dump = None
        for line in out:
            if line.startswith("DUMP "):
                dump = json.loads(line[5:])
            if line.startswith("DRAINED 0"):
                self.failures.append("drain timed out (60 s)")
        if dump is None:
            self.failures.append(f"drain run failed rc {p.returncode}; lines {out[-4:]}; log "
                                 f"{self.log.read_text()[-1500:]}")
        return dump

    def check(self, dump: dict | None) -> None:
        with REC.lock:
            reqs = [(b, k) for path, b, k in REC.requests if path.startswith(self.path_prefix)]
        events: dict[str, set[str]] = defaultdict(set)
        keys = Counter(k for _, k in reqs)
        for b, _ in reqs:
            for item in [b, *b.get("alerts", [])]:
                if "alert_id" in item:
                    events[item["alert_id"]].add(item["event"])
                    if item["title"] not in self.raising:
                        self.failures.append(f"delivery for an alert never raised: {item}")
        for aid, title in self.fired.items():
            if "fired" not in events.get(aid, set()):
                self.failures.append(f"LOST: {title} {aid} raised (call returned) but no "
                                     f"'fired' delivery; got {events.get(aid)}")
        dups = sum(v - 1 for v in keys.values() if v > 1)
        if dups > self.kills:
            self.failures.append(f"{dups} duplicate deliveries for {self.kills} kills")
        self.dups = dups
        if dump is not None:
            alerts = dump["alerts"]
            if dump.get("moved") not in (None, "None"):
                self.failures.append(f"store moved aside without corruption: {dump['moved']}")
            if dump.get("fallback"):
                self.failures.append(f"store fell back to memory: {dump['fallback']}")
            for aid in self.fired:
                if aid not in alerts:
                    self.failures.append(f"alert {aid} missing from the store")
            for aid in self.acked:
                if aid in alerts and alerts[aid]["acked"] != "ops":
                    self.failures.append(f"ack of {aid} not persisted: {alerts[aid]}")
            for aid in self.resolved:
                if aid in alerts and alerts[aid]["state"] != "resolved":
                    self.failures.append(f"resolve of {aid} not persisted: {alerts[aid]}")
            for sid in self.silenced:
                if sid not in dump["silences"]:
                    self.failures.append(f"silence {sid} not persisted")
        for f in self.dir.iterdir():
            mode = f.stat().st_mode
            if stat.S_ISREG(mode) and f.name != "child.log" and mode & 0o077:
                self.failures.append(f"{f.name} mode {oct(mode & 0o777)}")
            if stat.S_ISREG(mode) and f.name != "child.log":
                data = f.read_bytes()
                for secret in (b"HMACSECRET", URLSECRET.encode()):
                    if secret in data:
                        self.failures.append(f"secret {secret!r} in {f.name}")


def main() -> None:
    epochs = int(sys.argv[1])
    master = int(sys.argv[2]) if len(sys.argv) > 2 else int.from_bytes(os.urandom(3), "big")
    base = Path(os.environ.get("CRASHFUZZ_DIR", "/tmp/crashfuzz")) / str(master)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    mrnd = random.Random(master)
    totals = Counter()
    broken = 0
    for n in range(epochs):
        seed = mrnd.randrange(1 << 30)
        ep = Epoch(n, seed, base, srv.server_address[1])
        runs = ep.rnd.randint(3, 7)
        for i in range(runs):
            kind = ep.rnd.choice(["random", "random", "startup", "slow", "second"])
            ep.kill_run(kind, i)
            if ep.rnd.random() < 0.2:
                ep.corrupt_shm()
        dump = ep.drain()
        ep.check(dump)
        totals.update(ep.kinds)
        st = max(ep.start_times) if ep.start_times else 0
        status = "BROKEN" if ep.failures else "held"
        broken += bool(ep.failures)
        print(f"epoch {n} seed {seed}: {status} kills={ep.kills} fired={len(ep.fired)} "
              f"acked={len(ep.acked)} resolved={len(ep.resolved)} silences={len(ep.silenced)} "
              f"dups={getattr(ep, 'dups', '?')} max_start={st:.2f}s kinds={dict(ep.kinds)}",
              flush=True)
        for f in ep.failures[:10]:
            print("   ", f[:2000], flush=True)
    print(f"TOTAL epochs={epochs} broken={broken} kinds={dict(totals)} master={master}")


if __name__ == "__main__":
    main()
