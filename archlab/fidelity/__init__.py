"""Proxy fidelity: how much a trial's accuracy is evidence and how much it is luck.

``stats`` (rank correlations, confidence intervals, bimodal seeds), ``scores`` (the
training-speed score and the synflow zero-cost score), ``anchors`` (the fixed landmark
genomes), ``runner`` (``archlab fidelity``: train genomes over seeds at a proxy and a
reference budget, both ``ProxyRecipe``s) and ``summary`` (its statistics and files).
"""
