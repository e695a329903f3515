"""Where a secret must never show: the runner's output, every object it could write to, and
what it tells GitHub (statuses, deployments) or a download host."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from tests.e2e.appkit import RELEASE, REPO, App, Run

# Everything the runner could write a secret into (the Secret it keeps is the one exception).
WRITTEN = [
    ("v1", "configmaps"),
    ("v1", "events"),
    ("events.k8s.io/v1", "events"),
    ("v1", "pods"),
    ("batch/v1", "jobs"),
    ("coordination.k8s.io/v1", "leases"),
    ("v1", "secrets"),
]


def forms(secret: str) -> list[str]:
    """``secret`` as it could leak: itself, base64 (a Secret's data), each long line of a PEM,
    URL-encoded, and inside any base64 (a docker config's ``auth``, a basic auth header): there
    the secret's bytes from the first multiple of three on encode as they do on their own."""
    lines = [line for line in secret.splitlines() if len(line) >= 16 and "-----" not in line]
    raw = secret.encode()
    inside = []
    for skip in range(3):
        whole = raw[skip:][: (len(raw) - skip) // 3 * 3]
        inside += [base64.b64encode(whole).decode(), base64.urlsafe_b64encode(whole).decode()]
    encoded = [quote(secret, safe=""), quote_plus(secret)]
    return list(dict.fromkeys([secret, base64.b64encode(raw).decode(), *lines, *encoded, *inside]))


def assert_nowhere(
    app: App,
    emulator: Any,
    secrets: Iterable[str],
    runs: list[Run],
    kept: Iterable[str] = (),
    notified: list[dict[str, Any]] | None = None,
    sources: Iterable[str] = (),
) -> None:
    """None of ``secrets`` is in ``runs``' output, the cluster, what GitHub was told, or the
    ``notified`` bodies; only those ``kept`` may be in the runner's token Secret, where they
    belong, and the Secrets named in ``sources`` (the user's own, which hold them) are not
    looked at."""
    leaks = [form for secret in secrets for form in forms(secret)]
    allowed = {form for secret in kept for form in forms(secret)}
    assert leaks
    for run in runs:
        for leak in leaks:
            assert leak not in run.output, run.output
    token_secret = f"ci-runner-{RELEASE}-git"
    for api_version, resource in WRITTEN:
        for obj in emulator.list(api_version, resource):
            if resource == "secrets" and obj["metadata"]["name"] in sources:
                continue
            keeps = resource == "secrets" and obj["metadata"]["name"] == token_secret
            text = json.dumps(obj)
            for leak in leaks:
                if not (keeps and leak in allowed):
                    assert leak not in text, (resource, obj["metadata"]["name"])
    told = [app.github.statuses(REPO, sha) for sha in app.heads] + [app.github.deployments(REPO)]
    downloads = [r.headers for r in app.github.requests if r.host == "download"]
    text = json.dumps([told, downloads, notified or []])
    for leak in leaks:
        assert leak not in text
