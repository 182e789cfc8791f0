#!/usr/bin/env bash
# GPU smoke check, to run as is on a machine with one CUDA GPU and mtdnn installed over a CUDA
# build of torch 2.13.0:
#   - the smoke and default profiles built through Snakemake (results/glue.csv) on one GPU in bf16,
#     with torch.compile off and on, through workflow/profiles/gpu with --resources gpu=1 (training
#     jobs take the GPU one at a time);
#   - per training job: examples/s and torch's peak allocated GPU memory (from train_summary.json),
#     plus the device-wide peak sampled by nvidia-smi during the build;
#   - results/metrics.json of every GPU build compared, metric by metric, with a CPU build of the
#     same profile on the same data (fails if a value differs by more than TOL points).
#
#   benchmarks/gpu_smoke.sh                       # everything (needs a GPU)
#   PROFILES=smoke COMPILES=false benchmarks/gpu_smoke.sh
#   benchmarks/gpu_smoke.sh --cpu-only            # the CPU reference builds and the report only
#
# Environment (all optional):
#   GLUE_DIR      local GLUE copy (default: ../shared/data/glue beside the repository)
#   OUT_DIR       where gpu_smoke.{json,md} and the build logs go (default benchmarks/gpu_smoke-out)
#   PROFILES      GPU builds (default "smoke default");  COMPILES  (default "false true")
#   CPU_PROFILES  profiles that also get a CPU reference build (default "smoke": the default
#                 profile takes ~40 min on a 2-core CPU); CPU_REF_<profile>=FILE uses the
#                 results/metrics.json of an earlier CPU build instead
#   CORES         snakemake --cores (default: all);  TOL  metric tolerance in points (default 3.0)
#   KEEP=1        keep the scratch projects (printed at the end)
# Exit status: 0 all builds ran and agree within TOL, 1 a metric differs by more, 2 setup error.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO/benchmarks/gpu_smoke-out}
PROFILES=${PROFILES:-smoke default}
COMPILES=${COMPILES:-false true}
CPU_PROFILES=${CPU_PROFILES:-smoke}
CORES=${CORES:-$(nproc)}
TOL=${TOL:-3.0}
export GLUE_DIR=${GLUE_DIR:-$REPO/../shared/data/glue}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
CPU_ONLY=0
[[ ${1:-} == --cpu-only ]] && CPU_ONLY=1

die() {
    echo "gpu_smoke: $*" >&2
    exit 2
}

[[ -f $GLUE_DIR/SHA256SUMS ]] || die "no GLUE copy at GLUE_DIR=$GLUE_DIR; set GLUE_DIR"
command -v mtdnn >/dev/null || die "mtdnn is not on PATH (pip install -e . in this repository)"
command -v snakemake >/dev/null || die "snakemake is not on PATH"
if ((!CPU_ONLY)); then
    python -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' ||
        die "torch sees no CUDA device ($(python -c 'import torch; print(torch.__version__)')); --cpu-only runs the CPU part"
    command -v nvidia-smi >/dev/null || die "nvidia-smi is not on PATH"
fi

mkdir -p "$OUT_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_smoke.XXXXXX")
SAMPLER="" BUILD=""
# stop PID: SIGTERM (Snakemake then stops its running jobs), SIGKILL after 60 s.
stop() {
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 60); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 1
    done
    kill -9 "$1" 2>/dev/null || true
}
cleanup() {
    # A killed script must not leave a build or the sampler behind.
    if [[ -n $BUILD ]]; then stop "$BUILD"; fi
    if [[ -n $SAMPLER ]]; then stop "$SAMPLER"; fi
    if [[ ${KEEP:-0} == 1 ]]; then echo "gpu_smoke: scratch projects kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# A fresh project copy (workflow + the profile as params.yaml) with precision/compile set for
# every training stage: bf16 on the GPU; on the CPU the profile's own `auto`.
project() {
    local dir=$1 profile=$2 device=$3 compile=$4
    mkdir -p "$dir"
    cp -r "$REPO/workflow" "$dir/"
    (cd "$dir" && mtdnn profile "$profile" 2>/dev/null)
    python - "$dir/params.yaml" "$device" "$compile" <<'PY'
import sys

import yaml

path, device, compile_ = sys.argv[1], sys.argv[2], sys.argv[3] == "true"
with open(path) as f:
    params = yaml.safe_load(f)
for stage in ("mtl", "finetune", "adapt"):
    params[stage]["compile"] = compile_
    if device == "gpu":
        params[stage]["precision"] = "bf16"
with open(path, "w") as f:
    yaml.safe_dump(params, f, sort_keys=False)
PY
}

# build NAME PROFILE DEVICE COMPILE: one Snakemake build of results/glue.csv, timed.
build() {
    local name=$1 profile=$2 device=$3 compile=$4
    local dir=$WORK/$name
    project "$dir" "$profile" "$device" "$compile"
    echo "gpu_smoke: $name: building results/glue.csv ($profile profile, $device, compile $compile)"
    if [[ $device == gpu ]]; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$dir/gpu_memory.csv" &
        SAMPLER=$!
    fi
    local start=$SECONDS status=0
    (
        cd "$dir"
        # exec: the background pid is Snakemake itself, so cleanup can stop it. On the GPU, the
        # one-machine GPU profile: one training job at a time, on its own device (the README's
        # command); CPU-only stages alongside.
        if [[ $device == gpu ]]; then
            exec snakemake results/glue.csv --profile workflow/profiles/gpu --cores "$CORES" --resources gpu=1
        fi
        export CUDA_VISIBLE_DEVICES=""
        exec snakemake results/glue.csv --cores "$CORES"
    ) >"$OUT_DIR/$name.log" 2>&1 &
    BUILD=$!
    wait "$BUILD" || status=$?
    BUILD=""
    echo $((SECONDS - start)) >"$dir/wall_seconds"
    if [[ -n $SAMPLER ]]; then
        kill "$SAMPLER" 2>/dev/null || true
        wait "$SAMPLER" 2>/dev/null || true
        SAMPLER=""
    fi
    if ((status)); then
        tail -n 20 "$OUT_DIR/$name.log" >&2
        die "$name: build failed (full log: $OUT_DIR/$name.log)"
    fi
    BUILDS+=("$name=$dir")
}

BUILDS=()
for profile in $CPU_PROFILES; do
    build "$profile-cpu" "$profile" cpu false
done
if ((!CPU_ONLY)); then
    for profile in $PROFILES; do
        for compile in $COMPILES; do
            build "$profile-gpu-compile-$compile" "$profile" gpu "$compile"
        done
    done
fi

refs=()
for var in $(compgen -v CPU_REF_ || true); do
    refs+=(--reference "${var#CPU_REF_}=${!var}")
done
python "$REPO/benchmarks/gpu_smoke_report.py" --out "$OUT_DIR" --tol "$TOL" "${refs[@]}" "${BUILDS[@]}"
