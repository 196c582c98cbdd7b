"""``yard ci init``: valid YAML/Groovy whose steps only call ``yard`` commands and options that exist."""

from __future__ import annotations

import re
import shlex

import pytest
import typer
import yaml
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.errors import AlreadyExistsError, InvalidArgumentError
from modelyard.evaluation._ci import CI_SYSTEMS, render_ci, write_ci

runner = CliRunner()


def _yard_commands(lines: list[str]) -> list[list[str]]:
    out = []
    for line in lines:
        for part in re.split(r"&&|\|\||;", line):
            words = shlex.split(part)
            if words and words[0] == "yard":
                out.append(words[1:])
    return out


def _check_against_app(args: list[str]) -> None:
    """Resolve the sub-command path in the Typer app and parse the arguments with click."""
    cmd = typer.main.get_command(app)  # typer may vendor click: duck-type groups
    path = ["yard"]
    while hasattr(cmd, "commands"):
        name, args = args[0], args[1:]
        assert name in cmd.commands, (
            f"`{' '.join(path)} {name}` is not a yard command (have {sorted(cmd.commands)})"
        )
        cmd = cmd.commands[name]
        path.append(name)
    ctx = cmd.make_context(" ".join(path), list(args), resilient_parsing=False)
    assert ctx.params  # parsed against the command's real options


def _github_steps(text: str) -> list[str]:
    doc = yaml.safe_load(text)
    assert (
        doc["on"]["push"]["branches"] == ["main"]
        if "on" in doc
        else doc[True]["push"]["branches"] == ["main"]
    )
    steps = doc["jobs"]["model"]["steps"]
    names = [s.get("name") for s in steps]
    assert names[2:7] == ["Install", "Train", "Validate data", "Gate", "Gate and promote"]
    promote = steps[6]
    assert promote["if"] == "github.ref == 'refs/heads/main'" and "--promote production" in promote["run"]
    return [s["run"] for s in steps if "run" in s]


def _gitlab_steps(text: str) -> list[str]:
    doc = yaml.safe_load(text)
    assert doc["stages"] == ["train", "validate", "gate", "promote"]
    assert doc["gate"]["artifacts"]["reports"]["junit"] == "reports/gates.xml"
    assert doc["promote"]["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    lines = list(doc["default"]["before_script"])
    for job in ("train", "validate-data", "gate", "promote"):
        lines += doc[job]["script"]
    return lines


def _jenkins_steps(text: str) -> list[str]:
    from groovy_parser.parser import parse_groovy_content

    tree = parse_groovy_content(text)  # raises on invalid Groovy
    assert tree is not None
    assert re.search(r"stage\('Gate and promote'\) \{\s+when \{\s+branch 'main'", text)
    assert "junit allowEmptyResults: true, testResults: 'reports/*.xml'" in text
    cmds = []
    for m in re.finditer(r"\bsh '((?:[^'\\]|\\.)*)'", text):
        cmds.append(m.group(1).replace("\\'", "'").replace("\\\\", "\\"))
    return cmds


@pytest.mark.parametrize("system", sorted(CI_SYSTEMS))
def test_pipeline_parses_and_calls_only_existing_yard_commands(system):
    text = render_ci(
        system,
        model="churn-clf",
        policy="ci/gates.yaml",
        data="churn-test@v2",
        train="python train.py --epochs 3",
    )
    steps = {"github": _github_steps, "gitlab": _gitlab_steps, "jenkins": _jenkins_steps}[system](text)
    assert any(s.startswith("pip install") for s in steps)
    assert "python train.py --epochs 3" in steps
    commands = _yard_commands(steps)
    assert [c[:2] for c in commands] == [
        ["validate", "data"],
        ["gate", "churn-clf@latest"],
        ["gate", "churn-clf@latest"],
    ]
    for args in commands:
        _check_against_app(args)
    gate = commands[-1]
    assert gate[:4] == ["gate", "churn-clf@latest", "--policy", "ci/gates.yaml"] and gate[-2:] == [
        "--promote",
        "production",
    ]
    assert "--junit" in gate and "--data" in gate


def test_the_checker_rejects_unknown_commands_and_options():
    with pytest.raises(AssertionError, match=r"`yard promote` is not a yard command"):
        _check_against_app(["promote", "churn-clf"])
    with pytest.raises(Exception, match=r"No such option: --junitt") as info:
        _check_against_app(["gate", "churn-clf/1", "--policy", "g.yaml", "--junitt", "x.xml"])
    assert type(info.value).__name__ == "NoSuchOption"
    with pytest.raises(Exception, match=r"Missing parameter: policy"):
        _check_against_app(["gate", "churn-clf/1"])


def test_ci_init_writes_the_file_and_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["ci", "init", "github", "--model", "fraud"])
    assert res.exit_code == 0, res.output
    path = tmp_path / ".github" / "workflows" / "modelyard.yml"
    assert "yard gate fraud@latest" in path.read_text()
    with pytest.raises(AlreadyExistsError, match=r"exists\. Pass --force to overwrite it"):
        write_ci("github", model="fraud")
    res = runner.invoke(app, ["ci", "init", "jenkins", "--output", "ci/Jenkinsfile"])
    assert res.exit_code == 0 and (tmp_path / "ci" / "Jenkinsfile").exists()
    with pytest.raises(
        InvalidArgumentError,
        match=r"The 'system' parameter of yard ci init must be one of \['github', 'gitlab', "
        r"'jenkins'\]\. Got 'circle' instead\.",
    ):
        render_ci("circle")
