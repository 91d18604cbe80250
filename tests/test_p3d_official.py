"""archlab's official P3D presets compute the official Caffe network; the weight importer.

The reference (archlab/testing/p3d_prototxt.py) is written from the deploy prototxt's layer
list, independent of archlab's builder. Input 16x64x64 instead of the official 16x160x160:
16 frames are needed (time collapses 16 -> 8 -> 4 -> 2 -> 1 so res5's Reshape is valid) and
64x64 keeps every layer meaningful (res5 at 2x2, pool1 64 -> 32 -> 16 with a partial last
Caffe window, since (16 - 1) * 2 = 30 < 32 <= 30 + 3), at 1/6 of the MACs (float64, ~10 s).
"""

import os
import re
import subprocess
import sys

import pytest
import torch

from archlab.model import blocks, stems
from archlab.model.builder import VideoNet, build
from archlab.model.caffe import CaffeLayer, import_p3d, p3d_state_dict, write_caffemodel
from archlab.model.genome import parse
from archlab.model.presets import PRESETS, get
from archlab.testing.p3d_prototxt import p3d_layers, random_blobs, run
from archlab.util.errors import UserError

CLIP = (16, 64, 64)


def _caffe_layers(layers, blobs):
    return [
        CaffeLayer(layer.name, layer.type, layer.bottoms, layer.tops, blobs.get(layer.name, [])) for layer in layers
    ]


@pytest.fixture(scope="module")
def p3d199_files(tmp_path_factory):
    """P3D-199's layer list, random float32 weights, and a caffemodel written from them."""
    layers = p3d_layers()
    blobs = random_blobs(layers, seed=0)
    path = tmp_path_factory.mktemp("caffe") / "p3d199.caffemodel"
    write_caffemodel(path, _caffe_layers(layers, blobs), name="DEPLOY_P3D_RESNET_KINETICS")
    return layers, blobs, path


@pytest.mark.slow
def test_p3d199_is_the_official_network_bit_for_bit_and_imports(p3d199_files):
    layers, blobs, path = p3d199_files
    g, sd = import_p3d(get("p3d199"), path)
    assert str(g) == PRESETS["p3d199"] and g.classes == 400
    # Round trip: every tensor read back is the one written (float32, bit for bit).
    assert torch.equal(sd["stem.0.weight"], blobs["conv1"][0])
    assert torch.equal(sd["stages.3.1.transform.b.s.0.weight"].squeeze(2), blobs["res5a_branch2b"][0])
    assert torch.equal(sd["stages.2.36.transform.b.t.1.running_var"], blobs["bn4b35_branch2b_t"][3].reshape(-1))
    assert torch.equal(sd["fc.bias"], blobs["fc_kinetics"][1])
    n_written = sum(b.numel() for v in blobs.values() for b in v)
    assert n_written == sum(t.numel() for k, t in sd.items() if not k.endswith("num_batches_tracked"))

    x = torch.randn(1, 3, *CLIP, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        ref = run(layers, {k: [b.double() for b in v] for k, v in blobs.items()}, x)
        model = VideoNet(g).double().eval()
        model.load_state_dict(sd)
        ours = model(x)
        # The same weights under archlab's original rules (pad-1 floor pooling, C sums 1/1):
        old = VideoNet(g.with_(pool="torch", cw=1.0)).double().eval()
        old.load_state_dict(sd)
        before = old(x)
    assert ref.abs().max() > 1e-3  # a live signal, not a collapsed one
    assert torch.equal(ours, ref), f"max abs diff {float((ours - ref).abs().max())}"
    assert float((before - ref).abs().max() / ref.abs().max()) > 1e-3  # the rules matter


def test_import_weights_cli_writes_a_checkpoint_export_reads(p3d199_files, tmp_path):
    _, blobs, path = p3d199_files
    out = tmp_path / "model.pt"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(
        [sys.executable, "-m", "archlab", "import-weights", "p3d199", "--caffemodel", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["genome"] == PRESETS["p3d199"]
    assert torch.equal(ckpt["model"]["stages.1.1.transform.a.0.weight"], blobs["res3a_branch2a"][0])
    from archlab.export import resolve_source

    src = resolve_source(genome="p3d199", weights=str(out))  # what `archlab export --genome p3d199 --weights` reads
    assert src.genome == get("p3d199")
    with torch.device("meta"):
        VideoNet(get("p3d199")).load_state_dict(src.state_dict, assign=True)


@pytest.mark.parametrize("damage", ["truncated", "text", "other_net", "missing"])
def test_a_wrong_or_damaged_caffemodel_is_one_line_exit_2(p3d199_files, tmp_path, damage):
    layers, blobs, path = p3d199_files
    bad = tmp_path / "bad.caffemodel"
    if damage == "truncated":
        bad.write_bytes(path.read_bytes()[:5_000_000])
    elif damage == "text":
        bad.write_text("name: 'not a binary model'\n")
    elif damage == "other_net":  # P3D-63's layers (fewer blocks; res3 named a..d) for the p3d199 command
        l63 = p3d_layers((3, 4, 6, 3))
        write_caffemodel(bad, _caffe_layers(l63, random_blobs(l63)))
    else:  # the same file without a layer
        write_caffemodel(bad, [layer for layer in _caffe_layers(layers, blobs) if layer.name != "bn3b2_branch2b_t"])
    with pytest.raises(UserError) as e:
        import_p3d(get("p3d199"), bad)
    assert "\n" not in str(e.value)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "archlab",
            "import-weights",
            "p3d199",
            "--caffemodel",
            str(bad),
            "--out",
            str(tmp_path / "m.pt"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "m.pt").exists()


def test_bvlc_batchnorm_plus_scale_layers_import_too():
    """BVLC Caffe's BN is two layers: BatchNorm (mean*f, var*f, f) then Scale (gamma, beta)."""
    g = parse("A|2 pool=caffe w=4,8 sw=4 cls=3")
    with torch.device("meta"):
        ref = VideoNet(g).state_dict()
    gen = torch.Generator().manual_seed(0)
    layers = []
    from archlab.model.caffe import p3d_layer_map

    for name, (module, kind) in p3d_layer_map(g).items():
        if kind == "conv":
            layers.append(
                CaffeLayer(
                    name, "Convolution", ["x"], [name], [torch.randn(ref[f"{module}.weight"].shape, generator=gen)]
                )
            )
        elif kind == "bn":
            c = ref[f"{module}.weight"].shape[0]
            mean, var, f = torch.randn(c, generator=gen), torch.rand(c, generator=gen) + 0.5, 4.0
            layers.append(CaffeLayer(name, "BatchNorm", [name], [name], [mean * f, var * f, torch.tensor([f])]))
            layers.append(
                CaffeLayer("scale" + name[2:], "Scale", [name], [name], [torch.full((c,), 2.0), torch.full((c,), 0.5)])
            )
        else:
            layers.append(
                CaffeLayer(
                    "fc8",
                    "InnerProduct",
                    ["x"],
                    ["fc8"],
                    [torch.randn(3, 32, generator=gen), torch.randn(3, generator=gen)],
                )
            )
    sd = p3d_state_dict(g, layers, ref)
    assert torch.allclose(sd["stem.1.running_mean"] * 4.0, layers[1].blobs[0])
    assert torch.equal(sd["stem.1.weight"], torch.full((4,), 2.0))


# ---- one test per rule ---------------------------------------------------------------------


def _caffe_max_pool(x, k, s):
    """Caffe's max pooling by hand: pad 0, ceil rounding, windows start at 0, s, 2s... and are
    clipped at the end (the last one may be partial)."""
    T, H, W = x.shape[2:]
    out_sizes = [-(-(n - kk) // ss) + 1 for n, kk, ss in zip((T, H, W), k, s)]
    out = torch.empty(*x.shape[:2], *out_sizes, dtype=x.dtype)
    for t in range(out_sizes[0]):
        for h in range(out_sizes[1]):
            for w in range(out_sizes[2]):
                win = x[:, :, t * s[0] : t * s[0] + k[0], h * s[1] : h * s[1] + k[1], w * s[2] : w * s[2] + k[2]]
                out[:, :, t, h, w] = win.amax(dim=(2, 3, 4))
    return out


@pytest.mark.parametrize("size", [8, 9, 16])
def test_pool_rule_caffe_is_caffes_max_pooling(size):
    x = torch.randn(1, 2, 4, size, size, generator=torch.Generator().manual_seed(size))
    caffe_pool = stems.Stem("2d", 2, "ts", rule="caffe")[-1]
    torch_pool = stems.Stem("2d", 2, "ts", rule="torch")[-1]
    want = _caffe_max_pool(x, (2, 3, 3), (2, 2, 2))
    assert torch.equal(caffe_pool(x), want)
    assert not torch.equal(torch_pool(x), want)  # the old rule's windows start at -1
    # t=p pools round up too: 3 frames -> 2 (Caffe's ceil), not 1
    assert stems.temporal_pool("caffe")(torch.zeros(1, 1, 3, 2, 2)).shape[2] == 2
    assert stems.temporal_pool("torch")(torch.zeros(1, 1, 3, 2, 2)).shape[2] == 1


def test_cw_rule_is_the_official_c_eltwise():
    torch.manual_seed(0)
    half = blocks.TRANSFORMS["C"](6, rules=blocks.Rules(cw=0.5)).eval()
    one = blocks.TRANSFORMS["C"](6).eval()
    one.load_state_dict(half.state_dict())
    for m in half.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-1, 1), m.bias.data.uniform_(-1, 1)
    one.load_state_dict(half.state_dict())
    x = torch.randn(2, 6, 4, 5, 5)
    with torch.no_grad():
        s = torch.relu(half.s[1](half.s[0](x)))
        t = half.t[1](half.t[0](s))
        assert torch.equal(half(x), torch.relu(0.5 * s + 0.5 * t))
        assert torch.equal(one(x), torch.relu(s + t))
        assert not torch.allclose(half(x), one(x))


def test_official_presets_say_their_rules_and_old_strings_keep_theirs():
    assert PRESETS["p3d63"] == "ABC|ABCA|BCABCA|222 pool=caffe cw=0.5"
    assert PRESETS["c2d50"] == "222|2222|222222|222 pool=caffe"  # no C block: no cw
    for name in ("p3d63", "p3d131", "p3d199", "c2d50", "p3d_a50", "p3d_b50", "p3d_c50"):
        assert get(name).pool == "caffe" and get(name).cw == (0.5 if "C" in get(name).letters else 1.0)
    old = parse("ABC|ABCA|BCABCA|222")  # a string from before the rules: archlab's original network
    assert (old.pool, old.cw) == ("torch", 1.0) and str(old) == "ABC|ABCA|BCABCA|222"
    m = build(old)
    assert (m.stem[-1].padding, m.stem[-1].ceil) == ((0, 1, 1), False)
    assert all(b.cw == 1.0 for b in m.modules() if isinstance(b, blocks.P3DC))
    m = build("p3d63")
    assert (m.stem[-1].padding, m.stem[-1].ceil) == ((0, 0, 0), True)
    assert all(b.cw == 0.5 for b in m.modules() if isinstance(b, blocks.P3DC))
    assert str(parse("22|2 cw=0.5")) == "22|2"  # cw cannot act without C blocks: one string per network


@pytest.mark.skipif(
    not os.environ.get("ARCHLAB_P3D_PROTOTXT"),
    reason="set ARCHLAB_P3D_PROTOTXT to the official "
    "deploy_p3d_resnet_kinetics.prototxt to compare the reference with it layer by layer",
)
def test_reference_layer_list_equals_the_official_prototxt():
    text = open(os.environ["ARCHLAB_P3D_PROTOTXT"]).read()
    real = [
        b
        for b in re.findall(r"layer \{(.*?)\n\}", text, re.S)
        if re.search(r'type: "([^"]+)"', b).group(1) not in ("Input", "Softmax")
    ]
    mine = p3d_layers()
    assert len(real) == len(mine)
    for b, m in zip(real, mine):
        assert re.search(r'name: "([^"]+)"', b).group(1) == m.name
        assert re.search(r'type: "([^"]+)"', b).group(1) == m.type
        assert re.findall(r'bottom: "([^"]+)"', b) == m.bottoms
        if m.type == "Convolution":
            ints = lambda key: tuple(int(v) for v in re.findall(rf"\n\s*{key}: (\d+)", b))  # noqa: E731
            assert (ints("kernel_size"), ints("stride"), ints("pad")) == (m.kernel, m.stride, m.pad), m.name
        if m.type == "Eltwise":
            assert tuple(float(v) for v in re.findall(r"coeff: ([\d.]+)", b)) == m.coeff, m.name
