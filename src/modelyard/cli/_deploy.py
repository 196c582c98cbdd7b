"""``yard deploy``: manifests that run a model deployment on a cluster (``yard deploy k8s``)."""

from __future__ import annotations

import typer

from modelyard.cli._common import fail, print_json

__all__ = ["app", "register"]

app = typer.Typer(help="Deploy a model beyond this machine: Kubernetes manifests.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the ``deploy`` group to ``root`` (before ``_monitor.register``, which adds ``grafana`` to it)."""
    root.add_typer(app, name="deploy")


def _default_name(endpoint: str) -> str:
    import re

    name = re.sub(r"[^a-z0-9-]+", "-", endpoint.lower()).strip("-")[:52].strip("-")
    return name or "model"


@app.command("k8s")
def k8s(
    ref: str = typer.Argument(None, help="Model to serve: 'name@alias', 'name/3' or 'name' (latest)."),
    image: str = typer.Option(
        ..., "--image", help="Image with the server (and model), e.g. from `yard build`."
    ),
    out: str = typer.Option(..., "--out", "-o", help="Folder for base/ and overlays/{dev,prod}/."),
    spec: str = typer.Option(None, "--spec", help="A deployment spec (YAML/JSON) instead of MODEL_REF."),
    name: str = typer.Option(None, "--name", help="Name of the objects (default: the endpoint's name)."),
    namespace: str = typer.Option(None, "--namespace", "-n", help="Namespace (default: the one applied to)."),
    replicas: int = typer.Option(2, "--replicas", help="Replicas, and the autoscaler's minimum."),
    max_replicas: int = typer.Option(10, "--max-replicas", help="The autoscaler's maximum."),
    cpu: str = typer.Option(
        "2", "--cpu", help="CPU limit; `--workers auto` starts one worker per CPU of it."
    ),
    cpu_request: str = typer.Option("500m", "--cpu-request", help="CPU request."),
    memory: str = typer.Option("1Gi", "--memory", help="Memory limit (and request unless --memory-request)."),
    memory_request: str = typer.Option(
        None, "--memory-request", help="Memory request (default: half the limit)."
    ),
    target_in_flight: int = typer.Option(
        8, "--target-in-flight", help="Autoscale to keep this many requests in flight per pod."
    ),
    store_secret: str = typer.Option(
        None,
        "--store-secret",
        help="Secret whose key 'uri' holds YARD_URI (the store the models load from); "
        "default: the store baked into the image.",
    ),
    image_pull_secret: str = typer.Option(None, "--image-pull-secret", help="Secret to pull the image with."),
    service_monitor: bool = typer.Option(
        True,
        "--service-monitor/--no-service-monitor",
        help="Write a ServiceMonitor (needs the Prometheus Operator's CRD in the cluster).",
    ),
    rollout_controller: str = typer.Option(
        None,
        "--rollout-controller",
        help="Let this ServiceAccount drive rollouts of the deployment (Role + RoleBinding: get/patch "
        "its spec ConfigMap, list pods, get pods/proxy): NAME (created in the namespace) or "
        "NAMESPACE/NAME (an account elsewhere, e.g. the team server's).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the files written as JSON."),
) -> None:
    """Write a kustomize base and dev/prod overlays that run MODEL_REF (or --spec) on Kubernetes.

    The spec goes into a ConfigMap the server watches: editing it (as a Kubernetes rollout does)
    changes traffic without restarting pods. Apply with `kubectl apply -k OUT/overlays/prod`.
    """
    from modelyard.deploy import K8sOptions, write_kustomize
    from modelyard.errors import InvalidArgumentError
    from modelyard.serving import load_spec, spec_from_flags

    if (ref is None) == (spec is None):
        fail(
            "Give a model reference (yard deploy k8s churn-clf@production ...) "
            "or --spec serve.yaml, not both."
        )
    spec_obj = spec_from_flags(ref) if ref is not None else load_spec(spec)
    if memory_request is None:
        memory_request = _half(memory)
    try:
        opts = K8sOptions(
            name=name or _default_name(spec_obj.endpoint_name),
            image=image,
            namespace=namespace,
            replicas=replicas,
            max_replicas=max_replicas,
            cpu_request=cpu_request,
            cpu_limit=cpu,
            memory_request=memory_request,
            memory_limit=memory,
            target_in_flight=target_in_flight,
            store_secret=store_secret,
            image_pull_secret=image_pull_secret,
            service_monitor=service_monitor,
            rollout_controller=rollout_controller,
        )
    except InvalidArgumentError as exc:  # name the flag the user typed, not the Python parameter
        text = str(exc)
        for param, flag in _FLAGS.items():
            text = text.replace(f"The {param!r} parameter of", f"The '{flag}' option of")
        raise InvalidArgumentError(text) from None
    written = write_kustomize(spec_obj, opts, out, ref or spec)
    if as_json:
        print_json({"name": opts.name, "workers": opts.workers, "files": [str(p) for p in written]})
        return
    typer.echo(f"Wrote {len(written)} files under {out}/ for {opts.name!r} ({opts.workers} workers per pod):")
    for p in written:
        typer.echo(f"  {p}")
    typer.echo(f"Apply: kubectl apply -k {out}/overlays/dev   (or overlays/prod)")


_FLAGS = {
    "name": "--name",
    "namespace": "--namespace",
    "image": "--image",
    "replicas": "--replicas",
    "max_replicas": "--max-replicas",
    "cpu_request": "--cpu-request",
    "cpu_limit": "--cpu",
    "memory_request": "--memory-request",
    "memory_limit": "--memory",
    "target_in_flight": "--target-in-flight",
    "store_secret": "--store-secret",
    "image_pull_secret": "--image-pull-secret",
    "rollout_controller": "--rollout-controller",
}


def _half(quantity: str) -> str:
    """Half of a memory quantity (``1Gi`` → ``512Mi``), for the default request."""
    import re

    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", quantity)
    if not m:
        return quantity
    value, unit = int(m.group(1)), m.group(2) or ""
    units = ["", "Ki", "Mi", "Gi", "Ti"]
    if value % 2 == 0 or unit in ("", "Ki"):
        return f"{max(1, value // 2)}{unit}"
    return f"{value * 1024 // 2}{units[units.index(unit) - 1]}"
