"""Search spaces: short YAML files that say which genomes a search may try.

A space is *define-by-run*: ``suggest(trial)`` asks an Optuna trial (or anything with
``suggest_categorical`` / ``suggest_int``) for its parameters and returns a Genome. The same
function serves Optuna's samplers, ``from_params`` (rebuild a genome from a trial's
parameters), ``sample`` (uniform random draws for baselines) and ``cardinality`` (the exact
number of parameter assignments), so the four can never disagree.

A YAML space (``search_spaces/NAME.yaml``) has these keys (see the shipped files):

    description  one line (required)
    kind         how the block letters are chosen:
                   interleave  the P3D global cycle (``cycle``, ``phase``) with the last
                               ``n_2d`` stages plain 2D (presets.p3d_letters)
                   uniform     one ``letters`` choice for every 3D block, last ``n_2d`` stages 2D
                   per_stage   each stage picks one of ``letters``; "cycle" continues the
                               global cycle through that stage
                   free        every block picks one of ``letters``
    depths       per stage, the block counts to choose from: [[1, 2, 3], [1, 2, 4], ...]
    widths       width multipliers of every stage and the stem (genome.scale_widths)
    fields       fixed genome fields in genome-string syntax, e.g. "stem=2d/s t=-,-,p,p";
                 unset fields keep the genome defaults (the official P3D skeleton)
    choices      genome fields to search, in the same syntax: {stem: [2d/ts, 2d/s]}
    cycle, phase, n_2d, letters    as above, per kind
    max_gmacs, max_params, input   constraints, checked by ``violates`` at clip ``input``
    python       "module:function": the space is ``function(trial) -> Genome``; only
                 description and the constraint keys may sit beside it

Every value that offers choices may also be a single value (fixed, not a parameter). Integer
choices that form a range are asked with ``suggest_int`` (ordered, which TPE exploits);
anything else with ``suggest_categorical``. Parameter names: ``depth_1..``, ``width``,
``n_2d``, ``phase``, ``letter``, ``letter_1..`` (per stage), ``block_2_3`` (stage 2, block 3)
and the ``choices`` field names.
"""

from .load import (
    COMMON_KEYS,
    DEFAULT_INPUT,
    KIND_KEYS,
    PYTHON_KEYS,
    SEARCHABLE_FIELDS,
    list_spaces,
    load_space,
    space_folders,
)
from .space import CYCLE, KINDS, PythonSpace, Space, YamlSpace, space_genomes
from .trials import ENUMERATION_LIMIT, enumerate_count

__all__ = [
    "COMMON_KEYS",
    "CYCLE",
    "DEFAULT_INPUT",
    "ENUMERATION_LIMIT",
    "KINDS",
    "KIND_KEYS",
    "PYTHON_KEYS",
    "PythonSpace",
    "SEARCHABLE_FIELDS",
    "Space",
    "YamlSpace",
    "enumerate_count",
    "list_spaces",
    "load_space",
    "space_folders",
    "space_genomes",
]
