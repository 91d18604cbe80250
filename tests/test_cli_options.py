"""One word per idea across commands: no option abbreviations in any parser, one word for
"this machine's measured fastest safe form" (`calibrated`, the old `auto` read as it with a
deprecation note), and every command checks its options before building or measuring."""

import argparse
import re

import pytest

from archlab.cli import build_parser, main
from archlab.cli.common import Parser, deprecation_notes

# A minimal valid command line per leaf command: its positionals and required options.
# A new command needs an entry here (test_every_command_is_covered says so).
MINIMAL = {
    ("build",): ["p3d63"],
    ("profile",): ["p3d63"],
    ("presets",): [],
    ("blocks",): [],
    ("import-weights",): ["p3d199", "--caffemodel", "f", "--out", "o"],
    ("search",): [],
    ("experiment", "run"): ["p3d_table1"],
    ("experiment", "list"): [],
    ("study", "run"): ["p3d_table1"],  # the old name, kept one release
    ("study", "list"): [],
    ("fidelity",): [],
    ("export",): ["runs/x"],
    ("data", "prepare"): ["ucf101", "--root", "r", "--cache", "c"],
    ("report",): ["runs/x"],
    ("dashboard",): ["runs/x"],
    ("train",): ["p3d63", "--out", "o"],
    ("spaces",): [],
    ("sample",): ["interleave"],
    ("calibrate",): [],
    ("latency-table",): [],
}


def parsers(p: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) for the main parser and every sub-command, at every depth."""
    yield path, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, path + (name,))


def leaves():
    return [
        (path, p)
        for path, p in parsers(build_parser())
        if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)
    ]


def test_no_parser_allows_abbreviations():
    """The main parser and every sub-command's (made by add_subparsers, at every depth)."""
    found = list(parsers(build_parser()))
    assert len(found) == 1 + len(MINIMAL) + 3  # main, the leaves, the `data`, `experiment`, `study` groups
    assert [path for path, p in found if p.allow_abbrev or not isinstance(p, Parser)] == []


def test_every_command_is_covered():
    assert sorted(path for path, _ in leaves()) == sorted(MINIMAL)


@pytest.mark.parametrize("path", sorted(MINIMAL), ids=" ".join)
def test_an_abbreviated_option_is_unrecognized_in_every_command(path, capsys):
    """Each long option minus its last letter, on a command line that is otherwise valid,
    is an unknown option: one line, exit 2 (never taken for the longer option)."""
    p = dict(leaves())[path]
    options = {o for a in p._actions for o in a.option_strings}
    tried = 0
    for option in sorted(o for o in options if o.startswith("--") and len(o) > 4):
        short = option[:-1]
        if short in options:  # --seed of --seeds: itself an option
            continue
        with pytest.raises(SystemExit) as e:
            build_parser().parse_args([*path, *MINIMAL[path], short, "1"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and err == f"archlab: error: unrecognized arguments: {short} 1 (see --help)\n", option
        tried += 1
    assert tried >= 1  # --help at least


def test_profile_latency_is_not_latency_runtime(capsys):
    """`--latency predicted` was taken as `--latency-runtime predicted` (argparse's prefix
    matching): `--latency` is now its own option (measured or predicted latency), and a
    prefix of `--latency-runtime` is an unknown option, one line, nothing printed or measured."""
    args = build_parser().parse_args(["profile", "p3d63", "--latency", "predicted"])
    assert args.latency == "predicted" and args.latency_runtime == "torch"
    with pytest.raises(SystemExit) as e:
        main(["profile", "p3d63", "--latency-run", "onnxruntime"])
    out = capsys.readouterr()
    assert e.value.code == 2 and out.out == ""
    assert out.err == "archlab: error: unrecognized arguments: --latency-run onnxruntime (see --help)\n"
    # the full spelling, and its --option=value form, still parse
    args = build_parser().parse_args(["profile", "p3d63", "--latency-runtime=onnxruntime"])
    assert args.latency_runtime == "onnxruntime"


# ---- one word for this machine's calibrated form ----------------------------------------------------

FORM_OPTIONS = [
    (["profile", "p3d63"], "--form", "form"),
    (["train", "p3d63", "--out", "o"], "--form", "form"),
    (["export", "--genome", "p3d63"], "--form", "form"),
    (["fidelity"], "--form", "form"),
    (["search"], "--train-form", "train_form"),
    (["search"], "--latency-form", "latency_form"),
]


@pytest.mark.parametrize("argv, option, dest", FORM_OPTIONS, ids=lambda v: v if isinstance(v, str) else v[0])
def test_every_form_option_takes_calibrated_and_reads_auto_as_it_with_a_note(argv, option, dest):
    args = build_parser().parse_args([*argv, option, "calibrated"])
    assert getattr(args, dest) == "calibrated" and deprecation_notes(args) == []
    args = build_parser().parse_args([*argv, option, "auto"])
    assert getattr(args, dest) == "calibrated"
    assert deprecation_notes(args) == [
        f"{option} auto is deprecated and will be removed in the next release: write {option} calibrated"
    ]
    args = build_parser().parse_args([*argv, option, "bf16/cl3d"])
    assert getattr(args, dest) == "bf16/cl3d" and deprecation_notes(args) == []
    help_text = next(a.help for a in dict(leaves())[(argv[0],)]._actions if option in a.option_strings)
    assert "calibrated: this machine's measured fastest safe form" in help_text and not re.search(
        r"\bauto\b", help_text
    )


def test_the_cli_words_are_the_library_words():
    """The CLI builds its parser without torch, so it keeps copies: they must not drift."""
    from archlab.cli import common
    from archlab.cli import forms as cli_forms
    from archlab.measure import forms
    from archlab.util import device

    assert cli_forms.CALIBRATED == forms.CALIBRATED == "calibrated"
    assert common.DEVICES == device.CHOICES


def test_a_deprecated_spelling_is_one_note_before_the_command_runs(capsys, monkeypatch):
    """The note comes first, then the command's own output or its one-line error."""
    monkeypatch.setenv("ARCHLAB_CALIBRATION", "off")  # calibrated = the default form, nothing measured
    code = main(["profile", "A|2 w=4,8 sw=4 stem=2d/none t=-,-", "--input", "4x16x16", "--runs", "1", "--form", "auto"])
    out = capsys.readouterr()
    assert code == 0 and "torch fp32/ncdhw" in out.out
    assert out.err.splitlines()[0] == (
        "archlab profile: note: --form auto is deprecated and will be removed "
        "in the next release: write --form calibrated"
    )
