"""Prometheus metrics of the team server (one registry per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["ServerMetrics"]


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "yard_server_requests",
            "HTTP requests answered, by route template, method and status class.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "yard_server_request_seconds",
            "Time to answer a request, by route template.",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.auth_failures = Counter(
            "yard_server_auth_failures",
            "Requests refused for a missing or bad token.",
            registry=self.registry,
        )
