"""A fake Kubernetes API server on loopback: the few endpoints the rollout target uses, answering
with JSON in the API server's own format (the shapes of tests/deploy/recorded/*.json).

* ``GET/PATCH /api/v1/namespaces/NS/configmaps/NAME`` — the patch is a strategic merge patch; a
  ``metadata.resourceVersion`` in it must match (else 409 Conflict, as the API server answers);
* ``GET /api/v1/namespaces/NS/pods?labelSelector=...`` — the pods, filtered by the selector;
* ``GET /api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH`` — forwarded to the pod's URL (a real
  model server on loopback) or answered from a recorded body.

``rbac``: when set to a Role's ``(namespace, rules)``, every request is authorized against it the
way the API server's RBAC authorizer does (verb from the method and path, resource/subresource,
resourceNames) and refused with 403 otherwise; ``attributes`` lists what each request needed.

``on_patch(text)`` is called with the new spec text: the tests project it into a ConfigMap volume
the way the kubelet does (an atomic swap of the ``..data`` symlink).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

RECORDED = Path(__file__).parent / "recorded"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


_VERBS = {"GET": "get", "PATCH": "patch", "PUT": "update", "DELETE": "delete", "POST": "create"}


def request_attributes(method: str, path: str, query: str = "") -> tuple[str, str, str, str | None]:
    """``(namespace, verb, resource[/subresource], name)`` of a core-API request, as the API
    server's request-info resolver derives them (a GET of a collection is ``list``, or ``watch``)."""
    parts = [p for p in path.split("/") if p]
    assert parts[:2] == ["api", "v1"] and parts[2] == "namespaces", path
    ns, rest = parts[3], parts[4:]
    if len(rest) == 1:
        verb = "watch" if "watch=true" in query else {"GET": "list"}.get(method, _VERBS[method])
        return ns, verb, rest[0], None
    resource = rest[0] if len(rest) == 2 else f"{rest[0]}/{rest[2]}"
    return ns, _VERBS[method], resource, rest[1]


def allowed(role: tuple[str, list[dict[str, Any]]], attrs: tuple[str, str, str, str | None]) -> bool:
    """Whether a Role (its namespace and rules) allows the request ``attrs`` (RBAC's rule match)."""
    ns, verb, resource, name = attrs
    if ns != role[0]:
        return False
    for rule in role[1]:
        names = rule.get("resourceNames") or []
        if (
            "" in rule.get("apiGroups", [])
            and (resource in rule["resources"] or "*" in rule["resources"])
            and (verb in rule["verbs"] or "*" in rule["verbs"])
            and (not names or name in names)
        ):
            return True
    return False


class FakeKube:
    def __init__(self, configmap: dict[str, Any], pods: dict[str, str | dict[str, Any]]) -> None:
        self.configmap = copy.deepcopy(configmap)
        self.pods = pods  # name -> URL of a real server, or a recorded /health/ready body
        self.pod_list = recorded("podlist.json")
        self.requests: list[tuple[str, str]] = []
        self.patches: list[dict[str, Any]] = []
        self.on_patch: Callable[[str], None] | None = None
        self.forbid: str | None = None  # a path prefix answered 403
        self.rbac: tuple[str, list[dict[str, Any]]] | None = None  # (namespace, a Role's rules)
        self.attributes: list[tuple[str, str, str, str | None]] = []  # (namespace, verb, resource, name)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_PATCH(self) -> None:
                fake._handle(self, "PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKube:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def api_client(self) -> Any:
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        return client.ApiClient(cfg)

    def _handle(self, h: Any, method: str) -> None:
        from urllib.parse import unquote

        raw_path, _, query = h.path.partition("?")
        path = unquote(raw_path)  # as the API server does: the client escapes ':' and '/' in names
        self.requests.append((method, h.path))
        attrs = request_attributes(method, path, query)
        self.attributes.append(attrs)
        if self.rbac is not None and not allowed(self.rbac, attrs):
            ns, verb, resource, name = attrs
            h._send(
                403,
                _status(
                    403, "Forbidden", f'{resource} "{name}" is forbidden: cannot {verb} in namespace {ns}'
                ),
            )
            return
        if self.forbid and path.startswith(self.forbid):
            h._send(
                403,
                _status(
                    403,
                    "Forbidden",
                    'configmaps is forbidden: User "system:serviceaccount:ml:yard" '
                    f"cannot {method.lower()} resource",
                ),
            )
            return
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/configmaps/([^/]+)", path)
        if m:
            ns, name = m.groups()
            meta = self.configmap["metadata"]
            if (ns, name) != (meta["namespace"], meta["name"]):
                h._send(404, _status(404, "NotFound", f'configmaps "{name}" not found'))
                return
            if method == "GET":
                h._send(200, self.configmap)
                return
            ctype = h.headers.get("content-type", "")
            length = int(h.headers.get("content-length") or 0)
            patch = json.loads(h.rfile.read(length))
            self.patches.append({"content-type": ctype, "body": patch})
            want = (patch.get("metadata") or {}).get("resourceVersion")
            if want is not None and want != meta["resourceVersion"]:
                h._send(
                    409,
                    _status(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on configmaps "{name}": '
                        "the object has been modified; "
                        "please apply your changes to the latest version and try again",
                    ),
                )
                return
            self.configmap["data"].update(patch.get("data") or {})
            meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
            if self.on_patch is not None:
                self.on_patch(self.configmap["data"]["spec.yaml"])
            h._send(200, self.configmap)
            return
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", path)
        if m:
            from urllib.parse import parse_qs

            selector = parse_qs(query).get("labelSelector", [""])[0]
            wanted = dict(p.split("=", 1) for p in selector.split(",") if p)
            out = copy.deepcopy(self.pod_list)
            out["items"] = [
                p
                for p in out["items"]
                if p["metadata"]["name"] in self.pods
                and all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())
            ]
            h._send(200, out)
            return
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/:]+):(\d+)/proxy/(.*)", path)
        if m:
            _, pod, _, rest = m.groups()
            target = self.pods.get(pod)
            if target is None:
                h._send(404, _status(404, "NotFound", f'pods "{pod}" not found'))
            elif isinstance(target, str):
                r = httpx.get(f"{target}/{rest}", timeout=10)
                h._send(r.status_code, None, raw=r.content)
            else:
                h._send(200, target)
            return
        h._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
