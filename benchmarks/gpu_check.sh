#!/usr/bin/env bash
# GPU acceptance check for the training engine: the CUDA unit tests (-m gpu) and the overhead
# benchmark (small_cnn and resnet18, 32x32 synthetic, bf16 autocast + channels_last), plus the
# CPU overhead benchmark on the (unloaded) GPU box. Budget: <= 5 min on a fresh H100 with torch
# preinstalled. Everything goes to $OUT/gpu_log.txt (OUT defaults to ./gpu_check_out).
#
#   OUT=/tmp/out bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_log.txt"
PY="${PYTHON:-python3}"
exec > >(tee "$LOG") 2>&1
export PYTHONUNBUFFERED=1

echo "== gpu_check $(date -u +%FT%TZ) on $(hostname)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
          'available', torch.cuda.is_available())"

# Pure-python dependencies: install only the missing ones (the box may be offline: then warn).
missing=()
for pair in pandas:pandas pyarrow:pyarrow typer:typer rich:rich sklearn:scikit-learn \
            scipy:scipy cleanlab:cleanlab pytest:pytest; do
  "$PY" -c "import ${pair%%:*}" 2>/dev/null || missing+=("${pair##*:}")
done
if ((${#missing[@]})); then
  echo "installing missing: ${missing[*]}"
  "$PY" -m pip install -q "${missing[@]}" || echo "WARN: could not install ${missing[*]}; continuing"
fi
# The package itself (no deps: torch is already there). Offline, build isolation cannot fetch
# setuptools, so fall back to the installed one, then to PYTHONPATH.
"$PY" -m pip install -q -e . --no-deps 2>/dev/null \
  || "$PY" -m pip install -q -e . --no-deps --no-build-isolation 2>/dev/null \
  || echo "WARN: editable install failed; using PYTHONPATH"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

status=0
echo "== CUDA unit tests (pytest -m gpu)"
timeout 150 "$PY" -m pytest tests/test_train.py -m gpu -q -rA -p no:cacheprovider || status=1

echo "== overhead benchmark: cuda"
timeout 420 "$PY" benchmarks/train_overhead.py --device cuda --model resnet18 small_cnn || status=1

echo "== overhead benchmark: cpu, 1 thread"
timeout 90 "$PY" benchmarks/train_overhead.py --device cpu --model mlp small_cnn --threads 1 \
  --steps 150 --batch-size 64 --image-size 16 --train-images 1024 --repeats 3 || status=1

echo "== summary"
grep -E "^RESULT|passed|failed|error" "$LOG" | grep -v "^== " || true
echo "== done: status $status"
exit "$status"
