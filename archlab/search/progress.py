"""The search's console output: one line per started trial, per reported epoch and per ended
trial, instead of Ray's table."""

from __future__ import annotations

from typing import Any, Callable

from ray.tune import Callback

from ..results.record import WORKER_DIED, Status, final_status

Echo = Callable[[str], None]


class Progress(Callback):
    """One line when a trial starts, one per epoch it reports, one when it ends (the default
    search used to be silent for a minute before its first line)."""

    def __init__(self, *, echo: Echo, total: int, label: str, epochs: int):
        self.echo, self.total, self.label, self.epochs = echo, total, label, epochs
        self.done = 0
        self.last: dict[str, dict] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        number = (trial.config or {}).get("_number")
        what = (trial.config or {}).get("_genome") or (trial.config or {}).get("genome", "")
        self.echo(f"[{self.label} start] " + (f"#{number:<3} " if number is not None else "") + what)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.last[trial.trial_id] = result
        if result.get("status") == Status.RUNNING.value and result.get("epochs"):
            number = (trial.config or {}).get("_number")
            self.echo(
                "  "
                + (f"#{number:<3} " if number is not None else "")
                + f"epoch {result['epochs']}/{self.epochs}  val_top1 {result.get('val_top1', 0):.3f}"
            )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, self.last.get(trial.trial_id, trial.last_result or {}), error=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, {"status": Status.FAILED.value, "reason": WORKER_DIED}, error=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        number = (trial.config or {}).get("_number")
        self.echo(
            "[retry]    "
            + (f"#{number} " if number is not None else "")
            + "its worker died: started again, from its last epoch"
        )

    def _line(self, trial: Any, r: dict, error: bool) -> None:
        status = final_status(r.get("status"), error).value
        g = r.get("genome", "?")
        self.done += 1
        number = (trial.config or {}).get("_number")
        head = (
            f"[{self.label} {self.done:>3}/{self.total}] "
            + (f"#{number:<3} " if number is not None else "")
            + f"{status:<8}"
        )
        if status in (Status.FAILED.value, Status.REJECTED.value):
            self.echo(f"{head} {g}  -- {r.get('reason', '')}")
            return
        self.echo(
            f"{head} acc {r.get('val_top1', 0):.3f}  lat {r.get('latency_ms', float('nan')):6.1f} ms  "
            f"{r.get('gmacs', float('nan')):.3f} GMACs  ep {r.get('epochs', 0)}  {g}"
        )
