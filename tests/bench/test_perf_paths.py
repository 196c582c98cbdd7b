"""The fast paths added for the benchmarks keep their meaning.

- a metric term at the top of a filter drives the search (IN over the (key, value) index): the
  result must equal a brute-force evaluation, on SQLite and PostgreSQL, with NaN and missing
  metrics, under ``and``/``or``/parentheses;
- metrics have no per-row foreign key: writing points for a purged run is still refused, and
  nothing is stored;
- ``yard --help`` lists lazily registered groups without importing them; the groups still run.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import modelyard as yard
from modelyard.errors import NotFoundError
from modelyard.tracking import TrackingService

ROOT = Path(__file__).resolve().parents[2]


def _seed(svc: TrackingService) -> list[dict]:
    truth = []
    for i in range(24):
        params = {"lr": ["0.01", "0.1", "0.001"][i % 3], "depth": str(i % 5)}
        metrics = {"acc": (i * 37 % 24) / 24}
        if i % 4 == 0:
            metrics["loss"] = float("nan")
        elif i % 4 == 1:
            metrics["loss"] = i / 10
        # i % 4 in (2, 3): no loss at all
        tags = {"team": "risk" if i % 5 == 0 else "ops"}
        rec = svc.create_run(experiment="exp", params_=params, tags_=tags)
        svc.write_metrics(
            [(rec.id, k, 0, None if math.isnan(v) else v, math.isnan(v), 1) for k, v in metrics.items()],
            [(rec.id, k, 0, None if math.isnan(v) else v, math.isnan(v), 1) for k, v in metrics.items()],
        )
        svc.end_run(rec.id)
        truth.append({"id": rec.id, "params": params, "metrics": metrics, "tags": tags})
    svc.create_run(experiment="other", params_={"lr": "0.01"})  # another experiment: never returned
    return truth


def _gt(m: dict, key: str, x: float) -> bool:
    v = m.get(key)
    return v is not None and not math.isnan(v) and v > x


CASES = [
    ("metrics.acc > 0.5", lambda r: _gt(r["metrics"], "acc", 0.5)),
    (
        "metrics.acc > 0.5 and params.lr = '0.01'",
        lambda r: _gt(r["metrics"], "acc", 0.5) and r["params"]["lr"] == "0.01",
    ),
    (
        "params.lr = '0.01' and metrics.loss > 0.3",
        lambda r: r["params"]["lr"] == "0.01" and _gt(r["metrics"], "loss", 0.3),
    ),
    (
        "metrics.acc > 0.5 and params.lr = '0.01' or tags.team = 'risk'",
        lambda r: (
            (_gt(r["metrics"], "acc", 0.5) and r["params"]["lr"] == "0.01") or r["tags"]["team"] == "risk"
        ),
    ),
    (
        "metrics.loss != 0.5 and (tags.team = 'ops' or metrics.acc <= 0.2)",
        lambda r: (
            r["metrics"].get("loss") is not None
            and not math.isnan(r["metrics"]["loss"])
            and r["metrics"]["loss"] != 0.5
            and (r["tags"]["team"] == "ops" or (r["metrics"]["acc"] <= 0.2))
        ),
    ),
    ("metrics.acc in (0.25, 0.5) and metrics.acc < 0.4", lambda r: r["metrics"]["acc"] == 0.25),
]


def test_metric_driven_search_matches_brute_force(store_uri: str) -> None:
    svc = TrackingService(yard.get_workspace(store_uri))
    truth = _seed(svc)
    for text, pred in CASES:
        expected = sorted((r for r in truth if pred(r)), key=lambda r: (-r["metrics"]["acc"], r["id"]))
        got = svc.search_runs("exp", filter=text, order_by=["metrics.acc desc"], limit=1000)
        assert [r.id for r in got] == [r["id"] for r in expected], text
        # without an experiment (nothing to keep SQLite from) the answer is the same
        got_all = svc.search_runs(None, filter=text, order_by=["metrics.acc desc"], limit=1000)
        assert [r.id for r in got_all if r.experiment == "exp"] == [r["id"] for r in expected], text


def test_points_for_a_purged_run_are_refused_and_not_stored(store_uri: str) -> None:
    svc = TrackingService(yard.get_workspace(store_uri))
    rec = svc.create_run(experiment="exp")
    svc.write_metrics([(rec.id, "loss", 0, 0.5, False, 1)], [(rec.id, "loss", 0, 0.5, False, 1)])
    svc.end_run(rec.id)
    svc.delete_run(rec.id)
    assert svc.purge_deleted_runs() == 1
    with pytest.raises(
        NotFoundError, match=r"Cannot store metrics: the run was removed from the store \(run "
    ):
        svc.write_metrics([(rec.id, "loss", 1, 0.4, False, 2)], [(rec.id, "loss", 1, 0.4, False, 2)])
    with svc.store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM metrics").scalar() == 0


def _yard(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), YARD_URI=str(tmp_path / "store"), COLUMNS="120")
    code = (
        "import sys\nfrom modelyard.cli import main\nsys.argv[0] = 'yard'\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('LOADED' if 'modelyard.cli._runs' in sys.modules else 'NOT-LOADED', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_root_help_lists_lazy_groups_without_importing_them(tmp_path: Path) -> None:
    proc = _yard("--help", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "List, inspect, compare and delete tracked runs." in proc.stdout
    assert "Commands" in proc.stdout and "--uri" in proc.stdout and "YARD_URI" in proc.stdout
    assert "NOT-LOADED" in proc.stderr


def test_lazy_group_runs_and_help_text_matches_the_group(tmp_path: Path) -> None:
    from modelyard.cli import _runs
    from modelyard.cli._group import LAZY_GROUPS

    assert LAZY_GROUPS["runs"].help == _runs.app.info.help
    proc = _yard("runs", "list", "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED" in proc.stderr and "NOT-LOADED" not in proc.stderr
    assert proc.stdout.strip().startswith("[")
    proc = _yard("rns", tmp_path=tmp_path)
    assert proc.returncode != 0 and "Did you mean 'runs'" in proc.stderr
