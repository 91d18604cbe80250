"""Loaders ship uint8 and shuffle as a function of (seed, epoch); to_input normalises."""

import torch
from torch.utils.data import Dataset

from archlab.data.loader import EpochShuffle, make_loader, set_loader_epoch, to_input


class Indexed(Dataset):
    """Item i is a uint8 clip filled with i (so a batch tells which items it holds)."""

    classes = ["a", "b"]

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.full((3, 2, 4, 4), i, dtype=torch.uint8), i % 2


def order(loader, epoch, seed=0):
    set_loader_epoch(loader, epoch, seed)
    return [int(v) for clips, _ in loader for v in clips[:, 0, 0, 0, 0]]


def test_shuffle_is_a_function_of_seed_and_epoch():
    ds = Indexed(20)
    a = make_loader(ds, 4, shuffle=True, seed=3)
    orders = [order(a, e, 3) for e in range(3)]
    assert all(sorted(o) == list(range(20)) for o in orders)
    assert len({tuple(o) for o in orders}) == 3  # a new order every epoch
    fresh = make_loader(ds, 4, shuffle=True, seed=3)
    assert order(fresh, 2, 3) == orders[2]  # epoch 2 directly = epoch 2 after 0 and 1 (resume)
    other = make_loader(ds, 4, shuffle=True, seed=4)
    assert order(other, 0, 4) != orders[0]
    assert order(make_loader(ds, 4, shuffle=False), 5) == list(range(20))


def test_workers_see_the_same_batches():
    ds = Indexed(12)
    plain = make_loader(ds, 3, shuffle=True, seed=1)
    workers = make_loader(ds, 3, shuffle=True, seed=1, workers=2)
    assert workers.persistent_workers and not plain.persistent_workers
    assert not make_loader(ds, 3, shuffle=True, workers=2, persistent=False).persistent_workers
    assert order(plain, 1, 1) == order(workers, 1, 1)


def test_set_loader_epoch_tells_the_dataset():
    class WithEpoch(Indexed):
        epoch = -1

        def set_epoch(self, e):
            self.epoch = e

    ds = WithEpoch(4)
    set_loader_epoch(make_loader(ds, 2, shuffle=True), 7)
    assert ds.epoch == 7


def test_cpu_loader_does_not_pin_and_drops_last_on_request():
    loader = make_loader(Indexed(10), 4, shuffle=True, drop_last=True)
    assert not loader.pin_memory and len(loader) == 2
    assert isinstance(loader.sampler, EpochShuffle)


def test_to_input_normalises_on_the_device():
    clips = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 2, 1, 1).expand(2, 3, 2, 1, 1)
    x = to_input(clips, "cpu")
    assert x.dtype == torch.float32 and x.shape == (2, 3, 2, 1, 1)
    assert torch.allclose(x[0, :, 0], torch.full((3, 1, 1), (0 - 0.45) / 0.225))
    assert torch.allclose(x[0, :, 1], torch.full((3, 1, 1), (1 - 0.45) / 0.225))
    y = to_input(clips, "cpu", mean=(0.5, 0.0, 0.0), std=(0.5, 1.0, 1.0))
    assert y[0, 0, 1].item() == 1.0 and y[0, 1, 1].item() == 1.0 and y[0, 0, 0].item() == -1.0
    big = torch.zeros(2, 3, 4, 8, 8, dtype=torch.uint8)
    assert to_input(big, "cpu", channels_last=True).is_contiguous(memory_format=torch.channels_last_3d)
