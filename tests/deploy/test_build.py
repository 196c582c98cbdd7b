"""`yard build` without a container builder: the build context, the Dockerfile text, the pins, the
digest check, the in-image loader and the errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.deploy import _build
from modelyard.deploy._build import (
    check_tag,
    find_builder,
    image_labels,
    pinned_requirements,
    prepare_context,
)
from modelyard.deploy._dockerfile import DockerfileFacts, render_dockerfile
from modelyard.deploy._image import ImageLoader, read_index, verify_image
from modelyard.deploy._wheel import build_self_wheel
from modelyard.errors import BlobNotFoundError, IntegrityError, InvalidArgumentError, NotFoundError

from .buildmodels import frame, make_build_store

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _context(tmp_path: Path, uri: str, ref: str | None = "clf@production", **kw: Any) -> Any:
    return prepare_context(tmp_path / "ctx", ref, uri=uri, fetch_wheels=False, **kw)


def _final_stage(text: str) -> str:
    return text.split("\nFROM ${BASE_IMAGE}\n", 1)[1]


@pytest.fixture(scope="module")
def build_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    return make_build_store(tmp_path_factory)


# -- the Dockerfile ---------------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_labels(
    tmp_path: Path, build_store: Any
) -> None:
    uri, mvs = build_store
    ctx = _context(tmp_path, uri)
    text = ctx.dockerfile.read_text()
    assert text.count("\nFROM ") == 2 and "FROM ${BASE_IMAGE} AS builder" in text
    assert f"ARG BASE_IMAGE=docker.io/library/python:{PY}-slim" in text
    final = _final_stage(text)
    assert "USER 10001:10001" in final
    assert "pip" not in final.replace("PIP_", "")  # installing happens in the builder only
    assert "gcc" not in text and "build-essential" not in text
    health = next(line for line in final.splitlines() if line.startswith("  CMD "))
    assert "/health/ready" in health and "HEALTHCHECK --interval=" in final
    assert 'VOLUME ["/tmp"]' in final and "YARD_URI=/tmp/yard" in final and "TMPDIR=/tmp" in final
    assert 'ENTRYPOINT ["/opt/yard/venv/bin/python", "-m", "modelyard.deploy", "serve"]' in final
    # the digest check runs in the builder, after the model is copied in
    builder = text.split("\nFROM ${BASE_IMAGE}\n", 1)[0]
    assert builder.index("COPY model/") < builder.index('"modelyard.deploy", "verify"')
    # labels: OCI keys and ours, with the version and manifest digest of clf/1
    mv = mvs["clf1"]
    assert f'io.modelyard.model.manifest-digest="{mv.manifest_digest}"' in final
    assert 'io.modelyard.model.name="clf"' in final and f'io.modelyard.model.version="{mv.version}"' in final
    assert 'org.opencontainers.image.version="1"' in final
    import modelyard

    assert f'io.modelyard.version="{modelyard.__version__}"' in final
    # every RUN is exec form: a base image without a shell works
    assert all(line.startswith("RUN [") for line in text.splitlines() if line.startswith("RUN"))


def test_render_dockerfile_without_bake_says_so() -> None:
    facts = DockerfileFacts("python:3.11-slim", "3.11", "0.1.0", "clf/1", {"a": 'q"uote'}, baked=False)
    text = render_dockerfile(facts)
    assert "--no-bake: no model inside" in text
    assert 'LABEL a="q\\"uote"' in text  # values are JSON-quoted


def test_python_check_of_the_base_image_names_both_versions() -> None:
    text = render_dockerfile(DockerfileFacts("python:3.11-slim", "3.11", "0.1.0", "clf/1"))
    line = next(ln for ln in text.splitlines() if "sys.version_info" in ln)
    code = json.loads(line[len("RUN ") :])[2]
    ok = subprocess.run([sys.executable, "-c", code.replace("'3.11'", repr(PY))])
    assert ok.returncode == 0
    bad = subprocess.run(
        [sys.executable, "-c", code.replace("'3.11'", "'2.7'")], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert f"the base image runs Python {PY}" in bad.stderr
    assert "wheels in this build context are for Python 3.11" in bad.stderr


# -- the context ------------------------------------------------------------------------------------
def test_context_pins_the_models_requirements_and_bakes_verified_blobs(
    tmp_path: Path, build_store: Any
) -> None:
    uri, mvs = build_store
    ctx = _context(tmp_path, uri)
    reqs = (ctx.path / "requirements.txt").read_text().splitlines()
    mv = mvs["clf1"]
    for pkg, version in mv.requirements.items():
        assert f"{pkg}=={version}  # clf/1" in reqs
    assert all("==" in ln for ln in reqs if ln and not ln.startswith("#"))  # every line pinned
    import modelyard

    assert f"modelyard=={modelyard.__version__}" in reqs
    wheel = ctx.path / "wheels" / f"modelyard-{modelyard.__version__}-py3-none-any.whl"
    assert wheel.is_file()
    index = read_index(ctx.path / "model")
    assert [(m.name, m.version, m.manifest_digest, m.refs) for m in index.models] == [
        ("clf", 1, mv.manifest_digest, ("clf@production",))
    ]
    assert verify_image(ctx.path / "model")[0].startswith("clf/1: ")
    assert "models:\n  primary:\n    ref: clf@production" in (ctx.path / "model" / "serve.yaml").read_text()


def test_a_changed_byte_fails_the_verify_step(tmp_path: Path, build_store: Any) -> None:
    uri, mvs = build_store
    ctx = _context(tmp_path, uri)
    home = ctx.path / "model"
    files = [
        p for p in (home / "blobs").rglob("*") if p.is_file() and mvs["clf1"].manifest_digest not in str(p)
    ]
    target = max(files, key=lambda p: p.stat().st_size)
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(
        IntegrityError, match=r"Model clf/1: file '.+' \(digest .+\) is missing or does not match"
    ):
        verify_image(home)
    res = subprocess.run(
        [sys.executable, "-m", "modelyard.deploy", "verify", str(home)], capture_output=True, text=True
    )
    assert res.returncode == 1 and "the image is not built" in res.stderr
    target.unlink()
    with pytest.raises(BlobNotFoundError, match="Model clf/1: file"):
        verify_image(home)


def test_spec_with_several_models_bakes_each_version_once(tmp_path: Path, build_store: Any) -> None:
    uri, _ = build_store
    spec = {
        "endpoint": "churn",
        "models": {"stable": "clf@production", "canary": "clf/2", "same": "clf/1"},
        "traffic": {"kind": "canary", "weights": {"stable": 90, "canary": 10}},
        "fallback": {"model": "clf/2"},
    }
    ctx = prepare_context(tmp_path / "ctx", spec=spec, uri=uri, fetch_wheels=False)
    index = read_index(ctx.path / "model")
    assert [(m.label, m.refs) for m in index.models] == [
        ("clf/1", ("clf@production", "clf/1")),
        ("clf/2", ("clf/2",)),
    ]
    models = json.loads(ctx.labels["io.modelyard.models"])
    assert [m["ref"] for m in models] == ["clf/1", "clf/2"]
    assert ctx.labels["org.opencontainers.image.title"] == "churn"
    assert ctx.labels["org.opencontainers.image.version"] == "clf/1,clf/2"
    assert len(verify_image(ctx.path / "model")) == 2


def test_no_bake_copies_no_model(tmp_path: Path, build_store: Any) -> None:
    uri, _ = build_store
    ctx = _context(tmp_path, uri, bake=False)
    assert not (ctx.path / "model" / "blobs").exists()
    assert read_index(ctx.path / "model").models == ()
    assert ctx.labels["io.modelyard.baked"] == "false"
    assert "--no-bake: no model inside" in ctx.dockerfile.read_text()


def test_pickled_model_needs_allow_pickle(tmp_path: Path, build_store: Any) -> None:
    uri, _ = build_store
    with pytest.raises(
        InvalidArgumentError, match=r"doubler/1 \(doubler/1\) is a pyfunc model.+--allow-pickle"
    ):
        _context(tmp_path, uri, ref="doubler/1")
    ctx = _context(tmp_path / "ok", uri, ref="doubler/1", allow_pickle=True)
    assert read_index(ctx.path / "model").allow_pickle is True


# -- pins -------------------------------------------------------------------------------------------
def test_the_models_recorded_versions_win_and_a_conflict_is_an_error() -> None:
    a = SimpleNamespace(ref="a/1", requirements={"scikit-learn": "0.0.1", "numpy": "1.0"})
    b = SimpleNamespace(ref="b/3", requirements={"numpy": "1.0"})
    lines, pins = pinned_requirements([a, b])
    assert pins["scikit-learn"] == "0.0.1" and "scikit-learn==0.0.1  # a/1" in lines
    from importlib.metadata import version

    assert pins["pydantic"] == version("pydantic")  # modelyard's requirements at this machine's versions
    c = SimpleNamespace(ref="c/2", requirements={"NumPy": "2.0"})
    with pytest.raises(InvalidArgumentError, match=r"a/1 was saved with NumPy 1.0 and c/2 with NumPy 2.0"):
        pinned_requirements([a, c])


# -- the loader inside the image --------------------------------------------------------------------
def test_image_loader_serves_baked_refs_and_explains_the_rest(tmp_path: Path, build_store: Any) -> None:
    uri, mvs = build_store
    ctx = _context(tmp_path, uri)
    loader = ImageLoader(ctx.path / "model", uri=str(tmp_path / "empty-store"))
    X = frame(10, seed=3)
    from modelyard.registry import load_model

    want = load_model("clf/1", uri).predict(X)
    for ref in ("clf@production", "clf/1"):
        model = loader(ref)
        assert (model.name, model.version, model.manifest_digest) == ("clf", 1, mvs["clf1"].manifest_digest)
        assert (model.predict(X) == want).all()
        assert model.input_example is not None
    with pytest.raises(
        NotFoundError, match=r"'clf/2' is not baked into this image \(baked: clf/1 \(clf@production\)\)"
    ):
        loader("clf/2")
    assert ImageLoader(ctx.path / "model", uri=uri)("clf/2").version == 2  # from the store at YARD_URI


def test_model_server_runs_on_the_image_loader(tmp_path: Path, build_store: Any) -> None:
    import httpx

    from modelyard.serving import ModelServer
    from modelyard.serving._server import running

    uri, _ = build_store
    ctx = _context(tmp_path, uri)
    home = ctx.path / "model"
    server = ModelServer(
        str(home / "serve.yaml"), uri=str(tmp_path / "run"), loader=ImageLoader(home)
    ).start()
    # the image's HEALTHCHECK command, as written (an isolated Python without site, on YARD_PORT)
    line = next(ln for ln in ctx.dockerfile.read_text().splitlines() if ln.startswith("  CMD "))
    cmd = json.loads(line[len("  CMD ") :])
    assert cmd[:4] == ["/opt/yard/venv/bin/python", "-I", "-S", "-c"]

    def check(port: int) -> int:
        env = dict(os.environ, YARD_PORT=str(port))
        return subprocess.run([sys.executable, *cmd[1:]], capture_output=True, env=env, timeout=60).returncode

    with running(server) as h:
        assert httpx.get(h.url + "/health/ready", timeout=30).status_code == 200
        port = int(h.url.rsplit(":", 1)[1])
        assert check(port) == 0
        rows = frame(3).to_dict(orient="records")
        r = httpx.post(h.url + "/v1/models/clf/predict", json={"records": rows}, timeout=30)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 3
    server.close()
    assert check(port) != 0  # nothing answers there now


# -- modelyard's own wheel --------------------------------------------------------------------------
def test_self_wheel_holds_the_package_data_and_metadata(tmp_path: Path) -> None:
    import modelyard

    path = build_self_wheel(tmp_path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        info = f"modelyard-{modelyard.__version__}.dist-info"
        assert {
            "modelyard/__init__.py",
            "modelyard/deploy/_image.py",
            f"{info}/RECORD",
            f"{info}/WHEEL",
        } <= names
        assert any(n.startswith("modelyard/store/migrations/versions/") for n in names)
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        meta = zf.read(f"{info}/METADATA").decode()
        assert f"Version: {modelyard.__version__}" in meta and "Requires-Dist: pydantic" in meta
        assert "yard = modelyard.cli:main" in zf.read(f"{info}/entry_points.txt").decode()
        record = zf.read(f"{info}/RECORD").decode()
        assert "modelyard/__init__.py,sha256=" in record
    assert build_self_wheel(tmp_path / "again").read_bytes() == path.read_bytes()  # reproducible


# -- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tag", ["registry.example.com/churn:7", "churn", "localhost:5000/a/b-c_d.e:v1.2-x", "a__b:x"]
)
def test_valid_tags(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize(
    "tag", ["", "Churn:7", "churn:", "churn:bad tag", "-churn", "churn::7", "churn:" + "x" * 129]
)
def test_bad_tags_are_refused_with_the_rule(tag: str) -> None:
    with pytest.raises(InvalidArgumentError, match="'tag' parameter of yard build must be an image name"):
        check_tag(tag)


def test_cli_errors(tmp_path: Path, build_store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    uri, _ = build_store
    runner = CliRunner()

    def run(*args: str) -> Any:
        r = runner.invoke(app, ["--uri", uri, "build", *args])
        return SimpleNamespace(exit_code=r.exit_code, output=r.output + str(r.exception or ""))

    r = run("clf@production", "-t", "Bad:Tag")
    assert r.exit_code == 1 and "must be an image name" in r.output and "lowercase" in r.output
    r = run("clff@production", "--dockerfile-only", str(tmp_path / "a"))
    assert r.exit_code == 1 and "'clff'" in r.output and "clf" in r.output  # did you mean
    r = run("clf@prod", "--dockerfile-only", str(tmp_path / "b"))
    assert r.exit_code == 1 and "no alias 'prod'" in r.output
    r = run("clf/x", "--dockerfile-only", str(tmp_path / "c"))
    assert r.exit_code == 1 and "not a number" in r.output
    r = run("clf/1")
    assert r.exit_code == 1 and "-t/--tag" in r.output
    r = run("clf/1", "--spec", "x.yaml", "--dockerfile-only", str(tmp_path / "d"))
    assert r.exit_code == 1 and "not both" in r.output
    r = run("clf/1", "-t", "x:1", "--builder", "kaniko")
    assert r.exit_code == 1 and "'builder' parameter of yard build must be one of" in r.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    r = run("clf/1", "--dockerfile-only", str(tmp_path / "full"))
    assert r.exit_code == 1 and "is not empty" in r.output
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep"
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    r = run("clf/1", "-t", "x:1")
    assert (
        r.exit_code == 1
        and "No container builder can run here (docker: not installed; podman: not installed" in r.output
    )


def test_cli_process_prints_the_error_and_exits_1() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "modelyard", "build", "churn@production", "-t", "Churn:7"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1
    assert res.stderr.startswith("Error: The 'tag' parameter of yard build must be an image name")


def test_find_builder_names_what_it_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "buildah").write_text("#!/bin/sh\nexit 0\n")
    (fake / "buildah").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    assert find_builder("auto") == ("buildah", str(fake / "buildah"))
    with pytest.raises(_build.ImageBuildError, match="podman: not installed"):
        find_builder("podman")


def test_cli_dockerfile_only_writes_the_context(
    tmp_path: Path, build_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, mvs = build_store
    fetched: list[Path] = []
    monkeypatch.setattr(
        _build, "_download_wheels", lambda req, wheels, log, platform=None: fetched.append(req)
    )
    out = tmp_path / "image"
    r = CliRunner().invoke(
        app, ["--uri", uri, "build", "clf@production", "--dockerfile-only", str(out), "--json"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["dockerfile"] == str(out / "Dockerfile") and data["builder"] is None
    assert data["models"][0]["manifest_digest"] == mvs["clf1"].manifest_digest
    assert fetched == [out / "requirements.txt"]
    r = CliRunner().invoke(app, ["--uri", uri, "build", "clf/2", "--dockerfile-only", str(tmp_path / "i2")])
    assert r.exit_code == 0 and f"Wrote {tmp_path / 'i2' / 'Dockerfile'}" in r.stdout


def test_labels_name_the_primary_of_the_traffic_policy(build_store: Any) -> None:
    from modelyard.serving import load_spec

    _, mvs = build_store
    spec = load_spec({"models": {"a": "clf/2", "b": "clf/1"}, "traffic": {"kind": "single", "model": "b"}})
    labels = image_labels(
        spec, [(mvs["clf2"], ["clf/2"]), (mvs["clf1"], ["clf/1"])], base_image="b", bake=True
    )
    assert labels["io.modelyard.model.version"] == "1"
    assert labels["io.modelyard.model.manifest-digest"] == mvs["clf1"].manifest_digest


def test_quickstart_chapter_writes_the_dockerfile(tmp_path: Path) -> None:
    from modelyard.quickstart import CHAPTERS, QuickstartContext, chapter_image

    assert "image" in dict(CHAPTERS)
    said: list[str] = []
    ctx = QuickstartContext(uri=str(tmp_path / "store"), say=said.append)
    chapter_image(ctx)  # registers the quickstart model itself when the registry chapter has not run
    dockerfile = Path(ctx.state["image_context"]) / "Dockerfile"
    assert dockerfile.is_file() and said[0].startswith(f"Wrote {dockerfile} for ")
    assert any("USER 10001:10001" in line for line in said)
    assert any("HEALTHCHECK" in line for line in said)
    chapter_image(ctx)  # a rerun replaces the context it wrote
    assert dockerfile.is_file()
