"""Values as helm layers and reads them: the e2e test compares with `helm template`; these pin
the rules down without a server."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from ci_runner.errors import BadCommit
from ci_runner.helm.values import MAX_VALUES_NODES, HelmYAML, chart_values, merge

from tests.support.hostile import ANCHOR_BOMB
from tests.support.settings import app_settings

SHA = "0123456789abcdef0123456789abcdef01234567"


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


# -- issue 17: every YAML file of the commit is read within bounds ----------------------------


def chart(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: shop\nversion: 0.1.0\n")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def refusal(chart_dir: Path, **env: str) -> str:
    """The BadCommit message for reading the chart's values, and that it came fast and small."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(BadCommit) as caught:
            chart_values(app_settings(**env), chart_dir, SHA)
        took = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert took < 1.0
    assert peak < 16 * 1024 * 1024  # the pod requests 160Mi, the runner itself takes 50
    return str(caught.value)


def test_an_anchor_bomb_in_a_values_file_is_refused_at_once_naming_it(tmp_path: Path) -> None:
    assert len(ANCHOR_BOMB) < 400
    message = refusal(chart(tmp_path, {"bomb.yaml": ANCHOR_BOMB}), VALUES_FILES="bomb.yaml")
    assert message == (
        "VALUES_FILES entry 'bomb.yaml' is refused: its aliases expand too much "
        "(helm's YAML reader says excessive aliasing; an anchor bomb?)"
    )


@pytest.mark.parametrize("name", ["values.yaml", "Chart.yaml"])
def test_an_anchor_bomb_in_the_charts_own_files_is_refused_before_helm(
    tmp_path: Path, name: str
) -> None:
    message = refusal(chart(tmp_path, {name: ANCHOR_BOMB}))
    assert message.startswith(f"the chart's {name} is refused: its aliases expand too much")


def test_a_200_mb_values_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: its size is all that is looked at
    message = refusal(chart(tmp_path, {}), VALUES_FILES="big.yaml")
    assert message == (
        "VALUES_FILES entry 'big.yaml' is refused: 209715200 bytes, over the 5242880 bytes "
        "helm loads from a chart file"
    )


def test_a_values_file_of_too_many_values_is_refused(tmp_path: Path) -> None:
    many = "".join(f"k{i}: [1, 2, 3, 4]\n" for i in range(MAX_VALUES_NODES // 5))
    with pytest.raises(BadCommit) as caught:
        chart_values(
            app_settings(VALUES_FILES="many.yaml"), chart(tmp_path, {"many.yaml": many}), SHA
        )
    assert str(caught.value) == (
        f"VALUES_FILES entry 'many.yaml' is refused: over {MAX_VALUES_NODES} values once its "
        "aliases are expanded"
    )


def test_anchors_aliases_and_merge_keys_within_bounds_are_read_as_before(tmp_path: Path) -> None:
    text = (
        "base: &base {cpu: 1, tags: &tags [a, b]}\n"
        "web: {<<: *base, memory: 2}\n"
        "more: *tags\n"
        + "".join(f"k{i}: *base\n" for i in range(300))  # mostly aliases, as go-yaml allows
    )
    values = chart_values(
        app_settings(VALUES_FILES="v.yaml"), chart(tmp_path, {"v.yaml": text}), SHA
    )
    assert values["web"] == {"cpu": 1, "tags": ["a", "b"], "memory": 2}
    assert values["more"] == ["a", "b"] and values["k299"] == values["base"]


def test_invalid_yaml_in_the_charts_own_values_is_left_to_helm(tmp_path: Path) -> None:
    values = chart_values(app_settings(), chart(tmp_path, {"values.yaml": "a: [1, 2\n"}), SHA)
    assert values["image"]["tag"] == SHA


def test_an_alias_to_no_anchor_is_refused_naming_the_file(tmp_path: Path) -> None:
    message = refusal(chart(tmp_path, {"v.yaml": "a: *nowhere\n"}), VALUES_FILES="v.yaml")
    assert (
        message == "VALUES_FILES entry 'v.yaml' is refused: alias *nowhere has no anchor before it"
    )


def test_an_anchor_bomb_in_a_subcharts_values_is_refused_naming_it(tmp_path: Path) -> None:
    sub = tmp_path / "charts" / "db"
    sub.mkdir(parents=True)
    (sub / "Chart.yaml").write_text("apiVersion: v2\nname: db\nversion: 0.1.0\n")
    (sub / "values.yaml").write_text(ANCHOR_BOMB)
    message = refusal(chart(tmp_path, {}))
    assert message.startswith("the chart's charts/db/values.yaml is refused: its aliases")
