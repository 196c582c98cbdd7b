"""``Run.log_model``: the registry attaches it to tracking's :class:`~modelyard.tracking.Run`.

Tracking never imports the registry; the package root declares this module an extension of the
point ``"tracking.Run"`` (:mod:`modelyard._hooks`), and importing it sets the method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyard.tracking._run import Run

__all__ = ["log_model"]


def log_model(
    self: Run,
    model: Any,
    name: str | None = None,
    *,
    input_example: Any = None,
    flavor: str | None = None,
    signature: Any = None,
    artifact_path: str = "model",
    requirements: list[str] | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    **flavor_options: Any,
) -> Any:
    """Save ``model`` in a safe format as this run's artifact ``artifact_path`` and, with
    ``name``, register it as the next version of that model (returns the ``ModelVersion``).

    The flavor is detected from the object (or named: ``flavor="pyfunc"`` for custom code);
    the signature is inferred from ``input_example``. The version records this run's metrics.
    """
    from modelyard.registry._api import log_model as _log_model

    self._check_open()
    self.flush()
    return _log_model(
        model,
        name=name,
        run_id=self.id,
        artifact_path=artifact_path,
        input_example=input_example,
        flavor=flavor,
        signature=signature,
        requirements=requirements,
        description=description,
        tags=dict(tags) if tags else None,
        uri=self._service.ws,
        **flavor_options,
    )


Run.log_model = log_model
