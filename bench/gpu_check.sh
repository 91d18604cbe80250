#!/usr/bin/env bash
# bench/gpu_check.sh: archlab's first run on a GPU, in under 10 minutes on one CUDA GPU.
#
#   bash bench/gpu_check.sh                    # the virtualenv at .venv
#   VENV=/opt/venv bash bench/gpu_check.sh     # another one (it needs a CUDA build of torch)
#   GPU_CHECK_OUT=/somewhere bash bench/gpu_check.sh   # keep the logs and studies there
#
# Prints, step by step: the GPU tests; p3d63's latency at 16x112x112 on CUDA in fp32 and bf16;
# p3d63's clips/s at batch 16; proxy trials per hour at --gpus-per-trial 0.25 against 1; and a
# 2-trial search end to end with its report. Each step runs under its own time budget (below,
# B_*); a step that fails or runs out of time prints one line and the next step runs; the
# script exits 1 at the end if any step failed. Nothing is downloaded. Without a CUDA GPU it
# prints one line and exits 0. What it prints and the figures: docs/guide/gpu.md.
# tests/test_gpu_check.py parses every archlab command line below with the real CLI parser.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."  # the repository root
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
ARCHLAB=("$PY" -m archlab)

# Time budgets of the steps, in seconds. Their sum, plus KILL_AFTER per step, stays under 600
# (tests/test_gpu_check.py checks it).
KILL_AFTER=5      # a budget run out: SIGINT (as Ctrl-C: a search shuts Ray down), SIGKILL this much later
B_PROBE=40        # import torch, ask for the GPU, versions (also the no-GPU check)
B_SMI=15          # nvidia-smi
B_TESTS=55        # the GPU tests
B_LATENCY=35      # each of: latency fp32, latency bf16, clips/s
B_PROXY=110       # each of: the proxy search at 0.25 and at 1 GPU per trial
B_SEARCH=75       # the 2-trial search end to end
B_REPORT=30       # its report

TARGET=p3d63
TARGET_INPUT=16x112x112
THROUGHPUT_BATCH=16
PROXY_TRIALS=8    # two full waves of 4 at --gpus-per-trial 0.25
# The tests that behave differently when torch sees a CUDA GPU (no test is marked for CUDA):
GPU_TESTS=(
  # `archlab train` with the default device auto: trains on CUDA (bf16 autocast, channels_last_3d), resumes
  tests/test_cli_train.py::test_train_writes_checkpoints_and_metrics_then_resumes
  tests/test_cli_train.py::test_train_as_a_subprocess
  # cuda:N beyond the GPUs torch sees is one line naming how many it sees
  tests/test_util.py::test_resolve_device
  # `archlab calibrate --device cuda` is one line, exit 2 (CUDA calibration is not implemented)
  tests/test_calibrate.py::test_calibrate_cli_prints_the_table_then_uses_the_cache
  # CPU-only checks that must skip, not fail, where a GPU is present
  tests/test_profile.py::test_cuda_request_without_gpu_is_user_error
  tests/test_calibrate.py::test_profile_with_a_device_auto_looks_up_the_resolved_device
)

# ---- is there a GPU? (one line and exit 0 where there is none) --------------------------------

if [[ ! -x $PY ]]; then
  echo "gpu_check: no Python at $PY (set VENV to the virtualenv): failed"
  exit 2
fi
probe_err=$(mktemp)
probe_rc=0
probe=$(timeout --kill-after="$KILL_AFTER" "$B_PROBE" "$PY" -c '
import platform
import torch
ok = torch.cuda.is_available()
cudnn = torch.backends.cudnn.version() if ok else None
print(ok, torch.__version__, torch.version.cuda, cudnn, torch.cuda.device_count() if ok else 0, platform.python_version())
' 2>"$probe_err") || probe_rc=$?
if ((probe_rc != 0)); then
  echo "gpu_check: torch does not answer in $PY (exit $probe_rc): $(grep -v '^\s*$' "$probe_err" | tail -n 1): failed"
  rm -f "$probe_err"
  exit 2
fi
rm -f "$probe_err"
read -r cuda_ok torch_v cuda_v cudnn_v n_gpus python_v <<<"$(tail -n 1 <<<"$probe")"
if [[ $cuda_ok != True ]]; then
  echo "gpu_check: no CUDA GPU here (torch.cuda.is_available() is False): skipped"
  exit 0
fi
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_check: no CUDA GPU here (nvidia-smi not found): skipped"
  exit 0
fi

# ---- header -----------------------------------------------------------------------------------

# One GPU: the trials-per-hour figures are per GPU. A caller's own choice is kept.
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
export RAY_USAGE_STATS_ENABLED=0 WANDB_MODE=disabled PYTHONUNBUFFERED=1
WORK=${GPU_CHECK_OUT:-$(mktemp -d -t gpu_check.XXXXXX)}
mkdir -p "$WORK"
STUDIES="$WORK/studies-$(date -u +%Y%m%d-%H%M%S)"  # a new one per run: a study of the same name would continue
START=$SECONDS

echo "gpu_check: archlab on a CUDA GPU, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo 'no git')"
smi=$(timeout --kill-after="$KILL_AFTER" "$B_SMI" nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1) ||
  smi="nvidia-smi failed: $(tail -n 1 <<<"$smi")"
while IFS= read -r line; do echo "  gpu      $line"; done <<<"$smi"
echo "  torch    $torch_v  ·  cuda $cuda_v  ·  cudnn $cudnn_v  ·  $n_gpus GPU(s) visible  ·  CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"
echo "  cpus     $(nproc)  ·  python $python_v"
echo "  logs     $WORK"

# ---- steps ------------------------------------------------------------------------------------

N=0
FAILED=()
LOG=""
ELAPSED=0

# step NAME BUDGET COMMAND...: COMMAND under `timeout BUDGET`, its output in $LOG, its time in $ELAPSED.
step() {
  local name=$1 budget=$2
  shift 2
  N=$((N + 1))
  LOG="$WORK/$(printf %02d "$N")-${name//[^A-Za-z0-9.]/-}.log"
  echo
  echo "[$N] $name (budget $budget s)"
  local t0 rc=0
  t0=$(date +%s.%N)
  timeout --signal=INT --kill-after="$KILL_AFTER" "$budget" "$@" >"$LOG" 2>&1 </dev/null || rc=$?
  ELAPSED=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if ((rc != 0)); then
    local why="exit $rc"
    ((rc == 124 || rc == 137)) && why="timed out after $budget s"
    fail "$name" "$why: $(last_line "$LOG")"
  fi
  return "$rc"
}

# last_line FILE: its last non-empty line, cut to 200 characters ("no output" if none).
last_line() {
  local line
  line=$(grep -v '^\s*$' "$1" | tail -n 1 | cut -c1-200 || true)
  echo "${line:-no output}"
}

# fail NAME WHY: the step's one line.
fail() {
  echo "  FAILED: $1 ($2; log: $LOG)"
  FAILED+=("$1")
}

# show LABEL REGEX: the first line of $LOG that matches, or the step fails.
show() {
  local line
  line=$(grep -m 1 -E "$2" "$LOG" || true)
  if [[ -n $line ]]; then
    echo "  $1: $line"
  else
    fail "$1" "no line matching '$2' in its output"
  fi
}

# search_ok TRIALS NAME: the search's closing line ("8 finished, 0 failed, 3 rejected in 41 s (...)"),
# in $SUMMARY; the step fails unless all TRIALS finished and none failed.
search_ok() {
  local want=$1 summary fin failed
  summary=$(grep -m 1 -E '^[0-9]+ finished, [0-9]+ failed' "$LOG" || true)
  if [[ -z $summary ]]; then
    fail "$2" "no summary line in its output"
    return 1
  fi
  fin=${summary%% finished*}
  failed=$(sed -E 's/^[0-9]+ finished, ([0-9]+) failed.*/\1/' <<<"$summary")
  SUMMARY=${summary%%  ·  results:*}
  if ((fin < want || failed > 0)); then
    fail "$2" "$SUMMARY"
    grep -E '^  #[0-9]+ failed:' "$LOG" | head -n 3 | sed 's/^/    /' || true
    return 1
  fi
}

# 1. the GPU tests
if step "GPU tests" "$B_TESTS" "$PY" -m pytest -q -p no:cacheprovider -ra "${GPU_TESTS[@]}"; then
  grep -E '^SKIPPED' "$LOG" | cut -c1-160 | sed 's/^/  /' || true
  echo "  pytest: $(last_line "$LOG")"
else
  grep -E '^(FAILED|ERROR) ' "$LOG" | cut -c1-160 | sed 's/^/    /' || true
fi

# 2-4. the target's latency in fp32 and bf16, and p3d63's clips/s at a larger batch
if step "latency fp32" "$B_LATENCY" "${ARCHLAB[@]}" profile "$TARGET" --input "$TARGET_INPUT" --device cuda --form fp32/ncdhw --batch 1 --runs 20 --counter fast; then
  show "$TARGET $TARGET_INPUT batch 1 fp32/ncdhw" '^latency '
fi
if step "latency bf16" "$B_LATENCY" "${ARCHLAB[@]}" profile "$TARGET" --input "$TARGET_INPUT" --device cuda --form bf16/cl3d --batch 1 --runs 20 --counter fast; then
  show "$TARGET $TARGET_INPUT batch 1 bf16/cl3d" '^latency '
fi
if step "clips per second" "$B_LATENCY" "${ARCHLAB[@]}" profile "$TARGET" --input "$TARGET_INPUT" --device cuda --form bf16/cl3d --batch "$THROUGHPUT_BATCH" --runs 10 --counter fast; then
  show "$TARGET $TARGET_INPUT batch $THROUGHPUT_BATCH bf16/cl3d" 'clips/s'
fi

# 5-6. proxy trials per hour: the same short search (same seed) at 0.25 and at 1 GPU per trial
declare -A RATE=()
proxies() {
  local gpus=$1
  if step "proxies at $gpus GPU per trial" "$B_PROXY" "${ARCHLAB[@]}" search --space interleave --trials "$PROXY_TRIALS" --epochs 2 --train-clips 600 --val-clips 150 --gpus-per-trial "$gpus" --confirm-seeds 0 --latency-passes 0 --wandb off --seed 0 --name "proxies-$gpus" --out "$STUDIES" &&
    search_ok "$PROXY_TRIALS" "proxies at $gpus GPU per trial"; then
    local at_once fin
    at_once=$(grep -m 1 -oE '[0-9]+ at a time' "$LOG" || echo '? at a time')
    fin=${SUMMARY%% finished*}
    RATE[$gpus]=$(awk -v n="$fin" -v s="$ELAPSED" 'BEGIN { printf "%.3f", n * 3600 / s }')
    echo "  --gpus-per-trial $gpus: $fin trials, $at_once, $ELAPSED s wall -> $(printf %.0f "${RATE[$gpus]}") trials/hour"
    echo "    search: $SUMMARY"
  fi
}
echo
echo "proxy: interleave space, 2 epochs of 600 synthetic 8x32x32 clips, $PROXY_TRIALS trials, no confirm step; wall clock includes start-up"
proxies 0.25
proxies 1
if [[ -n ${RATE[0.25]:-} && -n ${RATE[1]:-} ]]; then
  echo
  echo "  0.25 against 1 GPU per trial: $(awk -v a="${RATE[0.25]}" -v b="${RATE[1]}" 'BEGIN { printf "%.0f / %.0f trials/hour = %.2fx", a, b, a / b }')"
fi

# 7-8. a 2-trial search end to end (latencies measured again, a confirm seed), then its report
if step "2-trial search" "$B_SEARCH" "${ARCHLAB[@]}" search --space interleave --trials 2 --epochs 2 --train-clips 600 --val-clips 150 --gpus-per-trial 0.5 --confirm-seeds 1 --latency-passes 2 --wandb off --seed 0 --name e2e --out "$STUDIES" &&
  search_ok 2 "2-trial search"; then
  sed -n '/^Pareto front/,/^$/p' "$LOG" | grep -v '^$' | cut -c1-160 | sed 's/^/  /'
  echo "  search: $SUMMARY"
  if step "report" "$B_REPORT" "${ARCHLAB[@]}" report "$STUDIES/e2e"; then
    show "report" '^wrote '
  fi
fi

# ---- verdict ----------------------------------------------------------------------------------

echo
total=$((SECONDS - START))
if ((${#FAILED[@]})); then
  echo "gpu_check: ${#FAILED[@]} step(s) failed ($(IFS=,; echo "${FAILED[*]}")) in $((total / 60)) min $((total % 60)) s; logs in $WORK"
  exit 1
fi
echo "gpu_check: all $N steps passed in $((total / 60)) min $((total % 60)) s; logs and studies in $WORK"
