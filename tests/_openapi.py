"""ConnectWise's published OpenAPI definition (tests/openapi/), as JSON Schema validators.

OpenAPI 3.0 is not JSON Schema: ``nullable: true`` stands for "or null". The conversion below
turns it into ``type: [T, "null"]`` (and ``enum`` gains ``None``). Objects with declared
properties are closed (``additionalProperties: false`` unless the definition says otherwise), so
a field the definition does not name fails validation: invented fields are caught.

Deviations from the definition, each from ../shared/CONNECTWISE.md ("Checked against public
sources"): an error body's ``errors`` may be ``null``; a 429 has its own body
(``{"error", "message"}``); bodies real clients send carry ``null`` for optional fields.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

DEFINITION = Path(__file__).parent / "openapi" / "connectwise-accounting-openapi.json"
API_PREFIX = re.compile(r"^/[^/]+/apis/3\.0")
THROTTLED = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    "required": ["message"],
    "additionalProperties": False,
}


def _convert(node: Any, *, loose: bool) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema (nullable -> null allowed; objects closed)."""
    if isinstance(node, list):
        return [_convert(item, loose=loose) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _convert(value, loose=loose) for key, value in node.items()}
    if converted.pop("nullable", False) or loose:
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        if "$ref" in converted:
            converted = {"anyOf": [{"$ref": converted.pop("$ref")}, {"type": "null"}]}
    if "properties" in converted and "additionalProperties" not in converted:
        converted["additionalProperties"] = False
    return converted


@cache
def definition() -> dict[str, Any]:
    """The definition as read."""
    return json.loads(DEFINITION.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def _components(loose: bool) -> dict[str, Any]:
    schemas = copy.deepcopy(definition()["components"]["schemas"])
    converted = {name: _convert(schema, loose=loose) for name, schema in schemas.items()}
    errors = converted["ErrorResponseMessage"]["properties"]["errors"]
    errors["type"] = ["array", "null"]  # ConnectWise sends "errors": null
    return {"schemas": converted}


def validator(schema: dict[str, Any], *, loose: bool = False) -> jsonschema.Draft7Validator:
    """A validator for ``schema`` (which may $ref the components).

    ``loose`` lets every field be null: what ConnectWise accepts in request bodies.
    """
    root = {**schema, "components": _components(loose)}
    return jsonschema.Draft7Validator(root)


def operation(method: str, path: str) -> dict[str, Any] | None:
    """The definition's operation for ``method`` on ``path`` (below the API root), if any."""
    path = API_PREFIX.sub("", path)
    for template, operations in definition()["paths"].items():
        pattern = "^" + r"\d+".join(map(re.escape, re.split(r"\{[^/]+\}", template))) + "$"
        if re.match(pattern, path, re.IGNORECASE) and method.lower() in operations:
            return operations[method.lower()]  # type: ignore[no-any-return]
    return None


def answer_schema(method: str, path: str, status: int) -> dict[str, Any]:
    """The JSON Schema an answer with ``status`` must meet; KeyError if none is declared."""
    if status == 429:
        return THROTTLED
    if status >= 400:
        return {"$ref": "#/components/schemas/ErrorResponseMessage"}
    op = operation(method, path)
    if op is None:
        raise KeyError(f"{method} {path} is not in the definition")
    response = op["responses"][str(status)]  # KeyError: a status the definition does not give
    content = response.get("content")
    if not content:
        return {"not": {}}  # no body declared (a 204): nothing may come
    (media,) = content.values()
    return media["schema"]  # type: ignore[no-any-return]


def request_schema(method: str, path: str) -> dict[str, Any]:
    """The JSON Schema of the body ``method`` on ``path`` takes."""
    op = operation(method, path)
    if op is None or "requestBody" not in op:
        raise KeyError(f"{method} {path} takes no body in the definition")
    (media,) = op["requestBody"]["content"].values()
    return media["schema"]  # type: ignore[no-any-return]
