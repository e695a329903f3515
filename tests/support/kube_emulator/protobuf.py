"""Decoding of Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``).

A body is the magic ``k8s\\x00`` followed by a ``runtime.Unknown`` envelope (typeMeta = 1,
raw = 2, contentEncoding = 3, contentType = 4); ``raw`` is the object's message. Field numbers and
types come from ``proto_schema.json`` (generated from k8s.io/api's ``generated.proto`` files by
``gen_proto_schema.py``), covering every kind in the resource table plus DeleteOptions.

The result is the JSON the same client would have sent: zero values of the fields that Go's JSON
encoding omits (non-pointer ``omitempty`` scalars, marked "z" in the schema) are dropped, embedded
structs (marked "i") are inlined.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAGIC = b"k8s\x00"
META = "k8s.io.apimachinery.pkg.apis.meta.v1"
TIME, MICRO_TIME, DURATION = f"{META}.Time", f"{META}.MicroTime", f"{META}.Duration"
FIELDS_V1 = f"{META}.FieldsV1"
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
SKIPPED_FIELDS = {"managedFields"}
"""Fields dropped on input (the emulator keeps no field managers)."""


class ProtobufError(ValueError):
    """A body that this decoder cannot turn into JSON."""


@functools.cache
def _schema() -> dict[str, Any]:
    with Path(__file__).with_name("proto_schema.json").open() as f:
        schema: dict[str, Any] = json.load(f)
    return schema


def add_schema(kinds: dict[str, str], messages: dict[str, list[list[object]]]) -> None:
    """Teach the decoder kinds that are served outside the resource table (``authz.py``'s
    reviews): ``kinds`` maps ``apiVersion/Kind`` to a message, ``messages`` as in the schema."""
    schema = _schema()
    schema["kinds"].update(kinds)
    schema["messages"].update(messages)


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


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) triples; value is an int or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtobufError("truncated length-delimited field")
            value = buf[pos : pos + size]
            pos += size
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(type_: str, wire: int, value: Any) -> Any:
    if type_ == "string":
        return bytes(value).decode("utf-8")
    if type_ == "bytes":
        return base64.b64encode(value).decode("ascii")
    if type_ == "bool":
        return bool(value)
    if type_ in ("int32", "int64"):
        return _signed(value)
    if type_ in ("uint32", "uint64"):
        return value
    if type_ == "double":
        return struct.unpack("<d", value)[0]
    if type_ == "float":
        return struct.unpack("<f", value)[0]
    raise ProtobufError(f"unknown scalar type {type_}")


def _packed(type_: str, buf: bytes) -> list[Any]:
    out, pos = [], 0
    while pos < len(buf):
        if type_ == "double":
            out.append(struct.unpack("<d", buf[pos : pos + 8])[0])
            pos += 8
        elif type_ == "float":
            out.append(struct.unpack("<f", buf[pos : pos + 4])[0])
            pos += 4
        else:
            value, pos = _varint(buf, pos)
            out.append(_scalar(type_, 0, value))
    return out


def _time(buf: bytes, micro: bool) -> str | None:
    seconds = nanos = 0
    for number, _, value in _fields(buf):
        if number == 1:
            seconds = _signed(value)
        elif number == 2:
            nanos = _signed(value)
    if not micro and seconds == 0 and nanos == 0:
        return None
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos // 1000:06d}Z" if micro else f"{text}Z"


def _duration(buf: bytes) -> str:
    nanos = sum(_signed(v) for n, _, v in _fields(buf) if n == 1)
    seconds, rest = divmod(nanos, 1_000_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    fraction = f".{rest:09d}".rstrip("0") if rest else ""
    if hours:
        return f"{hours}h{minutes}m{seconds}{fraction}s"
    if minutes:
        return f"{minutes}m{seconds}{fraction}s"
    return f"{seconds}{fraction}s"


def _special(type_: str, buf: bytes) -> tuple[bool, Any]:
    """Types whose JSON form is not an object of their fields."""
    if type_ in (TIME, MICRO_TIME):
        return True, _time(buf, type_ == MICRO_TIME)
    if type_ == DURATION:
        return True, _duration(buf)
    if type_ == QUANTITY:
        return True, next((bytes(v).decode() for n, _, v in _fields(buf) if n == 1), "0")
    if type_ == INT_OR_STRING:
        parts = {n: v for n, _, v in _fields(buf)}
        if parts.get(1, 0) == 1:
            return True, bytes(parts.get(3, b"")).decode()
        return True, _signed(parts.get(2, 0))
    if type_ in (RAW_EXTENSION, FIELDS_V1):
        raw = next((bytes(v) for n, _, v in _fields(buf) if n == 1), b"")
        try:
            return True, json.loads(raw) if raw else None
        except ValueError as e:
            raise ProtobufError(f"{type_} does not hold JSON") from e
    return False, None


def _value(type_: str, wire: int, value: Any) -> Any:
    if type_ in SCALARS:
        return _scalar(type_, wire, value)
    return _message(type_, bytes(value))


def _message(name: str, buf: bytes) -> Any:
    special, result = _special(name, buf)
    if special:
        return result
    fields = _schema()["messages"].get(name)
    if fields is None:
        raise ProtobufError(f"the emulator has no protobuf schema for {name}")
    by_number = {f[0]: f for f in fields}
    out: dict[str, Any] = {}
    for number, wire, value in _fields(buf):
        field = by_number.get(number)
        if field is None:
            continue  # a newer field than the schema knows: ignored, as a real decoder would
        _, json_name, type_, kind = field
        if json_name in SKIPPED_FIELDS:
            continue
        if kind == "i":  # an embedded Go struct: JSON inlines its fields
            out.update(_message(type_, bytes(value)))
        elif kind == "m":
            entry = {n: (w, v) for n, w, v in _fields(bytes(value))}
            key = bytes(entry.get(1, (2, b""))[1]).decode()
            empty: Any = "" if type_ in SCALARS else {}
            item = _value(type_, *entry[2]) if 2 in entry else empty
            out.setdefault(json_name, {})[key] = item
        elif kind == "r":
            if wire == 2 and type_ in SCALARS and type_ not in ("string", "bytes"):
                out.setdefault(json_name, []).extend(_packed(type_, bytes(value)))
            else:
                out.setdefault(json_name, []).append(_value(type_, wire, value))
        else:
            item = _value(type_, wire, value)
            if item is None or (kind == "z" and not item):
                out.pop(json_name, None)
            else:
                out[json_name] = item
    return out


SCALARS = {"string", "int32", "int64", "bool", "double", "float", "bytes", "uint32", "uint64"}


def decode(body: bytes) -> dict[str, Any]:
    """Turn a Kubernetes protobuf body into the equivalent JSON object, or raise ProtobufError."""
    if not body.startswith(MAGIC):
        raise ProtobufError("protobuf body without the k8s\\x00 magic prefix")
    api_version = kind = ""
    raw = b""
    for number, _, value in _fields(body[len(MAGIC) :]):
        if number == 1:
            for n, _, v in _fields(bytes(value)):
                if n == 1:
                    api_version = bytes(v).decode()
                elif n == 2:
                    kind = bytes(v).decode()
        elif number == 2:
            raw = bytes(value)
    kinds = _schema()["kinds"]
    name = (
        kinds.get("*/DeleteOptions")
        if kind == "DeleteOptions"
        else kinds.get(f"{api_version}/{kind}")
    )
    if name is None:
        raise ProtobufError(
            f"the emulator cannot decode protobuf {api_version or '?'} {kind or '?'}: it has no"
            " schema for that kind; send JSON instead"
        )
    obj = _message(name, raw)
    return {"apiVersion": api_version, "kind": kind, **obj}
