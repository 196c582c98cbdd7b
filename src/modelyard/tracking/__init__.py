"""Experiment tracking: runs with params, step metrics, tags, artifacts and environment."""

from modelyard.tracking._api import delete_run, get_run, init, search_runs, start_run
from modelyard.tracking._records import ArtifactRecord, MetricPoint, RunList, RunRecord, RunStatus
from modelyard.tracking._run import Run, active_run, flush_all
from modelyard.tracking._search import parse_filter
from modelyard.tracking._service import TrackingService

__all__ = [
    "ArtifactRecord",
    "MetricPoint",
    "Run",
    "RunList",
    "RunRecord",
    "RunStatus",
    "TrackingService",
    "active_run",
    "delete_run",
    "flush_all",
    "get_run",
    "init",
    "parse_filter",
    "search_runs",
    "start_run",
]
