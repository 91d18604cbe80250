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


class RefPVBottleneck(nn.Module):
    """One residual bottleneck as pytorchvideo's create_res_block builds it (conv_a, conv_b,
    conv_c, each normalised; branch1 projection), in its variants: ``csn`` depthwise 3x3x3;
    ``2d`` / ``slow`` 1x3x3 (slow: conv_a 3x1x1); ``r2p1d`` 3x1x1 then 1x3x3; ``x3d``
    depthwise 3x3x3 + optional squeeze-excitation + swish (branch1 normalised only when the
    channels change); ``tsm`` the 2D block with TSM's shift in front. Stride (t, s) on conv_b.
    Parameters registered in archlab's order (residual branch, then branch1)."""

    def __init__(self, kind: str, cin: int, inner: int, cout: int, t: int, s: int, se: bool = False):
        super().__init__()
        self.kind = kind
        ka = (3, 1, 1) if kind == "slow" else (1, 1, 1)
        self.conv_a = nn.Conv3d(cin, inner, ka, padding=tuple(k // 2 for k in ka), bias=False)
        self.norm_a = nn.BatchNorm3d(inner)
        if kind == "r2p1d":
            self.conv_b_t = nn.Conv3d(inner, inner, (3, 1, 1), (t, 1, 1), (1, 0, 0), bias=False)
            self.norm_b_t = nn.BatchNorm3d(inner)
            self.conv_b = nn.Conv3d(inner, inner, (1, 3, 3), (1, s, s), (0, 1, 1), bias=False)
        elif kind in ("csn", "x3d"):
            self.conv_b = nn.Conv3d(inner, inner, 3, (t, s, s), 1, groups=inner, bias=False)
        else:
            self.conv_b = nn.Conv3d(inner, inner, (1, 3, 3), (t, s, s), (0, 1, 1), bias=False)
        self.norm_b = nn.BatchNorm3d(inner)
        self.se = None
        if se:  # pytorchvideo round_width(inner, 0.0625): a multiple of 8, at least 8
            r = max(8, int(inner * 0.0625 + 4) // 8 * 8)
            r = r + 8 if r < 0.9 * inner * 0.0625 else r
            self.se = nn.Sequential(nn.Conv3d(inner, r, 1), nn.Conv3d(r, inner, 1))
        self.conv_c = nn.Conv3d(inner, cout, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(cout)
        self.branch1 = None
        if cin != cout or (t, s) != (1, 1):
            norm = [nn.BatchNorm3d(cout)] if kind != "x3d" or cin != cout else []
            self.branch1 = nn.Sequential(nn.Conv3d(cin, cout, 1, (t, s, s), bias=False), *norm)

    @staticmethod
    def shift(x: torch.Tensor) -> torch.Tensor:
        f, out = x.shape[1] // 8, torch.zeros_like(x)
        out[:, :f, :-1] = x[:, :f, 1:]  # towards the past
        out[:, f : 2 * f, 1:] = x[:, f : 2 * f, :-1]  # towards the future
        out[:, 2 * f :] = x[:, 2 * f :]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.norm_a(self.conv_a(self.shift(x) if self.kind == "tsm" else x)))
        if self.kind == "r2p1d":
            a = F.relu(self.norm_b_t(self.conv_b_t(a)))
        b = self.norm_b(self.conv_b(a))
        if self.se is not None:
            b = b * torch.sigmoid(self.se[1](F.relu(self.se[0](b.mean(dim=(2, 3, 4), keepdim=True)))))
        b = F.silu(b) if self.kind == "x3d" else F.relu(b)
        res = x if self.branch1 is None else self.branch1(x)
        return F.relu(self.norm_c(self.conv_c(b)) + res)


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
    """A pytorchvideo-style video ResNet (``PV_MODELS``): stem, four stages of RefPVBottleneck,
    head (ResNets: global average, dropout, fc; X3D: 1x1x1 conv to 432 + BN + ReLU, average,
    2048-wide linear + ReLU, dropout, fc). ``width`` scales the widths (X3D: its inner widths,
    the outputs are inner / 2.25, which at width 1 is 54 -> 24 exactly)."""

    def __init__(self, model: str, num_classes: int = 400, width: float = 1.0):
        super().__init__()
        cfg = PV_MODELS[model]
        w = lambda c: max(1, int(round(c * width)))  # noqa: E731
        x3d = cfg["stem"] == "x3d"
        sw = w(24) if x3d else w(64)
        if x3d:
            self.stem = nn.Sequential(
                nn.Conv3d(3, sw, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False),
                nn.Conv3d(sw, sw, (5, 1, 1), 1, (2, 0, 0), groups=sw, bias=False),
                nn.BatchNorm3d(sw),
                nn.ReLU(inplace=True),
            )
        else:
            kt = 3 if cfg["stem"] == "3d" else 1
            self.stem = nn.Sequential(
                nn.Conv3d(3, sw, (kt, 7, 7), (1, 2, 2), (kt // 2, 3, 3), bias=False),
                nn.BatchNorm3d(sw),
                nn.ReLU(inplace=True),
            )
        self.stem_pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)) if cfg["pool"] else nn.Identity()
        cin, stages = sw, []
        for i, (kind, depth) in enumerate(zip(cfg["kinds"], cfg["depths"])):
            inner = w(54 * 2**i) if x3d else w(64 * 2**i)
            cout = max(1, int(round(inner / 2.25))) if x3d else 4 * inner
            blocks = []
            for j in range(depth):
                t, s = (cfg["t"][i], cfg["s"][i]) if j == 0 else (1, 1)
                blocks.append(RefPVBottleneck(kind, cin, inner, cout, t, s, se=x3d and j % 2 == 0))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head_pre = None
        if x3d:
            self.head_pre = nn.Sequential(nn.Conv3d(cin, inner, 1, bias=False), nn.BatchNorm3d(inner), nn.ReLU())
            self.head_post = nn.Linear(inner, 2048, bias=False)
            cin = 2048
        self.dropout = nn.Dropout(cfg.get("dropout", 0.5))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem_pool(self.stem(x)))
        if self.head_pre is not None:
            x = F.relu(self.head_post(self.head_pre(x).mean(dim=(2, 3, 4))))
        else:
            x = x.mean(dim=(2, 3, 4))
        return self.fc(self.dropout(x))
