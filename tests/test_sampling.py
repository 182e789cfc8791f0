"""The multi-task scheduler: Algorithm 1 coverage, reshuffling, padding, sampling rates, resume."""

from __future__ import annotations

import numpy as np
import pytest

from mtdnn.errors import MtdnnError
from mtdnn.training.sampling import MultiTaskSampler, make_task_batches, task_probabilities

SIZES = {"mnli": 1000, "rte": 77, "sst2": 300, "stsb": 32}


def _lengths(sizes: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t: rng.integers(5, 129, n) for t, n in sizes.items()}


def _sampler(**kw) -> MultiTaskSampler:
    return MultiTaskSampler(_lengths(SIZES), kw.pop("batch_size", 16), kw.pop("seed", 2018), **kw)


def _by_task(plan: list) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for task, idx in plan:
        out.setdefault(task, []).append(idx)
    return out


def _padded(lengths: np.ndarray, batches: list[np.ndarray]) -> int:
    return sum(int(lengths[b].max()) * len(b) for b in batches)


# --- Algorithm 1 -------------------------------------------------------------------------------


@pytest.mark.parametrize("epoch", [0, 3])
def test_algorithm1_covers_every_example_once_in_homogeneous_batches(epoch: int) -> None:
    sampler = _sampler(batch_size={"mnli": 32, "rte": 8, "sst2": 16, "stsb": 5})
    by_task = _by_task(sampler.epoch_plan(epoch))
    assert set(by_task) == set(SIZES)
    for task, n in SIZES.items():
        seen = np.concatenate(by_task[task])
        # Indices index this task's own data, so a foreign batch would break the permutation.
        assert np.array_equal(np.sort(seen), np.arange(n)), task
        assert len(by_task[task]) == -(-n // sampler.batch_size[task]), task
        assert max(len(b) for b in by_task[task]) == sampler.batch_size[task]


def test_algorithm1_length_is_total_batch_count() -> None:
    sampler = _sampler(batch_size=16)
    expected = sum(-(-n // 16) for n in SIZES.values())
    assert len(sampler) == expected == len(sampler.epoch_plan(1))


def test_algorithm1_interleaves_tasks() -> None:
    # The pool is shuffled: the plan is not task after task.
    tasks = [t for t, _ in _sampler().epoch_plan(0)]
    switches = sum(a != b for a, b in zip(tasks, tasks[1:], strict=False))
    assert switches > len(SIZES) * 3


def _compositions(plan: list, task: str) -> set[frozenset]:
    return {frozenset(b.tolist()) for b in _by_task(plan)[task]}


def test_epochs_reshuffle_order_and_batch_composition() -> None:
    sampler = _sampler(group_by_length=False)
    plan0, plan1 = sampler.epoch_plan(0), sampler.epoch_plan(1)
    assert [t for t, _ in plan0] != [t for t, _ in plan1]
    for task in SIZES:
        # Examples are regrouped, not the same batches in a new order (mt-dnn never reshuffles).
        assert _compositions(plan0, task) != _compositions(plan1, task), task
        order0 = np.concatenate(_by_task(plan0)[task])
        assert not np.array_equal(order0, np.concatenate(_by_task(plan1)[task])), task


def test_length_grouped_epochs_reshuffle_tasks_larger_than_a_mega_chunk() -> None:
    sampler = _sampler(batch_size=16)  # mnli: 1000 examples > one mega-chunk of 800
    plan0, plan1 = sampler.epoch_plan(0), sampler.epoch_plan(1)
    assert _compositions(plan0, "mnli") != _compositions(plan1, "mnli")


def _together(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Share of the example pairs that share a batch in ``a`` and share one again in ``b``."""
    where = {int(i): k for k, batch in enumerate(b) for i in batch}
    pairs = kept = 0
    for batch in a:
        again = np.unique([where[int(i)] for i in batch], return_counts=True)[1]
        pairs += len(batch) * (len(batch) - 1) // 2
        kept += int((again * (again - 1) // 2).sum())
    return kept / pairs


def test_small_task_is_regrouped_every_epoch_with_length_grouping(glue_dir) -> None:
    """800 real RTE pairs at batch 32 fit in one mega-chunk of 50 batches: sorted whole, their
    batches would be nearly the same every epoch. Scaled chunks regroup them and still pad little."""
    rows = (line.split("\t") for line in (glue_dir / "RTE" / "train.tsv").open(encoding="utf-8"))
    next(rows)
    lengths = np.array([len(r[1].split()) + len(r[2].split()) + 3 for r in rows][:800])
    sampler = MultiTaskSampler({"rte": lengths}, 32, 2018)
    epochs = [_by_task(sampler.epoch_plan(e))["rte"] for e in range(4)]
    for a, b in zip(epochs, epochs[1:], strict=False):
        assert _together(a, b) < 0.3  # sorted whole, three quarters of the pairs stayed together
    shuffled = make_task_batches(lengths, 32, np.random.default_rng(0), group_by_length=False)
    for batches in epochs:
        assert _padded(lengths, batches) < 0.6 * _padded(lengths, shuffled)


def _plans_equal(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        ta == tb and np.array_equal(ia, ib) for (ta, ia), (tb, ib) in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("strategy", ["algorithm1", "temperature"])
def test_plan_is_pure_function_of_seed_and_epoch(strategy: str) -> None:
    a = _sampler(strategy=strategy, temperature=2.0)
    a.epoch_plan(5)  # fill the cache with another epoch first: must not leak into epoch 2
    b = _sampler(strategy=strategy, temperature=2.0)
    assert _plans_equal(a.epoch_plan(2), b.epoch_plan(2))
    assert not _plans_equal(a.epoch_plan(2), _sampler(strategy=strategy, seed=7).epoch_plan(2))
    assert not _plans_equal(a.epoch_plan(2), a.epoch_plan(3))


def test_plan_does_not_depend_on_dict_order() -> None:
    lengths = _lengths(SIZES)
    flipped = dict(reversed(list(lengths.items())))
    a = MultiTaskSampler(lengths, 16, 1).epoch_plan(0)
    assert _plans_equal(a, MultiTaskSampler(flipped, 16, 1).epoch_plan(0))


# --- make_task_batches -------------------------------------------------------------------------


def test_length_grouping_reduces_padding() -> None:
    lengths = np.random.default_rng(3).integers(5, 129, 5000)
    plain = make_task_batches(lengths, 32, np.random.default_rng(0), group_by_length=False)
    grouped = make_task_batches(lengths, 32, np.random.default_rng(0), group_by_length=True)
    # Random batches of 32 pad to ~124 tokens; grouped ones to about their own mean (~67).
    assert _padded(lengths, grouped) < 0.7 * _padded(lengths, plain)
    assert _padded(lengths, grouped) < 1.1 * int(lengths.sum())
    assert np.array_equal(np.sort(np.concatenate(grouped)), np.arange(5000))


def test_length_grouping_keeps_randomness() -> None:
    lengths = np.random.default_rng(3).integers(5, 129, 2000)
    a = make_task_batches(lengths, 32, np.random.default_rng(0))
    b = make_task_batches(lengths, 32, np.random.default_rng(1))
    assert {frozenset(x.tolist()) for x in a} != {frozenset(x.tolist()) for x in b}
    # Batch order is shuffled, not longest-first as a plain sort would leave it.
    maxima = [int(lengths[x].max()) for x in a]
    assert maxima != sorted(maxima, reverse=True)


def test_batches_are_deterministic_given_rng() -> None:
    lengths = np.arange(100) % 17
    a = make_task_batches(lengths, 7, np.random.default_rng(9))
    b = make_task_batches(lengths, 7, np.random.default_rng(9))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert sorted(len(x) for x in a) == [2] + [7] * 14


@pytest.mark.parametrize("group_by_length", [True, False])
def test_ranking_groups_are_never_split(group_by_length: bool) -> None:
    rng = np.random.default_rng(4)
    group_sizes = rng.integers(2, 7, 300)  # one positive plus 1..5 negatives
    groups = rng.permutation(np.repeat(np.arange(300) * 10, group_sizes))  # ids not 0..G-1
    lengths = rng.integers(5, 129, len(groups))
    batches = make_task_batches(lengths, 16, rng, group_by_length, groups=groups)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(len(groups)))
    home = {}
    for k, batch in enumerate(batches):
        for g in np.unique(groups[batch]):
            assert g not in home, f"group {g} split across batches {home[g]} and {k}"
            home[g] = k
            assert np.sum(groups[batch] == g) == np.sum(groups == g)
    # Filled with whole groups until >= batch_size, so only the last-built batch may be short.
    assert sum(len(b) < 16 for b in batches) <= 1
    assert max(len(b) for b in batches) < 16 + 6


def test_sampler_respects_ranking_groups() -> None:
    groups = np.repeat(np.arange(40), 5)
    sampler = MultiTaskSampler(
        {"qnli": np.full(200, 30), "rte": np.full(50, 9)}, 12, 0, task_groups={"qnli": groups}
    )
    sizes = sorted(len(idx) for task, idx in sampler.epoch_plan(0) if task == "qnli")
    # Whole groups of 5 until >= 12: three groups a batch, and the 40th group alone at the end.
    assert sizes == [5] + [15] * 13


def test_bad_inputs_fail_loudly() -> None:
    with pytest.raises(MtdnnError, match="batch_size"):
        make_task_batches(np.ones(5), 0, np.random.default_rng(0))
    with pytest.raises(MtdnnError, match="groups"):
        make_task_batches(np.ones(5), 2, np.random.default_rng(0), groups=np.zeros(4))
    with pytest.raises(MtdnnError, match="strategy"):
        _sampler(strategy="roundrobin")
    with pytest.raises(MtdnnError, match="rte"):
        _sampler(batch_size={"mnli": 8, "sst2": 8, "stsb": 8})
    with pytest.raises(MtdnnError, match="temperature"):
        _sampler(strategy="temperature", temperature=0.0)
    assert make_task_batches(np.array([], dtype=int), 4, np.random.default_rng(0)) == []


# --- with-replacement samplers -----------------------------------------------------------------


def test_target_probabilities() -> None:
    sizes = {"a": 900, "b": 100}
    assert task_probabilities(sizes, "proportional") == pytest.approx({"a": 0.9, "b": 0.1})
    assert task_probabilities(sizes, "temperature", 2.0) == pytest.approx({"a": 0.75, "b": 0.25})
    assert task_probabilities(sizes, "uniform") == pytest.approx({"a": 0.5, "b": 0.5})
    hot = task_probabilities(sizes, "temperature", 1e4)
    assert hot == pytest.approx({"a": 0.5, "b": 0.5}, abs=1e-3)


@pytest.mark.parametrize(
    ("strategy", "temperature"),
    [("proportional", 1.0), ("temperature", 3.0), ("temperature", 1000.0), ("uniform", 1.0)],
)
def test_empirical_task_frequencies_match_targets(strategy: str, temperature: float) -> None:
    sizes = {"big": 4000, "mid": 1000, "small": 250}
    sampler = MultiTaskSampler(
        _lengths(sizes), 8, 11, strategy, temperature, steps_per_epoch=20_000
    )
    plan = sampler.epoch_plan(0)
    assert len(plan) == len(sampler) == 20_000
    n = np.array(list(sizes.values()), dtype=float)
    target = n ** (1 / temperature) / np.sum(n ** (1 / temperature))
    if strategy == "uniform":
        target = np.full(3, 1 / 3)
    counts = _by_task(plan)
    freq = np.array([len(counts[t]) for t in sizes]) / len(plan)
    # 4 sigma at 20k draws is ~0.014; the seed is fixed, so this never flakes.
    np.testing.assert_allclose(freq, target, atol=0.015)
    if temperature == 1000.0:
        np.testing.assert_allclose(freq, 1 / 3, atol=0.015)


def test_with_replacement_streams_cover_before_repeating() -> None:
    sizes = {"big": 4000, "small": 100}
    sampler = MultiTaskSampler(_lengths(sizes), 10, 5, "uniform", steps_per_epoch=200)
    by_task = _by_task(sampler.epoch_plan(0))
    small = np.concatenate(by_task["small"])
    # ~100 draws of a 10-batch task: ~10 full passes, each a permutation of the 100 examples.
    full = len(small) // 100 * 100
    passes = [small[start : start + 100] for start in range(0, full, 100)]
    assert len(passes) >= 5
    for k, chunk in enumerate(passes):
        assert np.array_equal(np.sort(chunk), np.arange(100))
        # Reshuffled when exhausted: no pass replays the one before it.
        assert k == 0 or not np.array_equal(chunk, passes[k - 1])
    big = np.concatenate(by_task["big"])
    assert len(np.unique(big)) == len(big)  # a partial pass never repeats an example
    assert all(len(b) == 10 for b in by_task["big"])


def test_with_replacement_default_steps_is_algorithm1_count() -> None:
    sampler = _sampler(strategy="uniform", batch_size=16)
    assert len(sampler) == sum(-(-n // 16) for n in SIZES.values())
    with pytest.raises(MtdnnError, match="steps_per_epoch"):
        _sampler(steps_per_epoch=10)


# --- resume --------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["algorithm1", "proportional"])
def test_iter_from_yields_exact_tail(strategy: str) -> None:
    plan = _sampler(strategy=strategy).epoch_plan(4)
    tail = list(_sampler(strategy=strategy).iter_from(4, 37))
    assert [s for _, s, _, _ in tail] == list(range(37, len(plan)))
    assert all(e == 4 for e, _, _, _ in tail)
    assert _plans_equal([(t, i) for _, _, t, i in tail], plan[37:])


def test_resume_across_epoch_boundary() -> None:
    """The loop's path: a run resumed at (epoch 0, step n-5) sees the batches an uninterrupted run
    sees, into the next epoch."""
    ref = _sampler()
    steps = len(ref)
    stream = [*ref.iter_from(0), *ref.iter_from(1)][: steps + 20]
    assert [(e, s) for e, s, _, _ in stream[steps:]] == [(1, s) for s in range(20)]
    assert _plans_equal([(t, i) for _, _, t, i in stream[steps:]], ref.epoch_plan(1)[:20])
    resumed = _sampler()
    tail = [*resumed.iter_from(0, steps - 5), *resumed.iter_from(1)][:25]
    assert [(e, s) for e, s, _, _ in tail] == [(e, s) for e, s, _, _ in stream[steps - 5 :]]
    assert _plans_equal(
        [(t, i) for _, _, t, i in tail], [(t, i) for _, _, t, i in stream[steps - 5 :]]
    )


def test_plans_a_million_rows() -> None:
    # Cost is measured side by side in benchmarks/scaling.py (linear in rows and tasks), not timed
    # here: a unit test's wall time depends on whatever else the machine is running.
    rng = np.random.default_rng(0)
    counts = [400_000, 250_000, 150_000, 100_000, 50_000, 30_000, 15_000, 5_000]
    lengths = {f"t{i}": rng.integers(5, 129, n) for i, n in enumerate(counts)}
    plan = MultiTaskSampler(lengths, 32, 0).epoch_plan(0)
    assert len(plan) == sum(-(-n // 32) for n in counts)
