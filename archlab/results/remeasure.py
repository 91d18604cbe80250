"""Latencies measured again after the training ended, in one process, so that a front (and
a study's hypervolumes) rank what was found rather than how noisy the machine was while the
trials ran. Used by a search (``remeasure_search``: after its budget, before the confirm
step, so the front it confirms is the front on these latencies; ``apply`` puts them in every
table read from the study) and by a study of searches (``remeasure``: once more after all its
searches, so their genomes are measured in the same minutes).

A trial measures its own latency while another trial trains on the core beside it: the same
genome, trained twice in one search, read latencies far enough apart to rank searches
differently. One pass of re-measuring is not enough either: a pass made just after the
searches read its first genomes markedly slower than its last ones
(docs/notebook/latency.md). So nothing
runs beside the timing (a study shuts its searches' Ray down first; a search measures after its
trials ended, its idle Ray workers taking no CPU), and every genome is measured in ``ROUNDS`` passes, each pass in its own shuffled order; a genome's
latency is the fastest of its passes' medians (noise only ever adds time), and the spread
between passes is reported. Why 5 passes: even on a quiet machine a genome's passes spread
widely, one pass reads well above the fastest of ten, and the fastest of 5 passes reads (at
the median) the same as the fastest of ten (docs/notebook/latency.md). Measured in the form, runtime and thread count the trials used
(their study.yaml), cached (``CACHE_FILE``, with every pass), so a re-run writes the same
numbers."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..util.files import atomic_write
from .record import FINISHED, FRONT, Status

CACHE_FILE = "latencies_remeasured.json"
AS_SEARCHED = "latency_ms_as_searched"
ROUNDS = 5


def key(genome: str, clip: Any, how: tuple[Any, str, str, int]) -> str:
    """The cache key of one genome measured at ``clip`` the way ``how`` says (``latency_setup``)."""
    form, runtime, device, runs = how
    return f"{genome} @ {'x'.join(map(str, clip))} {form.name} {runtime} {device} runs{runs}"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def measure(
    wanted: dict[str, tuple[str, Any, tuple[Any, str, str, int]]],
    path: Path,
    echo: Callable[[str], None],
    rounds: int,
    before: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The cache at ``path`` with every key of ``wanted`` (-> genome, clip, how) measured:
    the missing ones in ``rounds`` shuffled passes, one genome at a time."""
    import torch

    from ..measure import profile
    from ..model.genome import parse

    cache = _read(path)
    todo = sorted(k for k in wanted if k not in cache)
    if not todo:
        return cache
    if before is not None:
        before()
    echo(
        f"latencies of {len(todo)} genomes measured again, {rounds} pass{'es' if rounds != 1 else ''} in shuffled "
        f"orders, one genome at a time (the trials measured theirs beside another trial's training) -> {path}"
    )
    threads = torch.get_num_threads()
    passes: dict[str, list[float]] = {k: [] for k in todo}
    try:
        for r in range(rounds):
            order = list(todo)
            random.Random(r).shuffle(order)
            for k in order:
                g, clip, (form, runtime, device, runs) = wanted[k]
                torch.set_num_threads(form.threads or 1)
                lat = profile.latency(
                    parse(g),
                    clip,
                    device=device,
                    batch=1,
                    runs=runs,
                    cache=profile.ProfileCache(),
                    form=form,
                    runtime=runtime,
                )  # never a hit
                passes[k].append(lat.median_ms)
    finally:
        torch.set_num_threads(threads)
    for k, values in passes.items():
        cache[k] = {"median_ms": min(values), "passes_ms": values}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(cache, indent=1, sort_keys=True) + "\n")
    spread = [max(v) / min(v) for v in passes.values()]
    echo(
        f"latencies measured again: the slowest pass / the fastest, median {statistics.median(spread):.2f}x, "
        f"worst {max(spread):.2f}x (each genome's latency is its fastest pass)"
    )
    return cache


def _view(df: pd.DataFrame, cache: dict[str, Any], key_of: Callable[[str], str]) -> pd.DataFrame:
    """``df`` with latency_ms of its finished trials, and of the repeats that copied one's
    result, from ``cache`` (where it has them); the trial's own value kept in ``AS_SEARCHED``
    (already there: kept)."""
    view = df.copy()
    if AS_SEARCHED not in view.columns:
        view[AS_SEARCHED] = view["latency_ms"]
    rows = view["status"].isin((*FINISHED, Status.REPEAT.value))
    keys = [key_of(str(g)) for g in view.loc[rows, "genome"]]
    view.loc[rows, "latency_ms"] = [
        cache[k]["median_ms"] if k in cache else v for k, v in zip(keys, view.loc[rows, "latency_ms"])
    ]
    return view


def remeasure_search(
    df: pd.DataFrame,
    settings: dict[str, Any],
    clip: Any,
    study_dir: Path,
    echo: Callable[[str], None] = print,
    rounds: int = ROUNDS,
) -> None:
    """Measure again the latency of the finished trials of one search (``df``: its table,
    ``settings``: its study.yaml settings; ``clip``: its cost clip), into ``study_dir / CACHE_FILE``. Run by the
    driver while no trial runs; Ray stays up (its idle workers take no CPU)."""
    from ..measure.latency_rule import latency_setup

    how = latency_setup(settings)
    # A target is measured at its own clip, where one forward takes far longer than a proxy's:
    # only the full-budget trials (the ones a front is made of) are measured again.
    done = df["status"].isin(FRONT if settings.get("target_input") else FINISHED)
    wanted = {key(str(g), clip, how): (str(g), clip, how) for g in df.loc[done, "genome"]}
    measure(wanted, Path(study_dir) / CACHE_FILE, echo, rounds)


def apply(df: pd.DataFrame, clip: Any, study_dir: Path) -> pd.DataFrame:
    """``df`` with the latencies ``remeasure_search`` wrote for this study, if any (a study from
    before, or one whose search was interrupted before its budget, keeps its trials' own).
    Torch-free (the results reader): the study's cache holds its one way of measuring, so a
    genome and clip find their entry."""
    path = Path(study_dir) / CACHE_FILE
    if "latency_ms" not in df.columns or not path.exists():
        return df
    cache = _read(path)
    by_prefix = {}  # "<genome> @ <clip>" -> its key (genome strings have spaces; " @ " ends them)
    for k in cache:
        genome, _, rest = k.partition(" @ ")
        if rest:
            by_prefix[f"{genome} @ {rest.split(' ')[0]}"] = k
    clip_text = "x".join(map(str, clip))
    return _view(df, cache, lambda g: by_prefix.get(f"{g} @ {clip_text}", ""))


def cost_clip(settings: dict[str, Any]) -> Any:
    """The clip a study's costs are taken at (``settings``: its study.yaml): its target's
    (``target_input``), else its stored recipe's (a study from before targets); None if
    neither is readable."""
    from ..training.recipe import ProxyRecipe
    from ..util.clips import parse_clip
    from ..util.errors import UserError

    if settings.get("target_input"):
        return parse_clip(settings["target_input"])
    recipe = settings.get("recipe")
    if not isinstance(recipe, dict):
        return None
    try:
        return ProxyRecipe.from_dict(recipe).clip
    except (TypeError, ValueError, UserError):
        return None


def remeasured(df: pd.DataFrame, settings: dict[str, Any], study_dir: Path) -> pd.DataFrame:
    """``apply`` at the study's cost clip (``cost_clip``); a study without a readable one keeps
    its trials' own latencies."""
    clip = cost_clip(settings)
    return df if clip is None else apply(df, clip, study_dir)


def remeasure(
    tables: dict[str, pd.DataFrame],
    settings: dict[str, dict[str, Any]],
    clips: dict[str, Any],
    cache_dir: Path,
    echo: Callable[[str], None] = print,
    rounds: int = ROUNDS,
    before: Callable[[], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Each table with ``latency_ms`` of its finished trials (full budget or stopped) measured
    again; the trial's own value moves to ``latency_ms_as_searched``. ``settings``: each
    search's stored settings (latency_form, latency_runtime, cpus_per_trial, latency_runs);
    ``clips``: each search's proxy clip. One value per distinct (genome, clip, form, runtime,
    device), shared by the searches that trained it. ``before``: called once before anything
    is measured (a study shuts its searches' Ray down: nothing of theirs may run beside)."""
    from ..measure.latency_rule import latency_setup

    how = {label: latency_setup(settings[label]) for label in tables}  # each search's own, read once
    wanted = {
        key(str(g), clips[label], how[label]): (str(g), clips[label], how[label])
        for label, df in tables.items()
        for g in df.loc[df["status"].isin(FINISHED), "genome"]
    }
    cache = measure(wanted, cache_dir / CACHE_FILE, echo, rounds, before=before)
    return {
        label: _view(df, cache, lambda g, label=label: key(g, clips[label], how[label])) for label, df in tables.items()
    }
