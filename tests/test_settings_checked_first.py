"""Every search/train/study/export setting is checked BEFORE any side effect, in one place,
with one line naming the option and exit 2 (issue 12, bugs 2 and 3; issue 15 item 3's bad
data root). On main: `--batch 0` ran every trial to a failure and exited 0, `--concurrency 0`
meant "auto", `--trials 0` named two options, `--cpus-per-trial 0` stored study.yaml then
died with a ZeroDivisionError (and every rerun of the study too), `profile --runs 0` printed
the table then a StatisticsError traceback, a file as `--out` gave a traceback after 10 s."""

import importlib.util
import os

import pytest

from archlab.cli import main
from archlab.search import shutdown


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("not a folder")
    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    yield tmp_path
    ro.chmod(0o755)


def one_line_exit_2(capsys, argv, message):
    code = main(argv)
    out = capsys.readouterr()
    assert code == 2, out.err
    assert out.err == f"archlab {argv[0]}: error: {message}\n"
    return out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--batch", "0"], "--batch must be at least 1 (got 0)"),
        (["--concurrency", "0"], "--concurrency must be at least 1 (got 0)"),
        (["--trials", "0"], "--trials must be at least 1 (got 0)"),
        (["--epochs", "0"], "--epochs must be at least 1 (got 0)"),
        (["--cpus-per-trial", "0"], "--cpus-per-trial must be positive (got 0)"),
        (["--gpus-per-trial", "-1"], "--gpus-per-trial must not be negative (got -1)"),
        (["--grace-epochs", "0"], "--grace-epochs must be at least 1 (got 0)"),
        (["--seeds", "0"], "--seeds must be at least 1 (got 0)"),
        (["--seeds", "101"], "--seeds must be at most 100 (got 101)"),
        (["--confirm-seeds", "-1"], "--confirm-seeds must be at least 0 (got -1)"),
        (["--lr", "inf"], "--lr must be a finite number (got inf)"),
        (["--max-gmacs", "0"], "--max-gmacs must be positive (got 0)"),
        (["--frames", "100000000"], "--frames must be at most 256 (got 100,000,000)"),
        (["--data", "ucf101", "--data-root", "/nonexistent"], "--data-root /nonexistent: no such folder"),
        (["--data", "ucf101"], "--data ucf101 needs --data-root PATH"),
        (["--out", "a_file"], "--out a_file: exists and is not a folder"),
        (["--out", "readonly/runs"], None),
    ],
)
def test_a_bad_search_setting_is_one_line_and_nothing_is_stored(capsys, cwd, extra, message):
    if message is None:
        if os.geteuid() == 0:
            pytest.skip("root can write into a read-only folder")
        message = f"--out readonly/runs: {cwd / 'readonly'} is not writable"
    out = one_line_exit_2(capsys, ["search", "--space", "interleave", "--name", "x", *extra], message)
    assert out.out == ""
    assert not (cwd / "runs").exists()  # no study directory, no study.yaml


def test_a_setting_the_cluster_refuses_is_never_stored(capsys, cwd):
    """Bug 3: checked against the started Ray cluster, before study.yaml exists; so the
    corrected rerun of the same --name is a fresh study, not a stored bad setting."""
    try:
        one_line_exit_2(
            capsys,
            ["search", "--space", "interleave", "--name", "x", "--cpus-per-trial", "4096"],
            f"--cpus-per-trial 4096: the Ray cluster has {os.cpu_count()} CPUs",
        )
    finally:
        shutdown()
    assert not (cwd / "runs" / "x" / "study.yaml").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "A|2", "--out", "a_file"], "--out a_file: exists and is not a folder"),
        (["train", "A|2", "--out", "a_file/sub"], None),
        (["train", "A|2", "--out", "x", "--batch", "0"], "--batch must be at least 1 (got 0)"),
        (["train", "A|2", "--out", "x", "--max-steps", "0"], "--max-steps must be at least 1 (got 0)"),
        (["export", "--genome", "A|2", "--out", "a_file"], "--out a_file: exists and is not a folder"),
        (["experiment", "run", "p3d_table1", "--out", "a_file"], "--out a_file: exists and is not a folder"),
    ],
)
def test_train_export_and_study_check_out_first(capsys, cwd, argv, message):
    message = message or f"--out a_file/sub: {cwd / 'a_file'} is a file, not a folder"
    out = one_line_exit_2(capsys, argv, message)
    assert out.out == "" and not (cwd / "x").exists()


def test_profile_runs_0_is_refused_before_the_table(capsys):
    with pytest.raises(SystemExit) as e:
        main(["profile", "p3d63", "--runs", "0"])
    out = capsys.readouterr()
    assert e.value.code == 2 and out.out == ""
    assert out.err.count("\n") == 1 and "--runs: must be at least 1 (got 0)" in out.err


def test_resume_of_a_study_with_a_corrupt_database_is_one_line(capsys, tmp_path):
    """Issue 15 item 4 (measured by R2): a 40-line sqlalchemy traceback and exit 1 on main."""
    from archlab.results.record import TrialRecord
    from archlab.testing.study import write_study

    d = tmp_path / "runs" / "x"
    write_study(
        d,
        [TrialRecord(status="ok", genome="A|2 sw=4 w=4,8", val_top1=0.5, latency_ms=2.0, gmacs=0.01)],
        space="interleave",
        wandb="off",
        trials=2,
    )
    db = d / "optuna.db"
    db.write_bytes(db.read_bytes()[:3000])
    code = main(["search", "--out", str(tmp_path / "runs"), "--name", "x", "--resume", "--wandb", "off"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("archlab search: error: ") and "optuna.db" in err


# ---- every option before a network is built or anything measured (one word per idea) ----------------

BAD_LETTER = "stage 1, position {}: 'Q' is not a block letter (A B C 2 3 R F D I X Y T)"


@pytest.fixture
def no_calibration(monkeypatch):
    """Looking up (or measuring) this machine's calibrated form fails the test."""
    from archlab.training import calibrate

    for name in ("run", "training_form", "inference_form"):
        monkeypatch.setattr(calibrate, name, lambda *a, _n=name, **k: pytest.fail(f"calibrate.{_n} before the checks"))


@pytest.mark.parametrize(
    "argv, message",
    [
        # printed the whole table and "measuring latency..." before failing
        (
            ["profile", "p3d63", "--input", "16x160x160", "--form", "calibrate"],
            "--form 'calibrate': form 'calibrate' must be PRECISION/LAYOUT[/tTHREADS], e.g. bf16/cl3d/t1 (or calibrated)",
        ),
        (
            ["profile", "p3d63", "--form", "fp16/cl3d"],
            "--form 'fp16/cl3d': precision 'fp16' must be one of fp32, bf16-autocast, bf16 (or calibrated)",
        ),
        (
            ["profile", "p3d63", "--latency-runtime", "onnxruntime", "--form", "calibrated"],
            "--form applies to --latency-runtime torch; other runtimes run the fp32 ONNX graph",
        ),
        (
            ["profile", "p3d63", "--form", "calibrated", "--input", "16x160"],
            "input '16x160' must be FRAMESxHEIGHTxWIDTH, e.g. 16x160x160",
        ),
        (["profile", "ABQ|C", "--form", "calibrated"], BAD_LETTER.format(3)),
        pytest.param(
            ["profile", "p3d63", "--latency-runtime", "openvino"],
            "--latency-runtime openvino needs the openvino package: pip install 'archlab[openvino]'",
            marks=pytest.mark.skipif(importlib.util.find_spec("openvino") is not None, reason="openvino is installed"),
        ),
        (
            ["profile", "p3d63", "--device", "tpu", "--form", "calibrated"],
            "--device 'tpu': use auto, cpu, cuda or cuda:N",
        ),
        (["train", "AQ|2", "--out", "x", "--form", "calibrated"], BAD_LETTER.format(2)),
        (
            ["train", "A|2", "--out", "x", "--form", "calibrated", "--data", "ucf101"],
            "the ucf101 dataset needs a data root (--data-root PATH)",
        ),
        (
            ["train", "A|2", "--out", "x", "--form", "calibrated", "--data", "folder", "--data-root", "nowhere"],
            "--data-root nowhere: no such folder",
        ),
        (
            ["train", "A|2", "--out", "x", "--form", "calibrated", "--data-root", "a_file"],
            "--data-root: the synthetic dataset is generated in memory and takes no root",
        ),
        (
            ["train", "A|2", "--out", "x", "--form", "bf16/cl3d", "--channels-last", "off"],
            "--form and --channels-last both set the layout: give one",
        ),
        (
            ["export", "--genome", "p3d63", "--form", "fp16/cl3d", "--out", "x"],
            "--form 'fp16/cl3d': precision 'fp16' must be one of fp32, bf16-autocast, bf16 (or calibrated)",
        ),
        (["export", "--genome", "AQ|2", "--form", "calibrated", "--out", "x"], BAD_LETTER.format(2)),
        (
            ["fidelity", "--quick", "--form", "fp16/cl3d", "--out", "x"],
            "--form 'fp16/cl3d': precision 'fp16' must be one of fp32, bf16-autocast, bf16 (or calibrated)",
        ),
        (
            ["fidelity", "--quick", "--form", "calibrated", "--out", "x", "--against", "nowhere"],
            "--against 'nowhere': no summary.json there (a finished archlab fidelity output)",
        ),
        (
            ["calibrate", "--train-threads", "1,x"],
            "--train-threads '1,x' must be comma-separated positive integers, e.g. 1,2",
        ),
        (
            ["calibrate", "--refresh", "--infer-input", "16x8x8"],
            "input '16x8x8': height and width must be at least 16 pixels",
        ),
    ],
)
def test_every_option_is_checked_before_anything_is_built_or_measured(capsys, cwd, no_calibration, argv, message):
    """One line, exit 2, nothing on stdout (no table, no genome line), no calibration looked
    up or measured, nothing written."""
    out = one_line_exit_2(capsys, argv, message)
    assert out.out == "" and not (cwd / "x").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["calibrate", "--runs", "0"], "argument --runs: must be at least 1 (got 0)"),
        (["calibrate", "--numerics-steps", "3"], "argument --numerics-steps: must be at least 4 (got 3)"),
    ],
)
def test_calibrate_counts_are_checked_by_the_parser(capsys, argv, message):
    """`--runs 0` meant the default and `--runs -1` measured for minutes before failing."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    assert e.value.code == 2 and out.out == ""
    assert out.err == f"archlab calibrate: error: {message} (see --help)\n"
