"""The defaults of one fidelity measurement, in one place: `archlab fidelity`'s options, a
experiment's ``fidelity:`` section and ``FidelityConfig`` all read them here. Plain values and no
imports, so the command line builds its parser without torch.

Keys are the command's options in snake_case. ``anchors`` is "all", "none" or a list of
anchor names; ``workers`` None means usable cores // threads. The proxy recipe's own
defaults are ``ProxyRecipe``'s (the search's recipe).
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    "space": "interleave",
    "genomes": 10,  # sampled from the space (stratified by GMACs), besides the anchors
    "anchors": "all",
    "seeds": 3,  # proxy seeds per genome (run k trains seed k)
    "ref_seeds": 2,  # one seed's reference is too noisy to rank against
    "ref_epochs_x": 1.5,  # reference epochs = this x proxy epochs, rounded
    "ref_clips_x": 2,  # reference clips = this x proxy clips, rounded
    "fresh_clips": False,
    "data_seed": 0,
    "sample_seed": 0,
    "tse_epochs": 2,  # epochs summed by the training-speed score
    "max_gmacs": None,  # None: the space's own limit
    "threads": 1,  # torch threads per run: reproducible float sums
    "workers": None,
}
# --quick: a smoke run of a few seconds (tests, a first look); the measurement's keys, then
# the proxy recipe's.
QUICK: dict[str, Any] = {
    "genomes": 1,
    "anchors": ["2D"],
    "seeds": 2,
    "ref_seeds": 1,
    "ref_epochs_x": 2,
    "ref_clips_x": 1,
    "workers": 1,
}
QUICK_RECIPE: dict[str, Any] = {"epochs": 1, "train_clips": 32, "val_clips": 24}
# The targets a measurement is judged by (docs/guide/fidelity.md), each a bound on one figure
# of the summary: at most (std, gaps, shares) or at least (rank agreements, the gain of the
# anchors that see motion). ``tail_share``: the share of proxy runs more than 0.2
# (archlab.results.tail.TAIL_GAP) below their genome's median val top-1.
TARGETS: dict[str, float] = {
    "median_seed_std": 0.03,
    "seed_tau": 0.7,
    "proxy_vs_ref_rho": 0.8,
    "blind_anchor_max_gap": 0.05,
    "seeing_anchor_min_gain": 0.3,
    "tail_share": 0.01,
}
