"""Forms and calibration: the choice logic on planted timings, the cache, a real tiny run."""

import json
import math

import pytest
import torch

from archlab.cli import main
from archlab.data.synthetic import SyntheticMotion
from archlab.measure import profile
from archlab.measure.forms import FP32, Form, candidates, default_training_form
from archlab.model.genome import parse
from archlab.training import calibrate, form_checks
from archlab.training.recipe import ProxyRecipe
from archlab.training.trainer import TrainConfig, train
from archlab.util.errors import UserError

TINY = "A|2 w=4,8 sw=4 stem=2d/none t=-,- drop=0.0 cls=6"
TINY_RECIPE = ProxyRecipe(epochs=1, batch=8, frames=4, size=16)
F32, F32CL = Form("fp32", "ncdhw", 1), Form("fp32", "cl3d", 1)
AC, AC_CL = Form("bf16-autocast", "ncdhw", 1), Form("bf16-autocast", "cl3d", 1)
B16, B16_CL = Form("bf16", "ncdhw", 1), Form("bf16", "cl3d", 1)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ARCHLAB_CALIBRATION", "auto")
    return tmp_path / "cache"


# ---- forms ------------------------------------------------------------------------------------


def test_form_names_round_trip_and_bad_names_are_user_errors():
    for f in candidates(threads=(None, 2)):
        assert Form.parse(f.name) == f
        assert Form.from_dict(f.to_dict()) == f
    assert len(candidates()) == 6 and candidates()[0] == FP32
    for bad in ("fp16/ncdhw", "fp32/nhwc", "fp32", "fp32/ncdhw/2", "fp32/ncdhw/t0"):
        with pytest.raises(UserError):
            Form.parse(bad)


def test_a_form_puts_model_and_input_in_its_dtype_and_layout():
    x = torch.randn(2, 3, 4, 16, 16)
    for f in candidates():
        torch.manual_seed(0)
        m = f.apply_model(torch.nn.Conv3d(3, 4, 3, padding=1))
        xi = f.apply_input(x)
        assert m.weight.dtype == xi.dtype == (torch.bfloat16 if f.precision == "bf16" else torch.float32)
        assert xi.is_contiguous(memory_format=torch.channels_last_3d) == f.channels_last
        with f.autocast("cpu"):
            y = m(xi)
        assert y.dtype == (torch.float32 if f.precision == "fp32" else torch.bfloat16)
        if f.precision == "fp32":  # bf16's output layout is the kernel's choice: on a CPU without
            # AVX-512 (AMD EPYC, AVX2 only, seen 2026-12-02) a bf16 conv of a cl3d input returns NCDHW
            assert y.is_contiguous(memory_format=torch.channels_last_3d) == f.channels_last


# ---- the choice ---------------------------------------------------------------------------------


def test_the_fastest_passing_form_is_chosen():
    times = {F32: 100.0, F32CL: 110.0, AC: 80.0, AC_CL: 60.0, B16: 70.0, B16_CL: 55.0}
    ok = {f: True for f in times}
    assert calibrate.choose(times, ok) == B16_CL
    ok[B16_CL] = False
    assert calibrate.choose(times, ok) == AC_CL


def test_a_form_failing_numerics_is_never_chosen_even_when_fastest():
    times = {F32: 100.0, F32CL: 110.0, AC: 80.0, AC_CL: 60.0, B16: 70.0, B16_CL: 1.0}
    for failing in (B16_CL, AC_CL, AC):
        ok = {f: f != failing for f in times}
        assert calibrate.choose(times, ok) != failing
    # nothing passes, or a candidate's check is missing: the reference
    assert calibrate.choose(times, {f: False for f in times}) == F32
    assert calibrate.choose(times, {}) == F32


def test_nothing_gets_slower_the_reference_wins_unless_a_form_is_clearly_faster():
    slower = {F32: 100.0, F32CL: 110.0, AC: 120.0, AC_CL: 130.0, B16: 101.0, B16_CL: 140.0}
    assert calibrate.choose(slower, {f: True for f in slower}) == F32
    within_noise = {F32: 100.0, AC_CL: 96.0}  # 4% faster: inside MIN_GAIN
    assert calibrate.choose(within_noise, {AC_CL: True}) == F32
    clear = {F32: 100.0, AC_CL: 94.0}
    assert calibrate.choose(clear, {AC_CL: True}) == AC_CL
    with pytest.raises(ValueError):
        calibrate.choose({F32: 1.0, Form("bf16", "cl3d", 2): 0.5}, {})


def test_numerics_checks_pass_close_curves_and_fail_drift_or_nan():
    ref = [1.8, 1.6, 1.4, 1.2, 1.0, 0.9, 0.8, 0.7]
    assert calibrate.check_training(ref, [v + 0.01 for v in ref])[1]
    diff, ok = calibrate.check_training(ref, [v + 0.05 for v in ref])
    assert not ok and diff == pytest.approx(0.05)
    assert not calibrate.check_training(ref, ref[:4] + [math.nan])[1]
    assert not calibrate.check_training(ref, ref[:5])[1]  # stopped early
    want = torch.tensor([[1.0, -2.0, 0.5]])
    assert calibrate.check_inference(want, want + 0.01)[1]
    assert not calibrate.check_inference(want, want + 0.1)[1]
    assert not calibrate.check_inference(want, torch.full_like(want, math.inf))[1]


def test_the_real_numerics_check_fails_bf16_weights_that_lose_their_updates():
    """bf16 weights cannot take AdamW updates below 2^-8 of a weight. 16 steps at lr 2e-4
    on two cycled proxy batches, data and init seeds 0, 1, 2 (AMD EPYC, 1 thread): bf16
    autocast ends 0.0018-0.0025 nats from fp32 (tolerance 0.02), bf16 weights 0.041-0.045."""
    g = parse(calibrate.PROXY_GENOME)
    batches = calibrate.proxy_batches(16, distinct=2)
    checks, _ = calibrate.numerics_checks(g, [AC, B16], batches, threads=1, lrs=(2e-4,))
    assert checks[Form("bf16-autocast", "ncdhw")][1]
    assert not checks[Form("bf16", "ncdhw")][1]


# ---- cache ---------------------------------------------------------------------------------------


def test_machine_key_changes_with_cpu_isa_and_torch(monkeypatch):
    key, info = calibrate.machine_key("cpu")
    assert info["torch"] == torch.__version__ and info["cpu"] == calibrate.cpu_name()
    assert calibrate.machine_key("cpu")[0] == key
    monkeypatch.setattr(calibrate, "cpu_name", lambda: "Intel Xeon Platinum 8480")
    k_cpu = calibrate.machine_key("cpu")[0]
    monkeypatch.setattr(calibrate, "isa_flags", lambda: ["amx_bf16", "amx_tile", "avx512_bf16"])
    k_isa = calibrate.machine_key("cpu")[0]
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    k_torch = calibrate.machine_key("cpu")[0]
    assert len({key, k_cpu, k_isa, k_torch}) == 4


def _planted(key: str, training: str, inference: str) -> calibrate.Calibration:
    return calibrate.Calibration(
        key=key,
        machine={"cpu": "x"},
        created="now",
        device="cpu",
        rows=[],
        training={"1": training},
        inference={"1": inference},
    )


def test_cache_lives_in_the_user_cache_dir_and_keeps_other_machines(cache, monkeypatch):
    key, _ = calibrate.machine_key("cpu")
    calibrate.save(_planted("another-machine", "fp32/cl3d/t1", "fp32/cl3d/t1"))
    assert calibrate.load("cpu") is None  # another machine's entry is not ours
    path = calibrate.save(_planted(key, "bf16-autocast/cl3d/t1", "bf16/cl3d/t1"))
    assert path == cache / "calibration.json"
    data = json.loads(path.read_text())
    assert set(data) == {"another-machine", key}
    monkeypatch.setattr(calibrate, "run", lambda *a, **k: pytest.fail("must not measure: cached"))
    assert calibrate.training_form("cpu", threads=1) == Form("bf16-autocast", "cl3d", 1)
    assert calibrate.inference_form("cpu", threads=2) == Form("bf16", "cl3d", 2)  # nearest thread count
    monkeypatch.delenv("ARCHLAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache.parent / "xdg"))
    assert calibrate.cache_dir() == cache.parent / "xdg" / "archlab"


def test_off_never_measures_refresh_measures_again_corrupt_is_remeasured(cache, monkeypatch):
    key, _ = calibrate.machine_key("cpu")
    calls = []

    def fake_run(*_a, **_k):
        calls.append(1)
        return _planted(key, "bf16/cl3d/t1", "fp32/cl3d/t1")

    monkeypatch.setattr(calibrate, "run", fake_run)
    monkeypatch.setenv("ARCHLAB_CALIBRATION", "off")
    assert calibrate.training_form("cpu", threads=1) == default_training_form("cpu").with_threads(1)
    assert calls == [] and not (cache / "calibration.json").exists()
    monkeypatch.setenv("ARCHLAB_CALIBRATION", "auto")
    assert calibrate.training_form("cpu", threads=1) == B16_CL and calls == [1]  # first use measures
    assert calibrate.inference_form("cpu", threads=1) == F32CL and calls == [1]  # then the cache
    monkeypatch.setenv("ARCHLAB_CALIBRATION", "refresh")
    calibrate.training_form("cpu", threads=1)
    calibrate.training_form("cpu", threads=1)
    assert calls == [1, 1]  # refreshed once in this process
    (cache / "calibration.json").write_text("{not json")
    monkeypatch.setenv("ARCHLAB_CALIBRATION", "auto")
    assert calibrate.training_form("cpu", threads=1) == B16_CL and len(calls) == 3
    monkeypatch.setenv("ARCHLAB_CALIBRATION", "sometimes")
    with pytest.raises(UserError):
        calibrate.training_form("cpu")


# ---- the per-convolution check ----------------------------------------------------------------------


def test_the_coverage_genomes_run_temporal_kernels_on_every_frame_count_of_the_proxy_clip():
    frames = set()
    for g in calibrate.COVERAGE_GENOMES:
        cases = form_checks.conv_cases(parse(g), FP32)
        frames |= {c.input_shape[2] for c in cases if c.kernel[0] > 1}
        assert parse(g).classes == 6
    assert frames >= {8, 4, 2, 1}
    # the layout recorded is the one the conv really receives in that form
    cl = form_checks.conv_cases(parse(calibrate.COVERAGE_GENOMES[1]), Form("fp32", "cl3d"))
    assert any(c.channels_last for c in cl) and not any(
        c.channels_last for c in form_checks.conv_cases(parse(TINY), FP32, (4, 16, 16), 2)
    )


class _Planted:
    """A stand-in form whose conv weight gradient is ``factor`` times the right one (a planted bad kernel)."""

    precision, dtype, channels_last = "fp32", torch.float32, False

    def __init__(self, factor):
        self.factor = factor

    def apply_model(self, m):
        m.weight.register_hook(lambda g: g * self.factor)
        return m

    def autocast(self, _device):
        import contextlib

        return contextlib.nullcontext()


def test_conv_error_is_rounding_for_a_right_kernel_and_large_or_inf_for_a_wrong_one():
    case = form_checks.conv_cases(parse(TINY), FP32, (4, 16, 16), 2)[-1]
    assert form_checks.conv_error(case, Form("fp32", "cl3d")) < 1e-4
    bf16 = form_checks.conv_error(case, Form("bf16-autocast", "ncdhw"))
    assert 1e-4 < bf16 < form_checks.CONV_REL_TOL / 5  # bf16 rounding, well inside the tolerance
    assert form_checks.conv_error(case, _Planted(3.0)) == pytest.approx(2.0, rel=1e-4)
    assert form_checks.conv_error(case, _Planted(float("nan"))) == math.inf


def test_a_form_failing_the_conv_check_is_never_chosen_even_when_fastest(monkeypatch):
    """The loss-curve check passes every form here; the conv check fails one, which is the
    fastest: calibration must not pick it, and the table says which geometry failed."""
    fast = "bf16-autocast/cl3d/t1"

    def planted_times(fns, runs, warmup=2):
        return {name: (1.0 if name == fast else 100.0 if name.startswith("fp32/ncdhw") else 50.0) for name in fns}

    def planted_convs(forms, genomes, *a, **k):
        out = {FP32: (0.0, True, "")}
        for f in forms:
            f0 = f.with_threads(None)
            bad = f0.name == "bf16-autocast/cl3d"
            out[f0] = (math.inf if bad else 0.003, not bad, "conv 3x1x1 16->16 on 8x16x2x4x4 (cl3d)")
        return out

    monkeypatch.setattr(calibrate, "time_forms", planted_times)
    monkeypatch.setattr(calibrate, "conv_checks", planted_convs)
    cal = calibrate.run(
        "cpu",
        train_genome=TINY,
        train_clip=(4, 16, 16),
        train_batch=4,
        infer_genome=TINY,
        infer_clip=(4, 16, 16),
        train_runs=2,
        infer_runs=2,
        numerics_steps=4,
        coverage=[TINY],
    )
    assert cal.training["1"] != fast and cal.training["1"] != "fp32/ncdhw/t1"  # the next fastest passing form
    row = next(r for r in cal.rows if r.kind == "training" and r.form == fast)
    assert not row.ok and row.conv_error == math.inf
    text = calibrate.table(cal)
    assert "bf16-autocast/cl3d/t1: worst conv 3x1x1 16->16 on 8x16x2x4x4 (cl3d)" in text
    # the result survives the cache (inf included)
    assert calibrate.Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))).rows == cal.rows


def test_naming_a_form_this_machine_failed_warns_with_the_reason_and_never_measures(cache, monkeypatch, capsys):
    key, _ = calibrate.machine_key("cpu")
    monkeypatch.setattr(calibrate, "run", lambda *a, **k: pytest.fail("a warning must not measure"))
    assert calibrate.failed_check("bf16-autocast/cl3d") is None  # nothing cached: no opinion
    cal = _planted(key, "fp32/ncdhw/t1", "bf16/cl3d/t1")
    cal.rows = [
        calibrate.Row(
            "training",
            "bf16-autocast/cl3d/t1",
            1.0,
            2.0,
            2,
            0.002,
            0.02,
            False,
            "",
            math.inf,
            0.05,
            "conv 3x1x1 16->16 on 8x16x2x4x4 (cl3d)",
        ),
        calibrate.Row("training", "fp32/cl3d/t1", 1.0, 0.8, 2, 0.0, 0.02, True),
    ]
    calibrate.save(cal)
    why = calibrate.failed_check("bf16-autocast/cl3d")
    assert "conv 3x1x1 16->16 on 8x16x2x4x4 (cl3d)" in why and "inf" in why
    assert (
        calibrate.failed_check("fp32/cl3d") is None
        and calibrate.failed_check("bf16-autocast/cl3d", "inference") is None
    )
    monkeypatch.setenv("ARCHLAB_CALIBRATION", "off")
    assert calibrate.failed_check("bf16-autocast/cl3d") is None
    monkeypatch.setenv("ARCHLAB_CALIBRATION", "auto")
    calibrate.warn_if_failed("bf16-autocast/cl3d/t1")
    err = capsys.readouterr().err
    assert err.startswith("warning: bf16-autocast/cl3d failed this machine's training numerics check")


# ---- a real run ---------------------------------------------------------------------------------


def test_a_tiny_calibration_end_to_end(cache):
    g = parse(TINY)
    cal = calibrate.run(
        "cpu",
        train_genome=TINY,
        train_clip=(4, 16, 16),
        train_batch=4,
        infer_genome=TINY,
        infer_clip=(4, 16, 16),
        train_runs=2,
        infer_runs=2,
        numerics_steps=4,
        coverage=[TINY],
    )
    assert g.classes == 6
    assert [r.kind for r in cal.rows] == ["training"] * 6 + ["inference"] * 6
    assert {r.form for r in cal.rows} == {f.name for f in candidates(threads=(1,))}
    for r in cal.rows:
        assert r.median_ms > 0 and math.isfinite(r.numerics)
        if r.form == "fp32/ncdhw/t1":
            assert r.speedup == 1.0 and r.ok
    # every form computes the same network: all pass at this size
    assert all(r.ok for r in cal.rows), calibrate.table(cal)
    # the choice is the fastest passing row, or the reference
    for kind, chosen in (("training", cal.training["1"]), ("inference", cal.inference["1"])):
        rows = {Form.parse(r.form): r.median_ms for r in cal.rows if r.kind == kind}
        assert chosen == calibrate.choose(rows, {f: True for f in rows}).name
    calibrate.save(cal)
    assert calibrate.load("cpu").training == cal.training
    assert "chosen" in calibrate.table(cal) and "<-" in calibrate.table(cal)


def test_calibrate_cli_prints_the_table_then_uses_the_cache(cache, capsys):
    argv = [
        "calibrate",
        "--quick",
        "--runs",
        "2",
        "--numerics-steps",
        "4",
        "--infer-genome",
        TINY,
        "--infer-input",
        "4x16x16",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "bf16-autocast/cl3d/t1" in out and "chosen: training 1 thread(s):" in out
    assert (cache / "calibration.json").exists()
    assert main(["calibrate", "--show"]) == 0
    assert "cached" in capsys.readouterr().out
    assert main(["calibrate", "--train-threads", "0"]) == 2
    assert main(["calibrate", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "cpu only" in err and "Traceback" not in err


# ---- where forms are used -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data():
    kw = dict(frames=4, size=16, num_classes=6, paths=("translate",), distractors=False)
    return SyntheticMotion("train", n_clips=16, **kw), SyntheticMotion("val", n_clips=8, **kw)


@pytest.mark.parametrize("form", ["bf16-autocast/cl3d", "bf16/cl3d"])
def test_train_runs_in_a_form_and_records_it(tiny_data, tmp_path, form):
    cfg = TrainConfig(recipe=TINY_RECIPE, device="cpu", form=form)
    res = train(parse(TINY), *tiny_data, cfg, out_dir=tmp_path)
    assert res.status == "ok" and res.form == form and math.isfinite(res.history[0].train_loss)
    assert torch.load(tmp_path / "best.pt", weights_only=True)["form"] == form
    # a contradiction or a bad name is refused when the config is built, before any training
    with pytest.raises(UserError, match="contradicts"):
        TrainConfig(recipe=TINY_RECIPE, device="cpu", form=form, channels_last=False)
    with pytest.raises(UserError, match="precision"):
        TrainConfig(recipe=TINY_RECIPE, device="cpu", form="fp16/cl3d")


def test_the_default_form_is_todays_default(tiny_data):
    res = train(parse(TINY), *tiny_data, TrainConfig(recipe=TINY_RECIPE, device="cpu"))
    assert res.form == "fp32/ncdhw"
    res = train(parse(TINY), *tiny_data, TrainConfig(recipe=TINY_RECIPE, device="cpu", channels_last=True))
    assert res.form == "fp32/cl3d"


def test_latency_records_its_form_and_runtime_and_caches_them_apart():
    g = parse(TINY)
    c = profile.ProfileCache()
    a = profile.latency(g, (4, 16, 16), runs=2, cache=c)
    b = profile.latency(g, (4, 16, 16), runs=2, cache=c, form=Form("bf16", "cl3d"))
    o = profile.latency(g, (4, 16, 16), runs=2, cache=c, runtime="onnxruntime")
    assert (a.form, a.runtime) == ("fp32/ncdhw", "torch")
    assert (b.form, b.runtime) == ("bf16/cl3d", "torch")
    assert (o.form, o.runtime) == ("onnx/fp32", "onnxruntime")
    assert len(c.data) == 3 and all(x.median_ms > 0 for x in (a, b, o))
    with pytest.raises(UserError):
        profile.latency(g, (4, 16, 16), runtime="tensorrt")


def test_openvino_missing_is_one_line(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_openvino(name, *a, **k):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("No module named 'openvino'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(UserError, match="pip install 'archlab\\[openvino\\]'"):
        profile.latency(parse(TINY), (4, 16, 16), runs=2, cache=profile.ProfileCache(), runtime="openvino")


# ---- deployment form -------------------------------------------------------------------------------


def test_export_writes_the_pt2_in_a_bf16_form_behind_a_float32_interface(tmp_path, cache):
    from archlab.export import BF16_REL_TOL
    from archlab.model.builder import build

    out = tmp_path / "e"
    assert (
        main(
            [
                "export",
                "--genome",
                TINY,
                "--input",
                "4x16x16",
                "--format",
                "all",
                "--form",
                "bf16/cl3d",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    card = json.loads((out / "model_card.json").read_text())
    assert card["form"]["pt2"] == "bf16/cl3d" and card["form"]["onnx"] == "fp32/ncdhw"
    assert card["form"]["pt2_rel_tol"] == BF16_REL_TOL
    checks = card["verification"]["checks"]
    assert {c["format"] for c in checks} == {"pt2", "onnx"} and all(c["ok"] for c in checks)
    pt2 = [c for c in checks if c["format"] == "pt2"]
    assert all(c["tol"] == pytest.approx(max(BF16_REL_TOL * c["scale"], 1e-6)) for c in pt2)
    assert max(c["max_rel_err"] for c in pt2) > 1e-5  # it really ran in bf16 (fp32 reorders ~1e-7)
    program = torch.export.load(str(out / "model.pt2"))
    assert any("bfloat16" in str(n.meta.get("val", "")) for n in program.graph.nodes)
    torch.manual_seed(0)
    eager = build(TINY).eval()
    x = torch.randn(3, 3, 4, 16, 16)
    with torch.no_grad():
        got, want = program.module()(x), eager(x)
    assert got.dtype == torch.float32
    assert float((got - want).abs().max()) <= BF16_REL_TOL * float(want.abs().max())
    assert "## Form" in (out / "MODEL_CARD.md").read_text()


def test_latencies_of_two_forms_are_not_one_front():
    import pandas as pd

    from archlab.measure.forms import check_one_form

    check_one_form(pd.DataFrame({"latency_form": ["bf16/cl3d", "bf16/cl3d", None]}))
    check_one_form(pd.DataFrame({"val_top1": [0.5]}))  # a study from before forms were recorded
    with pytest.raises(UserError, match="not points of one front"):
        check_one_form(pd.DataFrame({"latency_form": ["bf16/cl3d", "fp32/ncdhw"]}))
    with pytest.raises(UserError):
        check_one_form(pd.DataFrame({"latency_form": ["fp32/ncdhw"] * 2, "latency_runtime": ["torch", "openvino"]}))


def test_kendall_tau():
    from archlab.bench import kendall_tau

    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)


def test_runtimes_bench_measures_every_runtime_and_a_noise_floor(tmp_path):
    from archlab import bench

    out = bench.run_runtimes(quick=True, out_dir=tmp_path, n=3, clip=(4, 16, 16), runs=1)
    names = list(out["latency_ms"])
    assert names[:2] == ["torch fp32/ncdhw", "torch fp32/ncdhw (repeat)"] and "onnxruntime" in names
    assert all(len(v) == 3 and min(v) > 0 for v in out["latency_ms"].values())
    assert all(-1.0 <= t <= 1.0 for t in out["kendall_tau"].values())


def test_a_search_trains_and_measures_in_fp32_unless_asked(cache, monkeypatch):
    """The lead's decision (issue 17): bf16's effect on the proxy ranking is unmeasured and a
    first calibration costs ~3 min, so the default search is fp32/ncdhw, written out, and
    never measures this machine, even with calibration on and nothing cached."""
    from archlab.search import SearchConfig

    monkeypatch.setattr(calibrate, "run", lambda *a, **k: pytest.fail("the default search must not calibrate"))
    cfg = calibrate.search_forms(SearchConfig())
    assert (cfg.train_form, cfg.latency_form, cfg.latency_runtime) == ("fp32/ncdhw", "fp32/ncdhw", "torch")
    assert cfg.settings()["train_form"] == "fp32/ncdhw"  # what study.yaml stores
    with pytest.raises(UserError, match="--train-form"):
        SearchConfig(train_form="fp16/ncdhw")
    with pytest.raises(UserError, match="--latency-runtime"):
        SearchConfig(latency_runtime="tensorrt")


def test_a_new_search_fixes_the_calibrated_forms_at_its_thread_count(cache, monkeypatch):
    from archlab.search import SearchConfig

    key, _ = calibrate.machine_key("cpu")
    cal = _planted(key, "bf16-autocast/cl3d/t1", "bf16/cl3d/t1")
    cal.training["2"], cal.inference["2"] = "fp32/ncdhw/t2", "fp32/cl3d/t2"
    calibrate.save(cal)
    monkeypatch.setattr(calibrate, "run", lambda *a, **k: pytest.fail("must not measure: cached"))
    both = dict(train_form="calibrated", latency_form="calibrated")
    cfg = calibrate.search_forms(SearchConfig(**both))
    assert (cfg.train_form, cfg.latency_form, cfg.latency_runtime) == ("bf16-autocast/cl3d", "bf16/cl3d", "torch")
    cfg = calibrate.search_forms(SearchConfig(cpus_per_trial=2, **both))
    assert (cfg.train_form, cfg.latency_form) == ("fp32/ncdhw", "fp32/cl3d")
    cfg = calibrate.search_forms(
        SearchConfig(latency_runtime="onnxruntime", train_form="fp32/cl3d", latency_form="calibrated")
    )
    assert (cfg.train_form, cfg.latency_form) == ("fp32/cl3d", "fp32/ncdhw")  # given wins; ONNX graph is fp32
    cfg = calibrate.search_forms(SearchConfig(train_form="calibrated"))
    assert (cfg.train_form, cfg.latency_form) == ("bf16-autocast/cl3d", "fp32/ncdhw")


def test_train_and_profile_use_the_calibrated_form_only_when_asked(cache, monkeypatch, capsys, tmp_path):
    """`archlab profile` / `train` default to fp32 and never calibrate; `--form calibrated`
    takes this machine's calibrated form (planted here, so nothing is measured), and the old
    `--form auto` still does, with one deprecation note on stderr."""
    monkeypatch.setattr(calibrate, "run", lambda *a, **k: pytest.fail("must not calibrate"))
    argv = ["profile", TINY, "--input", "4x16x16", "--runs", "1"]
    assert main(argv) == 0
    assert "torch fp32/ncdhw" in capsys.readouterr().out
    key, _ = calibrate.machine_key("cpu")
    calibrate.save(_planted(key, "bf16-autocast/cl3d/t1", "bf16/cl3d/t1"))
    assert main(argv + ["--form", "calibrated"]) == 0
    out = capsys.readouterr()
    assert "torch bf16/cl3d" in out.out and "note" not in out.err
    assert main(argv + ["--form", "auto"]) == 0
    out = capsys.readouterr()
    assert "torch bf16/cl3d" in out.out
    notes = [line for line in out.err.splitlines() if "deprecated" in line]
    assert notes == [
        "archlab profile: note: --form auto is deprecated and will be removed in the next release: "
        "write --form calibrated"
    ]
    assert main(argv) == 0  # a cached calibration changes no default
    assert "torch fp32/ncdhw" in capsys.readouterr().out
    train_argv = [
        "train",
        TINY,
        "--out",
        str(tmp_path / "t"),
        "--epochs",
        "1",
        "--frames",
        "4",
        "--size",
        "16",
        "--train-clips",
        "8",
        "--val-clips",
        "8",
        "--max-steps",
        "1",
        "--device",
        "cpu",
    ]
    assert main(train_argv + ["--form", "calibrated"]) == 0
    assert torch.load(tmp_path / "t" / "best.pt", weights_only=True)["form"] == "bf16-autocast/cl3d"
    assert main(train_argv[:3] + [str(tmp_path / "u")] + train_argv[4:]) == 0
    assert torch.load(tmp_path / "u" / "best.pt", weights_only=True)["form"] == "fp32/ncdhw"
    capsys.readouterr()
    assert main(train_argv[:3] + [str(tmp_path / "v")] + train_argv[4:] + ["--form", "auto"]) == 0
    assert torch.load(tmp_path / "v" / "best.pt", weights_only=True)["form"] == "bf16-autocast/cl3d"
    assert "archlab train: note: --form auto is deprecated" in capsys.readouterr().err
    assert main(train_argv + ["--form", "calibrated", "--channels-last", "on"]) == 2


def test_profile_with_a_device_auto_looks_up_the_resolved_device(cache, monkeypatch, capsys):
    """`--device auto --form calibrated` gave the calibration lookup the word 'auto'
    (torch.device('auto'): a RuntimeError traceback); it gets the resolved device."""
    monkeypatch.setattr(calibrate, "run", lambda *a, **k: pytest.fail("must not calibrate"))
    key, _ = calibrate.machine_key("cpu")
    calibrate.save(_planted(key, "bf16-autocast/cl3d/t1", "bf16/cl3d/t1"))
    if torch.cuda.is_available():
        pytest.skip("auto is a CUDA GPU here, which has no calibration")
    assert main(["profile", TINY, "--input", "4x16x16", "--runs", "1", "--device", "auto", "--form", "calibrated"]) == 0
    assert "torch bf16/cl3d" in capsys.readouterr().out


def test_fidelity_and_export_take_the_same_word(cache, monkeypatch, capsys, tmp_path):
    """`calibrated` in every command: fidelity trains in this machine's training choice at its
    --threads (fidelity.json stores the form, as study.yaml does), export writes the
    inference choice."""
    import json

    monkeypatch.setattr(calibrate, "run", lambda *a, **k: pytest.fail("must not calibrate"))
    key, _ = calibrate.machine_key("cpu")
    calibrate.save(_planted(key, "bf16-autocast/cl3d/t1", "bf16/cl3d/t1"))
    out = tmp_path / "fid"
    assert main(["fidelity", "--quick", "--form", "calibrated", "--out", str(out)]) == 0
    assert json.loads((out / "fidelity.json").read_text())["form"] == "bf16-autocast/cl3d"
    assert (
        main(
            [
                "export",
                "--genome",
                TINY,
                "--input",
                "4x16x16",
                "--format",
                "pt2",
                "--form",
                "calibrated",
                "--out",
                str(tmp_path / "exp"),
            ]
        )
        == 0
    )
    card = json.loads((tmp_path / "exp" / "model_card.json").read_text())
    assert card["form"]["pt2"] == "bf16/cl3d"


def test_the_cli_knows_the_runtimes_without_importing_torch():
    from archlab.cli.forms import RUNTIMES
    from archlab.measure import runtimes

    assert RUNTIMES == runtimes.RUNTIMES
