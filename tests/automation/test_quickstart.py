"""The quickstart's automation chapter runs its loop, twice in one folder, printing each decision."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.slow
def test_automation_chapter_releases_a_new_version_each_time(tmp_path: Path) -> None:
    from modelyard.automation._quickstart import chapter_automation
    from modelyard.quickstart import CHAPTERS, QuickstartContext
    from modelyard.registry import get_model
    from modelyard.tracking import init

    assert "automation" in dict(CHAPTERS)
    uri = str(tmp_path / ".yard")
    init(uri)
    said: list[str] = []
    ctx = QuickstartContext(uri=uri, say=said.append)
    chapter_automation(ctx)
    text = "\n".join(said)
    assert "x1-drift firing" in text and "fired run 1 (queued): alert quickstart-auto/x1-drift fired" in text
    assert "gate: OK" in text and "promoted version 2" in text
    assert (
        "Run 1 succeeded: pipeline ok → gate ok → rollout ok; production is now quickstart-auto v2." in text
    )
    said.clear()
    chapter_automation(ctx)  # a rerun: the alert resolves and fires again, new data, version 3
    assert "Run 2 succeeded" in "\n".join(said), said[-5:]
    assert get_model("quickstart-auto", uri=uri).aliases["production"] == 3
