"""The core's OpenAPI document, and a small validator of answers against its schemas."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import yaml

import core_client

DOC = yaml.safe_load((Path(core_client.__file__).with_name("openapi.yaml")).read_text())
KEY = b"k"


def _resolve_ref(node):
    while isinstance(node, dict) and "$ref" in node:
        target = DOC
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def validate(value, schema, where="$"):
    """A small validator for the subset of OpenAPI 3.0 schemas the document uses."""
    schema = _resolve_ref(schema)
    if value is None:
        assert schema.get("nullable"), f"{where}: null not allowed"
        return
    for sub in schema.get("allOf", ()):
        validate(value, sub, where)
    kind = schema.get("type")
    checks = {"object": dict, "array": list, "string": str, "integer": int}
    if kind:
        assert isinstance(value, checks[kind]) and not isinstance(value, bool), \
            f"{where}: expected {kind}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in enum"
    if "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{where}: pattern mismatch"
    if schema.get("format") == "date":
        dt.date.fromisoformat(value)
    if schema.get("format") == "date-time":
        dt.datetime.fromisoformat(value)
    if "minimum" in schema:
        assert value >= schema["minimum"], f"{where}: below minimum"
    if "maximum" in schema:
        assert value <= schema["maximum"], f"{where}: above maximum"
    if kind == "object":
        for key in schema.get("required", ()):
            assert key in value, f"{where}: missing {key}"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                validate(item, props[key], f"{where}.{key}")
            elif isinstance(extra, dict):
                validate(item, extra, f"{where}.{key}")
            else:
                raise AssertionError(f"{where}: unexpected member {key}")
    if kind == "array":
        for n, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{n}]")


def operations():
    out = {}
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            if method in ("get", "post"):
                out[op["operationId"]] = (method.upper(), path, op)
    return out
