"""The steps of an automation run (pipeline, gate, approval, rollout) and its notifications; mixed
into :class:`~modelyard.automation._engine.Engine`, which drives them under the run's lease."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from modelyard.automation._schema import automation_runs, automation_steps
from modelyard.automation._service import AutomationService

__all__ = ["StepFailed", "StepsMixin", "approval_message"]


def approval_message(spec: dict[str, Any], run_id: int) -> str:
    """What a waiting approval step says: who may approve, and the command that does."""
    group = spec["approval"]["group"]
    return f"waiting for a maintainer of {group!r}: yard automate approve {spec['name']} {run_id}"


class StepFailed(Exception):
    """A step's outcome that stops the run (the message says why)."""

    def __init__(self, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


class StepsMixin:
    """Each step returns ``(message, detail)`` when done, None while it waits, or raises StepFailed."""

    svc: AutomationService
    target: Any
    say: Callable[[str], None]

    @property
    def store(self) -> Any:
        return self.svc.store

    def _step_pipeline(self, spec: dict[str, Any], run: Any) -> tuple[str, dict[str, Any]]:
        from modelyard import _workspace
        from modelyard.pipelines import load_pipeline, run_pipeline

        fn = load_pipeline(spec["run"]["pipeline"])
        # the steps run in the scheduler's process ("local" executor), so those that register a
        # model without uri= use the store this scheduler serves (a process pool's workers may
        # have started for another store)
        loc = self.svc.ws.location
        previous = _workspace._default_uri
        saved = {k: os.environ.get(k) for k in ("YARD_URI", "YARD_BLOB_URI")}
        _workspace.set_uri(loc.uri)
        os.environ["YARD_URI"], os.environ["YARD_BLOB_URI"] = loc.uri, str(loc.blob_uri)
        try:
            result = run_pipeline(
                fn, spec["run"].get("params") or {}, uri=self.svc.ws, progress=False, executor="local"
            )
        finally:
            _workspace.set_uri(previous)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        value = result.value
        model, version = _model_version(value)
        if model is None or version is None:
            raise StepFailed(
                f"pipeline run {result.run_id[:12]} returned {type(value).__name__}, which names no model "
                "version; return {'model': NAME, 'version': N} (or the registered ModelVersion)",
                {"pipeline_run_id": result.run_id},
            )
        if spec.get("model") and model != spec["model"]:
            raise StepFailed(
                f"the pipeline registered model {model!r}; this automation releases {spec['model']!r}",
                {"pipeline_run_id": result.run_id, "model": model, "version": version},
            )
        self.store.write(
            lambda conn: conn.execute(
                automation_runs.update()
                .where(automation_runs.c.id == int(run.id))
                .values(pipeline_run_id=result.run_id)
            )
        )
        return (
            f"pipeline run {result.run_id[:12]}: {len(result.executed)} step(s) ran, "
            f"{len(result.cached)} cached; "
            f"model {model} version {version}",
            {"pipeline_run_id": result.run_id, "model": model, "version": version},
        )

    def _step_gate(self, spec: dict[str, Any], run: Any) -> tuple[str, dict[str, Any]]:
        from modelyard.evaluation import run_gates

        with self.store.read() as conn:
            run = self.svc._run(conn, int(run.id))
        report = run_gates(
            f"{run.model_name}/{run.model_version}",
            spec["gate"]["policy"],
            uri=self.svc.ws,
            trigger="automation",
            reason=f"automation {spec['name']} run {run.id} ({run.trigger}: {run.reason})"[:500],
        )
        failed = [r.gate for r in report.failed]
        detail: dict[str, Any] = {
            "passed": report.passed,
            "failed": failed,
            "gates": len(report.results),
            "check_id": report.check_id,  # the stored gate report (evaluation gate checks)
        }
        if not report.passed:
            raise StepFailed(
                f"gates failed on version {run.model_version} ({', '.join(failed)}); no rollout starts",
                detail,
            )
        return f"all {len(report.results)} gates passed on version {run.model_version}", detail

    def announce_approval(self, spec: dict[str, Any], run: Any, msg: str) -> None:
        """Say once, and tell the automation's webhooks, that run ``run`` waits for approval (``msg``)."""
        self.say(f"[automate {spec['name']} run {run.id}] approval: {msg}")
        self.notify(
            spec,
            int(run.id),
            "approval",
            f":raised_hand: automation {spec['name']}: {msg} "
            f"(version {run.model_version} of {run.model_name})",
        )

    def _step_approval(self, spec: dict[str, Any], run: Any, idx: int) -> tuple[str, dict[str, Any]] | None:
        with self.store.read() as conn:
            run = self.svc._run(conn, int(run.id))
        if run.approval == "approved":
            return f"approved by {run.approved_by}", {"approved_by": run.approved_by}
        if run.approval == "rejected":
            raise StepFailed(
                f"rejected by {run.approved_by}; no rollout starts", {"rejected_by": run.approved_by}
            )
        return None

    def _step_rollout(self, spec: dict[str, Any], run: Any, idx: int) -> tuple[str, dict[str, Any]] | None:
        from modelyard.rollout import Controller, RolloutService
        from modelyard.rollout._state import RolloutState

        with self.store.read() as conn:
            run = self.svc._run(conn, int(run.id))
        cfg = spec["rollout"]
        target = cfg.get("server") or self.target or os.environ.get("YARD_SERVE_URL")
        rsvc = RolloutService(self.svc.ws, say=self.say)
        if run.rollout_id is None:
            if target is None:
                raise StepFailed(
                    "the rollout needs a model server: give rollout.server in automations.yaml "
                    "or YARD_SERVE_URL"
                )
            options = dict(cfg["options"])
            strategy = options.pop("strategy", "canary")
            r = rsvc.start(
                run.model_name, int(run.model_version), target=target, strategy=strategy, **options
            )
            self.store.write(
                lambda conn: (
                    conn.execute(
                        automation_runs.update()
                        .where(automation_runs.c.id == int(run.id))
                        .values(rollout_id=r.id)
                    ),
                    conn.execute(
                        automation_steps.update()
                        .where(automation_steps.c.run_id == int(run.id), automation_steps.c.idx == idx)
                        .values(
                            state="waiting",
                            message=f"rollout {r.id} started",
                            detail=json.dumps({"rollout_id": r.id}),
                        )
                    ),
                )
            )
            self.say(
                f"[automate {spec['name']} run {run.id}] rollout: started rollout {r.id} ({strategy}) "
                f"of version {run.model_version}"
            )
            rid = r.id
        else:
            rid = int(run.rollout_id)
        if cfg.get("drive", True):
            # one controller per scheduler: it remembers the steps it verified on the server (a new
            # one re-checks the server's traffic first, which a tick every few seconds must not pay)
            ctl = self.__dict__.get("_controller")
            if ctl is None:
                ctl = self.__dict__["_controller"] = Controller(
                    self.svc.ws, target=target if not isinstance(target, str) else None, say=self.say
                )
            ctl.tick(rid)
        r = rsvc.get(rid)
        if r.state is RolloutState.PROMOTED:
            return f"rollout {rid} promoted version {r.candidate_version}: {r.reason}", {
                "rollout_id": rid,
                "state": r.state.value,
            }
        if r.state in (RolloutState.FAILED, RolloutState.ABORTED):
            raise StepFailed(
                f"rollout {rid} {r.state.value}: {r.reason}", {"rollout_id": rid, "state": r.state.value}
            )
        return None

    # -- notification ------------------------------------------------------------------------------
    def notify(self, spec: dict[str, Any], run_id: int, kind: str, text: str) -> None:
        """POST a Slack-compatible message to the automation's webhooks; failures become events."""
        if not spec.get("notify"):
            return
        import httpx

        from modelyard._redact import redact_webhook, resolve_secret, scrub_urls

        body = {
            "text": text,
            "username": "modelyard",
            "modelyard": {"event": kind, "automation": spec["name"], "run": run_id},
        }
        for ref in spec["notify"]:
            try:
                httpx.post(resolve_secret(ref, what="webhook"), json=body, timeout=5.0).raise_for_status()
            except Exception as exc:  # an HTTP error quotes the URL: keep only its host
                self.svc.event(
                    spec["name"], run_id, "webhook_failed",
                    f"webhook {redact_webhook(ref)} failed: {scrub_urls(f'{type(exc).__name__}: {exc}')}",
                )  # fmt: skip


def _model_version(value: Any) -> tuple[str | None, int | None]:
    """The model version a pipeline's result names: ``{"model": NAME, "version": N}`` or an object
    with ``name`` and ``version`` (a registered ``ModelVersion``)."""
    if isinstance(value, dict):
        name, version = value.get("model"), value.get("version")
    else:
        name, version = getattr(value, "name", None), getattr(value, "version", None)
    if isinstance(name, str) and isinstance(version, int) and not isinstance(version, bool):
        return name, version
    return None, None
