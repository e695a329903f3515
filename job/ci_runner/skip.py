"""Whether a new head need not be built at all: pure functions over its message (and, with
WATCH_PATHS, over the files changed since the deployed commit)."""

from __future__ import annotations

# The markers GitHub Actions honours in a commit message ([skip ci], [ci skip], [no ci]), and
# one for a commit that CI may test but that should not be deployed.
SKIP_MARKERS = ("[skip ci]", "[ci skip]", "[no ci]", "[skip deploy]")


def skip_marker(message: str | None) -> str | None:
    """The skip marker ``message`` contains (in any letter case), or None."""
    lowered = (message or "").lower()
    return next((marker for marker in SKIP_MARKERS if marker in lowered), None)
