"""Profiler: fvcore and the fast counter agree exactly; known MAC figures; latency is sane."""

import pytest

from archlab.measure import profile
from archlab.model.genome import parse
from archlab.model.presets import DEFAULT_INPUT, PRESETS, get
from archlab.util.errors import UserError

# torchvision's own published GFLOPS for these models are multiply-adds at 16x112x112.
KNOWN_GMACS = {"r3d_18": 40.697, "mc3_18": 43.343, "r2plus1d_18": 40.519}


# Checked at width 1/4 in tests/test_family.py: fvcore's traced forward at full width costs
# 18-58 GMACs each on a CPU.
HEAVY = {"csn_r101", "slow_r50", "r2plus1d_r50", "tsm_r50", "x3d_l"}


@pytest.mark.parametrize("name", [p for p in PRESETS if p not in HEAVY])
def test_fast_counter_equals_fvcore_per_stage(name):
    g, clip = get(name), DEFAULT_INPUT[name]
    fast, ref = profile.count_fast(g, clip), profile.count_fvcore(g, clip)
    assert fast.params == ref.params
    assert fast.macs == ref.macs
    assert [(s.name, s.macs, s.params, s.out_shape) for s in fast.stages] == [
        (s.name, s.macs, s.params, s.out_shape) for s in ref.stages
    ]
    assert sum(s.macs for s in ref.stages) == ref.macs
    assert sum(s.params for s in ref.stages) == ref.params


@pytest.mark.parametrize("name, gmacs", list(KNOWN_GMACS.items()))
def test_known_gmacs(name, gmacs):
    assert profile.count_fast(get(name), (16, 112, 112)).gmacs == pytest.approx(gmacs, abs=1e-3)


def test_p3d63_macs_by_hand():
    # Stem 1x7x7 conv 3->64 at 16x80x80 output: 16*80*80*64 * 3*49 MACs.
    c = profile.count_fast(get("p3d63"), (16, 160, 160))
    assert c.stages[0].macs == 16 * 80 * 80 * 64 * 3 * 49
    assert c.stages[-1].macs == 2048 * 400
    assert c.stages[0].out_shape == (64, 8, 40, 40)
    assert [s.out_shape for s in c.stages[1:5]] == [
        (256, 8, 40, 40),
        (512, 4, 20, 20),
        (1024, 2, 10, 10),
        (2048, 1, 5, 5),
    ]


def test_uncounted_ops_are_reported_not_warned(recwarn):
    c = profile.count_fvcore(parse("AB|C2 w=8,16 sw=8 cls=5"), (4, 32, 32))
    assert "aten::add" in c.uncounted and "aten::max_pool3d" in c.uncounted
    assert not [w for w in recwarn if "fvcore" in str(w.filename)]


def test_parse_clip():
    assert profile.parse_clip("16x160x160") == (16, 160, 160)
    for bad in ("16x160", "axbxc", "0x112x112", "8x8x8"):
        with pytest.raises(UserError):
            profile.parse_clip(bad)


def test_latency_measured_and_cached():
    g = parse("AB|C2 w=8,16 sw=8 cls=5")
    cache = profile.ProfileCache()
    lat = profile.latency(g, (4, 32, 32), "cpu", batch=2, runs=3, cache=cache)
    assert lat.median_ms > 0 and lat.clips_per_s == pytest.approx(2000 / lat.median_ms)
    assert lat.batch == 2 and lat.runs == 3
    assert profile.latency(g, (4, 32, 32), "cpu", batch=2, runs=3, cache=cache) == lat  # cached


def test_profile_cache_persists(tmp_path):
    """A second cache on the same file answers from the file: the value planted in it (a MAC
    count no network has) comes back, so the test fails if the file is not read. A file that
    is not JSON is ignored (the cache is best-effort) and recomputed."""
    import json

    g = parse("AB|C2 w=8,16 sw=8 cls=5")
    path = tmp_path / "profiles.json"
    c1 = profile.cost(g, (4, 32, 32), cache=profile.ProfileCache(path))
    stored = json.loads(path.read_text())
    (key,) = stored
    assert stored[key]["macs"] == c1.macs > 0
    stored[key]["macs"] = 123_456_789
    path.write_text(json.dumps(stored))
    c2 = profile.cost(g, (4, 32, 32), cache=profile.ProfileCache(path))
    assert c2.macs == 123_456_789 and c2.params == c1.params and c2.stages == c1.stages
    assert not [p for p in tmp_path.iterdir() if p.name != "profiles.json"]  # no temp file left behind
    path.write_text("{not json")
    c3 = profile.cost(g, (4, 32, 32), cache=profile.ProfileCache(path))
    assert c3 == c1


def test_cuda_request_without_gpu_is_user_error():
    import torch

    from archlab.util.device import resolve_device

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(UserError, match="--device 'gpu0': use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu0")
    assert resolve_device("auto").type == "cpu" and resolve_device("CPU").type == "cpu"


def test_latency_needs_a_timed_run():
    from archlab.model.builder import build

    with pytest.raises(UserError, match="--runs 0"):
        profile.measure_latency(build(parse("AB|C2 w=8,16 sw=8 cls=5")), (4, 32, 32), runs=0)


def test_latency_is_measured_on_the_inference_form(monkeypatch):
    """BN folded into the convs (what a deployed network runs); the caller's model untouched,
    and fused / unfused latencies are cached apart."""
    import torch

    from archlab.model.builder import build

    g = parse("AB|C2 w=8,16 sw=8 cls=5")
    seen = []
    real = profile.measure_latency
    monkeypatch.setattr(profile, "measure_latency", lambda m, *a, **k: seen.append(m) or real(m, *a, **k))
    model = build(g)
    cache = profile.ProfileCache()
    profile.latency(g, (4, 32, 32), "cpu", runs=2, cache=cache, model=model)
    profile.latency(g, (4, 32, 32), "cpu", runs=2, cache=cache, model=model, fused=False)
    bns = [sum(isinstance(m, torch.nn.BatchNorm3d) for m in net.modules()) for net in seen]
    assert bns[0] == 0 and bns[1] == sum(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules()) > 0
    assert len(cache.data) == 2


def test_fused_network_computes_the_same_function():
    import torch

    from archlab.model.builder import build, fuse_bn

    model = build(parse("AB|CR w=8,16 sw=8 cls=5")).eval()
    with torch.no_grad():  # non-trivial BN statistics, as after training
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 1.5), m.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        y, yf = model(x), fuse_bn(model)(x)
    assert (yf - y).abs().max() <= 1e-4 * y.abs().max()
