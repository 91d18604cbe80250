"""``archlab report`` and ``archlab dashboard``: what a study found, as plots and a document.

    numbers.py    hypervolume after each trial and over wall time, preset names, label text
    figures.py    the trade-off plots (PNG) and what every plot shares
    hypervolume_plot.py   the hypervolume plot (after each trial, over wall time)
    mix_plot.py   the block-mix plot (accuracy against each block type's fraction)
    document.py   report.md / report.html (build_report)
    dashboard.py  optuna-dashboard on the study's storage (serve_dashboard)

Everything reads the study through ``archlab.results.reader``. The names below are the package's
API (``from archlab.report import build_report``).
"""

from ..results.numbers import hypervolume_curve, hypervolume_time_curve, preset_names, short_genome, study_hypervolume
from .dashboard import serve_dashboard
from .document import FORMATS, TRIAL_HEADER, build_report
from .figures import AXIS_LABELS, chance_accuracy, plot_tradeoff, tradeoff_figure
from .hypervolume_plot import hypervolume_figure, plot_hypervolume
from .mix_plot import mix_figure, plot_mix

__all__ = [
    "AXIS_LABELS",
    "FORMATS",
    "TRIAL_HEADER",
    "build_report",
    "chance_accuracy",
    "hypervolume_curve",
    "hypervolume_figure",
    "hypervolume_time_curve",
    "mix_figure",
    "plot_hypervolume",
    "plot_mix",
    "plot_tradeoff",
    "preset_names",
    "serve_dashboard",
    "short_genome",
    "study_hypervolume",
    "tradeoff_figure",
]
