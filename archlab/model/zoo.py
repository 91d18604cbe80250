"""Released video weights of torchvision and pytorchvideo, read into the presets that reproduce
those networks (``presets.ZOO`` lists them; tests/test_weights_import.py: outputs identical to the reference networks'
on the same weights; tests/test_zoo_libraries.py: the same key names as the real libraries).

Each archlab parameter is named in the library's words by ``library_key``: a rename, module
path for module path, with the letter of the block deciding its middle's names. A file is
taken only if it has every key the preset needs, no other, each of the right shape; anything
else is one line naming the first key that differs.
"""

from __future__ import annotations

import torch

from ..util.errors import UserError
from .builder import build
from .genome import Genome

# Buffers an older checkpoint may lack (torch < 0.4.1 BN): archlab keeps its own.
OPTIONAL = ("num_batches_tracked",)

# The middle of a bottleneck block, per letter: archlab's module path -> pytorchvideo's.
_PV_MIDDLE: dict[str, dict[str, str]] = {
    "D": {"b.c.0": "conv_b", "b.c.1": "norm_b"},
    "2": {"b.s.0": "conv_b", "b.s.1": "norm_b"},
    "I": {"b.s.0": "conv_b", "b.s.1": "norm_b"},
    "F": {"b.t.0": "conv_b.conv_t", "b.t.1": "conv_b.norm", "b.s.0": "conv_b.conv_xy", "b.s.1": "norm_b"},
    "X": {"b.c.0": "conv_b", "b.c.1": "norm_b.0", "b.c.2.fc1": "norm_b.1.block.0", "b.c.2.fc2": "norm_b.1.block.2"},
    "Y": {"b.c.0": "conv_b", "b.c.1": "norm_b.0"},
}
_PV_BLOCK = {"a.0": "conv_a", "a.1": "norm_a", "c.0": "conv_c", "c.1": "norm_c"}
_PV_HEAD = {"neck.0": "blocks.5.pool.pre_conv", "neck.1": "blocks.5.pool.pre_norm", "post.0": "blocks.5.pool.post_conv"}
# torchvision's BasicBlock: conv1/conv2 = Sequential(conv, BN, ReLU); Conv2Plus1D's own
# Sequential is (1x3x3, BN, ReLU, 3x1x1).
_TV_R21 = {"0.0": "0.0", "0.1": "0.1", "1.0": "0.3", "1.1": "1"}


def _block_key(source: str, letter: str, rest: str) -> str | None:
    """Inside one residual block: archlab's module path after ``stages.i.j.`` -> the library's."""
    if rest.startswith("shortcut."):
        n = rest.split(".")[1]
        if source == "torchvision":
            return f"downsample.{n}"
        return {"0": "branch1_conv", "1": "branch1_norm"}.get(n)
    if not rest.startswith("transform."):
        return None
    path = rest[len("transform.") :]
    if source == "torchvision":  # a = conv1, b = conv2
        conv, inner = {"a": "conv1", "b": "conv2"}.get(path[:1]), path[2:]
        if conv is None:
            return None
        return f"{conv}.{_TV_R21[inner]}" if letter == "R" else f"{conv}.{inner}"
    if path in _PV_BLOCK:
        return f"branch2.{_PV_BLOCK[path]}"
    middle = _PV_MIDDLE.get(letter, {}).get(path)
    return f"branch2.{middle}" if middle else None


def library_key(source: str, genome: Genome, key: str) -> str | None:
    """The library's name of archlab's state-dict ``key`` for a preset of ``source`` (None:
    the library has no such tensor)."""
    module, _, param = key.rpartition(".")
    parts = module.split(".")
    if parts[0] == "stages":
        i, j = int(parts[1]), int(parts[2])
        inner = _block_key(source, genome.stages[i].letters[j], ".".join(parts[3:]))
        if inner is None:
            return None
        prefix = f"layer{i + 1}.{j}" if source == "torchvision" else f"blocks.{i + 1}.res_blocks.{j}"
        return f"{prefix}.{inner}.{param}"
    if source == "torchvision":
        return key if parts[0] in ("stem", "fc") else None
    if parts[0] == "stem":
        names = ("conv.conv_t", "conv.conv_xy", "norm") if genome.stem == "x3d" else ("conv", "norm")
        return f"blocks.0.{names[int(parts[1])]}.{param}"
    if parts[0] == "fc":
        return f"blocks.5.proj.{param}"
    return f"{_PV_HEAD[module]}.{param}" if module in _PV_HEAD else None


def import_zoo(genome: Genome, source: str, sd: dict[str, torch.Tensor], where: str) -> tuple[Genome, dict]:
    """``genome`` (a preset of ``source``, classes from the file) with the file's weights: its
    archlab state dict. Every key of the file is used, every shape checked."""
    if any(s.temporal == "p" for s in genome.stages):  # block index j = position in the stage
        raise UserError(f"{source} weights fit no genome with temporal pooling between stages")
    classes = sd.get("fc.weight" if source == "torchvision" else "blocks.5.proj.weight")
    if classes is None:
        first = next(iter(sd))
        raise UserError(f"{where} is not a {source} video network's state dict (its first key is {first!r})")
    genome = genome.with_(classes=int(classes.shape[0]))
    with torch.device("meta"):
        want = build(genome).state_dict()
    out, used = {}, set()
    for key, t in want.items():
        lib = library_key(source, genome, key)
        if lib is None:
            raise ValueError(f"no {source} name for archlab's {key}")  # a preset outside ZOO: a bug
        if lib not in sd:
            if key.endswith(OPTIONAL):
                out[key] = torch.zeros((), dtype=torch.long)
                continue
            raise UserError(f"{where} does not fit {source}'s network: no {lib} (another model, or cut short?)")
        v = sd[lib]
        if v.shape != t.shape and not (key == "post.0.weight" and v.numel() == t.numel()):
            raise UserError(f"{where} does not fit {source}'s network: {lib} is {tuple(v.shape)}, not {tuple(t.shape)}")
        out[key] = v.reshape(t.shape).to(t.dtype) if v.is_floating_point() else v.reshape(t.shape)
        used.add(lib)
    extra = [k for k in sd if k not in used]
    if extra:
        raise UserError(f"{where} does not fit {source}'s network: {extra[0]} has no place in it (another model?)")
    return genome, out
