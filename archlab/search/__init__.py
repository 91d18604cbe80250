"""`archlab search`: Ray Tune runs the trials, Optuna proposes the genomes, ASHA stops weak
proxies early.

The package, in the order data flows:

    config.py     SearchConfig: every setting, validated when built; check_environment
    studydir.py   the study directory: its lock, study.yaml (settings, clip, recipe, versions)
    trial.py      the worker side: genome -> costs -> latency -> proxy training, a report per epoch
    searchers.py  Optuna behind Ray's searcher API (the only file using private Ray/Optuna attributes)
    driver.py     search(): validate, open the study, start Ray (127.0.0.1), run, write the tables

Importing this package imports no Ray (the driver imports it when a search runs).
"""

from .config import SearchConfig, SearchOutcome, check_environment
from .driver import baseline_genomes, search, shutdown
from .studydir import StudyLock, prepare_study, write_settings

__all__ = ["SearchConfig", "SearchOutcome", "StudyLock", "baseline_genomes", "check_environment", "prepare_study",
           "search", "shutdown", "write_settings"]
