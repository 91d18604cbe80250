"""A search space for the fault tests: trials whose 'boom' parameter is 1 raise inside the
Ray worker (where the genome is rebuilt from the trial's params), never in the driver."""

from archlab.model.genome import parse

TINY_SPACE = """
description: tiny test space (2 stages, 1 block each)
kind: free
depths: [[1], [1]]
widths: [0.0625]
letters: [A, B, C, "2"]
fields: "stem=2d/s"
"""


def boom_space(trial):
    letter = trial.suggest_categorical("letter", ["A", "2"])
    boom = trial.suggest_categorical("boom", [0, 1])
    if boom and type(trial).__name__ in ("FixedTrial", "_FixedTrial"):  # the worker side (archlab.spaces or optuna)
        raise RuntimeError("boom: this trial fails on purpose")
    return parse(f"{letter}|2 stem=2d/s sw=4 w=4,8")


boom_space.cardinality = 4


def two_genomes(trial):
    """A space of exactly two genomes: a budget above 2 can only repeat them."""
    letter = trial.suggest_categorical("letter", ["A", "2"])
    return parse(f"{letter}|2 stem=2d/s sw=4 w=4,8")


two_genomes.cardinality = 2


def one_genome(trial):
    """A space of one genome: every proposal after the first is a twin or a repeat of it."""
    letter = trial.suggest_categorical("letter", ["A"])
    return parse(f"{letter}|2 stem=2d/s sw=4 w=4,8")


one_genome.cardinality = 1
