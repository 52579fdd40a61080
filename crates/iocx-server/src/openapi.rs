//! The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`. Built from one
//! table of routes, so a route added to [`crate::api::router`] without an entry here fails the
//! test that compares the two.

use serde_json::{Map, Value, json};

/// One operation.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    role: &'static str,
    params: &'static [(&'static str, &'static str, &'static str)],
    body: Option<&'static str>,
    ok: (u16, &'static str),
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    role: &'static str,
    params: &'static [(&'static str, &'static str, &'static str)],
    body: Option<&'static str>,
    ok: (u16, &'static str),
) -> Op {
    Op {
        method,
        path,
        summary,
        role,
        params,
        body,
        ok,
    }
}

const NAME: &[(&str, &str, &str)] = &[("name", "path", "string")];

/// What names of configurations, rules, lists, sharings, users and sources look like.
const NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
const ID: &[(&str, &str, &str)] = &[("id", "path", "integer")];

/// Every operation: method, path, summary, the role it needs, parameters
/// (name, in, type), the request schema and the success status with its schema.
const OPS: &[Op] = &[
    op(
        "get",
        "/openapi.json",
        "This document",
        "none",
        &[],
        None,
        (200, "Any"),
    ),
    op(
        "post",
        "/auth/login",
        "Log in: starts a session (cookie) and returns its CSRF token",
        "none",
        &[],
        Some("Login"),
        (200, "Session"),
    ),
    op(
        "post",
        "/auth/logout",
        "End the session",
        "viewer",
        &[],
        None,
        (204, ""),
    ),
    op(
        "get",
        "/auth/me",
        "Who the caller is",
        "viewer",
        &[],
        None,
        (200, "Me"),
    ),
    op(
        "get",
        "/indicators",
        "Search indicators by value, rule expression, saved rule or filters (keyset pages)",
        "viewer",
        &[
            ("value", "query", "string"),
            ("rule", "query", "string"),
            ("rule_name", "query", "string"),
            ("kind", "query", "string"),
            ("source", "query", "string"),
            ("severity", "query", "string"),
            ("active", "query", "boolean"),
            ("after", "query", "integer"),
            ("limit", "query", "integer"),
        ],
        None,
        (200, "IndicatorPage"),
    ),
    op(
        "post",
        "/indicators",
        "Add indicators as an API source",
        "analyst",
        &[],
        Some("AddIndicators"),
        (200, "AddResult"),
    ),
    op(
        "get",
        "/indicators/{id}",
        "An indicator with sources, deliveries and the explain answer",
        "viewer",
        ID,
        None,
        (200, "IndicatorDetail"),
    ),
    op(
        "get",
        "/connectors",
        "The built-in connectors and their fields",
        "viewer",
        &[],
        None,
        (200, "List"),
    ),
    op(
        "get",
        "/connectors/{name}",
        "One connector's spec",
        "viewer",
        NAME,
        None,
        (200, "Any"),
    ),
    op(
        "get",
        "/configurations",
        "Configurations (secrets shown only as set/unset)",
        "viewer",
        &[],
        None,
        (200, "List"),
    ),
    op(
        "post",
        "/configurations",
        "Create a configuration",
        "admin",
        &[],
        Some("Configuration"),
        (201, "ConfigurationSaved"),
    ),
    op(
        "get",
        "/configurations/{name}",
        "One configuration with its recent runs",
        "viewer",
        NAME,
        None,
        (200, "Any"),
    ),
    op(
        "patch",
        "/configurations/{name}",
        "Change a configuration (secrets are write-only)",
        "admin",
        NAME,
        Some("Configuration"),
        (200, "ConfigurationSaved"),
    ),
    op(
        "delete",
        "/configurations/{name}",
        "Delete a configuration",
        "admin",
        NAME,
        None,
        (204, ""),
    ),
    op(
        "post",
        "/configurations/{name}/test",
        "Test the connection",
        "analyst",
        NAME,
        None,
        (200, "TestResult"),
    ),
    op(
        "post",
        "/configurations/{name}/run",
        "Pull now",
        "analyst",
        NAME,
        None,
        (202, "Started"),
    ),
    op(
        "get",
        "/rules",
        "Business rules",
        "viewer",
        &[],
        None,
        (200, "List"),
    ),
    op(
        "post",
        "/rules",
        "Create a rule",
        "analyst",
        &[],
        Some("Rule"),
        (201, "Any"),
    ),
    op(
        "post",
        "/rules/preview",
        "Count and sample what an expression selects",
        "viewer",
        &[],
        Some("Preview"),
        (200, "PreviewResult"),
    ),
    op(
        "get",
        "/rules/{name}",
        "One rule",
        "viewer",
        NAME,
        None,
        (200, "Any"),
    ),
    op(
        "put",
        "/rules/{name}",
        "Replace a rule",
        "analyst",
        NAME,
        Some("Rule"),
        (200, "Any"),
    ),
    op(
        "delete",
        "/rules/{name}",
        "Delete a rule (refused while a sharing uses it)",
        "analyst",
        NAME,
        None,
        (204, ""),
    ),
    op(
        "get",
        "/allowlists",
        "Allow-lists",
        "viewer",
        &[],
        None,
        (200, "List"),
    ),
    op(
        "post",
        "/allowlists",
        "Create an allow-list",
        "analyst",
        &[],
        Some("AllowList"),
        (201, "Any"),
    ),
    op(
        "get",
        "/allowlists/{name}",
        "One allow-list with its entries",
        "viewer",
        NAME,
        None,
        (200, "Any"),
    ),
    op(
        "delete",
        "/allowlists/{name}",
        "Delete an allow-list",
        "analyst",
        NAME,
        None,
        (204, ""),
    ),
    op(
        "post",
        "/allowlists/{name}/entries",
        "Add entries",
        "analyst",
        NAME,
        Some("Entries"),
        (200, "Any"),
    ),
    op(
        "delete",
        "/allowlists/{name}/entries",
        "Remove entries",
        "analyst",
        NAME,
        Some("Entries"),
        (200, "Any"),
    ),
    op(
        "get",
        "/sharings",
        "Sharings",
        "viewer",
        &[],
        None,
        (200, "List"),
    ),
    op(
        "post",
        "/sharings",
        "Create a sharing",
        "analyst",
        &[],
        Some("Sharing"),
        (201, "Any"),
    ),
    op(
        "get",
        "/sharings/{name}",
        "One sharing with delivery counts and recent runs",
        "viewer",
        NAME,
        None,
        (200, "Any"),
    ),
    op(
        "put",
        "/sharings/{name}",
        "Replace a sharing",
        "analyst",
        NAME,
        Some("Sharing"),
        (200, "Any"),
    ),
    op(
        "delete",
        "/sharings/{name}",
        "Delete a sharing",
        "analyst",
        NAME,
        None,
        (204, ""),
    ),
    op(
        "post",
        "/sharings/{name}/enable",
        "Enable (shares what matches at its next run)",
        "analyst",
        NAME,
        None,
        (200, "Any"),
    ),
    op(
        "post",
        "/sharings/{name}/disable",
        "Disable",
        "analyst",
        NAME,
        None,
        (200, "Any"),
    ),
    op(
        "post",
        "/sharings/{name}/sync",
        "Share existing indicators of a period: count (send=false) or send",
        "viewer (count) / analyst (send)",
        NAME,
        Some("Sync"),
        (200, "Any"),
    ),
    op(
        "post",
        "/sharings/{name}/run",
        "Share now",
        "analyst",
        NAME,
        None,
        (202, "Started"),
    ),
    op(
        "get",
        "/runs",
        "Runs, newest first",
        "viewer",
        &[
            ("subject", "query", "string"),
            ("state", "query", "string"),
            ("kind", "query", "string"),
            ("limit", "query", "integer"),
        ],
        None,
        (200, "List"),
    ),
    op(
        "get",
        "/runs/{id}",
        "One run",
        "viewer",
        ID,
        None,
        (200, "Any"),
    ),
    op(
        "get",
        "/runs/{id}/logs",
        "A run's log lines",
        "viewer",
        ID,
        None,
        (200, "List"),
    ),
    op(
        "get",
        "/stats",
        "Dashboard figures",
        "viewer",
        &[],
        None,
        (200, "Any"),
    ),
    op("get", "/users", "Users", "admin", &[], None, (200, "List")),
    op(
        "post",
        "/users",
        "Create a user",
        "admin",
        &[],
        Some("NewUser"),
        (201, "Any"),
    ),
    op(
        "patch",
        "/users/{name}",
        "Change a user (anyone: their own password)",
        "admin",
        NAME,
        Some("UserPatch"),
        (200, "Any"),
    ),
    op(
        "delete",
        "/users/{name}",
        "Delete a user",
        "admin",
        NAME,
        None,
        (204, ""),
    ),
    op(
        "get",
        "/tokens",
        "API tokens (admins: anyone's)",
        "viewer",
        &[("user", "query", "string")],
        None,
        (200, "List"),
    ),
    op(
        "post",
        "/tokens",
        "Generate a token (shown once)",
        "viewer",
        &[],
        Some("NewToken"),
        (201, "CreatedToken"),
    ),
    op(
        "delete",
        "/tokens/{id}",
        "Revoke a token",
        "viewer (own) / admin",
        ID,
        None,
        (204, ""),
    ),
    op(
        "get",
        "/audit",
        "The audit log, newest first",
        "admin",
        &[
            ("before", "query", "integer"),
            ("actor", "query", "string"),
            ("action", "query", "string"),
            ("target", "query", "string"),
            ("limit", "query", "integer"),
        ],
        None,
        (200, "AuditPage"),
    ),
];

fn schemas() -> Value {
    let obj = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required});
    // Request bodies: unknown keys are refused (a misspelt key never passes silently).
    // Optional members may also be null (as serde reads an absent `Option`).
    let req = |mut props: Value, required: &[&str]| {
        if let Some(map) = props.as_object_mut() {
            for (k, v) in map.iter_mut() {
                if !required.contains(&k.as_str()) {
                    *v = json!({"anyOf": [v.clone(), {"type": "null"}]});
                }
            }
        }
        json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
    };
    let name = json!({"type": "string", "pattern": NAME_PATTERN});
    let str_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({
        "Any": {"type": "object"},
        "List": {"type": "object", "properties": {"items": {"type": "array"}}, "required": ["items"]},
        "Error": obj(json!({"error": obj(json!({"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}), &["code", "message"])}), &["error"]),
        "Login": req(json!({"username": {"type": "string"}, "password": {"type": "string"}}), &["username", "password"]),
        "Session": obj(json!({"user": {"type": "object"}, "csrf_token": {"type": "string"}, "expires_at": {"type": "string"}}), &["user", "csrf_token"]),
        "Me": obj(json!({"user": {"type": "string"}, "role": {"$ref": "#/components/schemas/Role"}, "actor": {"type": "string"}}), &["user", "role"]),
        "Role": {"type": "string", "enum": ["viewer", "analyst", "admin"]},
        "Severity": {"type": "string", "enum": ["unknown", "low", "medium", "high", "critical"]},
        "Kind": {"type": "string", "enum": ["url", "domain", "ipv4", "ipv6", "cidr", "md5", "sha1", "sha256", "email"]},
        "IndicatorPage": obj(json!({"items": {"type": "array", "items": {"type": "object"}}, "next": {"type": ["string", "null"]}}), &["items"]),
        "IndicatorDetail": obj(json!({"indicator": {"type": "object"}, "deliveries": {"type": "array"}, "explain": {"type": "array"}}), &["indicator"]),
        "AddIndicators": req(json!({
            "source": name,
            "indicators": {"type": "array", "minItems": 1, "maxItems": 100000, "items": req(json!({
                "value": {"type": "string"}, "kind": {"$ref": "#/components/schemas/Kind"}, "severity": {"$ref": "#/components/schemas/Severity"},
                "reputation": {"type": "integer", "minimum": 1, "maximum": 10}, "tags": {"type": "array", "items": {"type": "string"}},
                "comment": {"type": "string"}, "expires": {"type": "string", "format": "date-time"}, "safe": {"type": "boolean"}}), &["value"])}
        }), &["source", "indicators"]),
        "AddResult": obj(json!({"new": {"type": "integer"}, "updated": {"type": "integer"}, "unchanged": {"type": "integer"}, "rejected": {"type": "array"}}), &["new", "rejected"]),
        "Action": req(json!({"action": {"type": "string", "enum": ["tag", "untag", "safe", "unsafe", "clear"]},
            "ids": {"type": "array", "minItems": 1, "maxItems": 100000, "items": {"type": "integer"}},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 100}}}), &["action", "ids"]),
        "Configuration": req(json!({
            "name": name, "connector": {"type": "string"}, "enabled": {"type": "boolean"},
            "values": {"type": "object"}, "secrets": str_map, "unset": {"type": "array", "items": {"type": "string"}},
            "interval_secs": {"type": "integer"}, "aging_days": {"type": "integer"}, "override_reputation": {"type": ["integer", "null"]},
            "initial_range_days": {"type": "integer"}, "polling": {"type": "boolean"}, "verify_tls": {"type": "boolean"},
            "ca_bundle": {"type": ["string", "null"]}, "proxy": {"type": ["string", "null"]}, "timeout_secs": {"type": "integer"}}), &[]),
        "ConfigurationSaved": obj(json!({"configuration": {"type": "object"}, "warnings": {"type": "array", "items": {"type": "string"}}}), &["configuration"]),
        "TestResult": obj(json!({"ok": {"type": "boolean"}, "message": {"type": "string"}}), &["ok", "message"]),
        "Started": obj(json!({"started": {"type": "boolean"}, "runs": {"type": "string"}}), &["started"]),
        "Rule": req(json!({"name": name, "expression": {"type": "string"}, "description": {"type": "string"},
            "exclusions": {"type": "array", "items": {"type": "string"}}, "muted": {"type": "boolean"}}), &["expression"]),
        "Preview": req(json!({"expression": {"type": "string"}, "exclusions": {"type": "array", "items": {"type": "string"}},
            "sample": {"type": "integer", "minimum": 0, "maximum": 100}}), &["expression"]),
        "PreviewResult": obj(json!({"expression": {"type": "string"}, "count": {"type": "integer"}, "sample": {"type": "array"}, "seconds": {"type": "number"}}), &["count", "sample"]),
        "AllowList": req(json!({"name": name, "description": {"type": "string"}, "entries": {"type": "array", "items": {"type": "string"}}}), &["name"]),
        "Entries": req(json!({"entries": {"type": "array", "items": {"type": "string"}}}), &["entries"]),
        "Sharing": req(json!({"name": name, "description": {"type": "string"}, "enabled": {"type": "boolean"},
            "sources": {"type": "array", "items": {"type": "string"}}, "rule": {"type": "string"}, "destination": {"type": "string"},
            "target": {"type": "string"}, "params": {"type": "object"}, "interval_secs": {"type": "integer", "minimum": 60},
            "after_pull": {"type": "boolean"}}), &["rule", "destination", "target"]),
        "Sync": req(json!({"days": {"type": "integer", "minimum": 1, "maximum": 3650}, "send": {"type": "boolean"}}), &[]),
        "NewUser": req(json!({"name": name, "password": {"type": "string", "minLength": 12, "maxLength": 256}, "role": {"$ref": "#/components/schemas/Role"}}), &["name", "password", "role"]),
        "UserPatch": req(json!({"password": {"type": "string", "minLength": 12, "maxLength": 256}, "role": {"$ref": "#/components/schemas/Role"}, "disabled": {"type": "boolean"}}), &[]),
        "NewToken": req(json!({"name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S"}, "role": {"$ref": "#/components/schemas/Role"}, "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650}}), &["name"]),
        "CreatedToken": obj(json!({"token": {"type": "string"}, "id": {"type": "integer"}, "name": {"type": "string"}, "role": {"$ref": "#/components/schemas/Role"}}), &["token", "id"]),
        "AuditPage": obj(json!({"items": {"type": "array"}, "next": {"type": ["integer", "null"]}}), &["items"]),
    })
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPS {
        let mut operation = Map::new();
        let mut responses_extra: Vec<(&str, &str)> = Vec::new();
        operation.insert("summary".into(), json!(o.summary));
        operation.insert("description".into(), json!(format!("Role: {}.", o.role)));
        operation.insert(
            "operationId".into(),
            json!(format!(
                "{}{}",
                o.method,
                o.path.replace(['/', '{', '}', '.'], "_")
            )),
        );
        let params: Vec<Value> = o
            .params
            .iter()
            .map(|(name, at, ty)| {
                let schema = match (*name, *ty) {
                    ("limit", _) => json!({"type": "integer", "minimum": 1, "maximum": 1000}),
                    ("id", _) => json!({"type": "integer", "minimum": 1, "maximum": i64::MAX}),
                    ("after" | "before", _) => json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}),
                    ("kind", _) if o.path == "/runs" => json!({"type": "string", "enum": ["pull", "share", "import"]}),
                    ("state", _) => json!({"type": "string", "enum": ["running", "succeeded", "failed", "interrupted"]}),
                    ("kind", _) => json!({"$ref": "#/components/schemas/Kind"}),
                    ("severity", _) => json!({"$ref": "#/components/schemas/Severity"}),
                    (_, ty) => json!({"type": ty}),
                };
                json!({"name": name, "in": at, "required": *at == "path", "schema": schema})
            })
            .collect();
        if !params.is_empty() {
            operation.insert("parameters".into(), json!(params));
        }
        if o.body.is_some() {
            responses_extra.push(("415", "The body is not application/json"));
        }
        if let Some(b) = o.body {
            operation.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}}),
            );
        }
        let mut responses = Map::new();
        for (code, text) in responses_extra.drain(..) {
            responses.insert(code.into(), error_response(text));
        }
        let (status, schema) = o.ok;
        responses.insert(
            status.to_string(),
            if schema.is_empty() {
                json!({"description": "Done"})
            } else {
                json!({"description": "Success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
            },
        );
        responses.insert(
            "400".into(),
            error_response("Invalid input; `field` names it"),
        );
        if o.role != "none" {
            responses.insert("401".into(), error_response("Not authenticated"));
            responses.insert(
                "403".into(),
                error_response("The role does not allow it, or the CSRF token is missing"),
            );
        }
        if o.path.contains('{') || o.params.iter().any(|p| p.0 == "rule_name") {
            responses.insert("404".into(), error_response("No such object"));
        }
        if matches!(o.method, "post" | "put" | "patch" | "delete") {
            responses.insert(
                "409".into(),
                error_response("Conflicts with the current state"),
            );
            responses.insert("413".into(), error_response("Body too large"));
        }
        if o.path == "/auth/login" {
            responses.insert("401".into(), error_response("Wrong user name or password"));
            responses.insert("429".into(), error_response("Too many failed logins"));
        }
        if o.path.ends_with("/test") || o.path.ends_with("/sync") {
            responses.insert("502".into(), error_response("The vendor's API failed"));
        }
        operation.insert("responses".into(), Value::Object(responses));
        if o.role == "none" {
            operation.insert("security".into(), json!([]));
        }
        let entry = paths
            .entry(o.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = entry.as_object_mut() {
            m.insert(o.method.into(), Value::Object(operation));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "iocx API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The iocx threat-intelligence exchange. Authenticate with an API token (`Authorization: Bearer iocx_…`) or a session cookie from /auth/login (then send X-CSRF-Token on changes). Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"token": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "An API token from POST /tokens or `iocx tokens create`"},
                "session": {"type": "apiKey", "in": "cookie", "name": "iocx_session"},
            },
        },
    })
}

/// `(method, path)` of every documented operation, for the test that compares the document
/// with the router.
pub fn operations() -> Vec<(&'static str, &'static str)> {
    OPS.iter().map(|o| (o.method, o.path)).collect()
}
