"""Where and how a search's trial measures its latency, as one rule: the trial
(``search/trial.py``) and the re-measurement after the search (``archlab.results.remeasure``) both
call it, so the two numbers are taken the same way."""

from __future__ import annotations

from typing import Any


def latency_setup(s: dict[str, Any], cuda: bool | None = None) -> tuple[Any, str, str, int]:
    """(form with threads, runtime, device, runs) a trial of a search with settings ``s``
    measures its latency with: one rule, also used when the trained genomes are measured
    again (``archlab.results.remeasure``), so both numbers are taken the same way. A GPU trial
    measures on the GPU, a CPU trial at its CPU share's threads. ``cuda``: whether a GPU is
    visible (None: ask torch; a reader that must not import torch says which it assumes)."""
    from .forms import Form

    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    threads = max(1, int(float(s.get("cpus_per_trial") or 1)))
    form = Form.parse(s.get("latency_form") or "fp32/ncdhw").with_threads(threads)
    device = "cuda" if cuda and float(s.get("gpus_per_trial") or 0) > 0 else "cpu"
    return form, s.get("latency_runtime") or "torch", device, int(s.get("latency_runs") or 5)
