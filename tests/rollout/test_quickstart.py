from __future__ import annotations

import pytest

from modelyard.quickstart import CHAPTERS, QuickstartContext, chapter_rollout


@pytest.mark.slow
def test_rollout_chapter_promotes_then_rolls_back(tmp_path) -> None:
    lines: list[str] = []
    ctx = QuickstartContext(uri=str(tmp_path / "qs"), say=lines.append)
    chapter_rollout(ctx)  # registers churn-clf@production itself when earlier chapters have not run
    text = "\n".join(lines)
    assert "promoted version 2 of 'churn-clf'" in text
    assert "step 1/2 (canary 50%): FAILED — error_rate" in text and "failed: traffic back on version 2" in text
    assert ctx.state["rollouts"]["production"] == 2
    assert ", 0 failed" in text
    assert "rollout" in dict(CHAPTERS)
