"""DataLoaders that ship uint8 clips, and the normalisation that runs on the device.

Clips travel as uint8 ``[B, 3, T, H, W]`` (4x less than float32 through worker pipes and
PCIe); ``to_input`` converts and normalises them where the model runs.

The shuffled order of an epoch is a function of ``(seed, epoch)`` only (``EpochShuffle``),
not of how many epochs a generator has already produced: a trial resumed from a checkpoint
at epoch ``e`` sees exactly the batches an uninterrupted run sees. Call
``set_loader_epoch(loader, epoch)`` before iterating an epoch.
"""

from __future__ import annotations

from typing import Iterator, Sequence, Sized

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)


def epoch_seed(seed: int, epoch: int) -> int:
    """One 63-bit seed per (seed, epoch): the shuffle and the workers' base seed of that epoch."""
    a, b = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2)
    return (int(a) << 31) ^ int(b)


class EpochShuffle(Sampler[int]):
    """A random permutation of ``range(n)`` that depends only on ``(seed, epoch)``."""

    def __init__(self, data: Sized, seed: int = 0):
        self.n = len(data)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    workers: int = 0,
    device: str | torch.device = "cpu",
    seed: int = 0,
    drop_last: bool = False,
    persistent: bool | None = None,
) -> DataLoader:
    """A DataLoader for ``(uint8 clip, label)`` datasets.

    Pinned memory on CUDA (async host-to-device copies); persistent workers when
    ``workers > 0`` unless ``persistent=False`` (the trainer turns them off for datasets
    with ``set_epoch``: persistent workers keep the dataset copy of their first epoch).
    The loader's generator is seeded, so the workers' seeds are reproducible too.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(epoch_seed(seed, 0))
    sampler = EpochShuffle(dataset, seed) if shuffle else None  # type: ignore[arg-type]
    if persistent is None:
        persistent = workers > 0
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=bool(persistent and workers > 0),
        drop_last=drop_last,
        generator=generator,
    )


def set_loader_epoch(loader: DataLoader, epoch: int, seed: int = 0) -> None:
    """Make the next pass over ``loader`` the one of ``epoch``: its shuffle order and the
    generator that seeds its workers both become functions of ``(seed, epoch)``; datasets
    with ``set_epoch`` (random crops per epoch) are told too."""
    if isinstance(loader.sampler, EpochShuffle):
        loader.sampler.set_epoch(epoch)
    if loader.generator is not None:
        loader.generator.manual_seed(epoch_seed(seed, epoch))
    set_epoch = getattr(loader.dataset, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)


def to_input(
    clips_uint8: torch.Tensor,
    device: str | torch.device,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 ``[B, 3, T, H, W]`` -> normalised float32 on ``device``: ``(x / 255 - mean) / std``.

    The copy is non-blocking (the loader pins memory on CUDA) and the arithmetic runs on the
    device. ``channels_last`` gives the ``channels_last_3d`` layout cuDNN prefers.
    """
    if clips_uint8.dim() != 5 or clips_uint8.shape[1] != 3:
        raise ValueError(f"expected clips [B, 3, T, H, W], got {tuple(clips_uint8.shape)}")
    device = torch.device(device)
    x = clips_uint8.to(device, non_blocking=True).float()
    m = torch.tensor(mean, device=device, dtype=torch.float32).view(1, 3, 1, 1, 1) * 255.0
    s = torch.tensor(std, device=device, dtype=torch.float32).view(1, 3, 1, 1, 1) * 255.0
    x = (x - m) / s
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x
