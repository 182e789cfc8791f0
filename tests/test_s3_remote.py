"""A DVC remote on S3 (the `s3` extra, dvc-s3), against a real S3 API: moto's server, started here
on 127.0.0.1 for this module and stopped after it.

The smoke project's `data` stage (prepare and tokenize, about a minute) is pushed to a bucket; a
fresh git clone, whose only source is the bucket, pulls it and gets the same bytes, and Snakemake
then owes nothing for it. A remote that cannot be reached, or a bucket that does not exist, fails
`dvc push` with one ERROR line. The remote lives in .dvc/config.local, as a user's credentials and
endpoint would (and as `dvc push --all-commits` needs, since it reads each commit's config).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import job_stats, subprocess_env
from smoke_workflow import clean_checkout

BUCKET = "mtdnn-remote"
# moto accepts any credentials; dummy ones keep botocore from looking for real ones.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
DVC_TIMEOUT = 300  # a guard against a hung transfer, not a speed target


def require_s3_packages() -> None:
    """dvc-s3 and moto come with the dev group; without them this module is skipped, except in
    CI, which installs that group, so a missing one there is a broken install, not a choice."""
    missing = [m for m in ("dvc_s3", "moto", "boto3") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (they come with the `dev` dependency group)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def s3_env(package: Path, glue: Path | None = None) -> dict[str, str]:
    """The child's environment: dummy credentials, and nothing of the developer's AWS setup (a
    profile, a config file, an endpoint or a proxy would send DVC elsewhere than the moto server)."""
    extra: dict[str, object | None] = {**CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        extra[name] = None
    # A path that cannot exist (dvc-s3 refuses an empty special file such as /dev/null itself).
    nowhere = str(Path(os.devnull) / "none")
    extra |= {"AWS_CONFIG_FILE": nowhere, "AWS_SHARED_CREDENTIALS_FILE": nowhere}
    extra |= {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    extra |= {"GLUE_DIR": glue, "DVC_NO_ANALYTICS": "1"}
    for role in ("AUTHOR", "COMMITTER"):
        extra |= {f"GIT_{role}_NAME": "mtdnn tests", f"GIT_{role}_EMAIL": "tests@mtdnn.invalid"}
    return subprocess_env(extra, package=package)


def run(
    cwd: Path, env: dict[str, str], *cmd: str, check: bool = True, timeout: int = DVC_TIMEOUT
) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stderr[-6000:]}")
    return proc


def add_remote(cwd: Path, env: dict[str, str], url: str, endpoint: str) -> None:
    """`dvc remote add --local -d store URL` with the endpoint of an S3-compatible store, and short
    connect and read timeouts, so that a dead endpoint fails in seconds."""
    run(cwd, env, "dvc", "remote", "add", "--local", "-d", "-f", "store", url)
    options = {"endpointurl": endpoint, "connect_timeout": "5", "read_timeout": "60"}
    for option, value in options.items():
        run(cwd, env, "dvc", "remote", "modify", "--local", "store", option, value)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """A failed command that says why in one `ERROR:` line (DVC's support footer aside)."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text
    said = [
        line
        for line in text.splitlines()
        if line.strip() and not line.startswith("Having any troubles?")
    ]
    assert len(said) == 1 and said[0].startswith("ERROR: "), text
    return said[0]


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- moto's S3 server ----------------------------------------------------------------------------


@dataclass
class S3:
    endpoint: str
    client: object  # boto3's S3 client, pointed at the server

    def keys(self, prefix: str) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    """moto's S3 server on 127.0.0.1 (a free port), with one empty bucket."""
    require_s3_packages()
    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # start() waits without a limit for the server's thread; wait for start() itself, bounded.
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(timeout=60)
    if starter.is_alive():
        pytest.fail("moto's S3 server did not start within 60 s")
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=config,
        )
        client.create_bucket(Bucket=BUCKET)
        yield S3(endpoint, client)
    finally:
        server.stop()


# --- A built project, pushed, and a fresh clone pulled ------------------------------------------


@pytest.fixture(scope="module")
def smoke_data(glue_dir, derived_dir, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A clean checkout on the smoke profile, a git repository of its own, with `dvc repro data`
    run and committed (dvc.lock with it, which is what a clone pulls by)."""
    require_s3_packages()
    if shutil.which("git") is None:
        pytest.skip("git not found: a DVC project needs a git repository")
    root = clean_checkout(tmp_path_factory.mktemp("s3") / "project")
    env = s3_env(root, glue_dir)
    run(root, env, sys.executable, "-m", "mtdnn", "profile", "smoke")
    run(root, env, "git", "init", "-q")
    run(root, env, "git", "add", "-A")
    run(root, env, "git", "commit", "-qm", "smoke profile")
    run(root, env, "dvc", "repro", "data", timeout=1200)
    run(root, env, "git", "add", "-A")
    run(root, env, "git", "commit", "-qm", "data built")
    return root, env


@pytest.mark.slow
def test_a_fresh_clone_pulls_from_s3_the_same_bytes_and_owes_nothing(
    smoke_data, s3: S3, glue_dir: Path, tmp_path: Path
) -> None:
    root, env = smoke_data
    url = f"s3://{BUCKET}/smoke"
    add_remote(root, env, url, s3.endpoint)
    run(root, env, "dvc", "push")
    # Every object of the cache went to the bucket, under the remote's path.
    cache = root / ".dvc" / "cache"
    cached = {p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()}
    assert cached and s3.keys("smoke/") == {f"smoke/{key}" for key in cached}
    pushed = tree_hashes(root / "data")

    clone = tmp_path / "clone"
    run(tmp_path, env, "git", "clone", "-q", str(root), str(clone))
    clone_env = s3_env(clone, glue_dir)
    # Before the pull the clone owes the whole stage: what follows can only pass by the pull.
    before = job_stats(run(clone, clone_env, "snakemake", "-n", "data").stdout)
    assert before.get("prepare", 0) > 0 and before.get("tokenize", 0) > 0, before
    # The bucket must be the only source: the original cache is moved out of reach meanwhile.
    shutil.move(cache, tmp_path / "cache")
    try:
        add_remote(clone, clone_env, url, s3.endpoint)
        run(clone, clone_env, "dvc", "pull", "data")
    finally:
        shutil.move(tmp_path / "cache", cache)
    assert tree_hashes(clone / "data") == pushed
    dry = run(clone, clone_env, "snakemake", "-n", "data")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-4000:]
    assert "up to date" in run(clone, clone_env, "dvc", "status", "data").stdout


# --- A wrong remote: one line --------------------------------------------------------------------


@pytest.fixture
def tracked(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A small DVC project with something to push: a directory under `dvc add`, as the pipeline's
    outputs are. (A push of one lone file to a missing bucket says it in two lines: the file's
    failed transfer, then the count of failed uploads.)"""
    require_s3_packages()
    if shutil.which("git") is None:
        pytest.skip("git not found: a DVC project needs a git repository")
    root = tmp_path / "tracked"
    root.mkdir()
    env = s3_env(root)
    run(root, env, "git", "init", "-q")
    run(root, env, "dvc", "init", "-q")
    for task, score in (("rte", 71.2), ("mrpc", 86.0), ("stsb", 88.5)):
        (root / "cells" / task).mkdir(parents=True)
        (root / "cells" / task / "seed1.json").write_text(f'{{"score": {score}}}\n')
    run(root, env, "dvc", "add", "cells")
    return root, env


def test_push_to_a_dead_endpoint_fails_in_one_line_naming_it(tracked) -> None:
    root, env = tracked
    # A port bound but not listening refuses connections, and stays ours until the test ends.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        add_remote(root, env, f"s3://{BUCKET}/cache", endpoint)
        # botocore retries a refused connection (5 attempts, backing off): once is enough here.
        push = run(root, env | {"AWS_MAX_ATTEMPTS": "1"}, "dvc", "push", check=False, timeout=120)
    line = one_error_line(push)
    assert f'Could not connect to the endpoint URL: "{endpoint}/{BUCKET}' in line, line


def test_push_to_a_missing_bucket_fails_in_one_line(tracked, s3: S3) -> None:
    root, env = tracked
    add_remote(root, env, "s3://no-such-bucket/cache", s3.endpoint)
    push = run(root, env, "dvc", "push", check=False, timeout=120)
    line = one_error_line(push)
    assert "The specified bucket does not exist" in line and "NoSuchBucket" in line, line
