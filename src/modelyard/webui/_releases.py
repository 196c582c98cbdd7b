"""The release pages: rollouts with their steps, analyses and events, and the buttons that act on them.

Pause and resume change the stored state the controller follows; promote and abort also move traffic on
the rollout's serving target (a target reachable from this server by URL; an in-process target can only
be driven by the process that holds it, and the page says so). Buttons are shown to maintainers of the
model; each POST checks that role again and is audited under the user's name by the service.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.responses import RedirectResponse, Response

from modelyard import errors
from modelyard.webui._pages import show, when
from modelyard.webui._routes import PREFIX, Page

__all__ = ["register"]

Handler = Callable[[Page], Response]
ACTIONS = {
    "pause": ("progressing",),
    "resume": ("paused",),
    "promote": ("progressing", "paused"),
    "abort": ("progressing", "paused"),
    # emergency: traffic (and, after a promotion, the production alias) back to the stable version
    "rollback": ("progressing", "paused", "promoted", "failed", "aborted"),
}
#: Seconds between two refreshes of a running rollout's page (yard.js fetches it again).
REFRESH_S = 3
LIVE = ("progressing", "paused")


def register(
    page: Callable[[str], Callable[[Handler], Handler]], action: Callable[[str], Callable[[Handler], Handler]]
) -> None:
    """Add the release pages through the decorators of :func:`modelyard.webui.mount`."""
    from modelyard.rollout._service import RolloutService as S

    @page("/releases")
    def releases(p: Page) -> Response:
        rows = p.call(S, "list_rollouts", need=("reader", None, None))
        return p.render(
            "releases.html.j2", title="Releases · modelyard", section="releases", rows=rows, when=when
        )

    def detail(p: Page, rollout_id: int, status: int = 200, problem: str | None = None) -> Response:
        r = p.call(S, "get", need=("reader", None, None), rollout_id=rollout_id)
        events = p.call(S, "events", need=("reader", "model", r.model), rollout_id=rollout_id)
        latest = p.call(S, "latest", need=("reader", "model", r.model), model=r.model)
        return p.render(
            "release.html.j2",
            status=status,
            title=f"Rollout {r.id} of {r.model} · modelyard",
            section="releases",
            r=r,
            steps=r.steps,
            events=list(reversed(events))[:300],
            actions=[a for a, states in ACTIONS.items() if r.state.value in states and a != "rollback"],
            can_roll_back=latest.id == r.id and r.state.value in ACTIONS["rollback"],
            refresh=REFRESH_S if r.state.value in LIVE else None,
            can_act=p.session.can("maintainer", "model", r.model),
            problem=problem,
            done=p.request.query_params.get("done"),
            when=when,
            show=show,
        )

    def rollout_id(p: Page) -> int:
        raw = p.request.path_params["rollout_id"]
        if not raw.isdigit():
            raise errors.InvalidArgumentError(f"A rollout id is a number; got {raw!r}.")
        return int(raw)

    @page("/releases/{rollout_id}")
    def release(p: Page) -> Response:
        return detail(p, rollout_id(p))

    @action("/releases/{rollout_id}/{verb}")
    def act(p: Page) -> Response:
        rid, verb = rollout_id(p), p.request.path_params["verb"]
        if verb not in ACTIONS:
            raise errors.InvalidArgumentError(f"Unknown action {verb!r}; one of {', '.join(ACTIONS)}.")
        r = p.call(S, "get", need=("reader", None, None), rollout_id=rid)
        latest = p.call(S, "latest", need=("reader", "model", r.model), model=r.model)
        if latest.id != rid:
            raise errors.ConflictError(
                f"Rollout {rid} of {r.model!r} is not its latest (rollout {latest.id} is); act on that one."
            )
        reason = str(p.request.state.form.get("reason") or "").strip() or f"{verb} from the web UI"
        try:
            p.call(S, verb, need=("maintainer", "model", r.model), model=r.model, reason=reason)
        except errors.PermissionDeniedError:
            raise
        except errors.ModelyardError as exc:  # a refused transition, failed gates, an unreachable target
            return detail(p, rid, status=409, problem=str(exc))
        return RedirectResponse(f"{PREFIX}/releases/{rid}?done={verb}", status_code=303)
