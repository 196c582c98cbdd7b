"""The model pages: models, one model's versions, aliases and audit log, and moving an alias.

Moving an alias runs the same ``set_alias`` the API runs, so a protected alias runs its gate policy
and a refusal shows each gate with what was measured and the bound it missed. The form is shown to
maintainers of the model only, and the POST checks the role again (a reader's hand-made POST is 403).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi.responses import RedirectResponse, Response

from modelyard import errors
from modelyard.webui._pages import show, when
from modelyard.webui._routes import PREFIX, Page

__all__ = ["register"]

Handler = Callable[[Page], Response]


def register(
    page: Callable[[str], Callable[[Handler], Handler]], action: Callable[[str], Callable[[Handler], Handler]]
) -> None:
    """Add the model pages through the decorators of :func:`modelyard.webui.mount`."""
    from modelyard.registry._service import RegistryService as R

    @page("/models")
    def models(p: Page) -> Response:
        rows = p.call(R, "list_models", need=("reader", None, None))
        return p.render("models.html.j2", title="Models · modelyard", section="models", rows=rows, when=when)

    def model_page(p: Page, name: str, status: int = 200, **extra: Any) -> Response:
        reader = ("reader", "model", name)
        model = p.call(R, "get_model", need=reader, name=name)
        versions = p.call(R, "list_versions", need=reader, name=name)
        audit = p.call(R, "audit_log", need=reader, name=name)
        from modelyard.data._service import DataService

        # every version's run and the datasets it read: one query for all versions (not one each)
        ids = [v.run_id for v in versions if v.run_id]
        found = p.call(DataService, "lineage_of_runs", need=reader, run_ids=ids)
        lineage = {i: e for i, e in found.items() if p.session.can("reader", "experiment", e["experiment"])}
        extra.setdefault("form", {})
        extra.setdefault("gates", None)
        extra.setdefault("refusal", None)
        return p.render(
            "model.html.j2",
            status=status,
            title=f"{name} · models · modelyard",
            section="models",
            model=model,
            versions=versions,
            lineage=lineage,
            audit=list(reversed(audit))[:200],
            can_move=p.session.can("maintainer", "model", name),
            when=when,
            show=show,
            moved=p.request.query_params.get("moved"),
            **extra,
        )

    @page("/models/{name}")
    def model(p: Page) -> Response:
        return model_page(p, p.request.path_params["name"])

    @action("/models/{name}/alias")
    def move_alias(p: Page) -> Response:
        name = p.request.path_params["name"]
        form = p.request.state.form
        alias = str(form.get("alias") or "").strip()
        raw_version = str(form.get("version") or "").strip()
        reason = str(form.get("reason") or "").strip() or None
        force = form.get("force") == "1"
        kept = {"alias": alias, "version": raw_version, "reason": reason or "", "force": force}
        if not raw_version.isdigit():
            raise errors.InvalidArgumentError(f"Choose a version to point {alias or 'the alias'!r} at.")
        try:
            p.call(
                R,
                "set_alias",
                need=("maintainer", "model", name),
                name=name,
                alias=alias,
                version=int(raw_version),
                reason=reason,
                force=force,
            )
        except errors.ValidationFailed as exc:  # gates refused the move: show each gate
            report = getattr(exc, "report", None)
            results = list(getattr(report, "results", []) or [])
            return model_page(p, name, status=422, form=kept, gates=results, refusal=str(exc).split("\n")[0])
        except (errors.InvalidArgumentError, errors.ConflictError, errors.NotFoundError) as exc:
            return model_page(p, name, status=400, form=kept, refusal=str(exc))
        return RedirectResponse(
            f"{PREFIX}/models/{quote(name, safe='')}?moved={quote(alias, safe='')}", status_code=303
        )
