"""The proxy's optimizers and learning-rate schedule: AdamW (fused where torch has the kernel)
or SGD with Nesterov momentum, weight decay on conv and linear weights only, a linear warm-up
then a cosine to zero. The trainer, the form checks and the optimizer bench share them."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .recipe import ProxyRecipe


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the base LR at optimizer step ``step`` (0-based): linear warm-up from
    1/warmup to 1 over ``warmup_steps``, then a cosine from 1 to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay = max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup_steps) / decay)))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights only: decaying BN scales and biases just
    fights the normalisation (and hurts small proxies most)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(model: nn.Module, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over ``param_groups``, fused where torch has a fused kernel for the model's
    device (CPU and CUDA): the per-parameter loop of the default implementation is a sizeable
    share of a small proxy's training step on a CPU (docs/notebook/benchmarks.md)."""
    devices = {p.device.type for p in model.parameters()}
    fused = bool(devices) and devices <= {"cpu", "cuda"}
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, fused=fused or None)


def make_optimizer(model: nn.Module, recipe: ProxyRecipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        groups = param_groups(model, recipe.weight_decay)
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0)
    return adamw(model, lr=recipe.lr, weight_decay=recipe.weight_decay)
