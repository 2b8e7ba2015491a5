"""The OpenAPI document: valid OpenAPI 3, describing every route the gateway
serves, and every example request in it is accepted by the running gateway."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from gateway.app import create_app


@pytest.fixture(scope="module")
def document(gateway_service) -> dict:
    reply = gateway_service.get("/api/v1/openapi.json")
    assert reply.status_code == 200
    return reply.json()


def test_the_document_is_valid_openapi(document):
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_api_route_is_described(document):
    app = create_app()
    described = {re.sub(r"\{(\w+)\}", r"<\1>", path) for path in document["paths"]}
    for rule in app.url_map.iter_rules():
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule)
        if route.startswith("/api/") or route in ("/healthz", "/readyz", "/metrics"):
            assert route in described, f"{route} is served but not in the OpenAPI document"


def test_every_error_status_of_api_md_is_documented(document):
    statuses = {
        status
        for item in document["paths"].values()
        for operation in item.values()
        for status in operation["responses"]
    }
    assert {"400", "404", "413", "415", "429", "503", "504"} <= statuses


def example_requests(document: dict):
    """(method, path, example name, parts) of every example in the document."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            params = {
                p["name"]: p["example"] for p in operation.get("parameters", []) if "example" in p
            }
            concrete = re.sub(r"\{(\w+)\}", lambda m, given=params: str(given[m.group(1)]), path)
            body = operation.get("requestBody")
            if body is None:
                yield method, concrete, "no body", {}
                continue
            examples = body["content"]["multipart/form-data"]["examples"]
            assert examples, f"{method} {path} has no example"
            for name, example in examples.items():
                yield method, concrete, name, example["value"]


def test_every_example_request_is_accepted(gateway_service, document):
    sent = 0
    for method, path, name, parts in example_requests(document):
        files, data = {}, {}
        for key, value in parts.items():
            if isinstance(value, str) and value.startswith("@/"):
                fetched = gateway_service.get(value[1:])
                assert fetched.status_code == 200, f"{name}: {value} -> {fetched.status_code}"
                files[key] = (value.rsplit("/", 1)[-1], fetched.content)
            else:
                data[key] = str(value)
        if method == "get":
            reply = gateway_service.get(path)
        else:
            reply = gateway_service.post(path, files=files, data=data)
        assert reply.status_code == 200, f"{method.upper()} {path} ({name}): {reply.text[:300]}"
        sent += 1
    assert sent >= 14


def test_a_blueprint_can_add_its_paths(document):
    from gateway.openapi import openapi_document

    app = create_app()
    openapi_document(app).add_path(
        "/api/v1/extra", {"get": {"responses": {"200": {"description": "x"}}}}
    )
    with app.test_client() as client:
        composed = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/extra" in composed["paths"]
    assert set(document["paths"]) <= set(composed["paths"])
    validate(composed)
