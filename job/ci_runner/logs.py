"""Logging set-up: text for people, JSON lines for log pipelines, and no token, ever."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

REDACTED = "***"


def mask(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class Redact(logging.Filter):
    """Replaces secrets in every record, whatever library logged it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
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
