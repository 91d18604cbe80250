"""`archlab search`: Ray Tune runs the trials, Optuna proposes the genomes, ASHA stops weak
proxies early.

The package, in the order data flows:

    config.py     SearchConfig: every setting, validated when built; check_environment
    studydir.py   the study directory: its lock, study.yaml (settings, clip, recipe, versions)
    trial.py      the worker side: genome -> costs -> latency -> proxy training, a report per epoch
    optuna_search.py   Optuna behind Ray's searcher API: proposals, constraints, records
    optuna_trials.py   a trial's record in Optuna; the trials a stopped driver left running
    samplers.py        nsga2 / tpe / random, each picklable
    feasible.py        proposals redrawn until they meet the limits known before training
    baselines.py       the paper's reference genomes, a fixed searcher
    rungs.py, mo_asha.py   MO-ASHA's rung decisions, and the Ray scheduler that feeds them
    seeds.py, confirm.py   K seeds per trial; the confirm step's retraining of the front
    progress.py        the console lines;  wandb_callback.py  Ray's hooks to the W&B tracker
    loopback.py        a local Ray cluster on 127.0.0.1 (with optuna_search.py and feasible.py the only
                       files using private Ray/Optuna attributes)
    driver.py     search(): validate, open the study, start Ray (127.0.0.1), run, write the tables

Importing this package imports no Ray (the driver imports it when a search runs).
"""

from .config import SearchConfig, SearchOutcome, check_environment
from .driver import baseline_genomes, search, shutdown
from .studydir import StudyLock, prepare_study, write_settings

__all__ = [
    "SearchConfig",
    "SearchOutcome",
    "StudyLock",
    "baseline_genomes",
    "check_environment",
    "prepare_study",
    "search",
    "shutdown",
    "write_settings",
]
