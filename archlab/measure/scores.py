"""Scores that might rank genomes: one from training, one from the untrained network.

* ``training_speed``: Ru et al., "Speedy Performance Estimation for Neural Architecture
  Search" (NeurIPS 2021): the sum of training losses over the last E epochs (TSE-E). A
  network that fits faster is usually the one that ends better, and the sum averages away
  the noise of one validation pass. Lower is better; ``rank_value`` flips it.
* ``synflow``: Tanaka et al., "Pruning neural networks without any data by iteratively
  conserving synaptic flow" (NeurIPS 2020), as a NAS zero-cost score (Abdelfattah et al.,
  "Zero-Cost Proxies for Lightweight NAS", ICLR 2021): every parameter made positive, an
  all-ones input, R = sum of the outputs, score = sum over parameters of |theta * dR/dtheta|.
  Computed in double precision (products of many layers overflow float32 on deep nets) with
  BatchNorm replaced by identity (as the zero-cost code does with ``bn=False``: a BN layer
  would rescale the all-ones signal by batch statistics of a single constant input).
"""

from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import nn

from ..model.genome import Genome

#: Which way each score points: +1 = higher predicts a better genome, -1 = lower does.
DIRECTION = {"val_top1": 1, "val_loss": -1, "training_speed": -1, "synflow": 1, "params": 1, "gmacs": 1}


def training_speed(train_losses: Sequence[float], last: int) -> float:
    """Sum of the per-epoch mean training losses of the last ``last`` epochs (TSE-E; lower
    is better). With fewer epochs than ``last`` it sums those there are."""
    if last < 1:
        raise ValueError(f"last={last} must be at least 1")
    if not train_losses:
        raise ValueError("training_speed needs at least one epoch's training loss")
    return float(sum(train_losses[-last:]))


def rank_value(name: str, value: float) -> float:
    """``value`` turned so that higher is better for every score in ``DIRECTION``."""
    return DIRECTION[name] * value


def _strip_bn(model: nn.Module) -> None:
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, nn.Identity())
        else:
            _strip_bn(child)


def synflow(model: nn.Module, clip: tuple[int, int, int]) -> float:
    """The synflow score of ``model`` (left untouched: a copy is scored) for one clip
    ``(T, H, W)`` of 3 channels; see the module docstring. Returns ``inf`` if the double
    product still overflows."""
    net = copy.deepcopy(model).double().eval()
    _strip_bn(net)
    for m in net.modules():  # dropout would zero parts of the deterministic signal
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    x = torch.ones((1, 3, *clip), dtype=torch.float64)
    torch.sum(net(x)).backward()
    total = 0.0
    for p in net.parameters():
        if p.grad is not None:
            total += float((p.detach() * p.grad).abs().sum())
    return total if math.isfinite(total) else math.inf


def synflow_of(genome: Genome, clip: tuple[int, int, int], seed: int = 0) -> float:
    """``synflow`` of ``genome``'s freshly initialised network (``seed`` fixes the init; the
    score depends on the weights' magnitudes, so it is a property of genome + init)."""
    from ..model.builder import build

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(genome)
    return synflow(model, clip)
