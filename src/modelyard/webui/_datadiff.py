"""Two dataset pages: the diff of two versions, and an expectation suite run on a version.

The diff is the data service's :meth:`~modelyard.data._service.DataService.diff` (rows, files, schema
changes, per-column statistics and the PSI shift check) drawn with both versions' stored profiles:
a numeric column's two histograms overlaid on one grid (the coarser of the two aligned grids), a
categorical column's top values of both as grouped shares.

Validation results are not stored by the data service (``yard.validate`` returns a report and keeps
nothing), so the validation page runs the suite on demand, as the page's user: the expectations
inferred from another version's profile (``?against=N``), or a YAML suite pasted into the form
(parsed with the safe YAML loader, its ``reference:`` resolved with the user's role). The data is
read once through the service; a version over :data:`MAX_VALIDATE_BYTES` is refused with the
command that validates it outside the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.responses import Response

from modelyard import errors
from modelyard.ui import bar_chart, fmt_num, histogram
from modelyard.webui._pages import show, when
from modelyard.webui._routes import Page

__all__ = ["MAX_VALIDATE_BYTES", "register", "shared_histograms"]

Handler = Callable[[Page], Response]
#: Bins drawn in an overlaid histogram (the aligned grids are coarsened down to this).
DRAWN_BINS = 48
#: Columns drawn on a diff page (the table lists every common column).
MAX_CHARTS = 30
#: The largest version the page validates in the server's memory.
MAX_VALIDATE_BYTES = 256 * 1024 * 1024
#: The longest suite the form takes.
MAX_SUITE_CHARS = 100_000


def shared_histograms(a: Any, b: Any) -> tuple[list[float], list[int], list[int]]:
    """Both columns' stored histograms on one grid: ``(edges, counts_a, counts_b)`` (empty when either
    has none). The grids are aligned powers of two, so coarsening the finer one is exact."""
    from modelyard.data._sketches import coarsen

    if a.hist_k is None or b.hist_k is None or not a.hist_counts or not b.hist_counts:
        return [], [], []
    k = max(a.hist_k, b.hist_k)
    sa, ca = coarsen(a.hist_k, a.hist_start, list(a.hist_counts), k)
    sb, cb = coarsen(b.hist_k, b.hist_start, list(b.hist_counts), k)
    while max(sa + len(ca), sb + len(cb)) - min(sa, sb) > DRAWN_BINS:
        sa, ca = coarsen(k, sa, ca, k + 1)
        sb, cb = coarsen(k, sb, cb, k + 1)
        k += 1
    lo, hi = min(sa, sb), max(sa + len(ca), sb + len(cb))
    out_a, out_b = [0] * (hi - lo), [0] * (hi - lo)
    for start, counts, out in ((sa, ca, out_a), (sb, cb, out_b)):
        for i, c in enumerate(counts):
            out[start - lo + i] += c
    w = 2.0**k
    return [(lo + i) * w for i in range(hi - lo + 1)], out_a, out_b


def _overlay(name: str, a: Any, b: Any, ra: str, rb: str) -> str:
    edges, ca, cb = shared_histograms(a, b)
    if edges and sum(ca) and sum(cb):
        return histogram(edges, [(ra, ca), (rb, cb)], title=name, width=460, height=160)
    ta, tb = dict(a.top(10)), dict(b.top(10))
    keys = sorted(set(ta) | set(tb), key=lambda k: -(ta.get(k, 0) + tb.get(k, 0)))[:12]
    if not keys:
        return ""
    va, vb = dict(a.values), dict(b.values)
    series = [(ra, [float(va.get(k, 0)) for k in keys]), (rb, [float(vb.get(k, 0)) for k in keys])]
    return bar_chart(keys, series, title=name, width=460, shares=True)


def _pair(values: list[Any], digits: int = 4) -> tuple[str, str, bool]:
    a, b = values
    fa = fmt_num(a, digits) if isinstance(a, float) else show(a)
    fb = fmt_num(b, digits) if isinstance(b, float) else show(b)
    return fa, fb, fa != fb


def register(
    page: Callable[[str], Callable[[Handler], Handler]], action: Callable[[str], Callable[[Handler], Handler]]
) -> None:
    """Add the diff and validation pages (before ``/datasets/{name}/{version}``, which would take
    ``diff`` for a version)."""
    from modelyard.data._record import human_size
    from modelyard.data._report import _short as short
    from modelyard.data._service import DataService as D
    from modelyard.webui._data import version_number

    @page("/datasets/{name}/diff")
    def dataset_diff(p: Page) -> Response:
        name = p.request.path_params["name"]
        args = p.request.query_params
        if not args.get("a") or not args.get("b"):
            raise errors.InvalidArgumentError(
                "Pick two versions to compare: /datasets/NAME/diff?a=1&b=2 (the form on the dataset page)."
            )
        reader = ("reader", "dataset", name)
        va = p.call(D, "version_of", name=name, version=version_number(args["a"]))
        vb = p.call(D, "version_of", name=name, version=version_number(args["b"]))
        d = p.call(D, "diff", need=reader, a=va, b=vb)
        pa, pb = p.call(D, "profile", need=reader, ref=va), p.call(D, "profile", need=reader, ref=vb)
        columns = []
        for i, row in enumerate(d["columns"]):
            c = row["column"]
            stats = {k: _pair(row[k]) for k in ("null_fraction", "distinct", "min", "max", "mean", "std")}
            chart = _overlay(c, pa[c], pb[c], va.ref, vb.ref) if pa and pb and i < MAX_CHARTS else ""
            columns.append(
                {**row, "stats": stats, "chart": chart, "changed": any(s[2] for s in stats.values())}
            )
        ra, rb = d["rows"]
        return p.render(
            "dataset_diff.html.j2",
            title=f"{va.ref} → {vb.ref} · datasets · modelyard",
            section="datasets",
            name=name,
            va=va,
            vb=vb,
            d=d,
            row_delta=(rb - ra) if ra is not None and rb is not None else None,
            columns=columns,
            size=human_size,
            fmt=fmt_num,
            when=when,
        )

    def validation_page(p: Page, suite_text: str = "", against_raw: str = "") -> Response:
        from modelyard.data._record import DatasetVersion

        name = p.request.path_params["name"]
        v: DatasetVersion = p.call(
            D, "version_of", name=name, version=version_number(p.request.path_params["version"])
        )
        versions = p.call(D, "versions", name=name)
        report = None
        if suite_text.strip() or against_raw:
            report = _run_suite(p, v, suite_text, version_number(against_raw) if against_raw else None)
        default = next((x.version for x in reversed(versions) if x.version < v.version), None)
        return p.render(
            "dataset_validation.html.j2",
            title=f"Validate {v.ref} · datasets · modelyard",
            section="datasets",
            v=v,
            versions=[x for x in versions if x.profile_digest],
            against=int(against_raw.lstrip("vV")) if against_raw else default,
            suite_text=suite_text,
            report=report,
            short=short,
            size=human_size,
        )

    @page("/datasets/{name}/{version}/validate")
    def dataset_validate(p: Page) -> Response:
        return validation_page(p, against_raw=p.request.query_params.get("against", "").strip())

    @action("/datasets/{name}/{version}/validate")
    def dataset_validate_suite(p: Page) -> Response:
        form = p.request.state.form
        text = str(form.get("suite") or "")
        if len(text) > MAX_SUITE_CHARS:
            raise errors.InvalidArgumentError(
                f"The suite is {len(text):,} characters; the form takes up to {MAX_SUITE_CHARS:,}."
            )
        if not text.strip():
            raise errors.InvalidArgumentError(
                "Paste an expectation suite (YAML) to run it, or pick a version."
            )
        return validation_page(p, suite_text=text, against_raw=str(form.get("against") or "").strip())


def _run_suite(p: Page, v: Any, suite_text: str, against: int | None) -> Any:
    """The report of a suite on version ``v``: the pasted YAML, or inferred from version ``against``."""
    import yaml

    from modelyard._yaml import load_yaml
    from modelyard.data._expectations import infer_suite, load_suite
    from modelyard.data._service import DataService as D
    from modelyard.data._service import parse_ref
    from modelyard.data._validate import validate

    if v.schema_digest is None:
        raise errors.InvalidArgumentError(f"{v.ref} is not tabular: there is nothing to validate.")
    if v.bytes > MAX_VALIDATE_BYTES:
        raise errors.InvalidArgumentError(
            f"{v.ref} is {v.bytes:,} bytes, over the {MAX_VALIDATE_BYTES:,} the web UI validates; run "
            f"`yard data get {v.ref} DIR` and `yard validate DIR --suite SUITE.yaml` instead."
        )
    suite = None
    ref_label = None
    ref_profile = None
    if suite_text.strip():
        try:
            doc = load_yaml(suite_text, what="expectation suite", name="the pasted suite")
        except yaml.YAMLError as exc:
            raise errors.InvalidArgumentError(f"The pasted suite is not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise errors.InvalidArgumentError(
                "The pasted suite must be a YAML mapping (suite:, columns:, ...)."
            )
        suite = load_suite(doc)
        if suite.reference and against is None:  # resolved here, with the user's role on that dataset
            rname, rversion = parse_ref(str(suite.reference))
            ref_v = p.call(D, "version_of", name=rname, version=rversion)
            ref_label, ref_profile = (
                ref_v.ref,
                p.call(D, "profile", need=("reader", "dataset", rname), ref=ref_v),
            )
    if against is not None:
        ref_v = p.call(D, "version_of", name=v.name, version=against)
        ref_label, ref_profile = (
            ref_v.ref,
            p.call(D, "profile", need=("reader", "dataset", v.name), ref=ref_v),
        )
        if ref_profile is None:
            raise errors.InvalidArgumentError(f"{ref_v.ref} has no profile to infer expectations from.")
    if suite is None:
        if ref_profile is None:
            raise errors.InvalidArgumentError(
                "Pick a version to infer the expectations from, or paste a suite."
            )
        suite = infer_suite(ref_profile, name=f"inferred from {ref_label}")
    # resolved above with the user's role; validate() would otherwise resolve it again on its own
    suite.reference = ref_label if ref_profile is not None else None
    table = p.call(D, "load", need=("reader", "dataset", v.name), ref=v, engine="arrow")
    report = validate(table, suite=suite, reference=ref_profile)
    report.data = v.ref
    return report
