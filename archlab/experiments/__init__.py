"""Experiments: YAML files in ``experiments/`` that reproduce an experiment and write its table.

A search answers "what is good in this space"; an experiment answers a fixed question ("does the
A->B->C mix beat each pure P3D block?", "does NSGA-II beat random search?") the same way on
every run, so its answer can be checked, re-run and compared. One file holds three kinds of
entries, any or all:

``train``
    named genomes (genome strings or preset names), each trained with ONE proxy recipe over
    one or more seeds; per genome: val top-1 (mean and std over seeds), params, GMACs,
    latency. Each (genome, seed) trains into ``train/<label>/seed<k>/`` of the experiment's
    output; a run that finished (``result.yaml``) is never retrained, and a run cut off
    mid-way continues from its last epoch (``train.train`` resumes its checkpoint). A run that
    ended in nan/oom/error is recorded as such, not retried: delete its directory to retry.
``search``
    named searches, each a set of ``SearchConfig`` overrides, run as ordinary studies of
    ``archlab search`` under ``searches/<label>/`` (a re-run continues them). Their fronts
    are compared on ONE reference point computed over every search's finished trials: a
    hypervolume is only comparable to another measured from the same point, and at equal
    wall time (each search's trials completed within the shortest search's wall time).
    Searches labelled ``NAME-s<k>`` are search seeds of one configuration NAME: the summary
    adds their mean and spread.
``fidelity``
    one ``archlab fidelity`` measurement (``archlab.fidelity.runner``) in ``fidelity/``: seed
    noise, bimodal genomes, rank agreement with a reference budget; a re-run reuses every
    finished run, and a changed setting is refused before anything runs.

The file format (every key is checked; an error names the file and the key)::

    description: one line                          (required)
    train:                                         (optional)
      genomes: {LABEL: GENOME_OR_PRESET, ...}      (required; classes are set to the data's)
      seeds: [0, 1]          (one run per seed: the recipe's seed)
      any ProxyRecipe key but seed (archlab.training.recipe, the defaults search and `archlab train`
      use): epochs, batch, optimizer, lr, momentum, weight_decay, label_smoothing, warmup,
      zero_init, frames, size, train_clips, val_clips, classes (2..8: every genome gets this
      many outputs); upper limits in spec.LIMITS
      latency_runs: 10       threads: null  (torch threads; null = torch's default)
      workers: 1             (runs trained at once, one process each; with threads: 1 the
                              numbers are those of one at a time)
      compare: LABEL         (each row's difference to that genome, Welch's 95% interval)
    search:                                        (optional)
      common: {search setting: value, ...}         (applied to every search)
      searches: {LABEL: {search setting: value, ...}, ...}   (required)
      (a search setting: a SearchConfig field or a recipe key, as `archlab search` takes them;
      data_opts names must be options of the dataset's constructor)
    fidelity:                                      (optional)
      space: interleave   genomes: 10   anchors: all | none | [2D, P3D-A, ...]   seeds: 3
      ref_seeds: 2   ref_epochs_x: 1.5   ref_clips_x: 2   fresh_clips: false   data_seed: 0
      sample_seed: 0   tse_epochs: 2   max_gmacs: null   threads: 1   workers: null
      (the options of `archlab fidelity`; workers null = usable cores // threads) and any
      ProxyRecipe key but seed (the proxy budget; the reference is it x the multipliers)
    quick:                                         (optional: what --quick changes)
      train: {train key: value, ...}               (not genomes)
      fidelity: {fidelity key: value, ...}         (after `archlab fidelity --quick`'s sizes)
      search: {SearchConfig field: value, ...}     (applied to every search, last)

``--quick`` shrinks an experiment to a smoke run of about a minute: ``spec.QUICK_TRAIN`` and
``spec.QUICK_SEARCH``, then the file's own ``quick:`` section on top. A quick run writes to
``<out>-quick`` so that it never mixes with (or blocks) the full run's results.

Output (default ``runs/experiments/<name>/``): ``<name>.yaml`` (a copy of the file that ran),
``summary.csv`` (one row per entry, both kinds), ``summary.md``, ``profiles.json`` (the
latency cache, so a re-run prints the same table), ``train/``, ``searches/``, ``fidelity/``.

The package: ``spec`` (the keys, limits and the Experiment/TrainSpec values), ``load`` (checking a
file), ``run`` (training, searching, reusing), ``summary`` (the CSV and markdown).
"""

from .load import list_experiments, load_experiment
from .run import ExperimentResult, default_out, run_experiment
from .spec import LIMITS, TRAIN_KEYS, Experiment, TrainSpec, experiment_folders
from .summary import SEARCH_COLUMNS, TRAIN_COLUMNS, summary_csv, summary_markdown

__all__ = [
    "LIMITS",
    "SEARCH_COLUMNS",
    "TRAIN_COLUMNS",
    "TRAIN_KEYS",
    "Experiment",
    "ExperimentResult",
    "TrainSpec",
    "default_out",
    "list_experiments",
    "load_experiment",
    "run_experiment",
    "experiment_folders",
    "summary_csv",
    "summary_markdown",
]
