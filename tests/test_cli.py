"""CLI: tables for build/presets/profile, and one-line errors with exit code 2."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from archlab.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_build_prints_stage_table(capsys):
    code, out, _ = run(capsys, "build", "p3d63", "--classes", "101")
    assert code == 0
    assert "ABC|ABCA|BCABCA|222 pool=caffe cw=0.5 cls=101" in out
    assert "25,132,581" in out
    assert "2048x1x5x5" in out
    assert "GMACs" in out and "not counted" in out


def test_presets_lists_all_with_params(capsys):
    code, out, _ = run(capsys, "presets")
    assert code == 0
    for name, params in [("p3d199", "66,492,240"), ("r2plus1d_18", "31,505,325"), ("mc3_18", "11,695,440")]:
        line = next(row for row in out.splitlines() if row.startswith(name + " "))
        assert params in line


def test_profile_adds_latency(capsys):
    code, out, _ = run(capsys, "profile", "AB|C2 w=8,16 sw=8 cls=5", "--input", "4x32x32", "--runs", "2")
    assert code == 0 and "clips/s" in out and "peak memory" in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["build", "ABQ|C"], "'Q' is not a block letter"),
        (["build", "p3d64"], "unknown preset 'p3d64'"),
        (["build", "p3d63", "--input", "16x160"], "FRAMESxHEIGHTxWIDTH"),
        (["build", "p3d63", "--classes", "x"], "invalid int value"),
        (["profile", "p3d63", "--device", "tpu"], "device 'tpu'"),
        (["nosuchcommand"], "invalid choice"),
    ],
)
def test_user_errors_are_one_line_exit_2(capsys, argv, needle):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_console_script_and_module_entry():
    r = subprocess.run(
        [sys.executable, "-m", "archlab", "build", "AB|C2 w=8,16 sw=8", "--input", "4x32x32"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "AB|C2 sw=8 w=8,16" in r.stdout  # canonical order
    r = subprocess.run([sys.executable, "-m", "archlab", "build", "A|"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "stage 2 is empty" in r.stderr and "Traceback" not in r.stderr


def test_the_command_registry_builds_every_command_without_importing_torch():
    """Each module of archlab/cli registers its commands through add_parser; building the
    parser (what `archlab --help` does) imports no torch, ray or optuna."""
    code = (
        "import sys; from archlab.cli import COMMANDS, build_parser; p = build_parser(); "
        "sub = next(a for a in p._actions if a.dest == 'command'); "
        "print(sorted(sub.choices)); print(all(hasattr(m, 'add_parser') for m in COMMANDS)); "
        "print([m for m in ('torch', 'ray', 'optuna') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [
        "['blocks', 'build', 'calibrate', 'dashboard', 'data', 'experiment', 'export', 'fidelity', "
        "'import-weights', 'latency-table', 'presets', 'profile', 'report', 'sample', 'search', 'spaces', "
        "'study', 'train']",
        "True",
        "[]",
    ]


# ---- the README names what exists ------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_points_only_to_files_in_the_repository():
    """A fresh clone has only the repository: every file the README names (a backticked path
    with a directory, a relative link) exists in it, and nothing points outside (the README
    once sent readers to shared/ANCHORS.md and archlab/studies.py, neither in the repo)."""
    named = set(re.findall(r"`([\w./-]+/[\w.-]+\.(?:md|py|yaml|toml|txt))`", README))
    links = {t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", README) if "://" not in t and t[0] != "#"}
    assert named and "docs/anchors.md" in links
    missing = sorted(p for p in named | links if not (REPO / p).exists())
    assert missing == []
    assert "shared/" not in README


def test_readme_commands_table_has_every_command():
    """Every command but an old name kept for one release."""
    from archlab.cli import build_parser
    from archlab.cli.experiment import OLD_NAME

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    table = README.split("## Commands")[1].split("\n\n")[1]
    rows = {m for line in table.splitlines() for m in re.findall(r"`archlab ([\w-]+)", line.split("|")[1])}
    assert sorted(set(sub.choices) - rows - {OLD_NAME}) == []
