"""Kill during start-up on a corrupt store (the move aside): the garbage must end up
whole in exactly one .corrupt- file, nothing left half done, the store usable.

python scripts/crashfuzz/moveaside.py ITERATIONS [SEED]
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import driver


def main() -> None:
    iters = int(sys.argv[1])
    master = int(sys.argv[2]) if len(sys.argv) > 2 else int.from_bytes(os.urandom(3), "big")
    base = Path("/tmp/crashfuzz-move") / str(master)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), driver.H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    mrnd = random.Random(master)
    broken = 0
    for n in range(iters):
        seed = mrnd.randrange(1 << 30)
        ep = driver.Epoch(n, seed, base, srv.server_address[1])
        rnd = ep.rnd
        garbage = os.urandom(rnd.randint(100, 300_000))
        wal = os.urandom(rnd.randint(0, 50_000)) if rnd.random() < 0.5 else b""
        ep.store.write_bytes(garbage)
        if wal:
            Path(str(ep.store) + "-wal").write_bytes(wal)
        for i in range(rnd.randint(1, 4)):
            p = driver.spawn(ep.store, ep.url, seed + i, "run", ep.log)
            driver.read_lines(p, None, 0)
            time.sleep(rnd.uniform(0.0, 2.5))
            os.kill(p.pid, signal.SIGKILL)
            ep.absorb(driver.finish(p))
        dump = ep.drain()
        ep.check(dump)
        ep.failures = [f for f in ep.failures if not f.startswith("store moved aside")]
        names = sorted(f.name for f in ep.dir.iterdir())
        corrupt = [f for f in ep.dir.iterdir() if ".corrupt-" in f.name
                   and not f.name.endswith(("-wal", "-shm"))]
        if len(corrupt) != 1:
            ep.failures.append(f"{len(corrupt)} corrupt files: {names}")
        else:
            if corrupt[0].read_bytes() != garbage:
                ep.failures.append("moved-aside file differs from the garbage")
            cw = Path(str(corrupt[0]) + "-wal")
            if wal and (not cw.exists() or cw.read_bytes() != wal):
                ep.failures.append(f"moved-aside wal missing/different: {names}")
        extra = [x for x in names if x.endswith((".tmp", ".intent", ".kept")) or "intent" in x]
        if extra:
            ep.failures.append(f"leftovers {extra}")
        log = ep.log.read_text()
        if "ALERT STORE CORRUPT" not in log:
            ep.failures.append("no ALERT STORE CORRUPT line")
        if "Traceback" in log:
            ep.failures.append("traceback: " + log[log.index("Traceback"):][:1200])
        status = "BROKEN" if ep.failures else "held"
        broken += bool(ep.failures)
        print(f"iter {n} seed {seed}: {status} wal={len(wal)} fired_after={len(ep.fired)} "
              f"files={names}", flush=True)
        for f in ep.failures[:6]:
            print("   ", f[:1500], flush=True)
    print(f"TOTAL iters={iters} broken={broken} master={master}")


if __name__ == "__main__":
    main()
