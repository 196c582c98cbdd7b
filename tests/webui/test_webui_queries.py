"""Pages that list versions read their per-version summaries in one query, however many versions:
the statements a page runs are counted on the store's engine, before and after adding versions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import modelyard as yard

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@contextmanager
def counted(ws: Any) -> Iterator[list[str]]:
    """The SQL statements run on ``ws``'s metadata store while the block runs."""
    import sqlalchemy as sa

    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engines = (ws.store.engine, ws.store.read_engine)  # writes, and reads (their own pool on SQLite)
    for engine in dict.fromkeys(engines):
        sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        for engine in dict.fromkeys(engines):
            sa.event.remove(engine, "before_cursor_execute", on_execute)


def statements(client: Any, ws: Any, path: str) -> int:
    client.get(path)  # warm: caches, the session's token lookup
    with counted(ws) as seen:
        r = client.get(path)
    assert r.status_code == 200, r.text[:500]
    return len(seen)


def more_versions(n: int) -> None:
    """``n`` more versions of ``churn-clf``, each logged by a run that read ``churn@v1``, and ``n``
    more versions of ``churn`` (no run reads them)."""
    from sklearn.linear_model import LogisticRegression

    from modelyard.data import add

    for i in range(n):
        add(yard.data.load("churn@v1").head(50 + i), name="churn")
        with yard.start_run(experiment="exp", name=f"retrain-{i}") as run:
            df = run.use_dataset("churn@v1")
            model = LogisticRegression().fit(df[["age", "spend"]], df["churned"])
            run.log_model(model, "churn-clf", input_example=df[["age", "spend"]].head(2))


def test_model_and_dataset_pages_do_not_query_per_version(
    server: dict[str, Any], lineage: dict[str, Any], client: Any
) -> None:
    ws = server["ws"]
    model_before = statements(client, ws, "/ui/models/churn-clf")
    assert model_before > 3  # the page's reads are counted
    assert statements(client, ws, "/ui/models/churn-clf") == model_before  # the count is stable
    data_before = statements(client, ws, "/ui/datasets/churn")
    more_versions(4)
    page = client.get("/ui/models/churn-clf")
    assert page.text.count('href="/ui/datasets/churn/v1">churn@v1</a>') == 4  # each version's input
    assert 'href="/ui/datasets/churn/v2">churn@v2</a>' in page.text and "retrain-3" in page.text
    assert statements(client, ws, "/ui/models/churn-clf") == model_before
    versions = client.get("/ui/datasets/churn")
    used = [int(n) for n in re.findall(r'<td class="num" data-used>(\d+)</td>', versions.text)]
    assert used == [0, 0, 0, 0, 1, 4]  # v6..v3: none; v2: the train run; v1: the four retrain runs
    assert statements(client, ws, "/ui/datasets/churn") == data_before


def test_models_list_does_not_query_per_model(
    server: dict[str, Any], lineage: dict[str, Any], client: Any
) -> None:
    """The models table reads every model's version count and aliases in a fixed number of statements."""
    from sklearn.linear_model import LogisticRegression

    ws = server["ws"]
    before = statements(client, ws, "/ui/models")
    assert before > 0
    df = yard.data.load("churn@v1")
    for i in range(3):
        with yard.start_run(experiment="exp", name=f"other-{i}") as run:
            model = LogisticRegression().fit(df[["age", "spend"]], df["churned"])
            run.log_model(model, f"other-clf-{i}", input_example=df[["age", "spend"]].head(2))
    from modelyard.registry import set_alias

    set_alias("other-clf-1", "staging", 1)
    page = client.get("/ui/models")
    for i in range(3):
        assert f"other-clf-{i}" in page.text
    assert "staging" in page.text
    assert statements(client, ws, "/ui/models") == before


def test_compare_redraws_only_the_curves_that_grew(server: dict[str, Any], client: Any) -> None:
    """A curve drawn once is kept: showing the compare again reads no metric points, only the
    index-only count of each series; a point logged to one run is drawn on the next view. Ended runs'
    series are drawn from their stored copies (made when the run ended), not from their points."""
    from modelyard.store._schema import metric_curves
    from modelyard.webui import _pages

    ids = []
    for name in ("a", "b", "c"):
        with yard.start_run(experiment="curves", name=f"curve-{name}") as run:
            for step in range(300):
                run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 300}, step=step)
            ids.append(run.id)
    path = "/ui/compare?" + "&".join(f"run={i}" for i in ids)
    ws = server["ws"]

    def reads_points(statements: list[str]) -> int:
        return sum(1 for s in statements if "FROM metrics" in s and "metrics.value" in s)

    def reads_copies(statements: list[str]) -> int:
        return sum(1 for s in statements if "FROM metric_curves" in s)

    with counted(ws) as first:
        page = client.get(path)
    assert page.status_code == 200 and reads_points(first) == 0 and reads_copies(first) == 1
    with counted(ws) as second:
        again = client.get(path)
    assert again.text == page.text and reads_points(second) == reads_copies(second) == 0
    with yard.start_run(run_id=ids[1]) as run:
        run.log_metric("loss", 5.0, step=300)  # a spike at the end of one curve
    with counted(ws) as third:
        grown = client.get(path)
    assert reads_points(third) == 0 and reads_copies(third) == 1 and grown.text != page.text
    with counted(ws) as fourth:
        assert client.get(path).text == grown.text
    assert reads_points(fourth) == 0
    with counted(ws) as smooth:
        smoothed = client.get(path + "&smooth=0.5")  # another drawing, from the same (whole) copies
    assert smoothed.status_code == 200 and reads_points(smooth) == 0

    # without copies (a store from before them): the first view reads each series and stores its copy
    ws.store.write(lambda conn: conn.execute(metric_curves.delete()))
    _pages._CURVES.clear()
    with counted(ws) as cold:
        assert client.get(path).text == grown.text  # the same chart from the points as from the copies
    assert reads_points(cold) == 6 and any("INSERT INTO metric_curves" in s for s in cold)
    _pages._CURVES.clear()  # another process, or after a restart
    with counted(ws) as restarted:
        assert client.get(path).text == grown.text
        assert client.get(path + "&smooth=0.5").text == smoothed.text
    assert reads_points(restarted) == 0
