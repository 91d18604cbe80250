"""Statistics of a fidelity measurement: rank agreement, seed noise, bimodal seeds.

No scipy (it is not a dependency of the lab): Kendall's tau-b, Spearman's rho and the
Student t quantile are short enough to write out, and tests/test_fidelity_stats.py checks
them against values computed by hand.

Conventions: a score is "higher is better"; a correlation of vectors where one is constant
is undefined and returned as ``nan`` (never 0: "no information" is not "no agreement").
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

# Two-sided 95% Student t quantiles t_{0.975, df} for df = 1..30 (standard tables).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
_Z975 = 1.959964


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (table to 30, then
    the Cornish-Fisher expansion around the normal quantile, exact to 1e-3 there)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def ranks(x: Sequence[float]) -> list[float]:
    """1-based ranks, ties get the mean of the ranks they span (as Spearman's rho needs)."""
    order = sorted(range(len(x)), key=lambda i: x[i])
    out = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def _pearson(x: Sequence[float], y: Sequence[float]) -> float:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return math.nan
    return sxy / math.sqrt(sxx * syy)


def _check_pair(x: Sequence[float], y: Sequence[float]) -> None:
    if len(x) != len(y):
        raise ValueError(f"rank correlation of vectors of different lengths ({len(x)} and {len(y)})")


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the (tie-averaged) ranks."""
    _check_pair(x, y)
    if len(x) < 2:
        return math.nan
    return _pearson(ranks(x), ranks(y))


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)),
    n0 = n(n-1)/2; pairs tied in x or y count in neither C nor D (tau-b corrects for ties,
    which a 300-clip validation set makes common: accuracies are multiples of 1/300)."""
    _check_pair(x, y)
    n = len(x)
    conc = disc = tie_x = tie_y = 0
    for i, j in itertools.combinations(range(n), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0:
            tie_x += 1
        if dy == 0:
            tie_y += 1
        if dx == 0 or dy == 0:
            continue
        if (dx > 0) == (dy > 0):
            conc += 1
        else:
            disc += 1
    n0 = n * (n - 1) // 2
    denom = math.sqrt((n0 - tie_x) * (n0 - tie_y))
    if denom == 0:
        return math.nan
    return (conc - disc) / denom


def mean_over_seed_pairs(
    by_seed: Sequence[Sequence[float]], corr: Callable[[Sequence[float], Sequence[float]], float]
) -> float:
    """Seed-to-seed agreement: ``by_seed[s][g]`` is genome g's score under seed s; the mean
    of ``corr`` over all pairs of seeds (nan pairs left out; nan with fewer than 2 seeds)."""
    values = [corr(a, b) for a, b in itertools.combinations(by_seed, 2)]
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def rho_ceiling(means: Sequence[float], n_val: int, draws: int = 2000, seed: int = 0) -> float:
    """The highest proxy-vs-reference Spearman rho that a reference measured on ``n_val``
    validation clips lets one see: the mean rho between ``means`` and ``draws`` re-draws of
    them, each accuracy drawn again as Binomial(n_val, p) / n_val. A proxy that knew every
    genome's reference accuracy exactly would score about this against the reference's own
    val set: the rest of 1 - rho is that set's sampling noise, not the proxy's fault. Drawn
    around the measured accuracies (which carry that noise already), so it is an upper
    bound; seed noise of the reference lowers the true ceiling further. nan when fewer than
    2 genomes or all means are equal. Seeded: the same inputs give the same figure."""
    import numpy as np

    if n_val < 1:
        raise ValueError(f"n_val {n_val} must be positive")
    p = [min(1.0, max(0.0, float(m))) for m in means]
    if len(p) < 2 or len(set(p)) < 2:
        return math.nan
    rng = np.random.default_rng(seed)
    redrawn = rng.binomial(n_val, p, size=(draws, len(p))) / n_val
    values = [spearman_rho(p, list(row)) for row in redrawn]
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def pooled_seed_variance(by_genome: Sequence[Sequence[float]]) -> float:
    """The within-genome variance of runs that differ only in their seed, pooled over the
    genomes with 2 or more runs (each weighted by its degrees of freedom); nan with none."""
    ss = df = 0.0
    for runs in by_genome:
        if len(runs) >= 2:
            m = sum(runs) / len(runs)
            ss += sum((r - m) ** 2 for r in runs)
            df += len(runs) - 1
    return ss / df if df else math.nan


@dataclass(frozen=True)
class SeparatedPairs:
    """How a proxy orders the genome pairs the reference itself tells apart.

    Why: proxy-vs-reference rho over every pair counts pairs whose reference order is the
    reference's own noise (two P3D anchors closer together than the reference's run-to-run
    std: docs/notebook/proxy-fidelity.md): no proxy can be scored on them. Restricted to pairs whose reference difference exceeds ``z``
    standard errors, the agreement measures the proxy, not the reference's luck."""

    pairs: int  # pairs the reference separates
    of: int  # all pairs
    agree: float  # of those, ordered the same way by the proxy (a proxy tie counts 1/2)
    seed_noise: bool  # the reference's seed noise was measured (2+ seeds of some genome) and counted

    @property
    def concordance(self) -> float:
        return self.agree / self.pairs if self.pairs else math.nan


def separated_pairs(
    proxy_means: Sequence[float], ref_runs: Sequence[Sequence[float]], n_val: int, z: float = 2.0
) -> SeparatedPairs:
    """Concordance of ``proxy_means`` with the reference on the pairs it separates.

    ``ref_runs[g]`` are genome g's reference accuracies (one per seed, all scored on the same
    ``n_val`` val clips). The standard error of a genome's reference mean p is
    sqrt(p (1 - p) / n_val + s2 / k): the val set's binomial noise (shared by its seeds, so it
    does not shrink with k) plus the seed variance ``s2`` (``pooled_seed_variance``) over its k
    seeds. With one seed per genome s2 is unknown and left out: the pairs kept are then those
    the val set alone separates, a lower bound on the noise (run --ref-seeds 2 or more).
    A pair (a, b) is separated when |p_a - p_b| > z * sqrt(se_a^2 + se_b^2)."""
    if n_val < 1:
        raise ValueError(f"n_val {n_val} must be positive")
    _check_pair(proxy_means, ref_runs)
    s2 = pooled_seed_variance(ref_runs)
    seed_noise = not math.isnan(s2)
    means = [sum(r) / len(r) for r in ref_runs]
    var = [m * (1 - m) / n_val + (s2 / len(r) if seed_noise else 0.0) for m, r in zip(means, ref_runs)]
    pairs, agree = 0, 0.0
    for a, b in itertools.combinations(range(len(means)), 2):
        d = means[a] - means[b]
        if abs(d) <= z * math.sqrt(var[a] + var[b]):
            continue
        pairs += 1
        e = proxy_means[a] - proxy_means[b]
        agree += 1.0 if e * d > 0 else 0.5 if e == 0 else 0.0
    return SeparatedPairs(pairs=pairs, of=math.comb(len(means), 2), agree=agree, seed_noise=seed_noise)


@dataclass(frozen=True)
class Interval:
    """Mean of a genome's seeds, their sample standard deviation (ddof 1) and the half-width
    of the 95% confidence interval of the mean, t_{0.975, n-1} * std / sqrt(n)."""

    n: int
    mean: float
    std: float
    half: float

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half


def interval(values: Sequence[float]) -> Interval:
    """``Interval`` of ``values``; with one value the spread is unknown (std and half nan)."""
    n = len(values)
    if n == 0:
        raise ValueError("a confidence interval needs at least one value")
    mean = sum(values) / n
    if n == 1:
        return Interval(1, mean, math.nan, math.nan)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Interval(n, mean, std, t975(n - 1) * std / math.sqrt(n))


def difference(a: Sequence[float], b: Sequence[float]) -> Interval:
    """mean(a) - mean(b) with Welch's 95% interval (unequal variances; Welch-Satterthwaite
    degrees of freedom rounded down, the conservative side): "does a beat b?" is "is the
    interval above 0?". ``n`` is the smaller sample; std is the difference's standard error.
    With fewer than 2 values on either side, or no spread on both, the half-width is nan
    (undecided), never 0."""
    if not a or not b:
        raise ValueError("a difference needs values on both sides")
    ia, ib = interval(a), interval(b)
    diff = ia.mean - ib.mean
    if len(a) < 2 or len(b) < 2:
        return Interval(min(len(a), len(b)), diff, math.nan, math.nan)
    va, vb = ia.std**2 / len(a), ib.std**2 / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(min(len(a), len(b)), diff, 0.0, math.nan)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return Interval(min(len(a), len(b)), diff, se, t975(max(1, math.floor(df))) * se)


def verdict(d: Interval, undecided: str = "undecided") -> str:
    """What a ``difference`` allows one to say: "above" or "below" when its 95% interval
    excludes 0, "not distinguishable" when it holds 0, ``undecided`` when it has no width
    (a side with one value)."""
    if math.isnan(d.half):
        return undecided
    return "above" if d.low > 0 else "below" if d.high < 0 else "not distinguishable"


def top_overlap(x: Sequence[float], y: Sequence[float], fraction: float = 0.25) -> float:
    """The share of the top ``fraction`` under ``x`` (k = ceil(fraction * n) genomes, at least
    1) that is also in the top k under ``y``: 1.0 = the search would keep the same best
    quarter whichever ranking it trusted. Ties at the cut are broken by position (first
    listed wins) in both rankings, so the figure is deterministic."""
    _check_pair(x, y)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction {fraction} must be in (0, 1]")
    n = len(x)
    if n == 0:
        return math.nan
    k = max(1, math.ceil(fraction * n))

    def top(v: Sequence[float]) -> set[int]:
        return set(sorted(range(n), key=lambda i: (-v[i], i))[:k])

    return len(top(x) & top(y)) / k


# ---- bimodal seeds -----------------------------------------------------------------------

#: "well above chance": a seed this far above chance has clearly learned something. 0.15 is
#: 7 binomial standard errors of a chance-level accuracy on the default 300-clip val set
#: (6 classes: sqrt(1/6 * 5/6 / 300) = 0.0215) and 5x the seed-std target (0.03): a genome
#: with one seed there and another at chance is not "noisy", it has two outcomes.
WELL_ABOVE = 0.15


def chance_band(chance: float, n_val: int) -> float:
    """How far above chance a seed may be and still count as "at chance": two binomial
    standard errors of a chance-level accuracy on ``n_val`` clips (a network that learned
    nothing lands below it 97.7% of the time). 0.043 on 300 clips of 6 classes."""
    if not 0 < chance < 1 or n_val < 1:
        raise ValueError(f"chance {chance} must be in (0, 1) and n_val {n_val} positive")
    return 2 * math.sqrt(chance * (1 - chance) / n_val)


def is_bimodal(accuracies: Sequence[float], chance: float, n_val: int, well_above: float = WELL_ABOVE) -> bool:
    """True when at least one seed is at chance (<= chance + ``chance_band``) while another
    is well above it (>= chance + max(``well_above``, 2 x the band)): the genome's outcome is
    a coin toss. The floor of twice the band matters only on tiny val sets (smoke runs)."""
    band = chance_band(chance, n_val)
    well_above = max(well_above, 2 * band)
    at_chance = any(a <= chance + band for a in accuracies)
    learned = any(a >= chance + well_above for a in accuracies)
    return at_chance and learned
