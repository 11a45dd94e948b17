#!/usr/bin/env bash
# The README's test command: does all set-up on a fresh machine, then runs the whole test suite, including the
# PostgreSQL leg (127.0.0.1:5432), the notebooks, the main job's smoke run and the benchmark smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# 1. Debian packages: headless Chromium renders evidence pack pages in the tests.
# fonts-wqy-zenhei: the bilingual pages' Chinese text renders as glyphs in the kept screenshots.
# chromium-driver: selenium drives the auditor's web view in tests/web.
# poppler-utils: pdftoppm rasterises the validation report's PDF in the operations tests.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 || ! dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; then
  log "installing chromium and a CJK font (Debian packages) for the evidence page tests"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei poppler-utils >/dev/null
fi

# 2. PostgreSQL must be reachable: the tests fail loudly rather than skip it.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  log "PostgreSQL not answering on 127.0.0.1:5432: trying to start the local cluster"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
fi

# 3. Python environment with every extra the tests exercise.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
log "installing modelreg with all extras"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[all]'

export MLFLOW_DISABLE_TELEMETRY=true

# 4. NannyML, the independent oracle of the label-free estimate (tests/latelabels): it pins lightgbm<4.6 and
# plotly<6, so it lives in a venv of its own; reused when present. With CI=true its test fails without it.
CACHE=${MODELREG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelreg}
if [ ! -x "$CACHE/nannyml-venv/bin/python" ] || ! "$CACHE/nannyml-venv/bin/python" -c "import nannyml, statsmodels" 2>/dev/null; then
  log "creating the nannyml venv ($CACHE/nannyml-venv)"
  mkdir -p "$CACHE"
  "$PY" -m venv "$CACHE/nannyml-venv"
  "$CACHE/nannyml-venv/bin/python" -m pip install -q nannyml==0.13.1 statsmodels pyarrow >/dev/null
fi
export MODELREG_NANNYML_PYTHON="$CACHE/nannyml-venv/bin/python"

log "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check modelreg monitors tests benchmarks >/dev/null || { echo "ruff format: run .venv/bin/ruff format"; exit 1; }

log "pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
