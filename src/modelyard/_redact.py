"""Keep secrets out of what modelyard stores, prints and logs.

- :func:`redact_url` hides the password of a URI (``postgresql://u:***@h/db``), a token used as
  the user name, and the values of secret-looking query parameters (``?password=``, ``sig=``...).
- :func:`redact_webhook` keeps only the scheme and host of a webhook URL: Slack, Teams and
  Discord put the token in the path (``https://hooks.slack.com/***``).
- :func:`scrub_urls` applies that to every URL inside a text (an HTTP error message quotes it).
- :func:`redact_argv` hides the values of ``--password``/``--token``-like flags, ``KEY=VALUE``
  pairs with a secret-looking key and URI passwords in a command line before it is recorded.
- :func:`resolve_secret` turns a reference (``env:NAME`` or ``file:PATH``) into the secret when
  it is used, so only the reference is stored.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path

from modelyard.errors import InvalidArgumentError

__all__ = [
    "MASK",
    "is_reference",
    "is_secret_name",
    "might_hold_secret",
    "redact_argv",
    "redact_url",
    "redact_urls",
    "redact_webhook",
    "resolve_secret",
    "scrub_urls",
]

MASK = "***"
_SECRET_WORD = re.compile(  # a whole word of a name split at - _ . (so "tokenizer" or "bypass" is no secret)
    r"(ssl)?pass(word|wd|phrase)|pwd|secrets?|tokens?|credentials?|auth|authorization|signature|sig|webhook|"
    r"cookie|apikey|accesskey|privatekey|sessionid",
    re.I,
)
_SECRET_PAIR = re.compile(r"(^|[-_.])(api|access|private|secret)[-_.]?key($|[-_.])", re.I)
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)([^\s'\"<>]*)")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """True for names like ``password``, ``--api-key``, ``DB_PASSWORD``, ``access_token``, ``sig``."""
    words = re.split(r"[^A-Za-z0-9]+", name.strip("-"))
    return bool(_SECRET_PAIR.search(name.strip("-"))) or any(_SECRET_WORD.fullmatch(w) for w in words if w)


def redact_url(url: str) -> str:
    """``url`` with its password, a token-like user name and secret query values replaced by ``***``."""
    m = _URL.match(url.strip()) if "://" in url else None
    if m is None:
        return url
    lead = url[: len(url) - len(url.lstrip())]
    scheme, rest = m.group(1), url.strip()[len(m.group(1)) :]
    # the authority ends at the first / ? or # after the last @ that precedes it (a password may hold @)
    cut = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if i != -1:
            cut = min(cut, i)
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + MASK
        elif len(userinfo) >= 20:  # a token used as the user name (https://ghp_...@github.com/...)
            userinfo = MASK
        authority = f"{userinfo}@{host}"
    if "?" in tail:
        path, _, query = tail.partition("?")
        frag = ""
        if "#" in query:
            query, _, frag = query.partition("#")
            frag = "#" + frag
        parts = []
        for pair in query.split("&"):
            key, eq, value = pair.partition("=")
            parts.append(f"{key}={MASK}" if eq and value and is_secret_name(key) else pair)
        tail = f"{path}?{'&'.join(parts)}{frag}"
    return f"{lead}{scheme}{authority}{tail}"


def redact_webhook(url: str) -> str:
    """A webhook for messages: a reference as is, a URL as ``scheme://host/***`` (the path is the token)."""
    if is_reference(url):
        return url
    m = _URL.match(url.strip())
    if m is None:
        return MASK
    host = re.split(r"[/?#]", m.group(2), maxsplit=1)[0].rsplit("@", 1)[-1]
    return f"{m.group(1)}{host}/{MASK}"


def redact_urls(text: str) -> str:
    """``text`` with :func:`redact_url` applied to every URL in it."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text) if "://" in text else text


def scrub_urls(text: str) -> str:
    """``text`` with every URL in it cut to ``scheme://host/***`` (for error messages about webhooks)."""
    return _URL.sub(lambda m: redact_webhook(m.group(0)), text)


_HINTS = (
    "://",
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "sig",
    "hook",
    "cookie",
    "session",
    "credential",
)


def might_hold_secret(text: str) -> bool:
    """False when :func:`redact_argv` surely leaves ``text`` (a command line) as it is: a fast path."""
    lower = text.lower()
    return any(h in lower for h in _HINTS)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line safe to record: secret flag values, ``KEY=VALUE`` secrets and URI passwords hidden.

    ``--password X``, ``--password=X``, ``--api-key X``, ``--token=X`` → ``***``; ``DB_PASSWORD=X``
    → ``DB_PASSWORD=***``; ``--webhook URL`` → ``scheme://host/***``; any URI loses its password.
    """
    out: list[str] = []
    hide_next: str | None = None
    for arg in argv:
        if hide_next is not None:
            out.append(redact_webhook(arg) if "webhook" in hide_next or "hook-url" in hide_next else MASK)
            hide_next = None
            continue
        if arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
            name, eq, value = arg.partition("=")
            if is_secret_name(name):
                if eq:
                    hooky = "webhook" in name.lower()
                    out.append(f"{name}={redact_webhook(value) if hooky else MASK}")
                else:
                    out.append(arg)
                    hide_next = name.lower()
                continue
        key, eq, value = arg.partition("=")
        if eq and value and re.fullmatch(r"[A-Za-z_][\w.\-]*", key) and is_secret_name(key):
            out.append(f"{key}={MASK}")
            continue
        if re.match(r"(?i)\s*(authorization|proxy-authorization)\s*:", arg):
            out.append(arg.split(":", 1)[0] + ": " + MASK)
            continue
        out.append(redact_urls(arg))
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_reference(value: str) -> bool:
    """True for a secret reference: ``env:NAME`` or ``file:PATH``."""
    return value.startswith(("env:", "file:")) and not value.startswith("file://")


def resolve_secret(ref: str, *, what: str = "secret") -> str:
    """The value a reference stands for: ``env:NAME`` (an environment variable) or ``file:PATH``
    (the first line of a file). Errors name the reference, never the value."""
    kind, _, target = ref.partition(":")
    if kind == "env":
        if not _ENV_NAME.match(target):
            raise InvalidArgumentError(
                f"The {what} reference {ref!r} must name an environment variable, like env:SLACK_WEBHOOK_URL."
            )
        value = os.environ.get(target, "").strip()
        if not value:
            raise InvalidArgumentError(
                f"The {what} {ref!r} is empty: the environment variable {target} is not set."
            )
        return value
    if kind == "file":
        path = Path(target).expanduser()
        try:
            data = path.read_bytes()[:65536].decode("utf-8", errors="replace")
        except OSError as exc:
            raise InvalidArgumentError(f"The {what} {ref!r} cannot be read: {exc.strerror or exc}.") from None
        value = next((line.strip() for line in data.splitlines() if line.strip()), "")
        if not value:
            raise InvalidArgumentError(f"The {what} {ref!r} is empty: the file {str(path)!r} holds no value.")
        return value
    raise InvalidArgumentError(
        f"The {what} {redact_webhook(ref)!r} is not a reference; use env:NAME (an environment variable) "
        "or file:PATH (a file holding it)."
    )
