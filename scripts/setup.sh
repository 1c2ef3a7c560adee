# Sourced by scripts/run.sh and scripts/test.sh: a virtual environment with everything installed, once.
# Usage: . scripts/setup.sh run|test
set -euo pipefail
profile="${1:-run}"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
stamp=".venv/.installed-${profile}-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  python -m pip install -q --upgrade pip
  if [ "$profile" = test ]; then
    # The CPU build of torch lies on this machine's disk; a plain `torch` requirement would pull a CUDA build.
    python -m pip install -q "torch==2.13.0"
    python -m pip install -q -e ".[st,test]"
  else
    python -m pip install -q -e .
  fi
  touch "$stamp"
fi
if [ "$profile" = test ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
   && { [ ! -x /usr/bin/chromium ] || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1 || ! command -v npm >/dev/null; }; then
  # Debian's Chromium for the browser tests (Playwright must not download its own browser here), CJK fonts
  # so the screenshots show Chinese rather than boxes, and npm, with which the tests install axe-core.
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk npm >/dev/null
fi
if [ "$profile" = test ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
   && { [ ! -x /usr/sbin/nginx ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }; then
  # The scale-out tests run real servers on loopback: Debian's nginx in front of two replicas, and PostgreSQL
  # for the shared feedback table (tests/services.py starts each in a scratch folder; no system service is used).
  [ -n "$(ls /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx postgresql >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx postgresql >/dev/null; }
fi
# The bundled embedding engine's threads spin between calls without this; tests never reach a model hub.
export OMP_WAIT_POLICY=passive HF_HUB_OFFLINE=1 ANONYMIZED_TELEMETRY=False
