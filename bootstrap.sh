#!/usr/bin/env bash
# One-command set-up for a fresh Debian/Ubuntu machine with python3 and git.
#   bash bootstrap.sh app [DATASET]   install into .venv and open the dashboard (default: sample_data/digits)
#   bash bootstrap.sh test [ARGS...]  install everything the tests need (incl. Chromium) and run the whole suite
# Re-running is cheap: installed pieces are kept.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${RECIPE_VENV:-.venv}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      echo "python3-venv is missing; installing it with apt-get" >&2
      as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv
      python3 -m venv "$VENV"
    fi
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    echo "Installing Debian's Chromium for the real-browser tests (apt-get)" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  app)
    ensure_venv
    "$VENV/bin/python" -m pip install -q -e '.[app]'
    exec "$VENV/bin/recipe" app "${@:-sample_data/digits}"
    ;;
  test)
    ensure_venv
    ensure_chromium
    "$VENV/bin/python" -m pip install -q -e '.[dev]'
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: bash bootstrap.sh app [DATASET] | bash bootstrap.sh test [PYTEST ARGS]" >&2
    exit 2
    ;;
esac
