"""The latencies of a study's searches measured again, after every search ended, one genome at
a time in one process.

A trial measures its own latency while another trial trains on the core beside it: in one
search of ``sampler_vs_random`` (2-core VM) the same genome, trained twice, read 3.3 ms and
4.8 ms. Two searches whose fronts differ by that noise would be ranked by it, so the study
compares hypervolumes on these latencies (and keeps the searches' own as a second column).
Measured in the form, runtime and thread count the trials used (their study.yaml), cached
beside the searches, so a re-run that trains nothing writes the same numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..forms import Form
from ..record import FINISHED

CACHE_FILE = "latencies_remeasured.json"
AS_SEARCHED = "latency_ms_as_searched"


def remeasure(tables: dict[str, pd.DataFrame], settings: dict[str, dict[str, Any]], clips: dict[str, Any],
              cache_dir: Path, echo: Callable[[str], None] = print) -> dict[str, pd.DataFrame]:
    """Each table with ``latency_ms`` of its finished trials (full budget or stopped) measured
    again; the trial's own value moves to ``latency_ms_as_searched``. ``settings``: each
    search's stored settings (latency_form, latency_runtime, cpus_per_trial); ``clips``: each
    search's proxy clip. One measurement per distinct (genome, clip, form, runtime)."""
    import torch

    from .. import profile
    from ..genome import parse

    cache = profile.ProfileCache(cache_dir / CACHE_FILE)
    todo = {(label, str(g)) for label, df in tables.items() for g in df.loc[df["status"].isin(FINISHED), "genome"]}
    if todo:
        echo(f"latencies of {len({g for _, g in todo})} genomes measured again, one at a time "
             f"(the trials measured theirs beside another trial's training) -> {cache_dir / CACHE_FILE}")
    threads = torch.get_num_threads()
    out: dict[str, pd.DataFrame] = {}
    try:
        for label, df in tables.items():
            s = settings[label]
            n = max(1, int(float(s.get("cpus_per_trial") or 1)))
            form = Form.parse(s.get("latency_form") or "fp32/ncdhw").with_threads(n)
            torch.set_num_threads(n)
            # the trial's own rule (search/trial.py): a GPU trial measured on the GPU
            device = "cuda" if torch.cuda.is_available() and float(s.get("gpus_per_trial") or 0) > 0 else "cpu"
            view = df.copy()
            view[AS_SEARCHED] = view["latency_ms"]
            rows = view["status"].isin(FINISHED)
            view.loc[rows, "latency_ms"] = [
                profile.latency(parse(g), clips[label], device=device, batch=1, runs=int(s.get("latency_runs") or 5),
                                cache=cache, form=form, runtime=s.get("latency_runtime") or "torch").median_ms
                for g in view.loc[rows, "genome"]]
            out[label] = view
    finally:
        torch.set_num_threads(threads)
    return out
