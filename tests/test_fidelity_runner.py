"""`archlab fidelity --quick` end to end: the files, the statistics they hold, re-run safety,
and the CLI's bad inputs (one line, exit 2)."""

import csv
import json
import math

import pytest

from archlab.cli import main
from archlab.results import stats
from archlab.util.errors import UserError


def _read_runs(out):
    with open(out / "runs.csv") as f:
        return list(csv.DictReader(f))


def test_quick_fidelity_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "fid"
    assert main(["fidelity", "--quick", "--out", str(out)]) == 0
    first = capsys.readouterr().out
    for name in ("fidelity.json", "genomes.csv", "runs.csv", "summary.json", "summary.md", "fidelity.png"):
        assert (out / name).stat().st_size > 0, name
    s = json.loads((out / "summary.json").read_text())
    labels = [p["label"] for p in s["per_genome"]]
    assert labels == ["2D", "s1"] and s["seeds"] == 2 and s["ref_seeds"] == 1
    runs = _read_runs(out)
    assert len(runs) == 2 * (2 + 1)  # genomes x (proxy seeds + reference seeds)
    assert {(r["label"], r["budget"], r["seed"]) for r in runs} == {
        (lab, b, str(k)) for lab in labels for b, n in (("proxy", 2), ("reference", 1)) for k in range(n)
    }
    assert all(r["status"] == "ok" for r in runs)
    # the statistics are those of the runs it wrote
    acc = {(r["label"], r["budget"], int(r["seed"])): float(r["val_top1"]) for r in runs}
    for p in s["per_genome"]:
        seeds = [acc[(p["label"], "proxy", k)] for k in range(2)]
        iv = stats.interval(seeds)
        assert p["proxy"] == pytest.approx(seeds)
        assert (p["mean"], p["std"], p["ci95"]) == pytest.approx((iv.mean, iv.std, iv.half))
        assert p["ref_mean"] == pytest.approx(acc[(p["label"], "reference", 0)])
        ref_run = next(r for r in runs if (r["label"], r["budget"]) == (p["label"], "reference"))
        assert p["ref_loss"] == pytest.approx(float(ref_run["val_loss"]))
        assert p["bimodal"] == stats.is_bimodal(seeds, 1 / 6, 24)
    by_seed = [[acc[(lab, "proxy", k)] for lab in labels] for k in range(2)]
    expect_tau = stats.kendall_tau_b(*by_seed)
    assert (math.isnan(s["seed_tau"]) and math.isnan(expect_tau)) or s["seed_tau"] == pytest.approx(expect_tau)
    assert set(s["scores"]) == {"val_top1", "val_loss", "training_speed", "synflow", "params", "gmacs"}
    # each score also ranked against the reference's val loss (lower = better)
    proxy_loss = [
        sum(float(r["val_loss"]) for r in runs if (r["label"], r["budget"]) == (lab, "proxy")) / 2 for lab in labels
    ]
    expect = stats.spearman_rho([-x for x in proxy_loss], [-p["ref_loss"] for p in s["per_genome"]])
    got = s["scores"]["val_loss"]["rho_vs_ref_loss"]
    assert (math.isnan(got) and math.isnan(expect)) or got == pytest.approx(expect)
    refs = [p["ref_mean"] for p in s["per_genome"]]
    assert s["reference_top1_range"] == pytest.approx([min(refs), max(refs)])
    # the reference's own noise: no seed pair with one reference seed; the val-set ceiling
    # is stats.rho_ceiling of the reference means on the reference's val clips (2 x 24)
    assert math.isnan(s["ref_seed_rho"]) and math.isnan(s["ref_seed_tau"])
    expect = stats.rho_ceiling(refs, 48)
    assert (math.isnan(s["ref_rho_ceiling"]) and math.isnan(expect)) or s["ref_rho_ceiling"] == pytest.approx(expect)
    assert "caps any proxy-vs-reference rho" in (out / "summary.md").read_text()
    with open(out / "genomes.csv") as f:
        genomes = list(csv.DictReader(f))
    assert [g["label"] for g in genomes] == labels and all(float(g["synflow"]) > 0 for g in genomes)
    assert "[6/6]" in first

    # a re-run trains nothing and writes the same statistics
    assert main(["fidelity", "--quick", "--out", str(out)]) == 0
    again = capsys.readouterr().out
    assert again.count("(reused)") == 6
    s2 = json.loads((out / "summary.json").read_text())
    assert s2["per_genome"] == s["per_genome"]
    # the wall time of every call adds up (this call's alone is the seconds of reusing)
    assert s["wall_s_all_calls"] == s["wall_s"]
    assert s2["wall_s_all_calls"] == pytest.approx(s["wall_s"] + s2["wall_s"])

    # other settings into the same directory: refused, nothing lost
    assert main(["fidelity", "--quick", "--seeds", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other settings" in err
    assert len(_read_runs(out)) == 6


def test_two_workers_train_the_same_runs_as_one(tmp_path, capsys):
    """--workers 2 trains the runs in two processes (one per core) but changes no number:
    each run is one seed at 1 thread either way, so its float sums run in the same order."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["fidelity", "--quick", "--workers", "1", "--out", str(one)]) == 0
    assert main(["fidelity", "--quick", "--workers", "2", "--out", str(two)]) == 0
    out = capsys.readouterr().out
    assert "6 runs, 2 at a time" in out and "[6/6]" in out
    keep = ("label", "budget", "seed", "status", "val_top1", "val_loss", "training_speed")
    assert [{k: r[k] for k in keep} for r in _read_runs(one)] == [{k: r[k] for k in keep} for r in _read_runs(two)]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--seeds", "1"], "at least 2"),
        (["--anchors", "P3D-Z"], "P3D-Z"),
        (["--genomes", "-1"], "--genomes"),
        (["--space", "no_such_space"], "no_such_space"),
        (["--ref-epochs-x", "0"], "--ref-epochs-x"),
        (["--ref-epochs-x", "0.9"], "--ref-epochs-x"),  # fractions are allowed, but not below 1
        (["--ref-clips-x", "inf"], "--ref-clips-x"),
        (["--ref-clips-x", "nan"], "--ref-clips-x"),
        (["--seeds", "two"], "invalid int"),
        (["--epochs", "0"], "--epochs must be at least 1"),  # the recipe's own check
        (["--classes", "9"], "--classes must be at most 8"),  # the synthetic clips', before any file
        (["--val-clips", "60000"], "reference budget"),  # 2x val clips past the recipe's limit
        (["--reference-width", "0"], "--reference-width must be a number in (0, 1]"),
        (["--reference-width", "1.5"], "--reference-width must be a number in (0, 1]"),
        (["--reference-input", "8x64"], "--reference-input"),
        (["--reference-input", "8x64x48"], "square"),
    ],
)
def test_bad_fidelity_inputs_are_one_line(tmp_path, capsys, args, words):
    with pytest.raises(SystemExit) if args[-1] == "two" else _no_raise() as _:
        code = main(["fidelity", "--quick", "--out", str(tmp_path / "x"), *args])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "x" / "runs").exists() and not (tmp_path / "x" / "fidelity.json").exists()


def test_fractional_reference_multipliers_round_to_whole_epochs_and_clips():
    """A 14-epoch proxy's 21-epoch reference is --ref-epochs-x 1.5 (the faint-task
    measurement in the README); the products are rounded, the val set still doubled."""
    from archlab.fidelity.runner import reference_of
    from archlab.training.recipe import ProxyRecipe

    ref = reference_of(ProxyRecipe(epochs=14, train_clips=1200, val_clips=300), 1.5, 2)
    assert (ref.epochs, ref.train_clips, ref.val_clips) == (21, 2400, 600)
    ref = reference_of(ProxyRecipe(epochs=7, train_clips=1000), 1.3, 1.25)
    assert (ref.epochs, ref.train_clips) == (9, 1250)  # 9.1 -> 9
    for bad in ((0.99, 2), (2, 0.5), (float("nan"), 2), (2, float("inf"))):
        with pytest.raises(UserError, match="at least 1"):
            reference_of(ProxyRecipe(), *bad)


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_against_ranks_two_measurements_over_their_common_genomes():
    """bf16 vs fp32 (issue 17 item 3): tau and rho between the per-genome proxy means of two
    measurements, matched by genome string (a genome only one of them has is left out)."""
    from archlab.fidelity.summary import against

    def summ(means, std):
        return {
            "median_seed_std": std,
            "per_genome": [{"label": f"g{i}", "genome": g, "mean": m} for i, (g, m) in enumerate(means)],
        }

    mine = summ([("A", 0.9), ("B", 0.8), ("C", 0.7), ("D", 0.2), ("only-here", 0.5)], 0.02)
    other = summ([("B", 0.85), ("A", 0.80), ("C", 0.75), ("D", 0.1)], 0.03)
    a = against(mine, other)
    # common A B C D: mine 0.9 0.8 0.7 0.2, other 0.80 0.85 0.75 0.1: one discordant pair (A, B) of 6
    assert a["genomes"] == 4 and a["tau"] == pytest.approx(4 / 6) and a["rho"] == pytest.approx(0.8)
    assert (a["median_seed_std"], a["other_median_seed_std"]) == (0.02, 0.03)
    assert a["mean_abs_diff"] == pytest.approx((0.1 + 0.05 + 0.05 + 0.1) / 4)
    assert "ref_tau" not in a  # no references in these summaries: nothing to rank
    with pytest.raises(ValueError, match="1 genome"):
        against(summ([("A", 0.9)], 0.0), other)
    # the references ranked against each other: mine 0.99 0.98 0.97 0.1, other 0.97 0.98 0.99 0.1
    for p, r in zip(mine["per_genome"], (0.99, 0.98, 0.97, 0.1, 0.5)):
        p["ref_mean"] = r
    for p, r in zip(other["per_genome"], (0.98, 0.97, 0.99, 0.1)):  # B A C D
        p["ref_mean"] = r
    a = against(mine, other)
    # common A B C D: mine 0.99 0.98 0.97 0.10, other 0.97 0.98 0.99 0.10: pairs AB AC BC
    # discordant, AD BD CD concordant: tau 0; ranks 4 3 2 1 vs 2 3 4 1: d^2 = 4+0+4+0, rho 0.2
    assert a["ref_tau"] == pytest.approx(0.0) and a["ref_rho"] == pytest.approx(0.2)
    assert a["per_genome"][0] == {
        "label": "g0",
        "mean": 0.9,
        "other_mean": 0.80,
        "ref_mean": 0.99,
        "other_ref_mean": 0.97,
    }


def test_against_from_the_command_line(tmp_path, capsys):
    """``--against DIR`` writes against.json from the two summaries; a DIR without a finished
    measurement is one line and exit 2 before anything trains."""
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["fidelity", "--quick", "--out", str(first)]) == 0
    capsys.readouterr()
    assert main(["fidelity", "--quick", "--data-seed", "1", "--out", str(second), "--against", str(first)]) == 0
    out = capsys.readouterr().out
    a = json.loads((second / "against.json").read_text())
    mine, theirs = (json.loads((d / "summary.json").read_text()) for d in (second, first))
    assert a["against"] == str(first) and a["genomes"] == 2
    assert [r["mean"] for r in a["per_genome"]] == [p["mean"] for p in mine["per_genome"]]
    assert [r["other_ref_mean"] for r in a["per_genome"]] == [p["ref_mean"] for p in theirs["per_genome"]]
    assert a["rho"] == pytest.approx(
        stats.spearman_rho([p["mean"] for p in mine["per_genome"]], [p["mean"] for p in theirs["per_genome"]]),
        nan_ok=True,
    )
    assert "the two references: tau" in out and "against.json" in out
    assert main(["fidelity", "--quick", "--out", str(tmp_path / "c"), "--against", str(tmp_path / "nowhere")]) == 2
    assert "no summary.json there" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_a_training_form_is_part_of_the_measurement(tmp_path, capsys):
    out = tmp_path / "bf16"
    assert main(["fidelity", "--quick", "--form", "bf16-autocast/cl3d", "--out", str(out)]) == 0
    assert json.loads((out / "fidelity.json").read_text())["form"] == "bf16-autocast/cl3d"
    capsys.readouterr()
    assert main(["fidelity", "--quick", "--out", str(out)]) == 2  # fp32 into a bf16 measurement: refused
    assert "other settings (form)" in capsys.readouterr().err
    assert main(["fidelity", "--quick", "--form", "fp16/cl3d", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_summary_ranks_the_reference_seeds_against_each_other():
    """With 2+ reference seeds the summary says how well the reference agrees with itself
    (the other ceiling on proxy-vs-reference rho, beside its val set's binomial noise)."""
    from archlab.fidelity.anchors import anchor_genomes
    from archlab.fidelity.summary import Run, render_markdown, summarize
    from archlab.training.recipe import ProxyRecipe

    genomes = anchor_genomes(["P3D-A", "P3D-B", "P3D-C"])
    rows = [{"params": 1000 + i, "gmacs": 0.01, "synflow": 1.0 + i} for i in range(3)]
    proxy = {"P3D-A": (0.5, 0.6), "P3D-B": (0.7, 0.8), "P3D-C": (0.9, 0.85)}
    ref = {"P3D-A": (0.80, 0.91), "P3D-B": (0.90, 0.92), "P3D-C": (0.95, 0.90)}  # seed 1: C < A < B

    def run(label: str, budget: str, seed: int, acc: float) -> Run:
        return Run(
            label=label,
            genome="g",
            budget=budget,
            seed=seed,
            status="ok",
            val_top1=acc,
            val_loss=1 - acc,
            training_speed=-1.0,
            train_losses=[1.0],
            val_top1s=[acc],
            train_time_s=1.0,
        )

    runs = [run(lab, "proxy", k, proxy[lab][k]) for lab in proxy for k in range(2)]
    runs += [run(lab, "reference", k, ref[lab][k]) for lab in ref for k in range(2)]
    r = ProxyRecipe(val_clips=300)
    s = summarize(genomes, rows, runs, seeds=2, ref_seeds=2, proxy=r, reference=r.with_(val_clips=600))
    # seed 0 ranks A < B < C, seed 1 ranks C < A < B: by hand rho = -0.5, tau = -1/3
    assert s["ref_seed_rho"] == pytest.approx(-0.5)
    assert s["ref_seed_tau"] == pytest.approx(-1 / 3)
    means = [0.855, 0.91, 0.925]
    assert [p["ref_mean"] for p in s["per_genome"]] == pytest.approx(means)
    # both seeds are scored on the same 600 val clips: the ceiling is that set's, not 1,200 clips'
    assert s["ref_rho_ceiling"] == pytest.approx(stats.rho_ceiling(means, 600))
    assert s["ref_rho_ceiling"] != pytest.approx(stats.rho_ceiling(means, 1200))
    # The seeds' pooled variance, (2 x 0.055^2 + 2 x 0.01^2 + 2 x 0.025^2) / 3 = 0.0025, makes each
    # mean's standard error about 0.037: the largest gap, C - A = 0.07, is under 2 x sqrt(0.00146 +
    # 0.00137) = 0.106, so the reference separates no pair and vouches for none of the proxy's order.
    assert s["separated_pairs"] == {
        "pairs": 0,
        "of": 3,
        "agree": 0.0,
        "concordance": pytest.approx(math.nan, nan_ok=True),
        "seed_noise": True,
    }
    assert "on the 0 of 3 genome pairs the reference separates" in render_markdown(s)
    # one reference seed (0.80 / 0.90 / 0.95): the val set's noise alone, which on 600 clips separates
    # every pair (the closest, B - C = 0.05 > 2 sqrt(0.9*0.1/600 + 0.95*0.05/600) = 0.030); the proxy
    # means (0.55 / 0.75 / 0.875) order all three the same way
    one = summarize(
        genomes,
        rows,
        [r for r in runs if r.budget == "proxy" or r.seed == 0],
        seeds=2,
        ref_seeds=1,
        proxy=r,
        reference=r.with_(val_clips=600),
    )
    assert one["separated_pairs"] == {"pairs": 3, "of": 3, "agree": 3.0, "concordance": 1.0, "seed_noise": False}
    assert "binomial noise alone (a lower bound" in render_markdown(one)


def test_a_less_reduced_reference_trains_the_targets_at_its_width_and_clip(tmp_path, capsys):
    # --reference-width W: the reference trains each genome's target at W times its widths
    # (the proxy's widths x W / proxy width); --reference-input: on those clips. The proxy runs
    # are those of the plain measurement.
    from archlab.model.genome import parse
    from archlab.spaces import load_space

    out = tmp_path / "fid"
    args = ["fidelity", "--quick", "--out", str(out), "--reference-width", "0.5", "--reference-input", "4x48x48"]
    assert main(args) == 0
    assert "reference: the targets at width x0.5 on 4x48x48 clips" in capsys.readouterr().out
    runs = _read_runs(out)
    genomes = {r["label"]: r["genome"] for r in runs if r["budget"] == "proxy"}
    ratio = 0.5 / load_space("interleave").proxy_width
    for r in runs:
        if r["budget"] == "reference":
            proxy, ref = parse(genomes[r["label"]]), parse(r["genome"])
            assert [s.width for s in ref.stages] == [round(s.width * ratio) for s in proxy.stages]
            assert ref.with_(stages=proxy.stages, stem_width=proxy.stem_width) == proxy
    manifest = json.loads((out / "fidelity.json").read_text())
    assert (manifest["reference_width"], manifest["reference_input"]) == (0.5, "4x48x48")
    assert (manifest["reference"]["frames"], manifest["reference"]["size"]) == (4, 48)
    assert "the targets at width x0.5 on 4x48x48 clips" in (out / "summary.md").read_text()
    # the same directory with the plain reference is another measurement: refused
    assert main(["fidelity", "--quick", "--out", str(out)]) == 2
