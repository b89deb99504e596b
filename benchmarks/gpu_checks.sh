#!/usr/bin/env bash
# The GPU checks of docs/performance.md in one call: throughput.py on CUDA, then the GPU grid (the imbalanced
# suite, 10 losses x 10 seeds, one stacked model per dataset), with the GPU's utilisation sampled by nvidia-smi.
#
# Data: the machine has only the repository. Prepare the caches once in the checkout (they are ignored by git):
#   benchmarks/gpu_checks.sh --prepare /path/to/openml_cache
# which copies the OpenML cache to .gpu-cache/openml and fills lossbench's own Parquet cache in .gpu-cache/lossbench
# (so neither the network nor the openml package is needed there). Then, on the GPU machine, from the repo root:
#   OUT=/some/folder bash benchmarks/gpu_checks.sh         # with the device tool: carry [".gpu-cache"]
# Sizes (environment): DATASETS (throughput grid, default 6), GRID_SEEDS (10), STEP_TIMEOUT (seconds per step,
# default 240); GRID_EXTRA (more `lossbench run` arguments, e.g. "--dataset openml:1068"), DEVICE (cuda; cpu for a
# smoke test of the script itself), SKIP_THROUGHPUT=1. Everything printed is also written under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CACHE=$PWD/.gpu-cache

if [[ "${1:-}" == "--prepare" ]]; then
    src=${2:?usage: gpu_checks.sh --prepare OPENML_CACHE_DIR}
    mkdir -p "$CACHE" && rm -rf "$CACHE/openml" && cp -r "$src" "$CACHE/openml"
    LOSSBENCH_CACHE_DIR=$CACHE/lossbench OPENML_CACHE_DIR=$CACHE/openml PYTHONPATH=$PWD $PY -c "
from lossbench.sources import load_dataset
from lossbench.suite import load_suite
for uri in load_suite('imbalanced').datasets:
    print(uri, len(load_dataset(uri).y))"
    du -sh "$CACHE"
    exit
fi

OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 LOSSBENCH_CACHE_DIR=$CACHE/lossbench OPENML_CACHE_DIR=$CACHE/openml
DATASETS=${DATASETS:-6}
GRID_SEEDS=${GRID_SEEDS:-10}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
DEVICE=${DEVICE:-cuda}
read -r -a EXTRA <<< "${GRID_EXTRA:-}"
LOSSES=(ce weighted-ce focal label-smoothing balanced-softmax logit-adjust cb-focal ldam gce anyloss-f1)
exec > >(tee "$OUT/gpu_checks.log") 2>&1

echo "== machine"
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
lscpu | grep -m1 "Model name" || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
missing=$($PY -c "
import importlib.util as u
print(' '.join(m for m in ('typer', 'rich', 'sklearn', 'pandas', 'pyarrow', 'joblib', 'scipy', 'threadpoolctl',
                             'psutil') if u.find_spec(m) is None))")
[[ -n "$missing" ]] && echo "missing packages: $missing (carry them as wheels)" && exit 3
[[ -d "$CACHE/lossbench" ]] || { echo "no $CACHE: run benchmarks/gpu_checks.sh --prepare DIR first"; exit 3; }

sample() {  # GPU utilisation every 200 ms into $OUT/$1.csv, until killed
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 \
        > "$OUT/$1.csv" 2>/dev/null &
    echo $!
}
summary() {  # mean utilisation and the share of samples over 50 %
    awk -F', ' -v what="$1" '{n++; s+=$2; if ($2 > 50) busy++; if ($3 > m) m=$3}
        END {if (n) printf "%s: GPU utilisation mean %.0f%%, >50%% in %.0f%% of %d samples, peak memory %d MiB\n",
             what, s/n, 100*busy/n, n, m; else print what ": no nvidia-smi samples"}' "$OUT/$2.csv"
}

if [[ -z "${SKIP_THROUGHPUT:-}" ]]; then
    echo "== throughput.py on $DEVICE ($DATASETS datasets; the plain loop stays on the CPU)"
    pid=$(sample throughput)
    timeout "$STEP_TIMEOUT" $PY benchmarks/throughput.py --openml-cache "$CACHE/openml" --datasets "$DATASETS" \
        --device "$DEVICE" --variants vec-seq,seq
    echo "exit $?"
    kill "$pid" 2>/dev/null
    summary "throughput.py" throughput
fi

echo "== GPU grid: imbalanced, ${#LOSSES[@]} losses x $GRID_SEEDS seeds, --device $DEVICE ${EXTRA[*]}"
args=()
for loss in "${LOSSES[@]}"; do args+=(--loss "$loss"); done
pid=$(sample grid)
start=$(date +%s.%N)
timeout "$STEP_TIMEOUT" $PY -m lossbench run --suite imbalanced "${args[@]}" --seeds "$GRID_SEEDS" --device "$DEVICE" \
    "${EXTRA[@]}" --n-jobs 1 --openml-cache "$CACHE/openml" --out "$OUT/grid" --progress-every 15
status=$?
echo "exit $status after $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s wall"
kill "$pid" 2>/dev/null
summary "GPU grid" grid
$PY - "$OUT/grid" <<'EOF'
import sys
from lossbench.results import load_trials
t = load_trials([sys.argv[1]])
print(f"{len(t)} trials; status {t['status'].value_counts().to_dict()}; modes {t['training_mode'].value_counts().to_dict()}")
print(f"train_s sum {t['train_s'].sum():.1f} s, wall_s sum {t['wall_s'].sum():.1f} s, device {set(t['device'])}")
EOF
rm -rf "$OUT/grid"  # only the log and the samples come back
