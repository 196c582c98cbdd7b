"""``yard rollout``: start, watch, pause, resume, promote and abort progressive rollouts;
``yard rollback``: the emergency rollback (registered on the root app)."""

from __future__ import annotations

import time
from typing import Any

import typer

from modelyard._shared import format_when
from modelyard.cli._common import fail, print_json

__all__ = ["app", "register", "rollback"]

app = typer.Typer(
    help="Progressive delivery: canary, blue-green, shadow and A/B rollouts.", no_args_is_help=True
)

_SERVER = typer.Option(
    None,
    "--server",
    envvar="YARD_SERVE_URL",
    help="The model server: http://HOST:PORT (admin token from YARD_SERVE_ADMIN_TOKEN), or a Kubernetes "
    "deployment: k8s://NAMESPACE/NAME?prometheus=http://prometheus:9090.",
)


def _when(ms: int | None) -> str:
    return format_when(ms, "%H:%M:%S")


def _svc(say: Any = None) -> Any:
    from modelyard.rollout import RolloutService

    return RolloutService(say=say)


def _say(msg: str) -> None:
    typer.echo(msg)


@app.command("start")
def start(
    model: str = typer.Argument(..., help="The model to roll out, e.g. churn-clf."),
    to: int = typer.Option(..., "--to", help="The candidate version."),
    strategy: str = typer.Option("canary", "--strategy", help="canary | blue-green | shadow | ab."),
    server: str = _SERVER,
    steps: str = typer.Option(
        "5,25,50,100", "--steps", help="Canary: percent of traffic for the candidate per step."
    ),
    interval: str = typer.Option(
        "2m",
        "--interval",
        help="Least time a step runs (500ms, 30s, 2m, 1h); it also waits for --min-requests samples.",
    ),
    max_wait: str = typer.Option(
        "10m",
        "--max-wait",
        help="How long past --interval a step waits for --min-requests samples before it pauses as "
        "inconclusive.",
    ),
    preview_analysis: str = typer.Option(
        None, "--preview-analysis", help="Blue-green: window of the preview step."
    ),
    duration: str = typer.Option(None, "--duration", help="Shadow / A/B: how long the step runs at most."),
    max_error_rate: str = typer.Option("0.01", "--max-error-rate", help="Fraction (0.01) or percent (1%)."),
    max_p99_ms: float = typer.Option(None, "--max-p99-ms", help="p99 latency limit of the candidate (ms)."),
    max_fallback_rate: str = typer.Option(None, "--max-fallback-rate", help="Fraction or percent."),
    max_drift: float = typer.Option(
        None, "--max-drift", help="PSI of candidate vs stable predictions (0.2)."
    ),
    min_agreement: str = typer.Option(
        None, "--min-agreement", help="Shadow: least agreement with the stable version."
    ),
    min_requests: int = typer.Option(
        100, "--min-requests", help="Samples a metric needs before it is judged."
    ),
    shadow_percent: float = typer.Option(100.0, "--percent", help="Shadow: percent of requests mirrored."),
    split: float = typer.Option(50.0, "--split", help="A/B: percent of keys for the candidate."),
    sticky_header: str = typer.Option(
        None, "--sticky-header", help="Header whose value keeps a caller on one version."
    ),
    outcome: str = typer.Option("conversion", "--outcome", help="A/B: outcome name sent to /feedback."),
    outcome_kind: str = typer.Option(
        "binary", "--outcome-kind", help="A/B: binary (z-test) or continuous (Welch)."
    ),
    goal: str = typer.Option("increase", "--goal", help="A/B: increase or decrease the outcome."),
    min_samples: int = typer.Option(1000, "--min-samples", help="A/B: outcomes per arm before deciding."),
    alpha: float = typer.Option(
        0.05, "--alpha", help="A/B: false-positive rate (always valid under peeking)."
    ),
    auto_promote: bool = typer.Option(
        None, "--auto-promote/--no-auto-promote", help="Promote when every step passes."
    ),
    webhook: list[str] = typer.Option(
        None,
        "--webhook",
        help="Slack-compatible webhook as env:NAME or file:PATH, never a URL: the config is stored "
        "(repeatable).",
    ),
    prom_url: str = typer.Option(None, "--prom-url", help="Prometheus server for --prom-query."),
    prom_query: str = typer.Option(
        None, "--prom-query", help="PromQL checked each analysis ($model, $stable, $candidate are filled in)."
    ),
    prom_max: float = typer.Option(None, "--prom-max", help="Upper limit of --prom-query."),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="Return after the first step; `yard rollout run` drives it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rollout as JSON when it stops."),
) -> None:
    """Start a rollout and drive it here, printing each decision (Ctrl+C leaves it to `yard rollout run`)."""
    from modelyard.errors import InvalidArgumentError

    try:
        step_list = [float(s) for s in steps.split(",") if s.strip()]
    except ValueError:
        raise InvalidArgumentError(
            f"--steps must be percentages separated by commas, like 5,25,50,100. Got {steps!r}."
        ) from None
    opts: dict[str, Any] = dict(
        steps=step_list,
        interval_s=interval,
        max_wait_s=max_wait,
        preview_analysis_s=preview_analysis,
        duration_s=duration,
        max_error_rate=max_error_rate,
        max_p99_ms=max_p99_ms,
        max_fallback_rate=max_fallback_rate,
        max_drift=max_drift,
        min_agreement=min_agreement,
        min_requests=min_requests,
        shadow_percent=shadow_percent,
        split=split,
        sticky_header=sticky_header,
        outcome=outcome,
        outcome_kind=outcome_kind,
        goal=goal,
        min_samples=min_samples,
        alpha=alpha,
        auto_promote=auto_promote,
        webhooks=list(webhook or []),
    )
    if prom_query or prom_url:
        if not (prom_query and prom_url and prom_max is not None):
            fail("--prom-query needs --prom-url and --prom-max.")
        opts["prometheus"] = [{"name": "promql", "url": prom_url, "query": prom_query, "max": prom_max}]
    if server is None:
        fail("Give the model server with --server http://HOST:PORT (or set YARD_SERVE_URL).")
    svc = _svc(None if as_json else _say)
    r = svc.start(model, to, target=server, strategy=strategy, **opts)
    if no_wait:
        if as_json:
            print_json(r.to_dict())
        else:
            typer.echo(
                f"Drive it with `yard rollout run {model}`; watch with `yard rollout status {model} --watch`."
            )
        return
    from modelyard.rollout import Controller

    ctl = Controller(target=None, say=None if as_json else _say)
    try:
        out = ctl.run(r.id)[0]
    except KeyboardInterrupt:
        typer.echo(
            f"Stopped watching; rollout {r.id} stays {svc.get(r.id).state.value}. "
            f"Continue with `yard rollout run {model}`.",
            err=True,
        )
        raise typer.Exit(130) from None
    if as_json:
        print_json(out.to_dict())
    if out.state.value == "failed":
        raise typer.Exit(2)


@app.command("run")
def run(
    model: str = typer.Argument(None, help="Drive this model's rollout; all active rollouts when omitted."),
    server: str = _SERVER,
) -> None:
    """The controller: drive rollouts step by step (resumes each at the step it was in)."""
    from modelyard.rollout import Controller

    svc = _svc()
    ctl = Controller(target=server, say=_say)
    if model:
        r = svc.latest(model)
        if r.state.finished:
            fail(f"Rollout {r.id} of {model!r} is {r.state.value}; nothing to drive.")
        ctl.run(r.id)
    else:
        typer.echo("Driving every active rollout; Ctrl+C stops.", err=True)
        ctl.run(None)


_MARKS = {"successful": "✓", "failed": "✗", "inconclusive": "?"}


def _render(r: Any, events: list[Any], results: dict[int, str | None] | None = None) -> str:
    lines = [
        f"Rollout {r.id} of {r.model}: {r.strategy}, version {r.stable_version} → {r.candidate_version}: "
        f"{r.state.value.upper()}"
    ]
    steps = r.steps
    results = results or {}
    for i, s in enumerate(steps):
        if results.get(i) in _MARKS:  # the step's stored result: the last passed step of a promotion too
            mark = _MARKS[results[i]]  # type: ignore[index]
        elif i == r.step_index and not r.state.finished:
            mark = "▶"
        else:
            mark = "✓" if i < r.step_index else " "
        lines.append(f"  {mark} step {i + 1}/{len(steps)} {s.name:<16} traffic {s.traffic}")
    a = r.analysis
    if a:
        lines.append(f"  analysis of step {a['step'] + 1} ({a['elapsed_s']:.1f}s of {a['window_s']:g}s):")
        for c in a["checks"]:
            val = "-" if c["value"] is None else f"{c['value']:.4g}"
            thr = "" if c["threshold"] is None else f" {c['op']} {c['threshold']:g}"
            lines.append(
                f"    {c['metric']:<18} {val:>10}{thr:<10} n={c['samples']:.0f}  {c['status']}"
                + (f"  ({c['detail']})" if c.get("detail") else "")
            )
    if r.reason:
        lines.append(f"  why: {r.reason}")
    lines.append("  events:")
    for e in events[-15:]:
        lines.append(f"    {_when(e.at)} {e.kind:<10} {e.message}")
    return "\n".join(lines)


@app.command("status")
def status(
    model: str = typer.Argument(..., help="The model whose newest rollout to show."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until the rollout finishes."),
    every: float = typer.Option(1.0, "--every", help="Seconds between refreshes with --watch."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Step, weights, live analysis per metric, the decision and why, and the event log."""
    svc = _svc()
    while True:
        r = svc.latest(model)
        events = svc.events(r.id)
        results = svc.step_results(r.id)
        if as_json:
            print_json(
                {
                    **r.to_dict(),
                    "step_results": [results.get(i) for i in range(len(r.steps))],
                    "events": [e.to_dict() for e in events],
                }
            )
        else:
            if watch:
                typer.echo("\x1b[2J\x1b[H", nl=False) if __import__("sys").stdout.isatty() else None
            typer.echo(_render(r, events, results))
        if not watch or r.state.finished:
            return
        time.sleep(every)


@app.command("list")
def list_rollouts(
    model: str = typer.Argument(None, help="Only this model's rollouts."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Rollouts, newest first."""
    rows = _svc().list_rollouts(model)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    for r in rows:
        typer.echo(
            f"{r.id:>4}  {r.model:<20} {r.strategy:<10} {r.stable_version}→{r.candidate_version}  "
            f"{r.state.value:<12} step {r.step_index + 1}/{len(r.steps)}  {_when(r.created_at)}"
        )


def _action(name: str) -> Any:
    def cmd(
        model: str = typer.Argument(..., help="The model whose rollout to act on."),
        reason: str = typer.Option(None, "--reason", help="Why (recorded in the events and the audit log)."),
        server: str = _SERVER,
    ) -> None:
        svc = _svc(_say)
        if name in ("pause", "resume"):
            r = getattr(svc, name)(model, reason=reason)
        else:
            r = getattr(svc, name)(model, reason=reason, target=server)
        typer.echo(f"Rollout {r.id} of {model}: {r.state.value}.")

    cmd.__doc__ = {
        "pause": "Pause a progressing rollout (traffic stays as it is).",
        "resume": "Resume a paused rollout at its step, with a fresh window.",
        "promote": "Promote the candidate now: all traffic and the production alias.",
        "abort": "Abort: all traffic back to the stable version.",
    }[name]
    return cmd


for _name in ("pause", "resume", "promote", "abort"):
    app.command(_name)(_action(_name))


def rollback(
    model: str = typer.Argument(..., help="The model to roll back."),
    server: str = _SERVER,
    reason: str = typer.Option(None, "--reason", help="Why (recorded in the audit log)."),
) -> None:
    """Emergency: production alias and traffic back to the previous version, now (no controller needed)."""
    from modelyard.rollout import rollback as do

    out = do(model, target=server, reason=reason)
    moved = "production alias moved back; " if out["alias_moved"] else ""
    where = f"rollout {out['rollout']}: " if out["rollout"] else ""
    typer.echo(f"{where}{moved}{model} version {out['serving']} serves all traffic.")


def register(root: typer.Typer) -> None:
    """Add ``yard rollback`` to the root app."""
    root.command("rollback")(rollback)
