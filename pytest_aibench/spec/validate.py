"""Check raw spec data against the JSON Schema shipped in this package.

Two validators of the one schema: fastjsonschema's compiled check decides (a 10,000-test spec
is checked in milliseconds, where jsonschema takes seconds), and only a spec it refuses goes to
jsonschema, whose errors say where and what. jsonschema's own messages are not in the reader's
terms; here each error names the JSON path, what was expected and what was found.
tests/test_spec.py holds the two to the same answer on every spec of the suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, cast

from ..errors import SpecError
from .paths import format_path

if TYPE_CHECKING:  # jsonschema is imported when a spec is first checked, not with pytest
    import jsonschema
    from jsonschema.exceptions import ValidationError

MODEL_SPEC = "modelSpec"
BENCHMARK_LIST = "benchmarkList"

_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _schema(definition: str) -> dict[str, Any]:
    text = resources.files("pytest_aibench.spec").joinpath("schema.json").read_text("utf-8")
    schema = cast("dict[str, Any]", json.loads(text))
    schema["$ref"] = f"#/$defs/{definition}"
    return schema


@cache
def _validator(definition: str) -> jsonschema.Draft202012Validator:
    import jsonschema

    schema = _schema(definition)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@cache
def _fast_check(definition: str) -> tuple[Callable[[Any], Any], type[Exception]]:
    """The compiled check and the exception it raises (kept together: a test run that reloads
    fastjsonschema must not leave the check raising a class the caller no longer catches)."""
    import fastjsonschema

    # fastjsonschema knows drafts 4, 6 and 7; the schema uses nothing that 2020-12 added.
    schema = _schema(definition) | {"$schema": "http://json-schema.org/draft-07/schema#"}
    return fastjsonschema.compile(schema), fastjsonschema.JsonSchemaException


def conforms(data: Any, definition: str) -> bool:
    """The fast check alone."""
    check, refusal = _fast_check(definition)
    try:
        check(data)
    except refusal:
        return False
    return True


def _found(instance: Any) -> str:
    shown = json.dumps(instance, default=str)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{_JSON_TYPES.get(type(instance), type(instance).__name__)} {shown}"


def _expected(error: ValidationError) -> str:
    rule, value = error.validator, cast(Any, error.validator_value)
    if rule == "type":
        kinds = value if isinstance(value, list) else [value]
        return " or ".join(str(kind) for kind in kinds)
    if rule == "required":
        return f"a field {error.message.split(' is a required')[0]}"
    if rule == "pattern":
        return f"a string matching {value}"
    if rule == "enum":
        return "one of " + ", ".join(json.dumps(v) for v in value)
    if rule in ("minimum", "exclusiveMinimum"):
        return f"a number {'>=' if rule == 'minimum' else '>'} {value}"
    if rule == "minItems":
        return f"at least {value} item(s)"
    if rule == "minLength":
        return "a non-empty string"
    if rule == "additionalProperties":
        return "only the known fields"
    return error.message


def _describe(error: ValidationError) -> tuple[str, str]:
    where = format_path(error.absolute_path) or "(top level)"
    if error.validator == "required":
        return where, f"missing required field: expected {_expected(error)}"
    if error.validator == "additionalProperties":
        return where, error.message
    return where, f"expected {_expected(error)}, found {_found(error.instance)}"


def validate(data: Any, definition: str, source: str) -> None:
    """Raise :class:`SpecError` for the most relevant schema violation in ``data``."""
    if conforms(data, definition):
        return
    from jsonschema.exceptions import best_match

    error = best_match(_validator(definition).iter_errors(data))
    if error is not None:
        where, problem = _describe(error)
        raise SpecError(source, where, problem)
