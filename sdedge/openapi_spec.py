"""The OpenAPI 3.1 document, built from the app's url_map and the pydantic models (served by routes/docs.py).

Views describe themselves with `@documented(request=..., responses={200: Model})`; routes of modules that
do not use the decorator are described by `KNOWN_ROUTES`, and any other route still appears with its
docstring as summary, so the document always covers every route the app serves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union

from flask import Flask, current_app
from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model
from pydantic.json_schema import models_json_schema

from sdedge import __version__
from sdedge.auth import PUBLIC_ENDPOINTS
from sdedge.config import Settings
from sdedge.modes import MODES, ModeSpec
from sdedge.request_schemas import ImageResponse
from sdedge.response_schemas import ImageAccepted, JobView
from sdedge.samplers import SAMPLERS

F = TypeVar("F", bound=Callable[..., Any])
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API token (`sdedge tokens create`)."},
    "basic": {"type": "http", "scheme": "basic", "description": "user:password or user:token (A1111 clients)."},
    "session": {"type": "apiKey", "in": "cookie", "name": "sdedge_session",
                "description": "The page's login (POST /auth/login)."},
}
REF = "#/components/schemas/{model}"
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
TAGS = {"api": "core", "jobs": "jobs", "a1111": "AUTOMATIC1111", "a1111_listings": "AUTOMATIC1111", "openai": "OpenAI",
        "page": "page", "openapi": "documentation", "account": "accounts",
        "rq_demo": "seed 001 (FastAPI + RQ demo)", "denoising_demo": "seed 003 (denoising demo)"}


class ErrorDetail(BaseModel):
    """One problem of a request: the field it is about (null when none), what is wrong, its kind."""

    model_config = ConfigDict(extra="allow")

    field: str | None = None
    message: str
    type: str


class ErrorBody(BaseModel):
    """The inside of sdedge's error response."""

    code: str
    message: str
    details: list[ErrorDetail]


class ErrorResponse(BaseModel):
    """sdedge's one error shape, on every route outside /v1."""

    error: ErrorBody


@dataclass(frozen=True)
class RouteDoc:
    """What the document says about one view: bodies, query parameters, responses."""

    request: type[BaseModel] | None = None
    request_content: tuple[str, ...] = ("application/json",)
    query: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=lambda: {200: None})
    response_content: str = "application/json"
    error: type[BaseModel] = ErrorResponse
    headers: tuple[tuple[str, str], ...] = ()  # request headers the view reads: (name, description)


def documented(request: type[BaseModel] | None = None, responses: dict[int, type[BaseModel] | None] | None = None,
               **options: Any) -> Callable[[F], F]:
    """Attach OpenAPI facts (a RouteDoc) to a view function; returns the function unchanged."""

    def attach(view: F) -> F:
        view.openapi = RouteDoc(request=request, responses=responses or {200: None}, **options)  # type: ignore[attr-defined]
        return view

    return attach


def _with_mode(spec: ModeSpec) -> type[BaseModel]:
    """The mode's request model plus the `mode` field POST /image reads (documentation only)."""
    default = ... if spec.mode.value != "text2img" else "text2img"
    field: Any = (Literal[spec.mode.value], Field(default, description="The generation mode."))
    name = f"Image{spec.request_model.__name__}"
    answer: Any = (bool, Field(False, description="true: answer 202 with the job at once (as `Prefer: respond-async`)."))
    model: type[BaseModel] = create_model(name, __base__=spec.request_model, mode=field, respond_async=answer)
    return model


_IMAGE_MODELS = tuple(_with_mode(spec) for spec in MODES.values())
ImageRequest: type[BaseModel] = RootModel[Union[_IMAGE_MODELS]]  # type: ignore[valid-type]
ImageRequest.__doc__ = "POST /image: one mode's request, chosen by `mode` (text2img when absent)."

JSON_OR_FORM = ("application/json", "multipart/form-data")
KNOWN_ROUTES: dict[str, RouteDoc] = {
    "api.generate_image": RouteDoc(request=ImageRequest, request_content=JSON_OR_FORM,
                                   responses={200: ImageResponse, 202: ImageAccepted},
                                   headers=(("Prefer", "RFC 7240: `respond-async` answers 202 with the job at once; "
                                                       "`wait=N` waits at most N seconds for the image."),)),
    "api.generated_file": RouteDoc(response_content="image/png"),
    **{f"jobs.submit_{mode.value.replace('-', '_')}": RouteDoc(request=spec.request_model,
                                                               request_content=JSON_OR_FORM,
                                                               responses={200: JobView, 202: JobView})
       for mode, spec in MODES.items()},
    "page.index": RouteDoc(response_content="text/html"),
    "page.asset": RouteDoc(response_content="*/*"),
    "openapi.docs": RouteDoc(response_content="text/html"),
}


def route_doc(app: Flask, endpoint: str) -> RouteDoc:
    """The RouteDoc of an endpoint: from its decorator, the KNOWN_ROUTES table, or a generic one."""
    view = app.view_functions[endpoint]
    return getattr(view, "openapi", None) or KNOWN_ROUTES.get(endpoint) or RouteDoc()


def build_document(app: Flask) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for app."""
    rules = [r for r in app.url_map.iter_rules() if r.endpoint != "static"]
    docs = {rule.endpoint: route_doc(app, rule.endpoint) for rule in rules}
    schemas, components = _schemas(docs.values())
    settings: Settings | None = getattr(app.extensions.get("sdedge"), "settings", None)
    if settings is not None:
        for component in components.values():
            apply_limits(component, settings)
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(rules, key=lambda r: r.rule):
        path, params = _openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - SKIPPED_METHODS):
            operation = _operation(app, rule.endpoint, method, docs[rule.endpoint], schemas, components)
            operation["parameters"] = params + operation["parameters"]
            if rule.endpoint in PUBLIC_ENDPOINTS:
                operation["security"] = [{}]  # answered without a credential, accounts or not
            paths.setdefault(path, {})[method.lower()] = {"operationId": _operation_id(method, path), **operation}
    return {
        "openapi": "3.1.0",
        "info": {"title": "sdedge", "version": __version__,
                 "description": "Stable Diffusion on OpenVINO: native, AUTOMATIC1111 and OpenAI-compatible APIs."},
        "tags": [{"name": name} for name in dict.fromkeys(TAGS.values())],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
        # Once the server has an account every route needs one of these; with none it is open ({}).
        "security": [{name: []} for name in SECURITY_SCHEMES] + [{}],
    }


def apply_limits(schema: dict[str, Any], settings: Settings) -> None:
    """State this server's limits in a request schema, so a schema-valid request is one it accepts."""
    s = settings
    size = {"minimum": s.min_size, "multipleOf": 8}
    images = {"minimum": 1, "maximum": s.max_images}
    by_field: dict[str, dict[str, Any]] = {
        "width": {**size, "maximum": s.max_width}, "height": {**size, "maximum": s.max_height},
        "num_inference_steps": {"minimum": 1, "maximum": s.max_steps}, "steps": {"minimum": 1, "maximum": s.max_steps},
        "prompt": {"maxLength": s.max_prompt_length}, "negative_prompt": {"maxLength": s.max_prompt_length},
        "num_images": images, "n": images, "batch_size": images, "n_iter": images,
        "weight": {"minimum": -s.lora_max_weight, "maximum": s.lora_max_weight},  # a LoRA's (LoraRequest)
        "loras": {"maxItems": s.lora_max_count},
    }
    samplers = sorted({spelling for sampler in SAMPLERS.values() for spelling in (sampler.name, *sampler.aliases)})
    for name, prop in schema.get("properties", {}).items():
        limits = dict(by_field.get(name, {}))
        if name == "sampler":
            limits["enum"] = samplers
        for branch in prop.get("anyOf", [prop]):  # a nullable field: the non-null branch
            if branch.get("type") in ("integer", "number", "string") and limits:
                kinds = {"integer": ("minimum", "maximum", "multipleOf", "enum"),
                         "number": ("minimum", "maximum"), "string": ("maxLength", "enum")}[branch["type"]]
                branch.update({k: v for k, v in limits.items() if k in kinds})
            elif branch.get("type") == "array" and "maxItems" in limits:
                branch["maxItems"] = limits["maxItems"]


def _schemas(docs: Any) -> tuple[dict[tuple[type[BaseModel], str], dict[str, Any]], dict[str, Any]]:
    """JSON Schemas of every model the routes use, with shared definitions hoisted into components."""
    wanted: dict[tuple[type[BaseModel], str], None] = {}
    for doc in docs:
        for model in (doc.request, doc.query):
            if model is not None:
                wanted[(model, "validation")] = None
        for model in (*doc.responses.values(), doc.error):
            if model is not None:
                wanted[(model, "serialization")] = None
    keyed, top = models_json_schema(list(wanted), ref_template=REF)  # type: ignore[arg-type]
    return dict(keyed), top.get("$defs", {})  # type: ignore[arg-type]


def _openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """Flask's /jobs/<job_id> as OpenAPI's /jobs/{job_id}, with its path parameters."""
    params = []
    for converter, name in re.findall(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", rule):
        kind = "integer" if converter == "int" else "string"
        params.append({"name": name, "in": "path", "required": True, "schema": {"type": kind}})
    return re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule), params


def _operation_id(method: str, path: str) -> str:
    """Unique per path and method, even when one view serves several rules: post_sdapi_v1_skip."""
    return f"{method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_') or 'root'}"


def _operation(app: Flask, endpoint: str, method: str, doc: RouteDoc,
               schemas: dict[tuple[type[BaseModel], str], dict[str, Any]], components: dict[str, Any]) -> dict[str, Any]:
    view = app.view_functions[endpoint]
    summary = (view.__doc__ or endpoint).strip().splitlines()[0]
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [TAGS.get(endpoint.split(".")[0], endpoint.split(".")[0])],
        "parameters": _query_parameters(doc, schemas, components) + [
            {"name": name, "in": "header", "required": False, "description": text, "schema": {"type": "string"}}
            for name, text in doc.headers],
        "responses": _responses(doc, schemas),
    }
    if doc.request is not None and method in {"POST", "PUT", "PATCH"}:
        body = schemas[(doc.request, "validation")]
        content = {kind: {"schema": body} for kind in doc.request_content}
        operation["requestBody"] = {"required": True, "content": content}
    return operation


def _query_parameters(doc: RouteDoc, schemas: dict[tuple[type[BaseModel], str], dict[str, Any]],
                      components: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.query is None:
        return []
    schema = schemas[(doc.query, "validation")]
    if "$ref" in schema:  # hoisted into components: the parameters are its properties
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    properties = schema.get("properties", {})
    return [{"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in properties.items()]


def _responses(doc: RouteDoc, schemas: dict[tuple[type[BaseModel], str], dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in doc.responses.items():
        schema = schemas[(model, "serialization")] if model is not None else _generic_schema(doc.response_content)
        responses[str(status)] = {"description": _describe(status), "content": {doc.response_content: {"schema": schema}}}
    error = schemas[(doc.error, "serialization")]
    responses["default"] = {"description": "Error", "content": {"application/json": {"schema": error}}}
    return responses


def _generic_schema(content: str) -> dict[str, Any]:
    if content == "application/json":
        return {"type": "object"}
    return {"type": "string", "contentMediaType": content}


def _describe(status: int) -> str:
    return {200: "OK", 202: "Accepted: still running; poll the job", 503: "Not ready"}.get(status, str(status))


def document() -> dict[str, Any]:
    """The current app's document, built once and cached."""
    cached: dict[str, Any] | None = current_app.extensions.get("sdedge.openapi")
    if cached is None:
        cached = current_app.extensions["sdedge.openapi"] = build_document(current_app)
    return cached
