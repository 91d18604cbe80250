"""Every search/train/study/export setting is checked BEFORE any side effect, in one place,
with one line naming the option and exit 2 (issue 12, bugs 2 and 3; issue 15 item 3's bad
data root). On main: `--batch 0` ran every trial to a failure and exited 0, `--concurrency 0`
meant "auto", `--trials 0` named two options, `--cpus-per-trial 0` stored study.yaml then
died with a ZeroDivisionError (and every rerun of the study too), `profile --runs 0` printed
the table then a StatisticsError traceback, a file as `--out` gave a traceback after 10 s."""

import os
from pathlib import Path

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


@pytest.mark.parametrize("extra, message", [
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
])
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
        one_line_exit_2(capsys, ["search", "--space", "interleave", "--name", "x", "--cpus-per-trial", "4096"],
                        "--cpus-per-trial 4096: the Ray cluster has " f"{os.cpu_count()} CPUs")
    finally:
        shutdown()
    assert not (cwd / "runs" / "x" / "study.yaml").exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "A|2", "--out", "a_file"], "--out a_file: exists and is not a folder"),
    (["train", "A|2", "--out", "a_file/sub"], None),
    (["train", "A|2", "--out", "x", "--batch", "0"], "--batch must be at least 1 (got 0)"),
    (["train", "A|2", "--out", "x", "--max-steps", "0"], "--max-steps must be at least 1 (got 0)"),
    (["export", "--genome", "A|2", "--out", "a_file"], "--out a_file: exists and is not a folder"),
    (["study", "run", "p3d_table1", "--out", "a_file"], "--out a_file: exists and is not a folder"),
])
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
    write_study(d, [TrialRecord(status="ok", genome="A|2 sw=4 w=4,8", val_top1=0.5, latency_ms=2.0, gmacs=0.01)],
                space="interleave", wandb="off", trials=2)
    db = d / "optuna.db"
    db.write_bytes(db.read_bytes()[:3000])
    code = main(["search", "--out", str(tmp_path / "runs"), "--name", "x", "--resume", "--wandb", "off"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("archlab search: error: ") and "optuna.db" in err
