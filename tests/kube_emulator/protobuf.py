"""Minimal decoding of Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``).

A body is the magic ``k8s\\x00`` followed by a ``runtime.Unknown`` envelope
(typeMeta = 1, raw = 2, contentEncoding = 3, contentType = 4). Only the messages helm sends are
understood: v1.Secret, v1.ConfigMap and v1.DeleteOptions. Field numbers follow
``k8s.io/api/core/v1/generated.proto`` and ``k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto``.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """A body that this decoder cannot turn into JSON."""


Field = tuple[int, int, Any]  # (number, wire type, value: int or bytes)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[Field]:
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtobufError("truncated length-delimited field")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            yield number, wire, int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == 5:
            yield number, wire, int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


def _str(value: bytes) -> str:
    return value.decode("utf-8")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _map_entry(buf: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, _, raw in _fields(buf):
        if number == 1:
            key = _str(raw)
        elif number == 2:
            value = raw
    return key, value


def _time(buf: bytes) -> str:
    seconds = 0
    for number, _, raw in _fields(buf):
        if number == 1:
            seconds = _signed(raw)
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner_reference(buf: bytes) -> dict[str, Any]:
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}
    out: dict[str, Any] = {}
    for number, _, raw in _fields(buf):
        if number in names:
            out[names[number]] = _str(raw)
        elif number == 6:
            out["controller"] = bool(raw)
        elif number == 7:
            out["blockOwnerDeletion"] = bool(raw)
    return out


def object_meta(buf: bytes) -> dict[str, Any]:
    """Decode a v1.ObjectMeta (managedFields are skipped)."""
    strings = {1: "name", 2: "generateName", 3: "namespace", 4: "selfLink", 5: "uid",
               6: "resourceVersion"}  # fmt: skip
    meta: dict[str, Any] = {}
    for number, _, raw in _fields(buf):
        if number in strings:
            meta[strings[number]] = _str(raw)
        elif number == 7:
            meta["generation"] = _signed(raw)
        elif number == 8:
            meta["creationTimestamp"] = _time(raw)
        elif number == 9:
            meta["deletionTimestamp"] = _time(raw)
        elif number == 10:
            meta["deletionGracePeriodSeconds"] = _signed(raw)
        elif number in (11, 12):
            key, value = _map_entry(raw)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = _str(value)
        elif number == 13:
            meta.setdefault("ownerReferences", []).append(_owner_reference(raw))
        elif number == 14:
            meta.setdefault("finalizers", []).append(_str(raw))
    return meta


def _secret(buf: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _, raw in _fields(buf):
        if number == 1:
            obj["metadata"] = object_meta(raw)
        elif number == 2:
            key, value = _map_entry(raw)
            obj.setdefault("data", {})[key] = base64.b64encode(value).decode("ascii")
        elif number == 3:
            obj["type"] = _str(raw)
        elif number == 4:
            key, value = _map_entry(raw)
            obj.setdefault("stringData", {})[key] = _str(value)
        elif number == 5:
            obj["immutable"] = bool(raw)
    return obj


def _config_map(buf: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _, raw in _fields(buf):
        if number == 1:
            obj["metadata"] = object_meta(raw)
        elif number == 2:
            key, value = _map_entry(raw)
            obj.setdefault("data", {})[key] = _str(value)
        elif number == 3:
            key, value = _map_entry(raw)
            obj.setdefault("binaryData", {})[key] = base64.b64encode(value).decode("ascii")
        elif number == 4:
            obj["immutable"] = bool(raw)
    return obj


def _delete_options(buf: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _, raw in _fields(buf):
        if number == 1:
            obj["gracePeriodSeconds"] = _signed(raw)
        elif number == 2:
            pre = {1: "uid", 2: "resourceVersion"}
            obj["preconditions"] = {pre[n]: _str(v) for n, _, v in _fields(raw) if n in pre}
        elif number == 3:
            obj["orphanDependents"] = bool(raw)
        elif number == 4:
            obj["propagationPolicy"] = _str(raw)
        elif number == 5:
            obj.setdefault("dryRun", []).append(_str(raw))
    return obj


DECODERS: dict[tuple[str, str], Callable[[bytes], dict[str, Any]]] = {
    ("v1", "Secret"): _secret,
    ("v1", "ConfigMap"): _config_map,
    ("v1", "DeleteOptions"): _delete_options,
    ("meta.k8s.io/v1", "DeleteOptions"): _delete_options,
}
"""Which (apiVersion, kind) this module can decode."""


def decode(body: bytes) -> dict[str, Any]:
    """Turn a Kubernetes protobuf body into the equivalent JSON object, or raise ProtobufError."""
    if not body.startswith(MAGIC):
        raise ProtobufError("protobuf body without the k8s\\x00 magic prefix")
    api_version = kind = ""
    raw = b""
    for number, _, value in _fields(body[len(MAGIC) :]):
        if number == 1:
            for n, _, v in _fields(value):
                if n == 1:
                    api_version = _str(v)
                elif n == 2:
                    kind = _str(v)
        elif number == 2:
            raw = value
    decoder = _delete_options if kind == "DeleteOptions" else DECODERS.get((api_version, kind))
    if decoder is None:
        known = ", ".join(f"{v}/{k}" for v, k in DECODERS)
        raise ProtobufError(
            f"the emulator cannot decode protobuf {api_version or '?'} {kind or '?'}"
            f" (it decodes only {known}); send JSON instead"
        )
    obj = decoder(raw)
    return {"apiVersion": api_version, "kind": kind, **obj}
