"""Label and field selectors, as in ``?labelSelector=`` and ``?fieldSelector=``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    """A selector that does not parse (answered with 400)."""


def _split(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SET = re.compile(r"^([^\s!=]+)\s+(in|notin)\s+\((.*)\)$")
_EQ = re.compile(r"^([^\s!=]+)\s*(==|=|!=)\s*(.*)$")


def label_selector(text: str | None) -> Predicate:
    """A predicate on an object's labels."""
    requirements: list[Callable[[dict[str, str]], bool]] = []
    for part in _split(text or ""):
        if m := _SET.match(part):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                requirements.append(lambda ls, k=key, vs=values: ls.get(k) in vs)
            else:
                requirements.append(lambda ls, k=key, vs=values: ls.get(k) not in vs)
        elif m := _EQ.match(part):
            key, op, value = m.group(1), m.group(2), m.group(3).strip()
            if op == "!=":
                requirements.append(lambda ls, k=key, v=value: ls.get(k) != v)
            else:
                requirements.append(lambda ls, k=key, v=value: ls.get(k) == v)
        elif part.startswith("!"):
            absent = part[1:].strip()
            requirements.append(lambda ls, k=absent: k not in ls)
        elif re.match(r"^[A-Za-z0-9._/-]+$", part):
            requirements.append(lambda ls, k=part: k in ls)
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


def match_labels(selector: dict[str, Any] | None) -> Predicate:
    """A predicate from a structured LabelSelector (matchLabels and matchExpressions)."""
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op in ("In", "NotIn"):
            parts.append(f"{key} {op.lower()} ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return label_selector(",".join(parts))


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string value of a dotted field path, "" when absent (as the real server compares)."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def field_selector(text: str | None) -> Predicate:
    """A predicate from a field selector such as ``metadata.name=x,status.phase!=Running``."""
    requirements: list[Predicate] = []
    for part in _split(text or ""):
        m = _EQ.match(part)
        if not m:
            raise SelectorError(f"invalid field selector: {part!r}")
        path, op, value = m.group(1), m.group(2), m.group(3).strip()
        if op == "!=":
            requirements.append(lambda o, p=path, v=value: field_value(o, p) != v)
        else:
            requirements.append(lambda o, p=path, v=value: field_value(o, p) == v)
    return lambda obj: all(req(obj) for req in requirements)
