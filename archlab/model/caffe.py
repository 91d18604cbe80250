"""Caffe models in and out: the binary NetParameter (``.caffemodel``) and the map from the
official P3D's layer names to archlab's state_dict.

The messages are the subset of BVLC's public ``caffe.proto`` that carries weights, built at
import time with ``descriptor_pb2`` (no ``protoc`` on the machines archlab runs on); field
numbers are caffe.proto's, so any Caffe writer's file reads here and the writer below writes
files Caffe reads (fields not defined here, e.g. convolution_param, are skipped on reading).

Normalisation layers, as saved by the two kinds of Caffe that trained video ResNets:
``BN`` (the fork the official P3D used; blobs scale, shift, mean, variance) and BVLC's
``BatchNorm`` (blobs mean * f, variance * f, f) followed by ``Scale`` (gamma, beta).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from ..util.errors import UserError
from .genome import Genome

# name, number, label, type[, type_name, packed]
_F = descriptor_pb2.FieldDescriptorProto
_MESSAGES: dict[str, list[tuple[Any, ...]]] = {
    "BlobShape": [("dim", 1, _F.LABEL_REPEATED, _F.TYPE_INT64, None, True)],
    "BlobProto": [
        ("num", 1, _F.LABEL_OPTIONAL, _F.TYPE_INT32),
        ("channels", 2, _F.LABEL_OPTIONAL, _F.TYPE_INT32),
        ("height", 3, _F.LABEL_OPTIONAL, _F.TYPE_INT32),
        ("width", 4, _F.LABEL_OPTIONAL, _F.TYPE_INT32),
        ("data", 5, _F.LABEL_REPEATED, _F.TYPE_FLOAT, None, True),
        ("diff", 6, _F.LABEL_REPEATED, _F.TYPE_FLOAT, None, True),
        ("shape", 7, _F.LABEL_OPTIONAL, _F.TYPE_MESSAGE, ".caffe.BlobShape"),
        ("double_data", 8, _F.LABEL_REPEATED, _F.TYPE_DOUBLE, None, True),
        ("double_diff", 9, _F.LABEL_REPEATED, _F.TYPE_DOUBLE, None, True),
    ],
    "LayerParameter": [
        ("name", 1, _F.LABEL_OPTIONAL, _F.TYPE_STRING),
        ("type", 2, _F.LABEL_OPTIONAL, _F.TYPE_STRING),
        ("bottom", 3, _F.LABEL_REPEATED, _F.TYPE_STRING),
        ("top", 4, _F.LABEL_REPEATED, _F.TYPE_STRING),
        ("blobs", 7, _F.LABEL_REPEATED, _F.TYPE_MESSAGE, ".caffe.BlobProto"),
    ],
    # V1LayerParameter (Caffe before 2015) is only recognised, to say so.
    "V1LayerParameter": [("name", 4, _F.LABEL_OPTIONAL, _F.TYPE_STRING)],
    "NetParameter": [
        ("name", 1, _F.LABEL_OPTIONAL, _F.TYPE_STRING),
        ("layers", 2, _F.LABEL_REPEATED, _F.TYPE_MESSAGE, ".caffe.V1LayerParameter"),
        ("layer", 100, _F.LABEL_REPEATED, _F.TYPE_MESSAGE, ".caffe.LayerParameter"),
    ],
}


def _build_messages() -> dict[str, type]:
    fdp = descriptor_pb2.FileDescriptorProto(name="archlab_caffe_subset.proto", package="caffe", syntax="proto2")
    for msg, fields in _MESSAGES.items():
        m = fdp.message_type.add(name=msg)
        for name, number, label, ftype, *rest in fields:
            f = m.field.add(name=name, number=number, label=label, type=ftype)
            if rest and rest[0]:
                f.type_name = rest[0]
            if len(rest) > 1 and rest[1]:
                f.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}")) for name in _MESSAGES}


MESSAGES = _build_messages()


@dataclass
class CaffeLayer:
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    blobs: list[torch.Tensor]  # float32 (or float64 from double_data), in Caffe's shapes


def _blob_tensor(b: Any, where: str) -> torch.Tensor:
    double = len(b.double_data) > 0
    values = np.array(b.double_data if double else b.data, dtype=np.float64 if double else np.float32)
    if b.HasField("shape"):
        shape = tuple(int(d) for d in b.shape.dim)
    else:  # the legacy 4D form
        shape = tuple(int(d) for d in (b.num, b.channels, b.height, b.width))
    n = 1
    for d in shape:
        n *= d
    if n != len(values):
        raise UserError(f"{where}: a blob of shape {list(shape)} holds {len(values)} values (damaged file?)")
    return torch.from_numpy(values).reshape(shape)


def read_caffemodel(path: str | Path) -> list[CaffeLayer]:
    """The layers of a binary caffemodel, in file order; a file that is not one is ONE UserError."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"caffemodel {p} does not exist")
    net = MESSAGES["NetParameter"]()
    try:
        net.ParseFromString(p.read_bytes())
    except (DecodeError, RuntimeError, ValueError) as e:
        raise UserError(f"{p} is not a Caffe model (truncated or not a binary NetParameter: {e})") from None
    if len(net.layers) and not len(net.layer):
        raise UserError(f"{p} uses Caffe's old V1 layer format: convert it with Caffe's upgrade_net_proto_binary")
    if not len(net.layer):
        raise UserError(f"{p} is not a Caffe model: it has no layers")
    return [
        CaffeLayer(
            layer.name,
            layer.type,
            list(layer.bottom),
            list(layer.top),
            [_blob_tensor(b, f"{p}: layer {layer.name}") for b in layer.blobs],
        )
        for layer in net.layer
    ]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def write_caffemodel(path: str | Path, layers: list[CaffeLayer], name: str = "") -> None:
    """Write layers (with their blobs, float32) as a binary NetParameter Caffe can load."""
    net = MESSAGES["NetParameter"](name=name)
    for layer in layers:
        lp = net.layer.add(name=layer.name, type=layer.type)
        lp.bottom.extend(layer.bottoms)
        lp.top.extend(layer.tops)
        for t in layer.blobs:
            bp = lp.blobs.add()
            bp.shape.dim.extend(int(d) for d in t.shape)
            # The data field (5, packed float32) as its wire bytes, merged: protobuf parses them
            # natively, ~50x faster than extending the repeated field from Python floats.
            raw = t.detach().to(torch.float32).contiguous().numpy().tobytes()
            bp.MergeFromString(bytes([5 << 3 | 2]) + _varint(len(raw)) + raw)
    Path(path).write_bytes(net.SerializeToString())


# ---- the official P3D's layer names -> archlab's modules ------------------------------------


def p3d_block_ids(n: int, depth: int) -> list[str]:
    """Caffe ResNet-101/152 block names (the official P3D-199's): res2 and res5 a, b, c...;
    res3 and res4 a, b1, b2..."""
    if n in (2, 5):
        return [chr(ord("a") + j) for j in range(depth)]
    return ["a"] + [f"b{j}" for j in range(1, depth)]


def p3d_layer_map(genome: Genome) -> dict[str, tuple[str, str]]:
    """Caffe layer name -> (archlab module path, "conv" | "bn" | "fc") for an official-P3D
    genome (4 stages of A/B/C/2 bottlenecks, stride on the first 1x1x1). The fc layer is
    found by type, not name (fc_kinetics, fc_sports1m...), under the key ``"<fc>"``."""
    out: dict[str, tuple[str, str]] = {}

    def conv_bn(name: str, module: str) -> None:
        out[name] = (f"{module}.0", "conv")
        out["bn" + name[3:] if name.startswith("res") else "bn_" + name] = (f"{module}.1", "bn")

    conv_bn("conv1", "stem")
    for si, st in enumerate(genome.stages):
        n = si + 2
        offset = 1 if st.temporal == "p" else 0  # the stage's temporal pool is module 0
        for j, (bid, letter) in enumerate(zip(p3d_block_ids(n, st.depth), st.letters)):
            pre, mod = f"res{n}{bid}", f"stages.{si}.{j + offset}"
            if j == 0:
                conv_bn(f"{pre}_branch1", f"{mod}.shortcut")
            conv_bn(f"{pre}_branch2a", f"{mod}.transform.a")
            conv_bn(f"{pre}_branch2b", f"{mod}.transform.b.s")
            if letter in "ABC":
                conv_bn(f"{pre}_branch2b_t", f"{mod}.transform.b.t")
            conv_bn(f"{pre}_branch2c", f"{mod}.transform.c")
    out["<fc>"] = ("fc", "fc")
    return out


def _bn_tensors(layer: CaffeLayer, by_top: dict[str, CaffeLayer], where: str) -> list[torch.Tensor]:
    """(weight, bias, running_mean, running_var) of a BN or BatchNorm(+Scale) layer."""
    if layer.type == "BN" and len(layer.blobs) == 4:
        scale, shift, mean, var = (b.reshape(-1) for b in layer.blobs)
        return [scale, shift, mean, var]
    if layer.type == "BatchNorm" and len(layer.blobs) == 3:
        f = float(layer.blobs[2].reshape(-1)[0])
        f = 0.0 if f == 0 else 1.0 / f
        mean, var = layer.blobs[0].reshape(-1) * f, layer.blobs[1].reshape(-1) * f
        scale = by_top.get(layer.tops[0]) if layer.tops else None
        if scale is None or scale.type != "Scale" or len(scale.blobs) != 2:
            raise UserError(f"{where}: BatchNorm layer {layer.name} has no Scale layer (gamma, beta) after it")
        return [scale.blobs[0].reshape(-1), scale.blobs[1].reshape(-1), mean, var]
    raise UserError(
        f"{where}: layer {layer.name} is {layer.type} with {len(layer.blobs)} blobs, "
        f"not a BN (4 blobs) or BatchNorm (3 blobs) layer"
    )


def p3d_state_dict(
    genome: Genome, layers: list[CaffeLayer], reference: dict[str, torch.Tensor], where: str = "caffemodel"
) -> dict[str, torch.Tensor]:
    """archlab's state_dict for ``genome`` from Caffe layers, matched by layer name; every
    tensor checked against ``reference`` (the built network's state_dict) for shape. Missing
    layers, extra layers with weights and shape mismatches are one UserError each."""
    named = {layer.name: layer for layer in layers}
    # A Scale layer that follows a BatchNorm in place shares its top; look it up by bottom.
    by_top = {layer.bottoms[0]: layer for layer in layers if layer.type == "Scale" and layer.bottoms}
    fcs = [layer for layer in layers if layer.type == "InnerProduct"]
    used: set[str] = set()
    sd: dict[str, torch.Tensor] = {}

    def put(key: str, t: torch.Tensor, caffe: str) -> None:
        want = reference[key]
        if t.numel() != want.numel() or [d for d in t.shape if d != 1] != [d for d in want.shape if d != 1]:
            raise UserError(
                f"{where}: layer {caffe} has shape {list(t.shape)}, genome '{genome}' needs "
                f"{list(want.shape)} for {key}"
            )
        sd[key] = t.reshape(want.shape).to(want.dtype)

    for cname, (module, kind) in p3d_layer_map(genome).items():
        if kind == "fc":
            if len(fcs) != 1 or len(fcs[0].blobs) != 2:
                raise UserError(f"{where}: expected one InnerProduct layer (weight, bias), found {len(fcs)}")
            used.add(fcs[0].name)
            put("fc.weight", fcs[0].blobs[0], fcs[0].name)
            put("fc.bias", fcs[0].blobs[1], fcs[0].name)
            continue
        layer = named.get(cname)
        if layer is None:
            raise UserError(
                f"{where}: layer {cname} is missing: not a caffemodel of genome '{genome}' (or a truncated one)"
            )
        used.add(cname)
        if kind == "conv":
            if layer.type != "Convolution" or len(layer.blobs) != 1:
                raise UserError(
                    f"{where}: layer {cname} should be a bias-free Convolution, "
                    f"is {layer.type} with {len(layer.blobs)} blobs"
                )
            put(f"{module}.weight", layer.blobs[0], cname)
        else:
            w, b, mean, var = _bn_tensors(layer, by_top, where)
            if layer.type == "BatchNorm":
                used.add(by_top[layer.tops[0]].name)
            for suffix, t in zip(("weight", "bias", "running_mean", "running_var"), (w, b, mean, var)):
                put(f"{module}.{suffix}", t, cname)
            if f"{module}.num_batches_tracked" in reference:
                sd[f"{module}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    extra = [layer.name for layer in layers if layer.blobs and layer.name not in used]
    if extra:
        raise UserError(
            f"{where}: {len(extra)} layers with weights do not belong to genome '{genome}' "
            f"(e.g. {extra[0]}): another network's caffemodel?"
        )
    missing = [k for k in reference if k not in sd]
    if missing:
        raise UserError(f"{where}: no weights for {len(missing)} of archlab's tensors (e.g. {missing[0]})")
    return sd


def import_p3d(genome: Genome, path: str | Path) -> tuple[Genome, dict[str, torch.Tensor]]:
    """Read an official P3D caffemodel into (genome with the file's class count, state_dict)."""
    from .builder import VideoNet

    layers = read_caffemodel(path)
    fcs = [layer for layer in layers if layer.type == "InnerProduct" and layer.blobs]
    if len(fcs) == 1:
        genome = genome.with_(classes=int(fcs[0].blobs[0].shape[0]))
    with torch.device("meta"):
        reference = VideoNet(genome).state_dict()
    return genome, p3d_state_dict(genome, layers, reference, where=str(path))
