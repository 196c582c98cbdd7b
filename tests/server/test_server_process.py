"""`yard server` as its own process: several workers, kill -9 mid-upload, many concurrent clients."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import blake3
import httpx
import pytest

import modelyard as yard
from modelyard._remote import RemoteClient
from modelyard.tracking._service import TrackingService

ADMIN = "yard_00112233445566aa_" + "k" * 43
pytestmark = pytest.mark.slow


def _src_path() -> str:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def yard_server(
    store: Path, *, workers: int = 1, port: int | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = port or _free_port()
    env = {**os.environ, **(env or {}), "YARD_ADMIN_TOKEN": ADMIN, "PYTHONPATH": _src_path()}  # this checkout
    env.pop("YARD_URI", None)
    log = open(store.parent / f"server-{port}.log", "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelyard",
            "server",
            "--uri",
            str(store),
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            raise RuntimeError((store.parent / f"server-{port}.log").read_text())
        time.sleep(0.1)
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(60)
        log.close()


def test_kill_9_mid_upload_keeps_nothing_partial_and_loses_nothing_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YARD_TOKEN", ADMIN)
    store = tmp_path / "store"
    data = os.urandom(24 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    digest = blake3.blake3(data).hexdigest()
    port = _free_port()
    with yard_server(store, port=port) as (url, proc):
        yard.set_uri(url)
        with yard.start_run(experiment="e", capture_env=False) as run:
            for i in range(1000):
                run.log_metric("x", float(i))
        # acknowledged: the run ended, so its points were written and answered
        sent = {"n": 0}

        def body() -> Iterator[bytes]:
            for i in range(0, len(data), 1 << 20):
                if i >= 8 << 20 and sent["n"] == 0:
                    sent["n"] = i
                    _wait_until_written(url, digest)  # some of the body is on the server's disk...
                    os.killpg(proc.pid, signal.SIGKILL)  # ...then the server dies mid-body
                yield data[i : i + (1 << 20)]

        with pytest.raises(httpx.HTTPError):
            httpx.put(
                f"{url}/api/v1/blobs/{digest}",
                content=body(),
                headers={
                    "Authorization": f"Bearer {ADMIN}",
                    "Upload-Offset": "0",
                    "Upload-Length": str(len(data)),
                },
                timeout=60,
            )
        proc.wait(60)
    blob_files = (
        list((store / "blobs" / "objects").rglob("*")) if (store / "blobs" / "objects").exists() else []
    )
    assert not any(p.name.endswith(digest[2:]) for p in blob_files)  # no partial blob
    with yard_server(store, port=port) as (url, _):
        client = RemoteClient(url, token=ADMIN)
        assert client.blob_head(digest) is None
        resumed_at = int(
            client.request("HEAD", f"/api/v1/uploads/{digest}", idempotent=True).headers["Upload-Offset"]
        )
        assert 0 < resumed_at <= sent["n"]  # what reached the disk is kept, and the upload resumes there
        client.blob_upload(src, digest, len(data))
        got = blake3.blake3()
        for chunk in client.blob_stream(digest):
            got.update(chunk)
        assert got.hexdigest() == digest
        steps = [p.step for p in TrackingService(url).metric_history(run.id, "x")]
        assert steps == list(range(1000))


def _wait_until_written(url: str, digest: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = httpx.head(
            f"{url}/api/v1/uploads/{digest}", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
        )
        if int(r.headers.get("Upload-Offset", "0")) > 0:
            return
        time.sleep(0.05)
    raise AssertionError("the server wrote nothing of the upload in 120 s")


def test_a_wrong_digest_is_refused_and_nothing_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    with yard_server(store) as (url, _):
        claimed = "ab" * 32
        r = httpx.put(
            f"{url}/api/v1/blobs/{claimed}",
            content=b"not those bytes",
            headers={"Authorization": f"Bearer {ADMIN}", "Upload-Length": "15"},
        )
        assert r.status_code == 400 and "hash to" in r.json()["error"]["message"]
        assert RemoteClient(url, token=ADMIN).blob_head(claimed) is None


def test_twenty_clients_ten_thousand_points_each_stored_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YARD_TOKEN", ADMIN)
    store = tmp_path / "store"
    with yard_server(store, workers=2) as (url, _):
        yard.set_uri(url)
        svc = TrackingService(url)
        ids: list[str] = []
        for i in range(20):
            ids.append(svc.create_run(experiment="load", name=f"client-{i}").id)
        errors: list[BaseException] = []

        def client(run_id: str) -> None:
            try:
                code = (
                    "import sys, modelyard as yard\n"
                    "from modelyard.tracking._service import TrackingService\n"
                    "svc = TrackingService(sys.argv[1])\n"
                    "rows = [(sys.argv[2], 'loss', s, s / 7.0, False, 1000 + s) for s in range(10000)]\n"
                    "for i in range(0, 10000, 2500):\n"
                    "    svc.write_metrics(rows[i:i + 2500], rows[i + 2499:i + 2500])\n"
                )
                subprocess.run(
                    [sys.executable, "-c", code, url, run_id],
                    check=True,
                    timeout=600,
                    env={**os.environ, "YARD_TOKEN": ADMIN, "PYTHONPATH": _src_path()},
                )
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(r,)) for r in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(900)
        assert not errors
        for run_id in ids:
            steps = [p.step for p in svc.metric_history(run_id, "loss")]
            assert steps == list(range(10000)), run_id


def _requests_counted(text: str, route: str) -> float:
    """``yard_server_requests_total`` of ``route`` summed over methods and statuses (sample counts)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("yard_server_requests_total{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_of_every_worker_in_one_scrape(tmp_path: Path) -> None:
    """With --workers 2 one scrape of /metrics counts what both workers answered (prometheus-client's
    multiprocess mode over a folder of this server's own, removed when it stops)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    n_threads, per_thread = 8, 25
    with yard_server(tmp_path / "store", workers=2, env={"TMPDIR": str(scratch)}) as (url, _):
        folders = list(scratch.glob("yard-server-metrics-*"))
        assert len(folders) == 1, folders

        def client() -> None:
            for _ in range(per_thread):  # a fresh connection each: the kernel hands them to either worker
                assert httpx.get(f"{url}/health/live", timeout=60).status_code == 200

        threads = [threading.Thread(target=client) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # both workers answered some (each writes its own counter file, named by its pid)
        writers = {p.stem.rsplit("_", 1)[1] for p in folders[0].glob("counter_*.db")}
        assert len(writers) == 2, sorted(p.name for p in folders[0].iterdir())
        # every scrape, whichever worker answers it, counts all the requests
        for _ in range(6):
            text = httpx.get(f"{url}/metrics", timeout=60).text
            assert _requests_counted(text, "/health/live") == n_threads * per_thread
    assert not folders[0].exists()  # removed when the server stopped
