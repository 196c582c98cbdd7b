"""A real ``yard server`` on loopback for tests: uvicorn in a thread (see modelyard.server._local)."""

from __future__ import annotations

from modelyard.server._local import serve_in_thread as running_server

__all__ = ["running_server"]
