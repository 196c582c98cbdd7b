"""``yard build``: an OCI image of the model server with the models, their pinned requirements and
modelyard, built with whichever builder is here (docker, podman or buildah).

``prepare_context`` writes a build context anyone can read and build by hand::

    Dockerfile          two stages (see ``_dockerfile``), labelled with the models and digests
    requirements.txt    pinned: this machine's versions of modelyard's requirements, overridden by
                        the versions each model recorded when it was saved
    wheels/             every requirement fetched by pip on this machine (from its index or
                        mirror) and a wheel of the running modelyard: the build needs no network
    model/              yard-image.json, serve.yaml and blobs/ (the packages, named by digest)

``build_image`` then runs the builder on it. References in the spec resolve at build time: the
image serves ``churn-clf/7`` under ``churn-clf@production`` even after the alias moves (an image
is immutable); with ``bake=False`` no package is copied and the server resolves the references
against ``YARD_URI`` when it starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from modelyard._version import __version__
from modelyard.deploy._builder import (
    BUILDERS,
    ImageBuildError,
    _build_command,
    _inspect,
    _run_builder,
    find_builder,
)
from modelyard.deploy._dockerfile import DockerfileFacts, render_dockerfile
from modelyard.deploy._image import INDEX_FILE, SPEC_FILE, BakedModel, ImageIndex
from modelyard.deploy._platform import Platform, check_platform, emulation_missing, native_platform
from modelyard.errors import InvalidArgumentError, invalid_param

__all__ = [
    "BUILDERS",
    "BuildResult",
    "ImageBuildError",
    "Platform",
    "build_image",
    "check_platform",
    "check_tag",
    "default_base_image",
    "find_builder",
    "image_labels",
    "native_platform",
    "pinned_requirements",
    "prepare_context",
]

LABEL_PREFIX = "io.modelyard"


def default_base_image() -> str:
    """The official slim Python image of the running minor version."""
    return f"docker.io/library/python:{sys.version_info[0]}.{sys.version_info[1]}-slim"


# -- the tag ----------------------------------------------------------------------------------------
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?$"
)


def check_tag(tag: str) -> str:
    """``tag`` if it is a valid image reference (``[registry[:port]/]path[:tag]``), else a clear error."""
    if not isinstance(tag, str) or not tag.strip():
        raise invalid_param("tag", "yard build", "an image name like 'registry.example.com/churn:7'", tag)
    text = tag.strip()
    m = _REFERENCE.match(text)
    if m is None or len(m.group("path")) > 255:
        why = " Repository names are lowercase." if text.split(":")[0] != text.split(":")[0].lower() else ""
        raise InvalidArgumentError(
            f"The 'tag' parameter of yard build must be an image name like 'registry.example.com/churn:7' "
            f"(lowercase path of letters, digits, '.', '_', '-', then an optional ':tag' of up to 128 "
            f"letters, digits, '_', '.', '-'). Got {tag!r} instead.{why}"
        )
    return text


# -- which models -----------------------------------------------------------------------------------
def _spec_refs(spec: Any) -> list[tuple[str, str]]:
    """(where in the spec, reference) for every model the spec loads."""
    out = [(f"models.{slot}", s.ref) for slot, s in spec.models.items()]
    if spec.fallback is not None and spec.fallback.model:
        out.append(("fallback.model", spec.fallback.model))
    return out


def _resolve(spec: Any, uri: str | None) -> list[tuple[Any, list[str]]]:
    """Each distinct model version the spec names, with the references that resolve to it."""
    from modelyard._workspace import get_workspace
    from modelyard.registry import RegistryService

    svc = RegistryService(get_workspace(uri))
    found: dict[tuple[str, int], tuple[Any, list[str]]] = {}
    for _where, ref in _spec_refs(spec):
        mv = svc.get_version(ref)  # NotFoundError with did-you-mean for an unknown model or alias
        entry = found.setdefault((mv.name, mv.version), (mv, []))
        if ref not in entry[1]:
            entry[1].append(ref)
    return list(found.values())


# -- pinned requirements ----------------------------------------------------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(name: str) -> str | None:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


def _closure(root: str, extras: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of ``root``'s requirements and theirs, markers evaluated for this Python."""
    from packaging.requirements import InvalidRequirement, Requirement

    pins: dict[str, str] = {}
    todo: list[tuple[str, tuple[str, ...]]] = [(root, extras)]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, want = todo.pop()
        if (key := (_norm(name), want)) in seen:
            continue
        seen.add(key)
        try:
            requires = importlib_metadata.requires(name) or []
        except importlib_metadata.PackageNotFoundError:
            continue
        for text in requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (want or ("",))):
                continue
            version = _installed(req.name)
            if version is None:
                continue
            pins[_norm(req.name)] = version
            todo.append((req.name, tuple(sorted(req.extras))))
    return pins


def pinned_requirements(
    models: list[Any], *, extras: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, str]]:
    """``requirements.txt`` lines and the pins: modelyard's requirements at this machine's versions,
    overridden by what each model recorded at save time. Two models that recorded different
    versions of one package cannot share an image: that is an error naming both."""
    pins = _closure("modelyard", extras)
    pins.pop("modelyard", None)
    by_model: dict[str, tuple[str, str]] = {}
    for mv in models:
        for pkg, version in (mv.requirements or {}).items():
            key = _norm(pkg)
            if key in by_model and by_model[key][0] != version:
                other_version, other = by_model[key]
                raise InvalidArgumentError(
                    f"{other} was saved with {pkg} {other_version} and {mv.ref} with {pkg} {version}; one "
                    "image holds one version of a package. Build one image per model, or re-register one "
                    "of them under the other's version."
                )
            by_model[key] = (str(version), mv.ref)
            pins[key] = str(version)
    lines = [
        "# Pinned by `yard build`: modelyard's requirements at the versions installed where it ran,",
        "# overridden by the versions the models recorded when they were saved (marked with the model).",
        f"modelyard=={__version__}",
    ]
    for key in sorted(pins):
        note = f"  # {by_model[key][1]}" if key in by_model else ""
        lines.append(f"{key}=={pins[key]}{note}")
    return lines, pins


# -- labels -----------------------------------------------------------------------------------------
def image_labels(
    spec: Any,
    resolved: list[tuple[Any, list[str]]],
    *,
    base_image: str,
    bake: bool,
    created: str | None = None,
) -> dict[str, str]:
    """OCI labels (``org.opencontainers.image.*``) and modelyard's (``io.modelyard.*``)."""
    primary_ref = spec.models[spec.traffic.slots()[0]].ref
    primary = next((mv for mv, refs in resolved if primary_ref in refs), resolved[0][0])
    labels = {
        "org.opencontainers.image.title": spec.endpoint_name,
        "org.opencontainers.image.description": "modelyard model server: "
        + ", ".join(mv.ref for mv, _ in resolved),
        "org.opencontainers.image.version": str(primary.version)
        if len(resolved) == 1
        else ",".join(mv.ref for mv, _ in resolved),
        "org.opencontainers.image.created": created
        or datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "org.opencontainers.image.base.name": base_image,
        f"{LABEL_PREFIX}.version": __version__,
        f"{LABEL_PREFIX}.endpoint": spec.endpoint_name,
        f"{LABEL_PREFIX}.model.name": primary.name,
        f"{LABEL_PREFIX}.model.version": str(primary.version),
        f"{LABEL_PREFIX}.model.manifest-digest": primary.manifest_digest,
        f"{LABEL_PREFIX}.models": json.dumps(
            [
                {"ref": mv.ref, "refs": refs, "flavor": mv.flavor, "manifest_digest": mv.manifest_digest}
                for mv, refs in resolved
            ],
            separators=(",", ":"),
        ),
        f"{LABEL_PREFIX}.baked": "true" if bake else "false",
    }
    return labels


# -- the build context ------------------------------------------------------------------------------
@dataclass
class BuildContext:
    """A written build context: where, what it bakes, the labels and pins."""

    path: Path
    dockerfile: Path
    models: list[BakedModel]
    labels: dict[str, str]
    requirements: dict[str, str]
    base_image: str
    baked: bool
    endpoint: str
    platform: str | None = None


def _load_spec(
    ref: str | None, spec: str | os.PathLike[str] | dict[str, Any] | None, allow_pickle: bool
) -> Any:
    from modelyard.serving import load_spec, spec_from_flags

    if (ref is None) == (spec is None):
        raise InvalidArgumentError(
            "Give a model reference (yard build churn-clf@production -t TAG) or --spec serve.yaml, not both."
        )
    if ref is not None:
        from modelyard.serving._spec import parse_model_ref

        parse_model_ref(ref)
        return spec_from_flags(ref, allow_pickle=allow_pickle)
    if allow_pickle:
        raise InvalidArgumentError("--spec declares allow_pickle; set 'allow_pickle: true' in the spec file.")
    assert spec is not None
    return load_spec(spec)


def _empty_dir(dest: Path) -> Path:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidArgumentError(
            f"The build context folder {str(dest)!r} exists and is not empty; give a new or empty folder "
            "so nothing of yours is overwritten."
        )
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def _download_wheels(
    requirements: Path, wheels: Path, log: Callable[[str], None], platform: Platform | None = None
) -> None:
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--dest", str(wheels), "--find-links", str(wheels), "--requirement", str(requirements),
    ]  # fmt: skip
    if platform is not None and platform.machine != native_platform().machine:
        # another machine's wheels: binary only (an sdist would need that machine's compiler)
        cmd += ["--only-binary", ":all:"]
        for t in platform.wheel_tags():
            cmd += ["--platform", t]
    log(f"Fetching the pinned requirements as wheels: {' '.join(cmd[1:4])} …")
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-15:])
        where = f" as {platform} wheels" if platform is not None else ""
        raise ImageBuildError(
            f"pip could not fetch the pinned requirements{where} for the image (it uses this machine's "
            f"index or mirror; the image build itself needs no network):\n{tail}"
        )


def prepare_context(
    dest: str | os.PathLike[str],
    ref: str | None = None,
    *,
    spec: str | os.PathLike[str] | dict[str, Any] | None = None,
    base_image: str | None = None,
    bake: bool = True,
    allow_pickle: bool = False,
    uri: str | None = None,
    fetch_wheels: bool = True,
    platform: str | Platform | None = None,
    log: Callable[[str], None] | None = None,
) -> BuildContext:
    """Write the build context for ``ref`` (``churn-clf@production``) or ``spec`` into ``dest``.

    ``fetch_wheels=False`` writes only modelyard's wheel into ``wheels/`` (the Dockerfile then
    needs the rest there before it builds); ``yard build`` always fetches them."""
    say = log or (lambda _msg: None)
    plat = check_platform(platform) if isinstance(platform, str) else platform
    spec_obj = _load_spec(ref, spec, allow_pickle)
    base = (base_image or default_base_image()).strip()
    if not base or any(c.isspace() for c in base):
        raise invalid_param(
            "base_image", "yard build", "an image reference like 'python:3.11-slim'", base_image
        )
    resolved = _resolve(spec_obj, uri)
    from modelyard.registry.flavors import get_flavor

    for mv, refs in resolved:
        if get_flavor(mv.flavor).runs_code and not spec_obj.allow_pickle:
            raise InvalidArgumentError(
                f"{mv.ref} ({', '.join(refs)}) is a {mv.flavor} model, which runs code from the store when "
                "loaded; the image would refuse to serve it. Pass --allow-pickle (or 'allow_pickle: true' in "
                "the spec) only if you trust whoever can write to this store."
            )
    root = _empty_dir(Path(dest))
    (root / "model").mkdir()
    wheels = root / "wheels"
    wheels.mkdir()
    baked = [
        BakedModel(mv.name, mv.version, mv.manifest_digest, mv.flavor, mv.run_id, tuple(refs))
        for mv, refs in resolved
    ]
    if bake:
        _copy_packages(resolved, root / "model" / "blobs", uri)
        shutil.rmtree(root / "model" / "blobs" / "tmp", ignore_errors=True)  # the blob store's scratch
    index = ImageIndex(__version__, bake, spec_obj.allow_pickle, tuple(baked) if bake else ())
    (root / "model" / INDEX_FILE).write_text(index.to_json() + "\n")
    (root / "model" / SPEC_FILE).write_text(spec_obj.to_yaml())
    # the postgres extra when this machine has it: YARD_URI may then name a team store (the spec's
    # models with --no-bake, the prediction log either way)
    extras = ("postgres",) if _installed("psycopg") else ()
    lines, pins = pinned_requirements([mv for mv, _ in resolved], extras=extras)
    (root / "requirements.txt").write_text("\n".join(lines) + "\n")
    from modelyard.deploy._wheel import build_self_wheel

    build_self_wheel(wheels)
    if fetch_wheels:
        _download_wheels(root / "requirements.txt", wheels, say, plat)
    labels = image_labels(spec_obj, resolved, base_image=base, bake=bake)
    facts = DockerfileFacts(
        base_image=base,
        python=f"{sys.version_info[0]}.{sys.version_info[1]}",
        modelyard_version=__version__,
        title=", ".join(mv.ref for mv, _ in resolved),
        labels=labels,
        baked=bake,
        platform=None if plat is None else str(plat),
    )
    dockerfile = root / "Dockerfile"
    dockerfile.write_text(render_dockerfile(facts))
    (root / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
    return BuildContext(
        root,
        dockerfile,
        baked,
        labels,
        pins,
        base,
        bake,
        spec_obj.endpoint_name,
        None if plat is None else str(plat),
    )


def _copy_packages(resolved: list[tuple[Any, list[str]]], dest: Path, uri: str | None) -> None:
    """Copy each model's manifest and files from the store into a blob store folder at ``dest``;
    every read is verified, and every write lands under the same digest (checked)."""
    from modelyard._workspace import get_workspace
    from modelyard.blobs import BlobStore

    src = get_workspace(uri).blobs
    out = BlobStore(str(dest))
    for mv, _refs in resolved:
        raw = src.read_bytes(mv.manifest_digest)
        for e in src.read_manifest(mv.manifest_digest):
            if out.put_bytes(src.read_bytes(e.digest)) != e.digest:  # pragma: no cover - same hash function
                raise ImageBuildError(f"{mv.ref}: file {e.path!r} changed digest while copied.")
        if out.put_bytes(raw) != mv.manifest_digest:  # pragma: no cover
            raise ImageBuildError(f"{mv.ref}: its manifest changed digest while copied.")


@dataclass
class BuildResult:
    """What ``yard build`` made: the image (or only the context) and how."""

    context: Path
    dockerfile: Path
    models: list[BakedModel]
    labels: dict[str, str]
    base_image: str
    baked: bool
    tag: str | None = None
    builder: str | None = None
    seconds: float | None = None
    image_id: str | None = None
    size_bytes: int | None = None
    requirements: dict[str, str] = field(default_factory=dict)
    platform: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "builder": self.builder,
            "seconds": None if self.seconds is None else round(self.seconds, 2),
            "image_id": self.image_id,
            "size_bytes": self.size_bytes,
            "platform": self.platform,
            "base_image": self.base_image,
            "baked": self.baked,
            "models": [m.to_dict() for m in self.models],
            "labels": self.labels,
            "requirements": self.requirements,
            "context": str(self.context),
            "dockerfile": str(self.dockerfile),
        }


def build_image(
    ref: str | None = None,
    *,
    tag: str | None = None,
    spec: str | os.PathLike[str] | dict[str, Any] | None = None,
    base_image: str | None = None,
    builder: str = "auto",
    bake: bool = True,
    allow_pickle: bool = False,
    dockerfile_only: str | os.PathLike[str] | None = None,
    platform: str | None = None,
    uri: str | None = None,
    log: Callable[[str], None] | None = None,
    stream: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build the image ``tag`` for ``ref`` or ``spec`` (see the module docstring); with
    ``dockerfile_only`` write the Dockerfile and context there and build nothing. ``platform``
    (``linux/arm64``) is passed to the builder, and the wheels are fetched for it; a foreign one
    needs qemu's binfmt handlers for podman and buildah (checked before the slow part)."""
    plat = check_platform(platform) if platform is not None else None
    if tag is not None:
        tag = check_tag(tag)
    elif dockerfile_only is None:
        raise InvalidArgumentError(
            "Give the image name with -t/--tag (e.g. -t registry.example.com/churn:7)."
        )
    found: tuple[str, str] | None = None
    if dockerfile_only is None:
        found = find_builder(builder)  # before the slow part
        why = emulation_missing(plat) if plat is not None and found[0] != "docker" else None
        if why:  # docker's daemon may be remote (DOCKER_HOST) or have its own emulation: it decides
            raise ImageBuildError(f"{found[0]} cannot build this image here: {why}.")
    elif builder != "auto":
        find_builder(builder)
    scratch = None
    if dockerfile_only is not None:
        where = Path(dockerfile_only)
    else:
        scratch = tempfile.mkdtemp(prefix="yard-build-")
        where = Path(scratch) / "context"
    try:
        ctx = prepare_context(
            where,
            ref,
            spec=spec,
            base_image=base_image,
            bake=bake,
            allow_pickle=allow_pickle,
            uri=uri,
            platform=plat,
            log=log,
        )
        result = BuildResult(
            ctx.path, ctx.dockerfile, ctx.models, ctx.labels, ctx.base_image, ctx.baked, tag=tag,
            requirements=ctx.requirements, platform=ctx.platform,
        )  # fmt: skip
        if found is None:
            return result
        assert tag is not None
        name, exe = found
        if log:
            log(f"Building {tag} with {name} ({exe}) …")
        started = time.perf_counter()
        _run_builder(_build_command(name, exe, ctx.path, tag, ctx.platform), stream)
        result.seconds = time.perf_counter() - started
        result.builder = name
        result.image_id, result.size_bytes = _inspect(name, exe, tag)
        return result
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
