"""Export: trial selection, .pt2/ONNX round trips in a process without archlab, the model
card, verification that catches a wrong export, and one-line user errors.

Everything runs on tiny genomes at 4x32x32 against a study directory laid out by the real
writers (archlab.testing.study: study.yaml from the search's settings writer, optuna.db from
trial records, trials/<id>/best.pt from real built models).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from archlab.cli import main
from archlab.export import EXAMPLE_BATCH, REL_TOL, VERIFY_BATCHES, select_trial, verify
from archlab.measure.profile import count_fast
from archlab.model.builder import build
from archlab.model.genome import parse
from archlab.results import pareto
from archlab.results.reader import find_trial, load_results
from archlab.results.record import TrialRecord
from archlab.testing.study import write_study

TINY = "AB|C2 sw=8 w=8,16 cls=5"
SMALL = "A|2 sw=8 w=8,8 cls=5"
CLIP = (4, 32, 32)
CLASSES = ["walk", "run", "jump", "swim", "climb"]
MEAN, STD = [0.43, 0.39, 0.37], [0.22, 0.22, 0.21]
OBJ, DIRS = ["val_top1", "latency_ms"], ["max", "min"]


def trained_like(genome: str, seed: int) -> nn.Module:
    """A built model whose BN statistics and head look trained (not the init's 0/1 and ~0),
    so a wrong BN or a skipped layer shows in the logits."""
    torch.manual_seed(seed)
    m = build(genome)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm3d):
            mod.running_mean.normal_(0, 0.3)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.normal_(0, 0.2)
    nn.init.normal_(m.fc.weight, 0, 0.2)
    return m.eval()


def save_checkpoint(path: Path, model: nn.Module, genome: str, **override) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "model": model.state_dict(),
        "genome": genome,
        "epoch": 3,
        "metrics": {"val_top1": 0.7, "val_loss": 1.25},
        "classes": CLASSES,
        "input": {"frames": CLIP[0], "size": CLIP[1], "mean": MEAN, "std": STD},
    }
    ckpt.update(override)
    torch.save(ckpt, path)


# Search trials, numbered 0.. in this order: Ray trial id, genome, status, val_top1,
# latency_ms, gmacs, checkpoint dir. Trials 9 and 10 are proposals rejected inside Ray trial
# t1 (the search records them with the Ray trial id they were proposed for), so the Ray id
# t1 names three trials and only the trial number names one.
ROWS = [
    ("t0", "ABC|22 sw=8 w=8,16 cls=5", "ok", 0.80, 9.0, 0.50, "trials/t0"),  # most accurate
    ("t1", TINY, "ok", 0.70, 5.0, 0.40, "trials/t1"),  # the knee
    ("t2", "2|2 sw=8 w=8,8 cls=5", "ok", 0.40, 2.0, 0.10, "trials/t2"),  # fastest
    ("t3", "B|2 sw=8 w=8,8 cls=5", "ok", 0.60, 6.0, 0.05, "trials/t3"),  # dominated by t1, fewest GMACs
    ("t4", "C|2 sw=8 w=8,8 cls=5", "failed", math.nan, math.nan, 0.30, ""),
    ("t5", "3|2 sw=8 w=8,8 cls=5", "ok", 0.30, 9.5, 0.30, "trials/t5"),  # dir without best.pt
    ("t6", "R|2 sw=8 w=8,8 cls=5", "ok", 0.30, 9.5, 0.30, "trials/t6"),  # corrupt best.pt
    ("t7", "AA|2 sw=8 w=8,8 cls=5", "ok", 0.30, 9.5, 0.30, "trials/t7"),  # best.pt of another genome
    ("t8", "AC|2 sw=8 w=8,8 cls=5", "stopped", 0.50, 3.0, 0.20, "trials/t8"),  # stopped at a rung: never competes
    ("t1", "333|3 sw=8 w=8,8 cls=5", "rejected", math.nan, math.nan, 2.0, ""),  # over --max-gmacs
    ("t1", "RRR|3 sw=8 w=8,8 cls=5", "rejected", math.nan, math.nan, 2.5, ""),
]
# Baseline 0 (its own Optuna study, shown as b0): would dominate every search trial.
BASELINES = [("tb", "BB|2 sw=8 w=8,8 cls=5", "ok", 0.95, 1.0, 0.01, "trials/b0")]


def record(
    ray_id: str, genome: str, status: str, acc: float, lat: float, gmacs: float, ckpt: str, label: str = ""
) -> TrialRecord:
    return TrialRecord(
        status=status,
        ray_trial_id=ray_id,
        genome=genome,
        genome_id=parse(genome).id,
        label=label,
        val_top1=acc,
        latency_ms=lat,
        gmacs=gmacs,
        params=1000,
        epochs=3 if ckpt else 0,
        checkpoint=ckpt or None,
    )


def make_study(d: Path) -> Path:
    write_study(
        d, [record(*r) for r in ROWS], [record(*r, label="pure B") for r in BASELINES], frames=CLIP[0], size=CLIP[1]
    )
    save_checkpoint(d / "trials/t1/best.pt", trained_like(TINY, 1), TINY)
    save_checkpoint(d / "trials/t0/best.pt", trained_like(ROWS[0][1], 0), ROWS[0][1])
    (d / "trials/t5").mkdir(parents=True)
    good = io.BytesIO()
    torch.save({"model": trained_like(ROWS[6][1], 6).state_dict()}, good)
    (d / "trials/t6").mkdir(parents=True)
    (d / "trials/t6/best.pt").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])  # truncated
    save_checkpoint(d / "trials/t7/best.pt", trained_like(SMALL, 7), SMALL)  # genome field != row
    return d


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["export", *argv])
        except SystemExit as e:  # argparse's own errors
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return make_study(tmp_path_factory.mktemp("exp") / "study")


@pytest.fixture(scope="module")
def table(study):
    """The study's results table as every command reads it (archlab.results.reader)."""
    return load_results(study)[0]


@pytest.fixture(scope="module")
def exported(study: Path) -> dict:
    """`archlab export STUDY_DIR` (rank 1, both formats, default out dir), run once."""
    code, out, err = run_cli(str(study))
    assert code == 0, err
    folder = study / "export" / parse(TINY).id
    return {"dir": folder, "out": out, "err": err, "card": json.loads((folder / "model_card.json").read_text())}


# ---- selection ----------------------------------------------------------------------------


def test_rank_1_is_the_knee_and_ranks_peel_the_front(table):
    df = table
    assert list(df["trial"]) == [str(n) for n in range(len(ROWS))] + ["b0"]
    search = df[(df["status"] == "ok") & ~df["baseline"]]
    label, rule = select_trial(df, OBJ, DIRS)
    assert label == pareto.knee_point(search, OBJ, DIRS)
    assert df.loc[label, "trial"] == "1" and "knee" in rule
    picks = [df.loc[select_trial(df, OBJ, DIRS, rank=k)[0], "trial_id"] for k in (1, 2, 3)]
    # the front is t0 t1 t2: t8 (0.50 at 3 ms) would be on it, but it was stopped at a rung
    # and its accuracy is an earlier epoch's (issue 13); the baseline b0 does not count
    # either. After the knee t1 the two extremes tie at distance 1: the earlier row first
    assert picks == ["t1", "t0", "t2"]
    with pytest.raises(Exception, match="front has only 3 trial"):
        select_trial(df, OBJ, DIRS, rank=4)


@pytest.mark.parametrize(
    "limits, want",
    [
        ({"max_latency": 9.2}, ["t0", "t1", "t2"]),  # best accuracy first, within the budget
        ({"max_latency": 5.5}, ["t1", "t2"]),
        ({"max_latency": 4.0}, ["t2"]),  # t8 (3 ms) was stopped at a rung: not a candidate
        ({"max_gmacs": 0.06}, ["t3"]),  # off the global front, but the only trial within 0.06 GMACs
        ({"max_latency": 9.2, "max_gmacs": 0.45}, ["t1", "t2"]),
    ],
)
def test_limits_rank_the_front_within_them_by_accuracy(table, limits, want):
    df = table
    got = [df.loc[select_trial(df, OBJ, DIRS, rank=k, **limits)[0], "trial_id"] for k in range(1, len(want) + 1)]
    assert got == want
    with pytest.raises(Exception, match=f"--rank {len(want) + 1}: the front has only {len(want)}"):
        select_trial(df, OBJ, DIRS, rank=len(want) + 1, **limits)


def test_cli_limits_choose_the_trial(study, tmp_path):
    code, out, err = run_cli(str(study), "--max-latency", "9.2", "--format", "pt2", "--out", str(tmp_path / "e"))
    assert code == 0, err
    assert "trial   0  (rank 1: best val_top1" in out and "latency_ms <= 9.2" in out
    card = json.loads((tmp_path / "e/model_card.json").read_text())
    assert card["genome"] == ROWS[0][1] and card["trial"]["trial_id"] == "t0"


# ---- the exported files -------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, os, sys
    sys.path.append(sys.argv[1])  # torch's site-packages only: no .pth, no editable archlab
    try:
        import archlab
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("archlab is importable in the child: " + repr(archlab.__path__))
    import numpy as np, torch
    os.chdir(sys.argv[2])
    card = json.load(open("model_card.json"))
    ns_torch, ns_ort = {}, {}
    exec(card["how_to_load"]["torch"], ns_torch)  # the card's own snippets, as written
    exec(card["how_to_load"]["onnxruntime"], ns_ort)
    ref = torch.load(sys.argv[3], weights_only=True)
    report = {"snippet_shapes": [list(ns_torch["logits"].shape), list(ns_ort["logits"].shape)], "checks": []}
    for x, want in zip(ref["clips"], ref["logits"]):
        with torch.no_grad():
            pt2 = ns_torch["model"](x)
        onnx = torch.from_numpy(ns_ort["session"].run(["logits"], {"clip": x.numpy()})[0])
        scale = float(want.abs().max())
        report["checks"].append({"batch": x.shape[0], "scale": scale,
                                 "pt2": float((pt2 - want).abs().max()), "onnx": float((onnx - want).abs().max())})
    report["archlab_modules"] = sorted(m for m in sys.modules if m.startswith("archlab"))
    print(json.dumps(report))
""")


def test_roundtrip_in_a_process_without_archlab(exported, study, tmp_path):
    # Eager outputs of the trial's model, from its checkpoint, on batches the export never saw.
    model = build(TINY)
    model.load_state_dict(torch.load(study / "trials/t1/best.pt", weights_only=True)["model"])
    model.eval()
    gen = torch.Generator().manual_seed(99)
    clips = [torch.randn(b, 3, *CLIP, generator=gen) for b in (1, 4, 5)]
    with torch.no_grad():
        logits = [model(x) for x in clips]
    torch.save({"clips": clips, "logits": logits}, tmp_path / "ref.pt")
    (tmp_path / "child.py").write_text(CHILD)
    site = Path(torch.__file__).resolve().parent.parent
    r = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(tmp_path / "child.py"),
            str(site),
            str(exported["dir"]),
            str(tmp_path / "ref.pt"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["archlab_modules"] == []
    assert report["snippet_shapes"] == [[2, 5], [2, 5]]
    assert [c["batch"] for c in report["checks"]] == [1, 4, 5]
    for c in report["checks"]:
        assert c["scale"] > 0.1  # trained-like logits, so the tolerance below means something
        assert c["pt2"] <= 1e-5 * c["scale"]
        assert c["onnx"] <= REL_TOL * c["scale"]


def test_card_describes_the_files_and_the_trial(exported, study):
    card, folder = exported["card"], exported["dir"]
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", "model.onnx", "model.pt2", "model_card.json"]
    for name, f in card["files"].items():
        data = (folder / name).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["bytes"] == len(data)
    assert set(card["files"]) == {"model.pt2", "model.onnx"}
    g = parse(card["genome"])
    assert str(g) == card["genome"] == TINY and g.id == card["genome_id"]
    assert card["classes"] == CLASSES
    want_input = {
        "frames": 4,
        "height": 32,
        "width": 32,
        "size": 32,
        "layout": "[B, 3, T, H, W]",
        "dtype": "float32",
        "mean": MEAN,
        "std": STD,
    }
    assert {k: card["input"][k] for k in want_input} == want_input
    cost = count_fast(g, CLIP)
    assert card["params"] == cost.params == sum(p.numel() for p in build(TINY).parameters())
    assert card["macs"] == cost.macs and card["gmacs"] == pytest.approx(cost.gmacs, rel=1e-12)
    row = load_results(study)[0].set_index("trial").loc["1"]
    assert card["trial"]["trial"] == "1" and card["trial"]["trial_id"] == "t1" and card["trial"]["number"] == 1
    assert card["trial"]["val_top1"] == row["val_top1"] and card["trial"]["latency_ms"] == row["latency_ms"]
    assert card["weights"] == {
        "kind": "trial",
        "path": "trials/t1/best.pt",
        "epoch": 3,
        "metrics": {"val_top1": 0.7, "val_loss": 1.25},
    }
    assert "knee" in card["study"]["selection"]
    import onnxruntime

    assert card["versions"]["torch"] == torch.__version__
    assert card["versions"]["onnxruntime"] == onnxruntime.__version__
    assert card["onnx"]["input"] == "clip" and card["onnx"]["opset"] >= 17
    assert [len(s.splitlines()) for s in card["how_to_load"].values()] == [5, 5]
    checks = card["verification"]["checks"]
    assert {(c["format"], c["batch"]) for c in checks} == {(f, b) for f in ("pt2", "onnx") for b in VERIFY_BATCHES}
    assert any(b != EXAMPLE_BATCH for b in VERIFY_BATCHES)
    assert all(c["ok"] and c["max_abs_err"] <= c["tol"] for c in checks)
    md = (folder / "MODEL_CARD.md").read_text()
    assert TINY in md and card["files"]["model.pt2"]["sha256"] in md and "walk" in md
    assert "torch.export.load" in md and "InferenceSession" in md
    # what the CLI said
    assert "trial   1  (rank 1: knee point" in exported["out"] and "wrote" in exported["out"]
    assert "exporting model.pt2" in exported["err"] and "verifying" in exported["err"]
    assert "Warning" not in exported["err"] and "torchvision" not in exported["err"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_genome_export_with_fresh_weights_and_default_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("--genome", SMALL, "--input", "4x32x32", "--format", "pt2")
    assert code == 0, err
    folder = tmp_path / "export" / parse(SMALL).id
    card = json.loads((folder / "model_card.json").read_text())
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", "model.pt2", "model_card.json"]
    assert card["classes"] == [f"class_{i}" for i in range(5)]
    assert card["weights"] == {"kind": "none"} and card["trial"] is None and card["study"] is None
    assert card["input"]["mean"] is None and list(card["how_to_load"]) == ["torch"]
    # --weights none is reproducible: the same weights as build() under seed 0
    torch.manual_seed(0)
    model = build(SMALL).eval()
    x = torch.randn(3, 3, *CLIP)
    with torch.no_grad():
        assert torch.allclose(torch.export.load(folder / "model.pt2").module()(x), model(x), atol=1e-6)
    # exporting again replaces the earlier export
    code, out, err = run_cli("--genome", SMALL, "--input", "4x32x32", "--format", "pt2")
    assert code == 0 and "replaced" in out


def test_genome_export_with_checkpoint_path(study, tmp_path):
    code, out, err = run_cli(
        "--genome", TINY, "--weights", str(study / "trials/t1/best.pt"), "--format", "pt2", "--out", str(tmp_path / "e")
    )
    assert code == 0, err
    card = json.loads((tmp_path / "e/model_card.json").read_text())
    assert card["classes"] == CLASSES and card["weights"]["kind"] == "path" and card["input"]["frames"] == 4


def test_the_shipped_pt2_has_batchnorm_folded_and_matches_eager(study, tmp_path):
    code, _, err = run_cli(
        "--genome", TINY, "--weights", str(study / "trials/t1/best.pt"), "--format", "pt2", "--out", str(tmp_path / "e")
    )
    assert code == 0, err
    program = torch.export.load(str(tmp_path / "e/model.pt2"))
    ops = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    assert any("conv3d" in op or "convolution" in op for op in ops)
    assert not any("batch_norm" in op for op in ops)  # folded into the convs
    card = json.loads((tmp_path / "e/model_card.json").read_text())
    checks = card["verification"]["checks"]
    assert checks and all(c["ok"] and c["format"] == "pt2" for c in checks)
    assert "BatchNorm folded" in card["verification"]["exported_form"]


# ---- verification catches wrong exports ---------------------------------------------------


def perturb_one_bn(model: nn.Module) -> nn.Module:
    """A copy with ONE BatchNorm's running variance 5% off: a subtly wrong layer. In the
    BN-folded network that export ships, the same error lands in the conv the BN was folded
    into (its weight scaled by 1/sqrt(1.05))."""
    bad = copy.deepcopy(model)
    bn = next((m for m in bad.stages[1].modules() if isinstance(m, nn.BatchNorm3d)), None)
    if bn is not None:
        bn.running_var.mul_(1.05)
    else:
        conv = next(m for m in bad.stages[1].modules() if isinstance(m, nn.Conv3d))
        conv.weight.data.mul_(1.05**-0.5)
    return bad


def test_verify_catches_one_changed_bn():
    model = trained_like(TINY, 1)
    same = verify(model, {"same": lambda x: model(x)}, CLIP)
    assert all(c.ok and c.max_abs_err == 0 for c in same)
    bad_model = perturb_one_bn(model)
    bad = verify(model, {"bad": lambda x: bad_model(x)}, CLIP)
    assert not any(c.ok for c in bad)
    assert min(c.max_rel_err for c in bad) > 10 * REL_TOL  # far outside the tolerance


@pytest.mark.parametrize("fmt, target", [("pt2", "torch.export.export"), ("onnx", "torch.onnx.export")])
def test_a_wrong_export_writes_nothing_and_exits_nonzero(study, tmp_path, monkeypatch, fmt, target):
    module_name, attr = target.rsplit(".", 1)
    module = sys.modules[module_name]
    real = getattr(module, attr)

    def wrong_exporter(model, *args, **kwargs):
        return real(perturb_one_bn(model), *args, **kwargs)

    monkeypatch.setattr(module, attr, wrong_exporter)
    out = tmp_path / "new" / "deeper" / "e"
    code, _, err = run_cli(str(study), "--format", fmt, "--out", str(out))
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("archlab export: error: verification failed, nothing written:")
    assert f"{fmt} batch 3: max abs err" in line and "FAILED" in line
    assert not (tmp_path / "new").exists()  # not even the parent folders it created


# ---- user errors: one line, exit 2, nothing written -----------------------------------------


@pytest.fixture()
def other_study(study, tmp_path) -> Path:
    """Bad checkpoints of another genome, for the mismatch errors."""
    save_checkpoint(tmp_path / "small.pt", trained_like(SMALL, 3), SMALL)
    torch.save(trained_like(SMALL, 3).state_dict(), tmp_path / "bare.pt")
    (tmp_path / "nostudy").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk/notes.txt").write_text("mine")
    return tmp_path


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["{study}", "--trial", "t99"], "--trial 't99': no such trial in the study (12 trials: 0, 1, 2"),
        (["{study}", "--trial", "5"], "trials/t5/best.pt does not exist"),
        (["{study}", "--trial", "b0"], "trials/b0/best.pt does not exist"),  # baselines: reachable by --trial
        (["{study}", "--trial", "6"], "trials/t6/best.pt cannot be read"),
        (["{study}", "--trial", "7"], f"was trained for genome '{SMALL}', not 'AA|2 sw=8 w=8,8 cls=5'"),
        (["{study}", "--trial", "4"], "trial 4 (status failed) has no checkpoint"),
        (["{study}", "--trial", "t1"], "--trial 't1' is ambiguous: the Ray trial id is shared by 3 trials (1, 9, 10:"),
        (["{study}", "--weights", "{tmp}/small.pt"], f"was trained for genome '{SMALL}', not '{TINY}'"),
        (["--genome", TINY, "--weights", "{tmp}/bare.pt"], f"do not fit genome '{TINY}': "),
        (["{study}", "--input", "16x112"], "must be FRAMESxHEIGHTxWIDTH"),
        (["{study}", "--input", "4x8x8"], "at least 16 pixels"),
        (["{tmp}/nostudy"], "is not a study directory (no study.yaml)"),
        (["{tmp}/absent"], "does not exist"),
        (["{study}", "--genome", TINY], "exactly one"),
        ([], "exactly one"),
        (["--genome", TINY, "--weights", "trial"], "--weights trial needs a STUDY_DIR"),
        (["--genome", TINY, "--rank", "2"], "do not apply to --genome"),
        (["{study}", "--rank", "4"], "--rank 4: the front has only 3 trial(s)"),
        (["{study}", "--rank", "0"], "ranks start at 1"),
        (
            ["{study}", "--max-latency", "1"],
            "no finished search trial has latency_ms <= 1 (smallest latency_ms 2)",
        ),  # b0 (1.0 ms) is a baseline
        (["{study}", "--out", "{tmp}/junk"], "is not an archlab export"),
        (["{study}", "--rank", "1", "--trial", "t1"], "not allowed with argument"),
        (["{study}", "--format", "tflite"], "invalid choice"),
    ],
)
def test_user_errors_are_one_line_exit_2(study, other_study, argv, needle):
    argv = [a.format(study=study, tmp=other_study) for a in argv]
    before = sorted(study.rglob("*"))
    code, out, err = run_cli(*argv)
    assert code == 2, err
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert sorted(study.rglob("*")) == before  # nothing written
    assert sorted(p.name for p in other_study.iterdir()) == ["bare.pt", "junk", "nostudy", "small.pt"]


# ---- reading the study: the trial number, the study's clip, a damaged storage ---------------


def test_trial_ids_the_number_users_see(table):
    assert table.loc[find_trial(table, "1"), "genome"] == TINY
    assert table.loc[find_trial(table, " 9 "), "status"] == "rejected"
    assert table.loc[find_trial(table, "b0"), "label"] == "pure B"
    assert table.loc[find_trial(table, "t0"), "trial"] == "0"  # a Ray trial id that names one trial
    assert table.loc[find_trial(table, "tb"), "trial"] == "b0"
    from archlab.util.errors import UserError

    with pytest.raises(UserError, match=r"shared by 3 trials \(1, 9, 10"):
        find_trial(table, "t1")
    clash = table.copy()
    clash.loc[clash["trial"] == "2", "trial_id"] = "3"  # a Ray id that reads as another trial's number
    with pytest.raises(UserError, match="ambiguous: trial number 3 and the Ray trial id of trial"):
        find_trial(clash, "3")


def test_weights_none_exports_at_the_clip_the_default_search_stored(tmp_path):
    """Bug 1 of issue 12: study.yaml as the search writes it (no hand-written `input` key):
    `--weights none` builds at the search's default proxy clip, 8x32x32, not 16x160x160."""
    d = write_study(tmp_path / "default", [record("t0", SMALL, "ok", 0.5, 3.0, 0.01, "")])
    assert "input" not in yaml.safe_load((d / "study.yaml").read_text())
    code, out, err = run_cli(str(d), "--weights", "none", "--format", "pt2", "--out", str(tmp_path / "e"))
    assert code == 0, err
    card = json.loads((tmp_path / "e/model_card.json").read_text())
    assert (card["input"]["frames"], card["input"]["height"], card["input"]["width"]) == (8, 32, 32)
    assert card["macs"] == count_fast(parse(SMALL), (8, 32, 32)).macs
    program = torch.export.load(str(tmp_path / "e/model.pt2"))
    assert tuple(program.example_inputs[0][0].shape[2:]) == (8, 32, 32)


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda b: b[: len(b) // 2], "cannot be read as an Optuna storage (database disk image is malformed)"),
        (lambda b: b"", "is empty (0 bytes)"),
        (lambda b: b"not a database at all" * 10, "is not an SQLite database"),
    ],
)
def test_a_damaged_optuna_db_is_one_line(study, tmp_path, damage, needle):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(study, d)
    db = d / "optuna.db"
    db.write_bytes(damage(db.read_bytes()))
    before = db.read_bytes()
    code, out, err = run_cli(str(d), "--weights", "none")
    assert code == 2, err
    assert needle in err and str(db) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert db.read_bytes() == before  # reading never writes into the study
