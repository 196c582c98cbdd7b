"""The metadata schema (SQLAlchemy Core). Migrations in ``migrations/versions`` create it.

Every feature package adds its tables to the one :data:`metadata` object in its own
``_schema.py`` module and ships an Alembic migration on its own branch (``down_revision``
pointing at ``0001``); the store upgrades to all heads on open. Times are integer
milliseconds since the epoch (UTC).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "artifacts",
    "experiments",
    "latest_metrics",
    "metadata",
    "metric_curves",
    "metrics",
    "params",
    "runs",
    "tags",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

KEY_LEN = 250
VALUE_LEN = 6000

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY_LEN), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(KEY_LEN), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("parent_id", String(32), nullable=True),
    Column("user", String(KEY_LEN), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("error", Text, nullable=True),
    Column("environment", Text, nullable=True),
    # last sign of life from the run's process (ms; migration 0002); see tracking/_heartbeat.py
    Column("heartbeat_time", BigInteger, nullable=True),
    Index("ix_runs_experiment_id_start_time", "experiment_id", "start_time"),
    Index("ix_runs_parent_id", "parent_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_params_key", "key"),
)

metrics = Table(
    "metrics",
    metadata,
    # No foreign key here on purpose: checking it costs a runs lookup per point (a third of the
    # insert time). TrackingService.write_metrics checks the run once per batch, in the same
    # transaction, and purge_deleted_runs deletes a run's points itself.
    Column("run_id", String(32), nullable=False),
    Column("key", String(KEY_LEN), nullable=False),
    Column("step", BigInteger, nullable=False),
    # NaN is stored as value NULL with is_nan true (SQLite turns NaN into NULL); inf is kept.
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_run_id_key_step", "run_id", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

#: A downsampled copy of each metric series, drawn instead of the series (tracking/_curves.py;
#: migration 0003): ``points`` and ``last_step`` are the series' count and last step when it was made
#: (it is stale, and never drawn, once they differ); ``data`` holds ``format``'s little-endian arrays.
metric_curves = Table(
    "metric_curves",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("points", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("format", Integer, nullable=False),
    # the copy holds every finite point of the series (then drawing it, smoothed or not, is exact)
    Column("whole", Boolean, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY_LEN), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_tags_key", "key"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    # 'file': digest is the file's blob; 'dir': digest is a manifest blob.
    Column("kind", String(8), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_artifacts_digest", "digest"),
)
