"""``yard monitor``: drift reports, scheduled checks with alerts, feedback labels; ``yard deploy grafana``."""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["app", "register"]

app = typer.Typer(
    help="Monitor served models: drift, performance with delayed labels, alerts.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="monitor")
    deploy = next((g.typer_instance for g in root.registered_groups if g.name == "deploy"), None)
    if deploy is None:
        deploy = typer.Typer(help="Deployment artifacts for a model.", no_args_is_help=True)
        root.add_typer(deploy, name="deploy")
    deploy.command("grafana")(grafana)


def _print_report(result: Any, as_json: bool, html: str | None) -> None:
    from modelyard.cli._common import console, esc, print_json

    rep = result.report
    if html:
        rep.to_html(html)
    if as_json:
        print_json(result.to_dict())
        return
    con = console()
    con.print(
        f"[bold]{esc(result.model_name)}[/]: {result.rows:,} logged predictions in the window, reference "
        f"{esc((result.reference or '-').split('#')[0])}"
    )
    rep.print_table(con)
    perf = {
        k: v
        for k, v in result.stats.items()
        if k in ("accuracy", "f1", "auc", "mae", "rmse") and v is not None
    }
    if perf:
        parts = []
        for k, v in perf.items():
            base = result.model_metrics.get(k)
            parts.append(f"{k} {v:.4f}" + (f" (model version: {base:.4f})" if base is not None else ""))
        con.print(
            f"performance on {int(result.stats.get('labelled_rows') or 0):,} labelled requests: "
            + ", ".join(parts)
        )
    if html:
        con.print(f"HTML report written to {html}")


@app.command("report")
def report(
    model: str = typer.Argument(..., help="Registered model name (as served)."),
    window: str = typer.Option("1h", "--window", "-w", help="Traffic window: 30m, 1h, 1d..."),
    reference: str = typer.Option(
        None,
        "--reference",
        "-r",
        help="Dataset ref (churn-train@v3) or Parquet/CSV file; default: training data by lineage.",
    ),
    html: str = typer.Option(None, "--html", help="Also write a self-contained HTML report here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Drift (and performance, with labels) of the last window of a model's prediction log."""
    from modelyard.monitoring._service import Monitor

    result = Monitor(model).report(window, reference=reference)
    _print_report(result, as_json, html)


@app.command("drift")
def drift_files(
    reference: str = typer.Argument(..., help="Reference data: Parquet or CSV file."),
    current: str = typer.Argument(..., help="Current data: Parquet or CSV file."),
    html: str = typer.Option(None, "--html", help="Also write a self-contained HTML report here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    drift_share: float = typer.Option(
        0.5, "--drift-share", help="Share of drifted columns that makes dataset drift."
    ),
) -> None:
    """Drift of one data file against another (no store needed)."""
    from pathlib import Path

    import pandas as pd

    from modelyard.cli._common import console, print_json
    from modelyard.errors import InvalidArgumentError
    from modelyard.monitoring import drift

    frames = []
    for p in (reference, current):
        path = Path(p)
        if not path.is_file():
            raise InvalidArgumentError(f"The file {p!r} does not exist.")
        frames.append(pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path))
    rep = drift(frames[0], frames[1], drift_share=drift_share)
    if html:
        rep.to_html(html)
    if as_json:
        print_json(rep.to_dict(histograms=False))
    else:
        rep.print_table(console())
    if rep.dataset_drift:
        raise typer.Exit(3)


@app.command("run")
def run(
    model: str = typer.Argument(..., help="Registered model name (as served)."),
    every: str = typer.Option("5m", "--every", help="How often to evaluate: 30s, 5m, 1h..."),
    window: str = typer.Option(
        "1h", "--window", "-w", help="Default traffic window (rules may set their own)."
    ),
    rules: str = typer.Option(
        None, "--rules", help="Alert rules YAML (stored; later runs reuse the stored rules)."
    ),
    webhook: str = typer.Option(
        None,
        "--webhook",
        envvar="YARD_ALERT_WEBHOOK",
        help="Slack-compatible webhook: env:NAME, file:PATH or a URL (logged as its host only).",
    ),
    reference: str = typer.Option(
        None, "--reference", "-r", help="Dataset ref or file; default: training data by lineage."
    ),
    once: bool = typer.Option(False, "--once", help="Evaluate once and exit (cron, tests)."),
    metrics_port: int = typer.Option(
        None, "--metrics-port", help="Serve Prometheus gauges on this port (/metrics)."
    ),
    metrics_addr: str = typer.Option("127.0.0.1", "--metrics-addr", help="Interface for --metrics-port."),
) -> None:
    """Evaluate drift, performance and alert rules on a schedule; Ctrl-C stops."""
    import logging
    import sys

    from modelyard.cli._common import console
    from modelyard.monitoring._api import run as run_monitor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if metrics_port is not None:
        typer.echo(f"Prometheus metrics on http://{metrics_addr}:{metrics_port}/metrics", err=True)
    con = console()

    def tick(result: Any, events: list[Any]) -> None:
        rep = result.report
        con.print(
            f"{result.model_name}: {result.rows:,} rows, "
            f"{len(rep.drifted_columns)}/{len(rep.evaluated_columns)} "
            f"columns drifted, {len(events)} alert event(s)"
        )

    run_monitor(
        model,
        every=every,
        window=window,
        rules=rules,
        webhook=webhook,
        reference=reference,
        once=once,
        metrics_port=metrics_port,
        metrics_addr=metrics_addr,
        on_tick=tick,
    )


@app.command("feedback")
def feedback(
    path: str = typer.Argument(..., help="Labels: Parquet or CSV file."),
    id_column: str = typer.Option(
        "request_id", "--id-column", help="Column with the request id the server returned."
    ),
    label_column: str = typer.Option("label", "--label-column", help="Column with the true label / value."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Store delayed labels; `monitor report` then joins them to logged predictions by request id."""
    from modelyard.cli._common import print_json
    from modelyard.monitoring._service import ingest_feedback

    n = ingest_feedback(path, id_column=id_column, label_column=label_column)
    if as_json:
        print_json({"labels": n})
    else:
        typer.echo(f"stored {n:,} labels")


@app.command("alerts")
def alerts(
    model: str = typer.Argument(..., help="Registered model name."),
    limit: int = typer.Option(20, "--limit", help="Recent firings to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A model's alert rules (and which fire) and its recent firings."""
    import datetime as dt

    from rich.table import Table

    from modelyard.cli._common import console, esc, print_json
    from modelyard.monitoring._api import alerts as get_alerts

    data = get_alerts(model, limit=limit)
    if as_json:
        print_json(data)
        return
    con = console()
    t = Table(title=f"alert rules of {esc(model)}")
    for c in ("rule", "metric", "column", "condition", "severity", "state"):
        t.add_column(c)
    for r in data["rules"]:
        t.add_row(
            esc(r["name"]),
            r["metric"],
            esc(r["column"] or "-"),
            esc(r["condition"]),
            r["severity"],
            "[bold red]FIRING[/]" if r["firing"] else "ok",
        )
    con.print(
        t if data["rules"] else f"no alert rules for {model} (yard monitor run {model} --rules alerts.yml)",
        markup=bool(data["rules"]),
    )
    f = Table(title="recent firings")
    for c in ("fired (UTC)", "rule", "metric", "severity", "value", "threshold", "resolved", "delivered"):
        f.add_column(c)

    def ts(ms: int | None) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"

    for row in data["firings"]:
        f.add_row(
            ts(row["fired_at"]),
            esc(row["rule_name"]),
            esc(row["metric"]),
            row["severity"],
            "-" if row["value"] is None else f"{row['value']:.4g}",
            f"{row['threshold']:g}",
            ts(row["resolved_at"]),
            "yes" if row["delivered"] else esc(f"no: {row['delivery_error'] or ''}"),
        )
    con.print(f if data["firings"] else "no firings yet")


def grafana(
    model: str = typer.Argument(..., help="Model name (the 'model' label of the metrics)."),
) -> None:
    """Print a Grafana dashboard (JSON) over the server's and the monitor's Prometheus metrics."""
    import json

    from modelyard.monitoring._grafana import grafana_dashboard

    typer.echo(json.dumps(grafana_dashboard(model), indent=2))
