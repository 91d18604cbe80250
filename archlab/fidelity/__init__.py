"""Proxy fidelity: how much a trial's accuracy is evidence and how much it is luck.

``stats`` (rank correlations, confidence intervals, bimodal seeds), ``scores`` (the
training-speed score and the synflow zero-cost score) and ``runner`` (``archlab fidelity``:
train genomes over seeds at a proxy and a reference budget and compare).
"""
