"""Check raw spec data against the JSON Schema shipped in this package.

jsonschema's own messages say what is wrong but not in the reader's terms; here each error names
the JSON path, what was expected and what was found.
"""

from __future__ import annotations

import json
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


@cache
def _validator(definition: str) -> jsonschema.Draft202012Validator:
    import jsonschema

    text = resources.files("pytest_aibench.spec").joinpath("schema.json").read_text("utf-8")
    schema = json.loads(text)
    schema["$ref"] = f"#/$defs/{definition}"
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


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
    from jsonschema.exceptions import best_match

    error = best_match(_validator(definition).iter_errors(data))
    if error is not None:
        where, problem = _describe(error)
        raise SpecError(source, where, problem)
