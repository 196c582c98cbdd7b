"""``yard serve``: run the model server for a registered model or a deployment spec."""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ref: str = typer.Argument(None, help="Model to serve: 'name@alias', 'name/3' or 'name' (latest)."),
    port: int = typer.Option(8080, "--port", "-p", help="TCP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for all)."),
    workers: str = typer.Option(
        "1", "--workers", "-w", help="Worker processes: a number or 'auto' (CPUs the container may use)."
    ),
    fallback: str = typer.Option(
        None, "--fallback", help="Fallback: a model ('name/2') or a constant ('const:0')."
    ),
    spec: str = typer.Option(
        None, "--spec", help="Deployment spec (YAML/JSON); watched for changes while serving."
    ),
    timeout_ms: float = typer.Option(
        None, "--timeout-ms", help="Per-request timeout before the fallback answers."
    ),
    max_batch_size: int = typer.Option(None, "--max-batch-size", help="Rows per predict call at most."),
    max_latency_ms: float = typer.Option(
        None, "--max-latency-ms", help="Longest a request waits for a batch to fill."
    ),
    no_batching: bool = typer.Option(False, "--no-batching", help="Predict each request on its own."),
    sample_rate: float = typer.Option(
        None, "--sample-rate", help="Share of requests written to the prediction log."
    ),
    allow_pickle: bool = typer.Option(
        False, "--allow-pickle", help="Load pyfunc (pickled) models: runs code from the store."
    ),
    uri: str = typer.Option(
        None,
        "--uri",
        help="Store to load models from: a folder, a database URL or a modelyard server "
        "(http(s)://...; token from YARD_TOKEN or yard login). Default: YARD_URI.",
    ),
) -> None:
    """Serve a model over HTTP: our JSON API, MLflow /invocations, V2 inference protocol, /metrics.

    Set YARD_SERVE_ADMIN_TOKEN to enable PUT /admin/spec (swap the spec while serving).
    """
    import os

    from modelyard.cli._common import fail
    from modelyard.serving import serve as run
    from modelyard.serving import spec_from_flags
    from modelyard.serving._server import resolve_workers

    if (ref is None) == (spec is None):
        fail("Give a model reference (yard serve churn-clf@production) or --spec serve.yaml, not both.")
    if spec is not None and (
        fallback or timeout_ms or max_batch_size or max_latency_ms or no_batching or sample_rate
    ):
        fail("--spec already declares fallback, timeout, batching and sampling; edit the spec file instead.")
    if spec is not None and allow_pickle:
        fail(
            "--spec declares allow_pickle; set 'allow_pickle: true' in the spec file instead of "
            "--allow-pickle."
        )
    n = resolve_workers(workers)
    spec_obj = None
    if ref is not None:
        spec_obj = spec_from_flags(
            ref,
            fallback=fallback,
            timeout_ms=timeout_ms,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            sample_rate=sample_rate,
            batching=not no_batching,
            allow_pickle=allow_pickle,
        )

    def ready(server: Any, n_workers: int) -> None:
        dep = server.deployment
        models = ", ".join(f"{rt.name}/{rt.version}" for rt in dep.runtimes.values())
        typer.echo(
            f"Serving {models} as {dep.endpoint!r} on http://{host}:{port} "
            f"({n_workers} worker{'s' if n_workers != 1 else ''}); "
            f"POST /v1/models/{dep.endpoint}/predict, /invocations, /v2/models/{dep.endpoint}/infer; "
            "GET /health/ready, /metrics. Ctrl+C stops.",
            err=True,
        )

    run(
        spec_obj,
        host=host,
        port=port,
        workers=n,
        uri=uri or os.environ.get("YARD_URI") or None,
        spec_path=spec,
        on_ready=ready,
    )
