"""Is the data loader the bottleneck? Clips/s delivered vs clips/s a proxy training step eats.

Measured in one run, on this machine:

1. builds a UCF101-shaped tree of real XVID AVIs at UCF101's 320x240 (no download), and
   times ``prepare`` (decode + resize + write: frames/s, the figure that sizes a full
   UCF101 preparation);
2. clips/s delivered by a DataLoader with workers reading the cache (random crop + flip,
   shuffled with replacement so the tiny tree does not limit the count), by the synthetic
   generator (if ``archlab.data.synthetic`` exists) and, for reference, by on-the-fly
   decoding without a cache;
3. clips/s of a proxy training step (forward + backward + SGD) of a small P3D net at the
   same clip size, on an in-memory batch; and the CPU time per clip of loading and of
   training (CPU time, unlike wall time, barely moves when other processes share the machine);
4. end to end: the same training step fed by the cache loader, whose workers share the
   CPU with training (on 2 cores this is the honest test).

Prints the ratios (loader clips/s / training clips/s; >= 3 means the loader is not the
bottleneck) and writes them as JSON. Run: ``.venv/bin/python bench/data_loading.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archlab.data.prepare import prepare_ucf101  # noqa: E402
from archlab.data.ucf101 import UCF101  # noqa: E402
from archlab.data.video import parse_size  # noqa: E402
from archlab.model.builder import build  # noqa: E402
from archlab.testing.ucf101 import write_tiny_ucf101  # noqa: E402


def loader_clips_per_s(ds, batch: int, workers: int, clips: int) -> float:
    """Clips/s over ``clips`` clips, after the first batch (worker start-up excluded)."""
    sampler = RandomSampler(ds, replacement=True, num_samples=clips + batch, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(
        ds, batch_size=batch, sampler=sampler, num_workers=workers, persistent_workers=False, drop_last=True
    )
    it = iter(loader)
    next(it)
    n, t0 = 0, time.perf_counter()
    for x, _ in it:
        n += x.shape[0]
    return n / (time.perf_counter() - t0)


def loader_cpu_ms_per_clip(ds, batch: int, clips: int) -> float:
    """CPU time (not wall time: robust to other processes on the machine) to fetch and
    collate one clip, in this process (no workers)."""
    sampler = RandomSampler(ds, replacement=True, num_samples=clips, generator=torch.Generator().manual_seed(2))
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=0)
    t0 = time.process_time()
    n = sum(x.shape[0] for x, _ in loader)
    return 1000 * (time.process_time() - t0) / n


def to_float(x: torch.Tensor) -> torch.Tensor:
    try:
        from archlab.data.loader import to_input

        return to_input(x, "cpu")
    except ImportError:
        return x.float().div_(255)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def train_clips_per_s(genome: str, batch: int, frames: int, crop: int, steps: int) -> tuple[float, float]:
    """(clips/s, CPU ms per clip) of forward + backward + SGD on an in-memory batch."""
    torch.manual_seed(0)
    model = build(genome).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = to_float(torch.randint(0, 256, (batch, 3, frames, crop, crop), dtype=torch.uint8))
    y = torch.randint(0, 10, (batch,))
    for _ in range(3):
        train_step(model, opt, x, y)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        train_step(model, opt, x, y)
    return steps * batch / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / (steps * batch)


def end_to_end_clips_per_s(genome: str, ds, batch: int, workers: int, steps: int) -> float:
    """Training fed by the loader (workers and training share the CPU)."""
    torch.manual_seed(0)
    model = build(genome).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sampler = RandomSampler(
        ds, replacement=True, num_samples=(steps + 3) * batch, generator=torch.Generator().manual_seed(1)
    )
    it = iter(DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers, drop_last=True))
    for _ in range(3):
        x, y = next(it)
        train_step(model, opt, to_float(x), y % 10)
    t0 = time.perf_counter()
    n = 0
    for x, y in it:
        train_step(model, opt, to_float(x), y % 10)
        n += x.shape[0]
    return n / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genome", default="AB|CA|BC sw=16 w=16,32,64 cls=10", help="proxy network")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--crop", type=int, default=64, help="square crop = the proxy's input size")
    ap.add_argument("--cache-size", default="64x85", help="cache frame size (64x85: short side 64, C3D aspect)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clips", type=int, default=3000, help="clips timed per loader")
    ap.add_argument("--steps", type=int, default=20, help="training steps timed")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds (best kept)")
    ap.add_argument("--videos", type=int, default=3, help="videos per class and group (5 classes, 3 groups)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "data_loading.json"))
    args = ap.parse_args()
    size = parse_size(args.cache_size)
    res: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "config": vars(args),
        "load_average_before": os.getloadavg(),
    }

    with tempfile.TemporaryDirectory(prefix="archlab-bench-") as tmp:
        t0 = time.perf_counter()
        classes = [f"Class{i:02d}" for i in range(5)]
        root = write_tiny_ucf101(Path(tmp) / "ucf", classes, groups=3, clips=args.videos, frames=75, size=(240, 320))
        res["write_videos_s"] = time.perf_counter() - t0
        s = prepare_ucf101(root, Path(tmp) / "cache", size=size, workers=args.workers, progress=False)
        res["prepare"] = {
            "videos": s.decoded,
            "frames": s.frames,
            "seconds": s.seconds,
            "frames_per_s": s.frames / s.seconds,
            "bytes": s.bytes_written,
        }
        print(
            f"prepare: {s.decoded} videos 320x240 -> {args.cache_size}, {s.frames} frames in {s.seconds:.1f} s "
            f"= {s.frames / s.seconds:.0f} frames/s with {args.workers} workers"
        )

        opts = dict(frames=args.frames, size=args.crop)
        cached = UCF101(None, "train", cache=Path(tmp) / "cache", **opts)
        decoded = UCF101(root, "train", resize=size, **opts)
        res["loader_decode_clips_s"] = loader_clips_per_s(decoded, args.batch, args.workers, 8 * args.batch)
        try:
            from archlab.data.synthetic import SyntheticMotion

            synth = SyntheticMotion("train", n_clips=256, frames=args.frames, size=args.crop)
        except ImportError:
            synth = None
        # Other processes may share this machine: measure in interleaved rounds and keep each
        # figure's best round (the least disturbed), so both sides of a ratio see the same load.
        rounds: dict[str, list[float]] = {
            "train": [],
            "cache": [],
            "synthetic": [],
            "end_to_end": [],
            "train_cpu_ms": [],
            "cache_cpu_ms": [],
        }
        for _ in range(args.rounds):
            clips_s, cpu_ms = train_clips_per_s(args.genome, args.batch, args.frames, args.crop, args.steps)
            rounds["train"].append(clips_s)
            rounds["train_cpu_ms"].append(cpu_ms)
            rounds["cache_cpu_ms"].append(loader_cpu_ms_per_clip(cached, args.batch, args.clips // 2))
            rounds["cache"].append(loader_clips_per_s(cached, args.batch, args.workers, args.clips))
            if synth is not None:
                rounds["synthetic"].append(loader_clips_per_s(synth, args.batch, args.workers, args.clips))
            rounds["end_to_end"].append(
                end_to_end_clips_per_s(args.genome, cached, args.batch, args.workers, args.steps)
            )
        res["rounds"] = rounds
        res["train_clips_s"] = max(rounds["train"])
        res["loader_cache_clips_s"] = max(rounds["cache"])
        res["loader_synthetic_clips_s"] = max(rounds["synthetic"]) if rounds["synthetic"] else None
        res["end_to_end_cache_clips_s"] = max(rounds["end_to_end"])
        res["train_cpu_ms_per_clip"] = min(rounds["train_cpu_ms"])
        res["loader_cache_cpu_ms_per_clip"] = min(rounds["cache_cpu_ms"])
        res["load_average_after"] = os.getloadavg()

    train = res["train_clips_s"]
    res["ratio_cache"] = res["loader_cache_clips_s"] / train
    res["ratio_decode"] = res["loader_decode_clips_s"] / train
    res["ratio_synthetic"] = res["loader_synthetic_clips_s"] / train if res["loader_synthetic_clips_s"] else None
    res["end_to_end_efficiency"] = res["end_to_end_cache_clips_s"] / train
    res["cpu_ratio_cache"] = res["train_cpu_ms_per_clip"] / res["loader_cache_cpu_ms_per_clip"]
    clip = f"{args.frames}x{args.crop}x{args.crop}"
    print(f"proxy training step ({args.genome}, batch {args.batch}, {clip}): {train:.0f} clips/s")
    print(
        f"loader from cache   ({args.workers} workers): {res['loader_cache_clips_s']:.0f} clips/s  "
        f"ratio {res['ratio_cache']:.1f}x"
    )
    if res["ratio_synthetic"] is not None:
        print(
            f"loader synthetic    ({args.workers} workers): {res['loader_synthetic_clips_s']:.0f} clips/s  "
            f"ratio {res['ratio_synthetic']:.1f}x"
        )
    print(
        f"loader decoding     ({args.workers} workers): {res['loader_decode_clips_s']:.0f} clips/s  "
        f"ratio {res['ratio_decode']:.2f}x  (no cache: for reference)"
    )
    print(
        f"CPU per clip: loading from cache {res['loader_cache_cpu_ms_per_clip']:.2f} ms, training "
        f"{res['train_cpu_ms_per_clip']:.1f} ms: ratio {res['cpu_ratio_cache']:.0f}x (CPU time, "
        f"insensitive to other load)"
    )
    print(
        f"training fed by the cache loader: {res['end_to_end_cache_clips_s']:.0f} clips/s = "
        f"{100 * res['end_to_end_efficiency']:.0f}% of training on an in-memory batch"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(
        f"load average before/after: {res['load_average_before'][0]:.1f} / {res['load_average_after'][0]:.1f} "
        f"(other processes share the CPU when above ~0.5)"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
