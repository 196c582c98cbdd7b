"""Keyset pages of search_runs: every run on exactly one page, in order, whatever ties and missing values,
on SQLite, PostgreSQL and through a server (the token crosses the API)."""

from __future__ import annotations

import pytest

import modelyard as yard
from modelyard.errors import InvalidArgumentError
from modelyard.tracking._search import next_page_token
from modelyard.tracking._service import TrackingService


def walk(svc: TrackingService, order: str | None, size: int, flt: str | None = None) -> list[str]:
    seen: list[str] = []
    token = None
    for _ in range(100):
        page = svc.search_runs("pages", filter=flt, order_by=order, limit=size, page_token=token)
        seen += [r.id for r in page]
        if len(page) < size:
            break
        token = next_page_token(order, page[-1])
    return seen


def test_pages_cover_every_run_once_in_order(contract_uri: str) -> None:
    from modelyard._workspace import Workspace

    ws = Workspace(contract_uri).open()
    svc = TrackingService(ws)
    for i in range(23):
        with yard.start_run(experiment="pages", name=f"r{i % 5}", uri=contract_uri) as r:
            if i % 4:  # a quarter of the runs have no score: they sort last, in both directions
                r.log_metric("score", float(i % 3))
            r.log_params({"p": str(i % 2)})
    everything = [r.id for r in svc.search_runs("pages", limit=1000)]
    assert len(everything) == 23
    for order in (None, "metrics.score desc", "metrics.score asc", "name asc", "params.p desc", "status"):
        for size in (1, 4, 7):
            full = [r.id for r in svc.search_runs("pages", order_by=order, limit=1000)]
            assert walk(svc, order, size) == full, (order, size)
    assert len(walk(svc, "metrics.score desc", 5, "params.p = '1'")) == 11
    with pytest.raises(InvalidArgumentError, match="page_token"):
        svc.search_runs("pages", order_by="name", page_token="bm90IGpzb24")
    token = next_page_token("metrics.score", svc.search_runs("pages", limit=1)[0])
    with pytest.raises(InvalidArgumentError, match="page_token"):  # a token of another order
        svc.search_runs("pages", order_by=["metrics.score", "name"], page_token=token)
