from __future__ import annotations

from typer.testing import CliRunner

from modelyard.cli import app

runner = CliRunner()


def test_serve_needs_a_ref_or_a_spec() -> None:
    r = runner.invoke(app, ["serve"])
    assert r.exit_code == 1
    assert (
        "Error: Give a model reference (yard serve churn-clf@production) or --spec serve.yaml, not both."
        in r.output
    )


def test_serve_rejects_flags_with_a_spec(tmp_path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("models: {primary: m/1}\n")
    r = runner.invoke(app, ["serve", "--spec", str(spec), "--fallback", "m/2"])
    assert r.exit_code == 1 and "--spec already declares fallback" in r.output


def test_serve_bad_workers_and_unknown_model(served_store) -> None:
    r = runner.invoke(app, ["serve", "clf/1", "--workers", "lots"])
    assert r.exit_code != 0
    assert (
        "The 'workers' parameter of yard serve must be 'auto' or a positive integer. Got 'lots' instead."
        in str(r.exception)
    )
    r = runner.invoke(app, ["--uri", served_store, "serve", "nope@production", "--port", "1"])
    assert "Model 'nope' is not registered" in str(r.exception)
