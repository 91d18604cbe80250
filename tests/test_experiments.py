"""Experiments (experiments/*.yaml, `archlab experiment`): file checks with one-line errors, a train experiment's
numbers and its resume, the shipped experiments, and a search experiment's common reference point."""

import csv
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from search_helpers import TINY_SPACE

from archlab.cli import main
from archlab.experiments import default_out, experiment_folders, list_experiments, load_experiment, run_experiment
from archlab.measure.profile import cost
from archlab.model.builder import build, count_params
from archlab.model.genome import parse
from archlab.results import pareto
from archlab.results.reader import finished, load_results
from archlab.util.errors import UserError

TINY_A = "A|2 stem=2d/none sw=4 w=4,8 t=-,-"
TINY_2 = "2|2 stem=2d/none sw=4 w=4,8 t=-,-"
TRAIN = {
    "genomes": {"tiny-A": TINY_A, "tiny-2D": TINY_2},
    "seeds": [0],
    "epochs": 1,
    "batch": 8,
    "frames": 4,
    "size": 16,
    "train_clips": 16,
    "val_clips": 8,
    "latency_runs": 2,
    "threads": 1,
}


def write_study(d: Path, name: str = "tiny", **body) -> Path:
    body.setdefault("description", "a tiny test experiment")
    path = d / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


# ---- the file format -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"train": TRAIN, "trian": {}}, "bad.yaml: unknown key 'trian'"),
        ({"description": "", "train": TRAIN}, "bad.yaml: key 'description'"),
        ({}, "give a 'train', 'search' or 'fidelity' section (or several)"),
        ({"train": {**TRAIN, "epoch": 2}}, "bad.yaml: unknown key 'epoch' in 'train'"),
        ({"train": {k: v for k, v in TRAIN.items() if k != "genomes"}}, "bad.yaml: key 'train.genomes' is required"),
        ({"train": {**TRAIN, "genomes": {"x": "ABQ|2"}}}, "bad.yaml: key 'train.genomes.x': stage 1, position 3: 'Q'"),
        ({"train": {**TRAIN, "genomes": {"x": "p3d64"}}}, "bad.yaml: key 'train.genomes.x': unknown preset 'p3d64'"),
        ({"train": {**TRAIN, "genomes": {"a b": TINY_A}}}, "bad.yaml: key 'train.genomes.a b': a label is a directory"),
        ({"train": {**TRAIN, "seeds": [0, 0]}}, "bad.yaml: key 'train.seeds'"),
        ({"train": {**TRAIN, "optimizer": "adam"}}, "bad.yaml: key 'train.optimizer'"),
        ({"train": {**TRAIN, "classes": 9}}, "bad.yaml: key 'train.classes': 9 must be an integer in 2..8"),
        ({"train": {**TRAIN, "size": 8}}, "bad.yaml: key 'train.frames'/'train.size'"),
        ({"search": {"searches": {"a": {"spaec": "free"}}}}, "bad.yaml: unknown key 'spaec' in 'search.searches.a'"),
        (
            {"search": {"searches": {"a": {"space": "nosuch"}}}},
            "bad.yaml: key 'search.searches.a': unknown search space",
        ),
        (
            {"search": {"searches": {"a": {"trials": "many"}}}},
            "bad.yaml: key 'search.searches.a.trials': must be a whole number (got 'many')",
        ),
        ({"search": {"searches": {"a": {"name": "x"}}}}, "bad.yaml: unknown key 'name' in 'search.searches.a'"),
        ({"search": {"searches": {"a": {"sampler": "grid"}}}}, "bad.yaml: key 'search.searches.a.sampler'"),
        ({"search": {"searches": {"a": {}, "b": {"objectives": "acc,gmacs"}}}}, "same objectives"),
        ({"search": {"common": {"trials": 2}}}, "bad.yaml: key 'search.searches' is required"),
        ({"train": TRAIN, "quick": {"train": {"genomes": {}}}}, "bad.yaml: unknown key 'genomes' in 'quick.train'"),
        ({"train": TRAIN, "quick": {"search": {"trials": 0.5}}}, "bad.yaml: key 'quick.search.trials'"),
        # issue 15 item 4: each of these was accepted unchecked, or a traceback, before
        ({"train": {**TRAIN, "lr": float("inf")}}, "bad.yaml: key 'train.lr': must be a finite number (got inf)"),
        ({"train": {**TRAIN, "lr": float("nan")}}, "bad.yaml: key 'train.lr': must be a finite number (got nan)"),
        ({"train": {**TRAIN, "frames": 1e30}}, "bad.yaml: key 'train.frames': must be a whole number (got 1e+30)"),
        ({"train": {**TRAIN, "frames": 100_000_000}}, "key 'train.frames': must be at most 256 (got 100,000,000)"),
        ({"train": {**TRAIN, "train_clips": 10**12}}, "key 'train.train_clips': must be at most 100,000"),
        (
            {"train": {**TRAIN, "seeds": list(range(200))}},
            "key 'train.seeds': 200 is more than an experiment may ask for",
        ),
        ({"train": {**TRAIN, "seeds": [2**40]}}, "key 'train.seeds'"),
        ({"train": {**TRAIN, "momentum": 1.5}}, "bad.yaml: key 'train.momentum': must be in [0, 1) (got 1.5)"),
        ({"train": {**TRAIN, "seed": 1}}, "bad.yaml: unknown key 'seed' in 'train'"),
        ({"train": {**TRAIN, "latency_runs": 0}}, "bad.yaml: key 'train.latency_runs': 0 must be a positive integer"),
        ({"train": {**TRAIN, "workers": 0}}, "bad.yaml: key 'train.workers': 0 must be a positive integer"),
        ({"search": {"common": 0, "searches": {"a": {}}}}, "bad.yaml: key 'search.common': expected a mapping"),
        ({"search": {"common": [], "searches": {"a": {}}}}, "bad.yaml: key 'search.common': expected a mapping"),
        ({"search": {"searches": {"a": 0}}}, "bad.yaml: key 'search.searches.a': expected a mapping"),
        ({"train": TRAIN, "quick": 0}, "bad.yaml: key 'quick': expected a mapping"),
        ({"train": TRAIN, "quick": {"train": 0}}, "bad.yaml: key 'quick.train': expected a mapping"),
        (
            {"search": {"common": {"lr": float("inf")}, "searches": {"a": {}}}},
            "bad.yaml: key 'search.common.lr': must be a finite number (got inf)",
        ),
        (
            {"search": {"searches": {"a": {"data_opts": {"n_clip": 16}}}}},
            "key 'search.searches.a.data_opts': unknown option 'n_clip' for the synthetic dataset (options: n_clips",
        ),
        (
            {"search": {"searches": {"a": {"data_opts": {"n_clips": 10**9}}}}},
            "key 'search.searches.a.data_opts.n_clips': 1000000000 must be in 0..100,000",
        ),
        (
            {"search": {"searches": {"a": {"data_opts": {"seed": {"x": 1}}}}}},
            "key 'search.searches.a.data_opts.seed': {'x': 1} is not a plain value",
        ),
        (
            {"search": {"searches": {"a": {"data_opts": 3}}}},
            "key 'search.searches.a.data_opts': 3 is not a mapping of dataset options",
        ),
        (
            {"search": {"searches": {"a": {"cpus_per_trial": 0}}}},
            "key 'search.searches.a.cpus_per_trial': must be positive (got 0)",
        ),
        (
            {"search": {"searches": {"a": {"concurrency": 0}}}},
            "key 'search.searches.a.concurrency': must be at least 1 (got 0)",
        ),
        (
            {"search": {"searches": {"a": {"max_gmacs": -1}}}},
            "key 'search.searches.a.max_gmacs': must be positive (got -1)",
        ),
        (
            {"search": {"searches": {"a": {"max_gmacs": float("inf")}}}},
            "key 'search.searches.a.max_gmacs': must be a finite number (got inf)",
        ),
        (
            {"search": {"searches": {"a": {"wandb": "loud"}}}},
            "key 'search.searches.a.wandb': must be one of auto, online, offline, off",
        ),
        (
            {"search": {"searches": {"a": {"data": "kinetics"}}}},
            "key 'search.searches.a': --data must be one of synthetic, ucf101, folder (got 'kinetics')",
        ),
        (
            {"search": {"searches": {"a": {"data": "ucf101"}}}},
            "key 'search.searches.a': --data ucf101 needs --data-root PATH",
        ),
        (
            {"search": {"searches": {"a": {"trials": 10**7}}}},
            "key 'search.searches.a.trials': must be at most 100,000 (got 10,000,000)",
        ),
        ({"search": {"searches": {"a": {"epochs": 0}}}}, "key 'search.searches.a.epochs': must be at least 1 (got 0)"),
        ({"search": {"searches": {"a": {"frames": 1e30}}}}, "key 'search.searches.a.frames': must be a whole number"),
        (
            {"search": {"searches": {"a": {"workers": -1}}}},
            "key 'search.searches.a.workers': must be at least 0 (got -1)",
        ),
        ({"search": {"searches": {"a" * 65: {}}}}, "a label is a directory name"),
        # the fidelity kind (issue 16 item 1): its own keys, the recipe's, the rules between them
        ({"fidelity": {"seed": 1}}, "bad.yaml: unknown key 'seed' in 'fidelity'"),
        (
            {"fidelity": {"seeds": 1}},
            "bad.yaml: key 'fidelity.seeds': must be at least 2: seed noise needs 2 proxy seeds",
        ),
        ({"fidelity": {"seeds": "3"}}, "bad.yaml: key 'fidelity.seeds': '3' must be a whole number"),
        (
            {"fidelity": {"anchors": ["P3D-D"]}},
            "bad.yaml: key 'fidelity.anchors': ['P3D-D'] must be 'all', 'none' or a list",
        ),
        ({"fidelity": {"space": "nosuch"}}, "bad.yaml: key 'fidelity.space': unknown search space"),
        ({"fidelity": {"lr": -1}}, "bad.yaml: key 'fidelity.lr'"),
        ({"fidelity": {"fresh_clips": "yes"}}, "bad.yaml: key 'fidelity.fresh_clips': 'yes' must be true or false"),
        ({"fidelity": {"workers": 0}}, "bad.yaml: key 'fidelity.workers': 0 must be a positive integer or null"),
        (
            {"fidelity": {"genomes": 0, "anchors": ["2D"]}},
            "bad.yaml: key 'fidelity': a ranking needs at least 2 genomes",
        ),
        (
            {"fidelity": {"ref_epochs_x": 0.5}},
            "bad.yaml: key 'fidelity.ref_epochs_x': 0.5 must be a number, at least 1",
        ),
        ({"fidelity": {"ref_clips_x": "2"}}, "bad.yaml: key 'fidelity.ref_clips_x': '2' must be a number, at least 1"),
        (
            {"fidelity": {"ref_epochs_x": 1000}},
            "bad.yaml: key 'fidelity': the reference budget (ref_epochs_x, ref_clips_x)",
        ),
        ({"fidelity": {}, "quick": {"fidelity": {"seeds": 1}}}, "bad.yaml: key 'fidelity.seeds': must be at least 2"),
        # the cycle kind (issue 13 item 6)
        (
            {"search": {"searches": {"a": {}}}, "cycle": {"search": "b"}},
            "bad.yaml: key 'cycle.search': 'b' is not one of the file's searches (a)",
        ),
        (
            {"train": TRAIN, "cycle": {"search": "a"}},
            "bad.yaml: key 'cycle.search': 'a' is not one of the file's searches (none)",
        ),
        (
            {"search": {"searches": {"a": {}}}, "cycle": {"search": "a", "variants": ["pure-D"]}},
            "bad.yaml: key 'cycle.variants'",
        ),
        (
            {"search": {"searches": {"a": {}}}, "cycle": {"search": "a", "variant": []}},
            "unknown key 'variant' in 'cycle'",
        ),
    ],
)
def test_bad_study_files_are_one_line_exit_2(capsys, tmp_path, body, needle):
    path = write_study(tmp_path, "bad", **body)
    code, _, err = run_cli(capsys, "experiment", "run", str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_bad_yaml_and_unknown_names(capsys, tmp_path, monkeypatch):
    (tmp_path / "broken.yaml").write_text("description: x\ntrain: [\n")
    code, _, err = run_cli(capsys, "experiment", "run", str(tmp_path / "broken.yaml"))
    assert code == 2 and "broken.yaml: not valid YAML" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("ARCHLAB_EXPERIMENTS", str(tmp_path))
    write_study(tmp_path, "mine", train=TRAIN)
    code, _, err = run_cli(capsys, "experiment", "run", "nosuch")
    assert code == 2 and "unknown experiment 'nosuch': experiments are " in err and len(err.strip().splitlines()) == 1
    assert {"broken", "mine", "p3d_table1"} <= set(err.split("experiments are ")[1].split(" (or")[0].split(", "))
    code, _, err = run_cli(capsys, "experiment", "run", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml not found" in err


def test_the_old_names_work_for_one_release_with_a_note(capsys, tmp_path, monkeypatch):
    """`archlab study ...` and $ARCHLAB_STUDIES were the experiments' names before: they still
    work, and the command says once, on stderr, what to write instead."""
    code, out, err = run_cli(capsys, "study", "list")
    assert code == 0 and err.splitlines() == [
        "archlab study: note: archlab study is deprecated and will be removed in the next release: "
        "write archlab experiment"
    ]
    assert out == run_cli(capsys, "experiment", "list")[1] and "p3d_table1" in out
    write_study(tmp_path, "mine", train=TRAIN)
    monkeypatch.setenv("ARCHLAB_STUDIES", str(tmp_path))
    assert experiment_folders()[0] == tmp_path and load_experiment("mine").name == "mine"
    monkeypatch.setenv("ARCHLAB_EXPERIMENTS", str(tmp_path / "new"))  # the new name wins where both are set
    assert experiment_folders()[0] == tmp_path / "new"


def test_every_shipped_study_loads_and_the_list_shows_them(capsys):
    names = sorted(p.stem for p in experiment_folders()[-1].glob("*.yaml"))
    assert {
        "p3d_table1",
        "interleave_vs_free",
        "sampler_vs_random",
        "asha_vs_mo_asha",
        "fidelity_interleave",
        "search_vs_cycle",
    } <= set(names)
    for name in names:
        for quick in (False, True):
            s = load_experiment(name, quick=quick)
            assert s.name == name and s.description and (s.train is not None or s.searches or s.fidelity)
    assert [s.name for s in list_experiments()] == names
    code, out, _ = run_cli(capsys, "experiment", "list")
    assert code == 0 and all(n in out for n in names)


def test_the_table1_study_compares_the_paper_variants_on_one_skeleton():
    s = load_experiment("p3d_table1")
    t = s.train
    assert (
        set(t.genomes) == {"P3D-A", "P3D-B", "P3D-C", "P3D-ABC", "C2D"} and len(t.seeds) == 6 and t.compare == "P3D-ABC"
    )
    r = t.recipe
    assert (r.epochs, r.faint, r.batch, r.optimizer, r.lr, r.zero_init, t.clip) == (
        14,
        0.3,
        8,
        "adamw",
        0.002,
        False,
        (8, 32, 32),
    )
    assert r == type(r)().with_(seed=r.seed)  # the lab's one recipe, the one the search trains
    skeletons = {
        (
            tuple(st.depth for st in g.stages),
            tuple(st.width for st in g.stages),
            g.stem_width,
            g.stem,
            tuple(st.temporal for st in g.stages),
            g.dropout,
            g.classes,
        )
        for g in t.genomes.values()
    }
    assert len(skeletons) == 1  # same depths, widths, stem, temporal skeleton, head
    letters = {k: g.letters for k, g in t.genomes.items()}
    assert letters["P3D-ABC"] == "A|B|CAB|2" and letters["C2D"] == "2|2|222|2"
    for v in "ABC":
        assert letters[f"P3D-{v}"] == f"{v}|{v}|{v * 3}|2"
    cfgs = load_experiment("interleave_vs_free").searches
    budgets = {(c.trials, c.recipe.epochs, c.objectives, c.recipe.seed) for c in cfgs.values()}
    assert len(cfgs) == 2 and len(budgets) == 1  # the same budget for both searches
    # issue 13 items 5 and 2: each candidate over the same 3 search seeds, at one budget
    for name, field, values in (
        ("sampler_vs_random", "sampler", {"nsga2", "tpe", "random"}),
        ("asha_vs_mo_asha", "scheduler", {"asha", "mo-asha"}),
    ):
        cfgs = load_experiment(name).searches
        assert {(getattr(c, field), c.recipe.seed) for c in cfgs.values()} == {
            (v, s) for v in values for s in (0, 1, 2)
        }
        assert len({(c.trials, c.recipe.epochs, c.objectives, c.space, c.grace_epochs) for c in cfgs.values()}) == 1


def test_quick_shrinks_the_study_and_writes_elsewhere(tmp_path):
    path = write_study(
        tmp_path,
        train={**TRAIN, "epochs": 3, "seeds": [4, 5], "train_clips": 500},
        quick={"train": {"val_clips": 4}},
        search={
            "common": {"trials": 30, "epochs": 5, "data_opts": {"num_classes": 3}},
            "searches": {"a": {"space": "interleave"}, "b": {"space": "free", "trials": 40}},
        },
    )
    full, quick = load_experiment(path), load_experiment(path, quick=True)
    assert (full.train.recipe.epochs, full.train.seeds, full.train.recipe.train_clips) == (3, [4, 5], 500)
    assert (
        quick.train.recipe.epochs,
        quick.train.seeds,
        quick.train.recipe.train_clips,
        quick.train.recipe.val_clips,
    ) == (1, [4], 64, 4)
    assert [c.trials for c in full.searches.values()] == [30, 40]
    for c in quick.searches.values():
        assert (c.trials, c.recipe.epochs, c.grace_epochs) == (2, 1, 1)
        assert (c.recipe.train_clips, c.recipe.val_clips) == (64, 64) and c.data_opts == {"num_classes": 3}
    assert default_out(full) == Path("runs/experiments/tiny") and default_out(quick) == Path(
        "runs/experiments/tiny-quick"
    )


# ---- a train experiment: numbers, resume, refusal of changed settings -----------------------------


def test_train_study_table_numbers_and_rerun_reuses(capsys, tmp_path):
    path = write_study(tmp_path, train=TRAIN)
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "experiment", "run", str(path), "--out", str(out))
    assert code == 0, err
    assert stdout.count("[train ") == 2 and "reused" not in stdout.split("# Experiment")[0]
    table = rows(out / "summary.csv")
    assert [r["label"] for r in table] == ["tiny-A", "tiny-2D"] and {r["kind"] for r in table} == {"train"}
    for r, text in zip(table, (TINY_A, TINY_2)):
        g = parse(text).with_(classes=6)  # the synthetic benchmark's classes
        assert r["genome"] == str(g)
        assert int(r["params"]) == count_params(build(g))
        assert float(r["gmacs"]) == pytest.approx(cost(g, (4, 16, 16)).gmacs, rel=1e-12)
        run_dir = out / "train" / r["label"] / "seed0"
        last = rows(run_dir / "metrics.csv")[-1]
        assert float(r["val_top1_mean"]) == pytest.approx(float(last["val_top1"]))
        assert r["val_top1_std"] == "" and r["seeds"] == "0" and r["epochs"] == "1" and r["status"] == "ok"
        assert float(r["latency_ms"]) > 0 and float(r["train_s"]) > 0
        assert yaml.safe_load((run_dir / "result.yaml").read_text())["status"] == "ok"
    md = (out / "summary.md").read_text()
    assert "tiny-A" in md and "tiny-2D" in md and md.strip() in stdout
    # Re-run: nothing retrains (checkpoints untouched), the table is the same file.
    ckpts = {p: p.stat().st_mtime_ns for p in out.rglob("checkpoint.pt")}
    first = (out / "summary.csv").read_text()
    code, stdout, _ = run_cli(capsys, "experiment", "run", str(path), "--out", str(out))
    assert code == 0 and stdout.count("(reused)") == 2 and "0 train run(s) trained, 2 reused" in stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("checkpoint.pt")} == ckpts and len(ckpts) == 2
    assert (out / "summary.csv").read_text() == first
    # The file changed under a finished run: refused, not silently reused.
    write_study(tmp_path, train={**TRAIN, "epochs": 2})
    code, _, err = run_cli(capsys, "experiment", "run", str(path), "--out", str(out))
    assert code == 2 and "was trained with epochs=1, the experiment now says 2" in err


FIDELITY = {
    "genomes": 1,
    "anchors": ["2D"],
    "seeds": 2,
    "epochs": 1,
    "frames": 4,
    "size": 16,
    "train_clips": 16,
    "val_clips": 12,
    "ref_seeds": 1,
    "ref_epochs_x": 2,
    "ref_clips_x": 1,
    "space": "tiny_space.yaml",
    "workers": 1,
}


def test_fidelity_study_writes_the_measurement_and_rerun_reuses_it(capsys, tmp_path):
    """A ``fidelity:`` section is `archlab fidelity` as a file: the same runs and statistics in
    <out>/fidelity/, one summary row with its headline figures, a re-run trains nothing, and a
    changed setting is refused before anything runs. The space file is found beside the experiment."""
    (tmp_path / "tiny_space.yaml").write_text(TINY_SPACE)
    path = write_study(tmp_path, fidelity=FIDELITY)
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "experiment", "run", str(path), "--out", str(out))
    assert code == 0, err
    s = yaml.safe_load((out / "fidelity" / "summary.json").read_text())
    assert s["n_genomes"] == 2 and s["seeds"] == 2 and s["ref_seeds"] == 1
    assert stdout.count("[fidelity] [") == 6  # 2 genomes x (2 proxy seeds + 1 reference)
    (row,) = rows(out / "summary.csv")
    assert row["kind"] == "fidelity" and row["genomes"] == "2" and row["seeds"] == "2"
    assert float(row["median_seed_std"]) == pytest.approx(s["median_seed_std"])
    assert row["best_score"] in s["scores"]
    measured = [v for v in s["targets"].values() if v is not None]
    assert int(row["targets"]) == len(measured) and int(row["targets_met"]) == sum(measured)
    runs = rows(out / "fidelity" / "runs.csv")
    assert sorted((r["label"], r["budget"], r["seed"]) for r in runs) == sorted(
        [(lab, "proxy", k) for lab in ("2D", "s1") for k in ("0", "1")]
        + [(lab, "reference", "0") for lab in ("2D", "s1")]
    )
    md = (out / "summary.md").read_text()
    assert "## Proxy fidelity (2 genomes, 2 proxy seeds" in md and "| median seed std <= 0.03 |" in md
    first = (out / "fidelity" / "runs.csv").read_text()
    code, stdout, _ = run_cli(capsys, "experiment", "run", str(path), "--out", str(out))
    assert code == 0 and stdout.count("(reused)") == 6
    assert (out / "fidelity" / "runs.csv").read_text() == first
    write_study(tmp_path, fidelity={**FIDELITY, "data_seed": 3})
    code, stdout, err = run_cli(capsys, "experiment", "run", str(path), "--out", str(out))
    assert code == 2 and "holds a fidelity run with other settings (data_seed)" in err
    assert "[fidelity] [" not in stdout and len(err.strip().splitlines()) == 1


def test_a_run_stored_before_object_scale_existed_is_not_reused_under_the_new_objects(capsys, tmp_path):
    """An older archlab wrote run.yaml without object_scale: that run trained on the first task's
    objects (1.0). Today's default (1.4) is other data, so the run is refused, not reused; a
    file that asks for 1.0 reuses it."""
    path = write_study(tmp_path, train={**TRAIN, "genomes": {"tiny-A": TINY_A}})
    out = tmp_path / "out"
    assert run_cli(capsys, "experiment", "run", str(path), "--out", str(out))[0] == 0
    run_yaml = out / "train" / "tiny-A" / "seed0" / "run.yaml"
    stored = yaml.safe_load(run_yaml.read_text())
    assert stored.pop("object_scale") == 1.4
    run_yaml.write_text(yaml.safe_dump(stored))  # as an older archlab wrote it
    code, _, err = run_cli(capsys, "experiment", "run", str(path), "--out", str(out))
    assert code == 2 and "was trained with object_scale=1.0, the experiment now says 1.4" in err
    write_study(tmp_path, train={**TRAIN, "genomes": {"tiny-A": TINY_A}, "object_scale": 1.0})
    code, stdout, err = run_cli(capsys, "experiment", "run", str(path), "--out", str(out))
    assert code == 0 and "0 train run(s) trained, 1 reused" in stdout, err


def test_two_seeds_give_mean_and_std(tmp_path):
    path = write_study(tmp_path, train={**TRAIN, "genomes": {"tiny-A": TINY_A}, "seeds": [0, 1]})
    lines = []
    res = run_experiment(load_experiment(path), out=tmp_path / "out", echo=lines.append)
    (row,) = res.rows
    per_seed = [
        float(rows(tmp_path / "out" / "train" / "tiny-A" / f"seed{s}" / "metrics.csv")[-1]["val_top1"]) for s in (0, 1)
    ]
    assert row["val_top1_mean"] == pytest.approx(sum(per_seed) / 2)
    assert row["val_top1_std"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2**0.5)
    assert res.trained == 2 and res.reused == 0 and sum(line.startswith("[train ") for line in lines) == 2
    assert row["val_top1_ci95"] == pytest.approx(12.706 * row["val_top1_std"] / 2**0.5)  # t(0.975, 1 df)


def test_two_workers_train_a_study_to_the_same_numbers(tmp_path):
    """workers: 2 trains two runs at once in two processes; with threads: 1 each run's float
    sums are the same as in one process, so the table is too (latency aside: measured)."""
    one = write_study(tmp_path, "one", train={**TRAIN, "seeds": [0, 1]})
    two = write_study(tmp_path, "two", train={**TRAIN, "seeds": [0, 1], "workers": 2})
    lines: list[str] = []
    a = run_experiment(load_experiment(one), out=tmp_path / "a", echo=lambda line: None)
    b = run_experiment(load_experiment(two), out=tmp_path / "b", echo=lines.append)
    assert "[train] 4 runs, 2 at a time" in lines and sum(line.startswith("[train ") for line in lines) == 4
    keep = ("label", "val_top1_per_seed", "val_top1_mean", "params", "gmacs", "epochs", "status")
    assert [{k: r[k] for k in keep} for r in a.rows] == [{k: r[k] for k in keep} for r in b.rows]
    assert b.trained == 4
    again = run_experiment(load_experiment(two), out=tmp_path / "b", echo=lambda line: None)
    assert again.reused == 4 and again.trained == 0


def test_compare_gives_each_row_its_welch_difference_and_verdict(tmp_path):
    from archlab.results.stats import difference

    path = write_study(tmp_path, train={**TRAIN, "seeds": [0, 1], "compare": "tiny-2D"})
    res = run_experiment(load_experiment(path), out=tmp_path / "out", echo=lambda line: None)
    by = {r["label"]: r for r in res.rows}
    seeds = {
        lab: [
            float(rows(tmp_path / "out" / "train" / lab / f"seed{k}" / "metrics.csv")[-1]["val_top1"]) for k in (0, 1)
        ]
        for lab in by
    }
    d = difference(seeds["tiny-A"], seeds["tiny-2D"])
    a = by["tiny-A"]
    assert (a["vs"], a["diff"]) == ("tiny-2D", pytest.approx(d.mean))
    if math.isnan(d.half):
        assert a["verdict"].startswith("undecided") or a["verdict"] == "not distinguishable"
    else:
        assert a["diff_ci95"] == pytest.approx(d.half)
        assert a["verdict"] == ("above" if d.low > 0 else "below" if d.high < 0 else "not distinguishable")
    assert "vs" not in by["tiny-2D"]
    assert "minus tiny-2D (Welch 95%)" in res.markdown and "(reference)" in res.markdown
    csv_row = {r["label"]: r for r in rows(tmp_path / "out" / "summary.csv")}
    assert csv_row["tiny-A"]["verdict"] == a["verdict"] and csv_row["tiny-2D"]["verdict"] == ""
    bad = write_study(tmp_path, "bad", train={**TRAIN, "compare": "nosuch"})
    with pytest.raises(UserError, match="key 'train.compare': 'nosuch' is not one of the genomes' labels"):
        load_experiment(bad)


# ---- a search experiment: fronts from one reference point --------------------------------------------


@pytest.mark.slow
def test_search_study_compares_fronts_on_one_reference_point(tmp_path):
    (tmp_path / "tiny_space.yaml").write_text(TINY_SPACE)
    common = {
        "space": "tiny_space.yaml",  # relative to the experiment file
        "frames": 4,
        "size": 32,
        "trials": 2,
        "epochs": 1,
        "batch": 8,
        "data_opts": {"n_clips": 16},
        "cpus_per_trial": 1,
        "wandb": "off",
        "latency_runs": 2,
        "confirm_seeds": 0,
    }  # the confirm step has its own test (test_search.py); keep this one fast
    path = write_study(
        tmp_path,
        search={
            "common": common,
            "searches": {"rand": {"sampler": "random", "seed": 1}, "nsga": {"sampler": "nsga2", "seed": 2}},
        },
    )
    lines = []
    res = run_experiment(load_experiment(path), out=tmp_path / "out", echo=lines.append)
    assert not res.interrupted
    done_lines = [
        line for line in lines if "[trial" in line and "[trial start]" not in line
    ]  # one line per trial's end
    assert sum(line.startswith("[search rand] [trial") for line in done_lines) == 2, lines
    assert sum(line.startswith("[search nsga] [trial") for line in done_lines) == 2
    table = rows(tmp_path / "out" / "summary.csv")
    assert [r["label"] for r in table] == ["rand", "nsga"] and {r["kind"] for r in table} == {"search"}
    # Recompute everything from the searches' own results, with the latencies measured again
    # after the searches (cached in the experiment: the same call reads them back, measuring nothing).
    from archlab.results.remeasure import AS_SEARCHED, CACHE_FILE, remeasure

    results = {r["label"]: load_results(tmp_path / "out" / "searches" / r["label"]) for r in table}
    cache_file = tmp_path / "out" / "searches" / CACHE_FILE
    before = cache_file.read_text()
    views = remeasure(
        {k: df[~df["baseline"]] for k, (df, _) in results.items()},
        {k: info.settings for k, (_, info) in results.items()},
        {k: (4, 32, 32) for k in results},
        tmp_path / "out" / "searches",
        echo=lambda line: None,
    )
    assert cache_file.read_text() == before  # every latency was a cache hit
    assert "latencies of" in "\n".join(lines) and "measured again" in "\n".join(lines)
    done = {k: finished(v) for k, v in views.items()}
    assert all((d[AS_SEARCHED] > 0).all() for d in done.values())  # the trials' own values kept beside
    objs, dirs = ["val_top1", "latency_ms"], ["max", "min"]
    ref = pareto.reference_point(pd.concat(done.values(), ignore_index=True), objs, dirs)
    assert ref[1] > max(float(d["latency_ms"].max()) for d in done.values())  # beyond BOTH searches' worst
    assert len({r["hv_reference"] for r in table}) == 1
    assert table[0]["hv_reference"] == f"val_top1={ref[0]:.6g}, latency_ms={ref[1]:.6g}"
    for r in table:
        d = done[r["label"]]
        assert int(r["finished"]) == len(d) == 2 and r["status"] == "ok" and r["space"] == "tiny_space"
        full = d[d["status"] == "ok"]  # a trial stopped at a rung never counts
        assert int(r["stopped"]) == len(d) - len(full)
        assert float(r["hypervolume"]) == pytest.approx(pareto.hypervolume(full, objs, dirs, ref))
        assert float(r["hv_as_searched"]) == pytest.approx(
            pareto.hypervolume(full.assign(latency_ms=full[AS_SEARCHED]), objs, dirs, ref)
        )
        assert float(r["hypervolume"]) > 0
        assert int(r["front_size"]) == int(pareto.non_dominated(full, objs, dirs).sum())
        assert float(r["best_val_top1"]) == pytest.approx(full["val_top1"].max())
    assert "ONE reference point" in (tmp_path / "out" / "summary.md").read_text()
    # At equal wall time: every search's trials completed within the shortest search's wall time.
    from archlab.results.numbers import hypervolume_time_curve

    equal = min(float(r["wall_s"]) for r in table)
    for r in table:
        assert float(r["equal_time_s"]) == pytest.approx(equal)
        df = views[r["label"]]
        curve = hypervolume_time_curve(df, objs, dirs, ref)
        assert float(r["wall_s"]) == pytest.approx(curve["elapsed_s"].iloc[-1])
        upto = curve[curve["elapsed_s"] <= equal + 1e-9]
        assert float(r["hv_at_equal_time"]) == pytest.approx(upto["hypervolume"].iloc[-1] if len(upto) else 0.0)
        assert float(r["hv_at_equal_time"]) <= float(r["hypervolume"]) + 1e-12
    shortest = min(table, key=lambda r: float(r["wall_s"]))
    assert float(shortest["hv_at_equal_time"]) == pytest.approx(float(shortest["hypervolume"]))
    # A re-run continues the finished searches: no new trial.
    lines.clear()
    run_experiment(load_experiment(path), out=tmp_path / "out", echo=lines.append)
    assert not any("[trial" in line for line in lines)
    assert rows(tmp_path / "out" / "summary.csv") == table
    # A changed recipe under a finished search is refused before anything runs.
    write_study(
        tmp_path, search={"common": {**common, "epochs": 2}, "searches": {"rand": {"sampler": "random", "seed": 1}}}
    )
    with pytest.raises(UserError, match="search 'rand' in .* was run with epochs=1, the experiment now says 2"):
        run_experiment(load_experiment(path), out=tmp_path / "out", echo=lines.append)


def test_latencies_measured_again_once_per_genome_and_only_for_trained_trials(tmp_path):
    """Two searches that trained the same genome share one value; a stopped trial is measured
    too (it is part of the reference point), a rejected one keeps its blank; each value is the
    fastest of its passes; the trials' own values move to latency_ms_as_searched; a re-run
    measures nothing."""
    import json

    from archlab.results.remeasure import AS_SEARCHED, CACHE_FILE, remeasure

    def table(rows_):
        return pd.DataFrame([{"genome": g, "status": st, "latency_ms": lat, "val_top1": 0.5} for g, st, lat in rows_])

    tables = {
        "a": table([(TINY_A, "ok", 9.0), (TINY_2, "stopped", 8.0)]),
        "b": table([(TINY_A, "ok", 7.0), (TINY_2, "rejected", float("nan"))]),
    }
    settings = {
        k: {"latency_form": "fp32/ncdhw", "latency_runtime": "torch", "cpus_per_trial": 1, "latency_runs": 2}
        for k in tables
    }
    clips = {"a": (4, 16, 16), "b": (4, 16, 16)}
    lines = []
    views = remeasure(tables, settings, clips, tmp_path, echo=lines.append, rounds=2)
    assert lines[0].startswith("latencies of 2 genomes measured again, 2 passes in shuffled orders")
    assert lines[1].startswith("latencies measured again: the slowest pass / the fastest, median ")
    cache = json.loads((tmp_path / CACHE_FILE).read_text())
    assert len(cache) == 2  # one entry per genome: search b's TINY_A is search a's
    for v in cache.values():
        assert len(v["passes_ms"]) == 2 and v["median_ms"] == min(v["passes_ms"]) > 0
    value = {k.split(" @ ")[0]: v["median_ms"] for k, v in cache.items()}
    assert list(views["a"]["latency_ms"]) == [value[TINY_A], value[TINY_2]]
    assert views["b"]["latency_ms"].iloc[0] == value[TINY_A]
    assert math.isnan(views["b"]["latency_ms"].iloc[1])  # rejected: never trained, never measured
    assert list(views["a"][AS_SEARCHED]) == [9.0, 8.0] and list(tables["a"]["latency_ms"]) == [9.0, 8.0]
    # a re-run reads the values back: the same numbers, nothing measured
    lines.clear()
    again = remeasure(tables, settings, clips, tmp_path, echo=lines.append, rounds=2)
    assert lines == [] and list(again["a"]["latency_ms"]) == list(views["a"]["latency_ms"])
    # other measuring settings are another value (here: more timed runs)
    more = remeasure(
        {"c": tables["a"]},
        {"c": {**settings["a"], "latency_runs": 3}},
        {"c": (4, 16, 16)},
        tmp_path,
        echo=lines.append,
        rounds=1,
    )
    assert lines[0].startswith("latencies of 2 genomes measured again, 1 pass in")
    assert len(json.loads((tmp_path / CACHE_FILE).read_text())) == 4 and len(more["c"]) == 2


def test_search_seeds_of_one_configuration_are_summarised_together():
    """Searches labelled NAME-s<k> are seeds of NAME: the summary's second table gives each
    configuration's hypervolume mean and spread over its seeds."""
    from archlab.experiments.spec import Experiment
    from archlab.experiments.summary import search_groups, summary_markdown

    def row(label, hv, hv_t, wall):
        return {
            "kind": "search",
            "label": label,
            "space": "interleave",
            "sampler": "nsga2",
            "scheduler": "asha",
            "trials": 2,
            "finished": 2,
            "failed": 0,
            "front_size": 1,
            "best_val_top1": 0.5,
            "hypervolume": hv,
            "hv_reference": "x",
            "wall_s": wall,
            "hv_at_equal_time": hv_t,
            "equal_time_s": 90.0,
            "busy_s": 1.0,
            "status": "ok",
        }

    rows_ = [
        row("asha-s0", 1.0, 0.5, 100.0),
        row("asha-s1", 3.0, 1.5, 90.0),
        row("mo-asha-s0", 2.0, 2.0, 120.0),
        row("mo-asha-s1", 2.0, 1.0, 110.0),
        row("other", 4.0, 4.0, 95.0),
    ]
    groups = search_groups(rows_)
    assert {k: [r["label"] for r in v] for k, v in groups.items()} == {
        "asha": ["asha-s0", "asha-s1"],
        "mo-asha": ["mo-asha-s0", "mo-asha-s1"],
        "other": ["other"],
    }
    md = summary_markdown(Experiment(name="x", description="d", path=Path("x.yaml"), quick=False, train=None), rows_)
    # mean 2, std sqrt(2) = 1.4; at equal time mean 1, std 0.71
    assert "| asha | 2 | 2 ± 1.4 | 1 ± 0.71 | 95 | (reference) | (reference) |" in md
    # mo-asha - asha: HV 2 - 2 = 0, se sqrt(0/2 + 2/2) = 1, Welch df = 1, t = 12.71; at equal
    # time 1.5 - 1 = 0.5, se sqrt(0.5/2 + 0.5/2) = 0.71, df = 2, t = 4.303: half 3.0
    assert (
        "| mo-asha | 2 | 2 ± 0 | 1.5 ± 0.71 | 115 | +0 ± 13: not distinguishable | +0.5 ± 3: not distinguishable |"
        in md
    )
    assert "| other | 1 | 4 | 4 | 95 | +2: undecided (one seed) | +3: undecided (one seed) |" in md


@pytest.mark.slow
def test_cycle_study_trains_the_variants_on_the_front_skeletons(tmp_path):
    """A search, its confirm step, then every variant on each front point's skeleton over the
    same seeds; the verdicts are compare()'s on the runs it stored; a re-run trains nothing."""
    from archlab.experiments.cycle import variant

    (tmp_path / "tiny_space.yaml").write_text(TINY_SPACE)
    common = {
        "space": "tiny_space.yaml",
        "frames": 4,
        "size": 32,
        "trials": 2,
        "epochs": 1,
        "batch": 8,
        "data_opts": {"n_clips": 16},
        "train_clips": 16,
        "val_clips": 16,
        "cpus_per_trial": 1,
        "wandb": "off",
        "latency_runs": 2,
        "confirm_seeds": 1,
    }
    path = write_study(
        tmp_path,
        search={"common": common, "searches": {"s": {"sampler": "random", "seed": 3}}},
        cycle={"search": "s", "variants": ["A->B->C", "2D"], "workers": 1},
    )
    lines = []
    res = run_experiment(load_experiment(path), out=tmp_path / "out", echo=lines.append)
    df = load_results(tmp_path / "out" / "searches" / "s")[0]
    front = df[df["on_front"] & ~df["baseline"]]
    row = next(r for r in res.rows if r["kind"] == "cycle")
    assert row["front_points"] == len(front) >= 1 and row["variants"] == 2 * len(front)
    runs = sorted(
        p.parent.parent.name + "/" + p.parent.name
        for p in (tmp_path / "out" / "cycle" / "train").glob("*/*/result.yaml")
    )
    expect = sorted(f"t{int(n)}-{v}/seed{k}" for n in front["number"] for v in ("ABC", "2D") for k in (3, 4))
    assert runs == expect  # seeds 3 (the search's) and 4 (its one confirm seed)
    for _, r in front.iterrows():
        g = parse(r["genome"])
        stored = yaml.safe_load(
            (tmp_path / "out" / "cycle" / "train" / f"t{int(r['number'])}-ABC" / "seed3" / "run.yaml").read_text()
        )
        assert stored["genome"] == str(variant(g, "A->B->C"))
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## Search vs the hand-made block orders (search s)" in md and "**Answer:** The confirmed front" in md
    assert rows(tmp_path / "out" / "summary.csv")[-1]["answer"] == row["answer"]
    lines.clear()
    run_experiment(load_experiment(path), out=tmp_path / "out", echo=lines.append)
    assert not any("[trial" in line for line in lines) and sum("(reused)" in line for line in lines) == len(expect)


# ---- hostile experiment files (issue 15 item 4): one line, exit 2, bounded memory -------------------


def _study_text(where: str, value: str) -> str:
    """A valid experiment with ``value`` (YAML text) put at the dotted key ``where``."""
    import copy

    body = {
        "description": "x",
        "train": copy.deepcopy(TRAIN),
        "search": {"common": {"trials": 1}, "searches": {"a": {}}},
    }
    node = body
    keys = where.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = "@@BOMB@@"
    return yaml.safe_dump(body, sort_keys=False).replace("'@@BOMB@@'", value)


@pytest.mark.parametrize(
    "where",
    [
        "description",
        "train",
        "train.genomes",
        "train.genomes.x",
        "train.seeds",
        "train.lr",
        "search",
        "search.common",
        "search.searches",
        "search.searches.a",
        "search.searches.a.data_opts",
        "quick",
        "quick.train",
        "name",
    ],
)
def test_alias_bomb_anywhere_in_a_study_fails_fast_with_bounded_memory(capsys, tmp_path, where):
    import tracemalloc

    from test_spaces import bomb

    ok = write_study(tmp_path, "ok", train=TRAIN)  # imports of the command are not counted
    assert run_cli(capsys, "experiment", "list")[0] == 0 and load_experiment(ok)
    path = tmp_path / "bomb.yaml"
    path.write_text(_study_text(where, bomb()))
    tracemalloc.start()
    try:
        code, _, err = run_cli(capsys, "experiment", "run", str(path), "--out", str(tmp_path / "out"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and err.startswith("archlab experiment: error: bomb.yaml: key '") and len(err.splitlines()) == 1
    assert "expands to more than 100,000 values" in err and len(err) < 300
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"  # before: 1.5-3 GiB, then the OOM killer
    assert not (tmp_path / "out").exists()


def test_non_utf8_deep_and_huge_study_files_are_one_line(capsys, tmp_path):
    cases = {
        "latin": (_study_text("description", "caf").encode() + b"\xe9\n", ": not UTF-8 text (byte 0xe9)"),
        "deep": (_study_text("train.lr", "[" * 1000 + "]" * 1000).encode(), "nested more than 32 levels deep"),
        "int": (_study_text("train.epochs", "9" * 5000).encode(), "a value of 5,000 characters"),
        "date": (_study_text("train.lr", "2001-13-45").encode(), "cannot read '2001-13-45': month must be"),
        "big": (b"description: x\n" + b"#" * (2 << 20), "larger than 1024 KiB"),
    }
    for name, (data, needle) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(data)
        code, _, err = run_cli(capsys, "experiment", "run", str(path), "--out", str(tmp_path / "out"))
        assert code == 2 and err.startswith(f"archlab experiment: error: {name}.yaml: ") and needle in err, (name, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_search_measures_its_latencies_again_and_its_tables_read_them(tmp_path):
    """``remeasure_search`` (the driver, after the budget) writes one entry per trained genome;
    ``apply`` (every table read from the experiment) puts the fastest pass in latency_ms and keeps
    the trial's own value; another clip, or an experiment without the file, keeps the trials' own."""
    import json

    from archlab.results.remeasure import AS_SEARCHED, CACHE_FILE, apply, remeasure_search

    df = pd.DataFrame(
        [
            {"genome": g, "status": st, "latency_ms": lat, "val_top1": 0.5}
            for g, st, lat in ((TINY_A, "ok", 9.0), (TINY_2, "stopped", 8.0), (TINY_2, "rejected", math.nan))
        ]
    )
    settings = {"latency_form": "fp32/ncdhw", "latency_runtime": "torch", "cpus_per_trial": 1, "latency_runs": 2}
    assert apply(df, (4, 16, 16), tmp_path) is df  # nothing measured yet: the trials' own
    lines = []
    remeasure_search(df, settings, (4, 16, 16), tmp_path, echo=lines.append, rounds=3)
    assert lines[0].startswith("latencies of 2 genomes measured again, 3 passes")
    cache = json.loads((tmp_path / CACHE_FILE).read_text())
    fastest = {k.split(" @ ")[0]: v["median_ms"] for k, v in cache.items()}
    assert set(fastest) == {TINY_A, TINY_2} and all(len(v["passes_ms"]) == 3 for v in cache.values())
    view = apply(df, (4, 16, 16), tmp_path)
    assert list(view["latency_ms"][:2]) == [fastest[TINY_A], fastest[TINY_2]] and math.isnan(view["latency_ms"][2])
    assert list(view[AS_SEARCHED][:2]) == [9.0, 8.0]
    assert list(apply(df, (8, 32, 32), tmp_path)["latency_ms"][:2]) == [9.0, 8.0]  # not measured at that clip
    lines.clear()
    remeasure_search(df, settings, (4, 16, 16), tmp_path, echo=lines.append)
    assert lines == []  # measured once: a resumed or extended search measures only new genomes


@pytest.mark.parametrize(
    "name, argv, proxy, ref_budget",
    [
        # the default recipe (faint 0.3, 14 epochs) and its 21-epoch reference: `archlab fidelity` as it is
        ("fidelity_faint14", [], (14, 0.3), (21, 2400, 600, 0.3)),
        (
            "fidelity_faint14",
            ["--faint", "0.3", "--epochs", "14", "--ref-epochs-x", "1.5"],
            (14, 0.3),
            (21, 2400, 600, 0.3),
        ),
        # the earlier recipe's measurement (opaque clips, 7 epochs, 21-epoch reference), pinned
        (
            "fidelity_interleave",
            ["--faint", "0", "--epochs", "7", "--ref-epochs-x", "3", "--ref-seeds", "1"],
            (7, 0.0),
            (21, 2400, 600, 0.0),
        ),
    ],
)
def test_each_fidelity_study_is_the_cli_measurement_it_documents(name, argv, proxy, ref_budget):
    """A fidelity experiment file is the `archlab fidelity` command its comment names: the same
    recipes (proxy epochs and faint share; reference epochs, clips, val clips) and the same sample.
    fidelity_faint14 is also the CLI's defaults; fidelity_interleave pins every recipe key it
    was measured with, so a later change of the defaults does not change what it reproduces."""
    from dataclasses import replace

    from archlab.cli import build_parser
    from archlab.cli.fidelity import config_from_args

    experiment = load_experiment(name).fidelity
    cli = config_from_args(build_parser().parse_args(["fidelity", *argv]))
    assert (experiment.proxy.epochs, experiment.proxy.faint) == proxy
    ref = experiment.ref()
    assert (ref.epochs, ref.train_clips, ref.val_clips, ref.faint) == ref_budget
    assert replace(experiment, out="", workers=1) == replace(cli, out="", workers=1)


def test_a_fidelity_section_without_keys_is_archlab_fidelity_at_its_defaults(tmp_path):
    """The experiment loader and the CLI read one set of defaults (archlab.fidelity.defaults): an
    empty section measures exactly what a bare `archlab fidelity` does, --quick included."""
    from dataclasses import replace

    from archlab.cli import build_parser
    from archlab.cli.fidelity import config_from_args

    experiment = load_experiment(str(write_study(tmp_path, fidelity={"space": "interleave"}))).fidelity
    cli = config_from_args(build_parser().parse_args(["fidelity"]))
    assert (experiment.ref_seeds, experiment.ref().epochs) == (2, 21)
    assert replace(experiment, out="", workers=1) == replace(cli, out="", workers=1)
    quick_study = load_experiment(
        str(write_study(tmp_path, name="q", fidelity={"space": "interleave"})), quick=True
    ).fidelity
    quick_cli = config_from_args(build_parser().parse_args(["fidelity", "--quick"]))
    assert (quick_study.genomes, quick_study.anchors, quick_study.seeds, quick_study.ref_seeds) == (1, ("2D",), 2, 1)
    assert (quick_study.proxy.epochs, quick_study.ref().epochs) == (1, 2)
    assert replace(quick_study, out="") == replace(quick_cli, out="")
    # a FidelityConfig built in Python measures the same reference as the command line
    from archlab.fidelity.runner import FidelityConfig

    assert FidelityConfig(out="").ref() == cli.ref()
