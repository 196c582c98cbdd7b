"""The dataset pages: datasets, one dataset's versions, and a version (schema, profile, files, lineage).

A version page draws each profiled column the way the static reports do (:mod:`modelyard.ui`): a
histogram of a numeric column's stored bins, a bar chart of a categorical column's top values. The
files come from the version's manifest, the lineage from the runs that recorded it as an input (and
the run that produced it). Every read is a reader's, on the dataset named in the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.responses import Response

from modelyard import errors
from modelyard.ui import bar_chart, fmt_num, histogram
from modelyard.webui._pages import show, when
from modelyard.webui._routes import Page

__all__ = ["register"]

Handler = Callable[[Page], Response]
#: Columns drawn on a version page (the table lists every column; a chart is 5-10 KB of SVG).
MAX_CHARTS = 30
#: Files listed on a version page (the count says how many more there are).
MAX_FILES = 500


def version_number(raw: str, what: str = "dataset version") -> int:
    """``"3"`` or ``"v3"`` → 3; anything else is a 404 (the URL names no version)."""
    digits = raw[1:] if raw[:1] in ("v", "V") else raw
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise errors.NotFoundError(f"{raw!r} is not a {what}: write a number such as v3.")
    return int(digits)


def column_chart(c: Any) -> str:
    """The profile chart of one column: its histogram (numeric) or its top values (others), or ""."""
    edges, counts = c.histogram
    if edges and counts and sum(counts):
        return histogram(edges, [(c.name, counts)], title=c.name, width=460, height=150)
    top = c.top(10)
    if top:
        return bar_chart([k for k, _ in top], [(c.name, [float(n) for _, n in top])], title=c.name, width=460)
    return ""


def register(
    page: Callable[[str], Callable[[Handler], Handler]], action: Callable[[str], Callable[[Handler], Handler]]
) -> None:
    """Add the dataset pages through the decorators of :func:`modelyard.webui.mount`."""
    from modelyard.webui import _datadiff

    _datadiff.register(page, action)  # first: /datasets/{name}/diff before /datasets/{name}/{version}
    from modelyard.data._record import human_size
    from modelyard.data._service import DataService as D

    @page("/datasets")
    def datasets(p: Page) -> Response:
        rows = p.call(D, "list_datasets")
        return p.render(
            "datasets.html.j2",
            title="Datasets · modelyard",
            section="datasets",
            rows=rows,
            size=human_size,
            when=when,
        )

    @page("/datasets/{name}")
    def dataset(p: Page) -> Response:
        name = p.request.path_params["name"]
        versions = p.call(D, "versions", name=name)
        counts = p.call(D, "run_counts", need=("reader", "dataset", name), name=name)  # one query
        used = {v.version: counts.get(v.version, 0) for v in versions}
        return p.render(
            "dataset.html.j2",
            title=f"{name} · datasets · modelyard",
            section="datasets",
            name=name,
            versions=list(reversed(versions)),
            used=used,
            size=human_size,
            when=when,
        )

    @page("/datasets/{name}/{version}")
    def dataset_version(p: Page) -> Response:
        name = p.request.path_params["name"]
        number = version_number(p.request.path_params["version"])
        v = p.call(D, "version_of", name=name, version=number)
        reader = ("reader", "dataset", name)
        schema = p.call(D, "schema", need=reader, ref=v)
        profile = p.call(D, "profile", need=reader, ref=v)
        files = p.call(D, "manifest", need=reader, ref=v)
        runs = p.call(D, "runs_of_version", name=name, version=number)
        producer = None
        if v.run_id:
            from modelyard.tracking._service import TrackingService as T

            try:
                producer = p.call(T, "get_run", run_id=v.run_id)
            except errors.NotFoundError:
                producer = None  # the run was deleted; the version keeps its id
        columns: list[dict[str, Any]] = []
        if profile is not None:
            for i, c in enumerate(profile.columns.values()):
                columns.append(
                    {
                        "name": c.name,
                        "type": c.type,
                        "kind": c.kind,
                        "nulls": c.nulls,
                        "null_share": f"{c.null_fraction:.1%}",
                        "distinct": f"{c.distinct:,}" + ("" if c.distinct_exact else " (est.)"),
                        "min": show(c.min),
                        "max": show(c.max),
                        "mean": fmt_num(c.mean, 4) if c.mean is not None else "",
                        "std": fmt_num(c.std, 4) if c.std is not None else "",
                        "chart": column_chart(c) if i < MAX_CHARTS else "",
                    }
                )
        return p.render(
            "dataset_version.html.j2",
            title=f"{v.ref} · datasets · modelyard",
            section="datasets",
            v=v,
            schema=schema,
            columns=columns,
            max_charts=MAX_CHARTS,
            files=files[:MAX_FILES],
            more_files=max(0, len(files) - MAX_FILES),
            runs=runs,
            producer=producer,
            size=human_size,
            when=when,
        )
