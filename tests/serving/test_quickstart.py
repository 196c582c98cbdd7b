from __future__ import annotations

from modelyard.quickstart import CHAPTERS, QuickstartContext, chapter_serving


def test_serving_chapter_serves_the_production_model(tmp_path) -> None:
    lines: list[str] = []
    ctx = QuickstartContext(uri=str(tmp_path / "qs"), say=lines.append)
    chapter_serving(ctx)  # registers churn-clf@production itself when the registry chapter has not run
    text = "\n".join(lines)
    assert "POST /v1/models/churn-clf/predict (3 rows) → 200 version 1" in text
    assert "POST /invocations (MLflow dataframe_split) → 200" in text
    assert "a bad row → 422" in text and "/health/ready: ready; /metrics counted 3 requests" in text
    assert len(ctx.state["served"]["predictions"]) == 3
    assert [name for name, _ in CHAPTERS][-1] == "serving" or "serving" in dict(CHAPTERS)
