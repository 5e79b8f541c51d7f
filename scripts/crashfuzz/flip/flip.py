# Flip 1-4 random bits of a store holding 30 pending notifications (made by mk.py:
# python mk.py /tmp/idx/b.db), open it with run2.py (5 new alerts, a receiver on
# 127.0.0.1), check every new alert is delivered and the queue drains.
# python flip.py ITERATIONS SEED   (seed of iteration i is SEED*1000+i)
import random, shutil, subprocess, sys, os, json
seed0 = int(sys.argv[2]); n = int(sys.argv[1])
held = broken = 0
for it in range(n):
    seed = seed0 * 1000 + it
    r = random.Random(seed)
    d = f"/tmp/idx/flip/{seed}"; os.makedirs(d, exist_ok=True)
    shutil.copy("/tmp/idx/b.db", f"{d}/s.db")
    data = bytearray(open(f"{d}/s.db","rb").read())
    offs = [r.randrange(len(data)) for _ in range(r.randint(1, 4))]
    for o in offs: data[o] ^= 1 << r.randrange(8)
    open(f"{d}/s.db","wb").write(data)
    p = subprocess.run([sys.executable, str(__import__("pathlib").Path(__file__).with_name("run2.py")), f"{d}/s.db"], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH="/work/wt/atkcrash"))
    res = [l for l in p.stdout.splitlines() if l.startswith("RESULT")]
    bad = []
    if not res: bad.append(f"no result rc={p.returncode} {p.stderr[-800:]}")
    else:
        j = json.loads(res[0][7:])
        if not j["drained"] or j["missing"]: bad.append(str(j))
        if j["moved"] == "None" and j["pre"] < 30: bad.append(f"pre lost without move: {j}")
    if "Traceback" in p.stderr: bad.append("traceback " + p.stderr[p.stderr.index("Traceback"):][:600])
    print(it, seed, "BROKEN" if bad else "held", offs, res[0][7:] if res else "", flush=True)
    for b in bad: print("   ", b, flush=True)
    broken += bool(bad)
print("TOTAL", n, "broken", broken)
