"""Loading an experiment file: every key of every section checked before anything runs, each
failure one line naming the file and the key (``tiny.yaml: key 'train.lr': ...``).

A train section's recipe and a search's recipe keys are checked by ``ProxyRecipe`` (the one
definition of what a proxy recipe may be); this module adds what only an experiment knows: the
synthetic data's class range, LIMITS of its own keys, seeds, labels, and the names of
``data_opts`` (checked against the dataset's constructor: a typo would fail every trial).
A search's own settings are checked by ``SearchConfig``, which validates itself when built."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ..model.genome import Genome, GenomeError
from ..training.recipe import LIMITS as RECIPE_LIMITS
from ..training.recipe import ProxyRecipe
from ..util import named
from ..util.errors import UserError, shorten
from ..util.yaml_checks import is_int, is_number, mapping
from .spec import (
    CYCLE_KEYS,
    FIDELITY_KEYS,
    LABEL,
    LIMITS,
    QUICK_KEYS,
    QUICK_SEARCH,
    QUICK_SEARCH_SYNTHETIC,
    QUICK_TRAIN,
    RECIPE_KEYS,
    SEARCH_FIXED,
    SEARCH_KEYS,
    STUDY_TRAIN_DEFAULTS,
    TOP_KEYS,
    TRAIN_KEYS,
    Experiment,
    TrainSpec,
    experiment_folders,
)


def load_experiment(name_or_path: str | Path, quick: bool = False) -> Experiment:
    """An experiment by name (``NAME.yaml`` in ``experiment_folders()``) or by path to a ``.yaml`` file, checked
    completely (genomes parse and fit the clip, spaces load) without running anything."""
    return _from_file(named.resolve(str(name_or_path), experiment_folders(), "experiment", "experiments"), quick)


def list_experiments() -> list[Experiment]:
    """Every experiment that a name finds (``experiment_folders``), by name."""
    return [load_experiment(p) for p in named.listing(experiment_folders()).values()]


def _section(data: dict[str, Any], key: str) -> Any:
    """A section that may be absent or empty (null); anything else is checked as a mapping
    (``search.common: 0`` is an error, not "no common settings")."""
    value = data.get(key)
    return {} if value is None else value


def _from_file(path: Path, quick: bool) -> Experiment:
    where = path.name
    data = mapping(where, "", named.read(path), TOP_KEYS)
    name, desc = named.name_and_description(path, data)
    if not any(k in data for k in ("train", "search", "fidelity")):
        raise UserError(f"{where}: give a 'train', 'search' or 'fidelity' section (or several)")
    # The quick section is checked on every load, so that --quick cannot fail on a file that loads.
    q = mapping(where, "quick", _section(data, "quick"), QUICK_KEYS)
    q_train = mapping(where, "quick.train", _section(q, "train"), tuple(k for k in TRAIN_KEYS if k != "genomes"))
    q_search = mapping(where, "quick.search", _section(q, "search"), _search_keys())
    _check_search_settings(where, "quick.search", q_search)
    q_fidelity = mapping(where, "quick.fidelity", _section(q, "fidelity"), FIDELITY_KEYS)
    train = fidelity = None
    searches: dict[str, Any] = {}
    for use_quick in (True,) if quick else (True, False):  # the last pass is the one kept
        if "train" in data:
            train = _train_spec(where, data["train"], q_train if use_quick else None)
        if "search" in data:
            searches = _searches(where, path.parent, data["search"], q_search if use_quick else None)
        if "fidelity" in data:
            fidelity = _fidelity(where, path.parent, _section(data, "fidelity"), q_fidelity if use_quick else None)
    cycle = _cycle(where, _section(data, "cycle"), searches) if "cycle" in data else None
    return Experiment(
        name=name,
        description=desc,
        path=path,
        quick=quick,
        train=train,
        searches=searches,
        fidelity=fidelity,
        cycle=cycle,
    )


# ---- the recipe (train section and searches) -------------------------------------------------


def _limit(where: str, key: str, name: str, value: Any) -> None:
    if name in LIMITS and is_int(value) and value > LIMITS[name]:
        raise UserError(
            f"{where}: key '{key}.{name}': {shorten(value)} is more than an experiment may ask for "
            f"(at most {LIMITS[name]:,})"
        )


def recipe(where: str, key: str, values: dict[str, Any], base: ProxyRecipe | None = None) -> ProxyRecipe:
    """``base`` (default: the recipe's defaults) with ``values``; a bad value names its key.
    Each value is first checked alone, so the message is about that key and nothing else."""
    base = base or ProxyRecipe()
    for name, v in values.items():
        try:
            base.with_(**{name: v})
        except UserError as e:
            raise UserError(f"{where}: key '{key}.{name}': {_without_option(str(e), name)}") from None
        _limit(where, key, name, v)
    try:
        return base.with_(**values)
    except UserError as e:  # a rule between two keys
        raise UserError(f"{where}: key '{key}': {e}") from None


def _train_spec(where: str, value: Any, quick: dict[str, Any] | None) -> TrainSpec:
    from ..data.synthetic import MAX_CLASSES
    from ..measure.profile import count_fast
    from ..model.presets import resolve

    data = mapping(where, "train", value, TRAIN_KEYS)
    opts = {**STUDY_TRAIN_DEFAULTS, **{k: v for k, v in data.items() if k != "genomes"}}
    if quick is not None:
        seeds = opts["seeds"]
        opts.update(QUICK_TRAIN, seeds=seeds[:1] if isinstance(seeds, list) else seeds)
        opts.update(quick)

    def bad(key: str, what: str) -> UserError:
        return UserError(f"{where}: key 'train.{key}': {shorten(opts[key])} {what}")

    seeds = opts["seeds"] if isinstance(opts["seeds"], list) else [opts["seeds"]]
    if not seeds or not all(is_int(s) and 0 <= s < 2**31 for s in seeds) or len(set(seeds)) != len(seeds):
        raise bad("seeds", "must be distinct integers in 0..2^31-1, e.g. [0, 1]")
    _limit(where, "train", "seeds", len(seeds))
    if not is_int(opts["latency_runs"]) or opts["latency_runs"] < 1:
        raise bad("latency_runs", "must be a positive integer")
    _limit(where, "train", "latency_runs", opts["latency_runs"])
    if opts["threads"] is not None and (not is_int(opts["threads"]) or opts["threads"] < 1):
        raise bad("threads", "must be a positive integer or null")
    _limit(where, "train", "threads", opts["threads"])
    if not is_int(opts["workers"]) or opts["workers"] < 1:
        raise bad("workers", "must be a positive integer")
    _limit(where, "train", "workers", opts["workers"])
    rec = recipe(where, "train", {k: opts[k] for k in RECIPE_KEYS if k in opts})
    if rec.classes > MAX_CLASSES:
        raise bad("classes", f"must be an integer in 2..{MAX_CLASSES} (the synthetic benchmark's classes)")
    if rec.frames < 4 or rec.size < 16:
        raise UserError(
            f"{where}: key 'train.frames'/'train.size': the synthetic clips need at least 4 frames "
            f"of 16x16 pixels, got {rec.frames}x{rec.size}x{rec.size}"
        )

    entries = data.get("genomes")
    if not isinstance(entries, dict) or not entries:
        raise UserError(f"{where}: key 'train.genomes' is required: a mapping LABEL: GENOME_OR_PRESET")
    clip = rec.clip
    genomes: dict[str, Genome] = {}
    for label, text in entries.items():
        key = f"train.genomes.{shorten(label, 40, plain=True)}"
        if not isinstance(label, str) or not LABEL.match(label):
            raise UserError(f"{where}: key {key!r}: a label is a directory name (letters, digits, _ . + -; at most 64)")
        if not isinstance(text, str):
            raise UserError(f"{where}: key {key!r}: {shorten(text)} is not a genome string or a preset name")
        try:
            g = resolve(text, classes=rec.classes)
            count_fast(g, clip)  # the clip must be large enough for the network
        except GenomeError as e:
            raise UserError(f"{where}: key {key!r}: {e}") from None
        except UserError as e:
            raise UserError(f"{where}: key {key!r} at clip {'x'.join(map(str, clip))}: {e}") from None
        genomes[label] = g
    if opts["compare"] is not None and opts["compare"] not in genomes:
        raise bad("compare", f"is not one of the genomes' labels ({', '.join(genomes)})")
    return TrainSpec(
        genomes=genomes,
        recipe=rec,
        seeds=list(seeds),
        latency_runs=opts["latency_runs"],
        threads=opts["threads"],
        compare=opts["compare"],
        workers=opts["workers"],
    )


# ---- searches --------------------------------------------------------------------------------


def _search_config() -> type:
    from ..search import SearchConfig  # imports no ray: that happens when a search runs

    return SearchConfig


def _default_trials() -> int:
    from ..search.config import DEFAULT_TRIALS

    return DEFAULT_TRIALS


def _search_keys() -> tuple[str, ...]:
    return tuple(k for k in _search_config().keys() if k not in SEARCH_FIXED)


def _without_option(text: str, name: str) -> str:
    """A recipe or SearchConfig message says "--lr must be ..."; in a file the key is named."""
    option = "--" + name.replace("_", "-")
    return text[len(option) + 1 :] if text.startswith(option + " ") else text


def _check_search_settings(where: str, key: str, values: dict[str, Any]) -> None:
    """Each setting alone, by the ones that own its rules: ``ProxyRecipe`` for a recipe key,
    ``SearchConfig`` (validated when built) for the search's own; ``data``/``data_root``
    depend on each other and are checked with the whole search (``_searches``)."""
    SearchConfig = _search_config()
    for k, v in values.items():
        if k in ProxyRecipe.names():
            recipe(where, key, {k: v})
        elif k == "data_opts" and not isinstance(v, dict):
            raise UserError(f"{where}: key '{key}.{k}': {shorten(v)} is not a mapping of dataset options")
        elif k not in ("data", "data_root"):
            try:
                SearchConfig.from_settings({k: v})
            except UserError as e:
                raise UserError(f"{where}: key '{key}.{k}': {_without_option(str(e), k)}") from None


def _dataset_class(data: str) -> type:
    if data == "synthetic":
        from ..data.synthetic import SyntheticMotion

        return SyntheticMotion
    if data == "ucf101":
        from ..data.ucf101 import UCF101

        return UCF101
    from ..data.folder import VideoFolder

    return VideoFolder


def _check_data_opts(where: str, key: str, data: str, opts: dict[str, Any]) -> None:
    """Options passed to the dataset's constructor: names it takes (a typo would fail every
    trial), plain values, whole numbers within an experiment's limits."""
    params = inspect.signature(_dataset_class(data).__init__).parameters
    # set from the recipe and the search itself, not by data_opts
    taken = [n for n, p in params.items() if p.kind == p.KEYWORD_ONLY and n not in ("frames", "size", "root")]
    for k, v in opts.items():
        if k not in taken:
            raise UserError(
                f"{where}: key '{key}': unknown option {shorten(k)} for the {data} dataset "
                f"(options: {', '.join(taken)})"
            )
        if not (
            v is None
            or isinstance(v, (bool, str))
            or is_number(v)
            or (isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v))
        ):
            raise UserError(f"{where}: key '{key}.{k}': {shorten(v)} is not a plain value")
        if is_int(v) and not 0 <= v <= RECIPE_LIMITS["clips"]:  # n_clips, seed...: none is larger
            raise UserError(f"{where}: key '{key}.{k}': {shorten(v)} must be in 0..{RECIPE_LIMITS['clips']:,}")


def _searches(where: str, base: Path, value: Any, quick: dict[str, Any] | None) -> dict[str, Any]:
    """label -> SearchConfig: SearchConfig defaults < common < the search's own < quick."""
    from ..results.study import parse_objectives
    from ..spaces import load_space

    SearchConfig = _search_config()
    allowed = _search_keys()
    data = mapping(where, "search", value, SEARCH_KEYS)
    common = mapping(where, "search.common", _section(data, "common"), allowed)
    _check_search_settings(where, "search.common", common)
    entries = data.get("searches")
    if not isinstance(entries, dict) or not entries:
        raise UserError(f"{where}: key 'search.searches' is required: a mapping LABEL: {{SearchConfig overrides}}")
    out: dict[str, Any] = {}
    objectives = None
    for label, own in entries.items():
        key = f"search.searches.{shorten(label, 40, plain=True)}"
        if not isinstance(label, str) or not LABEL.match(label):
            raise UserError(f"{where}: key {key!r}: a label is a directory name (letters, digits, _ . + -; at most 64)")
        own = mapping(where, key, {} if own is None else own, allowed)
        _check_search_settings(where, key, own)
        settings = {**common, **own}
        if quick is not None:
            synthetic = settings.get("data", "synthetic") == "synthetic"
            settings.update({**QUICK_SEARCH, **(QUICK_SEARCH_SYNTHETIC if synthetic else {}), **quick})
            if synthetic and "n_clips" in (settings.get("data_opts") or {}):  # n_clips overrides the clip counts
                settings["data_opts"] = {**settings["data_opts"], "n_clips": QUICK_SEARCH_SYNTHETIC["train_clips"]}
        space = settings.get("space", SearchConfig.space)
        if isinstance(space, str) and (space.endswith((".yaml", ".yml")) or "/" in space):
            settings["space"] = str((base / space).resolve())  # a file beside the experiment, for Ray workers: absolute
        rec = recipe(where, key, {k: v for k, v in settings.items() if k in ProxyRecipe.names()})
        own_settings = {k: v for k, v in settings.items() if k not in ProxyRecipe.names()}
        # an experiment's search runs exactly the budget its file gives (or the default), also when
        # continued: `trials: None` would mean "the stored budget" to the search
        own_settings.setdefault("trials", _default_trials())
        try:  # the rules between settings (data needs data_root...): SearchConfig's own
            cfg = SearchConfig.from_settings({**own_settings, "recipe": rec.as_dict()})
        except UserError as e:
            raise UserError(f"{where}: key {key!r}: {e}") from None
        _check_data_opts(where, f"{key}.data_opts", cfg.data, cfg.data_opts)
        try:
            load_space(cfg.space)
            objs = parse_objectives(cfg.objectives)
        except UserError as e:
            raise UserError(f"{where}: key {key!r}: {e}") from None
        if objectives is not None and objs != objectives:
            raise UserError(
                f"{where}: key '{key}.objectives': every search must have the same objectives "
                "(their fronts are compared on one reference point)"
            )
        objectives = objs
        out[label] = cfg
    return out


# ---- fidelity ----------------------------------------------------------------------------------

_FIDELITY_INTS = ("genomes", "seeds", "ref_seeds", "data_seed", "sample_seed", "tse_epochs", "threads")


def _fidelity(where: str, base: Path, value: Any, quick: dict[str, Any] | None) -> Any:
    """The FidelityConfig of a ``fidelity:`` section (out left empty: the experiment's run sets it).
    The section's own keys are typed here, the recipe's by ProxyRecipe, the rules between
    them by FidelityConfig (the same checks as `archlab fidelity`'s options)."""
    from ..fidelity.anchors import ANCHORS, anchor_names
    from ..fidelity.defaults import DEFAULTS, QUICK, QUICK_RECIPE
    from ..fidelity.runner import FidelityConfig, reference_of
    from ..spaces import load_space
    from ..util.versions import default_workers

    data = mapping(where, "fidelity", value, FIDELITY_KEYS)
    quick_opts = {**QUICK, **QUICK_RECIPE, **quick} if quick is not None else {}
    opts = {**DEFAULTS, **data, **quick_opts}

    def bad(key: str, what: str) -> UserError:
        return UserError(f"{where}: key 'fidelity.{key}': {shorten(opts[key])} {what}")

    for k in _FIDELITY_INTS:
        if not is_int(opts[k]) or opts[k] < 0:
            raise bad(k, "must be a whole number, at least 0")
    if opts["workers"] is not None and (not is_int(opts["workers"]) or opts["workers"] < 1):
        raise bad("workers", "must be a positive integer or null (usable cores // threads)")
    _limit(where, "fidelity", "threads", opts["threads"])
    _limit(where, "fidelity", "seeds", opts["seeds"])
    _limit(where, "fidelity", "seeds", opts["ref_seeds"])
    if not isinstance(opts["fresh_clips"], bool):
        raise bad("fresh_clips", "must be true or false")
    if opts["max_gmacs"] is not None and not (is_number(opts["max_gmacs"]) and opts["max_gmacs"] > 0):
        raise bad("max_gmacs", "must be a positive number or null (the space's own limit)")
    anchors = list(anchor_names(opts["anchors"])) if opts["anchors"] in ("all", "none") else opts["anchors"]
    if not isinstance(anchors, list) or any(a not in ANCHORS for a in anchors):
        raise bad("anchors", f"must be 'all', 'none' or a list of {', '.join(ANCHORS)}")
    space = opts["space"]
    if not isinstance(space, str) or not space:
        raise bad("space", "must be a space name or a .yaml file")
    if space.endswith((".yaml", ".yml")) or "/" in space:
        space = str((base / space).resolve())
    try:
        load_space(space)
    except UserError as e:
        raise UserError(f"{where}: key 'fidelity.space': {e}") from None
    proxy = recipe(where, "fidelity", {k: opts[k] for k in RECIPE_KEYS if k in opts})
    for k in ("ref_epochs_x", "ref_clips_x"):  # fractions allowed: the products are rounded
        if not is_number(opts[k]) or not opts[k] >= 1:
            raise bad(k, "must be a number, at least 1")
    try:
        ref = reference_of(proxy, opts["ref_epochs_x"], opts["ref_clips_x"])
    except UserError as e:
        raise UserError(f"{where}: key 'fidelity': the reference budget (ref_epochs_x, ref_clips_x): {e}") from None
    # null: what the CLI does, one run per core (threads 0 is refused just below)
    workers = opts["workers"] if opts["workers"] is not None else default_workers(opts["threads"])
    try:
        return FidelityConfig(
            out="",
            space=space,
            genomes=opts["genomes"],
            anchors=tuple(anchors),
            seeds=opts["seeds"],
            ref_seeds=opts["ref_seeds"],
            proxy=proxy,
            reference=ref,
            data_seed=opts["data_seed"],
            fresh_clips=opts["fresh_clips"],
            sample_seed=opts["sample_seed"],
            tse_epochs=opts["tse_epochs"],
            max_gmacs=opts["max_gmacs"],
            threads=opts["threads"],
            workers=workers,
        )
    except UserError as e:
        text = str(e)
        key = text.split(" ")[0][2:].replace("-", "_") if text.startswith("--") else ""
        raise UserError(
            f"{where}: key 'fidelity{'.' + key if key else ''}': {_without_option(text, key) if key else text}"
        ) from None


# ---- cycle -------------------------------------------------------------------------------------


def _cycle(where: str, value: Any, searches: dict[str, Any]) -> Any:
    """The CycleSpec of a ``cycle:`` section: its search must be one of the file's, trained on
    the synthetic data (the variants train as a train section does)."""
    from ..util.versions import default_workers
    from .cycle import VARIANTS, CycleSpec

    data = mapping(where, "cycle", value, CYCLE_KEYS)
    label = data.get("search")
    if label not in searches:
        raise UserError(
            f"{where}: key 'cycle.search': {shorten(label)} is not one of the file's searches "
            f"({', '.join(searches) or 'none'})"
        )
    if searches[label].data != "synthetic":
        raise UserError(
            f"{where}: key 'cycle.search': search {shorten(label)} trains on {searches[label].data}; "
            "the hand-made variants train on the synthetic data only"
        )
    variants = data.get("variants", list(VARIANTS))
    if (
        not isinstance(variants, list)
        or not variants
        or any(v not in VARIANTS for v in variants)
        or len(set(variants)) != len(variants)
    ):
        raise UserError(
            f"{where}: key 'cycle.variants': {shorten(variants)} must be a list of distinct {', '.join(VARIANTS)}"
        )
    workers = data.get("workers")
    if workers is not None and (not is_int(workers) or workers < 1):
        raise UserError(f"{where}: key 'cycle.workers': {shorten(workers)} must be a positive integer or null")
    _limit(where, "cycle", "workers", workers)
    return CycleSpec(
        search=label, variants=tuple(variants), workers=workers or default_workers(1)
    )  # the variants train at 1 thread
