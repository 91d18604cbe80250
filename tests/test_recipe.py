"""One proxy recipe (issue 12, bug 4): defined once, validated once, the same for the search,
`archlab train` and the CLI. On main `archlab train` defaulted to SGD + zero-init (measured at
chance: 0.173 top-1 on AB|CABC|A|22, where the search's recipe reaches 0.817)."""

import dataclasses
import re

import pytest

from archlab.cli import build_parser
from archlab.search import SearchConfig
from archlab.training.recipe import ProxyRecipe
from archlab.training.trainer import TrainConfig
from archlab.util.errors import UserError

SEARCH_RECIPE = dict(
    optimizer="adamw",
    lr=2e-3,
    batch=8,
    zero_init=False,
    epochs=14,
    frames=8,
    size=32,
    train_clips=1200,
    val_clips=300,
    classes=6,
    object_scale=1.4,
    faint=0.3,
)


def _recipe_of(argv):
    return ProxyRecipe.from_args(build_parser().parse_args(argv))


def test_the_defaults_are_the_searchs_measured_recipe():
    r = ProxyRecipe()
    assert {k: getattr(r, k) for k in SEARCH_RECIPE} == SEARCH_RECIPE


def test_train_search_and_the_trainer_share_the_defaults():
    assert _recipe_of(["train", "A|2", "--out", "x"]) == ProxyRecipe()
    assert _recipe_of(["search"]) == ProxyRecipe()
    assert SearchConfig().recipe == ProxyRecipe() == TrainConfig().recipe


def test_the_search_cli_waits_as_long_as_the_config_for_the_first_rung():
    """ASHA's grace is 8 epochs of the 14-epoch recipe (the first epoch whose ranking agrees with
    the final one at rho 0.93, README "Proxy fidelity"); the CLI's default is the config's."""
    assert build_parser().parse_args(["search"]).grace_epochs == SearchConfig().grace_epochs == 8


def test_every_field_is_a_cli_option_of_train_and_search():
    for cmd in (["train", "A|2", "--out", "x"], ["search"]):
        argv = [
            *cmd,
            "--epochs",
            "3",
            "--batch",
            "4",
            "--optimizer",
            "sgd",
            "--lr",
            "0.01",
            "--momentum",
            "0.8",
            "--weight-decay",
            "0",
            "--label-smoothing",
            "0",
            "--warmup",
            "0.5",
            "--zero-init",
            "--frames",
            "16",
            "--size",
            "64",
            "--train-clips",
            "100",
            "--val-clips",
            "20",
            "--classes",
            "4",
            "--object-scale",
            "1.2",
            "--faint",
            "0.5",
            "--seed",
            "7",
            "--plateau-epochs",
            "2",
            "--plateau-margin",
            "0.05",
            "--plateau-restarts",
            "1",
            "--plateau-dwell",
            "2",
        ]
        r = _recipe_of(argv)
        assert dataclasses.asdict(r) == dict(
            epochs=3,
            batch=4,
            optimizer="sgd",
            lr=0.01,
            momentum=0.8,
            weight_decay=0.0,
            label_smoothing=0.0,
            warmup=0.5,
            zero_init=True,
            frames=16,
            size=64,
            train_clips=100,
            val_clips=20,
            classes=4,
            object_scale=1.2,
            faint=0.5,
            seed=7,
            plateau_epochs=2,
            plateau_margin=0.05,
            plateau_restarts=1,
            plateau_dwell=2,
        )


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"batch": 0}, "--batch must be at least 1 (got 0)"),
        ({"epochs": -2}, "--epochs must be at least 1 (got -2)"),
        ({"epochs": 2.5}, "--epochs must be a whole number (got 2.5)"),
        ({"epochs": True}, "--epochs must be a whole number (got True)"),
        ({"lr": 0}, "--lr must be positive (got 0)"),
        ({"lr": float("nan")}, "--lr must be a finite number (got nan)"),
        ({"optimizer": "lamb"}, "--optimizer must be one of adamw, sgd (got 'lamb')"),
        ({"momentum": 1.0}, "--momentum must be in [0, 1) (got 1)"),
        ({"weight_decay": -1e-4}, "--weight-decay must not be negative (got -0.0001)"),
        ({"label_smoothing": 1.0}, "--label-smoothing must be in [0, 1) (got 1)"),
        ({"warmup": -1}, "--warmup must not be negative (got -1)"),
        ({"zero_init": "yes"}, "--zero-init must be true or false (got 'yes')"),
        ({"frames": 0}, "--frames must be at least 1 (got 0)"),
        ({"size": 0}, "--size must be at least 1 (got 0)"),
        ({"train_clips": 0}, "--train-clips must be at least 1 (got 0)"),
        ({"val_clips": 0}, "--val-clips must be at least 1 (got 0)"),
        ({"classes": 1}, "--classes must be at least 2 (got 1)"),
        ({"seed": -1}, "--seed must be at least 0 (got -1)"),
        ({"object_scale": 1.6}, "--object-scale must be in [0.5, 1.5] (got 1.6)"),
        ({"object_scale": 0.4}, "--object-scale must be in [0.5, 1.5] (got 0.4)"),
        ({"object_scale": float("inf")}, "--object-scale must be a finite number (got inf)"),
        ({"frames": 100_000_000}, "--frames must be at most 256 (got 100,000,000)"),
        ({"train_clips": 10**6}, "--train-clips must be at most 100,000 (got 1,000,000)"),
    ],
)
def test_every_bad_value_names_its_option(kw, message):
    with pytest.raises(UserError) as e:
        ProxyRecipe(**kw)
    assert str(e.value) == message


def test_keyword_only_frozen_and_strict_from_dict():
    with pytest.raises(TypeError):
        ProxyRecipe(5)  # noqa - positional
    with pytest.raises(dataclasses.FrozenInstanceError):
        ProxyRecipe().lr = 1.0
    with pytest.raises(UserError, match="unknown recipe key 'lr_max'"):
        ProxyRecipe.from_dict({"lr_max": 1.0})
    r = ProxyRecipe(lr=1)
    assert type(r.lr) is float and ProxyRecipe.from_dict(r.as_dict()) == r


def test_dataset_options_follow_the_recipe():
    r = ProxyRecipe(train_clips=40, val_clips=10, classes=3, frames=4, size=16, object_scale=0.8)
    assert r.dataset_opts("synthetic", "train") == {
        "frames": 4,
        "size": 16,
        "n_clips": 40,
        "num_classes": 3,
        "object_scale": 0.8,
        "faint": 0.3,
    }
    assert r.dataset_opts("synthetic", "val")["n_clips"] == 10
    assert r.dataset_opts("ucf101", "train") == {"frames": 4, "size": 16}
    assert r.clip == (4, 16, 16)


def test_the_object_scale_bounds_are_the_datasets():
    from archlab.data import synthetic
    from archlab.training import recipe

    assert recipe.OBJECT_SCALE == synthetic.OBJECT_SCALE


def test_a_recipe_stored_before_object_scale_existed_keeps_the_objects_it_trained_on():
    """study.yaml / run.yaml of an older archlab hold every field but object_scale: those runs
    trained on the first task's objects (1.0), so resuming must not switch them to 1.4; a
    partial mapping (a study file's few keys) still gets today's default."""
    old = ProxyRecipe().as_dict()
    del old["object_scale"]
    assert ProxyRecipe.from_dict(old).object_scale == 1.0
    assert ProxyRecipe.from_dict(old) == ProxyRecipe(object_scale=1.0)
    assert ProxyRecipe.from_dict({"epochs": 3}).object_scale == 1.4
    assert ProxyRecipe.from_dict({**old, "object_scale": 1.2}).object_scale == 1.2
    del old["seed"]  # not a complete recipe: today's defaults
    assert ProxyRecipe.from_dict(old).object_scale == 1.4


def test_faint_reaches_the_synthetic_dataset_only_when_set():
    """An opaque recipe's dataset options are what they were before faint existed (so its runs
    are bit-identical); a recipe stored before it trained on opaque objects only; the default
    (faint 0.3) reaches both synthetic splits."""
    assert "faint" not in ProxyRecipe(faint=0.0).dataset_opts("synthetic", "train")
    assert (
        ProxyRecipe().dataset_opts("synthetic", "train")["faint"]
        == ProxyRecipe().dataset_opts("synthetic", "val")["faint"]
        == 0.3
    )
    assert ProxyRecipe(faint=0.25).dataset_opts("synthetic", "val")["faint"] == 0.25
    assert "faint" not in ProxyRecipe(faint=0.25).dataset_opts("ucf101", "train")
    old = ProxyRecipe().as_dict()
    del old["faint"]
    assert ProxyRecipe.from_dict(old).faint == 0.0
    for bad, message in ((-0.5, "--faint must be in [0, 1] (got -0.5)"), (2.0, "--faint must be in [0, 1] (got 2)")):
        with pytest.raises(UserError, match=re.escape(message)):
            ProxyRecipe(faint=bad)
