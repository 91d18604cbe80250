"""The trial record: what one trial of a study is, in one typed place.

A study's truth is its Optuna storage. Each trial there carries, as user attributes, the
record the search wrote before telling Optuna the outcome (a finished Optuna trial cannot be
changed). Before this module the field names, the status words and the rule that turns Ray's
last report into a final status were spelled out separately by the search, the results
reader, W&B tracking, the report, export and three test files; each copy drifted (one lacked
``interrupted``, one kept its own ``FINISHED``). Now the search writes a ``TrialRecord``
(``to_attrs``), every reader reads one (``from_attrs``) and tests build rows from it.

This module imports neither optuna, ray nor torch: Optuna trial states are passed by name
(``"RUNNING"``, ``"FAIL"``, ...), so a reader anywhere can use it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping


class Status(str, enum.Enum):
    """The status of a trial. The values are the words stored in optuna.db and results.csv."""

    OK = "ok"  # trained to the last epoch
    STOPPED = "stopped"  # trained until the scheduler stopped it at a rung: never on a front
    FAILED = "failed"  # trained (or tried to) and broke: exception, NaN, out of memory, worker died
    REJECTED = "rejected"  # never trained: over a constraint (--max-gmacs / --max-params / the space's)
    REPEAT = "repeat"  # never trained: the same genome as an earlier trial, whose result is copied
    RUNNING = "running"  # still training (or the last report was an intermediate epoch)
    INTERRUPTED = "interrupted"  # never trained: the driver stopped between proposing and launching it

    def __str__(self) -> str:  # f"{status}" prints the stored word
        return self.value


# Plain strings (not enum members) so that pandas ``isin``, sets and dict keys match the words
# read back from a CSV or optuna.db: an Enum member hashes by its name, not by its value.
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
FINISHED: tuple[str, ...] = (Status.OK.value, Status.STOPPED.value)
"""Trained (to the end, or until the scheduler stopped it at a rung): they spent the budget."""
FRONT: tuple[str, ...] = (Status.OK.value,)
"""Trained to the full budget: the only trials on a front, in a hypervolume, in export's ranks
and told to the sampler as final. A trial stopped at a rung has an accuracy of an earlier epoch
than the others': treating it as final made a fast genome stopped at an early rung look worse
than it is. It is recorded with the epochs it reached and told to Optuna as PRUNED."""
FAILED: tuple[str, ...] = (Status.FAILED.value, Status.REJECTED.value)
"""What the search reports as failed or rejected (and tells Optuna FAIL)."""
NOT_TRAINED: tuple[str, ...] = (Status.REJECTED.value, Status.REPEAT.value, Status.INTERRUPTED.value)
"""Never trained here: they do not count towards ``--trials``."""
COUNTED: tuple[str, ...] = (*FINISHED, Status.FAILED.value)
"""Trials that spent the budget: trained, or tried to train."""
TOLD_FAIL: tuple[str, ...] = (Status.FAILED.value, Status.REPEAT.value, Status.INTERRUPTED.value)
"""Statuses Optuna is told FAIL for: they never enter the sampler's model or the front. A
``rejected`` genome is told COMPLETE with the worst values and its violated constraints
(``trial.set_constraint``), so the sampler learns where the limits lie."""

WORKER_DIED = "the trial's worker died, and again on each retry (see ray/ logs)"
DRIVER_STOPPED = "the driver stopped before the trial started"
REASON_CHARS = 500
TSE_EPOCHS = 2  # the training-speed score's epochs, as `archlab fidelity --tse-epochs` defaults  # a reason is one line for a table, not a traceback


def final_status(reported: str | None, error: bool) -> Status:
    """THE normalising rule: the final status of a trial from the status of its last report
    (``None``: it reported nothing) and whether Ray saw it error.

    * no report: ``failed`` if it errored, else ``ok``;
    * ``running``: its last report was an intermediate epoch, so ASHA stopped it: ``stopped``;
    * an error (the worker died, Ray raised) turns a trial cut off mid-run (last report
      ``running``) into ``failed``; a last report ``ok`` (the final epoch, its checkpoint
      saved) stays ``ok``: a driver killed right after it made Ray restore the trial as errored,
      and the complete result was thrown away (seen in test_resume_after_killing_the_driver).
    """
    status = Status(reported) if reported else (Status.FAILED if error else Status.OK)
    if error and status is not Status.OK and status.value not in FAILED:
        return Status.FAILED
    return Status.STOPPED if status is Status.RUNNING else status


def status_from_optuna(stored: str | None, state: str) -> Status:
    """A stored trial's status given its Optuna state name. An Optuna trial still RUNNING or
    WAITING is running whatever the attribute says (it was written before the end); a trial
    with no status attribute (written by something else) follows its Optuna state."""
    if state in ("RUNNING", "WAITING"):
        return Status.RUNNING
    if stored:
        return Status(stored)
    return Status.FAILED if state == "FAIL" else Status.OK


def _finite(v: Any) -> Any:
    """NaN and infinities are stored as missing: Optuna's JSON attributes and CSV readers
    disagree on them, and a missing value is what they mean (not measured)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """One trial's outcome, as the search stores it in Optuna user attributes.

    Every field is optional except the status: a rejected genome has costs but no accuracy, a
    trial whose worker died may have nothing but a reason. Floats that are not finite are
    stored as missing.
    """

    status: Status
    reason: str = ""
    ray_trial_id: str | None = None
    # The network the costs are of: the target (what a user ships) of a study with a target;
    # the trained network itself in a study from before targets. ``proxy_genome``: the network
    # trained to estimate its accuracy (``model.reduction.Reduction.proxy_of`` of the target).
    genome: str | None = None
    genome_id: str | None = None
    proxy_genome: str | None = None
    proxy_genome_id: str | None = None
    label: str | None = None  # a baseline's name ("pure A"), else empty
    val_top1: float | None = None  # fractions in [0, 1]; with --seeds K the mean of the K seeds
    val_top5: float | None = None
    # The target's costs at the target clip (a study from before targets: the trained
    # network's at the proxy clip); latency at batch 1 on the trial's own device.
    latency_ms: float | None = None
    clips_per_s: float | None = None
    gmacs: float | None = None
    params: int | None = None
    # The proxy's own costs, at the proxy clip: what a trial trained, never a front's units.
    proxy_latency_ms: float | None = None
    proxy_gmacs: float | None = None
    proxy_params: int | None = None
    # The latency table's prediction for the target (a search with --max-latency-ms or
    # --latency predicted); with --latency predicted it is also the trial's latency_ms until
    # the full-budget trials are measured end to end after the search.
    predicted_latency_ms: float | None = None
    # How many proposals the sampler drew for this trial before one met the limits known
    # before training (1: its first); missing where proposals are not redrawn.
    drafts: int | None = None
    epochs: int | None = None  # epochs trained (ASHA may stop a trial before the last)
    checkpoint: str | None = None  # directory of best.pt, relative to the study directory
    train_time_s: float | None = None
    trial_time_s: float | None = None
    node: str | None = None  # the Ray node it ran on (first 12 characters of its id)
    # The forms its figures were taken in (archlab.measure.forms names; latency_runtime torch |
    # onnxruntime | openvino): latencies of different forms are never points of one front.
    # Missing for studies from before forms were recorded (fp32/ncdhw eager torch).
    train_form: str | None = None
    latency_form: str | None = None
    latency_runtime: str | None = None
    restarted: str | None = None  # why it trained again from scratch (its checkpoint was corrupt)
    # Cheaper rankers, recorded beside val top-1 for `archlab fidelity`'s comparison: the last
    # epoch's losses, the training-speed score (sum of the mean training
    # losses of the last TSE_EPOCHS epochs; lower is better) and synflow before any training.
    train_loss: float | None = None
    val_loss: float | None = None
    train_speed: float | None = None
    synflow: float | None = None
    # --seeds K (archlab.search.seeds): the seeds trained, each one's last-epoch val_top1 and
    # their sample std (None with one seed). A record from before seeds were recorded has
    # none: its one seed is the recipe's and its value is val_top1.
    seeds: list[int] | None = None
    seed_top1: list[float] | None = None
    val_top1_std: float | None = None
    # The plateau rule (archlab.training.plateau): how many of the trial's seeds restarted
    # because their training loss was still at ln(classes) after the rule's epochs, and which
    # (never reported to a scheduler or the sampler; seed s went on as s + 1000, then s + 2000:
    # ``seeds`` stays the trial's own, what ``archlab train --seed`` retrains it with). Missing
    # in a study from before the rule.
    restarted_plateau: int | None = None
    plateau_seeds: list[int] | None = None
    # A confirm run (study ``<name>:confirm``): the number of the search trial it retrains.
    confirm_of: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        if len(self.reason) > REASON_CHARS:
            object.__setattr__(self, "reason", self.reason[:REASON_CHARS])

    @property
    def finished(self) -> bool:
        return self.status.value in FINISHED

    @property
    def counted(self) -> bool:
        """Whether this trial spent the budget (``--trials``)."""
        return self.status.value in COUNTED

    @property
    def told_fail(self) -> bool:
        """Whether Optuna is told FAIL (never in the sampler's model or the front)."""
        return self.status.value in TOLD_FAIL

    def to_attrs(self) -> dict[str, Any]:
        """The user attributes to write: missing and non-finite values are left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Status):
                v = v.value
            v = _finite(v)
            if v is not None:
                out[f.name] = v
        return out

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], state: str = "COMPLETE") -> "TrialRecord":
        """Read a stored trial back (unknown attributes are ignored: older or newer studies)."""
        known = {f.name for f in fields(cls)} - {"status"}
        kw = {k: _finite(v) for k, v in attrs.items() if k in known}
        kw["reason"] = kw.get("reason") or ""
        return cls(status=status_from_optuna(attrs.get("status"), state), **kw)

    @classmethod
    def from_result(cls, result: Mapping[str, Any] | None, error: bool, **extra: Any) -> "TrialRecord":
        """The record of a trial Ray finished, from its last reported metrics (``None``: it
        reported nothing) and whether it errored. Applies ``final_status``; a trial turned
        into ``failed`` by an error without a reason gets ``WORKER_DIED``."""
        result = dict(result or {})
        status = final_status(result.get("status"), error)
        reason = str(result.get("reason") or "")
        if status is Status.FAILED and not reason:
            reason = WORKER_DIED
        known = {f.name for f in fields(cls)} - {"status", "reason"}
        kw = {k: v for k, v in result.items() if k in known}
        kw.update(extra)
        return cls(status=status, reason=reason, **kw)

    def with_(self, **changes: Any) -> "TrialRecord":
        return replace(self, **changes)


ATTRS: tuple[str, ...] = tuple(f.name for f in fields(TrialRecord))
"""The user-attribute schema, in a stable order (results.csv columns follow it)."""
