"""Snakemake's dry-run plan as data: one entry per job, with its rule, threads and resources.

`snakemake -n` prints each job as a block (``rule NAME:`` then indented ``key: value`` lines);
the profile tests and the real-SLURM check read what each job will ask for from there, so they
assert on the plan Snakemake resolved, not on a copy of the rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEAD = re.compile(r"^(?:local)?rule (\w+):$")
_FIELD = re.compile(r"^ {4}(\w+): (.*)$")


@dataclass(frozen=True)
class PlannedJob:
    rule: str
    threads: int
    resources: dict[str, int | str]
    wildcards: dict[str, str]
    priority: int = 0


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(", ") if "=" in item)


def _value(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _job(rule: str, fields: dict[str, str]) -> PlannedJob:
    resources = {k: _value(v) for k, v in _pairs(fields.get("resources", "")).items()}
    return PlannedJob(
        rule=rule,
        threads=int(fields.get("threads", "1")),  # printed only when above 1
        resources=resources,
        wildcards=_pairs(fields.get("wildcards", "")),
        priority=int(fields.get("priority", "0")),  # printed only when set
    )


def parse_plan(text: str) -> list[PlannedJob]:
    """Every job block of a dry run's output, in the order printed."""
    jobs: list[PlannedJob] = []
    rule, fields = None, {}
    for line in text.splitlines() + [""]:
        head = _HEAD.match(line)
        field = _FIELD.match(line)
        if head:
            rule, fields = head.group(1), {}
        elif rule and field:
            fields[field.group(1)] = field.group(2)
        elif rule:  # the block ended
            jobs.append(_job(rule, fields))
            rule = None
    return jobs
