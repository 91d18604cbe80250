"""How much of a proxy's training step is the optimizer: AdamW's per-parameter loop, its
``foreach`` form and its fused kernel, side by side on the default search's proxies.

For each proxy (the width-x0.25 proxies of three targets the default search trains, at the
recipe's batch of 8 clips of 8x32x32, 1 thread): the forward+backward time and each AdamW
form's ``step()`` time, interleaved round by round (every form sees the same machine state),
the median of ``--steps`` steps per round and the fastest round kept. Prints one row per
proxy and the whole step's ratio, loop / fused: the speed-up of a trial from the fused
kernel, less what validation and data take.

Run: ``.venv/bin/python bench/optimizer_step.py`` (about 1 minute on a 2-core VM).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from archlab.model.builder import build
from archlab.training.optim import adamw, param_groups

PROXIES = (
    "AB|CAB|222222|22 sw=16 w=16,32,64,128 drop=0.0 cls=6",
    "AB|C|A|BC sw=16 w=16,32,64,128 drop=0.0 cls=6",
    "A|B|2|2 stem=2d/none sw=8 w=8,16,32,64 drop=0.0 cls=6",
)
FORMS = ("loop", "foreach", "fused")  # "fused": the trainer's own AdamW (training.optim.adamw)


def _round(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int):
    fb, st = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        fb.append(t1 - t0)
        st.append(t2 - t1)
    return statistics.median(fb), statistics.median(st)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15, help="steps per round (default 15)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 8, 32, 32, generator=gen)
    y = torch.randint(0, 6, (8,), generator=gen)
    print(f"torch {torch.__version__}, 1 thread, batch 8x3x8x32x32; ms per step (fastest of {args.rounds} rounds)")
    print(f"{'proxy':<44} {'fwd+bwd':>8} " + " ".join(f"{k:>8}" for k in FORMS) + "  step loop/fused")
    for g in PROXIES:
        torch.manual_seed(0)
        base = build(g)
        setups = {}
        for name in FORMS:
            m = copy.deepcopy(base)
            if name == "fused":
                opt = adamw(m, lr=2e-3, weight_decay=5e-4)
            else:
                opt = torch.optim.AdamW(param_groups(m, 5e-4), lr=2e-3, foreach=name == "foreach")
            setups[name] = (m, opt)
            _round(*setups[name], x, y, 3)  # warm-up: the optimizer's state exists from here on
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.rounds):
            for name, (m, opt) in setups.items():
                fb, st = _round(m, opt, x, y, args.steps)
                old = best.get(name, (float("inf"), float("inf")))
                best[name] = (min(old[0], fb), min(old[1], st))
        fwd_bwd = min(v[0] for v in best.values())
        ratio = (fwd_bwd + best["loop"][1]) / (fwd_bwd + best["fused"][1])
        print(
            f"{g[:44]:<44} {fwd_bwd * 1e3:8.1f} "
            + " ".join(f"{best[k][1] * 1e3:8.2f}" for k in FORMS)
            + f"  {ratio:.3f}x"
        )


if __name__ == "__main__":
    main()
