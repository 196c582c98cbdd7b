from __future__ import annotations

import re
import threading
import time

import httpx
import pytest

from modelyard.quickstart import CHAPTERS, QuickstartContext, chapter_rollout


@pytest.mark.slow
def test_rollout_chapter_promotes_then_rolls_back(tmp_path) -> None:
    lines: list[str] = []
    ctx = QuickstartContext(uri=str(tmp_path / "qs"), say=lines.append)
    chapter_rollout(ctx)  # registers churn-clf@production itself when earlier chapters have not run
    text = "\n".join(lines)
    assert "each step judged on 50 requests" in text
    assert "promoted version 2 of 'churn-clf'" in text
    assert (
        "step 1/2 (canary 50%): FAILED — error_rate" in text and "failed: traffic back on version 2" in text
    )
    assert ctx.state["rollouts"]["production"] == 2
    assert ", 0 failed" in text
    assert "rollout" in dict(CHAPTERS)


@pytest.mark.slow
def test_rollout_chapter_cleans_up_on_failure_and_reruns_in_the_same_folder(tmp_path, monkeypatch) -> None:
    from modelyard.rollout import Controller, RolloutService, RolloutState

    uri = str(tmp_path / "qs")
    threads_before = threading.active_count()

    def crash(self, rollout_id=None, **kw):  # type: ignore[no-untyped-def]
        raise RuntimeError("the controller crashed")

    monkeypatch.setattr(Controller, "run", crash)
    lines: list[str] = []
    with pytest.raises(RuntimeError, match="the controller crashed"):
        chapter_rollout(QuickstartContext(uri=uri, say=lines.append))
    monkeypatch.undo()
    text = "\n".join(lines)
    url = re.search(r"on (http://127\.0\.0\.1:\d+) with 3 clients", text).group(1)
    # its rollout was aborted (traffic rolled back), its clients and its server stopped
    r = RolloutService(uri).latest("churn-clf")
    assert r.state is RolloutState.ABORTED and r.reason == "quickstart: the quickstart stopped on an error"
    assert f"(aborted rollout {r.id}, progressing: the quickstart stopped on an error)" in text
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health/live", timeout=30)
    deadline = time.monotonic() + 120
    while threading.active_count() > threads_before:
        assert time.monotonic() < deadline, [t.name for t in threading.enumerate()]
        time.sleep(0.1)
    # the same folder again: it runs to the end
    again: list[str] = []
    ctx = QuickstartContext(uri=uri, say=again.append)
    chapter_rollout(ctx)
    assert (
        ctx.state["rollouts"]["production"] == 4
    )  # 1 (production), 2 and 3 (the first attempt), 4 promoted, 5 broken
    assert ", 0 failed" in "\n".join(again)
