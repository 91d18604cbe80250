"""The latencies of a study's searches measured again, after every search ended, in one
process, so that hypervolumes compare what the searches found rather than how noisy the
machine was while they ran.

A trial measures its own latency while another trial trains on the core beside it: in
``sampler_vs_random`` (2-core VM) the same genome, trained twice in one search, read 3.3 ms
and 4.8 ms. One pass of re-measuring is not enough either: the first pass, made just after
the searches, read the first 30 genomes up to 2.5x slower than the last ones. So the
searches' Ray is shut down first (nothing of theirs may run beside the timing), and every
genome is measured in ``ROUNDS`` passes, each pass in its own shuffled order; a genome's
latency is the fastest of its passes' medians (noise only ever adds time), and the spread
between passes is reported. Why 5 passes: on the quiet 2-core VM, 12 genomes measured in 10
shuffled passes each spread 1.6-2.2x between passes; one pass read a median 42% above the
fastest of the ten (90th percentile 91%), the fastest of 3 passes 9% (48%), of 5 passes 0%
(20%). Measured in the form, runtime and thread count the trials used
(their study.yaml), cached beside the searches, so a re-run writes the same numbers."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..files import atomic_write
from ..forms import Form
from ..record import FINISHED

CACHE_FILE = "latencies_remeasured.json"
AS_SEARCHED = "latency_ms_as_searched"
ROUNDS = 5


def _how(s: dict[str, Any]) -> tuple[Form, str, str, int]:
    """The form (with threads), runtime, device and runs a search's trials measured with."""
    import torch

    threads = max(1, int(float(s.get("cpus_per_trial") or 1)))
    form = Form.parse(s.get("latency_form") or "fp32/ncdhw").with_threads(threads)
    # the trial's own rule (search/trial.py): a GPU trial measured on the GPU
    device = "cuda" if torch.cuda.is_available() and float(s.get("gpus_per_trial") or 0) > 0 else "cpu"
    return form, s.get("latency_runtime") or "torch", device, int(s.get("latency_runs") or 5)


def remeasure(tables: dict[str, pd.DataFrame], settings: dict[str, dict[str, Any]], clips: dict[str, Any],
              cache_dir: Path, echo: Callable[[str], None] = print, rounds: int = ROUNDS) -> dict[str, pd.DataFrame]:
    """Each table with ``latency_ms`` of its finished trials (full budget or stopped) measured
    again; the trial's own value moves to ``latency_ms_as_searched``. ``settings``: each
    search's stored settings (latency_form, latency_runtime, cpus_per_trial, latency_runs);
    ``clips``: each search's proxy clip. One value per distinct (genome, clip, form, runtime,
    device), shared by the searches that trained it."""
    import torch

    from .. import profile
    from ..genome import parse
    from ..search import shutdown

    path = cache_dir / CACHE_FILE
    try:
        cache: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}

    how = {label: _how(settings[label]) for label in tables}  # each search's own, read once

    def key(genome: str, label: str) -> str:
        form, runtime, device, runs = how[label]
        return f"{genome} @ {'x'.join(map(str, clips[label]))} {form.name} {runtime} {device} runs{runs}"

    wanted = {key(str(g), label): (str(g), label) for label, df in tables.items()
              for g in df.loc[df["status"].isin(FINISHED), "genome"]}
    todo = sorted(k for k in wanted if k not in cache)
    if todo:
        shutdown()  # the searches' Ray cluster: nothing of theirs may run beside the measurement
        echo(f"latencies of {len(todo)} genomes measured again, {rounds} pass{'es' if rounds != 1 else ''} in shuffled orders, one genome "
             f"at a time (the trials measured theirs beside another trial's training) -> {path}")
        threads = torch.get_num_threads()
        passes: dict[str, list[float]] = {k: [] for k in todo}
        try:
            for r in range(rounds):
                order = list(todo)
                random.Random(r).shuffle(order)
                for k in order:
                    g, label = wanted[k]
                    form, runtime, device, runs = how[label]
                    torch.set_num_threads(form.threads or 1)
                    lat = profile.latency(parse(g), clips[label], device=device, batch=1, runs=runs,
                                          cache=profile.ProfileCache(), form=form, runtime=runtime)  # never a hit
                    passes[k].append(lat.median_ms)
        finally:
            torch.set_num_threads(threads)
        for k, values in passes.items():
            cache[k] = {"median_ms": min(values), "passes_ms": values}
        atomic_write(path, json.dumps(cache, indent=1, sort_keys=True) + "\n")
        spread = [max(v) / min(v) for v in passes.values()]
        echo(f"latencies measured again: the slowest pass / the fastest, median {statistics.median(spread):.2f}x, "
             f"worst {max(spread):.2f}x (each genome's latency is its fastest pass)")
    out: dict[str, pd.DataFrame] = {}
    for label, df in tables.items():
        view = df.copy()
        view[AS_SEARCHED] = view["latency_ms"]
        rows = view["status"].isin(FINISHED)
        view.loc[rows, "latency_ms"] = [cache[key(str(g), label)]["median_ms"] for g in view.loc[rows, "genome"]]
        out[label] = view
    return out
