"""`archlab train`, `archlab spaces`, `archlab sample`: exit codes, files, one-line errors."""

import csv
import subprocess
import sys

import pytest
import torch

from archlab.cli import main

TINY = "A|2 w=4,8 sw=4 stem=2d/none t=-,-"


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_writes_checkpoints_and_metrics_then_resumes(capsys, tmp_path):
    out = tmp_path / "run"
    argv = [
        "train",
        TINY,
        "--frames",
        "4",
        "--size",
        "16",
        "--train-clips",
        "24",
        "--val-clips",
        "6",
        "--batch",
        "8",
        "--epochs",
        "2",
        "--width",
        "2",
        "--out",
        str(out),
    ]
    code, stdout, stderr = run(capsys, *argv)
    assert code == 0, stderr
    # classes come from the dataset; --width scaled every stage and the stem
    assert "genome  A|2 stem=2d/none sw=8 w=8,16 t=-,- cls=6" in stdout
    assert "best val top1" in stdout and "epoch 2/2" in stderr
    assert {p.name for p in out.iterdir()} == {"checkpoint.pt", "best.pt", "metrics.csv"}
    assert len(list(csv.DictReader(open(out / "metrics.csv")))) == 2
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["genome"] == "A|2 stem=2d/none sw=8 w=8,16 t=-,- cls=6" and len(best["classes"]) == 6
    # the same command with more epochs continues from the checkpoint
    argv[argv.index("--epochs") + 1] = "3"
    code, _, stderr = run(capsys, *argv)
    assert code == 0 and "epoch 3/3" in stderr and "epoch 1/3" not in stderr
    assert len(list(csv.DictReader(open(out / "metrics.csv")))) == 3


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "AQ|2", "--out", "x"], "'Q' is not a block letter"),
        (["train", "p3d64", "--out", "x"], "unknown preset 'p3d64'"),
        (["train", TINY, "--data", "ucf101", "--out", "x"], "needs a data root"),
        (["train", TINY, "--width", "0", "--out", "x"], "width multiplier 0.0 must be positive"),
        (
            ["train", TINY, "--train-clips", "24", "--frames", "4", "--size", "16", "--epochs", "0", "--out", "x"],
            "--epochs must be at least 1 (got 0)",
        ),
        (["train", TINY, "--batch", "0", "--out", "x"], "--batch must be at least 1 (got 0)"),
        (["train", TINY, "--lr", "nan", "--out", "x"], "--lr must be a finite number (got nan)"),
        (["sample", "nope"], "unknown search space 'nope'"),
        (["sample", "interleave", "-n", "0"], "positive number"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and err.count("\n") == 1 and err.startswith(f"archlab {argv[0]}: error: ")
    assert not (tmp_path / "x").exists()


def test_spaces_lists_names_sizes_and_constraints(capsys):
    code, out, _ = run(capsys, "spaces")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(rows) == {"free", "interleave", "literature", "per_stage", "uniform"}
    assert "10,368" in rows["interleave"] and "<= 6.7 GMACs at 16x112x112" in rows["interleave"]
    assert "16x112x112, proxy x0.25" in rows["interleave"]  # its genomes are targets, trained as proxies
    assert "35,446,128,768" in rows["free"]


def test_sample_is_seeded_and_prints_costs(capsys):
    code, a, _ = run(capsys, "sample", "interleave", "-n", "3", "--seed", "5")
    _, b, _ = run(capsys, "sample", "interleave", "-n", "3", "--seed", "5")
    _, c, _ = run(capsys, "sample", "interleave", "-n", "3", "--seed", "6")
    assert code == 0 and a == b and a != c
    lines = a.splitlines()
    assert "GMACs@16x112x112" in lines[0] and len(lines) == 6
    for line in lines[2:5]:  # targets, within the space's budget at the target clip
        n, params, gmacs, genome = line.split(None, 3)
        assert int(params.replace(",", "")) > 0 and 0 < float(gmacs) <= 6.7 and "|" in genome
    assert lines[5].startswith("genomes are targets (the networks shipped, costs at 16x112x112)")
    code, out, _ = run(capsys, "sample", "uniform", "-n", "1", "--input", "16x112x112", "--show-params")
    assert code == 0 and "GMACs@16x112x112" in out and '"letter": ' in out


def test_train_as_a_subprocess(tmp_path):
    """The console entry point: exit code and the files, as a user runs it."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "archlab",
            "train",
            TINY,
            "--frames",
            "4",
            "--size",
            "16",
            "--train-clips",
            "16",
            "--val-clips",
            "4",
            "--batch",
            "8",
            "--epochs",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "best.pt").is_file() and (out / "checkpoint.pt").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "archlab", "train", "A|Q", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "'Q' is not a block letter" in bad.stderr
