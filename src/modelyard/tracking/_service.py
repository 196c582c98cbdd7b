"""Tracking service: experiments and runs in the metadata store, artifacts in the blob store."""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard._rpc import current_principal, op, service
from modelyard._shared import new_run_id, now_ms
from modelyard._workspace import WorkspaceService
from modelyard.errors import (
    AlreadyExistsError,
    BlobError,
    BlobNotFoundError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    did_you_mean,
    invalid_param,
)
from modelyard.store._schema import (
    artifacts,
    experiments,
    latest_metrics,
    metric_curves,
    metrics,
    params,
    runs,
    tags,
)
from modelyard.store._store import one_transaction
from modelyard.tracking import _curves, _heartbeat
from modelyard.tracking._env import redact_environment
from modelyard.tracking._history import SERIES_ORDER
from modelyard.tracking._ids import _default_name
from modelyard.tracking._ingest import MetricColumns, MetricRow, store_points
from modelyard.tracking._records import ArtifactRecord, MetricPoint, RunList, RunRecord, RunStatus
from modelyard.tracking._rows import _param_rows, _tag_rows, param_conflict, run_records
from modelyard.tracking._search import _order_fields as order_fields
from modelyard.tracking._search import build_search
from modelyard.tracking._table import KINDS, RunTable, table_runs
from modelyard.tracking._validation import check_key

__all__ = ["MetricRow", "TrackingService"]

MAX_SEARCH_LIMIT = 50_000


@service("tracking")
class TrackingService(WorkspaceService):
    """Experiments, runs, params, metrics, tags and artifacts of one workspace."""

    # -- experiments ---------------------------------------------------------------------
    @op("writer", on=("experiment", "name"))
    def get_or_create_experiment(self, name: str) -> int:
        """Return the id of experiment ``name``, creating it when missing."""
        check_key(name, "experiment name")

        def fn(conn: Connection) -> int:
            row = conn.execute(sa.select(experiments.c.id).where(experiments.c.name == name)).first()
            if row:
                return int(row[0])
            return int(
                conn.execute(
                    experiments.insert().values(name=name, created_at=now_ms()).returning(experiments.c.id)
                ).scalar_one()
            )

        try:
            return self.store.write(fn)
        except sa.exc.IntegrityError:  # created by another process at the same moment
            return self.get_experiment_id(name)

    @op("writer", on=("experiment", "name"))
    def create_experiment(self, name: str, description: str | None = None) -> int:
        """Create an experiment; raise AlreadyExistsError when the name is taken."""
        check_key(name, "experiment name")
        try:
            return self.store.write(
                lambda conn: int(
                    conn.execute(
                        experiments.insert()
                        .values(name=name, description=description, created_at=now_ms())
                        .returning(experiments.c.id)
                    ).scalar_one()
                )
            )
        except sa.exc.IntegrityError:
            raise AlreadyExistsError(f"Experiment {name!r} already exists. Pick another name.") from None

    @op("reader")
    def get_experiment_id(self, name: str) -> int:
        """The id of an existing experiment (NotFoundError with a suggestion otherwise)."""
        with self.store.read() as conn:
            return _experiment_id(conn, name)

    @op("reader")
    def list_experiments(self) -> list[dict[str, Any]]:
        """Experiments with their run counts."""
        with self.store.read() as conn:
            q = (
                sa.select(
                    experiments.c.id,
                    experiments.c.name,
                    experiments.c.description,
                    experiments.c.created_at,
                    sa.func.count(runs.c.id).label("runs"),
                )
                .select_from(
                    experiments.outerjoin(
                        runs, sa.and_(runs.c.experiment_id == experiments.c.id, runs.c.deleted.is_(False))
                    )
                )
                .group_by(experiments.c.id)
                .order_by(experiments.c.name)
            )
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- runs ------------------------------------------------------------------------------
    @op("writer", on=("experiment", "experiment"))
    def create_run(
        self,
        *,
        experiment: str,
        name: str | None = None,
        parent_id: str | None = None,
        user: str | None = None,
        environment: Mapping[str, Any] | None = None,
        params_: Mapping[str, Any] | None = None,
        tags_: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Insert a new running run; params and tags are validated before anything is written.

        On a team server the run's user is the authenticated caller, whatever the client sent."""
        who = current_principal.get()
        if who is not None:
            user = who.name
        run_id = new_run_id()
        name = name or _default_name(run_id)
        check_key(name, "run name")
        p_rows = _param_rows(run_id, params_ or {})
        t_rows = _tag_rows(run_id, tags_ or {})
        exp_id = self.get_or_create_experiment(
            experiment
        )  # after validation: a rejected call creates nothing
        start = now_ms()

        def fn(conn: Connection) -> None:
            if parent_id is not None:
                if not conn.execute(sa.select(runs.c.id).where(runs.c.id == parent_id)).first():
                    raise NotFoundError(f"Parent run {parent_id} does not exist.")
            conn.execute(
                runs.insert().values(
                    id=run_id,
                    experiment_id=exp_id,
                    name=name,
                    status=RunStatus.RUNNING.value,
                    start_time=start,
                    heartbeat_time=start,
                    parent_id=parent_id,
                    user=user,
                    deleted=False,
                    environment=json.dumps(redact_environment(environment or {}), sort_keys=True),
                )
            )
            if p_rows:
                conn.execute(params.insert(), p_rows)
            if t_rows:
                conn.execute(tags.insert(), t_rows)

        self.store.write(fn)
        return self.get_run(run_id)

    @op("reader")
    def resolve_run_id(self, run_id: str) -> str:
        """Expand a unique prefix (at least 6 characters) to a full run id."""
        if not isinstance(run_id, str) or not run_id:
            raise invalid_param("run_id", "resolve_run_id", "a run id string", run_id)
        with self.store.read() as conn:
            if len(run_id) == 32 and conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first():
                return run_id
            if len(run_id) >= 6:
                found = [
                    r[0]
                    for r in conn.execute(
                        sa.select(runs.c.id)
                        .where(runs.c.id.like(run_id.replace("%", "").replace("_", "") + "%"))
                        .limit(3)
                    )
                ]
                if len(found) == 1:
                    return str(found[0])
                if len(found) > 1:
                    raise InvalidArgumentError(
                        f"Run id prefix {run_id!r} matches several runs ({', '.join(found)}...). "
                        f"Give more characters."
                    )
        raise NotFoundError(f"Run {run_id!r} does not exist. List runs with `yard runs list`.")

    def _run_row(self, conn: Connection, run_id: str) -> Any:
        row = conn.execute(
            sa.select(runs, experiments.c.name.label("experiment_name"))
            .select_from(runs.join(experiments, experiments.c.id == runs.c.experiment_id))
            .where(runs.c.id == run_id)
        ).first()
        if row is None:
            raise NotFoundError(f"Run {run_id!r} does not exist. List runs with `yard runs list`.")
        return row

    @op("reader", on=("run", "run_id"))
    def get_run(self, run_id: str) -> RunRecord:
        """Everything stored about one run."""
        run_id = self.resolve_run_id(run_id)
        with self.store.read() as conn:
            row = self._run_row(conn, run_id)
            return run_records(conn, [row])[0]

    def _require_running(self, conn: Connection, run_id: str) -> None:
        row = conn.execute(sa.select(runs.c.status, runs.c.deleted).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"Run {run_id!r} does not exist.")
        if row.status != RunStatus.RUNNING.value:
            raise ConflictError(
                f"Run {run_id} is {row.status}; nothing more can be logged to it. "
                "Start a new run, or resume this one with yard.start_run(run_id=...)."
            )

    @op("writer", on=("run", "run_id"))
    @one_transaction
    def end_run(self, run_id: str, status: RunStatus = RunStatus.FINISHED, error: str | None = None) -> None:
        """Move a running run to an end state (checked transition)."""
        status = RunStatus(status)

        def fn(conn: Connection) -> None:
            row = conn.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).first()
            if row is None:
                raise NotFoundError(f"Run {run_id!r} does not exist.")
            RunStatus(row.status).check_transition(status, run_id)
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status=status.value, end_time=now_ms(), error=error)
            )
            # its series are final now: store their drawn copies (tracking/_curves.py)
            _curves.store_run_copies(conn, run_id)

        self.store.write(fn)

    @op("writer", on=("run", "run_id"))
    @one_transaction
    def reopen_run(self, run_id: str) -> None:
        """Set an ended (or lost) run back to running (to resume logging)."""
        self.store.write(
            lambda conn: conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(
                    status=RunStatus.RUNNING.value,
                    end_time=None,
                    error=None,
                    heartbeat_time=_heartbeat.clock(),
                )
            )
        )

    @op("writer", on=("run", "run_ids"))
    @one_transaction
    def heartbeat(self, run_ids: Sequence[str], now: int | None = None) -> None:
        """Stamp running runs (and their running children, which have no process of their own) as alive."""
        ids = list(run_ids)
        if not ids:
            return
        when = _heartbeat.clock() if now is None else now

        def fn(conn: Connection) -> None:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                conn.execute(
                    runs.update()
                    .where(
                        sa.or_(runs.c.id.in_(chunk), runs.c.parent_id.in_(chunk)),
                        runs.c.status == RunStatus.RUNNING.value,
                    )
                    .values(heartbeat_time=when)
                )

        self.store.write(fn)

    @op("writer", on=("run", "run_id"))
    @one_transaction
    def delete_run(self, run_id: str, *, restore: bool = False) -> None:
        """Soft-delete (or restore) a run and its nested runs; ``yard gc`` purges deleted runs later."""
        run_id = self.resolve_run_id(run_id)

        def fn(conn: Connection) -> None:
            ids = [run_id]
            frontier = [run_id]
            while frontier:
                children = [
                    r[0] for r in conn.execute(sa.select(runs.c.id).where(runs.c.parent_id.in_(frontier)))
                ]
                ids.extend(children)
                frontier = children
            conn.execute(runs.update().where(runs.c.id.in_(ids)).values(deleted=not restore))

        self.store.write(fn)

    # -- params / tags -------------------------------------------------------------------------
    @op("writer", on=("run", "run_id"))
    @one_transaction
    def log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        """Log params; the same key with a different value is a ConflictError and nothing is written."""
        rows = _param_rows(run_id, values)
        if not rows:
            return

        def fn(conn: Connection) -> None:
            self._require_running(conn, run_id)
            keys = [r["key"] for r in rows]
            existing = {
                r.key: r.value
                for r in conn.execute(
                    sa.select(params.c.key, params.c.value).where(
                        params.c.run_id == run_id, params.c.key.in_(keys)
                    )
                )
            }
            changed = [
                (r["key"], existing[r["key"]], r["value"])
                for r in rows
                if r["key"] in existing and existing[r["key"]] != r["value"]
            ]
            if changed:
                raise param_conflict(run_id, *changed[0])
            new_rows = [r for r in rows if r["key"] not in existing]
            if new_rows:
                conn.execute(params.insert(), new_rows)

        self.store.write(fn)

    @op("writer", on=("run", "run_id"))
    @one_transaction
    def set_tags(self, run_id: str, values: Mapping[str, Any]) -> None:
        """Set tags (a tag can be overwritten)."""
        rows = _tag_rows(run_id, values)
        if not rows:
            return

        def fn(conn: Connection) -> None:
            row = conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first()
            if row is None:
                raise NotFoundError(f"Run {run_id!r} does not exist.")
            conn.execute(
                tags.delete().where(tags.c.run_id == run_id, tags.c.key.in_([r["key"] for r in rows]))
            )
            conn.execute(tags.insert(), rows)

        self.store.write(fn)

    @op("writer", on=("run", "run_id"))
    @one_transaction
    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag."""
        self.store.write(
            lambda conn: conn.execute(tags.delete().where(tags.c.run_id == run_id, tags.c.key == key))
        )

    # -- metrics -----------------------------------------------------------------------------------
    @op("writer", on=("run", "rows.0 latest.0"))
    @one_transaction
    def write_metrics(self, rows: Sequence[MetricRow], latest: Iterable[MetricRow]) -> None:
        """Insert metric points and advance the latest value per key (used by the run's flusher)."""
        store_points(self.store, rows, list(latest))

    @op("writer", on=("run", "run_id"))
    @one_transaction
    def write_metric_columns(self, run_id: str, points: MetricColumns, latest: MetricColumns) -> None:
        """Insert one run's metric points sent as columns (how a flush crosses the network: about half
        the bytes of rows, parsed without an object per point) and advance the latest value per key."""
        store_points(self.store, points.rows(run_id), latest.rows(run_id), run_ids=[run_id])

    def store_metric_batch(self, run_id: str, rows: Sequence[MetricRow], latest: Sequence[MetricRow]) -> None:
        """A flush of run ``run_id``'s points: rows to a local store, columns to a server."""
        if self.ws.remote is None:
            self.write_metrics(rows, latest)
        else:
            self.write_metric_columns(run_id, MetricColumns.from_rows(rows), MetricColumns.from_rows(latest))

    @op("reader", on=("run", "run_id"))
    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of one metric, ordered by step then time."""
        run_id = self.resolve_run_id(run_id)
        with self.store.read() as conn:
            q = (
                sa.select(metrics.c.step, metrics.c.value, metrics.c.is_nan, metrics.c.timestamp)
                .where(metrics.c.run_id == run_id, metrics.c.key == key)
                .order_by(*SERIES_ORDER)
            )
            return [
                MetricPoint(key, float("nan") if r.is_nan else float(r.value), int(r.step), int(r.timestamp))
                for r in conn.execute(q)
            ]

    @op("reader", on=("run", "run_id"))
    def latest_steps(self, run_id: str) -> dict[str, int]:
        """The last step stored for each metric of a run (where a resumed run carries on)."""
        with self.store.read() as conn:
            q = sa.select(latest_metrics.c.key, latest_metrics.c.step).where(
                latest_metrics.c.run_id == run_id
            )
            return {r.key: int(r.step) for r in conn.execute(q)}

    @op("reader", on=("run", "run_id"))
    def metric_keys(self, run_id: str) -> list[str]:
        """Names of the metrics a run logged."""
        with self.store.read() as conn:
            return [
                r[0]
                for r in conn.execute(
                    sa.select(latest_metrics.c.key)
                    .where(latest_metrics.c.run_id == run_id)
                    .order_by(latest_metrics.c.key)
                )
            ]

    # -- artifacts ------------------------------------------------------------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactRecord:
        """Store a file or a whole folder as an artifact of the run.

        The artifact's path in the run is ``artifact_path/<name>`` (``<name>`` alone when no
        ``artifact_path``). Logging the same path again replaces it.
        """
        src = Path(local_path)
        if not src.exists():
            raise NotFoundError(f"Cannot log artifact {str(src)!r}: the path does not exist.")
        rel = PurePosixPath(artifact_path) / src.name if artifact_path else PurePosixPath(src.name)
        rel_s = check_key(rel.as_posix(), "artifact path")
        self.require_running(run_id)
        if src.is_dir():
            digest, size = self.ws.blobs.put_tree(src)
            kind = "dir"
        else:
            digest, size = self.ws.blobs.put_file(src)
            kind = "file"
        return self.record_artifact(run_id, rel_s, kind, digest, size)

    def log_bytes(self, run_id: str, data: bytes, artifact_path: str) -> ArtifactRecord:
        """Store bytes as a file artifact at ``artifact_path``."""
        check_key(artifact_path, "artifact path")
        self.require_running(run_id)
        digest = self.ws.blobs.put_bytes(data)
        return self.record_artifact(run_id, artifact_path, "file", digest, len(data))

    @op("reader", on=("run", "run_id"))
    def require_running(self, run_id: str) -> None:
        """Refuse (ConflictError) unless the run exists and is running."""
        with self.store.read() as conn:
            self._require_running(conn, run_id)

    @op("writer", on=("run", "run_id"))
    def record_artifact(self, run_id: str, path: str, kind: str, digest: str, size: int) -> ArtifactRecord:
        """Record a stored blob (``kind`` file) or manifest (``dir``) as the run's artifact at ``path``."""
        if kind not in ("file", "dir"):
            raise invalid_param("kind", "record_artifact", "file or dir", kind)
        check_key(path, "artifact path")
        if not self.ws.blobs.exists(digest):
            raise BlobNotFoundError(
                f"Cannot record artifact {path!r}: blob {digest} is not stored; upload it first."
            )
        created = now_ms()

        def fn(conn: Connection) -> None:
            self._require_running(conn, run_id)
            conn.execute(artifacts.delete().where(artifacts.c.run_id == run_id, artifacts.c.path == path))
            conn.execute(
                artifacts.insert().values(
                    run_id=run_id, path=path, kind=kind, digest=digest, size=size, created_at=created
                )
            )

        self.store.write(fn)
        return ArtifactRecord(path, kind, digest, size, created)

    def download_artifact(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        """Write an artifact (file or folder) to ``dest`` after verifying its digests.

        When ``dest`` is an existing folder the artifact goes inside it under its own name, so
        downloading a folder artifact into ``.`` makes ``./<name>/`` instead of spilling its files.
        """
        run = self.get_run(run_id)
        match = [a for a in run.artifacts if a.path == path]
        if not match:
            raise NotFoundError(
                f"Run {run.id} has no artifact {path!r}."
                + did_you_mean(path, [a.path for a in run.artifacts])
            )
        art = match[0]
        dest = Path(dest)
        if dest.is_dir():  # an existing folder receives the artifact under its own name (file or folder)
            dest = dest / PurePosixPath(path).name
            if dest.is_symlink():
                raise BlobError(
                    f"Refused to write {str(dest)!r}: it is a symbolic link (to "
                    f"{os.readlink(dest)!r}) and a download "
                    "never writes through a link. Remove the link or choose another destination."
                )
        if art.kind == "dir":
            return self.ws.blobs.get_tree(art.digest, dest)
        return self.ws.blobs.get_file(art.digest, dest)

    # -- search --------------------------------------------------------------------------------------
    @op("reader")
    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int = 100,
        include_deleted: bool = False,
        parent_id: str | None = None,
        page_token: str | None = None,
    ) -> RunList:
        """Runs matching a filter, ordered and limited (see :mod:`modelyard.tracking._search`).

        ``page_token``: from ``next_page_token(order_by, last run of the previous page)``; the page
        after that run (keyset pagination: as fast deep in the list as on its first page).
        """
        self._check_limit(limit, "search_runs")
        with self.store.read() as conn:  # one transaction: the experiments' ids, the page, its rows
            rows = self._page_rows(
                conn, experiment, filter, order_by, limit, include_deleted, parent_id, page_token
            )
            return RunList(run_records(conn, rows))

    def run_table(
        self,
        experiment: str,
        *,
        columns: Sequence[str] | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> RunTable:
        """A page of the web UI's runs table: the runs :meth:`search_runs` finds (not deleted), each
        with its attributes and only the values of ``columns`` (``metrics.KEY``, ``params.KEY``,
        ``tags.KEY``; None: every value; the order's field is read too, for the next page's token),
        and the keys of each kind the page's runs have. Needs the role of ``search_runs`` (the page
        checks it)."""
        self._check_limit(limit, "run_table")
        wanted: dict[str, set[str]] | None = None
        if columns is not None:
            picked = [c.partition(".")[::2] for c in columns]
            picked += [(f.kind, f.key) for f, _ in order_fields(order_by)]
            wanted = {k: {key for kind, key in picked if kind == k} for k in KINDS}
        with self.store.read() as conn:
            rows = self._page_rows(conn, experiment, filter, order_by, limit + 1, False, None, page_token)
            return table_runs(conn, rows, limit, wanted)

    @staticmethod
    def _check_limit(limit: Any, caller: str) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise invalid_param("limit", caller, f"an int in the range [1, {MAX_SEARCH_LIMIT}]", limit)

    def _page_rows(
        self,
        conn: Connection,
        experiment: str | Sequence[str] | None,
        filter: str | None,
        order_by: Sequence[str] | str | None,
        limit: int,
        include_deleted: bool,
        parent_id: str | None,
        page_token: str | None,
    ) -> list[Any]:
        """The ``runs`` rows (with ``experiment_name``) of one search page, at most ``limit``."""
        ids = None
        if experiment is not None:
            names = [experiment] if isinstance(experiment, str) else list(experiment)
            ids = [_experiment_id(conn, n) for n in names]
        queries, walks = build_search(
            filter,
            experiment_ids=ids,
            dialect=self.store.dialect,
            order_by=order_by,
            page_token=page_token,
            include_deleted=include_deleted,
            parent_id=parent_id,
        )
        if walks and self.store.dialect == "postgresql":
            # a walk reads a few hundred index entries and stops: starting parallel workers for
            # it cost more than the walk (60 ms without, 230 ms with, on 100,000 runs)
            conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
        rows: list[Any] = []
        for q in queries:
            rows += conn.execute(q.limit(limit - len(rows))).all()
            if len(rows) >= limit:
                break
        return rows

    # -- maintenance ----------------------------------------------------------------------------------
    @op("admin")
    def purge_deleted_runs(self) -> int:
        """Permanently remove soft-deleted runs and their rows; return how many."""

        def fn(conn: Connection) -> int:
            ids = [r[0] for r in conn.execute(sa.select(runs.c.id).where(runs.c.deleted.is_(True)))]
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                for table in (metrics, metric_curves, latest_metrics, params, tags, artifacts):
                    conn.execute(table.delete().where(table.c.run_id.in_(chunk)))
                conn.execute(runs.update().where(runs.c.parent_id.in_(chunk)).values(parent_id=None))
                conn.execute(runs.delete().where(runs.c.id.in_(chunk)))
            return len(ids)

        return self.store.write(fn)


def _experiment_id(conn: Connection, name: str) -> int:
    row = conn.execute(sa.select(experiments.c.id).where(experiments.c.name == name)).first()
    if row:
        return int(row[0])
    names = [r[0] for r in conn.execute(sa.select(experiments.c.name))]
    hint = did_you_mean(name, names) or (
        f" Known experiments: {', '.join(sorted(names)[:10])}." if names else " No experiment exists yet."
    )
    raise NotFoundError(f"Experiment {name!r} does not exist.{hint}")


def format_exception(exc: BaseException) -> str:
    """The traceback text stored on a failed run."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-20000:]
