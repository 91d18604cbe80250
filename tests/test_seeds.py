"""K seeds inside one trial (archlab.search.seeds): interleaved epoch by epoch, each seed's
numbers equal to that seed trained alone, the reports the K-seed means, resumable."""

import math
import statistics

import pytest

from archlab.data.synthetic import SyntheticMotion
from archlab.model.genome import parse
from archlab.search.seeds import combine, seed_values, train_seeds
from archlab.training.recipe import ProxyRecipe
from archlab.training.trainer import EpochMetrics, TrainConfig, train
from archlab.util.errors import UserError

TINY = "A|2 w=4,8 sw=4 stem=2d/none t=-,- drop=0.0 cls=2"


@pytest.fixture(scope="module")
def data():
    kw = dict(frames=4, size=16, num_classes=2, paths=("translate",), distractors=False)
    return SyntheticMotion("train", n_clips=32, **kw), SyntheticMotion("val", n_clips=16, **kw)


def cfg(**kw) -> TrainConfig:
    return TrainConfig(
        recipe=ProxyRecipe(**{"epochs": 3, "batch": 8, "frames": 4, "size": 16, "classes": 2, **kw}), device="cpu"
    )


def numbers(history):
    return [(m.epoch, m.train_loss, m.val_loss, m.val_top1, m.val_top5) for m in history]


def test_seed_values_follow_the_recipe_seed_and_bad_counts_are_one_line():
    assert seed_values(ProxyRecipe(seed=5), 3) == [5, 6, 7]
    for bad, msg in (
        (0, "--seeds must be at least 1"),
        (True, "whole number"),
        (2.0, "whole number"),
        (101, "at most 100"),
    ):
        with pytest.raises(UserError, match=msg):
            seed_values(ProxyRecipe(), bad)


def test_combine_takes_means_sum_of_times_and_the_sample_std():
    a = EpochMetrics(
        epoch=2,
        train_loss=1.0,
        val_loss=2.0,
        val_top1=0.5,
        val_top5=1.0,
        lr=0.1,
        epoch_time_s=3.0,
        train_clips_per_s=10.0,
    )
    b = EpochMetrics(
        epoch=2,
        train_loss=3.0,
        val_loss=4.0,
        val_top1=0.7,
        val_top5=1.0,
        lr=0.1,
        epoch_time_s=5.0,
        train_clips_per_s=20.0,
    )
    v = combine(2, [a, b], [0, 1])
    assert (v.train_loss, v.val_loss, v.val_top1, v.epoch_time_s, v.train_clips_per_s) == pytest.approx(
        (2.0, 3.0, 0.6, 8.0, 15.0)
    )
    assert v.seed_top1 == [0.5, 0.7] and v.val_top1_std == pytest.approx(statistics.stdev([0.5, 0.7]))
    assert v.report() == {
        "seeds": [0, 1],
        "seed_top1": [0.5, 0.7],
        "val_top1_std": v.val_top1_std,
        "restarted_plateau": 0,
        "plateau_seeds": [],
    }
    assert combine(1, [a], [0]).val_top1_std is None


def test_two_seeds_interleave_and_each_equals_that_seed_trained_alone(data, tmp_path):
    tr, va = data
    g = parse(TINY)
    alone = [train(g, tr, va, cfg(seed=s), out_dir=tmp_path / f"alone{s}") for s in (3, 4)]
    seen = []
    result = train_seeds(g, tr, va, cfg(seed=3), k=2, out_dir=tmp_path / "work", on_epoch=seen.append)
    assert result.status == "ok"
    assert [m.epoch for m in seen] == [1, 2, 3]  # one report per epoch, after both seeds reached it
    for e, m in enumerate(seen):
        tops = [a.history[e].val_top1 for a in alone]
        assert m.seeds == [3, 4] and m.seed_top1 == tops  # exactly the seeds alone: interleaving changes nothing
        assert m.val_top1 == pytest.approx(sum(tops) / 2)
        assert m.train_loss == pytest.approx((alone[0].history[e].train_loss + alone[1].history[e].train_loss) / 2)
    # the first seed trains in the work directory itself (best.pt where the record points), the next in seed4/
    assert (tmp_path / "work" / "best.pt").exists() and (tmp_path / "work" / "seed4" / "best.pt").exists()
    assert numbers(result.history) == numbers(seen)


def test_a_killed_k_seed_trial_resumes_where_it_stopped_and_reports_the_last_epoch(data, tmp_path):
    tr, va = data
    g = parse(TINY)
    straight = []
    train_seeds(g, tr, va, cfg(seed=0), k=2, out_dir=tmp_path / "a", on_epoch=straight.append)

    class Killed(Exception):
        pass

    def kill_at_2(m):
        if m.epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train_seeds(g, tr, va, cfg(seed=0), k=2, out_dir=tmp_path / "b", on_epoch=kill_at_2)
    seen = []
    again = train_seeds(g, tr, va, cfg(seed=0), k=2, out_dir=tmp_path / "b", on_epoch=seen.append)
    assert [m.epoch for m in seen] == [3] and again.status == "ok"
    assert numbers(again.history) == numbers(straight)
    # a finished trial run again trains nothing but still reports its final epoch (the searcher needs it)
    last = []
    train_seeds(g, tr, va, cfg(seed=0), k=2, out_dir=tmp_path / "b", on_epoch=last.append)
    assert [m.epoch for m in last] == [3] and last[0].seed_top1 == straight[-1].seed_top1


def test_a_failing_seed_fails_the_trial_naming_the_seed(data, tmp_path):
    tr, va = data
    seen = []
    r = train_seeds(parse(TINY), tr, va, cfg(seed=0, lr=1e30), k=2, out_dir=tmp_path, on_epoch=seen.append)
    assert r.status == "nan" and r.reason.startswith("seed 0: ")
    assert all(math.isfinite(m.val_top1) for m in r.history)


def test_a_resumed_k_seed_trial_sums_the_seeds_mean_losses(tmp_path):
    """The training-speed score of a resumed --seeds 2 trial: its earlier epochs' losses are
    the two seeds' means (what on_epoch reports later), over the epochs both seeds finished;
    the first seed's own losses alone would mix a 1-seed figure into a 2-seed score."""
    from dataclasses import asdict

    import torch

    from archlab.search.trial import _earlier_losses
    from archlab.training.trainer import EpochMetrics

    def ck(d, losses):
        d.mkdir(parents=True, exist_ok=True)
        hist = [
            asdict(
                EpochMetrics(
                    epoch=e,
                    train_loss=v,
                    val_loss=1.0,
                    val_top1=0.5,
                    val_top5=1.0,
                    lr=1e-3,
                    epoch_time_s=1.0,
                    train_clips_per_s=10.0,
                )
            )
            for e, v in enumerate(losses, 1)
        ]
        torch.save(
            {
                "genome": "x",
                "model": {},
                "optimizer": {},
                "scheduler": {},
                "history": hist,
                "epoch": len(losses),
                "rng": {},
            },
            d / "checkpoint.pt",
        )

    work = tmp_path / "trial"
    ck(work, [1.8, 1.6, 1.2])  # seed 0: 3 epochs
    ck(work / "seed1", [1.7, 1.4])  # seed 1 (killed earlier): 2 epochs
    assert _earlier_losses(work, [0, 1]) == {1: 1.75, 2: 1.5}
    assert _earlier_losses(work, [0]) == {1: 1.8, 2: 1.6, 3: 1.2}
    assert _earlier_losses(tmp_path / "new", [0, 1]) == {}
    (work / "seed1" / "checkpoint.pt").write_bytes(b"cut short")
    assert _earlier_losses(work, [0, 1]) == {}  # damaged: train() sets it aside and starts that seed again
