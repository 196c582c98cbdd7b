"""The web UI door: server-rendered pages over the services, served by ``yard server`` at ``/``.

Pages call the services in this process as the logged-in user (``_rpc.current_principal``), with
the same role check the HTTP API applies before each operation, so a page can show nothing and do
nothing its user could not do through the API. Templates are in ``modelyard/ui/templates/web``,
charts come from :mod:`modelyard.ui`, and the one script is ``modelyard/ui/static/yard.js``.
"""

from modelyard.webui._routes import mount

__all__ = ["mount"]
