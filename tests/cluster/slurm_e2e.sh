#!/usr/bin/env bash
# The smoke profile on a real one-node SLURM, through workflow/profiles/slurm and
# snakemake-executor-plugin-slurm, against a local build of the same profile.
#
#   sudo tests/cluster/slurm_e2e.sh        (root: it installs and runs daemons; CI runs it through
#                                           tests/test_slurm.py)
#
# 1. Installs slurm-wlm, slurmdbd, munge and mariadb-server when missing (apt, quiet).
# 2. In a temp dir: a munge key and munged, a MariaDB for slurmdbd (so that sacct has records),
#    a slurm.conf for this machine's CPUs and memory, slurmctld and slurmd on 127.0.0.1 (free
#    ports, a private munge socket: nothing touches the system's SLURM or munge), then waits for
#    sinfo to show the node idle.
# 3. Builds results/glue.csv and results/domain_adaptation.csv twice, side by side: locally
#    (workflow/profiles/gpu with two declared GPUs: on a machine without CUDA the jobs train on
#    the CPU, as under a plain `snakemake --cores all`, and the profile's device slots get
#    exercised; MTDNN_REQUIRE_GPU=0 says the CPU is meant, or the slots' CUDA_VISIBLE_DEVICES
#    would stop every training job) and with `--profile workflow/profiles/slurm` plus nothing
#    but a partition override.
#    train_mtl is scancel'd once its log shows training under way; the profile's retry must
#    finish it.
# 4. Checks: a rerun owes nothing; the tables and metrics are byte-identical to the local build;
#    sacct lists every planned job, COMPLETED, with the cpus and memory its rule asked for.
# 5. Stops its daemons by pid and removes the temp dir (KEEP=1 keeps it for a post-mortem).
#
# One thing outside the temp dir: /etc/slurm/slurm.conf, a link to its slurm.conf for the run's
# duration (see link_default_conf); it refuses to run where a real SLURM configuration is there.
#
# Needs GLUE_DIR (the smoke profile's data) and a Python with mtdnn installed ($PYTHON, default
# python3).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-python3}
PARTITION=ci
TARGETS=(results/glue.csv results/domain_adaptation.csv)
: "${GLUE_DIR:?set GLUE_DIR to the GLUE copy the smoke profile reads}"
export GLUE_DIR HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mtdnn-slurm.XXXXXX")
PIDS=()    # daemons, stopped in reverse order
GROUPS_=() # builds, each in its own process group (setsid): stopped with all their jobs
say() { printf '[slurm-e2e %4ds] %s\n' "$SECONDS" "$*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

stop() {  # stop TARGET PID: SIGTERM, then SIGKILL after 30 s (TARGET "-PID" is its group)
    kill -TERM -- "$1" 2> /dev/null || return 0
    for ((t = 0; t < 120; t++)); do
        kill -0 "$2" 2> /dev/null || break
        sleep 0.25
    done
    kill -KILL -- "$1" 2> /dev/null || true
    wait "$2" 2> /dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT TERM INT
    if [[ -n ${SLURM_CONF:-} ]] && command -v squeue > /dev/null; then
        squeue -h -o %i 2> /dev/null | xargs -r scancel 2> /dev/null || true
    fi
    for pid in "${GROUPS_[@]}"; do stop "-$pid" "$pid"; done
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do  # the reverse of the start order
        stop "${PIDS[i]}" "${PIDS[i]}"
    done
    if [[ -n ${LINKED_CONF:-} && $(readlink "$LINKED_CONF") == "$WORK/slurm.conf" ]]; then
        rm -f "$LINKED_CONF"
    fi
    if [[ ${KEEP:-0} == 1 ]]; then say "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

wait_for() {  # wait_for SECONDS WHAT COMMAND...: poll until COMMAND succeeds
    local limit=$1 what=$2
    shift 2
    for ((t = 0; t < limit * 4; t++)); do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.25
    done
    fail "$what did not come up within ${limit}s"
}

install_packages() {
    local missing=() pkg
    for pkg in slurm-wlm slurmdbd munge mariadb-server; do
        dpkg-query -W -f='${db:Status-Status}' "$pkg" 2> /dev/null | grep -qx installed ||
            missing+=("$pkg")
    done
    [[ ${#missing[@]} == 0 ]] && return
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    {
        apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"
    } > "$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log" >&2; fail "apt-get install"; }
}

free_ports() {
    "$PY" - << 'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
}

make_project() {  # the workflow and the smoke profile, as tests/smoke_workflow.py makes them
    mkdir -p "$1"
    cp -r "$REPO/workflow" "$1/workflow"
    # Two threads for multi-task training, so that the cpus check is not all ones.
    "$PY" - "$REPO/mtdnn/profiles/smoke.yaml" "$1/params.yaml" "$(($(nproc) > 1 ? 2 : 1))" << 'EOF'
import sys, yaml
params = yaml.safe_load(open(sys.argv[1]))
params["mtl"]["threads"] = int(sys.argv[3])
yaml.safe_dump(params, open(sys.argv[2], "w"), sort_keys=False)
EOF
}

start_munge() {
    mkdir -m 700 "$WORK/munge"
    if command -v mungekey > /dev/null; then
        mungekey --create --keyfile="$WORK/munge/munge.key"
    else
        dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 600 "$WORK/munge/munge.key"
    munged --foreground --force --socket="$WORK/munge/sock" --key-file="$WORK/munge/munge.key" \
        --pid-file="$WORK/munge/pid" --seed-file="$WORK/munge/seed" \
        --log-file="$WORK/munge/log" > "$WORK/munge/out" 2>&1 &
    PIDS+=($!)
    wait_for 20 munged munge --socket="$WORK/munge/sock" --no-input
}

start_mariadb() {  # slurmdbd's store, on a free port of 127.0.0.1
    mariadb-install-db --no-defaults --user=root --datadir="$WORK/db" --skip-test-db \
        --auth-root-authentication-method=socket > "$WORK/db-install.log" 2>&1 ||
        { cat "$WORK/db-install.log" >&2; fail "mariadb-install-db"; }
    mariadbd --no-defaults --user=root --datadir="$WORK/db" --socket="$WORK/db.sock" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --log-error="$WORK/db.err" \
        --pid-file="$WORK/db.pid" > "$WORK/db.out" 2>&1 &
    PIDS+=($!)
    wait_for 60 mariadbd mariadb-admin --no-defaults --socket="$WORK/db.sock" ping
    mariadb --no-defaults --socket="$WORK/db.sock" -e "CREATE USER 'slurm'@'127.0.0.1'
        IDENTIFIED BY 'slurm'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

write_slurm_conf() {
    local node mem
    node=$(hostname -s)
    # This machine as slurmd sees it: CPUs, sockets, cores, threads, RealMemory.
    read -r -a hw < <(slurmd -C | head -1)
    mem=$(printf '%s\n' "${hw[@]}" | sed -n 's/^RealMemory=//p')
    MEMORY_MB=$mem
    cat > "$WORK/slurmdbd.conf" << EOF
AuthType=auth/munge
AuthInfo=socket=$WORK/munge/sock
DbdHost=$node
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$WORK/slurmdbd.log
PidFile=$WORK/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$WORK/slurmdbd.conf"
    cat > "$WORK/slurm.conf" << EOF
ClusterName=mtdnnci
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$WORK/munge/sock
CredType=cred/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=300
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$WORK/munge/sock
AccountingStoreFlags=job_comment
${hw[*]} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=NO MaxTime=INFINITE State=UP
EOF
    mkdir -p "$WORK/state" "$WORK/spool"
}

link_default_conf() {
    # The plugin's job step (snakemake-executor-plugin-slurm-jobstep 0.6) removes SLURM_CONF from
    # the environment of the srun it starts inside each job, so srun reads SLURM's default path.
    local conf=/etc/slurm/slurm.conf
    if [[ -e $conf || -L $conf ]]; then
        [[ $(readlink "$conf") == */mtdnn-slurm.*/slurm.conf ]] ||
            fail "$conf exists: this test runs its own cluster and leaves a real one alone"
        rm -f "$conf"  # left by an earlier run of this test that was killed
    fi
    mkdir -p /etc/slurm
    ln -s "$WORK/slurm.conf" "$conf"
    LINKED_CONF=$conf
}

node_idle() { [[ $(sinfo -h -p "$PARTITION" -o %T) == idle ]]; }

start_slurm() {
    export SLURM_CONF=$WORK/slurm.conf
    link_default_conf
    slurmdbd -D > "$WORK/slurmdbd.out" 2>&1 &
    PIDS+=($!)
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster mtdnnci > /dev/null
    slurmctld -D -f "$SLURM_CONF" > "$WORK/slurmctld.out" 2>&1 &
    PIDS+=($!)
    slurmd -D -f "$SLURM_CONF" -N "$(hostname -s)" > "$WORK/slurmd.out" 2>&1 &
    PIDS+=($!)
    wait_for 60 "the node (sinfo idle)" node_idle
}

cancel_one_training_job() {  # prints the SLURM id of the train_mtl job it cancelled
    local id state comment
    while kill -0 "$SLURM_BUILD" 2> /dev/null; do  # until the build ends without one
        while IFS='|' read -r id state comment; do
            [[ $comment == rule_train_mtl* && $state == RUNNING ]] || continue
            # Cancel it in the middle of training: once its log says training has begun.
            if grep -rqs "mtdnn.train: training" logs/train_mtl; then
                scancel "$id" && echo "$id" && return 0
            fi
        done < <(squeue -h -o '%i|%T|%k')
        sleep 0.5
    done
    return 1
}

install_packages
read -r CTLD_PORT SLURMD_PORT DBD_PORT DB_PORT < <(free_ports)
make_project "$WORK/local"
make_project "$WORK/slurm"

say "local build (workflow/profiles/gpu, 2 declared GPUs) starts in the background"
(cd "$WORK/local" && MTDNN_REQUIRE_GPU=0 exec setsid "$PY" -m snakemake "${TARGETS[@]}" \
    --profile workflow/profiles/gpu --resources gpu=2) > "$WORK/local.log" 2>&1 &
LOCAL_BUILD=$!
GROUPS_+=("$LOCAL_BUILD")

start_munge
start_mariadb
write_slurm_conf
start_slurm
say "SLURM up: $(sinfo -h -o '%P %D node(s) %c cpus %m MB %T')"

SLURM_ARGS=(--profile workflow/profiles/slurm --default-resources "slurm_partition=$PARTITION")
cd "$WORK/slurm"
# The plan: what each job asks for. A dry run caps threads at --cores (1 when not given); a cluster
# run has no --cores and no cap, hence the 64.
"$PY" -m snakemake -n "${TARGETS[@]}" "${SLURM_ARGS[@]}" --cores 64 > "$WORK/plan.txt" 2>&1 ||
    { tail -30 "$WORK/plan.txt" >&2; fail "dry run"; }
NEED=$(sed -n 's/.*mem_mb=\([0-9]*\).*/\1/p' "$WORK/plan.txt" | sort -n | tail -1)
((NEED <= MEMORY_MB)) || fail "a job asks for ${NEED} MB but this machine has ${MEMORY_MB} MB"

say "SLURM build starts: snakemake ${TARGETS[*]} ${SLURM_ARGS[*]}"
BUILD_START=$SECONDS
setsid "$PY" -m snakemake "${TARGETS[@]}" "${SLURM_ARGS[@]}" > "$WORK/slurm.log" 2>&1 &
SLURM_BUILD=$!
GROUPS_+=("$SLURM_BUILD")
CANCELLED=$(cancel_one_training_job) || fail "no train_mtl job was seen running to cancel"
say "scancel'd train_mtl (SLURM job $CANCELLED) while it was training"
wait "$SLURM_BUILD" || { tail -40 "$WORK/slurm.log" >&2; fail "the SLURM build"; }
grep -q "Trying to restart job" "$WORK/slurm.log" || fail "the cancelled job was not rerun"
say "SLURM build done in $((SECONDS - BUILD_START))s (the cancelled job rerun by the profile's retry)"

"$PY" -m snakemake "${TARGETS[@]}" "${SLURM_ARGS[@]}" > "$WORK/rerun.log" 2>&1 ||
    { tail -30 "$WORK/rerun.log" >&2; fail "the rerun"; }
grep -q "Nothing to be done" "$WORK/rerun.log" || fail "the rerun owed jobs"
"$PY" -m snakemake -n "${TARGETS[@]}" "${SLURM_ARGS[@]}" 2>&1 | grep -q "Nothing to be done" ||
    fail "a dry run after the rerun owes jobs"
say "rerun: nothing to be done; dry run: nothing owed"

wait "$LOCAL_BUILD" || { tail -40 "$WORK/local.log" >&2; fail "the local build"; }
say "local build done"
for f in results/metrics.json results/adapt_metrics.json results/glue.csv \
    results/domain_adaptation.csv; do
    cmp "$WORK/local/$f" "$WORK/slurm/$f" || fail "$f differs from the local build"
    say "byte-identical to the local build: $f  sha256 $(sha256sum < "$f" | cut -c1-16)"
done

sleep 2  # slurmctld hands the last records to slurmdbd
SINCE=(--starttime "$(date -d '-1 day' +%Y-%m-%dT%H:%M)")
sacct -X -P -n "${SINCE[@]}" -o JobID,Comment%200,Partition,State,AllocCPUS,ReqMem > "$WORK/sacct.txt"
sacct -X "${SINCE[@]}" -o JobID,Comment%62,Partition,State,AllocCPUS,ReqMem,Elapsed
"$PY" "$REPO/tests/cluster/check_slurm_run.py" --plan "$WORK/plan.txt" --sacct "$WORK/sacct.txt" \
    --partition "$PARTITION" --cancelled "$CANCELLED" --local-log "$WORK/local.log"
say "PASSED in ${SECONDS}s"
