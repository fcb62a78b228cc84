#!/usr/bin/env bash
# Install the e2e harness dependencies (idempotent):
#   tests/e2e/.venv         Python venv with requirements.txt (+ constraints.txt pins)
#   tests/e2e/node_modules  npm ci from package-lock.json
# Needs python3 (>= 3.10, with venv) and node (>= 18) + npm. Only package registries are contacted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON="${PYTHON:-python3}"
VENV=.venv

log() { printf 'e2e setup: %s\n' "$*" >&2; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---- Python -----------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  log "creating $VENV with $("$PYTHON" --version 2>&1)"
  rm -rf "$VENV"
  if ! "$PYTHON" -m venv "$VENV" 2>/tmp/steward-e2e-venv.err; then
    # Debian ships venv/ensurepip separately (python3-venv / python3.X-venv).
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "python venv module unavailable; installing python3-venv with apt-get"
      ver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv "python${ver}-venv" >/dev/null 2>&1 \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$VENV"
      "$PYTHON" -m venv "$VENV"
    else
      cat /tmp/steward-e2e-venv.err >&2
      log "cannot create a venv: install python3-venv"
      exit 1
    fi
  fi
fi

want="$(hash_of requirements.txt constraints.txt)"
if [ "$(cat "$VENV/.steward-e2e-stamp" 2>/dev/null)" != "$want" ]; then
  log "pip install -r requirements.txt"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
  echo "$want" > "$VENV/.steward-e2e-stamp"
else
  log "python dependencies up to date"
fi

# ---- Node -------------------------------------------------------------------
command -v node >/dev/null || { log "node not found (need node >= 18)"; exit 1; }
command -v npm >/dev/null || { log "npm not found"; exit 1; }
want="$(hash_of package.json package-lock.json)"
if [ ! -d node_modules ] || [ "$(cat node_modules/.steward-e2e-stamp 2>/dev/null)" != "$want" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.steward-e2e-stamp
else
  log "node dependencies up to date"
fi

log "ok ($("$VENV/bin/python" -c 'import importlib.metadata as m; print("mcp", m.version("mcp"), "/ mcp-server-time", m.version("mcp-server-time"))'), node $(node --version))"
