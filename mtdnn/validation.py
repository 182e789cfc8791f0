"""One validation mechanism for the YAML a user writes (params.yaml, task files): JSON schemas in
``mtdnn/schemas/`` checked with jsonschema, the best error turned into one line that names the file,
the key and what was expected."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mtdnn.errors import MtdnnError

# Each schema's $id is its file name, so one can $ref another's $defs ("params.schema.yaml#/...").
SCHEMAS = ("params.schema.yaml", "task.schema.yaml")


def load_schema(name: str) -> dict:
    """A fresh copy (callers may trim it, as the --cfg knob schema does)."""
    return yaml.safe_load((resources.files("mtdnn") / "schemas" / name).read_text())


@functools.cache
def _registry() -> Registry:
    return Registry().with_resources(
        (name, Resource.from_contents(load_schema(name), default_specification=DRAFT202012))
        for name in SCHEMAS
    )


def check(instance: Any, schema: dict, source: str) -> None:
    """Raise a one-line MtdnnError (``source: key: message``) for the best-matching error."""
    validator = jsonschema.Draft202012Validator(schema, registry=_registry())
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        key, message = explain(error)
        raise MtdnnError(f"{source}: {key}: {message}")


def _key(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _describe(sub: dict) -> str:
    """A subschema in words, e.g. ``number > 0 and <= 1``."""
    kind = sub.get("type", "value")
    text = " or ".join(kind) if isinstance(kind, list) else str(kind)
    ops = (
        ("exclusiveMinimum", ">"),
        ("minimum", ">="),
        ("exclusiveMaximum", "<"),
        ("maximum", "<="),
    )
    bounds = [f"{op} {sub[k]}" for k, op in ops if k in sub]
    return f"{text} {' and '.join(bounds)}".strip()


def explain(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(key, message): alternatives spelled out, unknown keys named with the allowed ones."""
    while error.parent is not None and error.parent.validator in ("oneOf", "anyOf"):
        error = error.parent
    if error.validator in ("oneOf", "anyOf"):
        alternatives = "; ".join(_describe(s) for s in error.validator_value)
        return _key(error), f"{error.instance!r} is not valid; expected one of: {alternatives}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        if allowed and extra:
            key = ".".join([*(str(p) for p in error.absolute_path), str(extra[0])])
            return key, f"unknown key (allowed: {', '.join(allowed)})"
    if error.validator == "enum":
        values = ", ".join(str(v) for v in error.validator_value)
        return _key(error), f"unknown value {error.instance!r} (expected one of: {values})"
    return _key(error), error.message
