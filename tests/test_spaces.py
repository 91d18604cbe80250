"""Search spaces: shipped files load and suggest valid genomes, from_params round-trips,
cardinality is exact, the paper's models are points of their spaces, bad files fail with
one line naming the file and the key."""

import random
import textwrap

import optuna
import pytest

from archlab.measure.profile import cost
from archlab.model.genome import Genome
from archlab.model.presets import get
from archlab.spaces import enumerate_count, list_spaces, load_space, space_folders
from archlab.util.errors import UserError

optuna.logging.set_verbosity(optuna.logging.WARNING)

SHIPPED = ("free", "interleave", "literature", "per_stage", "uniform")
P3D63 = {"depth_1": 3, "depth_2": 4, "depth_3": 6, "depth_4": 3, "width": 1.0}


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_spaces_are_listed_with_descriptions():
    spaces = list_spaces()
    assert [s.name for s in spaces] == list(SHIPPED)
    for s in spaces:
        assert s.description and "\n" not in s.description
        assert s.cardinality() > 100


@pytest.mark.parametrize("name", SHIPPED)
def test_optuna_trials_suggest_genomes_that_round_trip(name):
    space = load_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(8):
        trial = study.ask()
        g = space.suggest(trial)
        assert isinstance(g, Genome)
        assert space.from_params(trial.params) == g
        # optuna's own FixedTrial gives the same genome (the contract of from_params)
        assert space.suggest(optuna.trial.FixedTrial(trial.params)) == g
        study.tell(trial, 0.0)


def test_p3d63_is_a_point_of_interleave_and_per_stage():
    # the official skeleton; the space trains proxies without dropout, which changes no weight,
    # under archlab's original pooling and C-sum rules (the space's strings predate pool=/cw=)
    g = load_space("interleave").from_params({**P3D63, "n_2d": 1, "phase": 0, "stem": "2d/ts", "t": "-,p,p,p"})
    assert str(g) == "ABC|ABCA|BCABCA|222 drop=0.0" and g.with_(dropout=0.5, pool="caffe", cw=0.5) == get("p3d63")
    g = load_space("per_stage").from_params(
        {
            **P3D63,
            "letter_1": "cycle",
            "letter_2": "cycle",
            "letter_3": "cycle",
            "letter_4": "2",
            "phase": 0,
            "stem": "2d/ts",
            "t": "-,p,p,p",
        }
    )
    assert g.with_(dropout=0.5, pool="caffe", cw=0.5) == get("p3d63")


@pytest.mark.parametrize("letter, preset", [("A", "p3d_a50"), ("B", "p3d_b50"), ("C", "p3d_c50"), ("2", "c2d50")])
def test_table1_models_are_points_of_uniform(letter, preset):
    g = load_space("uniform").from_params({**P3D63, "n_2d": 1, "letter": letter, "stem": "2d/ts", "t": "-,p,p,p"})
    assert g.with_(dropout=0.5, pool="caffe", cw=0.5) == get(preset)  # the presets' official rules


def test_interleave_phase_and_late_2d_stages():
    space = load_space("interleave")
    skeleton = {"stem": "2d/none", "t": "-,-,-,-"}
    g = space.from_params(
        {"depth_1": 2, "depth_2": 2, "depth_3": 1, "depth_4": 1, "width": 0.5, "n_2d": 2, "phase": 1, **skeleton}
    )
    assert g.letters == "BC|AB|2|2"
    assert [s.width for s in g.stages] == [32, 64, 128, 256] and g.stem_width == 32  # the target's widths
    assert str(g) == "BC|AB|2|2 stem=2d/none sw=32 w=32,64,128,256 t=-,-,-,- drop=0.0"
    # all stages 2D: the phase is not asked (it would change nothing)
    g = space.from_params(
        {"depth_1": 1, "depth_2": 1, "depth_3": 1, "depth_4": 1, "width": 1.0, "n_2d": 2, "phase": 0, **skeleton}
    )
    assert g.letters == "A|B|2|2"


def test_cardinality_of_tiny_spaces_is_exact(tmp_path):
    cases = {
        # widths 2 x depths 2*1 x (phase 2 for n_2d 0 and 1; no phase when both stages are 2D)
        "interleave": (
            "kind: interleave\ndepths: [[1, 2], [1]]\nwidths: [0.5, 1.0]\nphase: [0, 1]\nn_2d: [0, 1, 2]\n",
            2 * 2 * (2 + 2 + 1),
        ),
        # depths 2 x (3 letters for n_2d 0 and 1)
        "uniform": ("kind: uniform\ndepths: [[1], [1, 2]]\nletters: [A, B, '2']\nn_2d: [0, 1]\n", 2 * (3 + 3)),
        # 2 stages x {cycle, A}: AA once, the 3 assignments with a cycle x 3 phases
        "per_stage": ("kind: per_stage\ndepths: [[1], [1]]\nletters: [cycle, A]\nphase: [0, 1, 2]\n", 1 + 3 * 3),
        # stage 1: 2 + 2^2 letter strings, stage 2: 2
        "free": (
            "kind: free\ndepths: [[1, 2], [1]]\nletters: [A, '2']\nchoices: {stem: [2d/ts, 2d/s]}\n",
            (2 + 4) * 2 * 2,
        ),
    }
    for kind, (body, expected) in cases.items():
        space = load_space(str(write(tmp_path, kind, f"description: tiny {kind}\n{body}")))
        assert space.cardinality() == expected, kind
        assert enumerate_count(space.suggest) == expected, kind
        # every assignment is a different parameter dict, and from_params rebuilds each
        seen = set()
        rng = random.Random(0)
        for _ in range(200):
            params = space.sample_params(rng)
            seen.add(tuple(sorted(params.items())))
            assert isinstance(space.from_params(params), Genome)
        assert len(seen) == expected, kind  # 200 draws find every one of <= 24 assignments


@pytest.mark.parametrize("name", ["interleave", "uniform"])
def test_shipped_cardinality_matches_enumeration(name):
    space = load_space(name)
    assert enumerate_count(space.suggest) == space.cardinality()


def test_free_and_per_stage_cardinality_formulas():
    skeletons = 2 * 2  # stem x temporal pools
    assert load_space("free").cardinality() == skeletons * 2 * (6 + 6**2 + 6**3) ** 4
    # 4 depth choices x 4 x ... and 7 stage choices (cycle + 6 letters), 3 phases when any stage cycles
    per_stage = load_space("per_stage")
    # 2 widths x depths 3 * 4 * 4 * 3
    assert per_stage.cardinality() == skeletons * 2 * 3 * 4 * 4 * 3 * (6**4 + (7**4 - 6**4) * 3)


def test_sample_is_seeded_and_respects_constraints():
    space = load_space("interleave")
    draw = lambda seed: [space.sample_params(rng, constrained=False) for rng in [random.Random(seed)] for _ in range(4)]  # noqa: E731
    assert draw(7) == draw(7) and draw(7) != draw(8)
    assert {p["width"] for p in draw(7) + draw(8) + draw(9)} == {0.5, 1.0}  # unconstrained: any width
    rng = random.Random(3)
    for _ in range(8):
        g = space.sample(rng)  # constrained (the default): the target within 6.7 GMACs at 16x112x112
        assert space.violates(g) is None and cost(g, (16, 112, 112)).gmacs <= 6.7 and g.stages[0].width in (32, 64)
    assert [str(space.sample(random.Random(5))) for _ in range(2)] == [str(space.sample(random.Random(5)))] * 2


def test_violates_names_the_limit():
    space = load_space("interleave")
    # the constraints are the target's, at the target clip: P3D-63 itself (4.193 GMACs) fits
    assert space.max_gmacs == 6.7 and space.clip == space.target_clip == (16, 112, 112)
    assert space.violates(get("p3d63")) is None
    assert "8.442 GMACs > max_gmacs 6.7 at 16x160x160" == space.violates(get("p3d63"), (16, 160, 160))  # the clip given
    assert load_space("interleave", max_gmacs=9).violates(get("p3d63"), (16, 160, 160)) is None
    tight = load_space("interleave", max_params=7_000_000, max_gmacs=10.0)
    small = tight.from_params({**P3D63, "width": 0.5, "n_2d": 1, "phase": 0, "stem": "2d/ts", "t": "-,p,p,p"})
    assert tight.violates(small) is None  # 6,658,160 params
    assert "params > max_params 7,000,000" in tight.violates(get("p3d63"))
    assert load_space("interleave", max_params=2e6).max_params == 2_000_000  # CLI floats are fine


def test_classes_override():
    g = load_space("uniform", classes=6).from_params(
        {**P3D63, "n_2d": 1, "letter": "A", "stem": "2d/ts", "t": "-,p,p,p"}
    )
    assert g.classes == 6


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"depth_1": 3}, "parameter 'depth_2' is missing"),
        ({**P3D63, "depth_1": 5, "n_2d": 1, "phase": 0}, "depth_1=5 is not an integer in 1..3"),
        ({**P3D63, "width": 0.3, "n_2d": 1, "phase": 0}, "width=0.3 is not one of [0.5, 1.0]"),
    ],
)
def test_from_params_rejects_points_outside_the_space(params, needle):
    with pytest.raises(UserError, match=needle.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        load_space("interleave").from_params(params)


BAD = [
    ("description: x\nkind: interleave\ndepths: [[1]]\nwidth: [1.0]\n", "unknown key 'width'"),
    ("kind: interleave\ndepths: [[1]]\n", "key 'description'"),
    ("description: x\nkind: spiral\ndepths: [[1]]\n", "key 'kind'"),
    ("description: x\nkind: free\nletters: [A]\n", "key 'depths' is required"),
    ("description: x\nkind: free\ndepths: [[1, 0]]\nletters: [A]\n", "key 'depths', stage 1"),
    ("description: x\nkind: free\ndepths: [[1]]\nletters: [A, Q]\n", "key 'letters': 'Q'"),
    ("description: x\nkind: free\ndepths: [[1]]\n", "key 'letters' is required"),
    ("description: x\nkind: uniform\ndepths: [[1]]\nletters: [A]\nwidths: [0.5, -1]\n", "key 'widths': -1"),
    ("description: x\nkind: interleave\ndepths: [[1]]\nphase: [0, 0]\n", "key 'phase': values repeat"),
    ("description: x\nkind: interleave\ndepths: [[1], [1]]\nn_2d: [3]\n", "key 'n_2d': 3"),
    ("description: x\nkind: interleave\ndepths: [[1]]\ncycle: AQC\n", "key 'cycle'"),
    ("description: x\nkind: interleave\ndepths: [[1], [1]]\nfields: t=-,p,p\n", "key 'fields': field t="),
    ("description: x\nkind: interleave\ndepths: [[1]]\nfields: w=8\n", "key 'fields': w= is not allowed"),
    (
        "description: x\nkind: free\ndepths: [[1]]\nletters: [A]\nfields: fam=basic\n",
        "key 'letters': 'A' is not valid in the basic family",
    ),
    ("description: x\nkind: interleave\ndepths: [[1]]\nchoices: {cls: [5]}\n", "key 'choices': 'cls'"),
    ("description: x\nkind: interleave\ndepths: [[1]]\nchoices: {stem: [2d/zz]}\n", "key 'choices', stem=2d/zz"),
    ("description: x\nkind: interleave\ndepths: [[1]]\nmax_gmacs: -2\n", "key 'max_gmacs'"),
    ("description: x\nkind: interleave\ndepths: [[1]]\ninput: 8x64\n", "key 'input'"),
    ("description: x\nname: other\nkind: interleave\ndepths: [[1]]\n", "key 'name'"),
    ("description: x\npython: no_such_module_here:f\n", "key 'python': cannot import"),
    ("description: x\npython: archlab.spaces:f\nkind: free\n", "unknown key 'kind' for a python space"),
    ("description: [unclosed\n", "not valid YAML"),
    ("- a list\n", "expected a mapping"),
]


@pytest.mark.parametrize("text, needle", BAD)
def test_bad_files_name_the_file_and_the_key(tmp_path, text, needle):
    path = write(tmp_path, "bad", text)
    with pytest.raises(UserError) as e:
        load_space(str(path))
    msg = str(e.value)
    assert msg.startswith("bad.yaml: ") and needle in msg and "\n" not in msg


def test_unknown_names_and_missing_files(tmp_path):
    with pytest.raises(UserError, match="unknown search space 'nope': spaces are free, interleave"):
        load_space("nope")
    with pytest.raises(UserError, match="not found"):
        load_space(str(tmp_path / "missing.yaml"))


def test_a_name_is_looked_up_in_the_users_folder_then_here_then_the_package(tmp_path, monkeypatch):
    """$ARCHLAB_SPACES first, then ./search_spaces/, then the package's own files (package
    data, so a wheel installed anywhere has them); a name found earlier hides a later one."""
    shipped = space_folders()[-1]
    assert shipped.parts[-3:] == ("archlab", "spaces", "builtin") and (shipped / "interleave.yaml").is_file()
    monkeypatch.chdir(tmp_path)  # a directory without search_spaces/: the package's files alone
    assert space_folders() == [shipped]
    assert [s.name for s in list_spaces()] == list(SHIPPED)
    mine, here = tmp_path / "mine", tmp_path / "search_spaces"
    mine.mkdir(), here.mkdir()
    write(mine, "mine", "description: mine in the user's folder\nkind: free\ndepths: [[1]]\nletters: [A, B]\n")
    write(here, "mine", "description: mine here\nkind: free\ndepths: [[1]]\nletters: [A]\n")
    write(here, "free", "description: free here\nkind: free\ndepths: [[1]]\nletters: [A, B, C]\n")
    monkeypatch.setenv("ARCHLAB_SPACES", str(mine))
    assert space_folders() == [mine, here.relative_to(tmp_path), shipped]
    assert [s.name for s in list_spaces()] == sorted({*SHIPPED, "mine"})
    assert load_space("mine").description == "mine in the user's folder" and load_space("mine").cardinality() == 2
    assert load_space("free").description == "free here" and load_space("free").cardinality() == 3
    assert load_space("interleave").cardinality() == load_space(str(shipped / "interleave.yaml")).cardinality()


def test_python_escape_hatch(tmp_path, monkeypatch):
    (tmp_path / "my_space_mod.py").write_text(
        textwrap.dedent("""
        from archlab.model.genome import parse

        def tiny(trial):
            depth = trial.suggest_int("depth", 1, 2)
            letter = trial.suggest_categorical("letter", ["A", "3"])
            if letter == "3":
                trial.suggest_categorical("extra", ["x", "y"])
            return parse(letter * depth + "|2 w=8,16 sw=8")

        def declared(trial):
            return tiny(trial)
        declared.cardinality = 12345
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    space = load_space(str(write(tmp_path, "py", "description: a function\npython: my_space_mod:tiny\nmax_gmacs: 1\n")))
    assert space.cardinality() == 2 * (1 + 2)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    g = space.suggest(trial)
    assert space.from_params(trial.params) == g and g.letters.endswith("|2")
    assert space.violates(g) is None
    declared = load_space(str(write(tmp_path, "py2", "description: d\npython: my_space_mod:declared\n")))
    assert declared.cardinality() == 12345


# ---- hostile files: one line, exit 2, bounded time and memory (issue 15 item 4) -------------


def bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs" value in flow style: level k is ``width`` aliases of level k-1, so
    the whole expands to width**levels values (9**9 = 387,420,489) from about 300 bytes."""
    parts = [f"&l0 [{', '.join(['x'] * width)}]"]
    parts += [f"&l{k} [{', '.join([f'*l{k - 1}'] * width)}]" for k in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


TINY_OK = "description: x\nkind: interleave\ndepths: [[1], [1]]\n"
# every key of a space file a bomb can sit under (the issue's 9 placements and more)
BOMB_PLACEMENTS = [
    "description",
    "kind",
    "depths",
    "widths",
    "phase",
    "n_2d",
    "cycle",
    "fields",
    "choices",
    "input",
    "max_gmacs",
    "name",
]


def run_cli(capsys, *argv):
    from archlab.cli import main

    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_exit_2(capsys, path, *needles):
    """`archlab sample` on the file: exit 2 and one line naming the file; peak Python memory
    of the whole command under 16 MiB (tracemalloc; a bomb expanded takes GiBs)."""
    import tracemalloc

    warm = path.parent / "warm.yaml"  # the command once on a good file: its imports are not counted
    warm.write_text(TINY_OK)
    assert run_cli(capsys, "sample", "-n", "1", str(warm))[0] == 0
    tracemalloc.start()
    try:
        code, out, err = run_cli(capsys, "sample", "-n", "1", str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2, (code, err[-500:])
    assert err.startswith(f"archlab sample: error: {path.name}: ") and len(err.strip().splitlines()) == 1
    assert len(err) < 400 and "Traceback" not in err
    for needle in needles:
        assert needle in err
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    return err


@pytest.mark.parametrize("key", BOMB_PLACEMENTS)
def test_alias_bomb_in_any_key_fails_fast_with_bounded_memory(capsys, tmp_path, key):
    # before: 7 of 9 placements ran out of memory (1.5-3 GiB) with no message
    path = tmp_path / "bomb.yaml"
    path.write_text(
        f"{key}: {bomb()}\n" + "".join(line + "\n" for line in TINY_OK.splitlines() if not line.startswith(key + ":"))
    )
    one_line_exit_2(capsys, path, f"key '{key}", "expands to more than 100,000 values")


def test_alias_bomb_in_block_style_and_through_merge_keys(capsys, tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{k}: &a{k} {{" + ", ".join(f"k{j}: *a{k - 1}" for j in range(10)) + "}" for k in range(1, 7)]
    lines += ["widths:", "  <<: *a6"]
    path = tmp_path / "merge.yaml"
    path.write_text(TINY_OK + "\n".join(lines) + "\n")
    one_line_exit_2(capsys, path, "expands to more than 100,000 values")


@pytest.mark.parametrize(
    "name, text, needle",
    [
        # before: RecursionError and a 3,000-line traceback (flow and block nesting)
        ("deep", TINY_OK.replace("[[1], [1]]", "[" * 1000 + "]" * 1000), "nested more than 32 levels deep"),
        (
            "deepblock",
            TINY_OK + "widths:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),
            "nested more than 32 levels deep",
        ),
        # before: phase: [0, 100000000] built a list of 10^8 integers (1.7 GiB), then MemoryError
        (
            "range",
            TINY_OK + "phase: [0, 100000000]\n",
            "key 'phase': 100000000 is not allowed here (an integer in 0..2",
        ),
        ("float", TINY_OK + "phase: [1.0e+30, 1]\n", "key 'phase': 1e+30 is not allowed"),
        ("huge", TINY_OK + "phase: 1" + "0" * 1000 + "\n", "key 'phase' (line 4): the integer '1000"),
        ("hex", TINY_OK + "phase: 0x" + "f" * 30 + "\n", "outside +-2^63"),
        ("widths", TINY_OK + "widths: [1.0e+30]\n", "widths"),
        ("inf", TINY_OK + "max_gmacs: .inf\n", "key 'max_gmacs': inf must be a positive number"),
        # before: ValueError tracebacks from PyYAML's constructor
        (
            "date",
            TINY_OK + "phase: 2001-13-45\n",
            "key 'phase' (line 4): cannot read '2001-13-45': month must be in 1..12",
        ),
        ("cycle", "description: x\nkind: interleave\ndepths: &a [*a]\n", "alias *a refers to a collection"),
        ("alias", TINY_OK + "phase: *nothing\n", "not valid YAML (line 4): found undefined alias"),
        ("wide", TINY_OK + "widths: [" + ", ".join(["1"] * 5000) + "]\n", "more than 1,000 items"),
        ("long", TINY_OK + "fields: " + "x" * 10_000 + "\n", "a value of 10,000 characters"),
        (
            "desc",
            TINY_OK.replace("description: x", "description: " + "d" * 1000),
            "key 'description': 1,000 characters; at most 200",
        ),
        ("nul", TINY_OK + "fields: a\x00b\n", "not valid YAML: unacceptable character #x0000"),
        # before: the second of two equal keys silently won
        ("twice", TINY_OK + "phase: 0\nphase: 1\n", "key 'phase': given twice"),
        ("twice2", TINY_OK + "choices: {stem: [2d/s], stem: [2d/ts]}\n", "key 'choices.stem': given twice"),
    ],
)
def test_hostile_values_are_one_line(capsys, tmp_path, name, text, needle):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    one_line_exit_2(capsys, path, needle)


def test_big_and_non_utf8_files_are_one_line(capsys, tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text(TINY_OK + "# " + "x" * (2 << 20) + "\n")  # 2 MiB of comment
    one_line_exit_2(capsys, big, "larger than 1024 KiB")
    latin = tmp_path / "latin.yaml"  # before: UnicodeDecodeError traceback
    latin.write_bytes(TINY_OK.encode() + b"# caf\xe9\n")
    one_line_exit_2(capsys, latin, "latin.yaml: line 4: not UTF-8 text (byte 0xe9)")


def test_long_values_are_echoed_cut(capsys, tmp_path):
    # before: the value came back whole (a 50 MB value gave a 52 MB stderr line)
    path = tmp_path / "echo.yaml"
    path.write_text(TINY_OK.replace("kind: interleave", "kind: " + "k" * 4000))
    err = one_line_exit_2(capsys, path, "key 'kind': 'kkkk", "(4,000 characters) is not one of")
    assert len(err) < 400


def test_archlab_spaces_refuses_a_huge_description_in_one_line(capsys, tmp_path, monkeypatch):
    # before: a 50 MB description made `archlab spaces` print 157 MB
    (tmp_path / "big.yaml").write_text(TINY_OK.replace("description: x", "description: " + "d" * 900_000))
    monkeypatch.setenv("ARCHLAB_SPACES", str(tmp_path))
    code, out, err = run_cli(capsys, "spaces")
    assert code == 2 and len(err) < 300 and len(err.splitlines()) == 1 and not out
    assert "big.yaml: " in err and "key 'description'" in err
