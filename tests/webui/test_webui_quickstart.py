"""The quickstart's web UI chapter: serves the UI on the store, fetches a page of each kind over HTTP,
prints their addresses and sizes and the command that opens the UI, stops the server, opens no browser."""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_ui_chapter_fetches_pages_and_cleans_up(
    server: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import webbrowser

    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import modelyard as yard
    from modelyard.data import add
    from modelyard.quickstart import CHAPTERS, QuickstartContext
    from modelyard.registry import register_model
    from modelyard.webui._quickstart import chapter_ui

    assert "web UI" in dict(CHAPTERS)
    uri = str(server["ws"].location.root)  # 6 runs in experiment exp (YARD_URI names it)

    def no_browser(*args: Any, **kwargs: Any) -> bool:
        raise AssertionError("the quickstart opened a browser")

    monkeypatch.setattr(webbrowser, "open", no_browser)
    df = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
    add(df, name="churn")
    register_model(LogisticRegression().fit(df[["a"]], df["y"]), "clf", input_example=df[["a"]].head(2))
    before = {t.name for t in threading.enumerate()}
    said: list[str] = []
    ctx = QuickstartContext(uri=uri, say=said.append)
    chapter_ui(ctx)
    pages = ctx.state["ui_pages"]
    paths = [u.split("/", 3)[3] for u, _, _, _ in pages]
    run = yard.search_runs("exp", filter="name = 'run-5'")[0]
    assert "ui/" in paths and "ui/experiments/exp" in paths and "ui/models/clf" in paths
    assert [p for p in paths if p.startswith("ui/runs/")] == [f"ui/runs/{run.id}"]  # newest first
    assert "ui/datasets/churn" in paths
    assert {"ui/monitoring", "ui/releases", "ui/automations"} <= set(paths)
    assert all(status == 200 and size > 500 for _, status, size, _ in pages), pages
    text = "\n".join(said)
    for url, _, size, _ in pages:
        assert url in text and f"{size / 1024:.1f} KB" in text
    assert "yard ui" in text and "server stopped" in text
    # the server's thread is gone (nothing left listening), and no browser was opened
    assert "yard-server" not in {t.name for t in threading.enumerate()} - before
