"""archlab.results.reader, the one reader of a study directory: study.yaml checks, the proxy clip,
a read that never writes, and the table built from trial records."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from archlab.results.reader import load_results, row, table
from archlab.results.record import TrialRecord
from archlab.results.study import load_study_info, open_storage
from archlab.testing.study import write_settings, write_study
from archlab.util.errors import UserError

G = "AB|C2 sw=8 w=8,16 cls=6"


def _study_yaml(d: Path, **settings) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "study.yaml").write_text(yaml.safe_dump({"objectives": ["val_top1", "latency_ms"], **settings}))
    return d


def test_clip_is_read_as_the_search_writes_it(tmp_path):
    write_settings(tmp_path / "s", frames=4, size=48)
    info = load_study_info(tmp_path / "s")
    assert info.clip == (4, 48, 48) and info.name == "s"
    assert (info.objectives, info.directions) == (["val_top1", "latency_ms"], ["max", "min"])


@pytest.mark.parametrize(
    "settings, clip",
    [
        ({"clip": [8, 32, 40]}, (8, 32, 40)),
        ({"recipe": {"frames": 6, "size": 24}}, (6, 24, 24)),
        ({"frames": 16, "size": 112}, (16, 112, 112)),  # a study written before the recipe
        ({}, None),
    ],
)
def test_clip_of_older_and_newer_study_files(tmp_path, settings, clip):
    assert load_study_info(_study_yaml(tmp_path / "s", **settings)).clip == clip


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"objectives: [val_top1, latency_ms\n", "not valid YAML"),
        (b"\xff\xfe\x00junk", "not valid YAML"),
        (b"name: x\n", "missing the study settings (objectives)"),
        (b"objectives: [val_top1, flops]\n", "objective 'flops' has no known direction"),
        (b"objectives: [val_top1, latency_ms]\ndirections: [max]\n", "do not match objectives"),
        (b"objectives: [val_top1, latency_ms]\nclip: [8, x, 32]\n", "is not three whole numbers"),
        (b"objectives: [val_top1, latency_ms]\nclip: [0, 32, 32]\n", "is not positive"),
    ],
)
def test_a_bad_study_yaml_is_one_line(tmp_path, content, needle):
    d = tmp_path / "s"
    d.mkdir()
    (d / "study.yaml").write_bytes(content)
    with pytest.raises(UserError) as e:
        load_study_info(d).clip
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_directory_and_missing_study_yaml(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_study_info(tmp_path / "nope")
    with pytest.raises(UserError, match=r"not a study directory \(no study.yaml\)"):
        load_study_info(tmp_path)


def test_reading_never_writes_into_the_study(tmp_path):
    """No optuna.db yet: an empty table, and no database created. With one: the file is not
    touched (opened without creating tables)."""
    d = tmp_path / "s"
    write_settings(d)
    assert open_storage(load_study_info(d)) is None
    df, _ = load_results(d)
    assert df.empty and sorted(p.name for p in d.iterdir()) == ["study.yaml"]
    write_study(tmp_path / "t", [TrialRecord(status="ok", genome=G, val_top1=0.5, latency_ms=3.0)], tables=False)
    db = tmp_path / "t" / "optuna.db"
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    df, _ = load_results(tmp_path / "t")
    assert list(df["trial"]) == ["0"] and (db.read_bytes(), db.stat().st_mtime_ns) == before
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["optuna.db", "study.yaml"]


def test_table_from_records_is_what_load_results_reads(tmp_path):
    """The table a test builds from records without a database is the one read back from
    optuna.db (same builder), and rows follow the record: not-finite values are missing."""
    search = [
        TrialRecord(
            status="ok",
            ray_trial_id="r0",
            genome=G,
            genome_id="g0",
            val_top1=0.5,
            latency_ms=3.0,
            gmacs=0.01,
            params=100,
            epochs=2,
        ),
        TrialRecord(
            status="rejected",
            ray_trial_id="r0",
            genome="33|3 sw=8 w=8,16 cls=6",
            gmacs=2.0,
            latency_ms=math.inf,
            reason="over --max-gmacs",
        ),
        TrialRecord(
            status="stopped", ray_trial_id="r2", genome="A|2 sw=8 w=8,16 cls=6", val_top1=0.4, latency_ms=1.0, epochs=1
        ),
    ]
    base = [
        TrialRecord(
            status="ok", ray_trial_id="b", genome="2|2 sw=8 w=8,16 cls=6", val_top1=0.3, latency_ms=0.5, label="pure 2D"
        )
    ]
    write_study(tmp_path / "s", search, base, tables=False)
    read, info = load_results(tmp_path / "s")
    built = table(
        [row(n, r, False) for n, r in enumerate(search)] + [row(0, base[0], True)], info.objectives, info.directions
    )
    cols = [
        "trial",
        "number",
        "trial_id",
        "genome",
        "status",
        "reason",
        "val_top1",
        "latency_ms",
        "epochs",
        "baseline",
        "on_front",
        "label",
    ]
    assert read[cols].astype(str).to_dict("records") == built[cols].astype(str).to_dict("records")
    assert list(read["trial"]) == ["0", "1", "2", "b0"]
    assert read.loc[1, "latency_ms"] != read.loc[1, "latency_ms"]  # inf stored as missing (NaN)
    # neither the rejected trial nor the one stopped at a rung (0.4 at 1 ms would not be
    # dominated) is on the front; a stopped trial is PRUNED in Optuna, not COMPLETE
    assert list(read["on_front"]) == [True, False, False, True]
    import optuna

    states = [t.state.name for t in optuna.load_study(study_name=info.name, storage=info.storage_url).trials]
    # the rejected trial is COMPLETE with the worst values and its constraints (issue 13
    # item 3), and still never on the front: the front reads the status
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
