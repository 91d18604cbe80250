"""The latency predictor: a network's parts and their keys, the table (sum, cache, refresh),
the error figures, and the two commands. Timings are planted (a part's time is a function
of its key) except in one ordering test, which compares networks of very different cost."""

import json
import math
import random

import pytest
import torch

from archlab.cli import main
from archlab.measure import latency_table as lt
from archlab.measure.forms import FP32, Form
from archlab.measure.latency_errors import prediction_errors
from archlab.measure.latency_parts import HeadPart, distinct_parts, genome_parts, part_module
from archlab.measure.latency_table import LatencyTable, MissingParts, predict_latency_ms
from archlab.model.blocks import ResBlock
from archlab.model.builder import VideoNet, build, fuse_bn
from archlab.model.genome import parse
from archlab.model.presets import PRESETS, resolve
from archlab.model.stems import ClampedMaxPool, Stem
from archlab.spaces import load_space
from archlab.util.errors import UserError

CLIP = (2, 16, 16)
SMALL = "AB|C2 sw=8 w=8,16 drop=0.0 cls=6"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def planted(key: str) -> float:
    """A part's planted time: distinct per key, positive, not a round number."""
    return 0.1 + (sum(map(ord, key)) % 997) / 7.0


@pytest.fixture
def fake_timer(monkeypatch):
    """Parts and networks 'timed' without running: counts what was measured."""
    calls = {"parts": [], "networks": 0}

    def time_parts(self, model, parts, keys):
        calls["parts"].extend(sorted(keys))
        chain = math.fsum(planted(p.key) for p in parts)
        return [(chain + 9.0, {k: planted(k) + 1.0 for k in keys}), (chain, {k: planted(k) for k in keys})]

    def network_passes(self, genomes, clip, *, passes=2, **kw):
        calls["networks"] += len(genomes)
        sums = [math.fsum(planted(p.key) for p in genome_parts(g, tuple(clip))) for g in genomes]
        return [[v * 1.02] + [v] * (passes - 1) for v in sums]

    monkeypatch.setattr(LatencyTable, "_time_parts", time_parts)
    monkeypatch.setattr(LatencyTable, "network_passes", network_passes)
    return calls


# ---- the parts -----------------------------------------------------------------------------------


def hooked_inputs(g, clip):
    """The input shape of the stem, of every child of every stage and of the head, by hooks
    on a meta-device network: what genome_parts must reproduce by arithmetic."""
    with torch.device("meta"):
        model = VideoNet(g)
    seen = {}
    for name, m in model.named_modules():
        if name == "stem" or (name.startswith("stages.") and name.count(".") == 2):
            m.register_forward_pre_hook(lambda _m, i, n=name: seen.__setitem__(n, tuple(i[0].shape[1:])))
    model.neck.register_forward_pre_hook(lambda _m, i: seen.__setitem__("head", tuple(i[0].shape[1:])))
    with torch.no_grad():
        model.eval()(torch.empty(1, 3, *clip, device="meta"))
    return model, seen


def space_genomes(n=12, seed=0, spaces=("interleave", "literature")):
    rng = random.Random(seed)
    return [load_space(name).sample(rng, constrained=False) for name in spaces for _ in range(n)]


@pytest.mark.parametrize("clip", [(16, 112, 112), (8, 32, 32)])
def test_the_parts_are_every_stage_child_stem_and_head_with_their_input_shapes(clip):
    genomes = [resolve(p) for p in PRESETS] + space_genomes()
    for g in genomes:
        parts = genome_parts(g, clip)
        model, seen = hooked_inputs(g, clip)
        assert [p.path for p in parts] == list(seen), str(g)
        assert [p.shape for p in parts] == list(seen.values()), str(g)
        for p in parts:
            m = part_module(model, p)
            kind = {Stem: "stem", ClampedMaxPool: "tpool", ResBlock: "block", HeadPart: "head"}[type(m)]
            assert p.kind == kind
            if kind == "block":
                assert f"letter={m.letter} " in p.key


def test_the_parts_chained_compute_the_network():
    g = parse("AB|CT stem=2d/ts sw=8 w=8,16 t=-,p head=x3d drop=0.0 cls=6")
    model = fuse_bn(build(g))
    x = torch.randn(1, 3, 4, 32, 32)
    y = x
    with torch.no_grad():
        for p in genome_parts(g, (4, 32, 32)):
            assert tuple(y.shape[1:]) == p.shape
            y = part_module(model, p)(y)
        assert torch.equal(y, model(x))


def keys(text, clip=CLIP):
    return [p.key for p in genome_parts(parse(text), clip)]


def test_a_part_key_changes_with_what_changes_its_cost():
    base = "AB|C2 sw=8 w=8,16 drop=0.0"
    k = keys(base)
    assert len(k) == 7  # stem, 2 blocks, t-pool, 2 blocks, head
    changed = {
        "letter": ("BB|C2 sw=8 w=8,16 drop=0.0", [1]),
        "width": ("AB|C2 sw=8 w=8,32 drop=0.0", [4, 5, 6]),
        "stem width": ("AB|C2 sw=16 w=8,16 drop=0.0", [0, 1]),
        "stride": ("AB|C2 sw=8 w=8,16 s=1,1 drop=0.0", [4, 5, 6]),
        "stem kind": ("AB|C2 stem=3d/ts sw=8 w=8,16 drop=0.0", [0]),
        "pool rule": ("AB|C2 pool=caffe sw=8 w=8,16 drop=0.0", [0, 3]),
        "stride placement": ("AB|C2 sw=8 w=8,16 sp=mid drop=0.0", [4]),
        "cw of a C block": ("AB|C2 sw=8 w=8,16 cw=0.5 drop=0.0", [4]),
        "classes": ("AB|C2 sw=8 w=8,16 drop=0.0 cls=6", [6]),
        "head": ("AB|C2 sw=8 w=8,16 head=x3d drop=0.0", [6]),
    }
    for what, (text, where) in changed.items():
        other = keys(text)
        diff = [i for i, (a, b) in enumerate(zip(k, other)) if a != b]
        assert diff == where, what
    # a temporal conv stride instead of a pool: no pool part, a strided first block
    conv = keys("AB|C2 sw=8 w=8,16 t=-,c drop=0.0")
    assert len(conv) == 6 and not any(k.startswith("tpool") for k in conv) and "stride=2x2x2" in conv[3]
    # the clip changes every part's input
    assert all(a != b for a, b in zip(k, keys(base, (2, 32, 32))))


def test_a_part_key_stays_when_nothing_that_costs_changes():
    base = keys("AB|C2 sw=8 w=8,16 drop=0.0")
    assert keys("AB|C2 sw=8 w=8,16 drop=0.3") == base  # dropout: an identity at inference
    # sp only moves a stride: stride-1 blocks are the same
    same_sp = keys("AB|C2 sw=8 w=8,16 s=1,1 sp=mid drop=0.0")
    assert same_sp == keys("AB|C2 sw=8 w=8,16 s=1,1 drop=0.0")
    # cw only acts on C blocks, the pool rule only on pools
    assert keys("AB|C2 sw=8 w=8,16 cw=0.5 drop=0.0")[:4] == base[:4]
    assert keys("AB|C2 stem=2d/none pool=caffe sw=8 w=8,16 t=-,- drop=0.0") == keys(
        "AB|C2 stem=2d/none sw=8 w=8,16 t=-,- drop=0.0"
    )
    # the same block at the same place in two genomes is one part
    a, b = keys("AB|C2 sw=8 w=8,16 drop=0.0"), keys("AB|C222 sw=8 w=8,16 drop=0.0")
    assert a[:6] == b[:6] and a[6] == b[-1]
    assert len(distinct_parts([parse("AB|C2 sw=8 w=8,16"), parse("AB|C222 sw=8 w=8,16")], CLIP)) == 7


def test_a_clip_too_small_is_one_line():
    with pytest.raises(UserError, match="too small for this network"):
        genome_parts(parse("A|B|C|2 pool=caffe"), (1, 1, 1))


# ---- the table -----------------------------------------------------------------------------------


def test_a_prediction_is_the_sum_of_the_tables_parts_plus_the_overhead(cache, fake_timer):
    tab = LatencyTable.load(threads=1)
    g = parse(SMALL)
    p = tab.predict(g, CLIP)
    parts = genome_parts(g, CLIP)
    assert [part for part, _ in p.parts] == parts
    assert p.total_ms == p.parts_ms == math.fsum(planted(k.key) for k in parts)  # the fastest run is kept
    assert [tab.entries[k.key]["runs"] for k in parts] == [4] * len(parts)  # 2 runs in each of 2 passes
    measured = [p.total_ms + 3.0]
    assert tab.fit_overhead([g], measured, CLIP) == pytest.approx(3.0)
    q = tab.predict(g, CLIP)
    assert q.overhead_ms == pytest.approx(3.0) and q.total_ms == q.parts_ms + q.overhead_ms
    assert predict_latency_ms(g, CLIP, table=tab) == q.total_ms
    assert tab.predict(g, (4, 16, 16)).overhead_ms == 0.0  # the overhead is per clip


def test_a_part_keeps_its_time_in_the_fastest_chain_not_its_own_luckiest_call(cache, monkeypatch):
    """On a noisy machine the sum of each part's luckiest call undercuts every whole run; the
    table takes all of a network's parts from its fastest chain."""
    g = parse(SMALL)
    keys = [p.key for p in genome_parts(g, CLIP)]

    def time_parts(self, model, parts, wanted):
        lucky = {k: 1.0 if k == keys[0] else 9.0 for k in wanted}  # the stem's luckiest call
        fastest = {k: 3.0 for k in wanted}  # the fastest chain in total
        return [(math.fsum(lucky.values()), lucky), (math.fsum(fastest.values()), fastest)]

    monkeypatch.setattr(LatencyTable, "_time_parts", time_parts)
    tab = LatencyTable.load(threads=1, passes=1)
    assert tab.predict(g, CLIP).total_ms == 3.0 * 7
    assert tab.entries[keys[0]] == {"ms": 3.0, "median_ms": 2.0, "runs": 2, "clock": "wall"}


def test_missing_parts_are_measured_or_refused(cache, fake_timer):
    tab = LatencyTable.load(threads=1)
    g = parse(SMALL)
    with pytest.raises(
        MissingParts,
        match=r"lacks 7 of this genome's 7 distinct parts at 2x16x16: run archlab latency-table "
        r"--input 2x16x16 --threads 1 \(",
    ):
        predict_latency_ms(g, CLIP, table=tab, measure_missing=False)
    assert fake_timer["parts"] == []
    predict_latency_ms(g, CLIP, table=tab)
    assert len(set(fake_timer["parts"])) == 7 and len(fake_timer["parts"]) == 14  # 2 passes
    # a second genome sharing the first stage measures only its new parts
    predict_latency_ms(parse("AB|C3 sw=8 w=8,16 drop=0.0 cls=6"), CLIP, table=tab)
    assert len(set(fake_timer["parts"])) == 8


def test_fill_measures_each_distinct_part_once(cache, fake_timer):
    tab = LatencyTable.load(threads=1)
    genomes = space_genomes(10, spaces=("interleave",))
    todo = tab.missing(genomes, (8, 32, 32))
    assert tab.fill(genomes, (8, 32, 32)) == len(todo) == len(set(fake_timer["parts"]))
    assert len(fake_timer["parts"]) == 2 * len(todo)  # once in each of 2 passes
    assert tab.fill(genomes, (8, 32, 32)) == 0 and tab.missing(genomes, (8, 32, 32)) == []


def test_the_table_is_cached_reread_without_measuring_and_keyed_by_its_setting(cache, fake_timer, monkeypatch):
    g = parse(SMALL)
    first = LatencyTable.load(threads=1)
    ms = first.predict(g, CLIP).total_ms
    path = first.path
    assert path.parent == cache / "latency" and path.exists()
    stored = json.loads(path.read_text())
    assert stored["identity"]["form"] == "fp32/ncdhw/t1" and stored["identity"]["runtime"] == "torch"
    assert len(stored["entries"]) == 7
    n = len(fake_timer["parts"])
    again = LatencyTable.load(threads=1)
    assert again.path == path and again.predict(g, CLIP, measure_missing=False).total_ms == ms
    assert len(fake_timer["parts"]) == n  # nothing measured again
    # another form, thread count, runtime or torch version is another table (empty)
    others = [
        LatencyTable.load(threads=2),
        LatencyTable.load(form=Form("fp32", "cl3d"), threads=1),
        LatencyTable.load(form=Form("fp32", "ncdhw", 1)),  # the form's threads: the same table
        LatencyTable.load(runtime="onnxruntime", threads=1),
    ]
    assert [len(t) for t in others] == [0, 0, 7, 0]
    assert len({t.path for t in others} | {path}) == 4
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    newer = LatencyTable.load(threads=1)
    assert newer.path != path and len(newer) == 0


def test_saving_merges_with_another_process_and_refresh_replaces(cache, fake_timer):
    a, b = LatencyTable.load(threads=1), LatencyTable.load(threads=1)
    a.fill([parse(SMALL)], CLIP)
    b.fill([parse("3|3 sw=8 w=8,16 drop=0.0 cls=6")], CLIP)  # another process, started before a saved
    merged = LatencyTable.load(threads=1)
    assert set(a.entries) | set(b.entries) == set(merged.entries) and len(merged) > len(a.entries)
    merged.clear()
    merged.fill([parse(SMALL)], CLIP)
    assert set(LatencyTable.load(threads=1).entries) == set(a.entries)


def test_a_corrupt_table_is_measured_again_not_an_error(cache, fake_timer):
    tab = LatencyTable.load(threads=1)
    tab.path.parent.mkdir(parents=True)
    tab.path.write_text("{not json")
    assert len(LatencyTable.load(threads=1)) == 0
    tab.path.write_text(json.dumps({"identity": tab.identity, "entries": {"x": {"ms": "fast"}, "y": {"ms": 1.5}}}))
    assert LatencyTable.load(threads=1).entries == {"y": {"ms": 1.5}}


def test_the_cache_folder_is_the_calibrations(tmp_path, monkeypatch):
    from archlab.training import calibrate

    assert lt.ENV_DIR == calibrate.ENV_DIR
    monkeypatch.setenv("ARCHLAB_CACHE_DIR", str(tmp_path / "a"))
    assert lt.cache_dir() == calibrate.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("ARCHLAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lt.cache_dir() == calibrate.cache_dir() == tmp_path / "xdg" / "archlab"


def test_the_runtimes_are_the_measure_packages(cache):
    from archlab.measure.runtimes import RUNTIMES

    assert lt.RUNTIMES == RUNTIMES


def test_bad_table_settings_are_user_errors(cache):
    for kw, message in [
        (dict(runtime="tensorrt"), "must be one of torch, onnxruntime, openvino"),
        (dict(threads=0), "threads 0 must be a positive integer"),
        (dict(runs=0), "runs 0"),
        (dict(runtime="onnxruntime", form=Form("bf16", "cl3d")), "applies to the torch runtime"),
        (dict(form="fp32/ncdhw"), "must be a Form"),
        (dict(device="tpu"), "--device 'tpu'"),
        (dict(clock="gpu"), "clock 'gpu' must be one of wall, cpu"),
        (dict(clock="cpu", threads=2), "the cpu clock times one thread's CPU time"),
    ]:
        with pytest.raises(UserError, match=message):
            LatencyTable(**kw)


# ---- the error figures -----------------------------------------------------------------------------


def test_the_error_figures():
    e = prediction_errors([110, 95, 150, 100, 200], [100, 100, 100, 100, 100])
    assert e.n == 5 and e.errors == pytest.approx((0.10, -0.05, 0.50, 0.0, 1.0))
    assert e.within == pytest.approx(3 / 5)  # exactly 10% counts as within
    assert e.median_abs == pytest.approx(0.10)
    assert e.p90_abs == pytest.approx(1.0)
    assert e.mean == pytest.approx(0.31)
    with pytest.raises(UserError):
        prediction_errors([1.0], [1.0, 2.0])


def test_the_search_line_reads_the_full_budget_trials_figures():
    """The search's predicted-against-measured line: only the trials with both figures that
    trained their full budget (not stopped, not rejected), the same figures as the table's check."""
    import pandas as pd

    from archlab.search.latency import prediction_line

    df = pd.DataFrame(
        {
            "status": ["ok", "stopped", "ok", "rejected", "ok"],
            "predicted_latency_ms": [110.0, 95.0, 150.0, 500.0, None],
            "latency_ms": [100.0, 100.0, 100.0, 100.0, 100.0],
        }
    )
    line = prediction_line(df)
    assert line == (
        "latency table: predicted against measured end to end on 2 full-budget trials: "
        "50% within ±10%, median |error| 30.0%, worst 50.0%"
    )
    assert prediction_line(df.iloc[3:]) == "latency table: no full-budget trial to compare its predictions with"


# ---- real timings: the order of networks of very different cost ------------------------------------


def test_the_prediction_orders_networks_of_clearly_different_cost(cache):
    """One narrow block against 16 blocks 4x wider (~100x the MACs): the predicted and the
    measured latencies put them in the same order by a wide margin, whatever the load."""
    small = parse("2 stem=2d/none sw=8 w=8 s=1 t=- drop=0.0 cls=6")
    large = parse("AAAA|BBBB|CCCC|2222 stem=2d/none sw=32 w=32,32,32,32 s=1,1,1,1 t=-,-,-,- drop=0.0 cls=6")
    tab = LatencyTable.load(threads=1, runs=3, warmup=1, passes=1, clock="cpu")
    clip = (4, 32, 32)
    threads = torch.get_num_threads()
    predicted = [predict_latency_ms(g, clip, table=tab) for g in (small, large)]
    measured = tab.measure_networks([small, large], clip, runs=3, passes=1)
    assert torch.get_num_threads() == threads  # measured at 1 thread, the caller's setting given back
    assert predicted[1] > 3 * predicted[0] and measured[1] > 3 * measured[0]
    # small: stem, block, head; large: stem, A (first and repeats), B, C, 2 (stride 1, 128 -> 128:
    # the first block of a stage is its repeats), head
    assert len(tab) == 3 + 7
    assert all(v["ms"] > 0 and v["clock"] == "cpu" for v in tab.entries.values())
    assert [v["runs"] for v in tab.entries.values()] == [3] * 10  # 3 timed chains, one pass


# ---- the commands ------------------------------------------------------------------------------------


def run(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_latency_table_fills_checks_and_reports(cache, fake_timer, capsys):
    argv = ["latency-table", "--input", "2x16x16", "--genomes", "6", "--check", "4", "--threads", "1"]
    code, out, err = run(capsys, argv)
    assert code == 0, err
    assert "space interleave: 6 random genomes reach" in out
    assert "within ±10%: 4/4 (100%)" in out and "Kendall tau 1.000" in out and "goal" in out and ": met" in out
    assert fake_timer["networks"] == 4
    n, calls = len(set(fake_timer["parts"])), len(fake_timer["parts"])
    assert n > 0 and f"{n} measured now" in out and calls == 2 * n
    assert "the measurement against itself (pass 2 against pass 1): 100% within ±10%" in out
    # cached: the same command measures no part again; --refresh measures every one again
    code, out, _ = run(capsys, argv)
    assert code == 0 and "0 to measure" in out and len(fake_timer["parts"]) == calls
    code, out, _ = run(capsys, [*argv, "--refresh"])
    assert code == 0 and len(fake_timer["parts"]) == 2 * calls
    code, out, _ = run(capsys, ["latency-table", "--threads", "1", "--show"])
    assert code == 0 and f": {n} parts in" in out and "block fam=bottleneck" in out


def test_profile_prints_the_predicted_latency(cache, fake_timer, capsys):
    code, out, err = run(capsys, ["profile", SMALL, "--input", "2x16x16", "--latency", "predicted"])
    assert code == 0, err
    g = parse(SMALL)
    total = math.fsum(planted(p.key) for p in genome_parts(g, CLIP))
    assert f"latency {total:.1f} ms predicted (sum of 7 parts; 7 measured now)" in out
    assert "measuring 7 part(s) the latency table lacks" in err
    code, out, _ = run(capsys, ["profile", SMALL, "--input", "2x16x16", "--latency", "predicted"])
    assert "7 parts; 0 measured now" in out and len(fake_timer["parts"]) == 14


@pytest.mark.parametrize(
    "argv, message",
    [
        (["latency-table", "--genomes", "0"], "--genomes '0' must be all or a positive number of genomes"),
        (["latency-table", "--input", "16x8x8"], "height and width must be at least 16 pixels"),
        (["latency-table", "--space", "nowhere"], "nowhere"),
        (["latency-table", "--form", "fp16/ncdhw"], "--form 'fp16/ncdhw'"),
        (["latency-table", "--runtime", "onnxruntime", "--form", "bf16/cl3d"], "--form applies to --runtime torch"),
        (["latency-table", "--device", "cuda:7"], "--device cuda:7"),
        (["latency-table", "--show", "--threads", "3"], "no latency table for this setting"),
        (["profile", SMALL, "--latency", "predicted", "--batch", "2"], "--latency predicted is for batch 1"),
    ],
)
def test_a_bad_option_is_one_line_exit_2_and_nothing_is_measured(cache, fake_timer, capsys, argv, message):
    code, out, err = run(capsys, argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert fake_timer["parts"] == [] and fake_timer["networks"] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["latency-table", "--check", "-1"],
        ["latency-table", "--runtime", "tensorrt"],
        ["latency-table", "--threads", "0"],
        ["latency-table", "--runs", "0"],
        ["profile", SMALL, "--latency", "guessed"],
    ],
)
def test_a_bad_value_is_argparses_one_line(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1


def test_an_unsupplied_form_default_is_fp32_and_the_clock_does_not_split_the_cache(cache):
    assert LatencyTable(threads=1).form == FP32.with_threads(1)
    assert LatencyTable(threads=1, clock="cpu").path == LatencyTable(threads=1).path
