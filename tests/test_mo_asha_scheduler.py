"""MO-ASHA inside a real Ray Tune run: the trials it stops are the hand-worked ones."""

import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from archlab.search.mo_asha import MOASHAScheduler  # noqa: E402

# (accuracy at every epoch, latency): run one at a time, in this order. Rung at epoch 1
# (grace 1, eta 3, max_t 3 -> milestones (1,)). Same arithmetic as tests/test_rungs.py:
# t1 first -> on; t2 dominated by t1 -> off; t3 cheapest -> on (ASHA on accuracy would stop
# it: 0.3 is below the 66.7th percentile of 0.5 and 0.4); t4 dominated -> off.
TRIALS = [(0.5, 10.0), (0.4, 12.0), (0.3, 2.0), (0.45, 11.0)]


def _trainable(config):
    acc, ms = config["point"]
    for epoch in range(1, 4):
        tune.report({"epochs": epoch, "val_top1": acc, "latency_ms": ms})


def test_mo_asha_stops_the_dominated_trials_at_the_rung(tmp_path, monkeypatch):
    # Ray workers unpickle the trainable by module name: they must find this file.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        sched = MOASHAScheduler(
            metrics=["val_top1", "latency_ms"], modes=["max", "min"], time_attr="epochs", max_t=3, grace=1, eta=3
        )
        tuner = tune.Tuner(
            _trainable,
            param_space={"point": tune.grid_search(TRIALS)},
            tune_config=tune.TuneConfig(scheduler=sched, max_concurrent_trials=1, reuse_actors=True),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="moasha", verbose=0),
        )
        grid = tuner.fit()
        epochs = {tuple(r.config["point"]): r.metrics["epochs"] for r in grid}
    finally:
        ray.shutdown()
    assert epochs == {TRIALS[0]: 3, TRIALS[1]: 1, TRIALS[2]: 3, TRIALS[3]: 1}
    assert sorted(sched.stopped.values()) == [1, 1]
