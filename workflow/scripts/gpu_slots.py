"""A job shell that gives the job its own GPUs on one machine.

Snakemake caps the GPUs in use with ``--resources gpu=N`` but does not say which device a job
gets, so every training job would land on GPU 0. Under ``workflow/profiles/gpu`` the training
rules run their shell command through this script (Snakemake's per-rule ``shell_exec``
resource; see ``gpu_shell`` in ``workflow/rules/common.smk``): it claims ``--gpus`` of the
``--slots`` devices with an exclusive lock file per device, sets ``CUDA_VISIBLE_DEVICES`` to
them and execs bash with the job's command. The locks are open file descriptors that the job's
process inherits, so the kernel releases them when the job ends, however it ends (even
``kill -9``). Snakemake never starts more GPU jobs than there are slots, so a claim normally
succeeds at once; one that cannot (another workflow sharing the devices) waits.

Usage (as a shell): ``gpu_slots.py --gpus K --slots N --lock-dir DIR -c COMMAND``.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import sys
import time
from pathlib import Path


def device_ids(slots: int) -> list[str]:
    """Slot i is the i-th visible device: the parent's CUDA_VISIBLE_DEVICES when set, else i."""
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return [str(i) for i in range(slots)]
    visible = [d.strip() for d in raw.split(",") if d.strip()]
    if len(visible) < slots:
        sys.exit(
            f"gpu_slots: --resources gpu={slots} but CUDA_VISIBLE_DEVICES lists "
            f"{len(visible)} device(s)"
        )
    return visible[:slots]


def try_claim(lock_dir: Path, gpus: int, slots: int) -> dict[int, int] | None:
    """Lock `gpus` free slots at once ({slot: fd}), or none: a partial claim is given back, so
    two multi-GPU jobs can never each hold half of what the other needs."""
    held: dict[int, int] = {}
    for slot in range(slots):
        fd = os.open(lock_dir / f"gpu{slot}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        held[slot] = fd
        if len(held) == gpus:
            return held
    for fd in held.values():
        os.close(fd)
    return None


def claim(lock_dir: Path, gpus: int, slots: int, poll: float = 0.5) -> dict[int, int]:
    lock_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while (held := try_claim(lock_dir, gpus, slots)) is None:
        if not waited:
            print(f"gpu_slots: waiting for {gpus} free GPU(s) of {slots}", file=sys.stderr)
            waited = True
        time.sleep(poll)
    return held


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", type=int, required=True, help="devices this job needs")
    parser.add_argument("--slots", type=int, required=True, help="devices on this machine")
    parser.add_argument("--lock-dir", type=Path, required=True, help="one lock file per device")
    parser.add_argument("-c", dest="command", required=True, help="the job's shell command")
    args = parser.parse_args(argv)
    if not 1 <= args.gpus <= args.slots:
        parser.error(f"--gpus {args.gpus} must be between 1 and --slots {args.slots}")
    ids = device_ids(args.slots)
    held = claim(args.lock_dir, args.gpus, args.slots)
    for fd in held.values():
        os.set_inheritable(fd, True)  # held by the job's process until it exits
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids[slot] for slot in sorted(held))
    print(
        f"gpu_slots: CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']} "
        f"(slots {','.join(map(str, sorted(held)))} of {args.slots})",
        file=sys.stderr,
    )
    bash = shutil.which("bash") or "/bin/bash"
    # The strict mode Snakemake prepends when bash is its shell.
    os.execv(bash, [bash, "-c", f"set -euo pipefail; {args.command}"])


if __name__ == "__main__":
    main()
