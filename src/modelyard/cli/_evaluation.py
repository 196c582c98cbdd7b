"""``yard evaluate``, ``yard gate``, ``yard policy``, ``yard evaluations`` and ``yard ci``."""

from __future__ import annotations

from pathlib import Path

import typer

from modelyard._shared import format_when
from modelyard.cli._common import console, esc, print_json

__all__ = ["register"]

policy_app = typer.Typer(
    help="Gate policies attached to models: they guard protected aliases.", no_args_is_help=True
)
evaluations_app = typer.Typer(help="Stored evaluations of model versions.", no_args_is_help=True)
ci_app = typer.Typer(
    help="Write CI pipeline files that train, validate, gate and promote.", no_args_is_help=True
)


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def evaluate_cmd(
    ref: str = typer.Argument(..., help="Model: churn-clf/8, churn-clf@production, churn-clf@latest."),
    data: str = typer.Option(
        ..., "--data", "-d", help="Dataset version (churn-test@v2) or a file (csv, parquet, json)."
    ),
    label: str = typer.Option(
        None, "--label", "-l", help="Label column (default: a column named label/target/y/class)."
    ),
    slices: str = typer.Option(
        None, "--slices", "-s", help="Columns to slice by, e.g. plan,region or tenure:4 (quantile bins)."
    ),
    metrics: str = typer.Option(
        None, "--metrics", "-m", help="Metrics to compute, e.g. roc_auc,f1 (default: by task)."
    ),
    task: str = typer.Option(None, "--task", help="binary, multiclass or regression (default: inferred)."),
    no_log: bool = typer.Option(False, "--no-log", help="Do not store the evaluation."),
    allow_pickle: bool = typer.Option(
        False,
        "--allow-pickle",
        help="Load a pyfunc (cloudpickle) version: this runs code from the store; only if you trust who "
        "can write to it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Evaluate a model on labelled data, overall and per slice; the record is linked to the model version."""
    from modelyard.evaluation import evaluate, evaluation_table

    ev = evaluate(
        ref,
        data,
        label=label,
        slices=_csv(slices),
        metrics=_csv(metrics),
        task=task,
        log=not no_log,
        allow_pickle=allow_pickle,
    )
    if as_json:
        print_json(ev.to_dict())
        return
    c = console()
    for table in evaluation_table(ev):
        c.print(table)
    if ev.id:
        c.print(f"[dim]stored as evaluation {ev.id[:12]}; see yard evaluations list {esc(ev.model)}[/]")


def gate_cmd(
    ref: str = typer.Argument(..., help="Model: churn-clf/8, churn-clf@candidate, churn-clf@latest."),
    policy: Path = typer.Option(..., "--policy", "-p", help="Gate policy YAML file."),
    data: str = typer.Option(
        None, "--data", "-d", help="Evaluation data (overrides the policy's data.dataset)."
    ),
    junit: Path = typer.Option(
        None, "--junit", help="Write a JUnit XML report here (each gate a test case)."
    ),
    promote: str = typer.Option(
        None, "--promote", help="When every gate passes, move this alias to the model version."
    ),
    no_log: bool = typer.Option(False, "--no-log", help="Do not store the evaluation and the gate check."),
    allow_pickle: bool = typer.Option(
        False,
        "--allow-pickle",
        help="Load a pyfunc (cloudpickle) version: this runs code from the store; only if you trust who "
        "can write to it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Run every gate of a policy on a model; exit 1 when a gate fails."""
    from modelyard.evaluation import gate_table, load_policy, run_gates, write_junit

    pol = load_policy(policy)
    mv = None
    if promote:
        from modelyard.registry import get_model_version

        mv = get_model_version(ref)  # pin the version: @latest may move while the gates run
        ref = mv.ref
    report = run_gates(ref, pol, data=data, log=not no_log, allow_pickle=allow_pickle)
    if junit is not None:
        write_junit(report, junit)
    if as_json:
        print_json(report.to_dict())
    else:
        c = console()
        c.print(gate_table(report))
        style = "green" if report.passed else "bold red"
        c.print(f"[{style}]{esc(report.summary())}[/]" + (f"  (JUnit: {esc(junit)})" if junit else ""))
    if not report.passed:
        raise typer.Exit(1)
    if promote and mv is not None:
        from modelyard.registry import set_alias

        set_alias(
            mv.name,
            promote,
            mv.version,
            reason=f"passed the gates of {policy} (check {report.check_id or '-'})",
        )
        typer.echo(f"Promoted {mv.name}/{mv.version} to @{promote}.", err=as_json)


@policy_app.command("attach")
def policy_attach(
    name: str = typer.Argument(..., help="Registered model name."),
    file: Path = typer.Argument(..., help="Gate policy YAML file."),
) -> None:
    """Attach a gate policy to a model: moving its protected aliases then runs the gates first."""
    from modelyard.evaluation import attach_policy

    pol = attach_policy(name, file)
    typer.echo(f"Attached {file} to {name}: aliases {', '.join(pol.protected)} now need its gates to move.")


@policy_app.command("detach")
def policy_detach(name: str = typer.Argument(..., help="Registered model name.")) -> None:
    """Remove a model's gate policy (its aliases are then unguarded)."""
    from modelyard.evaluation import detach_policy

    if detach_policy(name):
        typer.echo(f"Detached the gate policy of {name}.")
    else:
        typer.echo(f"{name} had no gate policy attached.")


@policy_app.command("show")
def policy_show(
    name: str = typer.Argument(..., help="Registered model name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Print the gate policy attached to a model."""
    from modelyard.evaluation import attached_policy

    pol = attached_policy(name)
    if as_json:
        print_json(
            None
            if pol is None
            else {
                "source": pol.source,
                "protected": pol.protected,
                "policy": pol.model_dump(mode="json", exclude_none=True),
                "text": pol.text,
            }
        )
        return
    if pol is None:
        typer.echo(
            f"{name} has no gate policy attached. Attach one with: yard policy attach {name} gates.yaml"
        )
        return
    typer.echo(f"# {pol.source}; protects: {', '.join(pol.protected)}")
    typer.echo(pol.text.rstrip())


@policy_app.command("check")
def policy_check(file: Path = typer.Argument(..., help="Gate policy YAML file.")) -> None:
    """Check a gate policy file without running it (errors name the line)."""
    from modelyard.evaluation import load_policy

    pol = load_policy(file)
    gates = [k for k in ("metrics", "champion", "slices", "latency", "behavior") if getattr(pol, k)]
    typer.echo(f"{file}: valid; gates: {', '.join(gates) or 'none'}; protects: {', '.join(pol.protected)}")


_when = format_when


@evaluations_app.command("list")
def evaluations_list(
    ref: str = typer.Argument(..., help="Model name (churn-clf) or version (churn-clf/8)."),
    limit: int = typer.Option(20, "--limit", "-n", help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List a model's stored evaluations, newest first."""
    from rich.table import Table

    from modelyard.evaluation import list_evaluations

    evs = list_evaluations(ref, limit=limit)
    if as_json:
        print_json([e.to_dict() for e in evs])
        return
    if not evs:
        typer.echo(f"No evaluations of {ref}. Run: yard evaluate {ref} --data DATA")
        return
    keys: list[str] = []
    for e in evs:
        keys += [k for k in e.metrics if k not in keys]
    keys = keys[:6]
    t = Table(box=None, header_style="bold")
    for col in ("id", "model", "data", "rows", "when"):
        t.add_column(col, no_wrap=True)
    for k in keys:
        t.add_column(esc(k), justify="right")
    for e in evs:
        vals = [f"{e.metrics[k]:.4g}" if k in e.metrics else "" for k in keys]
        t.add_row(
            e.id[:12] if e.id else "-",
            esc(e.model or "-"),
            esc(e.data),
            str(e.n_rows),
            _when(e.created_at),
            *vals,
        )
    console().print(t)


@evaluations_app.command("show")
def evaluations_show(
    evaluation_id: str = typer.Argument(..., help="Evaluation id (or a prefix of 6+ characters)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show one stored evaluation with its slices."""
    from modelyard.evaluation import evaluation_table, get_evaluation

    ev = get_evaluation(evaluation_id)
    if as_json:
        print_json(ev.to_dict())
        return
    c = console()
    for table in evaluation_table(ev):
        c.print(table)


@ci_app.command("init")
def ci_init(
    system: str = typer.Argument(..., help="github, gitlab or jenkins."),
    model: str = typer.Option("churn-clf", "--model", help="Registered model name the pipeline trains."),
    policy: str = typer.Option("gates.yaml", "--policy", help="Gate policy file in the repository."),
    data: str = typer.Option(None, "--data", help="Evaluation data (default: the policy's data.dataset)."),
    train: str = typer.Option(
        "python train.py", "--train", help="Command that trains and registers a new version."
    ),
    data_path: str = typer.Option("data", "--data-path", help="File or folder the validation step checks."),
    suite: str = typer.Option(
        "expectations.yaml", "--suite", help="Expectation suite the validation step uses."
    ),
    alias: str = typer.Option("production", "--alias", help="Alias the main branch promotes to."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Where to write (default: the system's usual path)."
    ),
    overwrite: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a pipeline file for GitHub Actions, GitLab CI or Jenkins: install, train, gate, promote on
    main."""
    from modelyard.evaluation._ci import write_ci

    path = write_ci(
        system,
        model=model,
        policy=policy,
        data=data,
        train=train,
        alias=alias,
        data_path=data_path,
        suite=suite,
        output=output,
        overwrite=overwrite,
    )
    typer.echo(f"Wrote {path}. It gates {model}@latest with {policy} and promotes it to @{alias} on main.")


def register(app: typer.Typer) -> None:
    """Add the evaluation commands to the ``yard`` app."""
    app.command("evaluate")(evaluate_cmd)
    app.command("gate")(gate_cmd)
    app.add_typer(policy_app, name="policy")
    app.add_typer(evaluations_app, name="evaluations")
    app.add_typer(ci_app, name="ci")
