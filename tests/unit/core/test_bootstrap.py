"""scripts/_bootstrap.sh's bad input: an unsupported Python, no uv and no way to make one.

Each case runs the real script in bash, in a directory of its own (so no .tools/uv is
found) with a PATH of only the tools it needs, and checks the one line it prints.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TOOLS = ("bash", "awk", "sort", "head", "id", "rm", "printf")


def _run(tmp_path: Path, python: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    work = tmp_path / "checkout"
    (work / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "_bootstrap.sh", work / "scripts" / "_bootstrap.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    done = subprocess.run(
        [str(bin_dir / "bash"), "-c", "source scripts/_bootstrap.sh && echo SOURCED"],
        cwd=work, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": str(bin_dir), "PYTHON": python, "HOME": str(tmp_path), **(env or {})})
    return done.returncode, done.stdout + done.stderr


def _old_pythons() -> list[str]:
    candidates = [str(p) for p in sorted(Path("/root/.pyenv/versions").glob("*/bin/python"))]
    candidates += [found for name in ("python2", "python2.7", "python3.10", "python3.9")
                   if (found := shutil.which(name))]
    old = []
    for path in candidates:
        probe = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2] < (3, 11))"],
                               capture_output=True, text=True, timeout=30, check=False)
        if probe.stdout.strip() == "True":
            old.append(path)
    return old


OLD = _old_pythons()


@pytest.mark.skipif(not OLD, reason="no Python older than 3.11 on this machine")
@pytest.mark.parametrize("python", OLD)
def test_an_unsupported_python_gets_one_line_naming_the_supported_versions(
    tmp_path: Path, python: str
) -> None:
    code, out = _run(tmp_path, python)
    assert code == 1
    (line,) = out.strip().splitlines()
    assert line.startswith("error: otel_botmon needs Python 3.11 or newer"), line
    assert python in line


def test_no_uv_and_no_venv_module_says_which_package_to_install(tmp_path: Path) -> None:
    # A Python whose venv/ensurepip is split off (Debian without python3-venv), no apt-get
    # on PATH and no uv anywhere: one line naming the package and uv.
    fake = tmp_path / "no-ensurepip"
    (fake / "ensurepip").mkdir(parents=True)
    (fake / "ensurepip" / "__init__.py").write_text("raise ImportError('split off')\n")
    code, out = _run(tmp_path, sys.executable, {"PYTHONPATH": str(fake)})
    assert code == 1, out
    (line,) = out.strip().splitlines()
    assert "cannot create virtual environments" in line
    assert "python3-venv" in line and "uv" in line
    assert "SOURCED" not in out


def test_a_supported_python_with_uv_on_path_passes(tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "uv" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.skip("no uv here")
    code, out = _run(tmp_path, sys.executable, {"UV": uv})
    assert code == 0 and out.strip().endswith("SOURCED"), out
