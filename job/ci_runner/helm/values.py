"""The values a deploy gives helm: the chart's VALUES_FILES read as helm reads YAML, then the
image values, merged as helm merges ``--values`` files. Pure but for reading the files."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ..config import Settings
from ..errors import BadCommit, shorten


class HelmYAML(yaml.SafeLoader):
    """YAML read as helm reads values files: sigs.k8s.io/yaml's YAMLToJSON over its go-yaml v2
    fork (goyaml.v2 resolve.go). Unlike PyYAML's YAML 1.1, that takes ``y``/``n`` for booleans,
    keeps timestamps as strings and has no base-60 numbers; a value a chart renders must come
    out as helm itself would have read it."""

    bool_values: ClassVar[dict[str, bool]] = {
        **yaml.SafeLoader.bool_values,
        "y": True,
        "n": False,
    }


_REDEFINED = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
HelmYAML.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REDEFINED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
HelmYAML.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
# PyYAML's int pattern without its base-60 (1:20) form; go-yaml's float pattern.
HelmYAML.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
HelmYAML.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


# helm refuses to load a chart file over 5 MiB (MaxDecompressedFileSize in helm's
# pkg/chart/loader): no YAML the runner reads from a chart may be larger.
MAX_YAML_BYTES = 5 * 1024 * 1024
# What a values file the runner merges may hold, every alias expanded: PyYAML's nodes cost
# about 600 bytes each while a document is read, so this keeps a values file within some
# 60 MiB, well inside the pod's memory request with the runner's own 50 (a large chart's
# values, such as kube-prometheus-stack's, hold some 10,000).
MAX_VALUES_NODES = 100_000
# The event parser: libyaml's when PyYAML has it (the image's wheel does), about 15 times as
# fast; events are the same either way, and no node is built while they are counted.
_EVENTS: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _allowed_alias_ratio(decodes: int) -> float:
    """The share of decoded nodes that may come from alias expansion, as go-yaml v2 allows it
    (allowedAliasRatio in yaml.v2 decode.go, which sigs.k8s.io/yaml and so helm use): 99 % up
    to 400,000 decoded nodes, falling to 10 % at 4,000,000."""
    low, high = 400_000, 4_000_000
    if decodes <= low:
        return 0.99
    if decodes >= high:
        return 0.10
    return 0.99 - 0.89 * (decodes - low) / (high - low)


def _count_nodes(text: str, label: str, most: int | None) -> None:
    """Count the nodes of ``text`` as go-yaml decodes them, every alias expanded, from the
    parser's events alone (no node is built, so this takes constant memory), and refuse the
    file (BadCommit naming ``label``) where go-yaml stops with "excessive aliasing", or past
    ``most`` nodes. An anchor bomb (a few hundred bytes that expand to gigabytes) is refused
    within a few hundred events: PyYAML itself shares an alias's node instead of copying it,
    so only the values sent to helm would have blown up, after the build.

    An anchor's size is known at its end; an alias adds that many decoded nodes, all counted
    as aliased (go-yaml checks the ratio at every node; within an expansion it only rises, so
    checking once after it gives the same verdict). Invalid YAML is yaml.YAMLError."""
    decodes = aliased = 0
    sizes: dict[str, int] = {}
    open_: list[tuple[str | None, int]] = []
    for event in yaml.parse(text, Loader=_EVENTS):
        if isinstance(event, yaml.DocumentStartEvent):
            sizes.clear()  # anchors do not reach across documents
        elif isinstance(event, yaml.ScalarEvent):
            decodes += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            decodes += 1
            open_.append((event.anchor, decodes - 1))
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_.pop()
            if anchor is not None:
                sizes[anchor] = decodes - before
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:  # undefined, or an alias inside its own anchor
                raise BadCommit(
                    f"{label} is refused: alias *{event.anchor} has no anchor before it"
                )
            decodes += 1 + sizes[event.anchor]
            aliased += sizes[event.anchor]
            # go-yaml's own condition for "document contains excessive aliasing".
            ratio = aliased / decodes
            if aliased > 100 and decodes > 1000 and ratio > _allowed_alias_ratio(decodes):
                raise BadCommit(
                    f"{label} is refused: its aliases expand too much (helm's YAML reader "
                    "says excessive aliasing; an anchor bomb?)"
                )
        if most is not None and decodes > most:
            raise BadCommit(f"{label} is refused: over {most} values once its aliases are expanded")


def read_yaml(path: Path, label: str, most: int | None = MAX_VALUES_NODES) -> str:
    """The text of a YAML file of the commit, once it is known to be within bounds: a file over
    helm's 5 MiB, not UTF-8, or whose aliases expand as an anchor bomb's do (or past ``most``
    nodes) is BadCommit naming ``label`` and why, before anything is built from it. Invalid
    YAML is yaml.YAMLError."""
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise BadCommit(
            f"{label} is refused: {size} bytes, over the {MAX_YAML_BYTES} bytes helm loads "
            "from a chart file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise BadCommit(f"{label} is refused: not UTF-8 text") from e
    _count_nodes(text, label, most)
    return text


def check_chart_yaml(chart_dir: Path) -> None:
    """The Chart.yaml and values.yaml of the chart and of each subchart under ``charts/``,
    which helm reads (not the runner), within helm's bounds: a file helm would refuse as too
    big or as excessive aliasing is refused before a build is spent on the commit. Whether
    they are valid YAML is left to helm."""
    charts = [chart_dir]
    if (chart_dir / "charts").is_dir():
        charts += sorted(
            found.parent
            for found in (chart_dir / "charts").rglob("Chart.yaml")
            if "templates" not in found.relative_to(chart_dir).parts
        )
    for chart in charts:
        for name in ("Chart.yaml", "values.yaml"):
            path = chart / name
            if path.is_file():
                label = f"the chart's {path.relative_to(chart_dir).as_posix()}"
                # Invalid YAML there: helm says what is wrong with it, as it always did.
                with contextlib.suppress(yaml.YAMLError):
                    read_yaml(path, label, most=None)


def image_values(settings: Settings, sha: str, digest: str | None = None) -> dict[str, Any]:
    """Values that point the chart at the freshly built image, nested from the dotted keys.

    With a ``digest`` (and DEPLOY_BY_DIGEST on) the release gets exactly what was built: the
    tag value becomes ``<sha>@<digest>``, which a chart's ``repository:tag`` turns into a
    reference that pulls by digest; or, with IMAGE_DIGEST_KEY, the digest goes there.
    """
    s = settings
    pinned = digest is not None and s.deploy_by_digest
    tag = f"{sha}@{digest}" if pinned and not s.image_digest_key else sha
    pairs = [(s.image_repository_key, s.image), (s.image_tag_key, tag)]
    if digest is not None and pinned and s.image_digest_key:
        pairs.append((s.image_digest_key, digest))
    values: dict[str, Any] = {}
    for key, value in pairs:
        *parents, leaf = key.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return values


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Layer ``override`` on ``base`` as helm layers ``--values`` files (``mergeMaps`` in
    helm's pkg/cli/values/options.go): maps merge deeply, anything else (lists included) is
    replaced, and a ``null`` is kept, so that helm then removes that chart default."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def chart_values(settings: Settings, chart_dir: Path, sha: str) -> dict[str, Any]:
    """The values files (in order) and then the image values, merged as helm merges them."""
    check_chart_yaml(chart_dir)
    merged: dict[str, Any] = {}
    for name in settings.values_files:
        path = chart_dir / name
        if not path.is_file():
            raise BadCommit(f"VALUES_FILES entry {name!r} does not exist in the chart")
        try:
            text = read_yaml(path, f"VALUES_FILES entry {name!r}")
            loaded = yaml.load(text, Loader=HelmYAML)
        except yaml.YAMLError as e:
            problem = shorten(str(e), 120)
            raise BadCommit(f"VALUES_FILES entry {name!r} is not valid YAML: {problem}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise BadCommit(f"VALUES_FILES entry {name!r} is not a mapping of values")
        merged = merge(merged, loaded or {})
    return merge(merged, image_values(settings, sha))
