"""binance-connector, the other requests-based Binance client, through instrument_requests.

It installs the same top-level ``binance`` package as python-binance, so it cannot live in
the test environment beside it: ``scripts/test`` installs its locked pin into
``.tools/sidecar/binance-connector`` and this test runs ``binance_connector_case.py`` in a
pytest process of its own with that directory first on the path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.services import missing_service

ROOT = Path(__file__).resolve().parents[3]
SIDECAR = ROOT / ".tools" / "sidecar" / "binance-connector"
CASE = Path(__file__).with_name("binance_connector_case.py")


def test_binance_connector_in_its_own_process() -> None:
    if not (SIDECAR / "binance" / "spot").is_dir():
        missing_service(f"binance-connector (scripts/test installs it into {SIDECAR})")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(SIDECAR), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(ROOT), str(CASE)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    report = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert "1 passed" in done.stdout, report
