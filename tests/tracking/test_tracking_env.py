"""Environment capture: git commit, branch, dirty flag and diff digest; Python; packages artifact."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import modelyard as yard
from modelyard.tracking._env import capture_environment, installed_packages

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "feature-x")
    (root / "train.py").write_text("print('v1')\n")
    _git(root, "add", "train.py")
    _git(root, "commit", "-q", "-m", "first")
    _git(root, "remote", "add", "origin", "https://user:token123@example.com/team/repo.git")
    monkeypatch.chdir(root)
    return root


def test_clean_repo(repo: Path) -> None:
    with yard.start_run(experiment="env") as run:
        pass
    rec = yard.get_run(run.id)
    env = rec.environment
    assert env["git_commit"] == _git(repo, "rev-parse", "HEAD") and len(env["git_commit"]) == 40
    assert env["git_branch"] == "feature-x"
    assert env["git_dirty"] is False and "git_diff_digest" not in env
    assert env["git_remote"] == "https://user:***@example.com/team/repo.git"  # the token is not stored
    assert env["python"] == platform.python_version()
    assert env["platform"] and env["cwd"] == str(repo)
    assert env["command"]
    assert env["packages_count"] > 10 and len(env["packages_digest"]) == 64
    (req,) = [a for a in rec.artifacts if a.path == "environment/requirements.txt"]
    text = yard.get_workspace().blobs.read_bytes(req.digest).decode()
    lines = text.splitlines()
    assert len(lines) == env["packages_count"]
    assert any(line.lower().startswith("sqlalchemy==") for line in lines)


def test_dirty_flag_and_diff_digest_follow_the_diff(repo: Path) -> None:
    digests = []
    for content in ("print('v2')\n", "print('v3')\n", "print('v3')\n"):
        (repo / "train.py").write_text(content)
        with yard.start_run(experiment="env") as run:
            pass
        env = yard.get_run(run.id).environment
        assert env["git_dirty"] is True
        digests.append(env["git_diff_digest"])
    assert digests[0] != digests[1]  # another diff, another digest
    assert digests[1] == digests[2]  # the same diff, the same digest
    _git(repo, "commit", "-q", "-am", "second")
    with yard.start_run(experiment="env") as run:
        pass
    env = yard.get_run(run.id).environment
    assert env["git_dirty"] is False and env["git_commit"] == _git(repo, "rev-parse", "HEAD")


def test_untracked_files_do_not_make_the_tree_dirty(repo: Path) -> None:
    (repo / "scratch.txt").write_text("x")
    env, _ = capture_environment(str(repo))
    assert env["git_dirty"] is False


def test_outside_a_repo(tmp_path: Path) -> None:
    env, packages = capture_environment(str(tmp_path))
    assert "git_commit" not in env and env["python"] == platform.python_version()
    assert packages == installed_packages()


def test_capture_env_false_records_nothing(workspace) -> None:
    with yard.start_run(experiment="env", capture_env=False) as run:
        pass
    rec = yard.get_run(run.id)
    assert rec.environment == {} and rec.artifacts == []


def test_command_line_is_recorded(tmp_path: Path) -> None:
    env, _ = capture_environment(str(tmp_path))
    assert env["command"].split()[0].endswith(Path(sys.argv[0]).name)


def test_secrets_in_the_command_line_are_not_recorded(workspace, store_uri: str, tmp_path: Path) -> None:
    import json
    import os

    script = tmp_path / "train.py"
    script.write_text(
        "import modelyard as yard\nwith yard.start_run(experiment='env') as r:\n    print(r.id)\n"
    )
    args = [
        "--uri",
        "postgresql://ml:hunter2@db.internal/yard",
        "--password",
        "hunter2",
        "--api-key=sk-hunter2",
        "DB_PASSWORD=hunter2",
        "--webhook",
        "https://hooks.slack.com/services/T0/B0/hunter2",
        "--tokenizer",
        "bert",
        "--lr",
        "0.1",
    ]
    env = {**os.environ, "YARD_URI": store_uri}
    out = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip().splitlines()[-1]
    shown = subprocess.run(
        [sys.executable, "-m", "modelyard", "runs", "show", run_id, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "hunter2" not in shown.stdout
    command = json.loads(shown.stdout)["environment"]["command"]
    assert command == (
        f"{script} --uri 'postgresql://ml:***@db.internal/yard' --password '***' '--api-key=***' "
        f"'DB_PASSWORD=***' "
        "--webhook 'https://hooks.slack.com/***' --tokenizer bert --lr 0.1"
    )
    table = subprocess.run(
        [sys.executable, "-m", "modelyard", "runs", "show", run_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert table.returncode == 0 and "hunter2" not in table.stdout and "ml:***@db.internal" in table.stdout


def test_git_remote_token_is_not_recorded(repo: Path) -> None:
    _git(
        repo,
        "remote",
        "set-url",
        "origin",
        "https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/team/repo.git",
    )
    env, _ = capture_environment(str(repo))
    assert env["git_remote"] == "https://***@github.com/team/repo.git"


def test_a_command_recorded_by_an_older_version_is_shown_redacted(workspace) -> None:
    import json

    import sqlalchemy as sa

    from modelyard.store._schema import runs

    with yard.start_run(experiment="env", capture_env=False) as run:
        pass
    legacy = {
        "command": "train.py --uri postgresql://ml:hunter2@db/yard --token hunter2 --lr 0.1",
        "git_remote": "https://ml:hunter2@example.com/r.git",
        "db_password": "hunter2",
        "python": "3.12.1",
    }
    workspace.store.write(
        lambda conn: conn.execute(
            sa.update(runs).where(runs.c.id == run.id).values(environment=json.dumps(legacy))
        )
    )
    env = yard.get_run(run.id).environment
    assert env == {
        "command": "train.py --uri 'postgresql://ml:***@db/yard' --token '***' --lr 0.1",
        "git_remote": "https://ml:***@example.com/r.git",
        "db_password": "***",
        "python": "3.12.1",
    }
    assert [r.environment for r in yard.search_runs("env")] == [env]
    from modelyard.tracking._env import redact_environment

    assert redact_environment(env) == env  # redacting twice changes nothing
