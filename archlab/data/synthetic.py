"""SyntheticMotion: procedurally generated clips whose classes only the ORDER of frames separates.

Why this dataset exists: a proxy for architecture search must reward what the search is
about, temporal modelling. On a dataset where single frames carry the label, a 2D network
with temporal average pooling scores as well as a P3D network and the search learns nothing
about A/B/C blocks. Here it cannot:

* Each clip first draws its *content*, independently of the label: a background texture, a
  static distractor shape, an optional flickering blob (a new random place every frame),
  pixel noise, and two textured objects that each follow a *path* of ``frames`` states
  (default: a translation with a rightward component; ``paths=`` adds counter-clockwise
  rotation and growth). State ``k`` is the path at ``k / (frames - 1)``; each state is
  rendered to one frame, noise and flicker included.
* The *label* only picks the order in which those rendered frames are shown
  (``_orders``): forward, backward, forward_restart, backward_restart, forward_hiccup,
  backward_hiccup (and forward_late, backward_late with ``num_classes=8``). Every class
  shows exactly the same multiset of frames for the same content, and each forward class is
  the time-reversed backward class of the same content.

A network of 2D blocks without temporal pooling (stem pool ``none``, ``t=-``) computes
``fc(mean_t f(frame_t))``, which is invariant to the order of the frames: its best possible
accuracy is chance. With ``frames`` a multiple of 8 the classes also show the same aligned
frame pairs and quads, so a 2D network on the official P3D skeleton (temporal max pools in
the stem and before stages) is blind too. Temporal convolutions see the order and learn the
task (measured in tests/test_temporal_sanity.py).

The defaults (6 classes, two translating objects, 1200 training clips) were set by
measurement: a 3-block P3D net at 8x32x32 reaches 0.6-0.8 top-1 in 5 epochs of 1920 clips,
while (on an earlier class set) 480 clips for 12 epochs stayed at chance: the network
memorises content instead, so unique clips matter more than epochs. Rotation and scaling paths (``paths=``) learn more slowly.
The objects' size (``object_scale``, 1.0 = the size above) decides how reliably a proxy finds
the order at all: at 1.0 the moving pixels are a small part of each clip and about half the
seeds of a P3D proxy stayed at chance (loss at ln 6, bimodal across seeds); the proxy recipe
uses 1.4 (``ProxyRecipe.object_scale``; docs/notebook/proxy-fidelity.md).
``faint`` makes a share of the clips' objects nearly transparent: a task with a Bayes error, on
which a long-trained reference does not saturate (docs/notebook/proxy-fidelity.md, faint clips).

Clips are deterministic from ``(seed, split, index)`` (one numpy generator per clip), so a
clip does not depend on ``n_clips``, the number of classes or the process that renders it.
The whole split is rendered in the constructor (~2.5 ms per 8x64x64 clip) and kept in
memory as one uint8 tensor ``[N, 3, T, H, W]`` (98 KB per clip); DataLoader workers share
it by fork.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from ..util.errors import UserError, shorten

SPLITS = {"train": 0, "val": 1, "test": 2}
PATHS = ("translate", "rotate", "scale")
SHAPES = ("ell", "triangle", "half_disk", "tee")
# ``object_scale`` bounds: at 1.5 the largest translating object (half-width 0.45) still has room
# for the longest path (1.0) inside the frame (0.95 - r on each side); below 0.5 objects are a
# few pixels at the proxy's 32x32.
OBJECT_SCALE = (0.5, 1.5)
# A faint clip's objects are blended in at a contrast drawn uniformly from [0, FAINT_CONTRAST]:
# near 0 no network can read the order. 0.3: the contrast below which a reference trained to
# convergence errs lies well inside [0, 0.3] for every network measured, so 0.3 spans the
# thresholds that separate networks (docs/notebook/proxy-fidelity.md).
FAINT_CONTRAST = 0.3


def _orders(t: int) -> dict[str, list[int]]:
    """Class name -> the order in which the ``t`` path states are shown (a permutation).

    The states are cut into four quarters q0..q3 (equal for ``t`` a multiple of 4):

        forward           q0 q1 q2 q3   steps +1
        forward_restart   q2 q3 q0 q1   steps +1 and one jump back in the middle
        forward_hiccup    q1 q0 q2 q3   steps +1, a jump back and one ahead early on
        forward_late      q0 q1 q3 q2   the same, late in the clip (hard: only *when* differs)

    and each reversed in time (backward, backward_restart, ...): a class and its twin share
    every frame. For ``t`` a multiple of 8 the orders only swap aligned halves, quarters and
    pairs, so the multisets of frame pairs (0,1), (2,3), ... and of quads are the same for
    every class: temporal max pools over aligned pairs (the P3D stem's 2x3x3 pool, ``t=p``)
    see no difference either, and a 2D network on the official P3D skeleton is as blind as
    one with temporal average pooling. ``num_classes=k`` keeps the first k (pairs in the
    order listed; the ``late`` pair last).
    """
    q = [[int(i) for i in part] for part in np.array_split(np.arange(t), 4)]
    orders = {
        "forward": q[0] + q[1] + q[2] + q[3],
        "forward_restart": q[2] + q[3] + q[0] + q[1],
        "forward_hiccup": q[1] + q[0] + q[2] + q[3],
        "forward_late": q[0] + q[1] + q[3] + q[2],
    }
    out: dict[str, list[int]] = {}
    for name, order in orders.items():
        out[name] = order
        out[name.replace("forward", "backward")] = order[::-1]
    return out


ORDERS_8 = _orders(8)
MAX_CLASSES = len(ORDERS_8)


class SyntheticMotion(Dataset):
    """``(uint8 clip [3, T, H, W], label)``; see the module docstring for what the classes are.

    Args:
        split: "train", "val" or "test" (different clips: the split is part of the seed).
        n_clips: clips in the split; labels are ``index % num_classes`` (balanced).
        frames, size: clip length and square frame size in pixels.
        num_classes: 2..8; the first ``num_classes`` orders of ``_orders(frames)``.
        seed: the dataset seed (with the split and the index it decides every pixel).
        distractors: background texture, static shape and flickering blob (False: plain
            background, objects and noise only; for debugging).
        paths: the motions objects may follow: "translate", "rotate", "scale".
        objects: moving objects per clip (all shown in the label's order).
        object_scale: the moving objects' size as a multiple of the original task's (half-widths
            0.2-0.3 of the half-frame for translations; rotations and growth scale alike); the
            class definitions and the 2D blindness do not depend on it. 1.0 is the task as first
            written; the proxy recipe uses 1.4 (``ProxyRecipe.object_scale``,
            docs/notebook/proxy-fidelity.md: larger objects remove most of the stuck seeds).
        faint: the fraction of clips (a draw per clip) whose moving objects are blended into what
            lies under them at a contrast from [0, FAINT_CONTRAST] (the rest are opaque, the
            task as first written; 0 = none). Above 0 the task has a Bayes error: a clip near
            contrast 0 shows no order, so no network reaches 1.0 however long it trains, and
            how faint a motion a network still reads is what separates networks at convergence
            (docs/notebook/proxy-fidelity.md: a reference that does not saturate); the opaque clips keep
            the signal a short proxy needs to leave chance. The draw comes from a generator of
            its own, so every other pixel of a clip is the one ``faint=0`` draws, and it is the
            same for every state, so the classes still show the same frames.
        fresh_per_epoch: new content every epoch: ``set_epoch(e)`` (the trainer calls it)
            renders clips ``e * n_clips ... e * n_clips + n_clips - 1`` of the split, so
            epoch 0 is the plain set and E epochs see the split's first E * n_clips clips
            (unique clips at about 1.5 ms each at 8x32x32).
    """

    def __init__(
        self,
        split: str = "train",
        *,
        n_clips: int | None = None,
        frames: int = 8,
        size: int = 64,
        num_classes: int = 6,
        seed: int = 0,
        distractors: bool = True,
        paths: tuple[str, ...] = ("translate",),
        objects: int = 2,
        fresh_per_epoch: bool = False,
        object_scale: float = 1.0,
        faint: float = 0.0,
    ):
        if split not in SPLITS:
            raise UserError(f"synthetic: split {shorten(split)} is not one of {', '.join(SPLITS)}")
        if not 2 <= num_classes <= MAX_CLASSES:
            raise UserError(f"synthetic: num_classes={num_classes} must be in 2..{MAX_CLASSES}")
        if frames < 4:
            raise UserError(f"synthetic: frames={frames}: the motions need at least 4 frames")
        if size < 16:
            raise UserError(f"synthetic: size={size}: frames must be at least 16 pixels")
        if not paths or any(p not in PATHS for p in paths):
            raise UserError(f"synthetic: paths {shorten(paths)} must be some of {', '.join(PATHS)}")
        if not 1 <= objects <= 8:
            raise UserError(f"synthetic: objects={objects} must be in 1..8")
        if (
            isinstance(object_scale, bool)
            or not isinstance(object_scale, (int, float))
            or not OBJECT_SCALE[0] <= object_scale <= OBJECT_SCALE[1]
        ):
            raise UserError(
                f"synthetic: object_scale={shorten(object_scale)} must be in {OBJECT_SCALE[0]:g}..{OBJECT_SCALE[1]:g}"
            )
        if isinstance(faint, bool) or not isinstance(faint, (int, float)) or not 0 <= faint <= 1:
            raise UserError(f"synthetic: faint={shorten(faint)} must be in 0..1")
        if n_clips is None:
            n_clips = {"train": 1200}.get(split, 300)
        if n_clips < 1:
            raise UserError(f"synthetic: n_clips={n_clips} must be positive")
        self.split, self.frames, self.size, self.seed = split, int(frames), int(size), int(seed)
        self.distractors = bool(distractors)
        self.paths = tuple(paths)
        self.objects = int(objects)
        self.object_scale = float(object_scale)
        self.faint = float(faint)
        self.fresh_per_epoch = bool(fresh_per_epoch)
        self.epoch = 0
        orders = _orders(self.frames)
        self.classes: list[str] = list(orders)[:num_classes]
        self.orders = torch.tensor([orders[c] for c in self.classes], dtype=torch.long)
        self.labels: list[int] = [i % num_classes for i in range(n_clips)]
        # Rendered once in path order; the label's order is applied in __getitem__ (a gather
        # of T frames), so one rendering serves every class (``clip``).
        self._states = torch.stack([self.render_states(i) for i in range(n_clips)])

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """With ``fresh_per_epoch``, render epoch ``epoch``'s clips (a no-op otherwise, and
        when that epoch is already rendered): a function of (seed, split, epoch, index), so
        a resumed run sees the clips an uninterrupted one does."""
        if not self.fresh_per_epoch or int(epoch) == self.epoch:
            return
        self.epoch = int(epoch)
        n = len(self.labels)
        self._states = torch.stack([self.render_states(self.epoch * n + i) for i in range(n)])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = self.labels[index]
        return self._states[index][:, self.orders[label]], label

    def clip(self, index: int, label: int) -> torch.Tensor:
        """Clip ``index``'s content shown in the order of class ``label`` (any label)."""
        return self._states[index][:, self.orders[label]]

    # ---- rendering --------------------------------------------------------------------

    def render_states(self, index: int) -> torch.Tensor:
        """The ``frames`` path states of clip ``index`` in path order, uint8 [3, T, H, W]."""
        rng = np.random.default_rng((self.seed, SPLITS[self.split], int(index)))
        t, s = self.frames, self.size
        c = (np.arange(s, dtype=np.float32) + 0.5) / s * 2 - 1  # pixel centres in [-1, 1]
        y, x = c[:, None], c[None, :]

        base = rng.uniform(0.2, 0.8, 3).astype(np.float32)
        img = np.broadcast_to(base, (s, s, 3)).copy()
        if self.distractors:
            for _ in range(3):  # low-frequency texture: random plane waves
                ang, freq, ph = rng.uniform(0, 2 * math.pi), rng.uniform(1.0, 4.0), rng.uniform(0, 2 * math.pi)
                wave = np.sin(math.pi * freq * (x * math.cos(ang) + y * math.sin(ang)) + ph)
                img += wave[..., None] * rng.uniform(-0.12, 0.12, 3).astype(np.float32)
            # a static shape, to look like the object but not move
            m = _shape_mask(
                rng.integers(len(SHAPES)),
                x,
                y,
                *rng.uniform(-0.75, 0.75, 2),
                rng.uniform(0, 2 * math.pi),
                rng.uniform(0.12, 0.2),
            )
            img = np.where(m[..., None], rng.uniform(0, 1, 3).astype(np.float32), img)
        frames = np.broadcast_to(img, (t, s, s, 3)).copy()

        if self.distractors and rng.random() < 0.5:  # a blob at a new random place every frame
            r = rng.uniform(0.08, 0.14)
            pos = rng.uniform(-0.85, 0.85, (t, 2)).astype(np.float32)
            blob = (x[None] - pos[:, 0, None, None]) ** 2 + (y[None] - pos[:, 1, None, None]) ** 2 <= r * r
            frames[blob] = rng.uniform(0, 1, 3).astype(np.float32)

        # The moving objects: path states at u = k / (T - 1), all in the same (label) order.
        u = np.linspace(0.0, 1.0, t, dtype=np.float32)
        contrast = self.contrast(index)
        for _ in range(self.objects):
            frames = self._draw_object(rng, frames, x, y, u, base, contrast)
        frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(0.04)
        out = np.clip(frames * 255 + 0.5, 0, 255).astype(np.uint8)  # [T, H, W, 3]
        return torch.from_numpy(out).permute(3, 0, 1, 2).contiguous()

    def contrast(self, index: int) -> float:
        """Clip ``index``'s object contrast: 1.0, or for a faint clip (a ``faint`` share of them)
        uniform in [0, FAINT_CONTRAST]; its own generator, so the rest of the clip does not
        depend on it."""
        if self.faint <= 0.0:
            return 1.0
        rng = np.random.default_rng((self.seed, SPLITS[self.split], int(index), 1))
        if rng.random() >= self.faint:
            return 1.0
        return float(rng.uniform(0.0, FAINT_CONTRAST))

    def _draw_object(
        self,
        rng: np.random.Generator,
        frames: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        u: np.ndarray,
        base: np.ndarray,
        contrast: float = 1.0,
    ) -> np.ndarray:
        """One textured object following a random path (of ``self.paths``) over the states."""
        t = len(u)
        path = self.paths[rng.integers(len(self.paths))]
        shape = rng.integers(len(SHAPES))
        k = self.object_scale  # at most OBJECT_SCALE[1]: every path still fits the frame
        theta0 = rng.uniform(0, 2 * math.pi)
        if path == "translate":
            r = rng.uniform(0.2, 0.3) * k
            ang = rng.uniform(-0.42, 0.42) * math.pi  # direction with a rightward component
            length = rng.uniform(0.6, 1.0)
            dx, dy = length * math.cos(ang), length * math.sin(ang)
            lim = 0.95 - r
            mx = rng.uniform(-lim + abs(dx) / 2, lim - abs(dx) / 2)
            my = rng.uniform(-lim + abs(dy) / 2, lim - abs(dy) / 2)
            cx, cy = mx + (u - 0.5) * dx, my + (u - 0.5) * dy
            theta, radius = np.full(t, theta0), np.full(t, r)
        elif path == "rotate":
            r = rng.uniform(0.22, 0.32) * k
            cx, cy = (np.full(t, v) for v in rng.uniform(-0.9 + r, 0.9 - r, 2))
            theta = theta0 + u * rng.uniform(0.33, 0.67) * math.pi  # 60..120 degrees, ccw
            radius = np.full(t, r)
        else:  # scale
            r0 = rng.uniform(0.13, 0.18) * k
            r1 = r0 + rng.uniform(0.15, 0.22) * k
            cx, cy = (np.full(t, v) for v in rng.uniform(-0.9 + r1, 0.9 - r1, 2))
            theta, radius = np.full(t, theta0), r0 + u * (r1 - r0)
        colour = np.clip(1.0 - base + rng.uniform(-0.15, 0.15, 3), 0, 1).astype(np.float32)
        obj, ou, ov = _shape_mask(
            shape,
            x[None],
            y[None],
            cx[:, None, None],
            cy[:, None, None],
            theta[:, None, None],
            radius[:, None, None],
            coords=True,
        )
        # a texture fixed to the object (it moves and turns with it): two gratings
        fu, fv, pu, pv = *rng.uniform(1.0, 2.0, 2) * math.pi, *rng.uniform(0, 2 * math.pi, 2)
        tex = 0.55 + 0.45 * np.sin(fu * ou[obj] + pu) * np.sin(fv * ov[obj] + pv)
        if contrast >= 1.0:
            frames[obj] = tex[:, None] * colour  # only the object's pixels, in place
        else:  # blended into what lies under it (background, distractors, earlier objects)
            frames[obj] = np.float32(contrast) * (tex[:, None] * colour) + np.float32(1 - contrast) * frames[obj]
        return frames


def _shape_mask(kind, x, y, cx, cy, theta, r, coords: bool = False):
    """Boolean mask of one of SHAPES (none has a rotational symmetry) centred at (cx, cy),
    rotated by theta, half-size r; with ``coords`` also the shape's own coordinates (u, v)."""
    ct, st = np.cos(theta), np.sin(theta)
    u = ((x - cx) * ct + (y - cy) * st) / r
    v = (-(x - cx) * st + (y - cy) * ct) / r
    box = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    name = SHAPES[int(kind)]
    if name == "ell":
        m = box & ~((u > 0) & (v > 0))
    elif name == "triangle":
        m = (v >= -1) & (v <= 1) & (np.abs(u) <= 0.4 * (v + 1))
    elif name == "half_disk":
        m = (u * u + v * v <= 1) & (v <= 0.3)
    else:  # tee
        m = box & ((v <= -0.4) | (np.abs(u) <= 0.35))
    if coords:
        return m, u, v
    return m
