"""Pipeline tables: the step cache index and the steps of each pipeline run.

``pipeline_cache``      cache key → output manifest digest, with the key's components
                        (``key_doc``, JSON) so a miss can be explained against the last entry.
``pipeline_step_runs``  one row per step of a pipeline run: its nested tracking run, cache key,
                        hit or miss and why, inputs (upstream node → output digest), output.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, String, Table, Text

from modelyard.store._schema import KEY_LEN, metadata

__all__ = ["pipeline_cache", "pipeline_step_runs"]

pipeline_cache = Table(
    "pipeline_cache",
    metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("pipeline", String(KEY_LEN), nullable=False),
    Column("node", String(KEY_LEN), nullable=False),
    Column("step", String(KEY_LEN), nullable=False),
    Column("output_digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("key_doc", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_pipeline_cache_pipeline_node_created_at", "pipeline", "node", "created_at"),
)

pipeline_step_runs = Table(
    "pipeline_step_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("pipeline_run_id", String(32), nullable=False),
    Column("pipeline", String(KEY_LEN), nullable=False),
    Column("node", String(KEY_LEN), nullable=False),
    Column("step", String(KEY_LEN), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("cache_key", String(64), nullable=True),
    Column("cache_hit", Boolean, nullable=False),
    Column("reason", Text, nullable=True),
    Column("inputs", Text, nullable=True),
    Column("output_digest", String(64), nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("attempts", BigInteger, nullable=False),
    Index("ix_pipeline_step_runs_pipeline_run_id", "pipeline_run_id"),
)
