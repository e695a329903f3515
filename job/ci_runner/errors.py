"""The runner's errors. Each carries the exit code the CLI turns it into.

Errors from outside libraries (requests, kubernetes, pyhelm3) are translated into these at the
module that talks to that system, so the rest of the code only ever sees this small hierarchy.
"""

from __future__ import annotations

# Long API bodies and helm stderr are cut before they reach a message or an annotation.
MAX_MESSAGE = 300


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """One line of at most ``limit`` characters, for messages built from outside text."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class CiRunnerError(Exception):
    """Base class: an error the CLI reports as one line and an exit code."""

    exit_code = 1


class ConfigError(CiRunnerError):
    """The settings are wrong; nothing was touched."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class ServiceError(CiRunnerError):
    """An outside service (GitHub, the Kubernetes API) failed or refused; state is unchanged."""

    exit_code = 3


class GitHubError(ServiceError):
    """GitHub was unreachable, refused us, rate limited us or answered something unusable."""


class GitHubRefused(GitHubError):
    """GitHub answered 403 or 404 to a write: the credentials lack the permission for it."""

    def __init__(self, message: str, wanted: str | None) -> None:
        super().__init__(message)
        self.wanted = wanted
        """What GitHub says would be needed (its x-accepted-github-permissions header)."""


class KubernetesError(ServiceError):
    """The Kubernetes API was unreachable or refused a request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status of the API's answer; None when there was no answer."""


class NotFound(KubernetesError):
    """404: the object (or its namespace) does not exist."""


class Conflict(KubernetesError):
    """409: the object exists already, or changed since its resourceVersion was read."""


class Gone(KubernetesError):
    """410: a watch asked for a resourceVersion the API server no longer keeps."""


class ReleaseBusy(ServiceError):
    """The release is pending-* under a helm this runner did not start, which may still be
    running: left alone this run (exit 3, nothing counted); a later run recovers it once it is
    older than HELM_TIMEOUT plus a margin."""


class BadCommit(CiRunnerError):
    """What is wrong is the commit itself (no chart at CHART_PATH, a bad values file, an
    unsafe, corrupt or oversized archive): the cycle counts it as a failed attempt, so a bad
    commit costs at most MAX_RETRIES tries (exit code 1)."""

    exit_code = 1


class ArchiveError(BadCommit):
    """The commit's tarball is malformed, hostile or too big; nothing was deployed from it."""


class DeployError(CiRunnerError):
    """helm could not install or upgrade the release (it rolled back what it changed); the
    cycle records a failed attempt (exit code 1)."""

    exit_code = 1
