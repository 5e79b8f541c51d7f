"""Corrupt db / -wal / -shm between runs; the next runs must start, and alerts raised
after the corruption must be delivered.

python scripts/crashfuzz/corrupt.py ITERATIONS [SEED]
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import driver


def corrupt(rnd: random.Random, store: Path) -> str:
    target = rnd.choice(["", "-wal", "-shm", "", "-wal"])
    f = Path(str(store) + target)
    if not f.exists():
        f = store
        target = ""
    data = bytearray(f.read_bytes())
    action = rnd.choice(["flip", "truncate", "zero", "foreign", "garbage"] if target == ""
                        else ["flip", "truncate", "zero"])
    if not data:
        action = "garbage"
    if action == "flip":
        offs = [rnd.randrange(len(data)) for _ in range(rnd.randint(1, 30))]
        for off in offs:
            data[off] ^= 1 << rnd.randrange(8)
        f.write_bytes(bytes(data))
        desc = f"flip {target or 'db'} at {offs[:5]}"
    elif action == "truncate":
        off = rnd.randrange(len(data))
        os.truncate(f, off)
        desc = f"truncate {target or 'db'} to {off}/{len(data)}"
    elif action == "zero":
        off = rnd.randrange(len(data))
        n = rnd.randint(1, 8192)
        data[off:off + n] = bytes(min(n, len(data) - off))
        f.write_bytes(bytes(data))
        desc = f"zero {target or 'db'} {off}+{n}"
    elif action == "foreign":
        for suffix in ("", "-wal", "-shm"):
            Path(str(store) + suffix).unlink(missing_ok=True)
        c = sqlite3.connect(store)
        c.execute("create table alerts (x int, y text)")
        c.execute("insert into alerts values (1, 'foreign')")
        c.commit()
        c.close()
        desc = "foreign sqlite db"
    else:
        f.write_bytes(os.urandom(rnd.randint(1, 20000)))
        desc = f"garbage {target or 'db'}"
    return desc


def main() -> None:
    iters = int(sys.argv[1])
    master = int(sys.argv[2]) if len(sys.argv) > 2 else int.from_bytes(os.urandom(3), "big")
    base = Path("/tmp/crashfuzz-corrupt") / str(master)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), driver.H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    mrnd = random.Random(master)
    broken = 0
    moved = 0
    for n in range(iters):
        seed = mrnd.randrange(1 << 30)
        ep = driver.Epoch(n, seed, base, srv.server_address[1])
        for i in range(ep.rnd.randint(1, 2)):
            ep.kill_run("random", i)
        desc = corrupt(ep.rnd, ep.store)
        # the expectations start over: what was in the damaged file may be gone
        pre_fired = dict(ep.fired)
        for kept in (ep.fired, ep.acked, ep.resolved, ep.silenced):
            kept.clear()
        log_before = ep.log.stat().st_size
        ep.kill_run("random", 10)
        ep.kill_run("random", 11)
        dump = ep.drain()
        ep.check(dump)
        log = ep.log.read_bytes()[log_before:].decode(errors="replace")
        ep.failures = [f for f in ep.failures if not f.startswith("store moved aside")
                       and not f.startswith("delivery for an alert never raised")]
        if "Traceback" in log:
            ep.failures.append("traceback in log: " + log[log.index("Traceback"):][:1500])
        was_moved = "ALERT STORE CORRUPT" in log
        moved += was_moved
        status = "BROKEN" if ep.failures else "held"
        broken += bool(ep.failures)
        print(f"iter {n} seed {seed}: {status} [{desc}] moved={was_moved} "
              f"pre={len(pre_fired)} post_fired={len(ep.fired)} max_start="
              f"{max(ep.start_times):.2f}s", flush=True)
        for f in ep.failures[:6]:
            print("   ", f[:1500], flush=True)
    print(f"TOTAL iters={iters} broken={broken} moved_aside={moved} master={master}")


if __name__ == "__main__":
    main()
