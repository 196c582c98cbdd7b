"""The redaction helper: URIs, webhook URLs, command lines, secret references."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard._redact import redact_argv, redact_url, redact_webhook, resolve_secret, scrub_urls
from modelyard.config import redact
from modelyard.errors import InvalidArgumentError


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ml:hunter2@db/yard", "postgresql://ml:***@db/yard"),
        ("postgresql://ml:hun@ter2@db:5432/yard", "postgresql://ml:***@db:5432/yard"),  # @ in the password
        (
            "postgresql://db/yard?user=ml&password=hunter2&sslmode=require",
            "postgresql://db/yard?user=ml&password=***&sslmode=require",
        ),
        ("https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/o/r.git", "https://***@github.com/o/r.git"),
        (
            "https://acct.blob.core.windows.net/c?sv=2024&sig=hunter2#x",
            "https://acct.blob.core.windows.net/c?sv=2024&sig=***#x",
        ),
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
        ("./.yard", "./.yard"),
        ("sqlite:///tmp/a.db", "sqlite:///tmp/a.db"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact(url) == shown  # the store's repr helper is the same function


def test_webhooks_keep_only_scheme_and_host() -> None:
    assert redact_webhook("https://hooks.slack.com/services/T0/B0/hunter2") == "https://hooks.slack.com/***"
    assert redact_webhook("http://u:p@127.0.0.1:8080/hook?k=v") == "http://127.0.0.1:8080/***"
    assert redact_webhook("env:SLACK_URL") == "env:SLACK_URL"
    assert redact_webhook("file:/etc/yard/slack") == "file:/etc/yard/slack"
    assert redact_webhook("hunter2") == "***"
    assert scrub_urls("Client error '404' for url 'https://hooks.slack.com/services/T/B/hunter2'\nx") == (
        "Client error '404' for url 'https://hooks.slack.com/***'\nx"
    )


def test_redact_argv() -> None:
    argv = [
        "train.py",
        "--password",
        "hunter2",
        "--token=hunter2",
        "--client-secret",
        "hunter2",
        "-H",
        "Authorization: Bearer hunter2",
        "AWS_SECRET_ACCESS_KEY=hunter2",
        "--uri",
        "postgresql://u:hunter2@h/d",
        "--webhook=https://hooks.slack.com/services/T/B/hunter2",
        "--tokenizer",
        "bert",
        "--offset",
        "-3",
        "--passes",
        "2",
        "name=x",
    ]
    assert redact_argv(argv) == [
        "train.py",
        "--password",
        "***",
        "--token=***",
        "--client-secret",
        "***",
        "-H",
        "Authorization: ***",
        "AWS_SECRET_ACCESS_KEY=***",
        "--uri",
        "postgresql://u:***@h/d",
        "--webhook=https://hooks.slack.com/***",
        "--tokenizer",
        "bert",
        "--offset",
        "-3",
        "--passes",
        "2",
        "name=x",
    ]


def test_resolve_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_URL", " https://hooks.slack.com/services/T/B/hunter2\n")
    assert resolve_secret("env:SLACK_URL") == "https://hooks.slack.com/services/T/B/hunter2"
    secret = tmp_path / "slack"
    secret.write_text("\nhttps://hooks.slack.com/services/T/B/hunter2\n")
    assert resolve_secret(f"file:{secret}") == "https://hooks.slack.com/services/T/B/hunter2"
    monkeypatch.delenv("SLACK_URL")
    with pytest.raises(
        InvalidArgumentError,
        match=r"^The webhook 'env:SLACK_URL' is empty: the environment variable "
        r"SLACK_URL is not set\.$",
    ):
        resolve_secret("env:SLACK_URL", what="webhook")
    with pytest.raises(
        InvalidArgumentError, match=r"must name an environment variable, like env:SLACK_WEBHOOK_URL"
    ):
        resolve_secret("env:not a name", what="webhook")
    with pytest.raises(
        InvalidArgumentError, match=r"^The webhook 'file:/nope/slack' cannot be read: No such file"
    ):
        resolve_secret("file:/nope/slack", what="webhook")
    with pytest.raises(
        InvalidArgumentError,
        match=r"^The webhook 'https://hooks.slack.com/\*\*\*' is not a reference; "
        r"use env:NAME",
    ):
        resolve_secret("https://hooks.slack.com/services/T/B/hunter2", what="webhook")
