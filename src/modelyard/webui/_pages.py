"""The pages: experiments, the runs table, a run, an artifact, compare (each a template in ``web/``)."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
from fastapi.responses import Response
from markupsafe import Markup, escape

from modelyard import errors
from modelyard.tracking._records import RunStatus
from modelyard.ui import fmt_num, line_chart, parallel_coordinates
from modelyard.webui._artifacts import artifact_preview, raw_artifact
from modelyard.webui._routes import PREFIX, Page

__all__ = ["register"]

PAGE_SIZES = (25, 50, 100, 200)
#: Points drawn per series (LTTB keeps the shape of longer ones).
DRAWN_POINTS = 600
#: Points drawn on a compare page, shared by its curves (20 runs × 20 metrics × 600 points was 3 MB);
#: no curve gets fewer than MIN_POINTS (LTTB keeps peaks and the shape) nor more than DRAWN_POINTS.
COMPARE_POINTS = 16_000
MIN_POINTS = 50
MAX_COMPARE = 20
#: Parameter axes of the parallel coordinates (those that differ between the runs come first).
MAX_AXES = 8
#: Series colours for many runs: distinct hues, each at least 3:1 against white.
RUN_COLORS = (
    "#0969da", "#d1242f", "#1a7f37", "#8250df", "#bc4c00",
    "#0a7b83", "#bf3989", "#6e7781", "#9a6700", "#4d2d8f",
)  # fmt: skip
ATTR_COLUMNS = (("name", "Run"), ("status", "Status"), ("start_time", "Started"), ("user", "User"))
Handler = Callable[[Page], Response]


def when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) if ms else ""


def duration(start: int, end: int | None) -> str:
    if not end:
        return ""
    s = (end - start) / 1000
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def show(v: Any) -> str:
    if isinstance(v, float):
        return fmt_num(v, 5)
    return "" if v is None else str(v)


def register(
    page: Callable[[str], Callable[[Handler], Handler]], action: Callable[[str], Callable[[Handler], Handler]]
) -> None:
    """Add the tracking pages through the ``page`` decorator of :func:`modelyard.webui.mount`."""
    from modelyard.tracking._search import next_page_token
    from modelyard.tracking._service import TrackingService as T

    @page("/")
    def experiments(p: Page) -> Response:
        rows = p.call(T, "list_experiments")
        return p.render("experiments.html.j2", title="Experiments · modelyard", rows=rows, when=when)

    @page("/experiments/{name}")
    def runs_table(p: Page) -> Response:
        name = p.request.path_params["name"]
        args = p.request.query_params
        q = args.get("q", "").strip()
        sort = args.get("sort", "").strip()
        desc = args.get("dir", "desc") != "asc"
        after = args.get("after") or None
        size = int(args.get("n", "50")) if args.get("n", "50").isdigit() else 50
        size = size if size in PAGE_SIZES else 50
        order = f"{sort} {'desc' if desc else 'asc'}" if sort else None
        problem: errors.FilterSyntaxError | None = None
        table = None
        try:
            # the chosen columns' values only (and every key, for the column chooser): a page of 100
            # runs × 20 metrics read as whole runs was half the page's time
            table = p.call(
                T,
                "run_table",
                need=("reader", None, None),  # search_runs's role
                experiment=name,
                # None (every value): the default columns depend on the keys the page's runs have
                columns=args.getlist("cols") if "cols" in args else None,
                filter=q or None,
                order_by=order,
                limit=size,
                page_token=after,
            )
        except errors.FilterSyntaxError as exc:
            problem = exc
        shown = table.runs if table is not None else []
        token = next_page_token(order, shown[-1]) if table is not None and table.more else None
        found = table.keys if table is not None else {"metrics": [], "params": [], "tags": []}
        keys = {
            "metrics": found["metrics"],
            "params": found["params"],
            "tags": [k for k in found["tags"] if not k.startswith("yard.")],
        }
        if "cols" in args:
            cols = [c for c in args.getlist("cols") if c.partition(".")[0] in keys and c.partition(".")[2]]
        else:
            cols = [f"metrics.{k}" for k in keys["metrics"][:4]] + [f"params.{k}" for k in keys["params"][:3]]
        rows = table_rows(shown, cols)

        caret = None
        if problem is not None and problem.text == q:
            pos = min(max(problem.position, 0), len(q))
            end = pos
            while end < len(q) and not q[end].isspace() and q[end] not in "()=<>!,":
                end += 1
            caret = (q[:pos], q[pos : max(end, pos + 1)], q[max(end, pos + 1) :])
        base = {"q": q, "sort": sort, "dir": "desc" if desc else "asc", "n": size, "cols": cols}
        return p.render(
            "runs.html.j2",
            status=400 if problem else 200,
            title=f"{name} · runs · modelyard",
            experiment=name,
            runs=shown,
            cols=cols,
            keys=keys,
            base=base,
            token=token,
            paged=after is not None,
            problem=problem,
            problem_text=str(problem).split("\n")[0] if problem else "",
            caret=caret,
            attr_columns=ATTR_COLUMNS,
            rows=rows,
            link=_linker(base),
            sizes=PAGE_SIZES,
        )

    @page("/runs/{run_id}")
    def run_page(p: Page) -> Response:
        run = p.call(T, "get_run", run_id=p.request.path_params["run_id"])
        x_time = p.request.query_params.get("x") == "time"
        # the run is read (role-checked) above
        live = [run.id] if run.status == RunStatus.RUNNING else []
        history = _curves(p.ws.store, [run.id], list(run.metrics), x_time, 0.0, DRAWN_POINTS, live)
        charts = []
        for key in sorted(run.metrics):
            n, series = history.get((run.id, key), (0, []))
            charts.append(
                (key, n, line_chart([(key, series)], title=key, width=460, height=200, x_time=x_time))
            )
        env = _flatten(run.environment)
        from modelyard.data._service import DataService
        from modelyard.registry._service import RegistryService

        return p.render(
            "run.html.j2",
            inputs=p.call(DataService, "inputs_of", run_id=run.id),
            outputs=p.call(RegistryService, "versions_of_run", run_id=run.id),
            title=f"{run.name} · run · modelyard",
            run=run,
            charts=charts,
            x_time=x_time,
            env=env,
            when=when,
            duration=duration,
            show=show,
        )

    @page("/runs/{run_id}/artifact")
    def artifact(p: Page) -> Response:
        run = p.call(T, "get_run", run_id=p.request.path_params["run_id"])
        path = p.request.query_params.get("path", "")
        preview = artifact_preview(p.ws, run, path)
        return p.render("artifact.html.j2", title=f"{path} · {run.name} · modelyard", run=run, a=preview)

    @page("/runs/{run_id}/raw")
    def raw(p: Page) -> Response:
        run = p.call(T, "get_run", run_id=p.request.path_params["run_id"])
        return raw_artifact(p.ws, run, p.request.query_params.get("path", ""))

    @page("/compare")
    def compare(p: Page) -> Response:
        args = p.request.query_params
        ids = list(dict.fromkeys(i for i in args.getlist("run") if i))
        if not 2 <= len(ids) <= MAX_COMPARE:
            raise errors.InvalidArgumentError(
                f"Select between 2 and {MAX_COMPARE} runs to compare (got {len(ids)}): tick them in the "
                "runs table and press Compare."
            )
        runs = [p.call(T, "get_run", run_id=i) for i in ids]
        log = args.get("log") == "1"
        x_time = args.get("x") == "time"
        try:
            smooth = min(max(float(args.get("smooth", "0")), 0.0), 0.99)
        except ValueError:
            smooth = 0.0
        labels = _labels(runs)
        colors = [RUN_COLORS[i % len(RUN_COLORS)] for i in range(len(runs))]
        keys = sorted({k for r in runs for k in r.metrics})
        drawn = max(MIN_POINTS, min(DRAWN_POINTS, COMPARE_POINTS // (len(runs) * max(len(keys), 1))))
        # each curve from its stored copy, else from its points (each run was read above through the
        # role-checked get_run)
        live = [r.id for r in runs if r.status == RunStatus.RUNNING]
        history = _curves(p.ws.store, [r.id for r in runs], keys, x_time, smooth, drawn, live)
        charts = []
        for key in keys:
            series = []
            for r, label in zip(runs, labels, strict=True):
                series.append((label, history.get((r.id, key), (0, []))[1]))
            title = f"{key} (log scale)" if log else key
            charts.append(
                line_chart(
                    series, title=title, width=480, height=240, x_time=x_time, colors=colors, y_log=log
                )
            )
        pkeys = sorted({k for r in runs for k in r.params})
        params = [(k, [r.params.get(k, "") for r in runs]) for k in pkeys]
        params.sort(key=lambda row: len(set(row[1])) == 1)  # differences first
        mkeys = keys
        metrics = [(k, [r.metrics.get(k) for r in runs]) for k in mkeys]
        chosen = args.get("pm") if args.get("pm") in mkeys else (mkeys[0] if mkeys else None)
        differ = [(k, vals) for k, vals in params if len(set(vals)) > 1] or params
        axes = differ[:MAX_AXES]
        parallel = (
            parallel_coordinates(
                axes,
                (chosen, [r.metrics.get(chosen) for r in runs]),
                labels,
                hrefs=[f"{PREFIX}/runs/{r.id}" for r in runs],
                title=f"parameters of {len(runs)} runs against {chosen}; each line links to its run",
            )
            if chosen and axes
            else ""
        )
        return p.render(
            "compare.html.j2",
            title=f"Compare {len(runs)} runs · modelyard",
            runs=runs,
            labels=labels,
            colors=colors,
            charts=charts,
            params=params,
            metrics=metrics,
            mkeys=mkeys,
            chosen=chosen,
            parallel=parallel,
            more_axes=max(0, len(differ) - MAX_AXES),
            log=log,
            x_time=x_time,
            smooth=smooth,
            ids=ids,
            show=show,
        )

    from modelyard.webui import _automations, _data, _lineage, _models, _monitoring, _pipelines, _releases

    _models.register(page, action)
    _releases.register(page, action)
    _data.register(page, action)
    _monitoring.register(page, action)
    _lineage.register(page, action)
    _pipelines.register(page, action)
    _automations.register(page, action)


def _esc(text: str) -> str:
    """``markupsafe.escape(text)`` of a plain ``str``, as a str: five ``replace`` calls are several
    times faster than ``escape`` (a Markup object each), and the runs table escapes ~1,000 texts."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


def table_rows(shown: Sequence[Any], cols: list[str]) -> list[Markup]:
    """Each run's row of the runs table as one piece of HTML: its attributes, then the chosen columns'
    cells (``<td class="num">`` each). Built here, not in the template: 100 rows × 30 cells were
    3,000 template calls and escapes, more than half of the page's time. A float is shown by
    :func:`show` (``fmt_num``, 5 digits), whose text needs no escaping (digits, ``.-+e``, ``NaN``,
    ``∞``); the usual range takes ``format`` directly, the same text. Texts are escaped by
    :func:`_esc` (what the template's autoescape does), anything else by ``escape(show(v))``."""
    kinds = ("metrics", "params", "tags")
    picked = [(kinds.index(kind), key) for kind, _, key in (c.partition(".") for c in cols)]
    out = []
    for r in shown:
        by = (r.metrics, r.params, r.tags)
        rid, name, status = _esc(str(r.id)), _esc(str(r.name)), _esc(r.status.value)
        at = _esc(when(r.start_time))
        took = _esc(duration(r.start_time, r.end_time))
        parts = [
            f'<tr><td><input type="checkbox" name="run" value="{rid}" aria-label="select {name}"></td>\n'
            f'<td class="name"><a href="{PREFIX}/runs/{rid}">{name}</a></td>\n'
            f'<td><span class="badge {status}">{status}</span></td>\n<td>{at}</td>'
            f'<td>{_esc(str(r.user or ""))}</td><td class="num">{took}</td>\n'
        ]
        for i, key in picked:
            v = by[i].get(key)
            cls = v.__class__
            if cls is float:
                a = abs(v)
                text = f"{v:.5g}" if 1e-3 <= a < 1e5 or a == 0.0 else fmt_num(v, 5)
            elif cls is str:
                text = _esc(v)
            else:
                text = escape(show(v))
            parts.append(f'<td class="num">{text}</td>')
        parts.append("</tr>\n")
        out.append(Markup("".join(parts)))
    return out


def _linker(base: dict[str, Any]) -> Callable[..., str]:
    """``link(**over)``: :func:`_query` of ``base`` updated with ``over``, each ``name=value`` pair
    encoded once per page (a table's 30 header links each repeat the chosen columns)."""
    from urllib.parse import quote_plus

    done: dict[tuple[str, str], str] = {}

    def pair(k: str, v: str) -> str:
        got = done.get((k, v))
        if got is None:
            got = done[(k, v)] = f"{quote_plus(k, '')}={quote_plus(v, '')}"
        return got

    def link(**over: Any) -> str:
        values = {**base, **over}
        pairs: list[str] = []
        for k, v in values.items():
            if v in (None, "", False):
                continue
            for item in v if isinstance(v, list) else [v]:
                pairs.append(pair(k, str(item)))
        if "cols" in values and not values["cols"]:
            pairs.append("cols=")
        return "&".join(pairs)

    return link


def _query(values: dict[str, Any]) -> str:
    """The query string of ``values`` (a list value repeats its name): what :func:`_linker` builds."""
    from urllib.parse import urlencode

    pairs: list[tuple[str, str]] = []
    for k, v in values.items():
        if v in (None, "", False):
            continue
        for item in v if isinstance(v, list) else [v]:
            pairs.append((k, str(item)))
    if "cols" in values and not values["cols"]:
        pairs.append(("cols", ""))
    return urlencode(pairs)


#: Drawn curves kept between requests, ``(store, run, key, axis, smoothing, points) -> ((points in
#: the series, last step), (points, drawn (x, y)))``: a compare page of 10 runs × 20 metrics × 1,000
#: steps reads 200,000 points to draw 16,000 of them; once drawn, a curve is redrawn only when its
#: series has grown (:func:`~modelyard.tracking._history.series_versions`, an index-only read).
#: Below it, the store keeps a downsampled copy of each series (:mod:`modelyard.tracking._curves`),
#: so a curve not drawn yet in this process is drawn from at most 2,048 stored points.
_CURVES: OrderedDict[tuple[Any, ...], tuple[tuple[int, int], tuple[int, list[tuple[float, float]]]]] = (
    OrderedDict()
)
CURVES_KEPT = 20_000
_CURVES_LOCK = threading.Lock()


def _curves(
    store: Any,
    run_ids: list[str],
    keys: list[str],
    x_time: bool,
    smooth: float,
    drawn: int,
    live: Collection[str] = (),
) -> dict[tuple[str, str], tuple[int, list[tuple[float, float]]]]:
    """``{(run_id, key): (points in the series, drawn (x, y))}`` of every series of ``run_ids`` ×
    ``keys``; only the series that are new or have grown since they were last drawn are drawn, from
    their stored copy when it is current, else from every point (then the copy is stored, unless
    its run is one of the ``live`` ones, still running). The caller has read each run through a
    role-checked operation."""
    from modelyard.tracking import _curves as copies
    from modelyard.tracking._history import series_versions

    versions = series_versions(store, run_ids, keys)
    where = str(store.location)
    out: dict[tuple[str, str], tuple[int, list[tuple[float, float]]]] = {}
    stale: list[tuple[str, str]] = []
    with _CURVES_LOCK:
        for sk, version in versions.items():
            ck = (where, *sk, x_time, smooth, drawn)
            hit = _CURVES.get(ck)
            if hit is not None and hit[0] == version:
                _CURVES.move_to_end(ck)
                out[sk] = hit[1]
            else:
                stale.append(sk)
    if not stale:
        return out
    use = copies.drawn_from(store, {sk: versions[sk] for sk in stale}, smooth, live)
    order = sorted(use)
    lines = _draw([use[sk][1] for sk in order], x_time, smooth, drawn)
    curves = {sk: (use[sk][0], (use[sk][0][0], line)) for sk, line in zip(order, lines, strict=True)}
    with _CURVES_LOCK:
        for sk, (version, curve) in curves.items():
            _CURVES[(where, *sk, x_time, smooth, drawn)] = (version, curve)
        while len(_CURVES) > CURVES_KEPT:
            _CURVES.popitem(last=False)
    out.update({sk: curve for sk, (_, curve) in curves.items()})
    return out


def _draw(
    series: list[tuple[Any, Any, Any]], x_time: bool, smooth: float, drawn: int
) -> list[list[tuple[float, float]]]:
    """``(x, y)`` of each ``(steps, values, timestamps)`` array triple: step or time (s) on x,
    EMA-smoothed by ``smooth`` over the finite values, LTTB-downsampled to ``drawn`` points (every
    series at once). The same points as the row-by-row :func:`_xy`."""
    from modelyard.ui._lttb import lttb_indices

    xys = []
    for steps, values, ts in series:
        x = ts / 1000 if x_time else steps.astype(np.float64)
        if len(x) > 1 and bool((x[1:] < x[:-1]).any()):
            order = np.argsort(x, kind="stable")
            x, values = x[order], values[order]
        y = values
        if smooth > 0:
            keep = np.isfinite(y)
            x, y = x[keep], _ema(y[keep], smooth)
        keep = np.isfinite(x) & np.isfinite(y)
        if not keep.all():
            x, y = x[keep], y[keep]
        xys.append((x, y))
    picks = lttb_indices(xys, drawn)
    return [
        list(zip(x[idx].tolist(), y[idx].tolist(), strict=True))
        for (x, y), idx in zip(xys, picks, strict=True)
    ]


def _ema(y: Any, smooth: float) -> Any:
    """``last = smooth * last + (1 - smooth) * y`` along ``y`` (a first-order filter: the same
    products and sums, so the same floats as the loop)."""
    if len(y) < 2:
        return y
    from scipy.signal import lfilter

    out = np.empty_like(y)
    out[0] = y[0]
    out[1:] = lfilter([1 - smooth], [1.0, -smooth], y[1:], zi=[smooth * y[0]])[0]
    return out


def _xy(
    points: list[tuple[int, float, int]], x_time: bool, smooth: float, drawn: int
) -> list[tuple[float, float]]:
    """``(x, y)`` of ``(step, value, timestamp)`` rows: step or time (s) on x, EMA-smoothed by
    ``smooth``, LTTB-downsampled to ``drawn`` points."""
    steps = np.array([p[0] for p in points], dtype=np.int64)
    values = np.array([p[1] for p in points], dtype=np.float64)
    ts = np.array([p[2] for p in points], dtype=np.int64)
    return _draw([(steps, values, ts)], x_time, smooth, drawn)[0]


def _labels(runs: list[Any]) -> list[str]:
    """Run names, made unique with the short id when two share one."""
    names = [r.name for r in runs]
    return [f"{r.name} ({r.id[:8]})" if names.count(r.name) > 1 else r.name for r in runs]


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in sorted(d.items()):
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.extend(_flatten(v, key + "."))
        elif isinstance(v, list | dict):
            out.append((key, json.dumps(v)[:2000]))
        else:
            out.append((key, "" if v is None else str(v)))
    return out
