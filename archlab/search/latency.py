"""The search's latency, apart from the trials' own timings: the latency table that judges
proposals (its setting, filling it before the first proposal, the class count of the targets'
heads) and the trained genomes' latencies measured again after the budget, with the line that
compares the table's predictions with those measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..util.clips import clip_text
from ..util.errors import UserError
from ..util.progress import CountProgress
from .config import TRIAL_SETTINGS, SearchConfig


def latency_table_setting(cfg: SearchConfig) -> dict[str, Any]:
    """The latency table (``LatencyTable.load`` keywords) whose predictions stand for a trial's
    own measurement: the trials' device, runtime, form and threads (``latency_setup``)."""
    from ..measure.latency_rule import latency_setup

    form, runtime, device, _ = latency_setup({k: getattr(cfg, k) for k in TRIAL_SETTINGS})
    return {"device": device, "runtime": runtime, "form": form, "threads": form.threads}


def define_by_run(cfg: SearchConfig, echo: Callable[[str], None]) -> Any:
    """The space as the sampler's define-by-run function, with the search's limits; where a
    limit or the objective is the predicted latency, the latency table is filled first with
    the parts of every genome of the space (once per machine: cached), so that judging a
    proposal never waits for a measurement."""
    from .optuna_search import DefineByRun

    predicts = cfg.predicts_latency
    define = DefineByRun(
        space=cfg.space,
        max_gmacs=cfg.max_gmacs,
        max_params=cfg.max_params,
        clip=cfg.cost_clip,
        max_latency_ms=cfg.max_latency_ms,
        latency=latency_table_setting(cfg) if predicts else None,
        predict=cfg.latency == "predicted",
        classes=data_classes(cfg) if predicts else None,
    )
    if predicts:
        fill_latency_table(define.latency_table(), define.loaded(), cfg.cost_clip, echo)
    return define


def data_classes(cfg: SearchConfig) -> int:
    """The class count of the search's training data, as a trial opens it (the head of every
    target it trains and times)."""
    from ..data import get_dataset

    opts = {**cfg.recipe.dataset_opts(cfg.data, "train"), "root": cfg.data_root, **cfg.data_opts}
    return len(get_dataset(cfg.data, "train", **opts).classes)


def fill_latency_table(table: Any, space: Any, clip: tuple[int, int, int], echo: Callable[[str], None]) -> None:
    """Measure the parts of ``space``'s genomes at ``clip`` that ``table`` lacks (every genome
    where the space can be enumerated, else none: parts are then measured as proposals need them)."""
    from ..spaces import space_genomes

    try:
        genomes = space_genomes(space, None)
    except UserError:
        echo(f"latency table: space {space.name} is too large to list; parts are measured as proposals reach them")
        return
    missing = table.missing(genomes, clip)
    if not missing:
        echo(f"latency table: every part of {space.name} at {clip_text(clip)} is measured ({table.path})")
        return
    echo(
        f"latency table: measuring {len(missing)} parts of {space.name} at {clip_text(clip)} "
        f"({table.describe()}; once per machine, then cached in {table.path})"
    )
    table.fill(genomes, clip, progress=CountProgress(label="parts", echo=echo, every=30.0))


def remeasure_latencies(cfg: SearchConfig, study_dir: Path, objectives: list[str], echo: Callable[[str], None]) -> None:
    """Every trained genome's latency measured again while no trial runs (``archlab.results.remeasure``);
    the tables read from the study use them from here on. Only genomes not measured yet."""
    if "latency_ms" not in objectives or cfg.latency_passes <= 0:
        return
    if cfg.address:
        echo(
            "latencies: the trials' own (each measured on its node; on a cluster they are not measured "
            "again on the driver's machine)"
        )
        return
    if cfg.gpus_per_trial > 0:
        import torch

        if not torch.cuda.is_available():
            echo("latencies: the trials' own (measured on their GPUs; this driver sees none)")
            return
    from ..results.reader import load_results
    from ..results.remeasure import remeasure_search

    df, info = load_results(study_dir)
    remeasure_search(df, info.settings, info.cost_clip, study_dir, echo, rounds=cfg.latency_passes)
    if cfg.predicts_latency:
        df, _ = load_results(study_dir)
        echo(prediction_line(df))


def prediction_line(df: Any) -> str:
    """How the latency table's predictions compare with the end-to-end measurements of the
    trials that have both (the full-budget ones), in one line."""
    from ..measure.latency_errors import prediction_errors
    from ..results.record import FRONT

    rows = df[df["status"].isin(FRONT)].dropna(subset=["predicted_latency_ms", "latency_ms"])
    if rows.empty:
        return "latency table: no full-budget trial to compare its predictions with"
    e = prediction_errors(rows["predicted_latency_ms"].tolist(), rows["latency_ms"].tolist())
    return (
        f"latency table: predicted against measured end to end on {len(rows)} full-budget trials: "
        f"{e.within:.0%} within ±{e.tolerance:.0%}, median |error| {e.median_abs:.1%}, "
        f"worst {max(abs(x) for x in e.errors):.1%}"
    )
