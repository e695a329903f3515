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


Labels = dict[str, str]


def _label_in(key: str, values: set[str], wanted: bool) -> Callable[[Labels], bool]:
    return lambda labels: (labels.get(key) in values) == wanted


def _label_has(key: str, wanted: bool) -> Callable[[Labels], bool]:
    return lambda labels: (key in labels) == wanted


def label_selector(text: str | None) -> Predicate:
    """A predicate on an object's labels."""
    requirements: list[Callable[[Labels], bool]] = []
    for part in _split(text or ""):
        if m := _SET.match(part):
            values = {v.strip() for v in m.group(3).split(",")}
            requirements.append(_label_in(m.group(1), values, m.group(2) == "in"))
        elif m := _EQ.match(part):
            requirements.append(_label_in(m.group(1), {m.group(3).strip()}, m.group(2) != "!="))
        elif part.startswith("!"):
            requirements.append(_label_has(part[1:].strip(), False))
        elif re.match(r"^[A-Za-z0-9._/-]+$", part):
            requirements.append(_label_has(part, True))
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


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


Fields = Callable[[dict[str, Any]], dict[str, str]]
"""The fields a kind can be selected by, and their values for one object."""


def core_event_fields(event: dict[str, Any]) -> dict[str, str]:
    """What a core/v1 Event can be selected by: the API server's ``ToSelectableFields``
    (pkg/registry/core/event/strategy.go) and the labels its field label conversion accepts
    (``AddFieldLabelConversionsForEvent``, pkg/apis/core/v1/conversion.go). ``source`` is
    ``source.component``, or ``reportingComponent`` when that is empty (Events written through
    events.k8s.io); ``reportingComponent`` is the core/v1 name of ``reportingController``."""
    involved = event.get("involvedObject") or {}
    source = (event.get("source") or {}).get("component") or event.get("reportingComponent")
    fields = {
        "metadata.name": field_value(event, "metadata.name"),
        "metadata.namespace": field_value(event, "metadata.namespace"),
        "reason": str(event.get("reason") or ""),
        "reportingComponent": str(event.get("reportingComponent") or ""),
        "source": str(source or ""),
        "type": str(event.get("type") or ""),
    }
    for key in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"):
        fields[f"involvedObject.{key}"] = str(involved.get(key) or "")
    return fields


SELECTABLE: dict[tuple[str, str], Fields] = {("", "events"): core_event_fields}
"""Kinds whose field selectors the emulator checks as the real server does, by (group,
resource). Other kinds accept any dotted path (the real server accepts fewer)."""


def field_selector(text: str | None, fields: Fields | None = None) -> Predicate:
    """A predicate from a field selector such as ``metadata.name=x,status.phase!=Running``.

    With ``fields`` (the kind's selectable fields), only those labels are accepted, as the real
    server answers anything else with 400 "field label not supported"; without, any dotted
    path of the object is."""
    requirements: list[Predicate] = []
    known = set(fields({})) if fields else None
    for part in _split(text or ""):
        m = _EQ.match(part)
        if not m:
            raise SelectorError(f"invalid field selector: {part!r}")
        label, value, wanted = m.group(1), m.group(3).strip(), m.group(2) != "!="
        if known is not None and label not in known:
            raise SelectorError(f"field label not supported: {label}")
        requirements.append(_field_is(label, value, wanted, fields))
    return lambda obj: all(req(obj) for req in requirements)


def _field_is(path: str, value: str, wanted: bool, fields: Fields | None) -> Predicate:
    if fields is not None:
        return lambda obj: (fields(obj)[path] == value) == wanted
    return lambda obj: (field_value(obj, path) == value) == wanted
