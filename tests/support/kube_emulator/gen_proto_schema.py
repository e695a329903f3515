"""Regenerate ``proto_schema.json`` from the Kubernetes ``generated.proto`` files.

The schema holds only field numbers, names and types of the messages reachable from the kinds the
emulator serves, so ``protobuf.py`` can turn any of them into JSON. Embedded Go structs, whose
fields JSON inlines into the parent (``LocalObjectReference`` in ``SecretKeySelector``, ...), are
found in the ``types.go`` next to each ``generated.proto`` and marked "i". Run it with checkouts
of k8s.io/api and k8s.io/apimachinery::

    python tests/support/kube_emulator/gen_proto_schema.py API_DIR APIMACHINERY_DIR
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SCALARS = {"string", "int32", "int64", "bool", "double", "float", "bytes", "uint32", "uint64"}
FIELD = re.compile(
    r"^\s*(optional|repeated)?\s*(map<\s*\w+\s*,\s*([\w.]+)\s*>|[\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;"
)
GROUP_PACKAGES = {
    "": "k8s.io.api.core.v1",
    "apps": "k8s.io.api.apps.v1",
    "batch": "k8s.io.api.batch.v1",
    "coordination.k8s.io": "k8s.io.api.coordination.v1",
    "events.k8s.io": "k8s.io.api.events.v1",
    "rbac.authorization.k8s.io": "k8s.io.api.rbac.v1",
    "networking.k8s.io": "k8s.io.api.networking.v1",
    "policy": "k8s.io.api.policy.v1",
    "autoscaling": "k8s.io.api.autoscaling.v2",
}
META = "k8s.io.apimachinery.pkg.apis.meta.v1"


EMBEDDED = re.compile(r'^\t\*?([A-Z]\w*)\s+`json:"(?:,inline)?"[^`]*protobuf:"([^"]*)"')


NAMED = re.compile(r'^\t\w+\s+(\*?)([\w.]+)\s+`json:"([^"]*)"[^`]*protobuf:"[^"]*name=(\w+)')


def go_fields(types_go: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(struct, proto field name) of the embedded structs JSON inlines, and of the non-pointer
    ``omitempty`` scalars that JSON leaves out when zero (protobuf always carries them)."""
    inline: set[tuple[str, str]] = set()
    omit_zero: set[tuple[str, str]] = set()
    struct = ""
    if not types_go.exists():
        return inline, omit_zero
    for line in types_go.read_text().splitlines():
        if m := re.match(r"^type (\w+) struct", line):
            struct = m.group(1)
        elif (m := EMBEDDED.match(line)) and m.group(1) not in ("TypeMeta", "ListMeta"):
            name = re.search(r"name=(\w+)", m.group(2))
            inline.add((struct, name.group(1) if name else m.group(1)[0].lower() + m.group(1)[1:]))
        elif (m := NAMED.match(line)) and not m.group(1) and "omitempty" in m.group(3):
            omit_zero.add((struct, m.group(4)))
    return inline, omit_zero


def parse(path: Path, messages: dict[str, list[list[object]]]) -> None:
    """Add the messages of one generated.proto to ``messages``."""
    text = path.read_text()
    declared = re.search(r"^package ([\w.]+);", text, re.M)
    if declared is None:
        raise ValueError(f"{path}: no package declaration")
    package = declared.group(1)
    embedded, omit_zero = go_fields(path.with_name("types.go"))
    current: list[list[object]] | None = None
    message = ""
    for line in text.splitlines():
        if m := re.match(r"^message (\w+) \{", line):
            message = m.group(1)
            current = messages.setdefault(f"{package}.{message}", [])
        elif line.startswith("}"):
            current = None
        elif current is not None and (m := FIELD.match(line)):
            label, type_, map_value, name, number = m.groups()
            kind = "m" if map_value else ("r" if label == "repeated" else "o")
            if (message, name) in embedded:
                kind = "i"
            elif kind == "o" and type_ in SCALARS and (message, name) in omit_zero:
                kind = "z"
            type_ = map_value or type_
            if type_.startswith("."):
                type_ = type_[1:]
            elif type_ not in SCALARS:
                type_ = f"{package}.{type_}"
            current.append([int(number), name, type_, kind])


def main(api_dir: str, machinery_dir: str) -> None:
    """Write proto_schema.json for the kinds in the resource table."""
    # Run as a script, not as part of the package: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests.support.kube_emulator.resources import RESOURCES

    messages: dict[str, list[list[object]]] = {}
    for root in (api_dir, machinery_dir):
        for path in Path(root).rglob("generated.proto"):
            parse(path, messages)
    roots = {f"{GROUP_PACKAGES[r.group]}.{r.kind}": r for r in RESOURCES}
    kinds = {f"{r.api_version}/{r.kind}": name for name, r in roots.items()}
    kinds["*/DeleteOptions"] = f"{META}.DeleteOptions"
    wanted, todo = set(), [*roots, f"{META}.DeleteOptions"]
    while todo:
        name = todo.pop()
        if name in wanted or name not in messages:
            continue
        wanted.add(name)
        todo.extend(str(f[2]) for f in messages[name] if f[2] not in SCALARS)
    schema = {"kinds": kinds, "messages": {n: messages[n] for n in sorted(wanted)}}
    out = Path(__file__).with_name("proto_schema.json")
    out.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{out}: {len(wanted)} messages")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
