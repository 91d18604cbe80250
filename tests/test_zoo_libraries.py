"""The oracles against the real libraries, where they import: torchvision's and pytorchvideo's
own networks (random weights) imported into the presets give their outputs, their MACs and
parameters are the presets', and the reference networks carry their key names.

Optional: not in the default install. torchvision's PyPI wheel is a CUDA build whose fake
kernels do not register beside the CPU build of torch, so its ``torchvision::`` fake-kernel
registrations are skipped before it is imported (this file only). Set it up in a side folder:

    pip install --no-deps --target /tmp/zoolibs pytorchvideo==0.1.5 torchvision iopath
    ARCHLAB_ZOO_LIBS=/tmp/zoolibs pytest tests/test_zoo_libraries.py
"""

import os
import sys

import pytest
import torch

LIBS = os.environ.get("ARCHLAB_ZOO_LIBS")
if not LIBS:
    pytest.skip("ARCHLAB_ZOO_LIBS (a folder with torchvision and pytorchvideo) is not set", allow_module_level=True)
sys.path.insert(0, LIBS)

_register_fake = torch.library.register_fake


def _skip_torchvision_fakes(op, *args, **kwargs):
    if isinstance(op, str) and op.startswith("torchvision::"):
        return lambda f: f
    return _register_fake(op, *args, **kwargs)


torch.library.register_fake = _skip_torchvision_fakes
try:
    import torchvision.models as tvm  # noqa: E402
    from pytorchvideo.models import hub  # noqa: E402
    from torchvision.models import video as tvv  # noqa: E402
finally:
    torch.library.register_fake = _register_fake

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archlab.measure import profile  # noqa: E402
from archlab.model.builder import VideoNet  # noqa: E402
from archlab.model.genome import parse  # noqa: E402
from archlab.model.inflate import inflate_imagenet  # noqa: E402
from archlab.model.presets import DEFAULT_INPUT, get  # noqa: E402
from archlab.model.zoo import import_zoo  # noqa: E402
from archlab.testing.reference import REFERENCES, max_rel_diff, randomize_bn  # noqa: E402
from archlab.testing.resnet2d import ResNet2D, per_frame, randomize_bn2d  # noqa: E402

MODELS = {
    "r3d_18": ("torchvision", tvv.r3d_18),
    "mc3_18": ("torchvision", tvv.mc3_18),
    "r2plus1d_18": ("torchvision", tvv.r2plus1d_18),
    "x3d_s": ("pytorchvideo", hub.x3d_s),
    "x3d_m": ("pytorchvideo", hub.x3d_m),
    "x3d_l": ("pytorchvideo", hub.x3d_l),
    "slow_r50": ("pytorchvideo", hub.slow_r50),
    "csn_r101": ("pytorchvideo", hub.csn_r101),
    "r2plus1d_r50": ("pytorchvideo", hub.r2plus1d_r50),
}


@pytest.mark.parametrize("preset", list(MODELS))
def test_the_real_network_has_the_presets_macs_and_the_references_keys(preset):
    clip = DEFAULT_INPUT[preset]
    with torch.device("meta"):
        real = MODELS[preset][1]().eval()
        with FlopCounterMode(display=False) as flops:
            real(torch.randn(1, 3, *clip))
        ref = REFERENCES[preset]()
    ours = profile.count_fast(get(preset), clip)
    assert flops.get_total_flops() // 2 == ours.macs
    assert sum(p.numel() for p in real.parameters()) == ours.params
    assert {k: v.shape for k, v in ref.state_dict().items()} == {k: v.shape for k, v in real.state_dict().items()}


@pytest.mark.parametrize("preset", list(MODELS))
def test_the_real_networks_weights_import_exactly(preset):
    source, make = MODELS[preset]
    torch.manual_seed(0)
    real = randomize_bn(make()).eval()
    genome, sd = import_zoo(get(preset), source, real.state_dict(), "f")
    net = VideoNet(genome)
    net.load_state_dict(sd)
    clip = (4, 64, 64) if source == "torchvision" else DEFAULT_INPUT[preset]  # pytorchvideo's heads pool a fixed kernel
    x = torch.randn(1, 3, *clip)
    with torch.no_grad():
        ours, theirs = net.eval()(x), real(x)
    if source == "pytorchvideo" and getattr(real.blocks[5], "activation", None) is not None:
        ours = ours.softmax(1)  # the hub's X3D and R(2+1)D-50 end in a softmax
    assert max_rel_diff(ours, theirs) < 1e-5


def test_the_2d_reference_is_torchvisions_resnet50():
    torch.manual_seed(0)
    real = tvm.resnet50()
    randomize_bn2d(real).eval()
    ref = ResNet2D().eval()
    ref.load_state_dict(real.state_dict())  # the same keys and shapes
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert max_rel_diff(ref(x), real(x)) < 1e-6
        clip = torch.randn(1, 3, 3, 64, 64)
        net, _ = inflate_imagenet(
            parse("222|2222|222222|222 stem=2d/s sp=mid t=-,-,-,- cls=1000"), real.state_dict(), "f"
        )
        assert max_rel_diff(net.eval()(clip), per_frame(real, clip)) < 1e-4
