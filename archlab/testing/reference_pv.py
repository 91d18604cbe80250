"""pytorchvideo-style reference networks (CSN, Slow, R(2+1)D-50, TSM, X3D): the test oracle of
the family presets (csn_r101, slow_r50, r2plus1d_r50, tsm_r50, x3d_s/m/l), written the way
pytorchvideo 0.1.5's builders lay them out (conv_a/conv_b/conv_c, branch1), not from archlab's
registry. Parameters are registered in archlab's order, so ``reference.load_reference_weights``
maps state dicts position by position.

A module apart from ``reference.py`` so each stays one concept and under the size rule; an
oracle, not product code: nothing ``archlab`` runs imports it (tests/test_imports.py).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _module(**children: nn.Module | None) -> nn.Module:
    """A bare container whose children are registered in the order given (the key names)."""
    m = nn.Module()
    for name, child in children.items():
        if child is not None:
            m.add_module(name, child)
    return m


class RefPVBottleneck(nn.Module):
    """One residual bottleneck as pytorchvideo's create_res_block builds it, with its key names
    (``branch2.conv_a/norm_a/conv_b/norm_b/conv_c/norm_c``, ``branch1_conv``/``branch1_norm``),
    in its variants: ``csn`` depthwise 3x3x3; ``2d`` / ``slow`` 1x3x3 (slow: conv_a 3x1x1);
    ``r2p1d`` conv_b = Conv2plus1d (conv_t 3x1x1, norm, conv_xy 1x3x3); ``x3d`` depthwise
    3x3x3, norm_b = (BN, optional squeeze-excitation ``block.0/block.2``) + swish (branch1
    normalised only when the channels change); ``tsm`` the 2D block with TSM's shift in front.
    Stride (t, s) on conv_b. Parameters registered in archlab's order (branch2, then branch1;
    pytorchvideo registers branch1 first, which changes no key name)."""

    def __init__(self, kind: str, cin: int, inner: int, cout: int, t: int, s: int, se: bool = False):
        super().__init__()
        self.kind = kind
        ka = (3, 1, 1) if kind == "slow" else (1, 1, 1)
        conv_b: nn.Module
        if kind == "r2p1d":
            conv_b = _module(
                conv_t=nn.Conv3d(inner, inner, (3, 1, 1), (t, 1, 1), (1, 0, 0), bias=False),
                norm=nn.BatchNorm3d(inner),
                conv_xy=nn.Conv3d(inner, inner, (1, 3, 3), (1, s, s), (0, 1, 1), bias=False),
            )
        elif kind in ("csn", "x3d"):
            conv_b = nn.Conv3d(inner, inner, 3, (t, s, s), 1, groups=inner, bias=False)
        else:
            conv_b = nn.Conv3d(inner, inner, (1, 3, 3), (t, s, s), (0, 1, 1), bias=False)
        norm_b: nn.Module = nn.BatchNorm3d(inner)
        if kind == "x3d":
            seq: list[nn.Module] = [norm_b]
            if se:  # pytorchvideo round_width(inner, 0.0625): a multiple of 8, at least 8
                r = max(8, int(inner * 0.0625 + 4) // 8 * 8)
                r = r + 8 if r < 0.9 * inner * 0.0625 else r
                seq.append(_module(block=nn.Sequential(nn.Conv3d(inner, r, 1), nn.ReLU(), nn.Conv3d(r, inner, 1))))
            norm_b = nn.Sequential(*seq)
        self.branch2 = _module(
            conv_a=nn.Conv3d(cin, inner, ka, padding=tuple(k // 2 for k in ka), bias=False),
            norm_a=nn.BatchNorm3d(inner),
            conv_b=conv_b,
            norm_b=norm_b,
            conv_c=nn.Conv3d(inner, cout, 1, bias=False),
            norm_c=nn.BatchNorm3d(cout),
        )
        self.branch1_conv = self.branch1_norm = None
        if cin != cout or (t, s) != (1, 1):
            self.branch1_conv = nn.Conv3d(cin, cout, 1, (t, s, s), bias=False)
            if kind != "x3d" or cin != cout:
                self.branch1_norm = nn.BatchNorm3d(cout)

    @staticmethod
    def shift(x: torch.Tensor) -> torch.Tensor:
        f, out = x.shape[1] // 8, torch.zeros_like(x)
        out[:, :f, :-1] = x[:, :f, 1:]  # towards the past
        out[:, f : 2 * f, 1:] = x[:, f : 2 * f, :-1]  # towards the future
        out[:, 2 * f :] = x[:, 2 * f :]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b2 = self.branch2
        a = F.relu(b2.norm_a(b2.conv_a(self.shift(x) if self.kind == "tsm" else x)))
        if self.kind == "r2p1d":
            b = b2.norm_b(b2.conv_b.conv_xy(F.relu(b2.conv_b.norm(b2.conv_b.conv_t(a)))))
        elif self.kind == "x3d":
            b = b2.norm_b[0](b2.conv_b(a))
            if len(b2.norm_b) > 1:
                se = b2.norm_b[1].block
                b = b * torch.sigmoid(se(b.mean(dim=(2, 3, 4), keepdim=True)))
        else:
            b = b2.norm_b(b2.conv_b(a))
        b = F.silu(b) if self.kind == "x3d" else F.relu(b)
        res = x
        if self.branch1_conv is not None:
            res = self.branch1_conv(x)
            res = res if self.branch1_norm is None else self.branch1_norm(res)
        return F.relu(b2.norm_c(b2.conv_c(b)) + res)


# pytorchvideo 0.1.5's hub models, as its builders configure them: block kind per stage,
# depths, stem, stem pool, spatial and temporal stride per stage (on conv_b), widths.
PV_MODELS: dict[str, dict[str, Any]] = {
    "csn_r101": dict(
        kinds=("csn",) * 4, depths=(3, 4, 23, 3), stem="3d", pool=True, s=(1, 2, 2, 2), t=(1, 2, 2, 2), dropout=0.0
    ),
    "slow_r50": dict(
        kinds=("2d", "2d", "slow", "slow"), depths=(3, 4, 6, 3), stem="2d", pool=True, s=(1, 2, 2, 2), t=(1, 1, 1, 1)
    ),
    "r2plus1d_r50": dict(
        kinds=("r2p1d",) * 4, depths=(3, 4, 6, 3), stem="2d", pool=False, s=(2, 2, 2, 2), t=(1, 1, 2, 2)
    ),
    "tsm_r50": dict(kinds=("tsm",) * 4, depths=(3, 4, 6, 3), stem="2d", pool=True, s=(1, 2, 2, 2), t=(1, 1, 1, 1)),
    "x3d_s": dict(kinds=("x3d",) * 4, depths=(3, 5, 11, 7), stem="x3d", pool=False, s=(2, 2, 2, 2), t=(1, 1, 1, 1)),
    "x3d_l": dict(kinds=("x3d",) * 4, depths=(5, 10, 25, 15), stem="x3d", pool=False, s=(2, 2, 2, 2), t=(1, 1, 1, 1)),
}
PV_MODELS["x3d_m"] = PV_MODELS["x3d_s"]


class RefPVNet(nn.Module):
    """A pytorchvideo-style video ResNet (``PV_MODELS``) with pytorchvideo's key names:
    ``blocks.0`` the stem (``conv``/``norm``; X3D: ``conv.conv_t`` 1x3x3, ``conv.conv_xy``
    depthwise 5x1x1), ``blocks.1-4`` the stages (``res_blocks``), ``blocks.5`` the head
    (``proj``; X3D: ``pool.pre_conv`` 1x1x1 to 432 + ``pre_norm`` + ReLU, average,
    ``pool.post_conv`` 1x1x1 to 2048 + ReLU, dropout, ``proj``). ResNets: global average,
    dropout, proj (the released heads pool with a fixed kernel: the same at the model's clip).
    The hub's softmax after proj (X3D, R(2+1)D-50) is left out: these are logits. ``width``
    scales the widths (X3D: its inner widths, the outputs are inner / 2.25, which at width 1 is
    54 -> 24 exactly)."""

    def __init__(self, model: str, num_classes: int = 400, width: float = 1.0):
        super().__init__()
        cfg = PV_MODELS[model]
        w = lambda c: max(1, int(round(c * width)))  # noqa: E731
        x3d = cfg["stem"] == "x3d"
        sw = w(24) if x3d else w(64)
        conv: nn.Module
        if x3d:
            conv = _module(
                conv_t=nn.Conv3d(3, sw, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False),
                conv_xy=nn.Conv3d(sw, sw, (5, 1, 1), 1, (2, 0, 0), groups=sw, bias=False),
            )
        else:
            kt = 3 if cfg["stem"] == "3d" else 1
            conv = nn.Conv3d(3, sw, (kt, 7, 7), (1, 2, 2), (kt // 2, 3, 3), bias=False)
        stem = _module(conv=conv, norm=nn.BatchNorm3d(sw))
        self.stem_pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)) if cfg["pool"] else nn.Identity()
        cin, blocks = sw, [stem]
        for i, (kind, depth) in enumerate(zip(cfg["kinds"], cfg["depths"])):
            inner = w(54 * 2**i) if x3d else w(64 * 2**i)
            cout = max(1, int(round(inner / 2.25))) if x3d else 4 * inner
            res = []
            for j in range(depth):
                t, s = (cfg["t"][i], cfg["s"][i]) if j == 0 else (1, 1)
                res.append(RefPVBottleneck(kind, cin, inner, cout, t, s, se=x3d and j % 2 == 0))
                cin = cout
            blocks.append(_module(res_blocks=nn.ModuleList(res)))
        pool = None
        if x3d:
            pool = _module(
                pre_conv=nn.Conv3d(cin, inner, 1, bias=False),
                pre_norm=nn.BatchNorm3d(inner),
                post_conv=nn.Conv3d(inner, 2048, 1, bias=False),
            )
            cin = 2048
        blocks.append(_module(pool=pool, proj=nn.Linear(cin, num_classes)))
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(cfg.get("dropout", 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem, head = self.blocks[0], self.blocks[5]
        c = stem.conv
        x = c(x) if isinstance(c, nn.Conv3d) else c.conv_xy(c.conv_t(x))
        x = self.stem_pool(F.relu(stem.norm(x)))
        for stage in self.blocks[1:5]:
            for block in stage.res_blocks:
                x = block(x)
        if hasattr(head, "pool"):
            p = head.pool
            x = F.relu(p.pre_norm(p.pre_conv(x))).mean(dim=(2, 3, 4), keepdim=True)
            x = F.relu(p.post_conv(x)).flatten(1)
        else:
            x = x.mean(dim=(2, 3, 4))
        return head.proj(self.dropout(x))
