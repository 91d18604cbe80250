"""bench/gpu_check.sh, the first GPU run: on a machine without a GPU it is one line and exit 0;
and every archlab command line in it parses with the real CLI, so that a renamed option breaks
this test here, not the first GPU run (docs/guide/gpu.md)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"
TEXT = SCRIPT.read_text()
SKIP_LINE = "gpu_check: no CUDA GPU here (torch.cuda.is_available() is False): skipped"
ARCHLAB = '"${ARCHLAB[@]}"'


def run_script(env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(SCRIPT)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    return proc, time.monotonic() - t0


def test_the_script_is_valid_bash():
    proc = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "set -euo pipefail" in TEXT


def test_without_a_gpu_it_prints_one_line_and_exits_0(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: the script would run its steps")
    # from another folder, with this test's own virtualenv: the script finds the repository itself
    env = {**os.environ, "VENV": sys.prefix, "GPU_CHECK_OUT": str(tmp_path / "out")}
    proc, seconds = run_script(env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == SKIP_LINE + "\n"
    assert proc.stderr == ""
    assert seconds < 60
    assert not list(tmp_path.iterdir())  # nothing written, not even the log folder


def _fake_venv(tmp_path: Path, answer: str) -> Path:
    """A virtualenv whose python answers the script's probe with ``answer`` (and fails anything else)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    py = venv / "bin" / "python"
    py.write_text(f'#!/bin/sh\ncase "$2" in *is_available*) echo "{answer}"; exit 0;; esac\nexit 3\n')
    py.chmod(0o755)
    return venv


def _path_without_nvidia_smi(tmp_path: Path) -> str:
    """A PATH of the tools the script uses before it looks for nvidia-smi, and no nvidia-smi."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "bash", "dirname", "mktemp", "timeout", "grep", "tail", "rm", "cat"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_a_gpu_that_torch_sees_without_nvidia_smi_is_one_line_and_exit_0(tmp_path):
    venv = _fake_venv(tmp_path, "True 2.13.0+cu128 12.8 91000 1 3.11.9")
    env = {**os.environ, "VENV": str(venv), "PATH": _path_without_nvidia_smi(tmp_path)}
    proc, _ = run_script(env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "gpu_check: no CUDA GPU here (nvidia-smi not found): skipped\n"


def test_a_missing_or_broken_venv_is_one_line_and_exit_2(tmp_path):
    proc, _ = run_script({**os.environ, "VENV": str(tmp_path / "nowhere")}, tmp_path)
    assert proc.returncode == 2
    assert (
        proc.stdout
        == f"gpu_check: no Python at {tmp_path / 'nowhere'}/bin/python (set VENV to the virtualenv): failed\n"
    )
    venv = tmp_path / "broken"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named torch' >&2\nexit 1\n")
    (venv / "bin" / "python").chmod(0o755)
    proc, _ = run_script({**os.environ, "VENV": str(venv)}, tmp_path)
    assert proc.returncode == 2
    assert proc.stdout.count("\n") == 1 and "No module named torch" in proc.stdout and "failed" in proc.stdout


# ---- the command lines, parsed by the real CLI ----------------------------------------------------


def _assignments() -> dict[str, str]:
    """The script's plain NAME=value settings (TARGET=p3d63, B_PROXY=110, ...)."""
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=([^\s#$({\"']+)", TEXT, re.M))


def _logical_lines() -> list[str]:
    return TEXT.replace("\\\n", " ").splitlines()


def _archlab_lines() -> list[str]:
    """Every archlab command line of the script: the words after "${ARCHLAB[@]}", up to the end
    of the command (`;`, `&&`, `||`, `|`, `>`)."""
    lines = []
    for line in _logical_lines():
        if line.lstrip().startswith("#") or ARCHLAB not in line:
            continue
        if "ARCHLAB=(" in line:
            continue
        rest = line.split(ARCHLAB, 1)[1]
        lines.append(re.split(r";|&&|\|\||\||>", rest, maxsplit=1)[0].strip())
    return lines


def _expansions(command: str) -> list[str]:
    """``command`` with its shell variables replaced by the values the script gives them; a
    variable set per call (``$gpus`` in proxies) gives one command per value the script uses."""
    values = {**_assignments(), "STUDIES": "/tmp/gpu_check.x/studies", "WORK": "/tmp/gpu_check.x"}
    per_call = {"gpus": re.findall(r"^proxies (\S+)\s*$", TEXT, re.M)}
    assert per_call["gpus"], "no `proxies VALUE` calls found"
    names = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", command))
    unknown = names - set(values) - set(per_call)
    assert not unknown, f"give the test a plausible value for ${', $'.join(sorted(unknown))}: {command}"
    variants = [values]
    for name in names & set(per_call):
        variants = [{**v, name: x} for v in variants for x in per_call[name]]
    out = []
    for v in variants:
        out.append(re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: v[m.group(1)], command))
    return out


def test_the_script_has_the_archlab_commands_it_promises():
    subcommands = [shlex.split(c)[0] for c in _archlab_lines()]
    assert subcommands.count("profile") == 3  # fp32 latency, bf16 latency, clips/s
    assert subcommands.count("search") == 2  # the proxy searches (one per --gpus-per-trial) and the 2-trial one
    assert subcommands.count("report") == 1
    assert sorted(re.findall(r"^proxies (\S+)\s*$", TEXT, re.M)) == ["0.25", "1"]


def test_every_archlab_command_line_parses_with_the_cli():
    from archlab.cli import build_parser
    from archlab.measure.forms import Form
    from archlab.measure.profile import parse_clip
    from archlab.model import presets

    commands = [argv for line in _archlab_lines() for argv in _expansions(line)]
    assert len(commands) == 7
    for command in commands:
        argv = shlex.split(command)
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # the parser's one line went to stderr
            pytest.fail(f"archlab {command!r} does not parse (exit {e.code})")
        assert args.command == argv[0]
        # the values the parser takes as plain strings, checked as the commands check them
        for option in ("form", "train_form", "latency_form"):
            if getattr(args, option, None) not in (None, "calibrated"):
                Form.parse(getattr(args, option))
        if args.command == "profile":
            presets.resolve(args.genome)
            parse_clip(args.input)
            assert args.device == "cuda"
        if args.command == "search":
            assert args.gpus_per_trial > 0 and args.wandb == "off"  # GPU trials; nothing goes online
    forms = {shlex.split(c)[shlex.split(c).index("--form") + 1] for c in commands if " --form " in c}
    assert forms == {"fp32/ncdhw", "bf16/cl3d"}
    gpus = sorted(
        float(shlex.split(c)[shlex.split(c).index("--gpus-per-trial") + 1]) for c in commands if "search" in c
    )
    assert gpus == [0.25, 0.5, 1.0]


def test_the_gpu_tests_it_runs_exist():
    block = re.search(r"^GPU_TESTS=\((.*?)^\)", TEXT, re.M | re.S)
    assert block
    ids = [line.strip() for line in block.group(1).splitlines() if "::" in line and not line.strip().startswith("#")]
    assert len(ids) >= 4
    for node in ids:
        path, name = node.split("::")
        assert (ROOT / path).is_file(), node
        assert re.search(rf"^def {re.escape(name)}\(", (ROOT / path).read_text(), re.M), f"{node} is gone"


def test_the_budgets_keep_it_under_ten_minutes():
    """Every step runs under `timeout BUDGET` (+ KILL_AFTER): the worst case is their sum."""
    v = {k: int(x) for k, x in _assignments().items() if k.startswith("B_") or k == "KILL_AFTER"}
    runs = {"B_PROBE": 1, "B_SMI": 1, "B_TESTS": 1, "B_LATENCY": 3, "B_PROXY": 2, "B_SEARCH": 1, "B_REPORT": 1}
    assert set(runs) | {"KILL_AFTER"} == set(v)
    # the step lines: the tests, 3 profiles, the proxy search (called at 0.25 and 1), the search, the report
    assert len(re.findall(r"^\s*(?:if )?step ", TEXT, re.M)) == 7
    worst = sum(v[k] * n for k, n in runs.items()) + v["KILL_AFTER"] * sum(runs.values())
    assert worst < 600, worst
    # every command that can take a while runs under timeout or as a step
    assert TEXT.count("timeout ") >= 3
