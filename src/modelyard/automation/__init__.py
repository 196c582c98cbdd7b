"""Automation: schedules and triggers that close the loop from drift to a released model.

    yard automate apply automations.yaml     # checked: cron, references, cycles (file:line errors)
    yard automate list ; yard automate history retrain-churn
    yard automate trigger retrain-churn --reason "new labels"
    yard automate approve retrain-churn 12
    yard automate run                         # the scheduler for a local store (yard server runs its own)

An automation fires on a cron schedule (with a time zone), a monitoring alert firing, a new
dataset version, a manual trigger or a webhook, then runs a pipeline, the gates on the version it
registered, an optional approval and a rollout. See ``_config.py`` for the YAML, ``_engine.py``
for the guarantees (once per tick, catch up once, never a step twice).
"""

from modelyard.automation._config import AutomationError, parse_automations
from modelyard.automation._cron import CronError, Schedule
from modelyard.automation._engine import Engine
from modelyard.automation._scheduler import Scheduler, start_in_server
from modelyard.automation._service import AutomationService

__all__ = [
    "AutomationError",
    "AutomationService",
    "CronError",
    "Engine",
    "Schedule",
    "Scheduler",
    "apply_file",
    "parse_automations",
    "start_in_server",
]


def apply_file(path: str, *, uri: object = None) -> list[dict[str, object]]:
    """Read, check and apply ``automations.yaml`` (webhook secrets are resolved here and only their
    hash is sent)."""
    from modelyard._redact import resolve_secret
    from modelyard.automation._service import secret_hash

    specs = parse_automations(path)
    for s in specs:
        for t in s["triggers"]:
            if t["kind"] == "webhook":
                try:
                    t["secret_sha256"] = secret_hash(resolve_secret(t.pop("secret"), what="webhook secret"))
                except Exception as exc:
                    raise AutomationError(
                        f"{s['source']}:{t['line']}: automation {s['name']!r}: {exc}"
                    ) from None
    return AutomationService(uri).apply(specs)  # type: ignore[arg-type]
