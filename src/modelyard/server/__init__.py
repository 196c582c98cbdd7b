"""The modelyard team server: ``yard server`` (HTTP API over every service, users, tokens, roles)."""

from modelyard.server._app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
