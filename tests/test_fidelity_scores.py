"""synflow against a hand-computed value, and on real genomes."""

import pytest
import torch
from torch import nn

from archlab.measure import scores
from archlab.model.genome import parse


def test_synflow_of_a_two_layer_chain_is_twice_its_output():
    """Conv3d 1x1x1 (3->2) -> BN -> global pool -> Linear (2->1), no biases, all-ones input:
    with |weights|, R = sum_j |v_j| sum_i |K_ji|, and each layer's sum |theta dR/dtheta| is R,
    so synflow = 2R, whatever the BN's statistics (BN is identity for synflow)."""
    torch.manual_seed(0)
    conv = nn.Conv3d(3, 2, 1, bias=False)
    bn = nn.BatchNorm3d(2)
    bn.running_mean.fill_(5.0)
    bn.running_var.fill_(9.0)
    bn.weight.data.fill_(-3.0)
    fc = nn.Linear(2, 1, bias=False)
    model = nn.Sequential(conv, bn, nn.AdaptiveAvgPool3d(1), nn.Flatten(), fc)
    k = conv.weight.detach().abs().double().view(2, 3)
    v = fc.weight.detach().abs().double().view(2)
    r = float((v * k.sum(dim=1)).sum())
    before = {n: p.clone() for n, p in model.state_dict().items()}
    assert scores.synflow(model, (2, 4, 4)) == pytest.approx(2 * r, rel=1e-12)
    for n, p in model.state_dict().items():  # the model itself is left as it was
        assert torch.equal(p, before[n])


def test_synflow_of_genomes():
    skel = "stem=2d/none sw=8 w=8,16,32,64 t=-,-,-,- drop=0.0"
    c, flat = parse(f"C|C|CCC|2 {skel}"), parse(f"2|2|222|2 {skel}")
    a = scores.synflow_of(c, (8, 32, 32), seed=0)
    assert a == scores.synflow_of(c, (8, 32, 32), seed=0)  # deterministic given the seed
    assert a > 0 and a != scores.synflow_of(flat, (8, 32, 32), seed=0)
