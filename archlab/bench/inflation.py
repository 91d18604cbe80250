"""``python -m archlab.bench.inflation``: does starting from an inflated 2D network help on the
synthetic order task? The closest this CPU gets to P3D's regime (ImageNet -> UCF101); it is not
UCF101.

A 2D network trained on the order task stays at chance (it cannot see order), so it has
nothing to pass on. It is trained first on a task a 2D network can learn from the same kind of
clips: one moving object per clip, labelled by its shape (the generator's ``SHAPES``; the
texture tells the moving object from the static distractor shape). Its weights, written with
torchvision's key names, are inflated (``archlab.model.inflate``) into P3D-A, -B, -C and the
A->B->C cycle on the same skeleton, which are fine-tuned on the order task; the same genomes
train from scratch, same recipe and epochs. Per run: val top-1 per epoch, the take-off epoch
(first epoch above chance + 0.1) and the final top-1. Results: ``inflation.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.synthetic import SHAPES, SyntheticMotion
from ..model.genome import parse
from ..model.inflate import inflate_imagenet
from ..training.recipe import ProxyRecipe
from ..training.trainer import TrainConfig, train

SKELETON = "stem=2d/s sw=16 w=16,32 sp=mid t=-,-"
GENOMES = {"P3D-A": "AA|AA", "P3D-B": "BB|BB", "P3D-C": "CC|CC", "A->B->C": "AB|CA"}


class ShapeClips(SyntheticMotion):
    """The synthetic clips with one moving object, labelled by its shape (4 classes); frames in
    path order. A 2D network can read the label off any frame."""

    def __init__(self, split: str, **kw: Any):
        self._shapes: list[int] = []
        super().__init__(split, objects=1, num_classes=2, **kw)
        self.classes = list(SHAPES)
        self.labels = list(self._shapes)

    def _draw_object(self, rng: np.random.Generator, *args: Any, **kw: Any) -> np.ndarray:
        peek = np.random.default_rng()
        peek.bit_generator.state = rng.bit_generator.state
        peek.integers(len(self.paths))  # the path, then the shape: _draw_object's first draws
        self._shapes.append(int(peek.integers(len(SHAPES))))
        return super()._draw_object(rng, *args, **kw)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._states[index], self.labels[index]


def torchvision_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An archlab all-``2`` bottleneck genome's state dict (no temporal pools) as a torchvision
    ResNet's: what --imagenet reads."""
    out = {}
    rename = {"transform.a.0": "conv1", "transform.a.1": "bn1", "transform.b.s.0": "conv2"}
    rename |= {"transform.b.s.1": "bn2", "transform.c.0": "conv3", "transform.c.1": "bn3"}
    rename |= {"shortcut.0": "downsample.0", "shortcut.1": "downsample.1"}
    for k, v in sd.items():
        module, _, param = k.rpartition(".")
        if module == "stem.0":
            name = "conv1"
        elif module == "stem.1":
            name = "bn1"
        elif module == "fc":
            name = "fc"
        else:
            _, i, j, rest = module.split(".", 3)
            name = f"layer{int(i) + 1}.{j}.{rename[rest]}"
        out[f"{name}.{param}"] = v.squeeze(2) if v.dim() == 5 else v
    return out


def history(result: Any) -> list[float]:
    return [round(h.val_top1, 4) for h in result.history]


def run_inflation(*, epochs: int, seeds: list[int], pre_epochs: int, out_dir: str) -> dict[str, Any]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(recipe=ProxyRecipe(epochs=pre_epochs, object_scale=1.4))
    t0 = time.perf_counter()
    pre_train, pre_val = (
        ShapeClips("train", n_clips=1200, frames=8, size=32, object_scale=1.4),
        ShapeClips("val", n_clips=300, frames=8, size=32, object_scale=1.4),
    )
    g2d = parse(f"22|22 {SKELETON} cls=4")
    pre = train(g2d, pre_train, pre_val, cfg, out_dir=out / "pretrain")
    sd2d = torchvision_names(torch.load(out / "pretrain" / "best.pt", weights_only=True)["model"])
    results: dict[str, Any] = {
        "pretrain": {"genome": str(g2d), "val_top1": history(pre), "time_s": round(time.perf_counter() - t0, 1)},
        "runs": [],
    }
    print(f"2D pretrain on shapes: val top-1 {history(pre)}", flush=True)
    recipe = ProxyRecipe(epochs=epochs)
    opts = recipe.dataset_opts("synthetic", "train")
    train_set = SyntheticMotion("train", **opts)
    val_set = SyntheticMotion("val", **recipe.dataset_opts("synthetic", "val"))
    chance = 1 / len(train_set.classes)
    for name, letters in GENOMES.items():
        g = parse(f"{letters} {SKELETON} cls={len(train_set.classes)}")
        for seed in seeds:
            for start in ("scratch", "inflated"):
                init = inflate_imagenet(g, sd2d, "pretrain")[0].state_dict() if start == "inflated" else None
                t = time.perf_counter()
                r = train(g, train_set, val_set, TrainConfig(recipe=recipe.with_(seed=seed)), init=init)
                top1 = history(r)
                takeoff = next((i + 1 for i, v in enumerate(top1) if v > chance + 0.1), None)
                row = {"genome": name, "letters": letters, "start": start, "seed": seed, "val_top1": top1}
                row |= {"takeoff_epoch": takeoff, "final": top1[-1], "time_s": round(time.perf_counter() - t, 1)}
                results["runs"].append(row)
                print(json.dumps(row), flush=True)
                (out / "inflation.json").write_text(json.dumps(results, indent=1))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m archlab.bench.inflation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=6, help="fine-tuning / scratch epochs (default 6)")
    ap.add_argument("--pre-epochs", type=int, default=4, help="2D shape-task epochs (default 4)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated recipe seeds (default 0,1)")
    ap.add_argument("--out", default="bench_results/inflation", help="results folder")
    args = ap.parse_args(argv)
    run_inflation(
        epochs=args.epochs, seeds=[int(s) for s in args.seeds.split(",")], pre_epochs=args.pre_epochs, out_dir=args.out
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
