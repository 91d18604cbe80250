"""The Space types: a named set of genomes asked for by a define-by-run ``suggest(trial)``
(see the package docstring), the four YAML kinds and the python escape hatch."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..model.genome import FIELD_ORDER, Genome, parse, scale_widths
from ..util.errors import UserError
from .trials import Enumerator, FixedTrial, RandomTrial, ask, enumerate_count

KINDS = ("interleave", "uniform", "per_stage", "free")
CYCLE = "cycle"


@dataclass
class Space:
    """A named set of genomes. Subclasses implement ``suggest`` (and ``cardinality``)."""

    name: str
    description: str
    max_gmacs: float | None = None
    max_params: int | None = None
    clip: tuple[int, int, int] = (8, 64, 64)  # where the constraints are counted: the target's clip
    classes: int | None = None  # set every genome's class count (None: the space's own)
    # The space's genomes are targets seen at ``target_clip`` (None: a space without a target,
    # whose genomes train as written), reduced to proxies at ``proxy_width`` to train.
    target_clip: tuple[int, int, int] | None = None
    proxy_width: float = 1.0
    source: str | None = None

    def suggest(self, trial: Any) -> Genome:
        raise NotImplementedError

    def cardinality(self) -> int:
        """Distinct parameter assignments (not distinct genomes: see the kinds' notes)."""
        return enumerate_count(self.suggest)

    def from_params(self, params: dict[str, Any]) -> Genome:
        """The genome of a trial's parameters (extra keys, e.g. a learning rate, are ignored)."""
        return self.suggest(FixedTrial(self.name, params))

    def sample_params(self, rng: random.Random, *, constrained: bool = True, tries: int = 1000) -> dict[str, Any]:
        """Uniformly random parameters; with ``constrained``, redrawn until the genome meets
        the space's constraints (uniform over the assignments that do)."""
        for _ in range(tries):
            trial = RandomTrial(rng)
            g = self.suggest(trial)
            if not constrained or self.violates(g) is None:
                return trial.params
        raise UserError(
            f"space {self.name}: no genome within its constraints in {tries} random draws ({self._limits()})"
        )

    def sample(self, rng: random.Random, *, constrained: bool = True) -> Genome:
        """A uniformly random genome of the space (see ``sample_params``)."""
        return self.from_params(self.sample_params(rng, constrained=constrained))

    def violates(self, genome: Genome, clip: tuple[int, int, int] | None = None) -> str | None:
        """None if ``genome`` meets max_gmacs / max_params at ``clip`` (default: the space's
        input), else the reason. Meta-device counting: no arithmetic, cached by genome id."""
        if self.max_gmacs is None and self.max_params is None:
            return None
        from ..measure.profile import cost

        clip = clip or self.clip
        c = cost(genome, clip, method="fast")
        if self.max_gmacs is not None and c.gmacs > self.max_gmacs:
            return f"{c.gmacs:.3f} GMACs > max_gmacs {self.max_gmacs:g} at {'x'.join(map(str, clip))}"
        if self.max_params is not None and c.params > self.max_params:
            return f"{c.params:,} params > max_params {self.max_params:,}"
        return None

    def constraints(self, genome: Genome, clip: tuple[int, int, int] | None = None) -> dict[str, float]:
        """Each limit as Optuna's constraint value: the relative excess (``gmacs / max_gmacs - 1``),
        <= 0 when met. Relative, so that GMACs and params add up to one comparable violation
        (NSGA-II ranks infeasible genomes by their summed violation: it learns where the limit is)."""
        if self.max_gmacs is None and self.max_params is None:
            return {}
        from ..measure.profile import cost

        c = cost(genome, clip or self.clip, method="fast")
        out = {}
        if self.max_gmacs is not None:
            out["max_gmacs"] = c.gmacs / self.max_gmacs - 1.0
        if self.max_params is not None:
            out["max_params"] = c.params / self.max_params - 1.0
        return out

    def _limits(self) -> str:
        parts = []
        if self.max_gmacs is not None:
            parts.append(f"max_gmacs {self.max_gmacs:g} at {'x'.join(map(str, self.clip))}")
        if self.max_params is not None:
            parts.append(f"max_params {self.max_params:,}")
        return ", ".join(parts) or "no constraints"

    def _finish(self, g: Genome) -> Genome:
        return g if self.classes is None else g.with_(classes=self.classes)


@dataclass
class YamlSpace(Space):
    """A space of one of the four KINDS, read from a YAML file."""

    kind: str = "interleave"
    depths: tuple[tuple[int, ...], ...] = ()
    widths: tuple[float, ...] = (1.0,)
    fields: str = ""
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cycle: str = "ABC"
    phase: tuple[int, ...] = (0,)
    n_2d: tuple[int, ...] = (1,)
    letters: tuple[str, ...] = ()

    def suggest(self, trial: Any) -> Genome:
        depths = [ask(trial, f"depth_{i}", d) for i, d in enumerate(self.depths, 1)]
        width = ask(trial, "width", self.widths)
        chosen = {k: ask(trial, k, v) for k, v in self.choices.items()}
        n = len(depths)
        if self.kind in ("interleave", "uniform"):
            n_2d = ask(trial, "n_2d", self.n_2d)
            if n_2d >= n:
                picks, phase = ["2"] * n, 0
            elif self.kind == "interleave":
                picks, phase = [CYCLE] * (n - n_2d) + ["2"] * n_2d, ask(trial, "phase", self.phase)
            else:
                picks, phase = [ask(trial, "letter", self.letters)] * (n - n_2d) + ["2"] * n_2d, 0
            stages = cycle_letters(depths, picks, self.cycle, phase)
        elif self.kind == "per_stage":
            picks = [ask(trial, f"letter_{i}", self.letters) for i in range(1, n + 1)]
            phase = ask(trial, "phase", self.phase) if CYCLE in picks else 0
            stages = cycle_letters(depths, picks, self.cycle, phase)
        else:  # free
            stages = [
                "".join(ask(trial, f"block_{i}_{j}", self.letters) for j in range(1, d + 1))
                for i, d in enumerate(depths, 1)
            ]
        text = "|".join(stages) + " " + merge_fields(self.fields, chosen)
        g = parse(text)
        if width != 1:
            g = scale_widths(g, width)
        return self._finish(g)

    def cardinality(self) -> int:
        """Closed form of the assignments ``suggest`` can make (a test checks it against
        ``enumerate_count``). Parameters a choice makes irrelevant (the phase when no stage
        uses the cycle) are not asked, so they do not multiply the count."""
        n = len(self.depths)
        total = len(self.widths)
        for v in self.choices.values():
            total *= len(v)
        if self.kind == "free":
            for d in self.depths:
                total *= sum(len(self.letters) ** k for k in d)
            return total
        for d in self.depths:
            total *= len(d)
        if self.kind == "interleave":
            return total * sum(len(self.phase) if k < n else 1 for k in self.n_2d)
        if self.kind == "uniform":
            return total * sum(len(self.letters) if k < n else 1 for k in self.n_2d)
        L = len(self.letters)
        plain = L - (1 if CYCLE in self.letters else 0)
        return total * (plain**n + (L**n - plain**n) * len(self.phase))


def cycle_letters(depths: Sequence[int], picks: Sequence[str], cycle: str, phase: int) -> list[str]:
    """Stage letters: a stage picking ``cycle`` continues the global cycle (its counter runs
    over cycle stages only, as in presets.p3d_letters); any other pick fills its stage."""
    out, k = [], phase
    for d, pick in zip(depths, picks):
        if pick == CYCLE:
            out.append("".join(cycle[(k + j) % len(cycle)] for j in range(d)))
            k += d
        else:
            out.append(pick * d)
    return out


def merge_fields(fixed: str, chosen: dict[str, str]) -> str:
    """Genome fields in FIELD_ORDER: the fixed ones with the searched ones added."""
    values = dict(tok.split("=", 1) for tok in fixed.split())
    values.update({k: str(v) for k, v in chosen.items()})
    return " ".join(f"{k}={values[k]}" for k in FIELD_ORDER if k in values)


@dataclass
class PythonSpace(Space):
    """A space written as a function ``fn(trial) -> Genome`` (the YAML ``python:`` key)."""

    fn: Callable[[Any], Genome] | None = None

    def suggest(self, trial: Any) -> Genome:
        assert self.fn is not None
        g = self.fn(trial)
        if not isinstance(g, Genome):
            raise UserError(f"space {self.name}: {self.source} returned {type(g).__name__}, not a Genome")
        return self._finish(g)

    def cardinality(self) -> int:
        """``fn.cardinality`` (an int or a function) if the author gave one, else counted by
        enumerating the function's decisions (up to a million)."""
        declared = getattr(self.fn, "cardinality", None)
        if declared is not None:
            return int(declared() if callable(declared) else declared)
        try:
            return enumerate_count(self.suggest)
        except UserError as e:
            raise UserError(f"space {self.name}: {e}; give the function a `cardinality` attribute") from None


LISTING_LIMIT = 100_000  # space_genomes lists a whole space up to this many genomes


def space_genomes(
    space: Space, count: int | None = None, rng: random.Random | None = None, constrained: bool = False
) -> list[Genome]:
    """Every distinct genome of ``space`` (``count`` None; a UserError past LISTING_LIMIT) or
    ``count`` distinct random ones drawn with ``rng`` (fewer if the space has fewer), within
    its constraints if asked."""
    if count is None:
        out: list[Genome] = []
        path: list[int] = []
        while True:
            trial = Enumerator(path)
            g = space.suggest(trial)
            if not constrained or space.violates(g) is None:
                out.append(g)
            if len(out) > LISTING_LIMIT:
                raise UserError(
                    f"space {space.name} has more than {LISTING_LIMIT:,} genomes: give a number of random ones instead"
                )
            del path[len(trial.arity) :]
            while path and path[-1] + 1 >= trial.arity[len(path) - 1]:
                path.pop()
            if not path:
                return list({g.id: g for g in out}.values())
            path[-1] += 1
    rng = rng or random.Random(0)
    seen: dict[str, Genome] = {}
    for _ in range(count * 20):
        g = space.sample(rng, constrained=constrained)
        seen.setdefault(g.id, g)
        if len(seen) == count:
            break
    return list(seen.values())
