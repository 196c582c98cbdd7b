"""The quickstart's suggested commands print whole on an 80-column terminal (copy-pasteable)."""

from __future__ import annotations

import io

from rich.console import Console

from modelyard.cli._quickstart import printer


def test_commands_and_prose_are_never_wrapped_at_80_columns(capsys) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    say = printer(Console(file=out, width=80, force_terminal=False))
    command = (
        "  try:   yard data schema churn-train@v1 > expectations.yaml && yard validate data BATCH.parquet "
        "--suite expectations.yaml"
    )
    prose = (
        "A shifted batch: [red]4 check(s) fail[/] (monthly_charges.distribution, monthly_charges.max, "
        "plan.distribution, plan.values)."
    )
    say(command)
    say(prose)
    printed = capsys.readouterr().out
    assert printed == command + "\n"  # plain print, whole, no markup
    assert out.getvalue() == (
        "A shifted batch: 4 check(s) fail (monthly_charges.distribution, monthly_charges.max, "
        "plan.distribution, plan.values).\n"
    )
    assert len(command) > 80
