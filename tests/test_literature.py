"""The literature space, and the CLI listing of the family's presets and letters."""

import random

from archlab.cli import main
from archlab.model.genome import LETTERS
from archlab.spaces import enumerate_count, load_space
from archlab.spaces import literature as literature_space


def test_every_block_chooses_among_all_letters_of_its_family():
    space = load_space("literature")
    seen = {"bottleneck": set(), "basic": set()}
    rng = random.Random(0)
    for _ in range(400):
        g = space.sample(rng, constrained=False)
        seen[g.family] |= set(g.letters.replace("|", ""))
    assert seen["bottleneck"] == {letter for letter, v in LETTERS.items() if "bottleneck" in v.families}
    assert seen["basic"] == {"2", "3", "R"}
    assert len(seen["bottleneck"]) == 12


def test_literature_cardinality_is_the_count_of_its_decisions(monkeypatch):
    k_b, k_basic = 12, 3
    per = lambda k: k + k**2  # noqa: E731  (depth 1 or 2)
    assert load_space("literature").cardinality() == (per(k_b) ** 4 * 2 + per(k_basic) ** 4) * 2 * 2 * 2
    # The formula agrees with enumerating the function's decisions on a smaller version.
    for name, value in (("DEPTHS", (1,)), ("WIDTHS", (0.125,)), ("STEMS", ("2d/none",))):
        monkeypatch.setattr(literature_space, name, value)
    assert literature_space._cardinality() == enumerate_count(literature_space.suggest) == (12**4 * 2 + 3**4) * 2


def test_cli_presets_lists_the_family(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("csn_r101", "slow_r50", "r2plus1d_r50", "x3d_s", "x3d_m", "x3d_l", "tsm_r50"):
        assert name in out
    assert "22,213,776" in out and "3,794,274" in out and "6,153,384" in out


def test_a_yaml_space_keeps_the_new_fields(tmp_path):
    path = tmp_path / "official.yaml"
    path.write_text(
        "description: official rules\nkind: free\ndepths: [[1], [1]]\nwidths: [0.125]\n"
        'letters: [C, "2"]\nfields: "pool=caffe cw=0.5 sp=mid drop=0.0"\n'
    )
    space = load_space(str(path))
    gs = {
        space.from_params({"depth_1": 1, "depth_2": 1, "width": 0.125, "block_1_1": a, "block_2_1": b})
        for a in "C2"
        for b in "C2"
    }
    assert all(g.pool == "caffe" and g.stride_at == "mid" for g in gs)
    assert {g.cw for g in gs if "C" in g.letters} == {0.5} and {g.cw for g in gs if "C" not in g.letters} == {1.0}
