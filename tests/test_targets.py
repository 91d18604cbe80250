"""The target (the network a user ships) and its proxy (the reduced copy a search trains):
the one derivation, the space's sections, the search's settings, what a trial records, what
the report says, and what export and `archlab train STUDY --rank` ship."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from archlab.measure.profile import cost
from archlab.model.genome import parse, scale_widths
from archlab.model.reduction import Reduction
from archlab.search import SearchConfig, search, shutdown
from archlab.spaces import load_space
from archlab.util.errors import UserError

TESTS = Path(__file__).parent
# A tiny space of targets: 2 stages at 32/64 channels, seen at 4x32x32; its proxies train at
# a quarter of the widths on 4x16x16 clips.
TARGET_SPACE = """
description: tiny target space (2 stages, 1 block each)
kind: free
depths: [[1], [1]]
widths: [0.5]
letters: [A, "2"]
fields: "stem=2d/s"
target:
  input: 4x32x32
proxy:
  width: 0.25
"""


def test_a_proxy_is_its_target_at_a_fraction_of_the_widths():
    target = parse("AB|C2 sw=32 w=32,64 cls=6")
    proxy = Reduction(width=0.25).proxy_of(target)
    assert str(proxy) == "AB|C2 sw=8 w=8,16 cls=6" and proxy == scale_widths(target, 0.25)
    assert Reduction().proxy_of(target) is target  # width 1: the target trains itself
    for bad in (0, -0.5, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(UserError, match=r"--proxy-width must be a number in \(0, 1\]"):
            Reduction(width=bad)


def test_a_space_declares_its_target_and_proxy(tmp_path):
    (tmp_path / "t.yaml").write_text(TARGET_SPACE)
    space = load_space(str(tmp_path / "t.yaml"))
    assert (space.target_clip, space.clip, space.proxy_width) == ((4, 32, 32), (4, 32, 32), 0.25)
    shipped = load_space("interleave")
    assert (shipped.target_clip, shipped.proxy_width) == ((16, 112, 112), 0.25)
    plain = load_space(str(_write(tmp_path, "plain", TARGET_SPACE.split("target:")[0] + "input: 4x32x32\n")))
    assert (plain.target_clip, plain.clip, plain.proxy_width) == (None, (4, 32, 32), 1.0)


@pytest.mark.parametrize(
    "tail, needle",
    [
        ("proxy:\n  width: 0.5\n", "key 'proxy': a proxy reduces a target: give the 'target' section too"),
        ("target:\n  input: 4x32x32\ninput: 4x32x32\n", "key 'input': with a 'target' section"),
        ("target: {}\n", "key 'target.input' is required"),
        ("target:\n  input: 4x8x8\n", "key 'target.input': input '4x8x8': height and width must be at least 16"),
        ("target:\n  input: 4x32x32\nproxy:\n  width: 2\n", "key 'proxy.width': 2 must be a number in (0, 1]"),
        ("target:\n  input: 4x32x32\n  size: 3\n", "unknown key 'size' in 'target'"),
    ],
)
def test_bad_target_and_proxy_sections_are_one_line(tmp_path, tail, needle):
    path = _write(tmp_path, "bad", TARGET_SPACE.split("target:")[0] + tail)
    with pytest.raises(UserError) as e:
        load_space(str(path))
    assert str(e.value).startswith("bad.yaml: ") and needle in str(e.value) and "\n" not in str(e.value)


def test_a_new_study_stores_its_target_resolved_from_the_space(tmp_path):
    path = _write(tmp_path, "t", TARGET_SPACE)
    space = load_space(str(path))
    cfg = SearchConfig(space=str(path)).with_target(space)
    assert (cfg.target_input, cfg.proxy_width, cfg.cost_clip) == ("4x32x32", 0.25, (4, 32, 32))
    given = SearchConfig(space=str(path), target_input="8x64x64", proxy_width=0.5).with_target(space)
    assert (given.target_input, given.reduction.width, given.cost_clip) == ("8x64x64", 0.5, (8, 64, 64))
    plain = load_space("interleave")
    plain.target_clip, plain.proxy_width = None, 1.0
    assert SearchConfig().with_target(plain).cost_clip == SearchConfig().recipe.clip  # no target: the proxy's clip
    with pytest.raises(UserError, match="--proxy-width 0.5: the space declares no target to reduce"):
        SearchConfig(proxy_width=0.5).with_target(plain)
    with pytest.raises(UserError, match="--target-input: input '16x112' must be FRAMESxHEIGHTxWIDTH"):
        SearchConfig(target_input="16x112")


# ---- a search with a target, end to end ---------------------------------------------------------


@pytest.fixture(scope="module")
def targeted(tmp_path_factory):
    """A 2-trial search of the tiny target space, with the baselines off and no confirm step."""
    tmp = tmp_path_factory.mktemp("targets")
    old = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), old])
    try:
        cfg = SearchConfig.from_settings(
            dict(
                space=str(_write(tmp, "t", TARGET_SPACE)),
                name="s",
                out=str(tmp / "runs"),
                frames=4,
                size=16,
                trials=2,
                epochs=1,
                grace_epochs=1,
                batch=8,
                train_clips=16,
                val_clips=16,
                cpus_per_trial=1,
                wandb="off",
                latency_runs=2,
                latency_passes=1,
                seed=1,
                confirm_seeds=0,
            )
        )
        lines: list[str] = []
        out = search(cfg, echo=lines.append)
    finally:
        shutdown()
        os.environ["PYTHONPATH"] = old
    return out, lines


@pytest.mark.slow
def test_a_trial_records_its_target_and_proxy_and_the_targets_costs(targeted):
    out, lines = targeted
    d = out.study_dir
    settings = yaml.safe_load((d / "study.yaml").read_text())
    assert (settings["target_input"], settings["proxy_width"]) == ("4x32x32", 0.25)
    assert any(
        line.startswith("target: the space's networks at 4x32x32") and "proxy: width x0.25, 4x16x16" in line
        for line in lines
    )
    df = pd.read_csv(d / "results.csv")
    ok = df[df.status == "ok"]
    assert len(ok) == 2
    for _, r in ok.iterrows():
        target, proxy = parse(r["genome"]), parse(r["proxy_genome"])
        assert proxy == Reduction(width=0.25).proxy_of(target) and (r["genome_id"], r["proxy_genome_id"]) == (
            target.id,
            proxy.id,
        )
        assert [s.width for s in target.stages] == [32, 64] and [s.width for s in proxy.stages] == [8, 16]
        c, pc = cost(target, (4, 32, 32)), cost(proxy, (4, 16, 16))
        assert (r["gmacs"], r["params"]) == (pytest.approx(c.gmacs), c.params)
        assert (r["proxy_gmacs"], r["proxy_params"]) == (pytest.approx(pc.gmacs), pc.params)
        assert r["latency_ms"] > 0 and r["proxy_latency_ms"] > 0
        # what trained is the proxy: its checkpoint is for the proxy genome
        import torch

        ckpt = torch.load(d / r["checkpoint"] / "best.pt", weights_only=True, map_location="cpu")
        assert parse(str(ckpt["genome"])) == proxy


@pytest.mark.slow
def test_the_report_and_the_search_say_what_the_costs_are_of(targeted, capsys):
    from archlab.cli import main

    out, _ = targeted
    assert main(["report", str(out.study_dir)]) == 0
    text = (out.study_dir / "report" / "report.md").read_text()
    assert (
        "costs of the target, the network shipped: latency ms at 4x32x32 (cpu, torch fp32/ncdhw, batch 1; "
        "measured end to end)" in text
    )
    assert "accuracy of its proxy (width x0.25, 4x16x16 clips)" in text


@pytest.mark.slow
def test_export_ships_the_target_untrained_or_retrained_and_the_proxy_only_when_asked(targeted, tmp_path, capsys):
    from archlab.cli import main

    out, _ = targeted
    d = out.study_dir
    assert main(["export", str(d), "--rank", "1", "--format", "onnx", "--out", str(tmp_path / "t")]) == 0
    card = json.loads((tmp_path / "t" / "model_card.json").read_text())
    row = _rank_1(d)
    assert (card["role"], card["genome"], card["params"]) == ("target", row["genome"], row["params"])
    assert (card["input"]["frames"], card["input"]["height"], card["weights"]) == (4, 32, {"kind": "none"})
    assert (
        (tmp_path / "t" / "MODEL_CARD.md").read_text().startswith("**UNTRAINED: the study's target network at 4x32x32")
    )
    assert main(["export", str(d), "--rank", "1", "--proxy", "--format", "onnx", "--out", str(tmp_path / "p")]) == 0
    card = json.loads((tmp_path / "p" / "model_card.json").read_text())
    assert (card["role"], card["genome"], card["weights"]["kind"]) == ("proxy", row["proxy_genome"], "trial")
    assert (card["input"]["frames"], card["input"]["height"]) == (4, 16)
    assert (tmp_path / "p" / "MODEL_CARD.md").read_text().startswith("**PROXY: ")
    capsys.readouterr()
    assert main(["export", str(d), "--rank", "1", "--weights", "trial", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "a trial trained the target's proxy, not the target" in err


@pytest.mark.slow
def test_train_retrains_a_studys_front_point_as_its_target(targeted, tmp_path, capsys):
    import torch

    from archlab.cli import main

    out, _ = targeted
    d = out.study_dir
    argv = [
        "train",
        str(d),
        "--rank",
        "1",
        "--out",
        str(tmp_path / "r"),
        "--epochs",
        "1",
        "--train-clips",
        "8",
        "--val-clips",
        "8",
        "--batch",
        "4",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    row = _rank_1(d)
    assert f"trial {row['trial']} (knee point of the" in printed and "its target at 4x32x32" in printed
    ckpt = torch.load(tmp_path / "r" / "best.pt", weights_only=True, map_location="cpu")
    assert parse(str(ckpt["genome"])) == parse(row["genome"])  # the target, at the study's classes
    assert (
        main(
            [
                "export",
                str(d),
                "--rank",
                "1",
                "--weights",
                str(tmp_path / "r" / "best.pt"),
                "--format",
                "onnx",
                "--out",
                str(tmp_path / "w"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "w" / "model_card.json").read_text())["weights"]["kind"] == "path"
    capsys.readouterr()
    assert main(["train", "p3d63", "--rank", "1", "--out", str(tmp_path / "z")]) == 2
    assert "--rank and --trial choose a point of a study" in capsys.readouterr().err


# ---- a study from before targets -----------------------------------------------------------------


def test_a_study_from_before_targets_reports_its_costs_as_the_proxies_and_refuses_a_changed_space(tmp_path):
    from archlab.results.reader import load_results
    from archlab.results.record import TrialRecord
    from archlab.search.studydir import prepare_study
    from archlab.testing.study import write_study

    rec = TrialRecord(
        status="ok",
        genome="A|2 stem=2d/s sw=8 w=8,16 cls=6",
        val_top1=0.5,
        latency_ms=1.0,
        gmacs=0.01,
        params=1000,
        epochs=2,
    )
    d = write_study(tmp_path / "old", [rec], space="interleave", wandb="off")
    settings = yaml.safe_load((d / "study.yaml").read_text())
    for key in ("target_input", "proxy_width"):  # as a study from before targets stored it
        settings.pop(key)
    (d / "study.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    df, info = load_results(d)
    assert info.target_clip is None and info.cost_clip == info.clip and info.proxy_width == 1.0
    assert df.loc[0, "proxy_genome"] == df.loc[0, "genome"]  # it trained the network its costs are of
    assert info.units().startswith(f"costs are the proxies' own at {'x'.join(map(str, info.clip))}")
    cfg = SearchConfig(space="interleave", name=d.name, out=str(d.parent))
    with pytest.raises(UserError, match="was searched before search spaces described target networks"):
        prepare_study(cfg, resume=True)


def _rank_1(d: Path) -> pd.Series:
    """The row export's rule ranks first (what `--rank 1` picks)."""
    from archlab.export.select import select_trial
    from archlab.results.reader import load_results

    df, info = load_results(d)
    label, _ = select_trial(df, info.objectives, info.directions, 1, None, None)
    return df.loc[label]


def _write(d: Path, name: str, text: str) -> Path:
    path = d / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path
