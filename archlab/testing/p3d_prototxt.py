"""The official P3D ResNet as its Caffe deploy prototxt writes it, and a plain interpreter for it.

Written from the layer list of ZhaofanQiu/pseudo-3d-residual-networks,
``prototxt/deploy_p3d_resnet_kinetics.prototxt`` (P3D-199), NOT from archlab's builder: this
module imports nothing of archlab's model code, so a test that runs both and compares outputs
checks archlab against the official definition. What the prototxt says, layer by layer:

* ``conv1`` 1x7x7 / (1,2,2) / pad (0,3,3), ``bn_conv1``, ReLU, ``pool1`` Pooling3D MAX kernel
  (2,3,3) stride (2,2,2) pad 0 (Caffe's ceil rounding).
* res2-res4: 3D bottlenecks ``res{n}{id}_branch2a`` (1x1x1, the stage's spatial stride),
  ``_branch2b`` (1x3x3 pad (0,1,1)), ``_branch2b_t`` (3x1x1 pad (1,0,0)), ``_branch2c``
  (1x1x1 to 4p), projection ``_branch1`` on a stage's first block; BN layer ``bn{n}{id}_...``
  after every conv. The block type is the GLOBAL 3D-block index mod 3: A (T reads the ReLU'd
  S), B (T reads branch2a; Eltwise ``_branch2b_st`` coeff 1, 1), C (T reads the ReLU'd S;
  Eltwise coeff 0.5, 0.5). Block ids: a, b, c in res2 and res5; a, b1, b2... in res3, res4.
* ``3a_pool``, ``4a_pool``, ``res5a_pool``: Pooling3D MAX temporal kernel 2 stride 2.
* ``res5a_reshape`` drops the (collapsed) time axis; res5 is 2D (1x1 stride 2, 3x3 pad 1, 1x1).
* ``pool5`` global AVE, ``pool5_drop`` (identity at test time), ``fc_kinetics`` InnerProduct.

``run`` executes such a layer list on named blobs (``{layer: [blob, ...]}``, Caffe's shapes:
BN blobs (1,C,1,1) scale, shift, mean, variance; conv weights (out, in, [t,] h, w)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

BN_EPS = 1e-5  # the BN layer's default eps in the Caffe forks P3D was trained with


@dataclass
class Layer:
    """One prototxt layer: what it computes and on which blobs (only what the deploy net uses)."""

    name: str
    type: str  # Convolution BN ReLU Pooling3D Eltwise Reshape Pooling Dropout InnerProduct
    bottoms: list[str]
    tops: list[str]
    num_output: int = 0
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    pad: tuple[int, ...] = ()
    coeff: tuple[float, ...] = ()
    extra: dict = field(default_factory=dict)


def block_ids(n: int, depth: int) -> list[str]:
    """Caffe ResNet-101/152 block names: res2 and res5 a, b, c; res3 and res4 a, b1, b2..."""
    if n in (2, 5):
        return [chr(ord("a") + j) for j in range(depth)]
    return ["a"] + [f"b{j}" for j in range(1, depth)]


def p3d_layers(
    depths: tuple[int, int, int, int] = (3, 8, 36, 3), classes: int = 400, fc_name: str = "fc_kinetics"
) -> list[Layer]:
    """The deploy prototxt's layers for P3D with these stage depths (P3D-199 by default)."""
    L: list[Layer] = []

    def conv(name: str, bottom: str, cout: int, k: tuple[int, ...], s: tuple[int, ...], p: tuple[int, ...]) -> str:
        L.append(Layer(name, "Convolution", [bottom], [name], cout, k, s, p))
        bn_name = "bn" + name[3:] if name.startswith("res") else "bn_" + name
        L.append(Layer(bn_name, "BN", [name], [bn_name]))
        return bn_name

    def relu(name: str, blob: str) -> str:
        L.append(Layer(name, "ReLU", [blob], [blob]))  # in place, as in the prototxt
        return blob

    x = relu("conv1_relu", conv("conv1", "data", 64, (1, 7, 7), (1, 2, 2), (0, 3, 3)))
    L.append(Layer("pool1", "Pooling3D", [x], ["pool1"], kernel=(2, 3, 3), stride=(2, 2, 2), pad=(0, 0, 0)))
    x, k3d = "pool1", 0
    for si, depth in enumerate(depths):
        n, planes = si + 2, 64 * 2**si
        two_d = n == 5
        if si > 0:
            pname = "res5a_pool" if two_d else f"{n}a_pool"
            L.append(Layer(pname, "Pooling3D", [x], [pname], kernel=(2, 1, 1), stride=(2, 1, 1), pad=(0, 0, 0)))
            x = pname
        if two_d:
            L.append(Layer("res5a_reshape", "Reshape", [x], ["res5a_reshape"]))
            x = "res5a_reshape"
        for j, bid in enumerate(block_ids(n, depth)):
            s = 2 if (j == 0 and si > 0) else 1
            pre = f"res{n}{bid}"
            k1, st = ((1,), (s,)) if two_d else ((1, 1, 1), (1, s, s))
            p0 = (0,) if two_d else (0, 0, 0)
            short = conv(f"{pre}_branch1", x, 4 * planes, k1, st, p0) if j == 0 else x
            a = relu(f"{pre}_branch2a_relu", conv(f"{pre}_branch2a", x, planes, k1, st, p0))
            if two_d:
                mid = relu(f"{pre}_branch2b_relu", conv(f"{pre}_branch2b", a, planes, (3,), (1,), (1,)))
            else:
                kind = "ABC"[k3d % 3]
                k3d += 1
                sb = relu(f"{pre}_branch2b_relu", conv(f"{pre}_branch2b", a, planes, (1, 3, 3), (1, 1, 1), (0, 1, 1)))
                t_in = a if kind == "B" else sb
                t = conv(f"{pre}_branch2b_t", t_in, planes, (3, 1, 1), (1, 1, 1), (1, 0, 0))
                if kind == "A":
                    mid = relu(f"{pre}_branch2b_t_relu", t)
                else:
                    st_name = f"{pre}_branch2b_st"
                    L.append(
                        Layer(st_name, "Eltwise", [sb, t], [st_name], coeff=(1.0, 1.0) if kind == "B" else (0.5, 0.5))
                    )
                    mid = relu(f"{st_name}_relu", st_name)
            c = conv(f"{pre}_branch2c", mid, 4 * planes, (1,) if two_d else (1, 1, 1), (1,) if two_d else (1, 1, 1), p0)
            L.append(Layer(pre, "Eltwise", [short, c], [pre]))
            x = relu(f"{pre}_relu", pre)
    L.append(Layer("pool5", "Pooling", [x], ["pool5"], extra={"pool": "AVE", "global_pooling": True}))
    L.append(Layer("pool5_drop", "Dropout", ["pool5"], ["pool5"]))
    L.append(Layer(fc_name, "InnerProduct", ["pool5"], [fc_name], num_output=classes))
    return L


def blob_shapes(layers: list[Layer], cin: int = 3) -> dict[str, list[tuple[int, ...]]]:
    """Caffe's blob shapes of every layer with weights (convs: out, in, kernel...; BN: four
    (1,C,1,1); InnerProduct: (out, in) and (out,))."""
    channels = {"data": cin}
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for layer in layers:
        c = channels[layer.bottoms[0]]
        if layer.type == "Convolution":
            kernel = layer.kernel * 2 if len(layer.kernel) == 1 else layer.kernel  # a 2D conv's kernel_size: k -> k x k
            shapes[layer.name] = [(layer.num_output, c, *kernel)]
            c = layer.num_output
        elif layer.type == "BN":
            shapes[layer.name] = [(1, c, 1, 1)] * 4
        elif layer.type == "InnerProduct":
            shapes[layer.name] = [(layer.num_output, c), (layer.num_output,)]
            c = layer.num_output
        for t in layer.tops:
            channels[t] = c
    return shapes


def random_blobs(
    layers: list[Layer], seed: int = 0, dtype: torch.dtype = torch.float32
) -> dict[str, list[torch.Tensor]]:
    """Weights for every layer, non-trivial BN statistics (so no mapping error hides behind
    BN's identity); conv weights scaled ~1/sqrt(fan-in) so activations stay O(1) through 199 layers."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list[torch.Tensor]] = {}
    for name, shapes in blob_shapes(layers).items():
        if len(shapes) == 4:  # BN: scale, shift, mean, variance
            c = shapes[0]
            out[name] = [
                torch.rand(c, generator=g) * 0.5 + 0.5,
                torch.randn(c, generator=g) * 0.1,
                torch.randn(c, generator=g) * 0.1,
                torch.rand(c, generator=g) + 0.5,
            ]
        else:
            w = shapes[0]
            fan_in = 1
            for d in w[1:]:
                fan_in *= d
            out[name] = [torch.randn(w, generator=g) / fan_in**0.5] + [
                torch.randn(s, generator=g) * 0.1 for s in shapes[1:]
            ]
    return {k: [b.to(dtype) for b in v] for k, v in out.items()}


def run(layers: list[Layer], blobs: dict[str, list[torch.Tensor]], data: torch.Tensor) -> torch.Tensor:
    """Forward the layer list on ``data`` (N, C, T, H, W) with Caffe's semantics; returns the
    last layer's top. Every conv goes through conv3d (a 2D blob is a 3D one with T = 1)."""
    env: dict[str, torch.Tensor] = {"data": data}
    for layer in layers:
        x = env[layer.bottoms[0]]
        if layer.type == "Convolution":
            (w,) = blobs[layer.name]
            if x.dim() == 4:  # a 2D conv after the reshape: (N,C,H,W) -> (N,C,1,H,W) and back
                y = F.conv3d(
                    x.unsqueeze(2),
                    w.reshape(*w.shape[:2], 1, *w.shape[2:]),
                    None,
                    (1, *layer.stride * 2),
                    (0, *layer.pad * 2),
                ).squeeze(2)
            else:
                y = F.conv3d(x, w, None, layer.stride, layer.pad)
        elif layer.type == "BN":
            scale, shift, mean, var = (b.reshape(-1) for b in blobs[layer.name])
            y = F.batch_norm(x, mean, var, scale, shift, training=False, eps=BN_EPS)
        elif layer.type == "ReLU":
            y = torch.relu(x)
        elif layer.type == "Pooling3D":  # Caffe: ceil rounding
            y = F.max_pool3d(x, layer.kernel, layer.stride, layer.pad, ceil_mode=True)
        elif layer.type == "Eltwise":
            a, b = env[layer.bottoms[0]], env[layer.bottoms[1]]
            y = a + b if not layer.coeff else layer.coeff[0] * a + layer.coeff[1] * b
        elif layer.type == "Reshape":
            if x.shape[2] != 1:
                raise ValueError(f"{layer.name}: time must be collapsed to 1 before res5, got T={x.shape[2]}")
            y = x.squeeze(2)
        elif layer.type == "Pooling":  # global average
            y = F.adaptive_avg_pool2d(x, 1)
        elif layer.type == "Dropout":
            y = x
        elif layer.type == "InnerProduct":
            w, b = blobs[layer.name]
            y = F.linear(x.flatten(1), w, b)
        else:
            raise ValueError(f"layer type {layer.type} is not part of the P3D deploy net")
        env[layer.tops[0]] = y
    return env[layers[-1].tops[0]]
