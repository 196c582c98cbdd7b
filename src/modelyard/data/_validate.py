"""Run an expectation suite over data in one streamed, vectorized pass.

Each record batch is profiled (for null fractions and the drift statistic) and checked row-wise
with Arrow compute kernels (ranges, allowed values); the first offending rows are kept as
samples. Uniqueness keeps only the unique-checked columns. The data is only read, never changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelyard.data._drift import distribution_check
from modelyard.data._expectations import Suite, infer_suite, load_suite, type_matches
from modelyard.data._io import TabularSource, detect_format, iter_batches_of, iter_file_batches, unify_schemas
from modelyard.data._kinds import type_family
from modelyard.data._profile import Profile, ProfileBuilder
from modelyard.data._report import CheckResult, ValidationReport
from modelyard.errors import InvalidArgumentError, NotFoundError, did_you_mean

__all__ = ["validate"]

#: Offending rows kept per failed expectation.
SAMPLES = 5


def _batches(data: Any) -> tuple[Iterator[Any], str, Any]:
    """``(batches, label, arrow schema)`` of a path, frame or table."""
    if isinstance(data, str | os.PathLike):
        p = Path(data)
        if not p.exists():
            raise NotFoundError(f"Cannot validate {str(p)!r}: no such file or folder.")
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and detect_format(f))
            if not files:
                raise InvalidArgumentError(
                    f"Cannot validate {str(p)!r}: the folder has no Parquet, CSV or Arrow files."
                )
            sources = [TabularSource(f, detect_format(f) or "", str(f)) for f in files]
        else:
            fmt = detect_format(p)
            if fmt is None:
                raise InvalidArgumentError(
                    f"Cannot validate {str(p)!r}: it is not a Parquet, CSV or Arrow/Feather file "
                    f"(by its name)."
                )
            sources = [TabularSource(p, fmt, str(p))]
        schema = unify_schemas(sources)
        return (b for s in sources for b in iter_file_batches(s, dictionary_strings=True)), str(p), schema
    it = iter_batches_of(data)
    first = next(it, None)
    if first is None:  # pragma: no cover - iter_batches_of always yields
        raise InvalidArgumentError("Cannot validate an empty input.")

    def chain() -> Iterator[Any]:
        yield first
        yield from it

    return chain(), f"<{type(data).__name__}>", first.schema


def validate(
    data: Any,
    against: str | None = None,
    *,
    suite: str | os.PathLike[str] | dict[str, Any] | Suite | None = None,
    reference: Profile | None = None,
    uri: Any = None,
) -> ValidationReport:
    """Check ``data`` (a path, a pandas/polars frame or an Arrow table) and return the report.

    ``against="churn-train@v3"`` infers the expectations from that version's profile (and is the
    reference of distribution checks); ``suite=`` gives them as YAML (path), dict or
    :class:`Suite`. Both together: the suite's checks with ``against`` as the reference.
    ``reference=`` gives the reference :class:`Profile` directly (no store needed).
    """
    if against is None and suite is None and reference is None:
        raise InvalidArgumentError(
            "validate needs expectations: pass against='NAME@vN' (infer them from a dataset version) "
            "and/or suite='expectations.yaml' (or reference=a Profile)."
        )
    from modelyard.data._service import DataService

    if suite is not None:
        s = load_suite(suite)
        if against is not None:
            s.reference = against
    elif against is None and reference is not None:
        s = infer_suite(reference)
    else:
        s = infer_suite(against or "", uri=uri)
    ref_profile: Profile | None = None
    ref_label = s.reference
    if s.reference and reference is None:
        svc = DataService(uri)
        v = svc.resolve(s.reference)
        ref_label = v.ref
        ref_profile = svc.profile(v)
        schema_doc = svc.schema(v)
        if schema_doc is not None:
            s.check_columns_against([c["name"] for c in schema_doc["columns"]], v.ref)
    if reference is not None:
        ref_profile = reference
        ref_label = ref_label or "the given profile"
        s.check_columns_against(list(reference.columns), ref_label)
    batches, label, schema = _batches(data)
    return _run(s, batches, label, schema, ref_profile, ref_label)


def _run(
    s: Suite, batches: Iterator[Any], label: str, schema: Any, ref: Profile | None, ref_label: str | None
) -> ValidationReport:
    import pyarrow as pa
    import pyarrow.compute as pc

    names = list(schema.names)
    present = set(names)
    results: list[CheckResult] = []
    row_checks: dict[tuple[str, str], dict[str, Any]] = {}
    for col, e in s.columns.items():
        if col not in present:
            continue
        if e.min is not None:
            row_checks[(col, "min")] = {"count": 0, "samples": []}
        if e.max is not None:
            row_checks[(col, "max")] = {"count": 0, "samples": []}
        if e.max_null_fraction is not None:
            row_checks[(col, "nulls")] = {"count": 0, "samples": []}
        if e.values is not None:
            row_checks[(col, "values")] = {
                "count": 0,
                "samples": [],
                "set": pa.array([str(v) if not isinstance(v, bool) else v for v in e.values]),
            }
    unique_cols = [c for c, e in s.columns.items() if e.unique and c in present]
    # the auto-threshold distribution checks share one false-alarm budget (Bonferroni)
    auto_checks = sum(
        1
        for c, e in s.columns.items()
        if c in present and e.distribution and e.distribution["threshold"] == "auto"
    )
    unique_chunks: dict[str, list[Any]] = {c: [] for c in unique_cols}
    first_values: dict[str, list[dict[str, Any]]] = {
        c: [] for c, e in s.columns.items() if e.type is not None and c in present
    }
    builder = ProfileBuilder()  # the report carries the batch's full, mergeable profile
    offset = 0
    for batch in batches:
        builder.add(batch)
        for (col, kind), st in row_checks.items():
            arr = batch.column(col)
            e = s.columns[col]
            if kind == "nulls":
                if not arr.null_count:
                    continue
                bad = pc.is_null(arr)
            elif kind == "values":
                if pa.types.is_dictionary(arr.type):  # check the dictionary once, map through the indices
                    dict_bad = pc.invert(pc.is_in(arr.dictionary.cast(pa.string()), value_set=st["set"]))
                    bad = pc.take(dict_bad, arr.indices)
                else:
                    probe = arr if pa.types.is_boolean(arr.type) else arr.cast(pa.string())
                    vs = (
                        st["set"]
                        if not pa.types.is_boolean(arr.type)
                        else pa.array([bool(v) for v in e.values or []])
                    )
                    bad = pc.invert(pc.is_in(probe, value_set=vs))
            else:
                fam = type_family(arr.type)
                if fam not in ("integer", "float"):
                    continue
                bound = e.min if kind == "min" else e.max
                bad = pc.less(arr, bound) if kind == "min" else pc.greater(arr, bound)
                if fam == "float":  # NaN is neither in nor out of range: count it as out
                    bad = pc.or_(bad, pc.is_nan(arr))
            if kind == "values":  # a null is not an unseen value: max_null_fraction judges nulls
                bad = pc.and_(bad, pc.is_valid(arr))
            bad = pc.fill_null(bad, False)
            n_bad = pc.sum(bad).as_py() or 0
            if n_bad:
                st["count"] += n_bad
                if len(st["samples"]) < SAMPLES:
                    idx = pc.indices_nonzero(bad).slice(0, SAMPLES - len(st["samples"]))
                    vals = pc.take(arr, idx).to_pylist()
                    st["samples"].extend(
                        {"row": offset + int(i), "value": v}
                        for i, v in zip(idx.to_pylist(), vals, strict=True)
                    )
        for (
            c,
            vals,
        ) in first_values.items():  # a few values of each column: the samples of a failed type check
            if len(vals) < SAMPLES:
                arr = batch.column(c)
                idx = pc.indices_nonzero(pc.is_valid(arr)).slice(0, SAMPLES - len(vals))
                vals.extend(
                    {"row": offset + int(i), "value": v}
                    for i, v in zip(idx.to_pylist(), pc.take(arr, idx).to_pylist(), strict=True)
                )
        for c in unique_cols:
            col_arr = batch.column(c)
            unique_chunks[c].append(
                col_arr.dictionary_decode() if pa.types.is_dictionary(col_arr.type) else col_arr
            )
        offset += batch.num_rows
    cur = builder.result()
    rows = cur.rows

    # table-level checks
    if s.row_count_min is not None or s.row_count_max is not None:
        ok = (s.row_count_min is None or rows >= s.row_count_min) and (
            s.row_count_max is None or rows <= s.row_count_max
        )
        results.append(
            CheckResult(None, "row_count", ok, rows, {"min": s.row_count_min, "max": s.row_count_max})
        )
    if not s.allow_extra_columns:
        extra = [c for c in names if c not in s.columns]
        results.append(
            CheckResult(
                None,
                "no_extra_columns",
                not extra,
                extra,
                sorted(s.columns),
                "unexpected columns: " + ", ".join(extra) if extra else "",
            )
        )
    for col, e in s.columns.items():
        if col not in present:
            hint = did_you_mean(col, names)
            results.append(
                CheckResult(
                    col,
                    "column_present",
                    not e.required,
                    "missing",
                    "present",
                    f"column {col!r} is not in the data.{hint}"
                    if e.required
                    else "optional column is absent",
                )
            )
            continue
        results.append(CheckResult(col, "column_present", True, "present", "present"))
        cp = cur.columns[col]
        fam = type_family(cp.type)
        if e.type is not None:
            ok = type_matches(e.type, fam)
            results.append(
                CheckResult(
                    col,
                    "type",
                    ok,
                    f"{fam} ({cp.type})",
                    e.type,
                    "" if ok else f"every non-null value ({cp.count:,} rows) is {fam}, not {e.type}",
                    [] if ok else first_values[col],
                    0 if ok else cp.count,
                )
            )
        if e.max_null_fraction is not None:
            nf = cp.null_fraction
            # like "values": the null rows, even when within the tolerated fraction
            nulls = row_checks[(col, "nulls")]
            results.append(
                CheckResult(
                    col,
                    "max_null_fraction",
                    nf <= e.max_null_fraction + 1e-12,
                    round(nf, 6),
                    e.max_null_fraction,
                    f"{cp.nulls:,} of {rows:,} rows are null",
                    nulls["samples"],
                    nulls["count"],
                )
            )
        for kind in ("min", "max"):
            hits = row_checks.get((col, kind))
            if hits is None:
                continue
            bound = e.min if kind == "min" else e.max
            observed = cp.min if kind == "min" else cp.max
            if fam not in ("integer", "float"):
                results.append(
                    CheckResult(col, kind, False, f"{fam} column", bound, "a range needs a numeric column")
                )
                continue
            detail = (
                f"{hits['count']:,} row(s) {'below' if kind == 'min' else 'above'} {bound}"
                if hits["count"]
                else ""
            )
            results.append(
                CheckResult(
                    col, kind, hits["count"] == 0, observed, bound, detail, hits["samples"], hits["count"]
                )
            )
        hits = row_checks.get((col, "values"))
        if hits is not None:
            frac = hits["count"] / cp.count if cp.count else 0.0
            ok = frac <= e.max_unseen_fraction + 1e-12
            unseen = sorted({str(x["value"]) for x in hits["samples"]})
            detail = (
                f"{hits['count']:,} row(s) ({frac:.2%}) outside the allowed values, e.g. {', '.join(unseen)}"
                if hits["count"]
                else ""
            )
            results.append(
                CheckResult(
                    col,
                    "values",
                    ok,
                    round(frac, 6),
                    {"values": e.values, "max_unseen_fraction": e.max_unseen_fraction},
                    detail,
                    hits["samples"],
                    hits["count"],
                )
            )
        if e.unique:
            import pyarrow as pa

            chunked = (
                pa.chunked_array(unique_chunks[col], type=unique_chunks[col][0].type)
                if unique_chunks[col]
                else pa.chunked_array([], pa.null())
            )
            vc = pc.value_counts(chunked.drop_null())
            dup_mask = pc.greater(vc.field(1), 1)
            dups = pc.filter(vc.field(0), dup_mask)
            n_dup_rows = int(pc.sum(pc.filter(vc.field(1), dup_mask)).as_py() or 0)
            samples: list[dict[str, Any]] = []
            if len(dups):
                first = dups.slice(0, SAMPLES)
                mask = pc.is_in(chunked, value_set=first.cast(chunked.type))
                idx = pc.indices_nonzero(pc.fill_null(mask, False)).slice(0, SAMPLES)
                samples = [
                    {"row": int(i), "value": v}
                    for i, v in zip(idx.to_pylist(), pc.take(chunked, idx).to_pylist(), strict=True)
                ]
            results.append(
                CheckResult(
                    col,
                    "unique",
                    len(dups) == 0,
                    f"{len(dups):,} duplicated value(s)",
                    "no duplicates",
                    f"{n_dup_rows:,} rows share {len(dups):,} value(s)" if len(dups) else "",
                    samples,
                    n_dup_rows,
                )
            )
        if e.distribution is not None:
            stat, thr = e.distribution["statistic"], e.distribution["threshold"]
            asked = {"statistic": stat, "threshold": thr}
            if ref is None or col not in ref.columns:
                why = (
                    "no reference profile for this column: give --against NAME@vN or "
                    "'reference:' in the suite"
                )
                results.append(CheckResult(col, "distribution", False, None, asked, why))
            else:
                chk = distribution_check(ref.columns[col], cp, stat, thr, auto_checks)
                if chk is None:
                    results.append(CheckResult(col, "distribution", False, None, asked, "not comparable"))
                    continue
                ok, dist, bound = bool(chk["ok"]), float(chk["value"]), float(chk["threshold"])
                how = (
                    f"auto for {chk['bins']} bins, {chk['rows'][0]:,} vs {chk['rows'][1]:,} rows"
                    if thr == "auto"
                    else "fixed"
                )
                expected = {"statistic": stat, "threshold": round(bound, 6) if thr == "auto" else thr}
                if thr == "auto":
                    expected["auto"] = True
                results.append(
                    CheckResult(
                        col,
                        "distribution",
                        ok,
                        round(dist, 6),
                        expected,
                        f"{stat.upper()} {dist:.4f} {'>' if not ok else '<='} {bound:.4g} ({how})",
                    )
                )
    return ValidationReport(
        suite=s.name,
        reference=ref_label,
        data=label,
        rows=rows,
        results=results,
        profile=cur,
        reference_profile=ref,
    )
