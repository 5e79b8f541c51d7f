# Sourced by scripts/test, scripts/demo and scripts/test-newest: finds a supported Python,
# gets uv (the tool that installs the locked environment) and exports $PYTHON and $UV.
# Works on a distribution Python that refuses pip installs (PEP 668): nothing is ever
# installed into that interpreter; uv lives in .tools/uv and the project in .venv.

UV_VERSION=0.13.9              # the uv that wrote uv.lock; any uv >= UV_MIN reads it
UV_MIN=0.8.0
SUPPORTED_PYTHONS="3.11 or newer (tested on 3.11 to 3.13)"

die() { echo "error: $*" >&2; exit 1; }

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || die "no '$PYTHON' on PATH; install Python $SUPPORTED_PYTHONS or set PYTHON=/path/to/python3"
"$PYTHON" - "$SUPPORTED_PYTHONS" <<'PY' || exit 1
import sys
# Kept to syntax every Python reads (2.7 included), so an old one gets this line too.
if sys.version_info[:2] < (3, 11):
    sys.exit("error: otel_botmon needs Python %s; %s is %s (set PYTHON=/path/to/a/"
             "supported/python3)" % (sys.argv[1], sys.executable, sys.version.split()[0]))
PY
PYTHON=$(command -v "$PYTHON")
export PYTHON

_version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

_find_uv() {
  local candidate version
  for candidate in "${UV:-}" "$(command -v uv 2>/dev/null)" "$PWD/.tools/uv/bin/uv"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    version=$("$candidate" --version 2>/dev/null | awk '{print $2}')
    if [ -n "$version" ] && _version_ge "$version" "$UV_MIN"; then
      UV=$candidate
      return 0
    fi
  done
  return 1
}

_install_uv() {
  # A private virtual environment for uv itself, so the system Python is never touched.
  if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    local pkg="python3-venv"
    local minor
    minor=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> apt-get install $pkg (venv and ensurepip for $PYTHON)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" "python$minor-venv" >/dev/null 2>&1 \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"
    else
      die "$PYTHON cannot create virtual environments; install the '$pkg' package (e.g. sudo apt-get install $pkg) or uv (https://docs.astral.sh/uv/), then run this again"
    fi
  fi
  echo "==> installing uv $UV_VERSION into .tools/uv"
  rm -rf .tools/uv
  "$PYTHON" -m venv .tools/uv || die "could not create .tools/uv with $PYTHON -m venv"
  .tools/uv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" \
    || die "could not install uv from the package index (pip install uv==$UV_VERSION)"
}

_find_uv || { _install_uv && _find_uv; } || die "uv is not usable after installing it into .tools/uv"
export UV
# The machine's interpreter, never a downloaded one; the project environment is .venv.
export UV_PYTHON_DOWNLOADS=never
export UV_PROJECT_ENVIRONMENT="$PWD/.venv"
# Trust the platform's certificate store (as curl and git do), not only uv's bundled roots:
# a machine behind a TLS-inspecting proxy trusts it there.
export UV_SYSTEM_CERTS=${UV_SYSTEM_CERTS:-1}
