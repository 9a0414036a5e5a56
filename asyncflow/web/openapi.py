"""`/openapi.json`, built from the operation table the routes are built from."""

from __future__ import annotations

import re
from typing import Any

from asyncflow import __version__
from asyncflow.web.api import Operation

_STATUS_TEXT = {
    200: "OK", 400: "the request is invalid (the detail says what to change)",
    401: "no valid bearer token or session", 403: "a browser request from another origin",
    404: "no such DAG, run, task or try", 409: "conflicts with the current state",
    503: "the scheduler does not answer",
}  # fmt: skip
_ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}


def document(operations: list[Operation]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)", op.path)
        ]
        parameters += [
            {"name": name, "in": "query", "required": False, "schema": {"type": kind},
             "description": text}
            for name, kind, text in op.query
        ]  # fmt: skip
        responses: dict[str, Any] = {}
        for status in sorted({*op.responses, *((401,) if op.auth else ())}):
            content_type = op.content_type if status < 400 else "application/json"
            schema: dict[str, Any] = _ERROR if status >= 400 else {}
            responses[str(status)] = {
                "description": _STATUS_TEXT.get(status, "OK"),
                "content": {content_type: {"schema": schema}},
            }
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": op.handler.__name__,
            "parameters": parameters,
            "responses": responses,
        }
        if op.tags:
            entry["tags"] = list(op.tags)
        if op.auth:
            entry["security"] = [{"bearer": []}, {"session": []}]
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": op.body}},
            }
        paths.setdefault(re.sub(r"{(\w+):\w+}", r"{\1}", op.path), {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "asyncflow", "version": __version__},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "the token in <home>/api-token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "asyncflow_session"},
            }
        },
    }  # fmt: skip
