"""The OpenAPI 3.1 document: valid, generated from the pydantic models, covering every route; /docs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from sdedge.routes.a1111 import Txt2ImgRequest
from sdedge.app import create_app
from sdedge.config import Settings
from sdedge.routes.openai import ImagesResponse
from sdedge.openapi_spec import REF, apply_limits

SKIPPED_METHODS = {"HEAD", "OPTIONS"}


# -- helpers shared with the client tests -----------------------------------------------------
def openapi_path(rule: str) -> str:
    """Flask's /jobs/<job_id> as OpenAPI's /jobs/{job_id}."""
    return re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule)


def response_schema(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    """The JSON schema the document gives for one response (the `default` one for errors)."""
    responses = doc["paths"][path][method.lower()]["responses"]
    response = responses.get(str(status)) or responses["default"]
    return response["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def check_response(doc: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    """Fail unless body matches the document's schema for that response."""
    schema = {**response_schema(doc, path, method, status), "components": doc["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, f"{method} {path} {status}: " + "; ".join(e.message for e in errors[:5])


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """An app without the model: the document does not need it."""
    app = create_app(settings, load_model=False)
    yield app
    app.extensions["sdedge"].shutdown()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def doc(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()  # type: ignore[no-any-return]


# -- tests ------------------------------------------------------------------------------------
def test_document_validates_as_openapi_31(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(doc).validate()


def test_every_route_the_app_serves_is_documented(app: Flask, doc: dict[str, Any]) -> None:
    served = {(openapi_path(r.rule), m.lower()) for r in app.url_map.iter_rules() for m in r.methods or ()
              if m not in SKIPPED_METHODS and r.endpoint != "static"}
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert served - documented == set(), "routes missing from /openapi.json"
    assert documented - served == set(), "documented routes the app does not serve"
    for rule in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/v1/images/generations", "/v1/images/edits",
                 "/openapi.json", "/docs", "/image"):
        assert rule in doc["paths"]


def test_a_new_route_appears_without_being_described(settings: Settings) -> None:
    app = create_app(settings, load_model=False)
    try:
        app.add_url_rule("/extra/<int:n>", "extra", lambda n: "", methods=["PUT"])
        doc = app.test_client().get("/openapi.json").get_json()
        assert doc["paths"]["/extra/{n}"]["put"]["parameters"][0]["schema"] == {"type": "integer"}
    finally:
        app.extensions["sdedge"].shutdown()


def test_schemas_come_from_the_pydantic_models(doc: dict[str, Any], settings: Settings) -> None:
    components = doc["components"]["schemas"]
    expected = Txt2ImgRequest.model_json_schema(ref_template=REF)
    apply_limits(expected, settings)  # the document states this server's limits in the model's schema
    assert components["Txt2ImgRequest"] == expected
    generated = ImagesResponse.model_json_schema(ref_template=REF, mode="serialization")
    nested = generated.pop("$defs")
    assert components["ImagesResponse"] == generated
    assert all(components[name] == schema for name, schema in nested.items())
    body = doc["paths"]["/sdapi/v1/txt2img"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Txt2ImgRequest"}
    edits = doc["paths"]["/v1/images/edits"]["post"]
    assert "multipart/form-data" in edits["requestBody"]["content"]
    assert response_schema(doc, "/v1/images/edits", "post", 400) == {"$ref": "#/components/schemas/OpenAIErrorResponse"}
    assert response_schema(doc, "/sdapi/v1/txt2img", "post", 400) == {"$ref": "#/components/schemas/ErrorResponse"}


def test_query_parameters_are_documented(doc: dict[str, Any]) -> None:
    def query(path: str, method: str = "get") -> dict[str, Any]:
        params = doc["paths"][path][method]["parameters"]
        return {p["name"]: p["schema"] for p in params if p["in"] == "query"}

    assert set(query("/jobs")) == {"status", "limit", "before", "images"}
    status = doc["components"]["schemas"][query("/jobs")["status"]["anyOf"][0]["$ref"].rsplit("/", 1)[-1]]
    assert status["enum"] == ["queued", "processing", "completed", "failed", "canceled"]
    for path, method in (("/jobs/{job_id}", "get"), ("/jobs/{job_id}/cancel", "post"), ("/jobs/{job_id}/events", "get")):
        assert query(path, method)["images"]["default"] == "data"
    assert "skip_current_image" in query("/sdapi/v1/progress")


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', str(doc).replace("'", '"')))
    assert refs and refs <= set(doc["components"]["schemas"])


def test_responses_match_the_document(client: FlaskClient, doc: dict[str, Any]) -> None:
    for path in ("/sdapi/v1/samplers", "/sdapi/v1/schedulers", "/sdapi/v1/sd-models", "/sdapi/v1/options",
                 "/sdapi/v1/progress", "/sdapi/v1/upscalers", "/sdapi/v1/loras", "/sdapi/v1/scripts",
                 "/v1/models"):
        response = client.get(path)
        check_response(doc, path, "get", response.status_code, response.get_json())
    for path in ("/sdapi/v1/interrupt", "/sdapi/v1/skip", "/sdapi/v1/refresh-checkpoints"):
        response = client.post(path)
        check_response(doc, path, "post", response.status_code, response.get_json())
    missing = client.post("/sdapi/v1/txt2img", json={"prompt": "x"})  # the model is not loaded: 503
    assert missing.status_code == 503
    check_response(doc, "/sdapi/v1/txt2img", "post", 503, missing.get_json())
    refused = client.post("/v1/images/generations", json={"n": 1})
    assert refused.status_code == 400 and refused.get_json()["error"]["param"] == "prompt"
    check_response(doc, "/v1/images/generations", "post", 400, refused.get_json())


def test_docs_page_renders_the_document_from_this_origin_only(client: FlaskClient) -> None:
    response = client.get("/docs")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "openapi.json" in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page), "the page must not load other origins"
    assert "https://" not in page and "http://" not in page
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
