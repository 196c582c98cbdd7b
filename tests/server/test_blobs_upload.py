"""The server hashes an upload while it streams in (one pass) and keeps it only when the digest matches,
across a resumed upload too (the part already on disk is hashed first); a mismatch keeps nothing."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import httpx

from modelyard._remote import RemoteClient


def _put(url: str, digest: str, body: bytes, offset: int, total: int) -> httpx.Response:
    return httpx.put(
        f"{url}/api/v1/blobs/{digest}",
        content=body,
        headers={
            "Authorization": f"Bearer {os.environ['YARD_TOKEN']}",
            "Upload-Offset": str(offset),
            "Upload-Length": str(total),
        },
        timeout=60,
    )


def test_an_upload_in_two_parts_is_hashed_across_the_resume(server_uri: str) -> None:
    data = os.urandom(3 << 20) + b"tail"  # past the 1 MiB write size, not a multiple of it
    digest = blake3.blake3(data).hexdigest()
    cut = (1 << 20) + 12345
    first = _put(server_uri, digest, data[:cut], 0, len(data))
    assert first.status_code == 202 and first.headers["Upload-Offset"] == str(cut)
    client = RemoteClient(server_uri)
    assert client.blob_head(digest) is None  # not a blob until all of it arrived and matched
    done = _put(server_uri, digest, data[cut:], cut, len(data))
    assert done.status_code == 201, done.text
    assert b"".join(client.blob_stream(digest)) == data


def test_a_resumed_upload_with_other_bytes_is_refused_and_nothing_is_kept(
    server_uri: str, tmp_path: Path
) -> None:
    data = os.urandom(2 << 20)
    digest = blake3.blake3(data).hexdigest()
    assert _put(server_uri, digest, data[:1000], 0, len(data)).status_code == 202
    other = bytearray(data[1000:])
    other[-1] ^= 1  # one bit differs, in the last byte
    refused = _put(server_uri, digest, bytes(other), 1000, len(data))
    assert refused.status_code == 400 and "hash to" in refused.json()["error"]["message"]
    client = RemoteClient(server_uri)
    assert client.blob_head(digest) is None
    # the partial upload went too: a new attempt starts from byte 0 and then succeeds
    assert client._upload_offset(digest) == 0
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    client.blob_upload(src, digest, len(data))
    assert client.blob_head(digest) == len(data)
