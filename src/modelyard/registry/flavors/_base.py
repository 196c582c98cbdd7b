"""The flavor interface every model flavor implements."""

from __future__ import annotations

from typing import Any

__all__ = ["Flavor", "module_of"]


def module_of(obj: Any) -> str:
    """Top-level package name of an object's class (``sklearn`` for a LogisticRegression)."""
    return type(obj).__module__.split(".")[0]


class Flavor:
    """Save, load and call one kind of model.

    ``save`` returns ``(files, options)``: file name → bytes, and JSON options stored in
    ``yard-model.json``. ``load`` gets the same files back, already verified against their digests.
    """

    name: str = ""
    #: Distribution names whose versions are recorded as the model's requirements.
    packages: tuple[str, ...] = ()
    #: Loading runs code from the file (unpickling): only with the caller's ``allow_pickle=True``.
    runs_code: bool = False

    def detects(self, model: Any) -> bool:
        return False

    def save(
        self, model: Any, *, example: Any = None, **options: Any
    ) -> tuple[dict[str, bytes], dict[str, Any]]:
        raise NotImplementedError

    def load(self, files: dict[str, bytes], options: dict[str, Any], **kwargs: Any) -> Any:
        raise NotImplementedError

    def predict(self, raw: Any, df: Any, options: dict[str, Any]) -> Any:
        return raw.predict(df)

    def has_proba(self, raw: Any, options: dict[str, Any]) -> bool:
        return hasattr(raw, "predict_proba")

    def predict_proba(self, raw: Any, df: Any, options: dict[str, Any]) -> Any:
        return raw.predict_proba(df)
