"""The W&B tracker of a search: one run per trial, one for the study (see the package docstring)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..results.numbers import hypervolume_curve
from ..results.pareto import non_dominated
from ..results.record import FINISHED, FRONT
from ..results.study import load_study_info
from ..util.errors import UserError
from .env import PROJECT, wandb_env
from .runs import (
    HISTORY_KEYS,
    clean,
    final_summary,
    read_registry,
    registered_runs,
    study_run_id,
    trial_config,
    trial_run_id,
    write_registry,
)

TABLE_COLUMNS = (
    "number",
    "baseline",
    "label",
    "status",
    "on_front",
    "val_top1",
    "val_top5",
    "latency_ms",
    "gmacs",
    "params",
    "epochs",
    "genome",
    "genome_id",
    "reason",
    "run_id",
)


class WandbTracker:
    """Logs trials as W&B runs. The search's Ray callback forwards Ray Tune's trial hooks here
    (``trial_result``, ``trial_complete``; the driver calls ``finish_study`` at the end); tests
    drive it the same way with stand-in trial objects (``trial_id``, ``config``,
    ``last_result``). A W&B error never stops the search: it is reported once and W&B is off
    for the rest of it. Picklable without its open runs (Ray pickles callbacks to resume)."""

    def __init__(self, mode: str, study_dir: Path, echo: Callable[[str], None]):
        self.mode = mode
        self.study_dir = Path(study_dir).resolve()
        self.echo = echo
        self.disabled = False
        self._runs: dict[str, Any] = {}  # run id -> open wandb Run (this process only)
        self._last: dict[str, dict[str, Any]] = {}  # run id -> last result seen

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the callbacks with the experiment (to restore it): open runs stay here.
        state = self.__dict__.copy()
        state["_runs"], state["_last"] = {}, {}
        return state

    # -- W&B plumbing

    @property
    def study_name(self) -> str:
        return self.study_dir.name

    def _env(self) -> contextlib.AbstractContextManager[None]:
        return wandb_env(self.study_dir, self.mode)

    def _wandb(self) -> Any:
        import wandb  # imported inside _env: it makes a temp dir at import time

        return wandb

    def _init(self, run_id: str, name: str, job_type: str, config: dict[str, Any], tags: list[str]) -> Any:
        wandb = self._wandb()
        settings = wandb.Settings(
            silent=True, console="off", x_disable_stats=True, x_save_requirements=False, init_timeout=60
        )
        run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or PROJECT,
            entity=os.environ.get("WANDB_ENTITY"),
            group=self.study_name,
            job_type=job_type,
            name=name,
            id=run_id,
            resume="allow",
            reinit="create_new",
            dir=str(self.study_dir),
            mode=self.mode,
            config=config,
            tags=tags,
            settings=settings,
        )
        return run

    def _failed(self, what: str, e: Exception) -> None:
        self.disabled = True
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        self.echo(f"W&B: {what} failed ({type(e).__name__}: {msg}); W&B logging is off for the rest of this search")

    def _run_dir_of(self, run: Any) -> str:
        try:
            return os.path.relpath(Path(run.dir).parent, self.study_dir)
        except (AttributeError, TypeError, ValueError):
            return ""

    # -- identity of a Ray trial

    def _identity(self, trial: Any) -> tuple[str, int | None, str]:
        config = getattr(trial, "config", None) or {}
        number = config.get("_number")
        trial_id = str(getattr(trial, "trial_id", ""))
        return trial_run_id(self.study_name, number, trial_id), number, config.get("_label", "")

    # -- hooks (called by the Ray callback)

    def trial_result(self, trial: Any, result: dict[str, Any]) -> None:
        if self.disabled:
            return
        try:
            with self._env():
                self._result(trial, result)
        except Exception as e:  # noqa: BLE001 - tracking must not stop the search
            self._failed("logging a result", e)

    def trial_complete(self, trial: Any, error: bool = False) -> None:
        if self.disabled:
            return
        try:
            with self._env():
                self._complete(trial, error)
        except Exception as e:  # noqa: BLE001
            self._failed("finishing a trial's run", e)

    def _open(self, trial: Any, result: dict[str, Any], reg: dict[str, Any]) -> Any:
        run_id, number, label = self._identity(trial)
        if run_id in self._runs:
            return self._runs[run_id]
        entry = reg["runs"].get(run_id, {})
        config = {
            **entry.get("config", {}),
            **trial_config(result, self.study_name, number, str(getattr(trial, "trial_id", "")), label),
        }
        gid = config.get("genome_id") or "genome?"
        name = f"{gid}-t{number}" if number is not None else f"{gid}-{config['label'] or 'baseline'}"
        job_type = "trial" if number is not None else "baseline"
        run = self._init(run_id, name, job_type, config, [job_type])
        for k in HISTORY_KEYS:
            run.define_metric(k, step_metric="epochs")
        self._runs[run_id] = run
        entry.update(
            name=name,
            job_type=job_type,
            config=config,
            number=number,
            trial_id=str(getattr(trial, "trial_id", "")),
            finished=False,
        )
        entry.setdefault("epochs", 0)
        entry.setdefault("dirs", []).append(self._run_dir_of(run))
        reg["runs"][run_id] = entry
        return run

    def _result(self, trial: Any, result: dict[str, Any]) -> None:
        run_id, _, _ = self._identity(trial)
        reg = read_registry(self.study_dir)
        entry = reg["runs"].get(run_id, {})
        if entry.get("finished"):  # a result replayed after a restore: already logged
            return
        self._last[run_id] = dict(result)
        epoch = result.get("epochs")
        is_epoch = result.get("status") in ("ok", "running") and isinstance(epoch, (int, float)) and epoch > 0
        if not is_epoch or epoch <= entry.get("epochs", 0):
            if run_id not in self._runs and not entry:
                self._open(trial, result, reg)
                write_registry(self.study_dir, reg)
            return
        run = self._open(trial, result, reg)
        row = {k: clean(result[k]) for k in HISTORY_KEYS if result.get(k) is not None}
        row["epochs"] = int(epoch)
        run.log(row)
        reg["runs"][run_id]["epochs"] = int(epoch)
        write_registry(self.study_dir, reg)

    def _complete(self, trial: Any, error: bool) -> None:
        run_id, _, _ = self._identity(trial)
        reg = read_registry(self.study_dir)
        if reg["runs"].get(run_id, {}).get("finished"):
            return
        result = self._last.pop(run_id, None) or dict(getattr(trial, "last_result", None) or {})
        run = self._open(trial, result, reg)
        summary = final_summary(result, error)
        entry = reg["runs"][run_id]
        # Keep the config complete: a trial whose first result had no genome gets it now.
        more = {
            k: v
            for k, v in trial_config(
                result,
                self.study_name,
                entry.get("number"),
                entry.get("trial_id", ""),
                entry["config"].get("label", ""),
            ).items()
            if entry["config"].get(k) in (None, "") and v not in (None, "")
        }
        if more:
            run.config.update(more, allow_val_change=True)
            entry["config"].update(more)
        entry.update(summary=summary, finished=True, status=summary["status"])
        on_front = self._provisional_front(reg, run_id)  # needs this trial's summary in the registry
        summary["on_front"] = entry["on_front"] = on_front
        run.summary.update(summary)
        run.finish(exit_code=1 if summary["status"] == "failed" else 0)
        del self._runs[run_id]
        write_registry(self.study_dir, reg)

    def _objectives(self) -> tuple[list[str], list[str]]:
        try:
            info = load_study_info(self.study_dir)
            return info.objectives, info.directions
        except (UserError, KeyError, TypeError):
            return ["val_top1", "latency_ms"], ["max", "min"]

    def _provisional_front(self, reg: dict[str, Any], run_id: str) -> bool:
        """Is this trial on the front of the trials finished so far? Final only at the end of
        the study (finish_study corrects the runs that a later trial dominated)."""
        objs, dirs = self._objectives()
        rows = {
            rid: {o: e.get("summary", {}).get(o) for o in objs}
            for rid, e in reg["runs"].items()
            if e.get("finished") and e.get("status") in FRONT
        }  # a stopped trial is never on a front
        if run_id not in rows:
            return False
        df = pd.DataFrame.from_dict(rows, orient="index", columns=objs).astype(float)
        return bool(non_dominated(df, objs, dirs).loc[run_id])

    # -- the end of the study

    def finish_study(self, df: Any, hv: dict[str, Any]) -> None:
        """Called once by the search with the final results table (results.load_results) and the
        hypervolume dict: set the final on_front of every trial run, log the study run (tables,
        front scatter, hypervolume curve), and say how to upload offline runs."""
        if self.disabled:
            return
        try:
            with self._env():
                for run_id in list(self._runs):  # an interrupted search leaves runs open
                    self._runs.pop(run_id).finish()
                changed = self._update_fronts(df)
                logged = self._log_study(df, hv)
                self._wandb().teardown()
        except Exception as e:  # noqa: BLE001
            self._failed("logging the study", e)
            return
        runs = registered_runs(self.study_dir)
        self.echo(
            f"W&B ({self.mode}): {len(runs)} trial and baseline runs in group {self.study_name!r}"
            f"{', study run ' + ('logged' if logged else 'unchanged')}, on_front updated in {changed} run(s)"
        )
        if self.mode == "offline":
            self.echo(f"W&B: runs saved offline; upload them with `wandb sync {self.study_dir / 'wandb'}`")

    def _row_run_id(self, row: Any) -> str | None:
        if bool(row.get("baseline")):
            tid = row.get("trial_id")
            return trial_run_id(self.study_name, None, str(tid)) if tid else None
        return trial_run_id(self.study_name, int(row["number"]))

    def _update_fronts(self, df: Any) -> int:
        """Reopen (resume) exactly the runs whose on_front differs from what they show."""
        reg = read_registry(self.study_dir)
        changed = 0
        for _, row in df.iterrows():
            run_id = self._row_run_id(row)
            entry = reg["runs"].get(run_id) if run_id else None
            if not entry or not entry.get("finished"):
                continue
            on_front = bool(row["on_front"])
            if entry.get("on_front") == on_front:
                continue
            summary = {**entry.get("summary", {}), "on_front": on_front}
            run = self._init(run_id, entry["name"], entry["job_type"], entry["config"], [entry["job_type"]])
            run.summary.update(summary)
            entry.setdefault("dirs", []).append(self._run_dir_of(run))
            run.finish(exit_code=1 if summary.get("status") == "failed" else 0)
            entry.update(on_front=on_front, summary=summary)
            write_registry(self.study_dir, reg)
            changed += 1
        return changed

    def _log_study(self, df: Any, hv: dict[str, Any]) -> bool:
        """The study-level run: every trial and the front as tables, the front as a scatter plot,
        hypervolume after each trial as history (and a line chart). Skipped when nothing changed
        since it was last logged (a resumed search that ran no new trial)."""
        reg = read_registry(self.study_dir)
        objs = list(hv.get("objectives") or ["val_top1", "latency_ms"])
        dirs = list(hv.get("directions") or ["max", "min"])
        table = pd.DataFrame({c: df[c] for c in TABLE_COLUMNS if c in df.columns})
        table["run_id"] = [self._row_run_id(r) or "" for _, r in df.iterrows()]
        for c in ("baseline", "on_front"):
            table[c] = table[c].fillna(False).astype(bool) if c in table else False
        rows = [
            [clean(v) if not (isinstance(v, float) and math.isnan(v)) else None for v in r]
            for r in table.itertuples(index=False)
        ]
        fingerprint = hashlib.sha1(json.dumps([rows, hv], sort_keys=True, default=str).encode()).hexdigest()
        if reg["study"].get("fingerprint") == fingerprint:
            return False

        wandb = self._wandb()
        try:
            settings = {k: v for k, v in load_study_info(self.study_dir).settings.items() if k != "extra"}
        except UserError:
            settings = {}
        config = {**settings, "objectives": objs, "directions": dirs, "reference_point": hv.get("reference_point")}
        run_id = study_run_id(self.study_name)
        run = self._init(run_id, f"{self.study_name} (study)", "study", config, ["study"])
        cols = list(table.columns)
        done = table["status"].isin(FINISHED).to_numpy() if "status" in table else []
        front_idx = [i for i, on in enumerate(table["on_front"]) if on and done[i]]
        front_idx.sort(key=lambda i: (rows[i][cols.index(objs[1])] is None, rows[i][cols.index(objs[1])] or 0))
        trials_t = wandb.Table(columns=cols, data=rows)
        front_t = wandb.Table(columns=cols, data=[rows[i] for i in front_idx])
        payload: dict[str, Any] = {
            "trials": trials_t,
            "pareto": front_t,
            "pareto_front": wandb.plot.scatter(
                front_t, objs[1], objs[0], title=f"Pareto front: {objs[0]} vs {objs[1]}"
            ),
        }
        curve = hypervolume_curve(df, objs, dirs, hv["reference_point"]) if hv.get("reference_point") else None
        if curve is not None and len(curve):
            curve_t = wandb.Table(
                columns=["trial", "hypervolume"],
                data=[[int(n), float(v)] for n, v in zip(curve["number"], curve["hypervolume"])],
            )
            payload["hypervolume_curve"] = wandb.plot.line(
                curve_t, "trial", "hypervolume", title="hypervolume after each trial"
            )
        run.log(payload)
        if curve is not None:
            run.define_metric("hypervolume", step_metric="trial")
            for n, v in zip(curve["number"], curve["hypervolume"]):
                run.log({"trial": int(n), "hypervolume": float(v)})
        status = table["status"] if "status" in table else pd.Series(dtype=object)
        search_done = table[done & ~table["baseline"].to_numpy()] if len(table) else table
        best = pd.to_numeric(search_done["val_top1"], errors="coerce").max() if len(search_done) else None
        run.summary.update(
            {
                "hypervolume": clean(hv.get("hypervolume")),
                "front_size": clean(hv.get("front_size")),
                "reference_point": hv.get("reference_point"),
                "trials_finished": int(status.isin(FINISHED).sum()),
                "trials_failed": int((status == "failed").sum()),
                "trials_rejected": int((status == "rejected").sum()),
                "best_val_top1": clean(best),
            }
        )
        reg["study"].update(run_id=run_id, fingerprint=fingerprint)
        reg["study"].setdefault("dirs", []).append(self._run_dir_of(run))
        run.finish()
        write_registry(self.study_dir, reg)
        return True
