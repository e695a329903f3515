"""Patch formats: JSON merge patch, an approximate strategic merge patch, and JSON patch."""

from __future__ import annotations

import copy
from typing import Any

MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
}
"""List fields merged element by element (by this key) in a strategic merge patch.

Ports are special: containers' ports merge by containerPort, Services' ports by port.
Every other list is replaced, which is what the real server does for lists without a patch strategy.
"""


class PatchError(ValueError):
    """A patch that cannot be applied (answered with 422 or 400)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Strategic merge patch, approximated: known lists merge by key, others are replaced."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(result.get(name), list):
                result[name] = [x for x in result[name] if x not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        merge_key = _merge_key(key, value, field)
        if merge_key and isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, merge_key, key)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    return result


IDENTITY = {"apiVersion", "kind", "name", "namespace"}
"""Fields an apply never removes."""


def prune_applied(current: Any, previous: Any, applied: Any, field: str = "") -> Any:
    """``current`` without what ``previous`` (a manager's last applied config) set and ``applied``
    (its new one) no longer sets: server-side apply's removal of fields a manager gave up."""
    if isinstance(previous, dict) and isinstance(current, dict):
        applied = applied if isinstance(applied, dict) else {}
        result = dict(current)
        for key, old in previous.items():
            if key not in applied:
                if key not in IDENTITY:
                    result.pop(key, None)
            elif key in result:
                result[key] = prune_applied(result[key], old, applied[key], key)
        return result
    merge_key = _merge_key(field, previous, "")
    if merge_key and isinstance(previous, list) and isinstance(current, list):
        kept = {
            x.get(merge_key): x for x in applied or [] if isinstance(x, dict) and merge_key in x
        }
        gone = {
            x.get(merge_key)
            for x in previous
            if isinstance(x, dict) and x.get(merge_key) not in kept
        }
        result_list = []
        for item in current:
            key = item.get(merge_key) if isinstance(item, dict) else None
            if key in gone:
                continue
            before = next(
                (x for x in previous if isinstance(x, dict) and x.get(merge_key) == key), None
            )
            if key in kept and before is not None:
                item = prune_applied(item, before, kept[key], field)
            result_list.append(item)
        return result_list
    return current


def _merge_key(key: str, value: Any, parent: str) -> str | None:
    if key == "ports" and isinstance(value, list):
        first = next((x for x in value if isinstance(x, dict)), {})
        return "containerPort" if "containerPort" in first else "port"
    return MERGE_KEYS.get(key)


def _merge_list(current: list[Any], patch: list[Any], merge_key: str, field: str) -> list[Any]:
    """Merge by key. Items the list did not have come first, in the patch's order, as
    kube-apiserver orders them when the patch has no $setElementOrder (a patch adding env C to
    [A, B] gives [C, A, B]: tests/fidelity/test_emulator_kubectl.py::test_patch_types, checked
    against v1.37.2)."""
    result = [copy.deepcopy(x) for x in current]
    added: list[Any] = []
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            result.append(copy.deepcopy(item))
            continue
        index = next(
            (
                i
                for i, x in enumerate(result)
                if isinstance(x, dict) and x.get(merge_key) == item[merge_key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            added.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            result[index] = strategic_merge_patch(result[index], item, field)
    return added + result


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _add(_remove(doc, path), path, copy.deepcopy(op.get("value")))
        elif kind == "move":
            value = _get(doc, op["from"])
            doc = _add(_remove(doc, op["from"]), path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"JSON patch test failed at {path}")
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}")
    return doc


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _walk(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        try:
            doc = doc[int(token)] if isinstance(doc, list) else doc[token]
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise PatchError(f"JSON patch path not found: /{'/'.join(tokens)}") from e
    return doc


def _get(doc: Any, path: str) -> Any:
    return copy.deepcopy(_walk(doc, _tokens(path)))


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _tokens(path)
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if index > len(parent):
            raise PatchError(f"JSON patch index out of range: {path}")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise PatchError(f"JSON patch path not found: {path}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _tokens(path)
    if not tokens:
        return None
    parent = _walk(doc, tokens[:-1])
    try:
        if isinstance(parent, list):
            del parent[int(tokens[-1])]
        else:
            del parent[tokens[-1]]
    except (KeyError, IndexError, ValueError, TypeError) as e:
        raise PatchError(f"JSON patch path not found: {path}") from e
    return doc
