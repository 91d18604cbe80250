"""archlab.bench: correctness of what the benchmarks measure (no timing assertions)."""

import json

import pytest
import torch

from archlab import bench
from archlab.cli import main
from archlab.model.blocks import r21_midplanes

TINY = (2, 32, 32)


def test_block_costs_every_letter_and_stage_with_analytic_macs():
    rows = bench.block_costs(TINY, width=0.0625, runs=1, warmup=0)
    assert {(r["stage"], r["letter"]) for r in rows} == {(s, letter) for s in range(1, 5) for letter in "ABC23RFDIXYT"}
    assert bench.bottleneck_letters() == list("ABC23RFDIXYT")  # from genome.LETTERS, in its order
    shapes = bench.stage_shapes(TINY, 0.0625)
    for r in rows:
        s = shapes[r["stage"] - 1]
        thw, p = s["T"] * s["H"] * s["W"], s["planes"]
        assert r["channels"] == 4 * p
        assert r["macs"] == bench.block_macs_analytic(r["letter"], p, thw)
        assert r["median_ms"] > 0 and r["ms_per_gmac"] > 0 and r["params"] > 0
    by = {(r["stage"], r["letter"]): r for r in rows}
    for s, shape in enumerate(shapes, 1):
        p, out_elems = shape["planes"], shape["planes"] * shape["T"] * shape["H"] * shape["W"]
        # A/B/C = 2D + one 3x1x1 temporal conv p -> p: out_elems * p * 3 MACs, 3*p*p params
        for letter in "ABC":
            assert by[s, letter]["macs"] - by[s, "2"]["macs"] == out_elems * p * 3
            assert by[s, letter]["params"] - by[s, "2"]["params"] == 3 * p * p + 2 * p  # conv + its BN
        assert by[s, "3"]["macs"] - by[s, "2"]["macs"] == out_elems * p * 18
        # TSM's shift adds no parameter and no MAC to the 2D block
        assert (by[s, "T"]["macs"], by[s, "T"]["params"]) == (by[s, "2"]["macs"], by[s, "2"]["params"])
        # each ratio is this block's measured ms per GMAC over the 2D block's of the SAME stage
        two = by[s, "2"]["median_ms"] / (by[s, "2"]["macs"] / 1e9)
        for letter in "ABC3R":
            r = by[s, letter]
            assert r["ms_per_gmac"] == pytest.approx(r["median_ms"] / (r["macs"] / 1e9))
            assert r["ms_per_gmac_vs_2d"] == pytest.approx(r["ms_per_gmac"] / two)
    assert bench.block_macs_analytic("R", 64, 10) == 10 * 64 * 256 * 2 + 10 * r21_midplanes(64, 64) * 64 * 12


def test_stage_shapes_follow_p3d63():
    s = bench.stage_shapes((8, 112, 112))
    assert [(x["planes"], x["channels"], x["T"], x["H"]) for x in s] == [
        (64, 256, 4, 28),
        (128, 512, 2, 14),
        (256, 1024, 1, 7),
        (512, 2048, 1, 4),
    ]


@pytest.mark.parametrize("preset", sorted(bench.REFERENCES))
def test_reference_matches_archlab_with_same_weights(preset):
    model, ref = bench.archlab_and_reference(preset, width=0.125, classes=10)
    x = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        y = model(x)
        assert y.abs().max() > 0
        assert bench.max_rel_diff(ref(x), y) < 1e-5
        assert bench.max_rel_diff(bench.fuse_bn(model)(x), y) < 1e-4
        assert bench.max_rel_diff(bench.fuse_bn(ref)(x), y) < 1e-4


def test_every_preset_has_a_reference():
    from archlab.model.presets import PRESETS

    assert set(bench.REFERENCES) == set(PRESETS)


def test_fuse_bn_removes_every_batchnorm_and_leaves_the_original():
    model, ref = bench.archlab_and_reference("p3d63", width=0.125, classes=10)
    for m in (model, ref):
        fused = bench.fuse_bn(m)
        assert not any(isinstance(x, torch.nn.BatchNorm3d) for x in fused.modules())
        assert any(isinstance(x, torch.nn.BatchNorm3d) for x in m.modules())


def test_weight_mapping_rejects_a_different_network():
    model, _ = bench.archlab_and_reference("p3d63", width=0.125, classes=10)
    with pytest.raises(ValueError):
        bench.load_reference_weights(bench.RefR2Plus1D18(num_classes=10, width=0.125), model)


def test_profiling_writes_json_and_counters_agree(tmp_path):
    out = bench.run_profiling(n=3, out_dir=tmp_path)
    assert out["agree"] == 3 and out["mismatches"] == []
    data = json.loads((tmp_path / "profiling.json").read_text())
    assert {
        "benchmark",
        "machine",
        "space",
        "input",
        "genomes",
        "rows",
        "fast_vs_fvcore_speedup",
        "agree",
        "mismatches",
    } <= set(data)
    assert {r["counter"] for r in data["rows"]} == {"fast", "fvcore"}
    assert all(r["genomes_per_s"] > 0 for r in data["rows"])
    assert (tmp_path / "profiling.md").read_text().startswith("# profiling")


def test_train_and_reference_write_json_at_tiny_sizes(tmp_path):
    t = bench.run_train(out_dir=tmp_path, width=0.0625, clip=TINY, batch=2, runs=1, compile=False, matmul_n=128)
    assert {"ceiling_gmacs_per_s", "step_macs", "rows"} <= set(json.loads((tmp_path / "train.json").read_text()))
    assert t["step_macs"] == 3 * t["forward_macs"] > 0
    assert [r["candidate"].split(",")[0] for r in t["rows"]][2:] == ["train step"] * 4
    assert [r["candidate"].split(", ")[-1] for r in t["rows"]][2:] == [
        "eager",
        "channels_last_3d",
        "bf16 autocast + channels_last_3d",
        "bf16 weights + channels_last_3d",
    ]
    assert t["rows"][1]["candidate"] == "matmul 128x128 bf16" and t["rows"][1]["gmacs_per_s"] > 0
    r = bench.run_reference(out_dir=tmp_path, presets=["p3d63"], clip=TINY, runs=1, compile=False)
    data = json.loads((tmp_path / "reference.json").read_text())
    assert [x["variant"] for x in data["rows"]] == ["eager", "fused BN", "fused BN + channels_last_3d"]
    assert all(x["max_rel_diff_archlab"] < 1e-3 and x["archlab_vs_reference"] > 0 for x in r["rows"])


def test_bench_main_quick_profiling(tmp_path, capsys):
    assert bench.main(["profiling", "--quick", "--out", str(tmp_path)]) == 0
    assert "genomes/s" in capsys.readouterr().out
    assert json.loads((tmp_path / "profiling.json").read_text())["genomes"] == 10


def test_cli_blocks_prints_the_table(capsys):
    assert main(["blocks", "--input", "2x32x32", "--width", "0.0625", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "ms/GMAC vs 2D" in out and out.count("1.00x") >= 4


def test_archlab_blocks_does_not_import_the_reference_oracle():
    """The reference networks are a test oracle (archlab.testing.reference), not product code:
    `archlab blocks` runs without importing them (or the search and Ray)."""
    import subprocess
    import sys

    code = (
        "import sys; from archlab.cli import main; "
        "rc = main(['blocks', '--input', '2x32x32', '--width', '0.0625', '--runs', '1']); "
        "print(rc, sorted(m for m in sys.modules if m.startswith(('archlab.testing', 'archlab.search', 'ray'))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "0 []"


def test_cli_blocks_bad_input_is_one_line_error(capsys):
    assert main(["blocks", "--input", "8x112"]) == 2
    assert "error" in capsys.readouterr().err


def test_search_overhead_counts_slot_seconds_not_spent_training():
    import pandas as pd

    df = pd.DataFrame({"train_time_s": [30.0, 40.0, None], "trial_time_s": [33.0, 44.0, 0.5]})
    o = bench.search_overhead(df, wall_s=50.0, slots=2)
    assert o["train_s"] == 70.0 and o["trial_s"] == 77.5
    assert o["overhead"] == pytest.approx(0.30) and o["overhead_outside_trials"] == pytest.approx(0.225)


@pytest.mark.slow
def test_search_benchmark_quick_runs_a_real_search(tmp_path):
    o = bench.run_search(quick=True, out_dir=tmp_path)
    assert o["finished"] == 4 and o["slots"] >= 1 and o["ray_start_s"] > 0
    assert 0 < o["train_s"] <= o["trial_s"] <= o["slots"] * o["wall_s"]
    assert 0 < o["overhead_outside_trials"] <= o["overhead"] < 1
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["overhead"] == o["overhead"] and (tmp_path / "search.md").exists()


def test_forms_table_has_every_workload_in_every_form(tmp_path):
    out = bench.run_forms(quick=True, out_dir=tmp_path, runs=1)
    assert [r["what"].split(" ")[:2] for r in out["rows"]] == [
        ["proxy", "train"],
        ["p3d63", "x0.25"],
        ["p3d63", "inference"],
    ]
    for r in out["rows"]:
        forms = [k for k in r if "/" in k]
        assert len(forms) == 4 and all(r[k] > 0 for k in forms)
    assert "bf16 weights + CL3d" in (tmp_path / "forms.md").read_text()
