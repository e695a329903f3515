"""What --dry-run prints is for people: plain YAML."""

from __future__ import annotations

import yaml
from ci_runner.run.dryrun import plain_yaml


def test_a_value_met_twice_is_written_twice_not_as_an_anchor() -> None:
    shared = {"cpu": "1", "memory": "1Gi"}
    values = {"requests": shared, "limits": shared}
    assert "&id" in yaml.safe_dump(values)  # what PyYAML does by default
    text = plain_yaml(values)
    assert "&" not in text and "*" not in text
    assert yaml.safe_load(text) == values
