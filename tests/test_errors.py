"""The error tree and its one JSON shape: every 4xx/5xx body has details as a list of {field, message, type}."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conftest import module_app
from sdedge.errors import Conflict, InvalidRequest, QueueFull, SdedgeError, error_for, map_exceptions


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """Every request of this module is refused (or only reads), so one app serves them all."""
    with module_app(tmp_path_factory.mktemp("errors")) as app:
        yield app


def assert_one_shape(body: dict[str, Any]) -> list[dict[str, Any]]:
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    details = error["details"]
    assert isinstance(details, list) and details, error
    for entry in details:
        assert {"field", "message", "type"} <= set(entry), entry
        assert entry["field"] is None or isinstance(entry["field"], str)
        assert isinstance(entry["message"], str) and isinstance(entry["type"], str)
    return details


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("post", "/generate/img2img", {"prompt": "x", "init_image": ""}, 400),  # empty image
    ("post", "/generate/img2img", {"prompt": "x", "init_image": "bm90IGFuIGltYWdl"}, 400),  # not an image
    ("post", "/image", {"prompt": "x", "width": 7}, 400),
    ("post", "/image", {"prompt": "x", "mode": "upscale"}, 400),
    ("post", "/image", {"prompt": "x", "colour": "red"}, 400),
    ("get", "/jobs/job-0000000000000000", None, 404),
    ("get", "/jobs?status=done", None, 400),
    ("get", "/jobs?limit=0", None, 400),
    ("get", "/no/such/route", None, 404),
    ("put", "/image", None, 405),
])
def test_every_4xx_has_details_as_a_list_of_field_message_type(client: FlaskClient, method: str, path: str,
                                                                body: Any, status: int) -> None:
    answer = getattr(client, method)(path, json=body) if body is not None else getattr(client, method)(path)
    assert answer.status_code == status, answer.get_json()
    assert_one_shape(answer.get_json())


def test_field_problems_name_the_field(client: FlaskClient) -> None:
    details = assert_one_shape(client.post("/generate/img2img", json={"prompt": "x", "init_image": ""}).get_json())
    assert details[0]["field"] == "init_image"


def test_context_travels_as_extra_keys_of_a_detail() -> None:
    full = QueueFull("the queue is full", {"queued": 3, "max_queue_size": 3}, {"Retry-After": "2"})
    assert full.details == [{"field": None, "message": "the queue is full", "type": "queue_full", "queued": 3,
                             "max_queue_size": 3}]
    assert Conflict("busy").details == [{"field": None, "message": "busy", "type": "conflict"}]


def test_stored_errors_come_back_as_their_class_with_the_shape() -> None:
    error = error_for({"code": "disk_full", "message": "no space left"})
    assert error.code == "disk_full" and error.details[0]["type"] == "disk_full"
    assert isinstance(error_for({"code": "invalid_request", "message": "bad"}), InvalidRequest)


def test_map_exceptions_translates_by_class_and_keeps_ours() -> None:
    table = {KeyError: lambda exc: InvalidRequest(f"no such key {exc}")}
    with pytest.raises(InvalidRequest, match="no such key"), map_exceptions(table):
        raise KeyError("x")
    with pytest.raises(Conflict), map_exceptions(table):
        raise Conflict("ours pass through")
    with pytest.raises(ValueError), map_exceptions(table):
        raise ValueError("unknown kinds pass through")
    assert issubclass(InvalidRequest, SdedgeError)


def test_a_405_names_the_allowed_methods(client: FlaskClient) -> None:
    answer = client.put("/image")
    assert answer.status_code == 405 and set(answer.headers["Allow"].split(", ")) >= {"POST"}
    assert_one_shape(answer.get_json())


def test_routing_errors_under_v1_speak_openais_shape(client: FlaskClient) -> None:
    for answer in (client.get("/v1/no-such-thing"), client.put("/v1/images/generations")):
        error = answer.get_json()["error"]
        assert answer.status_code in (404, 405) and set(error) == {"message", "type", "param", "code"}
