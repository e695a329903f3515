"""Logging set-up: text for people, JSON lines for log pipelines, and no token, ever."""

from __future__ import annotations

import base64
import functools
import json
import logging
import sys
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

REDACTED = "***"
# A line of a multi-line secret (a PEM key's base64 lines) is masked on its own too, when it is
# long enough not to mask ordinary words.
_MIN_LINE = 16
MIN_SECRET = 8
"""The shortest credential the runner takes: a shorter one would mask ordinary words (and its
base64 forms would be too short to be told from other base64)."""
_learnt: list[str] = []


def _base64_forms(secret: str) -> list[str]:
    """What base64 text holding ``secret`` always contains, wherever in the encoded bytes the
    secret starts (``user:password`` in a docker config's ``auth``, a basic auth header): for
    each of the three alignments, the characters made of the secret's bits alone, in both the
    standard and the URL-safe alphabet."""
    raw = secret.encode()
    found = []
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + raw).decode()
        # Characters (6 bits each) that hold a bit of the prefix, or of what follows.
        first, end = -(-shift * 8 // 6), (shift + len(raw)) * 8 // 6
        inner = encoded[first:end]
        found += [inner, inner.replace("+", "-").replace("/", "_")]
    return found


@functools.lru_cache(maxsize=64)  # every log line is masked: a secret's forms are made once
def _forms(secret: str) -> tuple[str, ...]:
    """Every form of ``secret`` that text may hold: itself, base64 (a Secret's data, a docker
    config's ``auth``, an Authorization header), URL-encoded (a clone URL, a query), escaped in
    JSON; and each long line of a multi-line secret on its own."""
    lines = [line.strip() for line in secret.splitlines()]
    parts = [secret, *(line for line in lines if len(line) >= _MIN_LINE)]
    found = []
    for part in parts:
        found += [part, quote(part, safe=""), quote_plus(part), json.dumps(part)[1:-1]]
        if len(part) >= MIN_SECRET:
            found += _base64_forms(part)
    return tuple(dict.fromkeys(form for form in found if form))


def learn(*secrets: str | None) -> None:
    """Mask ``secrets`` too from now on, wherever ``mask`` is used (every log line, every
    error message): for secrets known only during the run, such as an App's installation
    token."""
    for secret in secrets:
        for form in _forms(secret or ""):
            if form and form not in _learnt:
                _learnt.append(form)


def mask(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (of ``secrets`` and those learnt) replaced by ***."""
    forms = {form for secret in secrets if secret for form in _forms(secret)} | set(_learnt)
    for secret in sorted(forms, key=len, reverse=True):  # the whole before its lines
        text = text.replace(secret, REDACTED)
    return text


class Redact(logging.Filter):
    """Replaces secrets in every record, whatever library logged it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets or _learnt:
            record.msg, record.args = mask(record.getMessage(), self._secrets), None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        exit_code = getattr(record, "exitCode", None)
        if exit_code is not None:  # the run's last line
            entry["exitCode"] = exit_code
        return json.dumps(entry)


def setup(log_format: str, secrets: list[str], verbose: bool = False) -> None:
    """Send logs to stderr in ``log_format`` (text or json), with ``secrets`` masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Redact(secrets))
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # The kubernetes client and urllib3 are chatty at INFO/DEBUG and may echo request headers.
    for noisy in ("kubernetes", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pyhelm3 logs every helm command line (with --kube-token, were one passed) and warns of
    # expected failures such as `helm status` of a first install; we report helm's errors.
    logging.getLogger("pyhelm3").setLevel(logging.CRITICAL)
