"""README quick start (a) as a newcomer runs it: a fresh clone, the command copied verbatim from the
README, none of the HF_*_OFFLINE variables that every other test sets, the Hub unreachable, and
only GLUE_DIR pointing at the local GLUE copy.

The smoke profile names QNLI, whose training split only the Hub has (the local copy has no QNLI
train.tsv), so the run meets the same decision a first run of the default profile meets: the grid
that plans the jobs and the jobs that read the data must give one answer to "can the Hub be used".
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import BIN, REPO, free_port

pytestmark = pytest.mark.slow


def readme_command(label: str) -> str:
    """The bash block that follows the README line starting with ``label`` (e.g. "(a)")."""
    text = (REPO / "README.md").read_text()
    match = re.search(rf"^{re.escape(label)} .*?```bash\n(.*?)```", text, re.S | re.M)
    assert match, f"README.md: no bash block after a line starting with {label}"
    return match.group(1).strip()


def newcomer_env(home: Path, glue_dir: Path) -> dict[str, str]:
    """A login shell's environment: no offline variables, no active virtualenv, no HF cache, and
    a Hub endpoint that refuses connections (this machine's real Hub access, whatever it is, must
    not decide the test)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "GLUE_DIR", "HF_HOME", "HF_HUB_CACHE"):
        env.pop(name, None)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != BIN]
    return env | {
        "PATH": os.pathsep.join(path),
        "GLUE_DIR": str(glue_dir),
        "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens: refused at once
        "HF_HOME": str(home / "hf"),
    }


def fresh_clone(dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    subprocess.run(
        [sys.executable, "-m", "mtdnn", "profile", "smoke"],
        cwd=dest,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        check=True,
        capture_output=True,
    )
    return dest


def test_readme_command_a_builds_the_table_offline(tmp_path, glue_dir):
    clone = fresh_clone(tmp_path / "mtdnn")
    command = readme_command("(a)")
    assert command.startswith("python3 -m venv") and "snakemake --cores" in command
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=newcomer_env(tmp_path, glue_dir),
        capture_output=True,
        text=True,
        timeout=2400,  # a guard against hangs: install plus the smoke build on a loaded 2-core CI
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    table = pd.read_csv(clone / "results" / "glue.csv")
    columns = " ".join(table.columns)
    assert "RTE" in columns and "STS-B" in columns and "QNLI" not in columns, columns
    rte = [c for c in table.columns if c.startswith("RTE")]
    assert rte and table[rte].notna().all().all(), table
    # QNLI was left out at planning time, with the reason, not dropped by a failed job.
    assert "notice: task qnli left out" in log and "unreachable" in log, log[-5000:]
    assert not (clone / "data" / "canonical" / "qnli").exists()
