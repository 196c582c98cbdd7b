"""Cache keys of steps, the cache index, and why a step hits or misses.

The cache key of a node is the blake3 digest of the canonical JSON *key document*::

    {"v": 1,
     "step": "train",
     "code": {"pkg.mod.train": <digest>, "pkg.helpers.clean": <digest>, ...},   # _codehash
     "args": {"features": {"$output": <upstream output manifest digest>}, "lr": 0.05},
     "env": {"scikit-learn": "1.9.0"},                                          # declared env
     "output": {"serializer": "auto", "allow_pickle": false, "serializers": {...versions}}}

Input artifacts enter through the content digest of the upstream output, so an upstream step
that reruns and produces the same bytes leaves its downstream cached. The key document is
stored with each cache entry; a miss is explained by diffing it against the node's latest entry.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from modelyard.blobs import hash_bytes
from modelyard.pipelines._codehash import code_fingerprint
from modelyard.pipelines._graph import Node, Ref, substitute
from modelyard.pipelines._schema import pipeline_cache
from modelyard.pipelines._serializers import SERIALIZERS, get_serializer

__all__ = ["CacheEntry", "explain_miss", "explain_miss_among", "key_document", "latest_entries", "lookup"]

KEY_VERSION = 1


def _env_versions(packages: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pkg in packages:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


_serializer_versions: dict[str, str] = {}


def _output_spec(node: Node) -> dict[str, Any]:
    if not _serializer_versions:
        _serializer_versions.update({n: get_serializer(n).version for n in SERIALIZERS})
    return {
        "serializer": node.spec.serializer or "auto",
        "allow_pickle": node.spec.allow_pickle,
        "serializers": dict(_serializer_versions),
    }


def key_document(
    node: Node, input_digests: Mapping[str, str], datasets: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The key document of ``node`` given the output digests of its upstream nodes.

    ``datasets`` maps each dataset reference the node reads to its resolved ``DatasetVersion``;
    the key holds the version's manifest digest.
    """

    def ds(d: Any) -> dict[str, Any]:
        v = (datasets or {})[d.ref]
        return {"$dataset": v.ref, "digest": v.manifest_digest, "engine": d.engine, "columns": d.columns}

    args = substitute(node.arguments, lambda r: {"$output": input_digests[r.node_id]}, ds)
    return {
        "v": KEY_VERSION,
        "step": node.step,
        "code": code_fingerprint(node.fn),
        "args": args,
        "env": _env_versions(node.spec.env),
        "output": _output_spec(node),
    }


def cache_key(doc: Mapping[str, Any]) -> str:
    """blake3 of the canonical JSON of a key document."""
    return hash_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=True).encode())


@dataclass
class CacheEntry:
    """A row of the cache index (crosses the server API as JSON)."""

    key: str
    node: str
    output_digest: str
    size: int
    run_id: str | None
    doc: dict[str, Any]
    created_at: int

    @classmethod
    def from_row(cls, row: Any) -> CacheEntry:
        return cls(
            key=row.cache_key,
            node=row.node,
            output_digest=row.output_digest,
            size=int(row.size),
            run_id=row.run_id,
            doc=json.loads(row.key_doc),
            created_at=int(row.created_at),
        )


def lookup(conn: Any, key: str) -> CacheEntry | None:
    row = conn.execute(sa.select(pipeline_cache).where(pipeline_cache.c.cache_key == key)).first()
    return CacheEntry.from_row(row) if row is not None else None


def latest_entries(conn: Any, pipeline: str, node: str, limit: int = 20) -> list[CacheEntry]:
    """The node's most recent cache entries, newest first."""
    rows = conn.execute(
        sa.select(pipeline_cache)
        .where(pipeline_cache.c.pipeline == pipeline, pipeline_cache.c.node == node)
        .order_by(pipeline_cache.c.created_at.desc())
        .limit(limit)
    ).all()
    return [CacheEntry.from_row(r) for r in rows]


def explain_miss_among(node: Node, doc: Mapping[str, Any], entries: list[CacheEntry]) -> str:
    """Explain a miss against the closest recent entry (fewest differences; newest on ties)."""
    if not entries:
        return "never run before"
    best = min(enumerate(entries), key=lambda ie: (explain_miss(node, doc, ie[1]).count(";"), ie[0]))[1]
    return explain_miss(node, doc, best)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, allow_nan=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _outputs_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        if set(value) == {"$output"}:
            return [value["$output"]]
        return [d for v in value.values() for d in _outputs_in(v)]
    if isinstance(value, list | tuple):
        return [d for v in value for d in _outputs_in(v)]
    return []


def explain_miss(node: Node, doc: Mapping[str, Any], previous: CacheEntry | None) -> str:
    """Why ``node`` cannot use the cache: what differs from its latest cache entry."""
    if previous is None:
        return "never run before"
    old = previous.doc
    reasons: list[str] = []
    step_fn = next(iter(doc["code"]), None)
    old_code, new_code = old.get("code", {}), doc["code"]
    for name in new_code:
        if name in old_code and old_code[name] != new_code[name]:
            short = name.rsplit(".", 1)[-1]
            if name == step_fn:
                reasons.append(f"code of {node.step} changed")
            elif name.endswith("(constant)"):
                reasons.append(f"constant {name.split('.')[-1].replace(' (constant)', '')} changed")
            else:
                reasons.append(f"code of {short} (used by {node.step}) changed")
    added = [n.rsplit(".", 1)[-1] for n in new_code if n not in old_code]
    removed = [n.rsplit(".", 1)[-1] for n in old_code if n not in new_code]
    if added:
        reasons.append(f"code of {node.step} now references {', '.join(added)}")
    if removed:
        reasons.append(f"code of {node.step} no longer references {', '.join(removed)}")
    old_args, new_args = old.get("args", {}), doc["args"]
    for name in sorted(set(old_args) | set(new_args)):
        a, b = old_args.get(name, "<absent>"), new_args.get(name, "<absent>")
        if a == b:
            continue
        ins_a, ins_b = _outputs_in(a), _outputs_in(b)
        if (isinstance(a, dict) and "$dataset" in a) or (isinstance(b, dict) and "$dataset" in b):
            ra = a.get("$dataset", "-") if isinstance(a, dict) else _short(a)
            rb = b.get("$dataset", "-") if isinstance(b, dict) else _short(b)
            reasons.append(
                f"dataset {name} changed: {ra} → {rb}" if ra != rb else f"dataset {name} read differently"
            )
        elif ins_a or ins_b:
            src = [
                u
                for u in node.upstream
                if any(isinstance(r, Ref) and r.node_id == u for r in _refs(node.arguments.get(name)))
            ]
            reasons.append(f"input {name} changed" + (f" (new output of {', '.join(src)})" if src else ""))
        else:
            reasons.append(f"param {name} changed: {_short(a)} → {_short(b)}")
    for pkg in sorted(set(old.get("env", {})) | set(doc["env"])):
        a, b = old.get("env", {}).get(pkg), doc["env"].get(pkg)
        if a != b:
            reasons.append(f"package {pkg} changed: {a or 'not declared'} → {b or 'not declared'}")
    if old.get("output") != doc["output"]:
        reasons.append("output spec changed (serializer options or versions)")
    if old.get("v") != doc["v"]:
        reasons.append("cache key format changed")
    return "; ".join(reasons) or "no cache entry for this key"


def _refs(value: Any) -> list[Ref]:
    from modelyard.pipelines._graph import iter_refs

    return list(iter_refs(value))
