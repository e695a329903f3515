"""Values as helm layers and reads them: the e2e test compares with `helm template`; these pin
the rules down without a server."""

from __future__ import annotations

import yaml
from ci_runner.helm.values import HelmYAML, merge


def test_maps_merge_deeply_lists_are_replaced_and_null_is_kept_for_helm() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"d": 1}}
    override = {"a": {"y": [3]}, "b": None, "c": "flat"}
    assert merge(base, override) == {"a": {"x": 1, "y": [3]}, "b": None, "c": "flat"}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"d": 1}}  # not changed


def test_yaml_scalars_read_as_go_yaml_v2_reads_them() -> None:
    loaded = yaml.load(
        "[y, n, on, off, 2026-01-01, '1:20', 1:20, 0755, 0x1F, 1e3, 12, ~]", Loader=HelmYAML
    )
    assert loaded == [
        True,
        False,
        True,
        False,
        "2026-01-01",
        "1:20",
        "1:20",
        493,
        31,
        1000.0,
        12,
        None,
    ]
