#!/usr/bin/env bash
# One-command set-up for a fresh Debian/Ubuntu machine with python3 and git.
#   bash bootstrap.sh app [DATASET]   install into .venv and open the dashboard (default: sample_data/digits)
#   bash bootstrap.sh test [ARGS...]  install everything the tests need (incl. Chromium) and run the whole suite
# Re-running is cheap: installed pieces are kept. Each phase prints one line when it starts and
# one when it ends (with its time); pip's full output goes to .venv/setup.log.
#
# Which torch (the biggest piece by far), in this order:
#   1. the machine's own: when the system python3 already imports torch >= 2.4 and
#      torchvision >= 0.19 (a GPU image with torch preinstalled), the venv sees the system
#      site-packages and reuses them instead of downloading several GB again;
#   2. the CPU build: when no NVIDIA GPU is present and https://download.pytorch.org/whl/cpu
#      answers (~0.7 GB instead of ~5.5 GB of CUDA libraries nobody will use);
#   3. PyPI's default build otherwise (on x86_64 that is the CUDA build).
# RECIPE_TORCH=system|cpu|pypi forces one; RECIPE_TORCH_INDEX names another CPU index.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${RECIPE_VENV:-.venv}
LOG="$VENV/setup.log"
CPU_INDEX=${RECIPE_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
TORCH_SPEC=("torch>=2.4" "torchvision>=0.19")
PHASE=0
PHASES=4
PHASE_START=$SECONDS

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

phase() {  # phase TEXT: announce the next phase
  PHASE=$((PHASE + 1))
  PHASE_START=$SECONDS
  printf '[setup %d/%d] %s\n' "$PHASE" "$PHASES" "$1"
}

phase_done() {  # phase_done [DETAIL]
  printf '[setup %d/%d] done in %ds%s\n' "$PHASE" "$PHASES" $((SECONDS - PHASE_START)) "${1:+: $1}"
}

pip_install() {  # pip_install ARGS...: one short line per package, the rest in the log
  echo "+ pip install $*" >>"$LOG"
  if ! "$VENV/bin/python" -m pip install --progress-bar off "$@" 2>>"$LOG" \
    | tee -a "$LOG" | awk '
        /^Collecting / { n++; printf "    %3d  %s\n", n, $2; fflush() }
        /^Processing .*\.whl/ { n++; k = split($2, f, "/"); split(f[k], w, "-")
                                printf "    %3d  %s %s (local file)\n", n, w[1], w[2]; fflush() }
        /^Successfully installed/ { print "    installed " NF - 2 " packages"; fflush() }'
  then
    echo "pip failed; the last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2
    exit 1
  fi
}

system_torch() {  # the system python3's torch and torchvision, when both are new enough
  python3 - 2>/dev/null <<'EOF'
import torch, torchvision
def v(s): return tuple(int(p) for p in s.split("+")[0].split(".")[:2])
assert v(torch.__version__) >= (2, 4) and v(torchvision.__version__) >= (0, 19)
print(torch.__version__, torchvision.__version__)
EOF
}

has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

choose_torch() {  # prints system | cpu | pypi, and why, on stderr
  local choice=${RECIPE_TORCH:-}
  if [ -n "$choice" ]; then echo "$choice"; return; fi
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import torch, torchvision' 2>/dev/null; then
    echo installed; return
  fi
  if system_torch >/dev/null; then echo system; return; fi
  if ! has_gpu && curl -sf -o /dev/null --max-time 5 "$CPU_INDEX/torch/"; then echo cpu; return; fi
  echo pypi
}

ensure_venv() {
  phase "Python environment ($VENV)"
  TORCH=$(choose_torch)
  if [ ! -x "$VENV/bin/python" ]; then
    local flags=()
    [ "$TORCH" = system ] && flags=(--system-site-packages)
    if ! python3 -m venv "${flags[@]}" "$VENV" 2>/dev/null; then
      echo "    python3-venv is missing; installing it with apt-get" >&2
      as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv
      python3 -m venv "${flags[@]}" "$VENV"
    fi
  fi
  : >"$LOG"
  "$VENV/bin/python" -m pip install -q --upgrade pip >>"$LOG" 2>&1 || true
  phase_done "$("$VENV/bin/python" --version)"
}

ensure_torch() {
  case "$TORCH" in
    installed) phase "PyTorch: already in $VENV" ;;
    system) phase "PyTorch: reusing the machine's torch $(system_torch) (system site-packages)" ;;
    cpu) phase "PyTorch: the CPU build (no NVIDIA GPU here; $CPU_INDEX answers)"
         pip_install --index-url "$CPU_INDEX" "${TORCH_SPEC[@]}" ;;
    pypi) if has_gpu; then phase "PyTorch: PyPI's build (an NVIDIA GPU is present)"
          else phase "PyTorch: PyPI's build (no CPU index reachable at $CPU_INDEX; on x86_64 this is the CUDA build)"; fi
          pip_install "${TORCH_SPEC[@]}" ;;
    *) echo "RECIPE_TORCH=$TORCH: use system, cpu or pypi" >&2; exit 2 ;;
  esac
  phase_done "$("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")' 2>/dev/null)"
}

ensure_chromium() {
  phase "Chromium for the real-browser tests"
  if [ ! -x /usr/bin/chromium ]; then
    as_root apt-get update -qq >>"$LOG" 2>&1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >>"$LOG" 2>&1
  fi
  phase_done "$(/usr/bin/chromium --version 2>/dev/null)"
}

ensure_recipe() {  # ensure_recipe EXTRA
  phase "Recipe and its packages (.[$1])"
  pip_install -e ".[$1]"
  phase_done "$(du -sh "$VENV" 2>/dev/null | cut -f1) in $VENV"
}

cmd=${1:-}
shift || true
case "$cmd" in
  app)
    ensure_venv
    ensure_torch
    ensure_recipe app
    phase "Starting the dashboard"
    exec "$VENV/bin/recipe" app "${@:-sample_data/digits}"
    ;;
  test)
    PHASES=5
    ensure_venv
    ensure_torch
    ensure_chromium
    ensure_recipe dev
    phase "Running the test suite"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: bash bootstrap.sh app [DATASET] | bash bootstrap.sh test [PYTEST ARGS]" >&2
    exit 2
    ;;
esac
