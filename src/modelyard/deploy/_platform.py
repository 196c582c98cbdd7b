"""The platform of an image ``yard build`` makes (``--platform linux/arm64``): which OCI platforms are
known, the wheels' platform tags for each, and whether this machine can run a foreign platform's
programs while building (a registered qemu binfmt handler)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelyard.errors import InvalidArgumentError

__all__ = ["BINFMT_DIR", "Platform", "check_platform", "emulation_missing", "native_platform"]


# -- the platform ----------------------------------------------------------------------------------
#: OCI architecture → (the wheels' platform tag machine, the variants a builder accepts). Linux
#: only: the image runs a Linux build of CPython. ``arm`` is 32-bit ARMv7 (no manylinux wheels exist
#: for v6); ``amd64`` variants are the x86-64 micro-architecture levels.
_ARCHES: dict[str, tuple[str, tuple[str, ...]]] = {
    "amd64": ("x86_64", ("v1", "v2", "v3", "v4")),
    "arm64": ("aarch64", ("v8",)),
    "arm": ("armv7l", ("v7",)),
    "386": ("i686", ()),
    "ppc64le": ("ppc64le", ()),
    "s390x": ("s390x", ()),
    "riscv64": ("riscv64", ()),
}
#: Other spellings of an architecture that builders accept (containerd's normalisation).
_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "i686": "386",
    "armhf": "arm",
}
#: The newest glibc of the default base (python:X.Y-slim is Debian 12: glibc 2.36); wheels for a
#: foreign platform are fetched for manylinux_2_17 … manylinux_2_36.
_GLIBC_MAX = 36
#: Where the kernel lists its registered binary-format handlers (qemu's, for emulated builds).
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
#: Architectures a kernel runs without emulation besides its own.
_ALSO_NATIVE = {"amd64": ("386",), "arm64": ("arm",)}


@dataclass(frozen=True)
class Platform:
    """An image platform, ``linux/arm64`` or ``linux/arm/v7``."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @property
    def machine(self) -> str:
        """The wheels' platform tag machine (``aarch64``)."""
        return _ARCHES[self.architecture][0]

    def wheel_tags(self) -> list[str]:
        """pip's ``--platform`` values for binary wheels that run on this platform's glibc images."""
        m = self.machine
        tags = [f"manylinux_2_{n}_{m}" for n in range(_GLIBC_MAX, 16, -1)] + [f"manylinux2014_{m}"]
        if m in ("x86_64", "i686"):
            tags += [f"manylinux2010_{m}", f"manylinux1_{m}"]
        return tags


def native_platform() -> Platform:
    """The platform of this machine (what a build without ``--platform`` makes)."""
    import platform as _platform

    machine = _platform.machine().lower()
    arch = _ALIASES.get(machine, machine)
    if machine.startswith("armv7"):
        arch = "arm"
    return Platform("linux", arch, "v7" if arch == "arm" else None)


def check_platform(value: str) -> Platform:
    """The :class:`Platform` ``value`` names (``linux/arm64``, ``linux/amd64``, ``linux/arm/v7``),
    else a clear error. Common other spellings (``linux/aarch64``, ``linux/x86_64``) are accepted."""
    known = ", ".join(
        f"linux/{a}" + (f" (variants {', '.join(v)})" if v else "") for a, (_m, v) in _ARCHES.items()
    )
    text = value.strip().lower() if isinstance(value, str) else ""
    if "," in text:
        raise InvalidArgumentError(
            f"yard build makes one image per platform; got {value!r}. Run it once per platform (the "
            "wheels differ) and join the images with `podman manifest` or `docker buildx imagetools`."
        )
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgumentError(
            f"The 'platform' parameter of yard build must be OS/ARCHITECTURE[/VARIANT] like 'linux/arm64'. "
            f"Got {value!r} instead. Known: {known}."
        )
    os_name, arch = parts[0], _ALIASES.get(parts[1], parts[1])
    if os_name != "linux":
        raise InvalidArgumentError(
            f"yard build makes Linux images only (the server runs on a Linux Python); got the OS "
            f"{parts[0]!r} in {value!r}. Known: {known}."
        )
    if arch not in _ARCHES:
        raise InvalidArgumentError(
            f"Unknown architecture {parts[1]!r} in the platform {value!r}. Known: {known}."
        )
    variants = _ARCHES[arch][1]
    variant = parts[2] if len(parts) == 3 else ("v7" if arch == "arm" else None)
    if variant is not None and variant not in variants:
        allowed = f"use one of {', '.join(variants)}" if variants else f"{arch} has no variants"
        raise InvalidArgumentError(
            f"Unknown variant {variant!r} of {arch} in the platform {value!r}: {allowed}."
        )
    return Platform("linux", arch, variant)


def emulation_missing(target: Platform) -> str | None:
    """Why this machine cannot run ``target``'s programs during a local build, or None when it can
    (the same architecture, one the kernel also runs, or a registered qemu binfmt handler)."""
    here = native_platform()
    if target.architecture == here.architecture or target.architecture in _ALSO_NATIVE.get(
        here.architecture, ()
    ):
        return None
    qemu = {"arm64": "aarch64", "386": "i386", "amd64": "x86_64"}.get(target.architecture, target.machine)
    qemu = "arm" if target.architecture == "arm" else qemu
    handlers = BINFMT_DIR
    try:
        names = [p.name for p in handlers.iterdir()]
    except OSError:
        names = []
    if any(n.startswith(f"qemu-{qemu}") for n in names):
        return None
    return (
        f"building for {target} on this {here} machine runs the image's Python under emulation, and no "
        f"qemu-{qemu} handler is registered in {handlers} (install qemu-user-static and binfmt-support, "
        "or build on a machine of that architecture, from the context --dockerfile-only writes)"
    )
