"""Run every ``bench/bench_*.py`` and print one table of their figures.

Each script runs in a fresh process (so one script's warm caches and threads do not
touch another's figures) with ``--json`` pointing at one shared file; this collects the
lines, prints one table (figure, target, median ratio, IQR, verdict) and writes the
whole run as JSON (``--out``, default ``bench/results.json``). ``--markdown`` prints the
table as Markdown too, which is what the README's performance section holds.

Run: python bench/run_all.py [--repeat 3] [--quick] [--only trade --only notify]
Exit code: 0 when every figure with a target holds, 1 otherwise, 2 when a script failed
(a script exits 0, or 3 when one of its figures missed: anything else, such as Python's
1 for an uncaught exception or argparse's 2, means it broke).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
MISSED = 3  # bench/_harness.py's Bench.finish() when a figure misses its target


def scripts(only: list[str]) -> list[Path]:
    found = sorted(BENCH.glob("bench_*.py"))
    if only:
        found = [p for p in found if any(part in p.stem for part in only)]
    return found


def run(script: Path, json_file: Path, args: argparse.Namespace) -> int:
    command = [sys.executable, str(script), "--json", str(json_file),
               "--repeat", str(args.repeat)]
    if args.quick:
        command.append("--quick")
    print(f"\n### {script.name}: {' '.join(command[1:])}", flush=True)
    done = subprocess.run(command, cwd=BENCH.parent, check=False)
    return done.returncode


def fmt(figure: dict[str, Any]) -> list[str]:
    target = figure.get("target")
    unit = figure.get("unit", "x")
    op = ">=" if figure.get("higher_is_better") else "<="
    return [
        figure["figure"],
        "-" if target is None else f"{op} {target:g}{unit}",
        f"{figure['median']:.3f}{unit}",
        f"{figure['q1']:.3f}-{figure['q3']:.3f}",
        str(figure["rounds"]),
        figure["verdict"],
    ]


HEADER = ["figure", "target", "median", "IQR", "rounds", "verdict"]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", action="append", default=[],
                        help="run only scripts whose name contains this")
    parser.add_argument("--out", default=str(BENCH / "results.json"))
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    started = time.time()
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        json_file = Path(tmp) / "figures.jsonl"
        json_file.touch()
        for script in scripts(args.only):
            code = run(script, json_file, args)
            if code not in (0, MISSED):  # anything else: the script broke
                failed.append(f"{script.name} (exit {code})")
        figures = [json.loads(line) for line in json_file.read_text().splitlines() if line]

    rows = [fmt(f) for f in figures]
    print(f"\n== {len(figures)} figures from {len(scripts(args.only))} scripts, "
          f"repeat {args.repeat}, {time.time() - started:.0f} s, "
          f"python {platform.python_version()}, {os.cpu_count()} cpu")
    print(table(rows))
    if args.markdown:
        print()
        print(markdown(rows))
    run_info = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "command": " ".join(["python", "bench/run_all.py", *(argv or sys.argv[1:])]),
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "repeat": args.repeat, "figures": figures,
        "failed_scripts": failed,
    }
    Path(args.out).write_text(json.dumps(run_info, indent=1) + "\n")
    print(f"wrote {args.out}")
    if failed:
        print("scripts that failed: " + ", ".join(failed))
        return 2
    return 1 if any(f["verdict"] == "MISSES" for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
