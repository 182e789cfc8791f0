"""Multi-task batch scheduling: Algorithm 1 of the paper plus with-replacement samplers.

Every epoch's plan is a pure function of ``(seed, epoch)``, so a run resumes from ``(epoch, step)``
with no saved RNG state and replays bit for bit.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping

import numpy as np

from mtdnn.errors import MtdnnError

STRATEGIES = ("algorithm1", "proportional", "temperature", "uniform")
# Length grouping sorts mega-chunks of the shuffled order by length. A chunk holds at most
# MEGA_BATCHES batches (low padding on large tasks) and a task has at least MIN_CHUNKS of them, so a
# small task is never sorted whole: its batches would then be nearly the same every epoch.
MEGA_BATCHES = 50
MIN_CHUNKS = 4

Batch = tuple[str, np.ndarray]


def _group_members(groups: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (order, starts, sizes): group g is ``order[starts[g]:starts[g] + sizes[g]]``."""
    if groups is None:
        # Each example is its own unit, which keeps one code path for plain and ranking tasks.
        return np.arange(n), np.arange(n), np.ones(n, dtype=np.int64)
    order = np.argsort(groups, kind="stable")
    _, starts, sizes = np.unique(groups[order], return_index=True, return_counts=True)
    return order, starts, sizes


def _expand(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenate the members of the units in the given (already permuted) order, in O(n)."""
    offsets = np.cumsum(sizes) - sizes
    within = np.arange(int(sizes.sum())) - np.repeat(offsets, sizes)
    return order[np.repeat(starts, sizes) + within]


def _cut_points(sizes: np.ndarray, batch_size: int) -> np.ndarray:
    """Example offsets where batches end: add whole units until a batch holds >= batch_size."""
    if np.all(sizes == 1):
        return np.arange(batch_size, len(sizes), batch_size)
    ends = np.cumsum(sizes)
    cuts, done = [], 0
    while done < ends[-1]:
        # One searchsorted per batch, so packing costs O(batches * log units), not O(units^2).
        i = min(int(np.searchsorted(ends, done + batch_size)), len(ends) - 1)
        done = int(ends[i])
        cuts.append(done)
    return np.asarray(cuts[:-1], dtype=np.int64)


def make_task_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    group_by_length: bool = True,
    groups: np.ndarray | None = None,
    mega: int | None = None,
) -> list[np.ndarray]:
    """Shuffle one task's examples into batches of ``batch_size``, in shuffled batch order.

    With ``group_by_length`` the shuffled order is cut into mega-chunks of ``mega * batch_size``
    examples, each sorted by length (longest first) before splitting: batches then hold similar
    lengths, so dynamic padding wastes little, while the mega-chunk shuffle keeps them random.
    ``mega`` defaults to ``mega_batches`` of the task's size. With ``groups`` (ranking), a batch
    holds whole groups only and is filled to >= batch_size.
    """
    lengths = np.asarray(lengths)
    if batch_size < 1:
        raise MtdnnError(f"batch_size must be >= 1, got {batch_size}")
    if groups is not None and len(groups) != len(lengths):
        raise MtdnnError(f"groups has {len(groups)} entries but lengths has {len(lengths)}")
    if len(lengths) == 0:
        return []
    order, starts, sizes = _group_members(groups, len(lengths))
    # A unit's length is its longest member: that is what its batch gets padded to.
    unit_len = np.maximum.reduceat(lengths[order], starts)
    perm = rng.permutation(len(sizes))
    starts, sizes, unit_len = starts[perm], sizes[perm], unit_len[perm]
    if group_by_length:
        mega = mega or mega_batches(len(lengths), batch_size)
        chunk = (np.cumsum(sizes) - sizes) // (mega * batch_size)
        by_len = np.lexsort((-unit_len, chunk))  # stable: ties keep the shuffled order
        starts, sizes = starts[by_len], sizes[by_len]
    batches = np.split(_expand(order, starts, sizes), _cut_points(sizes, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def mega_batches(n: int, batch_size: int) -> int:
    """Batches per length-sorted mega-chunk for a task of ``n`` examples: MEGA_BATCHES, or fewer
    so that the task is cut into at least MIN_CHUNKS chunks. Each example's batch-mates then come
    from a different random quarter (or less) of the task every epoch."""
    batches = -(-n // batch_size)
    return max(1, min(MEGA_BATCHES, -(-batches // MIN_CHUNKS)))


def task_probabilities(
    sizes: Mapping[str, int], strategy: str, temperature: float = 1.0
) -> dict[str, float]:
    """Task sampling probabilities: proportional p ~ n, temperature p ~ n^(1/T), uniform p = 1/K."""
    n = np.array([sizes[t] for t in sizes], dtype=np.float64)
    if strategy == "uniform":
        weights = (n > 0).astype(np.float64)
    elif strategy in ("proportional", "algorithm1"):
        weights = n
    elif strategy == "temperature":
        if temperature <= 0:
            raise MtdnnError(f"temperature must be > 0, got {temperature}")
        weights = np.where(n > 0, n ** (1.0 / temperature), 0.0)
    else:
        raise MtdnnError(f"unknown sampling strategy '{strategy}' (expected one of {STRATEGIES})")
    if weights.sum() <= 0:
        raise MtdnnError("every task has an empty training set: nothing to sample")
    return dict(zip(sizes, weights / weights.sum(), strict=True))


def _task_key(name: str) -> int:
    # A stable per-task seed word: a task's batches do not change when other tasks are added.
    return zlib.crc32(name.encode())


class MultiTaskSampler:
    """Schedules task-homogeneous batches across tasks, one task per step.

    ``algorithm1`` (the paper): each epoch every task is reshuffled into batches, the batches of all
    tasks are pooled and the pool is shuffled, so every batch appears exactly once per epoch.
    ``proportional`` / ``temperature`` / ``uniform``: each step draws a task (with replacement)
    and takes the next batch of that task's stream; streams restart at each epoch so that the plan
    stays a pure function of ``(seed, epoch)``.
    """

    def __init__(
        self,
        task_lengths: dict[str, np.ndarray],
        batch_size: int | dict[str, int],
        seed: int,
        strategy: str = "algorithm1",
        temperature: float = 1.0,
        group_by_length: bool = True,
        task_groups: dict[str, np.ndarray] | None = None,
        steps_per_epoch: int | None = None,
    ) -> None:
        if not task_lengths:
            raise MtdnnError("MultiTaskSampler needs at least one task")
        if strategy not in STRATEGIES:
            raise MtdnnError(
                f"unknown sampling strategy '{strategy}' (expected one of {STRATEGIES})"
            )
        if strategy == "algorithm1" and steps_per_epoch is not None:
            raise MtdnnError(
                "steps_per_epoch does not apply to algorithm1 (one pass over all batches)"
            )
        # Sorted names: the plan must not depend on the order a dict happened to be built in.
        self.tasks = sorted(task_lengths)
        self.lengths = {t: np.asarray(task_lengths[t]) for t in self.tasks}
        self.batch_size = self._batch_sizes(batch_size)
        self.groups = {t: (task_groups or {}).get(t) for t in self.tasks}
        self.seed, self.strategy, self.group_by_length = seed, strategy, group_by_length
        sizes = {t: len(self.lengths[t]) for t in self.tasks}
        self.probabilities = task_probabilities(sizes, strategy, temperature)
        nominal = sum(-(-sizes[t] // self.batch_size[t]) for t in self.tasks)
        self.steps_per_epoch = steps_per_epoch or nominal
        self._cache: tuple[int, list[Batch]] | None = None

    def _batch_sizes(self, batch_size: int | dict[str, int]) -> dict[str, int]:
        if isinstance(batch_size, int):
            return dict.fromkeys(self.tasks, batch_size)
        missing = sorted(set(self.tasks) - set(batch_size))
        if missing:
            raise MtdnnError(f"batch_size has no entry for task '{missing[0]}'")
        return {t: int(batch_size[t]) for t in self.tasks}

    def _task_pass(self, task: str, epoch: int, n_pass: int) -> list[np.ndarray]:
        """One shuffled pass over a task's examples, seeded by (seed, epoch, task, pass)."""
        rng = np.random.default_rng([self.seed, epoch, _task_key(task), n_pass])
        return make_task_batches(
            self.lengths[task], self.batch_size[task], rng, self.group_by_length, self.groups[task]
        )

    def _algorithm1(self, epoch: int) -> list[Batch]:
        pool = [(t, b) for t in self.tasks for b in self._task_pass(t, epoch, 0)]
        rng = np.random.default_rng([self.seed, epoch])
        return [pool[i] for i in rng.permutation(len(pool))]

    def _stream(self, task: str, epoch: int, count: int) -> list[np.ndarray]:
        """The first ``count`` batches of a task's stream, reshuffled each time it runs out."""
        out: list[np.ndarray] = []
        n_pass = 0
        while len(out) < count:
            out.extend(self._task_pass(task, epoch, n_pass))
            n_pass += 1
        return out[:count]

    def _with_replacement(self, epoch: int) -> list[Batch]:
        rng = np.random.default_rng([self.seed, epoch])
        p = np.array([self.probabilities[t] for t in self.tasks])
        draws = rng.choice(len(self.tasks), size=self.steps_per_epoch, p=p)
        plan: list[Batch | None] = [None] * len(draws)
        for k, task in enumerate(self.tasks):
            where = np.flatnonzero(draws == k)
            for pos, batch in zip(where, self._stream(task, epoch, len(where)), strict=True):
                plan[pos] = (task, batch)
        return plan  # type: ignore[return-value]

    def epoch_plan(self, epoch: int) -> list[Batch]:
        """The ordered (task, example indices) of one epoch; a pure function of (seed, epoch)."""
        if self._cache is None or self._cache[0] != epoch:
            build = self._algorithm1 if self.strategy == "algorithm1" else self._with_replacement
            self._cache = (epoch, build(epoch))
        return self._cache[1]

    def __len__(self) -> int:
        """Steps in the first epoch (ranking tasks can make later ones vary a little)."""
        return len(self.epoch_plan(0))

    def iter_from(self, epoch: int, step: int = 0) -> Iterator[tuple[int, int, str, np.ndarray]]:
        """Yield (epoch, step, task, indices) from a resume point to the end of that epoch."""
        plan = self.epoch_plan(epoch)
        for s in range(step, len(plan)):
            yield epoch, s, plan[s][0], plan[s][1]
