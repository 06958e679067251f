"""OpenAPI links: how the answer of one operation names the object of another.

A response carrying one object of a collection links, by the object's `id`, to every operation
on that object (`/v1/holds/{hold_id}`, `.../capture`, `.../release`) and to its trace. Clients
read them as documentation; schemathesis follows them in its stateful phase, so a run goes on
from what it created to what can be done with it. A list links to nothing: its first object
is not always there (a filtered page may be empty), and a link must always resolve.
"""

from __future__ import annotations

import re
from typing import Any

_ITEM = re.compile(r"^(?P<collection>/v1/[a-z_]+)/\{(?P<param>[a-z_]+)\}")
TRACE_PATH = "/v1/trace/{object_id}"
# The collections whose ids the trace follows (req_, pi_, hold_, txn_, acct_, po_, evt_, del_).
TRACED = {"/v1/accounts", "/v1/transactions", "/v1/holds", "/v1/payment_intents", "/v1/payouts", "/v1/events"}
METHODS = ("get", "post", "delete")


def _is_object_of(schema: dict[str, Any], components: dict[str, Any], collection: str) -> bool:
    """Whether the schema is one object of the collection (`"object": "hold"` for /v1/holds)."""
    properties = components.get(schema.get("$ref", "").rsplit("/", 1)[-1], {}).get("properties", {})
    return "id" in properties and properties.get("object", {}).get("enum") == [collection[len("/v1/"):-1]]


def _id_expression(schema: dict[str, Any], components: dict[str, Any], collection: str) -> str | None:
    """Where the response body holds the id of an object of the collection, if it holds one."""
    if _is_object_of(schema, components, collection):
        return "$response.body#/id"
    return None


def declare_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    paths: dict[str, Any] = result.get("paths", {})
    components: dict[str, Any] = result.get("components", {}).get("schemas", {})
    # Each object collection's operations on one object: "/v1/holds" -> [(param, method, operationId)]
    on_object: dict[str, list[tuple[str, str]]] = {}
    for path, item in paths.items():
        match = _ITEM.match(path)
        if match and path != TRACE_PATH:
            for method in METHODS:
                if method in item:
                    on_object.setdefault(match["collection"], []).append((match["param"], item[method]["operationId"]))
    trace_id = paths.get(TRACE_PATH, {}).get("get", {}).get("operationId")
    for path, item in paths.items():
        collection = (_ITEM.match(path) or {"collection": path.rstrip("/")})["collection"]
        targets = on_object.get(collection, [])
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {}).get("application/json")
                if not status.startswith("2") or content is None:
                    continue
                expression = _id_expression(content["schema"], components, collection)
                if expression is None:
                    continue
                links = {target: {"operationId": target, "parameters": {f"path.{param}": expression}}
                         for param, target in targets if target != operation["operationId"]}
                if trace_id and collection in TRACED:
                    links[trace_id] = {"operationId": trace_id, "parameters": {"path.object_id": expression}}
                if links:
                    response["links"] = links
    return result
