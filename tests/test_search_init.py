"""`archlab search --init`: every proxy starts from a 2D ResNet inflated into its genome, and a
proxy that reduces widths (which no 2D checkpoint fits) is refused before anything runs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import torch

from archlab.cli import main
from archlab.search import SearchConfig, search, shutdown
from archlab.spaces import load_space
from archlab.util.errors import UserError

TESTS = Path(__file__).parent
# Targets of 2 stages, 1 block each, at 32/64 inner channels (stem 32): a 2D ResNet of that
# skeleton fits every one of them.
SPACE = """
description: tiny space a 2D ResNet of depths (1, 1), width 32 fits
kind: free
depths: [[1], [1]]
widths: [0.5]
letters: [A, B, "2"]
fields: "stem=2d/s"
target:
  input: 4x32x32
proxy:
  width: 0.25
"""


def _files(tmp: Path) -> tuple[Path, Path, dict[str, torch.Tensor]]:
    from archlab.testing.resnet2d import ResNet2D, randomize_bn2d

    torch.manual_seed(0)
    sd = randomize_bn2d(ResNet2D((1, 1), 1000, 32)).state_dict()
    f = tmp / "r2d.pth"
    torch.save(sd, f)
    space = tmp / "s.yaml"
    space.write_text(textwrap.dedent(SPACE))
    return space, f, sd


def test_a_width_reducing_proxy_with_an_init_is_refused_in_one_line(tmp_path, capsys):
    space, f, _ = _files(tmp_path)
    with pytest.raises(UserError, match="--init with proxy width 0.25: inflated 2D weights fit full widths only"):
        SearchConfig(space=str(space), init=str(f)).with_target(load_space(str(space)))
    assert SearchConfig(space=str(space), init=str(f), proxy_width=1.0).with_target(load_space(str(space)))
    code = main(["search", "--space", str(space), "--init", str(f), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--proxy-width 1" in err
    assert main(["search", "--space", str(space), "--init", str(tmp_path / "nope.pth")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_every_proxy_starts_from_the_inflated_2d_network(tmp_path):
    space, f, sd = _files(tmp_path)
    old = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), old])
    try:
        cfg = SearchConfig.from_settings(
            dict(
                space=str(space),
                name="s",
                out=str(tmp_path / "runs"),
                init=str(f),
                proxy_width=1.0,
                frames=4,
                size=16,
                trials=2,
                epochs=1,
                grace_epochs=1,
                batch=8,
                train_clips=16,
                val_clips=16,
                lr=1e-9,  # the weights stay where they started
                cpus_per_trial=1,
                wandb="off",
                latency_runs=2,
                latency_passes=1,
                seed=1,
                confirm_seeds=0,
            )
        )
        search(cfg, echo=lambda _line: None)
    finally:
        shutdown()
        os.environ["PYTHONPATH"] = old
    ckpts = sorted((tmp_path / "runs" / "s").rglob("checkpoint.pt"))
    assert len(ckpts) >= 2
    for c in ckpts:
        model = torch.load(c, weights_only=True)["model"]
        assert torch.allclose(model["stem.0.weight"], sd["conv1.weight"].unsqueeze(2), atol=1e-6)
        assert torch.allclose(
            model["stages.0.0.transform.c.0.weight"], sd["layer1.0.conv3.weight"].unsqueeze(2), atol=1e-6
        )
