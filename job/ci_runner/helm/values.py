"""The values a deploy gives helm: the chart's VALUES_FILES read as helm reads YAML, then the
image values, merged as helm merges ``--values`` files. Pure but for reading the files."""

from __future__ import annotations

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
    merged: dict[str, Any] = {}
    for name in settings.values_files:
        path = chart_dir / name
        if not path.is_file():
            raise BadCommit(f"VALUES_FILES entry {name!r} does not exist in the chart")
        try:
            loaded = yaml.load(path.read_text(), Loader=HelmYAML)
        except yaml.YAMLError as e:
            problem = shorten(str(e), 120)
            raise BadCommit(f"VALUES_FILES entry {name!r} is not valid YAML: {problem}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise BadCommit(f"VALUES_FILES entry {name!r} is not a mapping of values")
        merged = merge(merged, loaded or {})
    return merge(merged, image_values(settings, sha))
