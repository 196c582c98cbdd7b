"""``yard build``: an OCI image of the model server for a registered model or a deployment spec."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("build")(build)


def build(
    ref: str = typer.Argument(
        None, help="Model to bake: 'name@alias' (e.g. churn-clf@production) or 'name/7'."
    ),
    tag: str = typer.Option(None, "--tag", "-t", help="Image name, e.g. registry.example.com/churn:7."),
    spec: str = typer.Option(
        None, "--spec", help="Deployment spec (YAML/JSON) whose models the image bakes."
    ),
    dockerfile_only: str = typer.Option(
        None,
        "--dockerfile-only",
        help="Write the Dockerfile and build context to this new folder; build nothing.",
    ),
    base_image: str = typer.Option(
        None, "--base-image", help="Base image (default: the official python:X.Y-slim of this Python)."
    ),
    builder: str = typer.Option("auto", "--builder", help="auto, docker, podman or buildah."),
    platform: str = typer.Option(
        None,
        "--platform",
        help="Target platform, e.g. linux/arm64 or linux/amd64 (default: this machine's); passed to "
        "the builder, and the wheels are fetched for it. Another architecture needs qemu emulation.",
    ),
    no_bake: bool = typer.Option(
        False,
        "--no-bake",
        help="Copy no model in: the server loads the spec's models from YARD_URI at start.",
    ),
    allow_pickle: bool = typer.Option(
        False,
        "--allow-pickle",
        help="Allow pyfunc (pickled) models: they run code from the store when loaded.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not show the builder's output."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Build a container image: model server + model packages (digest-verified) + pinned requirements.

    Multi-stage, non-root, read-only root filesystem ready (writes go to /tmp), HEALTHCHECK on
    /health/ready, labelled with the model versions, manifest digests and the modelyard version.
    Uses docker, podman or buildah, whichever is here (--builder picks one).
    """
    import sys

    from modelyard.cli._common import print_json
    from modelyard.deploy._build import build_image

    def log(msg: str) -> None:
        typer.echo(msg, err=True)

    result = build_image(
        ref,
        tag=tag,
        spec=spec,
        base_image=base_image,
        builder=builder,
        bake=not no_bake,
        allow_pickle=allow_pickle,
        dockerfile_only=dockerfile_only,
        platform=platform,
        log=None if as_json else log,
        stream=None if quiet or as_json else (lambda line: print(line, file=sys.stderr, flush=True)),
    )
    if as_json:
        data = result.to_dict()
        if dockerfile_only is None:
            data["context"] = data["dockerfile"] = None  # a temporary folder, removed after the build
        print_json(data)
        return
    models = ", ".join(
        f"{m.label} ({', '.join(m.refs)}; manifest {m.manifest_digest[:12]}…)" for m in result.models
    )
    what = models if result.baked else "no model baked (loaded from YARD_URI at start)"
    if dockerfile_only is not None:
        typer.echo(f"Wrote {result.dockerfile} and its build context in {result.context}: {what}.")
        typer.echo(
            f"Build it: cd {result.context} && docker build -t TAG .   "
            "(or: podman build --format docker -t TAG .)"
        )
        return
    size = f", {result.size_bytes / 1e6:.0f} MB" if result.size_bytes else ""
    on = f" for {result.platform}" if result.platform else ""
    typer.echo(f"Built {result.tag}{on} with {result.builder} in {result.seconds:.1f} s{size}: {what}.")
    runner = result.builder if result.builder != "buildah" else "podman"
    typer.echo(f"Run it: {runner} run --read-only -p 8080:8080 {result.tag}")
