"""The server over an S3 blob location: moto's S3 server on loopback stands in for S3.

moto (``moto[server]``, PyPI) rather than s3rver (npm): it is a Python package the test extra
installs like everything else, and it implements presigned URLs the way botocore signs them. It is
an emulator, not S3: consistency, limits and errors of the real service are not tested here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import modelyard as yard
from modelyard.server import ServerSettings, create_app
from modelyard.server._users import AuthService
from modelyard.tracking._service import TrackingService
from yard_server_harness import running_server


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("moto_server")
    if exe is None:
        pytest.fail("moto_server is missing: pip install -e '.[test]' installs moto[server]")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(endpoint, timeout=5)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.1)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("artifacts")
    try:
        yield "s3://artifacts/yard"
    finally:
        proc.terminate()
        proc.wait(30)
        s3fs.S3FileSystem.clear_instance_cache()


@pytest.mark.parametrize("presign", [False, True], ids=["streamed", "presigned"])
def test_artifacts_through_a_server_on_s3(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, presign: bool
) -> None:
    store = str(tmp_path / "store")
    auth = AuthService(store)
    auth.add_user("ann", "writer")
    monkeypatch.setenv("YARD_TOKEN", auth.create_token("ann", expires=None)["token"])
    app = create_app(ServerSettings(uri=store, blob_uri=s3, presign=presign))
    data = os.urandom(3 << 20)
    (tmp_path / "weights.bin").write_bytes(data)
    with running_server(app) as url:
        assert httpx.get(f"{url}/api/v1/version").json()["presign"] is presign
        yard.set_uri(url)
        with yard.start_run(experiment="s3", capture_env=False) as run:
            art = run.log_artifact(tmp_path / "weights.bin")
        import s3fs

        fs = s3fs.S3FileSystem()
        assert fs.cat_file(f"artifacts/yard/objects/{art.digest[:2]}/{art.digest[2:]}") == data
        assert not fs.exists("artifacts/yard/uploads") or fs.ls("artifacts/yard/uploads") == []
        out = tmp_path / "out"
        out.mkdir()
        got = TrackingService(url).download_artifact(run.id, "weights.bin", out)
        assert got.read_bytes() == data
        token = os.environ["YARD_TOKEN"]
        r = httpx.get(f"{url}/api/v1/blobs/{art.digest}", headers={"Authorization": f"Bearer {token}"})
        if presign:
            assert r.status_code == 307 and "Signature=" in r.headers["Location"]
        else:
            assert r.status_code == 200 and r.content == data


def test_a_presigned_upload_with_other_bytes_is_not_kept(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(tmp_path / "store")
    auth = AuthService(store)
    auth.add_user("ann", "writer")
    token = auth.create_token("ann", expires=None)["token"]
    app = create_app(ServerSettings(uri=store, blob_uri=s3, presign=True))
    digest = "cd" * 32
    with (
        running_server(app) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c,
    ):
        grant = c.post(f"/api/v1/uploads/{digest}/presign").json()
        assert httpx.put(grant["url"], content=b"something else").status_code == 200
        r = c.post(f"/api/v1/uploads/{digest}/commit")
        assert r.status_code == 400 and "hash to" in r.json()["error"]["message"]
        assert c.head(f"/api/v1/blobs/{digest}").status_code == 404
