"""`yard build --platform` and the builders' command lines.

The platform is checked before anything slow runs, passed to docker, podman and buildah as
``--platform`` (checked here on the argv each one receives: stand-in executables record it), and
makes pip fetch that platform's wheels. A real build for the native platform runs in
test_build_container.py (buildah); another architecture cannot run here (no qemu binfmt handler).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.deploy import _build, _builder, _platform
from modelyard.deploy._build import (
    ImageBuildError,
    Platform,
    build_image,
    check_platform,
    native_platform,
)
from modelyard.errors import InvalidArgumentError

from .buildmodels import make_build_store


@pytest.fixture(scope="module")
def build_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    return make_build_store(tmp_path_factory)


@pytest.mark.parametrize(
    ("given", "want"),
    [
        ("linux/arm64", "linux/arm64"),
        ("linux/amd64", "linux/amd64"),
        ("Linux/AArch64", "linux/arm64"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("linux/arm64/v8", "linux/arm64/v8"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/ppc64le", "linux/ppc64le"),
        ("linux/s390x", "linux/s390x"),
    ],
)
def test_valid_platforms(given: str, want: str) -> None:
    assert str(check_platform(given)) == want


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("arm64", "must be OS/ARCHITECTURE[/VARIANT] like 'linux/arm64'"),
        ("", "must be OS/ARCHITECTURE[/VARIANT]"),
        ("linux//", "must be OS/ARCHITECTURE[/VARIANT]"),
        ("linux/arm64/v8/x", "must be OS/ARCHITECTURE[/VARIANT]"),
        ("windows/amd64", "Linux images only"),
        ("darwin/arm64", "Linux images only"),
        ("linux/sparc", "Unknown architecture 'sparc'"),
        ("linux/arm/v6", "Unknown variant 'v6' of arm"),
        ("linux/arm64/v9", "'v9' of arm64 in the platform 'linux/arm64/v9': use one of v8"),
        (
            "linux/ppc64le/v2",
            "Unknown variant 'v2' of ppc64le in the platform 'linux/ppc64le/v2': ppc64le has no variants",
        ),
        ("linux/amd64,linux/arm64", "one image per platform"),
    ],
)
def test_bad_platforms_are_refused_naming_what_is_wrong(given: str, says: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(says)):
        check_platform(given)


def test_native_platform_is_this_machine() -> None:
    import platform

    here = native_platform()
    assert here.os == "linux" and here.machine == {"amd64": "x86_64", "arm64": "aarch64"}.get(
        here.architecture, here.machine
    )
    assert here.machine == platform.machine() or platform.machine().startswith("armv7")


def test_foreign_wheels_are_binary_only_for_that_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(_build.subprocess, "run", fake_run)
    req = tmp_path / "requirements.txt"
    foreign = (
        Platform("linux", "ppc64le")
        if native_platform().architecture != "ppc64le"
        else Platform("linux", "amd64")
    )
    _build._download_wheels(req, tmp_path, lambda _m: None, foreign)
    cmd = calls[-1]
    assert cmd[cmd.index("--only-binary") + 1] == ":all:"
    tags = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--platform"]
    assert f"manylinux_2_17_{foreign.machine}" in tags and f"manylinux2014_{foreign.machine}" in tags
    assert all(t.endswith(foreign.machine) for t in tags)
    _build._download_wheels(req, tmp_path, lambda _m: None, native_platform())
    assert "--platform" not in calls[-1] and "--only-binary" not in calls[-1]  # this machine's own index


def _fake_builders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """docker, podman and buildah stand-ins on PATH that append their argv (JSON) to a log and
    succeed (``docker version`` answers, as a daemon would)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "argv.log"
    for name in ("docker", "podman", "buildah"):
        exe = bin_dir / name
        exe.write_text(
            f"#!{sys.executable}\nimport json, sys\n"
            f"open({str(log)!r}, 'a').write(json.dumps(sys.argv) + '\\n')\n"
        )
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(_build, "_download_wheels", lambda *a, **k: None)
    return log


def _builds(log: Path) -> list[list[str]]:
    return [argv for line in log.read_text().splitlines() if (argv := json.loads(line))[1] == "build"]


@pytest.mark.parametrize("builder", ["docker", "podman", "buildah"])
def test_platform_reaches_the_builders_argv(
    builder: str, tmp_path: Path, build_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, _ = build_store
    log = _fake_builders(tmp_path, monkeypatch)
    native = str(native_platform())
    result = build_image("clf/1", tag="localhost/p:1", builder=builder, platform=native, uri=uri)
    assert result.builder == builder and result.platform == native
    (argv,) = _builds(log)
    assert argv[0].endswith(f"/{builder}")
    assert argv[argv.index("--platform") + 1] == native
    assert argv[argv.index("--tag") + 1] == "localhost/p:1"
    if builder != "docker":  # podman and buildah keep HEALTHCHECK only in the docker format
        assert argv[argv.index("--format") + 1] == "docker"
    # without --platform, none is passed (the builder's own default: this machine)
    log.unlink()
    build_image("clf/1", tag="localhost/p:2", builder=builder, uri=uri)
    (argv,) = _builds(log)
    assert "--platform" not in argv


def test_docker_gets_a_foreign_platform_as_is(
    tmp_path: Path, build_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker's daemon may be remote or emulate: yard passes the platform on and lets it decide."""
    uri, _ = build_store
    log = _fake_builders(tmp_path, monkeypatch)
    monkeypatch.setattr(_platform, "BINFMT_DIR", tmp_path / "no-binfmt")
    foreign = "linux/s390x" if native_platform().architecture != "s390x" else "linux/amd64"
    build_image("clf/1", tag="localhost/p:3", builder="docker", platform=foreign, uri=uri)
    (argv,) = _builds(log)
    assert argv[argv.index("--platform") + 1] == foreign


@pytest.mark.parametrize("builder", ["podman", "buildah"])
def test_a_foreign_platform_without_emulation_is_refused_before_the_build(
    builder: str, tmp_path: Path, build_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, _ = build_store
    log = _fake_builders(tmp_path, monkeypatch)
    handlers = tmp_path / "binfmt"
    handlers.mkdir()
    monkeypatch.setattr(_platform, "BINFMT_DIR", handlers)
    foreign = Platform("linux", "s390x" if native_platform().architecture != "s390x" else "amd64")
    with pytest.raises(ImageBuildError, match=f"no qemu-{foreign.machine} handler is registered"):
        build_image("clf/1", tag="localhost/p:4", builder=builder, platform=str(foreign), uri=uri)
    assert not log.exists()  # refused before the context was even prepared
    (handlers / f"qemu-{foreign.machine}").write_text("enabled\n")  # qemu-user-static registered
    build_image("clf/1", tag="localhost/p:4", builder=builder, platform=str(foreign), uri=uri)
    (argv,) = _builds(log)
    assert argv[argv.index("--platform") + 1] == str(foreign)


def test_cli_platform_errors_exit_1_naming_the_value(tmp_path: Path, build_store: Any) -> None:
    uri, _ = build_store
    out = tmp_path / "c"
    res = subprocess.run(
        [sys.executable, "-m", "modelyard", "--uri", uri, "build", "clf/1", "-t", "x:1",
         "--platform", "linux/sparc", "--dockerfile-only", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 1
    assert res.stderr.startswith(
        "Error: Unknown architecture 'sparc' in the platform 'linux/sparc'. Known: linux/amd64"
    )
    assert not out.exists()  # refused before anything was written


def test_cli_dockerfile_only_for_a_platform_says_how_to_build(
    tmp_path: Path, build_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, _ = build_store
    seen: list[Any] = []
    monkeypatch.setattr(
        _build, "_download_wheels", lambda req, wheels, log, platform=None: seen.append(platform)
    )
    out = tmp_path / "ctx"
    r = CliRunner().invoke(
        app,
        [
            "--uri",
            uri,
            "build",
            "clf/1",
            "--platform",
            "linux/arm64",
            "--dockerfile-only",
            str(out),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["platform"] == "linux/arm64"
    assert seen == [Platform("linux", "arm64")]
    text = (out / "Dockerfile").read_text()
    assert "podman build --format docker --platform linux/arm64 -t TAG ." in text
    assert "the wheels in wheels/ are for it" in text


@pytest.mark.parametrize(
    ("value", "want"),
    [(773925807, 773925807), ("774 MB", 774_000_000), ("115 MB", 115_000_000), ("1.2 GB", 1_200_000_000),
     ("40 kB", 40_000), ("12 B", 12), ("n/a", None), (None, None)],
)  # fmt: skip
def test_image_sizes_of_every_builder_are_bytes(value: Any, want: int | None) -> None:
    """docker and podman give bytes; buildah's image list gives "774 MB" (found by the real build)."""
    assert _builder._size(value) == want
