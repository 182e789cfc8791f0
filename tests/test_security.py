"""Safety: no unpickling, no eval/exec, safe YAML only, no network when offline, and Snakemake's lock."""

from __future__ import annotations

import ast
import socket
import subprocess
import time

import pytest
from helpers import REPO, subprocess_env
from smoke_workflow import SNAKEMAKE, assert_nothing_owed, smoke_workflow

SOURCES = sorted((REPO / "mtdnn").rglob("*.py")) + sorted((REPO / "benchmarks").glob("*.py"))


def _calls(tree: ast.AST):
    """(call, base, name): ``eval(x)`` -> ("", "eval"), ``pickle.load(f)`` -> ("pickle", "load"),
    ``trainer.model.eval()`` -> ("trainer.model", "eval"), a method and not the builtin."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            base = ast.unparse(f.value) if isinstance(f, ast.Attribute) else ""
            yield node, base, name


def test_call_reader_tells_the_builtin_from_a_method():
    source = "eval(x)\nbuiltins.exec(y)\ntrainer.model.eval()\nmodel.eval()\npickle.load(f)"
    calls = [(base, name) for _, base, name in _calls(ast.parse(source))]
    assert sorted(calls) == sorted(
        [("", "eval"), ("builtins", "exec"), ("trainer.model", "eval"), ("model", "eval")]
        + [("pickle", "load")]
    )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_unsafe_calls(path):
    tree = ast.parse(path.read_text(), str(path))
    for node, base, name in _calls(tree):
        where = f"{path.relative_to(REPO)}:{node.lineno}"
        assert name not in {"eval", "exec"} or base not in {"", "builtins"}, f"{where}: {name}()"
        assert (base, name) != ("pickle", "load") and (base, name) != ("pickle", "loads"), where
        assert not (base == "yaml" and name in {"unsafe_load", "full_load"}), (
            f"{where}: yaml.{name}"
        )
        if (base, name) == (
            "yaml",
            "load",
        ):  # only with our SafeLoader subclass (duplicate-key check)
            kw = {k.arg: k.value for k in node.keywords}
            assert getattr(kw.get("Loader"), "id", "") == "UniqueKeyLoader", where
        if (base, name) == ("torch", "load"):
            kw = {k.arg: k.value for k in node.keywords}
            assert (
                isinstance(kw.get("weights_only"), ast.Constant)
                and kw["weights_only"].value is True
            ), where


def test_yaml_loader_is_safe():
    import yaml

    from mtdnn.tasks import UniqueKeyLoader

    assert issubclass(UniqueKeyLoader, yaml.SafeLoader)
    with pytest.raises(yaml.YAMLError):
        yaml.load("!!python/object/apply:os.system ['true']", Loader=UniqueKeyLoader)  # noqa: S506


def test_checkpoints_are_safetensors_only(tmp_path):
    import torch

    from mtdnn.model.checkpoint import save_checkpoint

    opt_model = torch.nn.Linear(3, 3)
    opt = torch.optim.AdamW(opt_model.parameters())
    opt_model(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    save_checkpoint(tmp_path / "c", opt_model, {"x": 1}, opt, sched, {"epoch": 0})
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == [
        "config.json",
        "model.safetensors",
        "optimizer.safetensors",
        "trainer_state.json",
    ]


def test_offline_run_attempts_no_network(tmp_path, glue_dir, monkeypatch, cli):
    """With the offline variables set, prepare/tokenize/train/evaluate never open a socket."""
    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("network disabled by test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a[0]))
    env = {"GLUE_DIR": glue_dir}
    assert cli(["prepare", "--task", "rte"], tmp_path, env).returncode == 0
    assert cli(["tokenize", "--task", "rte", "--max-len", "32"], tmp_path, env).returncode == 0
    cfg = '{"max_train_examples": 16, "batch_size": 8, "epochs": 1, "eval_each_epoch": false}'
    train = [
        "finetune",
        "--task",
        "rte",
        "--seed",
        "1",
        "--max-len",
        "32",
        "--cfg",
        cfg,
        "--out",
        "m",
    ]
    assert cli(train, tmp_path, env).returncode == 0
    assert (
        cli(["prepare", "--task", "mnli"], tmp_path, env).returncode == 2
    )  # Hub needed: refused untried
    assert attempts == []


def test_concurrent_snakemake_runs_are_locked_out(tmp_path, glue_dir):
    """Two invocations on one tree: Snakemake's lock makes the second fail cleanly."""
    smoke_workflow(tmp_path)
    env = subprocess_env({"GLUE_DIR": glue_dir})
    first = subprocess.Popen(
        [*SNAKEMAKE, "--cores", "1", "data"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lock_dir = tmp_path / ".snakemake" / "locks"
    for _ in range(300):  # wait until the first run holds its lock
        if lock_dir.is_dir() and any(lock_dir.iterdir()):
            break
        time.sleep(0.1)
    second = subprocess.run(
        [*SNAKEMAKE, "--cores", "1", "data"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out[-2000:]
    assert second.returncode != 0
    assert "lock" in (second.stdout + second.stderr).lower()
    assert_nothing_owed(tmp_path, env)
