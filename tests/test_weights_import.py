"""Weights a user brings: a 2D ImageNet ResNet inflated into a genome (every block its 2D parent
at step 0), and torchvision's / pytorchvideo's video weights read into their presets.

The oracles are written apart from archlab's builder: ``archlab.testing.resnet2d`` (torchvision's
ResNet-50 with its key names) and the video references of ``archlab.testing.reference`` (the
libraries' key names; tests/test_zoo_libraries.py checks them against the real libraries where
those import). Every file is written by the test with random weights: no download.
"""

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from archlab.cli import main
from archlab.model.genome import parse, scale_widths
from archlab.model.inflate import inflate_imagenet
from archlab.model.presets import ZOO, get
from archlab.model.zoo import import_zoo
from archlab.testing.reference import REFERENCES, load_reference_weights, max_rel_diff, randomize_bn
from archlab.testing.resnet2d import ResNet2D, per_frame, randomize_bn2d
from archlab.util.errors import UserError

R50 = "stem=2d/s sp=mid t=-,-,-,- cls=1000"  # torchvision's ResNet-50 skeleton, no temporal pooling
CLIP = (2, 3, 4, 64, 64)


def resnet2d(depths=(3, 4, 6, 3), width=64, classes=1000, seed=0) -> nn.Module:
    torch.manual_seed(seed)
    net = ResNet2D(depths, classes, width)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return randomize_bn2d(net, seed).eval()


@pytest.fixture(scope="module")
def r50():
    """A random-weight ResNet-50, its state dict, a clip, and its per-frame logits averaged."""
    net = resnet2d()
    x = torch.randn(*CLIP, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return net.state_dict(), x, per_frame(net, x)


def logits(genome: str, sd, x) -> torch.Tensor:
    net, fc_copied = inflate_imagenet(parse(genome), sd, "r50.pth")
    assert fc_copied
    with torch.no_grad():
        return net.eval()(x)


def test_2d_genome_equals_resnet50_on_every_frame(r50):
    """The contract: logits = mean over frames of the 2D ResNet-50 on each frame."""
    sd, x, ref = r50
    y = logits(f"222|2222|222222|222 {R50}", sd, x)
    assert y.shape == (2, 1000) and ref.abs().max() > 0
    assert max_rel_diff(y, ref) < 1e-4


@pytest.mark.parametrize(
    "letters",
    [
        "AAA|AAAA|AAAAAA|AAA",
        "BBB|BBBB|BBBBBB|BBB",
        "CCC|CCCC|CCCCCC|CCC",
        "ABC|ABCA|BCABCA|222",
        "ABC|ABCA|BCABCA|222 cw=0.5",  # the official C sum: undone by the next conv
        "FFF|FFFF|FFFFFF|FFF",
    ],
)
def test_p3d_blocks_and_mixes_start_as_the_2d_network(r50, letters):
    sd, x, ref = r50
    assert max_rel_diff(logits(f"{letters} {R50}", sd, x), ref) < 1e-4


def test_temporal_convs_mean_inflate_and_time_matters_after_the_first_step(r50):
    sd, x, ref = r50
    net, _ = inflate_imagenet(parse("223|2I22|222222|222 stem=3d/s sp=mid t=-,-,-,- cls=1000"), sd, "f")
    w = sd["conv1.weight"]
    assert torch.allclose(net.stem[0].weight, w.unsqueeze(2).repeat(1, 1, 3, 1, 1) / 3)  # 3x7x7: kernel / 3
    k3 = net.stages[0][2].transform.b.c[0].weight  # `3`: 3x3x3 mean inflation
    assert torch.allclose(k3, sd["layer1.2.conv2.weight"].unsqueeze(2).repeat(1, 1, 3, 1, 1) / 3)
    ki = net.stages[1][1].transform.a[0].weight  # `I`: its 3x1x1 first conv
    assert torch.allclose(ki, sd["layer2.1.conv1.weight"].unsqueeze(2).repeat(1, 1, 3, 1, 1) / 3)
    # P3D-A's T conv is the identity, and B's T branch is silent but trainable
    a = inflate_imagenet(parse(f"AAA|AAAA|AAAAAA|AAA {R50}"), sd, "f")[0].stages[0][0].transform.b.t
    assert a[0].weight[:, :, 1].squeeze().equal(torch.eye(64)) and a[0].weight[:, :, [0, 2]].abs().sum() == 0
    b = inflate_imagenet(parse(f"BBB|BBBB|BBBBBB|BBB {R50}"), sd, "f")[0].stages[0][0].transform.b.t
    assert b[1].weight.abs().sum() == 0 and b[0].weight.abs().sum() > 0


def test_fc_is_fresh_when_the_class_count_differs(r50):
    sd, _, _ = r50
    net, copied = inflate_imagenet(parse("222|2222|222222|222 stem=2d/s sp=mid t=-,-,-,- cls=7"), sd, "f")
    assert not copied and net.fc.weight.shape == (7, 2048)
    assert torch.equal(net.stages[3][2].transform.c[0].weight.squeeze(), sd["layer4.2.conv3.weight"].squeeze())


@pytest.mark.parametrize(
    "genome, needle",
    [
        ("222|2222|22222|222", "stage 3 differs from the 2D network's: 6 blocks, width 256 -> 1024 there; 5 blocks"),
        ("222|2222|222222|222 w=64,128,256,256", "stage 4 differs"),
        ("222|2222|222222", "stage 4: the genome has 3 stages, the 2D network 4"),
        ("222|2222|2D2222|222", "stage 3, block 2: 'D' has no inflation rule: a depthwise 3x3x3 conv cannot hold"),
        ("R22|2222|222222|222", "stage 1, block 1: 'R' has no inflation rule"),
        ("222|2222|222222|222 stem=r21/s", "stem r21: only a 1x7x7 (2d) or 3x7x7 (3d) stem"),
        ("222|2222|222222|222 sw=32", "stem width 32"),
        ("22|22|22|22 fam=basic", "family is basic"),
    ],
)
def test_a_genome_of_another_skeleton_is_one_line_naming_where(r50, genome, needle):
    with pytest.raises(UserError) as e:
        inflate_imagenet(parse(genome), r50[0], "r50.pth")
    assert needle in str(e.value) and "\n" not in str(e.value)


def _cli(*argv, timeout=300):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.run(
        [sys.executable, "-m", "archlab", *argv], capture_output=True, text=True, timeout=timeout, env=env
    )


SMALL = "AB|C2 stem=2d/s sw=8 w=8,16 sp=mid t=-,- cls=5"


def small_2d_file(tmp_path, **kw):
    path = tmp_path / "r2d.pth"
    torch.save(resnet2d(depths=(2, 2), width=8, classes=5, **kw).state_dict(), path)
    return path


def test_import_then_train_init_starts_from_the_inflated_weights(tmp_path, capsys):
    f, out = small_2d_file(tmp_path), tmp_path / "m.pt"
    assert main(["import-weights", SMALL, "--imagenet", str(f), "--out", str(out)]) == 0
    ck = torch.load(out, weights_only=True)
    assert ck["genome"] == SMALL and ck["source"]["kind"] == "imagenet"
    from archlab.export import resolve_source

    assert resolve_source(genome=SMALL, weights=str(out)).state_dict.keys() == ck["model"].keys()
    run = tmp_path / "run"
    argv = ["train", SMALL, "--init", str(out), "--frames", "4", "--size", "32", "--train-clips", "8"]
    argv += ["--val-clips", "4", "--batch", "4", "--epochs", "1", "--max-steps", "1", "--lr", "1e-9", "--out", str(run)]
    assert main(argv) == 0, capsys.readouterr().err
    best = torch.load(run / "best.pt", weights_only=True)["model"]
    key = "stages.0.0.transform.b.s.0.weight"  # S of the first A block: the 2D conv2 after a 1e-9 step
    assert torch.allclose(best[key], ck["model"][key], atol=1e-6)
    assert best["fc.weight"].shape == (len(torch.load(run / "best.pt", weights_only=True)["classes"]), 64)
    capsys.readouterr()
    assert main(argv[:-2] + ["--width", "0.5", "--out", str(tmp_path / "r2")]) == 2
    assert "--width 0.5 with --init" in capsys.readouterr().err
    bad = ["train", "A2|C2 stem=2d/s sw=8 w=8,16 sp=mid t=-,-", "--init", str(out), "--out", str(tmp_path / "r3")]
    assert main(bad) == 2 and "holds genome 'AB|C2" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncated", "text", "archlab", "resnet18"])
def test_a_wrong_or_damaged_2d_file_is_one_line_exit_2(tmp_path, damage):
    f = small_2d_file(tmp_path)
    bad = tmp_path / "bad.pth"
    if damage == "truncated":
        bad.write_bytes(f.read_bytes()[:2000])
    elif damage == "text":
        bad.write_text("not a checkpoint\n")
    elif damage == "archlab":  # an archlab checkpoint is not a 2D ResNet
        torch.save({"model": {"stem.0.weight": torch.zeros(8, 3, 1, 7, 7)}, "genome": SMALL}, bad)
    else:  # a basic-block ResNet: no conv3
        sd = {k: v for k, v in torch.load(f, weights_only=True).items() if ".conv3." not in k and ".bn3." not in k}
        torch.save(sd, bad)
    proc = _cli("import-weights", SMALL, "--imagenet", str(bad), "--out", str(tmp_path / "m.pt"), timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "m.pt").exists()


# ---- the video zoos -----------------------------------------------------------------------


@pytest.mark.parametrize("preset", [p for presets in ZOO.values() for p in presets])
def test_zoo_weights_compute_the_reference_network(preset):
    """A random-weight reference network (the library's key names) saved as the library would:
    the imported preset gives identical outputs (width 1/8 keeps the test fast; the names and
    the rules do not depend on width)."""
    source = next(s for s, presets in ZOO.items() if preset in presets)
    g = scale_widths(get(preset, classes=7), 0.125)
    torch.manual_seed(0)
    from archlab.model.builder import build

    model = randomize_bn(build(g), 0).eval()
    ref = load_reference_weights(REFERENCES[preset](num_classes=7, width=0.125).eval(), model)
    ref_sd = {k: v.clone() for k, v in ref.state_dict().items()}
    genome, sd = import_zoo(scale_widths(get(preset), 0.125), source, ref_sd, "f.pth")
    assert genome.classes == 7
    from archlab.model.builder import VideoNet

    net = VideoNet(genome)
    net.load_state_dict(sd)
    x = torch.randn(1, 3, 8, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(net.eval()(x), ref(x))


@pytest.mark.parametrize("damage", ["truncated", "other_preset", "foreign", "missing_key"])
def test_a_wrong_or_damaged_zoo_file_is_one_line_exit_2(tmp_path, damage):
    ref = REFERENCES["r3d_18"](num_classes=4, width=1.0)
    sd = ref.state_dict()
    bad = tmp_path / "bad.pth"
    if damage == "truncated":
        torch.save(sd, tmp_path / "ok.pth")
        bad.write_bytes((tmp_path / "ok.pth").read_bytes()[:100_000])
    elif damage == "other_preset":  # mc3_18's weights for r3d_18: 1x3x3 kernels in layers 2-4
        torch.save(REFERENCES["mc3_18"](num_classes=4).state_dict(), bad)
    elif damage == "foreign":  # a 2D ResNet
        torch.save(resnet2d(depths=(1, 1), width=8).state_dict(), bad)
    else:
        sd.pop("layer3.1.conv2.1.running_var")
        torch.save(sd, bad)
    proc = _cli("import-weights", "r3d_18", "--torchvision", str(bad), "--out", str(tmp_path / "m.pt"), timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "m.pt").exists()


def test_zoo_import_cli_writes_what_export_reads(tmp_path):
    f, out = tmp_path / "r2plus1d_18.pth", tmp_path / "m.pt"
    torch.save(randomize_bn(REFERENCES["r2plus1d_18"](num_classes=400)).state_dict(), f)
    proc = _cli("import-weights", "r2plus1d_18", "--torchvision", str(f), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    ck = torch.load(out, weights_only=True)
    assert ck["genome"] == str(get("r2plus1d_18"))
    from archlab.export import resolve_source

    src = resolve_source(genome="r2plus1d_18", weights=str(out))
    assert torch.equal(src.state_dict["stages.1.0.transform.a.1.0.weight"], torch.load(f)["layer2.0.conv1.0.3.weight"])


def test_help_lists_every_source(capsys):
    with pytest.raises(SystemExit):
        main(["import-weights", "--help"])
    out = capsys.readouterr().out
    for word in ("--caffemodel", "--imagenet", "--torchvision", "--pytorchvideo", "r3d_18", "csn_r101", "x3d_l"):
        assert word in out
