"""Run a child process and SIGKILL it at a random instant (real kill, real pipe)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Killed:
    """What a killed child printed (complete lines only) and when it was killed."""

    lines: list[str]
    delay: float
    seed: int

    def words(self, tag: str) -> list[str]:
        """The second word of every complete ``tag ...`` line, in order."""
        return [line.split()[1] for line in self.lines if line.split()[:1] == [tag]]

    def __str__(self) -> str:
        tail = "\n".join(self.lines[-15:])
        return f"seed {self.seed}, killed {self.delay:.4f}s after READY; last lines:\n{tail}"


async def kill_at_random(args: Sequence[str], run: int, *, max_delay: float,
                         after: str = "READY", timeout: float = 60.0,
                         kills_itself: bool = False) -> Killed:
    """Start ``python args...``, wait for a line ``after ...`` on its stdout (the child's
    signal that it is running), then SIGKILL it after a delay drawn at random for this
    run (uniform in 0 .. ``max_delay`` s; the seed is in the failure message). Returns
    every complete line it printed: a SIGKILL can cut the last one short. A child that
    ``kills_itself`` (SIGKILL at a point of its own choosing) may be gone by then."""
    seed = int.from_bytes(os.urandom(4), "big") ^ run
    delay = random.Random(seed).uniform(0.0, max_delay)
    child = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        limit=1 << 20)
    assert child.stdout is not None and child.stderr is not None
    out = bytearray()
    ready = asyncio.Event()

    async def read() -> None:
        assert child.stdout is not None
        while chunk := await child.stdout.read(65536):
            out.extend(chunk)
            if not ready.is_set() and _has_line(out, after):
                ready.set()
        ready.set()  # ended without the line: the assertion below says so

    reader = asyncio.create_task(read())
    try:
        await asyncio.wait_for(ready.wait(), timeout)
        assert _has_line(out, after) and (kills_itself or child.returncode is None), (
            out.decode(errors="replace") + (await child.stderr.read()).decode(errors="replace"))
        if kills_itself:
            await asyncio.wait_for(child.wait(), timeout)
        else:
            await asyncio.sleep(delay)  # the random instant: the child runs on meanwhile
            child.send_signal(signal.SIGKILL)
            await asyncio.wait_for(child.wait(), timeout)
        await asyncio.wait_for(reader, timeout)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        reader.cancel()
    assert child.returncode == -signal.SIGKILL, (
        f"the child ended by itself ({child.returncode}): "
        + (await child.stderr.read()).decode(errors="replace"))
    text = out.decode(errors="replace")
    return Killed(text.split("\n")[:-1], delay, seed)


def _has_line(out: bytearray, word: str) -> bool:
    """Whether a complete line of ``out`` has ``word`` as its first word."""
    return any(line.split()[:1] == [word.encode()] for line in bytes(out).split(b"\n")[:-1])
