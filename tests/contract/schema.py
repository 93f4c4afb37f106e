"""Check requests and responses against the forge's published swagger 2.0 document.

Both sides of the forge contract use this: the stand-in Gitea's tests check that every
response it serves matches what real Gitea documents, and the forge client's tests check
that every request it sends is one Gitea would accept. Keeping one checker means the two
sides cannot drift apart silently.

    contract = SwaggerContract.load()                      # gitea-swagger-v1.json
    contract.validate_response("GET", "/api/v1/repos/acme/sample/tags/v1.0.0", 200, body)
    contract.validate_request("PATCH", "/repos/acme/sample/issues/3", {}, {"state": "closed"})

Paths may be concrete (`/api/v1/repos/acme/sample/issues/3`, with or without the base
path, scheme, host or query string) or a template (`/repos/{owner}/{repo}/issues/{index}`).
Each method raises `ContractViolation` (an `AssertionError`, so pytest shows it as a
failed assertion) listing every problem, and returns the matched `Operation`.

Two things swagger 2.0 cannot say, handled here on purpose:
- Go's JSON encoder writes `null` for nil pointers, slices and maps (`"statuses": null`,
  `"milestone": null`), so object properties accept `null` unless `nullable=False`.
- Gitea's error responses (`#/responses/error`, `forbidden`, `validationError`) have no
  schema, only "headers" `message` and `url` that are really body fields; bodies of those
  responses, and of the undocumented 401 every authenticated operation can answer, must be
  `{"message": str, "url": str}`.

`strict=True` also rejects properties the schema does not name (a stand-in sending
`state` where Gitea sends `status`, a client sending a misspelt option).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema  # type: ignore[import-untyped]
from referencing import Registry
from referencing.jsonschema import DRAFT4

SPECS_DIR = Path(__file__).resolve().parent / "specs"  # vendored: see specs/README.md
DEFAULT_SPEC = SPECS_DIR / "gitea-swagger-v1.json"

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_DOC_URI = "urn:forge-swagger"
_ERROR_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message", "url"],
    "properties": {"message": {"type": "string"}, "url": {"type": "string"}},
}
# Final path parameters whose values may hold slashes (`tags/v1.0.0`, `docs/a.md`).
_SLASHY_PARAMS = frozenset({"{ref}", "{filepath}", "{tag}", "{archive}", "{path}"})
# Answers the document does not describe but Gitea sends: operation id and status →
# another schema the body may match instead. `GET /git/refs/{ref}` answers one object
# (not a list) when exactly one ref matches the prefix exactly.
_QUIRK_SCHEMAS: dict[tuple[str, int], dict[str, Any]] = {
    ("repoListGitRefs", 200): {"$ref": "#/definitions/Reference"},
}
# Statuses any authenticated operation may answer without documenting them.
_IMPLICIT_ERROR_STATUSES = frozenset({401})


class ContractViolation(AssertionError):
    """A request or response does not match the swagger document; `problems` lists why."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = list(problems)
        super().__init__(f"{where}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Operation:
    """One (method, path template) of the document, with its parameters resolved."""

    method: str
    template: str
    spec: dict[str, Any]
    parameters: tuple[dict[str, Any], ...] = field(default=())

    @property
    def operation_id(self) -> str:
        return str(self.spec.get("operationId", f"{self.method} {self.template}"))

    def params_in(self, location: str) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.parameters if p.get("in") == location}


@dataclass(frozen=True)
class _Template:
    template: str
    segments: tuple[str, ...]

    @property
    def literal_count(self) -> int:
        return sum(1 for s in self.segments if not s.startswith("{"))

    def match(self, parts: list[str], greedy_last: bool) -> dict[str, str] | None:
        """Map concrete segments onto this template; `greedy_last` lets the final
        parameter swallow slashes (`git/refs/{ref}` with ref `tags/v1.0.0`)."""
        segs = self.segments
        if greedy_last and segs and segs[-1] in _SLASHY_PARAMS and len(parts) > len(segs):
            parts = [*parts[: len(segs) - 1], "/".join(parts[len(segs) - 1:])]
        if len(parts) != len(segs):
            return None
        values: dict[str, str] = {}
        for seg, part in zip(segs, parts):
            if seg.startswith("{") and seg.endswith("}"):
                if not part:
                    return None
                values[seg[1:-1]] = part
            elif seg != part:
                return None
        return values


class SwaggerContract:
    """A loaded swagger 2.0 document that validates traffic against its operations."""

    def __init__(self, document: dict[str, Any], *, source: str = "<document>") -> None:
        if document.get("swagger") != "2.0":
            raise ValueError(f"{source}: not a swagger 2.0 document (swagger={document.get('swagger')!r})")
        self.document = document
        self.source = source
        self.base_path = str(document.get("basePath", "")).rstrip("/")
        self._templates = [
            _Template(t, tuple(s for s in t.strip("/").split("/")))
            for t in document.get("paths", {})
        ]
        self._registries: dict[tuple[bool, bool], Registry] = {}

    @classmethod
    def load(cls, path: str | Path = DEFAULT_SPEC) -> SwaggerContract:
        """Read a swagger JSON file (default: the vendored Gitea main document)."""
        spec_path = Path(path)
        return cls(json.loads(spec_path.read_text(encoding="utf-8")), source=str(spec_path))

    # -- finding operations ------------------------------------------------------------

    def operation(self, method: str, path: str) -> Operation:
        """The operation for a method and a concrete path or template; raises
        ContractViolation when the document has no such operation."""
        verb = method.lower()
        template, _ = self._match_path(path)
        path_item = self.document["paths"][template]
        if verb not in path_item:
            raise ContractViolation(f"{method.upper()} {path}", [f"{template} has no {method.upper()} operation"])
        spec = path_item[verb]
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [*path_item.get("parameters", []), *spec.get("parameters", [])]:
            param = self._deref(raw)
            merged[(param["name"], param["in"])] = param
        return Operation(verb.upper(), template, spec, tuple(merged.values()))

    def _match_path(self, path: str) -> tuple[str, dict[str, str]]:
        bare = self._strip(path)
        if bare in self.document.get("paths", {}):
            return bare, {}
        parts = bare.strip("/").split("/")
        for greedy in (False, True):
            found = [(t, v) for t in self._templates if (v := t.match(parts, greedy)) is not None]
            if found:
                best = max(found, key=lambda item: item[0].literal_count)
                return best[0].template, best[1]
        raise ContractViolation(path, [f"no path template in {self.source} matches {bare!r}"])

    def _strip(self, path: str) -> str:
        """Drop scheme, host, query and the base path: keep what `paths` keys look like."""
        bare = urlsplit(path).path if "://" in path else path.split("?", 1)[0]
        if self.base_path and (bare == self.base_path or bare.startswith(self.base_path + "/")):
            bare = bare[len(self.base_path):]
        return bare or "/"

    # -- requests ----------------------------------------------------------------------

    def validate_request(self, method: str, path: str, query: dict[str, Any] | None = None,
                         json_body: Any = None, *, strict: bool = True) -> Operation:
        """Check path parameters, query parameters (unknown ones are errors: Gitea would
        silently ignore them, which hides client bugs) and the JSON body.

        `query` may also be taken from `path`'s query string; values may be strings,
        numbers, booleans or lists (repeated parameters)."""
        op = self.operation(method, path)
        where = f"{op.method} {path} ({op.operation_id})"
        problems: list[str] = []
        _, path_values = self._match_path(path)
        for name, value in path_values.items():
            param = op.params_in("path").get(name)
            if param is not None:
                problems += _check_simple_param(param, value)

        merged_query: dict[str, Any] = {}
        if "?" in path:
            for key, value in parse_qsl(path.split("?", 1)[1], keep_blank_values=True):
                merged_query.setdefault(key, []).append(value)
            merged_query = {k: v[0] if len(v) == 1 else v for k, v in merged_query.items()}
        merged_query.update(query or {})
        declared = op.params_in("query")
        for name, value in merged_query.items():
            if name not in declared:
                problems.append(f"query parameter {name!r} is not declared (declared: {sorted(declared)})")
                continue
            problems += _check_simple_param(declared[name], value)
        for name, param in declared.items():
            if param.get("required") and name not in merged_query:
                problems.append(f"required query parameter {name!r} is missing")

        body_params = op.params_in("body")
        if body_params:
            param = next(iter(body_params.values()))
            if json_body is None:
                if param.get("required"):
                    problems.append("the operation requires a JSON body")
            else:
                problems += self._schema_problems(param.get("schema", {}), json_body, strict=strict,
                                                  nullable=False)
        elif json_body is not None:
            problems.append("the operation takes no JSON body")
        if problems:
            raise ContractViolation(where, problems)
        return op

    # -- responses ---------------------------------------------------------------------

    def validate_response(self, method: str, path: str, status: int, json_body: Any = None, *,
                          strict: bool = False, nullable: bool = True) -> Operation:
        """Check that `status` is documented for the operation and the body matches its
        schema. Responses without a schema (302, 204, `notFound`) accept any body."""
        op = self.operation(method, path)
        where = f"{op.method} {path} -> {status} ({op.operation_id})"
        responses = op.spec.get("responses", {})
        raw = responses.get(str(status), responses.get("default"))
        if raw is None:
            if status in _IMPLICIT_ERROR_STATUSES:
                problems = self._schema_problems(_ERROR_BODY_SCHEMA, json_body, strict=False, nullable=False)
                if problems:
                    raise ContractViolation(where, problems)
                return op
            raise ContractViolation(where, [f"status {status} is not documented (documented: {sorted(responses)})"])
        response = self._deref(raw)
        schema = response.get("schema")
        if schema is None:
            headers = response.get("headers", {})
            if "message" in headers and "url" in headers:
                schema = _ERROR_BODY_SCHEMA
        if schema is None or schema.get("type") == "file":
            return op
        problems = self._schema_problems(schema, json_body, strict=strict, nullable=nullable)
        quirk = _QUIRK_SCHEMAS.get((op.operation_id, status))
        if problems and quirk is not None:
            alternative = self._schema_problems(quirk, json_body, strict=strict, nullable=nullable)
            problems = [] if not alternative else problems + [f"(nor Gitea's quirk shape) {p}" for p in alternative]
        if problems:
            raise ContractViolation(where, problems)
        return op

    def validate_definition(self, name: str, instance: Any, *, strict: bool = False,
                            nullable: bool = True) -> None:
        """Check one value against `#/definitions/<name>` (for fixtures and seeds)."""
        problems = self._schema_problems({"$ref": f"#/definitions/{name}"}, instance,
                                         strict=strict, nullable=nullable)
        if problems:
            raise ContractViolation(f"definition {name}", problems)

    # -- schema machinery --------------------------------------------------------------

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow a local `$ref` (`#/responses/X`, `#/parameters/X`) to its target."""
        seen = 0
        while "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"{self.source}: only local $refs are supported, got {ref!r}")
            target: Any = self.document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
            seen += 1
            if seen > 32:
                raise ValueError(f"{self.source}: $ref loop at {ref!r}")
        return node

    def _registry(self, strict: bool, nullable: bool) -> Registry:
        key = (strict, nullable)
        if key not in self._registries:
            doc = _adapt(copy.deepcopy({"definitions": self.document.get("definitions", {})}),
                         strict=strict, nullable=nullable)
            self._registries[key] = Registry().with_resource(_DOC_URI, DRAFT4.create_resource(doc))
        return self._registries[key]

    def _schema_problems(self, schema: dict[str, Any], instance: Any, *, strict: bool,
                         nullable: bool) -> list[str]:
        adapted = _adapt(schema, strict=strict, nullable=nullable)
        validator = jsonschema.Draft4Validator(adapted, registry=self._registry(strict, nullable))
        problems = []
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
            for leaf in _leaf_errors(error):
                location = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in leaf.absolute_path)
                problems.append(f"body{location}: {leaf.message}")
        return problems

    @cached_property
    def operations(self) -> list[tuple[str, str]]:
        """Every (METHOD, template) pair in the document."""
        return [(m.upper(), t) for t, item in self.document.get("paths", {}).items()
                for m in item if m in _HTTP_METHODS]


def _leaf_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """Explain an `anyOf` failure by the branch that was not the `null` alternative."""
    if error.validator == "anyOf" and error.context:
        real = [e for e in error.context if not (e.validator == "type" and e.validator_value == "null")]
        if real:
            return [leaf for e in real for leaf in _leaf_errors(e)]
    return [error]


def _adapt(node: Any, *, strict: bool, nullable: bool) -> Any:
    """Turn swagger 2.0 schemas into draft-4 schemas that say what Gitea really sends."""
    if isinstance(node, list):
        return [_adapt(v, strict=strict, nullable=nullable) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _adapt(v, strict=strict, nullable=nullable) for k, v in node.items()
           if k != "$ref"}
    if "$ref" in node:
        ref = node["$ref"]
        out["$ref"] = _DOC_URI + ref if ref.startswith("#/") else ref
    if out.get("type") == "file":
        out.pop("type")
    props = out.get("properties")
    if isinstance(props, dict) and isinstance(node.get("properties"), dict):
        if nullable:
            out["properties"] = {name: _allow_null(sub) for name, sub in props.items()}
        if strict and "additionalProperties" not in node:
            out["additionalProperties"] = False
    return out


def _allow_null(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"],
                **({"enum": [*schema["enum"], None]} if "enum" in schema else {})}
    return schema


def _check_simple_param(param: dict[str, Any], value: Any) -> list[str]:
    """Check a path or query value (as sent on the wire) against its declared type."""
    name = param.get("name", "?")
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and param.get("type") != "array" and len(values) > 1:
        return [f"parameter {name!r} is not an array but was sent {len(values)} times"]
    kind = param.get("items", {}).get("type") if param.get("type") == "array" else param.get("type")
    enum = param.get("items", {}).get("enum") if param.get("type") == "array" else param.get("enum")
    problems = []
    for item in values:
        text = str(item).lower() if isinstance(item, bool) else str(item)
        if kind == "integer" and not re.fullmatch(r"-?\d+", text):
            problems.append(f"parameter {name!r}={text!r} is not an integer")
        elif kind == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", text):
            problems.append(f"parameter {name!r}={text!r} is not a number")
        elif kind == "boolean" and text not in ("true", "false"):
            problems.append(f"parameter {name!r}={text!r} is not true/false")
        if enum and text not in [str(e) for e in enum]:
            problems.append(f"parameter {name!r}={text!r} is not one of {enum}")
    return problems
