"""The automation pages: every automation with its triggers, next tick and latest runs; one run with
its steps, their reasons and links; and the approval buttons of a run that waits for a maintainer.

The next schedule tick is shown on the wall clock of the automation's own time zone, named (a
schedule ``0 3 * * 1`` in Europe/Paris fires at 03:00 there, whatever the server's zone). The
buttons are shown to users who may approve (maintainer on the run's model and, when the
automation names an approval group, a member of it, or an admin); the POST calls the service's
``approve`` operation as the user, which checks both again and records who said yes or no.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.responses import RedirectResponse, Response

from modelyard import errors
from modelyard.webui._pages import show, when
from modelyard.webui._routes import PREFIX, Page

__all__ = ["register"]

Handler = Callable[[Page], Response]
#: Runs shown per automation on the list page (``yard automate history NAME`` lists more).
LAST_RUNS = 5
#: Seconds between two refreshes of an unfinished run's page (yard.js fetches it again).
REFRESH_S = 5
VERDICTS = {"approve": False, "reject": True}  # the verb → approve(reject=...)


def badge(state: str) -> str:
    """The badge class of a run or step state."""
    if state in ("succeeded", "ok"):
        return "finished"
    if state in ("failed", "dropped"):
        return "failed"
    return "running"


def register(
    page: Callable[[str], Callable[[Handler], Handler]], action: Callable[[str], Callable[[Handler], Handler]]
) -> None:
    """Add the automation pages through the decorators of :func:`modelyard.webui.mount`."""
    from modelyard.automation._cron import zoned_text
    from modelyard.automation._service import AutomationService as A

    @page("/automations")
    def automations(p: Page) -> Response:
        rows = p.call(A, "list_automations")
        for a in rows:
            a["next_text"] = zoned_text(a["next_tick"], a["next_tick_zone"]) if a["next_tick"] else ""
            a["runs"] = p.call(A, "history", name=a["name"], limit=LAST_RUNS)
        return p.render(
            "automations.html.j2",
            title="Automations · modelyard",
            section="automations",
            rows=rows,
            when=when,
            badge=badge,
        )

    def run_id(p: Page) -> int:
        raw = p.request.path_params["run_id"]
        if not raw.isdigit() or len(raw) > 18:
            raise errors.InvalidArgumentError(f"An automation run id is a number; got {raw!r}.")
        return int(raw)

    def detail(p: Page, name: str, rid: int, status: int = 200, problem: str | None = None) -> Response:
        r = p.call(A, "show_run", run_id=rid)
        if r["automation"] != name:
            raise errors.NotFoundError(
                f"Automation run {rid} belongs to automation {r['automation']!r}, not {name!r}."
            )
        spec = p.call(A, "get", name=name)
        group = (spec.get("approval") or {}).get("group")
        waiting = bool(r["steps"]) and (r["steps"][-1]["kind"], r["steps"][-1]["state"]) == (
            "approval",
            "waiting",
        )
        who = p.session.principal
        may_approve = bool(r["model"]) and p.session.can("maintainer", "model", r["model"])
        may_approve = may_approve and (who.role == "admin" or group is None or group in who.groups)
        return p.render(
            "automation_run.html.j2",
            status=status,
            title=f"Run {rid} of {name} · automations · modelyard",
            section="automations",
            r=r,
            name=name,
            group=group,
            gate_report=_gate_report(p, r),
            can_approve=waiting and r["approval"] is None and r["state"] == "running" and may_approve,
            waiting=waiting,
            refresh=REFRESH_S if r["state"] in ("queued", "running") else None,
            problem=problem,
            done=p.request.query_params.get("done"),
            when=when,
            badge=badge,
            show=show,
        )

    @page("/automations/{name}/runs/{run_id}")
    def automation_run(p: Page) -> Response:
        return detail(p, p.request.path_params["name"], run_id(p))

    @action("/automations/{name}/runs/{run_id}/{verb}")
    def approve(p: Page) -> Response:
        name, rid, verb = p.request.path_params["name"], run_id(p), p.request.path_params["verb"]
        if verb not in VERDICTS:
            raise errors.InvalidArgumentError(f"Unknown action {verb!r}; one of {', '.join(VERDICTS)}.")
        reason = str(p.request.state.form.get("reason") or "").strip()[:300] or f"{verb} from the web UI"
        try:
            p.call(A, "approve", name=name, run_id=rid, reason=reason, reject=VERDICTS[verb])
        except errors.ConflictError as exc:  # not waiting (any more), decided by someone else first
            return detail(p, name, rid, status=409, problem=str(exc))
        done = "approved" if verb == "approve" else "rejected"
        return RedirectResponse(f"{PREFIX}/automations/{name}/runs/{rid}?done={done}", status_code=303)


def _gate_report(p: Page, r: dict[str, Any]) -> dict[str, Any] | None:
    """The gate check the run's gate step stored (its id is in the step's detail), with each gate."""
    from modelyard.evaluation._service import EvaluationService

    step = next((s for s in r["steps"] if s["kind"] == "gate"), None)
    check_id = (step or {}).get("detail", {}).get("check_id")
    if not check_id or not r["model"] or not r["version"]:
        return None
    checks = p.call(EvaluationService, "list_gate_checks", model=f"{r['model']}/{r['version']}", limit=50)
    return next((c for c in checks if c["id"] == check_id), None)
