"""OpenAPI documentation and input checks for the few hot routes that skip FastAPI's parameter
handling (tracking events, recommendations): for them, FastAPI's dependency solving costs
more than the work. They validate with pydantic themselves, and document what they accept
through ``openapi_extra`` with the same schemas, so the OpenAPI document stays true."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar, get_args, get_origin

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

M = TypeVar("M", bound=BaseModel)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``$ref`` to its own ``$defs`` replaced by the definition
    (``openapi_extra`` schemas do not reach the OpenAPI components)."""
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


def request_body_schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """A required JSON request body of the adapter's type, for ``openapi_extra``."""
    return {
        "required": True,
        "content": {"application/json": {"schema": inline_refs(adapter.json_schema())}},
    }


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(get_origin(arg) is list for arg in get_args(annotation))


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The model's fields as OpenAPI query parameters (a list field is the key repeated)."""
    schema = inline_refs(model.model_json_schema())
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema["properties"].items():
        field_schema = dict(field_schema)
        description = field_schema.pop("description", None)
        field_schema.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": field_schema,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


@cache
def _query_fields(model: type[BaseModel]) -> tuple[tuple[str, bool], ...]:
    """The model's fields, each with whether it is a list (the key repeated)."""
    return tuple((name, _is_list(field.annotation)) for name, field in model.model_fields.items())


def parse_query(request: Request, model: type[M]) -> M:
    """The request's query string as ``model``; a 422 problem naming each bad parameter
    otherwise, as FastAPI's own parameters would give. Unknown parameters are ignored."""
    params = request.query_params
    values: dict[str, Any] = {}
    for name, is_list in _query_fields(model):
        if name not in params:
            continue
        values[name] = params.getlist(name) if is_list else params[name]
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise _request_error(error, "query") from None


def parse_json_body(raw: bytes, model: type[M]) -> M:
    """The request body as ``model``, answered as FastAPI's own body parameter would be when
    it is not: 400 for JSON that does not parse, 422 naming each bad field."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise _request_error(error, "body") from None


def _request_error(error: ValidationError, part: str) -> RequestValidationError:
    """pydantic's errors located as FastAPI locates them (``("query", "limit")``), so the
    problem handler answers exactly as for FastAPI's own parameters."""
    return RequestValidationError(
        [{**detail, "loc": (part, *detail["loc"])} for detail in error.errors(include_url=False)]
    )
