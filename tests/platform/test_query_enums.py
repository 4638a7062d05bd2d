"""A list filter that takes one of a set of values refuses another, naming the parameter and
the values it takes, rather than answering an empty list as if nothing matched: a misspelt
``?reason=unknown_products`` would read as "no such refusals"."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import auth

# Query parameters that filter by a kind of thing: each takes one of a set of values.
ENUMERATED = {"reason", "status", "state", "kind", "channel", "type", "period", "by", "device"}


def _enum_of(schema: dict[str, Any], document: dict[str, Any]) -> list[Any]:
    if "$ref" in schema:
        return _enum_of(document["components"]["schemas"][schema["$ref"].split("/")[-1]], document)
    found = list(schema.get("enum", []))
    for alternative in schema.get("anyOf", []):
        found += _enum_of(alternative, document)
    return found


def test_a_refusals_reason_not_among_those_kept_is_422_listing_them(client, api_key) -> None:
    # when the tracked refusals are asked for a reason Rapport never gives
    admin = auth(api_key("admin"))
    response = client.get("/v1/orders/tracked/refusals?reason=bogus", headers=admin)

    # then the answer names the parameter and the reasons it takes, not an empty page
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == "reason"
    assert "'unknown_product'" in problem["detail"]
    assert "'totals_disagree'" in problem["detail"]
    # and a reason it gives is a filter as before
    listed = client.get("/v1/orders/tracked/refusals?reason=unknown_product", headers=admin)
    assert listed.status_code == 200
    assert listed.json()["refusals"] == []


def test_every_enumerated_list_filter_refuses_another_value_naming_itself(client, api_key) -> None:
    # given every query parameter of the API's reads
    document = client.get("/openapi.json").json()
    admin = auth(api_key("admin"))
    walked = []
    for path, item in document["paths"].items():
        operation = item.get("get")
        for parameter in (operation or {}).get("parameters", []):
            if parameter["in"] != "query":
                continue
            name = parameter["name"]
            allowed = _enum_of(parameter["schema"], document)
            # then each that filters by a kind of thing lists the values it takes
            assert allowed or name not in ENUMERATED, f"GET {path}: {name} takes any text"
            if not allowed:
                continue
            # and a value outside them is a 422 naming it and listing them
            required = {
                p["name"]: _enum_of(p["schema"], document)[0]
                if _enum_of(p["schema"], document)
                else "1"
                for p in operation["parameters"]
                if p["in"] == "query" and p.get("required") and p["name"] != name
            }
            url = re.sub(r"\{[^}]+\}", "1", path)
            response = client.get(url, params={**required, name: "bogus"}, headers=admin)
            assert response.status_code == 422, (path, name, response.text)
            problem = response.json()
            assert problem["field"] == name, (path, name, problem)
            assert repr(allowed[0]) in problem["detail"], (path, name, problem["detail"])
            walked.append(f"{path} {name}")
    assert "/v1/orders/tracked/refusals reason" in walked
    assert len(walked) >= 15
