"""Studies: YAML files in ``studies/`` that reproduce an experiment and write its table.

A search answers "what is good in this space"; a study answers a fixed question ("does the
A->B->C mix beat each pure P3D block?", "does NSGA-II beat random search?") the same way on
every run, so its answer can be checked, re-run and compared. One file holds two kinds of
entries, either or both:

``train``
    named genomes (genome strings or preset names), each trained with ONE proxy recipe over
    one or more seeds; per genome: val top-1 (mean and std over seeds), params, GMACs,
    latency. Each (genome, seed) trains into ``train/<label>/seed<k>/`` of the study's
    output; a run that finished (``result.yaml``) is never retrained, and a run cut off
    mid-way continues from its last epoch (``train.train`` resumes its checkpoint). A run that
    ended in nan/oom/error is recorded as such, not retried: delete its directory to retry.
``search``
    named searches, each a set of ``SearchConfig`` overrides, run as ordinary studies of
    ``archlab search`` under ``searches/<label>/`` (a re-run continues them). Their fronts
    are compared on ONE reference point computed over every search's finished trials: a
    hypervolume is only comparable to another measured from the same point.

The file format (every key is checked; an error names the file and the key)::

    description: one line                          (required)
    train:                                         (optional)
      genomes: {LABEL: GENOME_OR_PRESET, ...}      (required; classes are set to the data's)
      seeds: [0, 1]          (one run per seed: the recipe's seed)
      any ProxyRecipe key but seed (archlab.recipe, the defaults search and `archlab train`
      use): epochs, batch, optimizer, lr, momentum, weight_decay, label_smoothing, warmup,
      zero_init, frames, size, train_clips, val_clips, classes (2..8: every genome gets this
      many outputs); upper limits in spec.LIMITS
      latency_runs: 10       threads: null  (torch threads; null = torch's default)
    search:                                        (optional)
      common: {search setting: value, ...}         (applied to every search)
      searches: {LABEL: {search setting: value, ...}, ...}   (required)
      (a search setting: a SearchConfig field or a recipe key, as `archlab search` takes them;
      data_opts names must be options of the dataset's constructor)
    quick:                                         (optional: what --quick changes)
      train: {train key: value, ...}               (not genomes)
      search: {SearchConfig field: value, ...}     (applied to every search, last)

``--quick`` shrinks a study to a smoke run of about a minute: ``spec.QUICK_TRAIN`` and
``spec.QUICK_SEARCH``, then the file's own ``quick:`` section on top. A quick run writes to
``<out>-quick`` so that it never mixes with (or blocks) the full run's results.

Output (default ``runs/studies/<name>/``): ``<name>.yaml`` (a copy of the file that ran),
``summary.csv`` (one row per entry, both kinds), ``summary.md``, ``profiles.json`` (the
latency cache, so a re-run prints the same table), ``train/``, ``searches/``.

The package: ``spec`` (the keys, limits and the Study/TrainSpec values), ``load`` (checking a
file), ``run`` (training, searching, reusing), ``summary`` (the CSV and markdown).
"""

from .load import list_studies, load_study
from .run import StudyResult, default_out, run_study
from .spec import LIMITS, TRAIN_KEYS, Study, TrainSpec, studies_dir
from .summary import SEARCH_COLUMNS, TRAIN_COLUMNS, summary_csv, summary_markdown

__all__ = ["LIMITS", "SEARCH_COLUMNS", "TRAIN_COLUMNS", "TRAIN_KEYS", "Study", "StudyResult", "TrainSpec",
           "default_out", "list_studies", "load_study", "run_study", "studies_dir", "summary_csv",
           "summary_markdown"]
