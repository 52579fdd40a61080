//! HTTP handlers: the v2 iterator and URL-list endpoints behind the token and rate-limit guard,
//! the v1 file-hash endpoint, and the emulator's `/_sim/` routes.

use std::io::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, patch, post};
use serde_json::{Map, Value, json};

use super::model::{AlertType, ListType, OTHER_ALERT_TYPES, UrlList};
use super::state::{
    ExportAnswer, FileHashError, ListError, ListView, Operation, RateVerdict, State, UpdateAction,
};
use super::{v1_error, v2_error};

type App = Arc<State>;

/// The emulator's routes (before the shared fault layer and admin routes are added).
pub fn router(state: App) -> Router {
    let v2 = Router::new()
        .route(
            "/api/v2/events/dataexport/alerts/{alert_type}",
            get(dataexport_alerts),
        )
        .route(
            "/api/v2/policy/urllist",
            get(list_url_lists).post(create_url_list),
        )
        .route("/api/v2/policy/urllist/deploy", post(deploy_url_lists))
        .route(
            "/api/v2/policy/urllist/{id}",
            get(get_url_list).put(put_url_list).delete(delete_url_list),
        )
        .route(
            "/api/v2/policy/urllist/{id}/{action}",
            patch(patch_url_list),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            v2_guard,
        ));
    Router::new()
        .merge(v2)
        .route("/api/v1/updateFileHashList", any(update_file_hash_list))
        .route("/_sim/state", get(sim_state).delete(sim_reset))
        .route("/_sim/alerts", post(sim_alerts))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found(request: Request) -> Response {
    if request.uri().path().starts_with("/api/v1/") {
        return v1_error(StatusCode::NOT_FOUND, vec!["Not Found".to_string()]);
    }
    v2_error(StatusCode::NOT_FOUND, "Not Found")
}

async fn method_not_allowed() -> Response {
    v2_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

// ---------------------------------------------------------------- guard

fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get("netskope-api-token")
        .and_then(|v| v.to_str().ok())
    {
        return Some(v.trim().to_string());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
}

fn rate_headers(response: &mut Response, verdict: &RateVerdict) {
    let h = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", u64::from(verdict.limit)),
        ("ratelimit-remaining", u64::from(verdict.remaining)),
        ("ratelimit-reset", verdict.reset),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            h.insert(name, v);
        }
    }
}

/// Checks the v2 token (401 when missing or wrong, 403 for a read-only token on a write) and the
/// token's rate-limit window (429 when spent), and adds the `ratelimit-*` headers.
async fn v2_guard(AxState(state): AxState<App>, request: Request, next: Next) -> Response {
    let args = state.args();
    let Some(token) = presented_token(request.headers()) else {
        return v2_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: the Netskope-Api-Token header is missing",
        );
    };
    let read_only = args.read_only_token.as_deref() == Some(token.as_str());
    if token != args.token && !read_only {
        return v2_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: invalid or expired API token",
        );
    }
    if read_only && request.method() != Method::GET {
        return v2_error(
            StatusCode::FORBIDDEN,
            "Forbidden: the API token has no write privilege for this endpoint",
        );
    }
    let verdict = state.rate_v2(&token);
    if let Some(v) = verdict
        && !v.allowed
    {
        let mut response = v2_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests: the rate limit of this API token is exceeded",
        );
        rate_headers(&mut response, &v);
        if let Ok(value) = HeaderValue::from_str(&v.reset.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let mut response = next.run(request).await;
    if let Some(v) = verdict {
        rate_headers(&mut response, &v);
    }
    response
}

// ---------------------------------------------------------------- bodies and queries

async fn read_body(state: &State, body: Body, v1: bool) -> Result<Bytes, Response> {
    let limit = state.args().max_body_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        let message = format!("Request body too large: the limit is {limit} bytes");
        if v1 {
            v1_error(StatusCode::PAYLOAD_TOO_LARGE, vec![message])
        } else {
            v2_error(StatusCode::PAYLOAD_TOO_LARGE, &message)
        }
    })
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

fn query_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn bad_request(message: &str) -> Response {
    v2_error(StatusCode::BAD_REQUEST, message)
}

/// A 400 in the v2 envelope, small enough to travel in a `Result`.
#[derive(Debug)]
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        bad_request(&self.0)
    }
}

// ---------------------------------------------------------------- data export

async fn dataexport_alerts(
    AxState(state): AxState<App>,
    Path(alert_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let known =
        AlertType::parse(&alert_type).is_some() || OTHER_ALERT_TYPES.contains(&alert_type.as_str());
    if !known {
        return v2_error(
            StatusCode::NOT_FOUND,
            &format!("Unknown alert type '{alert_type}'"),
        );
    }
    let pairs = query_pairs(query.as_deref());
    let Some(op) = query_value(&pairs, "operation") else {
        return bad_request(
            "operation is required: one of next, head, tail, resend or an epoch timestamp",
        );
    };
    let Some(op) = Operation::parse(op) else {
        return bad_request(&format!(
            "Invalid operation '{op}': use next, head, tail, resend or an epoch timestamp"
        ));
    };
    let index = query_value(&pairs, "index").unwrap_or("");
    if index.len() > 256 {
        return bad_request("index is longer than 256 characters");
    }
    let gzip = accepts_gzip(&headers);
    let (kind, name) = (alert_type.to_ascii_lowercase(), index.to_string());
    // A full page can be megabytes of JSON to assemble and compress: keep it off the reactor.
    let answer = tokio::task::spawn_blocking(move || match state.export(&kind, &name, op) {
        ExportAnswer::Page { body, .. } => Ok(encode(body.into_bytes(), gzip)),
        ExportAnswer::TooEarly { retry_after } => Err(retry_after),
    })
    .await;
    match answer {
        Ok(Ok((bytes, gzipped))) => json_body(bytes, gzipped),
        Ok(Err(retry_after)) => {
            let mut response = v2_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Iterator '{index}' was called before wait_time elapsed: retry in {retry_after} s"
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
        Err(_) => v2_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// The body gzipped when `gzip` (and compression worked), with whether it is.
fn encode(bytes: Vec<u8>, gzip: bool) -> (Vec<u8>, bool) {
    if gzip {
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(bytes.len() / 4),
            flate2::Compression::fast(),
        );
        if encoder.write_all(&bytes).is_ok()
            && let Ok(out) = encoder.finish()
        {
            return (out, true);
        }
    }
    (bytes, false)
}

fn json_body(bytes: Vec<u8>, gzipped: bool) -> Response {
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    if gzipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

// ---------------------------------------------------------------- URL lists

const LIST_FIELDS: &[&str] = &[
    "id",
    "name",
    "data",
    "modify_by",
    "modify_time",
    "modify_type",
    "pending",
];

fn list_json(list: &UrlList, fields: Option<&[String]>) -> Value {
    let mut m = Map::new();
    let want = |k: &str| fields.is_none_or(|f| f.iter().any(|x| x == k));
    for key in LIST_FIELDS {
        if !want(key) {
            continue;
        }
        let value = match *key {
            "id" => json!(list.id),
            "name" => json!(list.name),
            "data" => json!({"urls": list.working.urls, "type": list.working.list_type.as_str()}),
            "modify_by" => json!(list.modify_by),
            "modify_time" => json!(list.modify_time),
            "modify_type" => json!(list.modify_type.as_str()),
            _ => json!(u8::from(list.pending)),
        };
        m.insert((*key).to_string(), value);
    }
    Value::Object(m)
}

fn list_error(err: ListError) -> Response {
    match err {
        ListError::NotFound(_) => v2_error(StatusCode::NOT_FOUND, &err.message()),
        ListError::InvalidEntries(invalid) => {
            let message: Vec<Value> = invalid
                .into_iter()
                .map(|(entry, reason)| json!([entry, reason]))
                .collect();
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "message": message })),
            )
                .into_response()
        }
        other => bad_request(&other.message()),
    }
}

fn parse_id(id: &str) -> Result<i64, BadRequest> {
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| BadRequest(format!("Invalid URL list id '{id}'")))
}

/// The fields of a URL-list request body, each checked for its type.
#[derive(Debug, Default)]
struct ListBody {
    name: Option<String>,
    list_type: Option<ListType>,
    urls: Option<Vec<String>>,
}

fn parse_list_body(bytes: &[u8]) -> Result<ListBody, BadRequest> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| BadRequest(format!("Invalid JSON body: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(BadRequest(
            "The request body must be a JSON object".to_string(),
        ));
    };
    let mut body = ListBody::default();
    match obj.get("name") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 => {
            body.name = Some(s.trim().to_string());
        }
        Some(_) => {
            return Err(BadRequest(
                "name must be a non-empty string of at most 255 characters".to_string(),
            ));
        }
    }
    let data = match obj.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::Object(d)) => Some(d),
        Some(_) => {
            return Err(BadRequest(
                "data must be an object with urls and type".to_string(),
            ));
        }
    };
    if let Some(d) = data {
        match d.get("urls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                let mut urls = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => urls.push(s.clone()),
                        _ => return Err(BadRequest("urls must be an array of URLs".to_string())),
                    }
                }
                body.urls = Some(urls);
            }
            Some(_) => return Err(BadRequest("urls must be an array of URLs".to_string())),
        }
        match d.get("type") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) => match ListType::parse(t) {
                Some(t) => body.list_type = Some(t),
                None => {
                    return Err(BadRequest(
                        "data.type must be one of exact, regex".to_string(),
                    ));
                }
            },
            Some(_) => {
                return Err(BadRequest(
                    "data.type must be one of exact, regex".to_string(),
                ));
            }
        }
    }
    Ok(body)
}

async fn list_url_lists(AxState(state): AxState<App>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let view = match query_value(&pairs, "pending") {
        None | Some("") => ListView::All,
        Some("0") => ListView::Applied,
        Some("1") => ListView::Pending,
        Some(_) => return bad_request("pending must be 0 or 1"),
    };
    let fields: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "field" || k == "fields")
        .flat_map(|(_, v)| v.split(','))
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    let number = |key: &str| -> Result<Option<usize>, BadRequest> {
        match query_value(&pairs, key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<usize>()
                .map(Some)
                .map_err(|_| BadRequest(format!("{key} must be a non-negative integer"))),
        }
    };
    let offset = match number("offset") {
        Ok(v) => v.unwrap_or(0),
        Err(r) => return r.into_response(),
    };
    let limit = match number("limit") {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let fields = (!fields.is_empty()).then_some(fields.as_slice());
    let lists: Vec<Value> = state
        .url_lists(view)
        .iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|l| list_json(l, fields))
        .collect();
    axum::Json(lists).into_response()
}

async fn create_url_list(AxState(state): AxState<App>, body: Body) -> Response {
    let bytes = match read_body(&state, body, false).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let body = match parse_list_body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let Some(name) = body.name else {
        return bad_request("name required");
    };
    let Some(urls) = body.urls else {
        return bad_request("urls must be an array of URLs");
    };
    let Some(list_type) = body.list_type else {
        return bad_request("data.type must be one of exact, regex");
    };
    match state.create_url_list(&name, list_type, &urls) {
        Ok(list) => axum::Json(vec![list_json(&list, None)]).into_response(),
        Err(e) => list_error(e),
    }
}

async fn get_url_list(AxState(state): AxState<App>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match state.url_list(id) {
        Some(list) => axum::Json(list_json(&list, None)).into_response(),
        None => list_error(ListError::NotFound(id)),
    }
}

async fn put_url_list(
    AxState(state): AxState<App>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let bytes = match read_body(&state, body, false).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let body = match parse_list_body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let Some(name) = body.name else {
        return bad_request("name required");
    };
    let Some(urls) = body.urls else {
        return bad_request("urls must be an array of URLs");
    };
    let Some(list_type) = body.list_type else {
        return bad_request("data.type must be one of exact, regex");
    };
    match state.update_url_list(id, UpdateAction::Put, Some(&name), Some(list_type), &urls) {
        Ok(list) => axum::Json(list_json(&list, None)).into_response(),
        Err(e) => list_error(e),
    }
}

async fn patch_url_list(
    AxState(state): AxState<App>,
    Path((id, action)): Path<(String, String)>,
    body: Body,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let action = match action.as_str() {
        "append" => UpdateAction::Append,
        "replace" => UpdateAction::Replace,
        other => {
            return bad_request(&format!(
                "Invalid action '{other}': must be one of append, replace"
            ));
        }
    };
    let bytes = match read_body(&state, body, false).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let body = match parse_list_body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let Some(urls) = body.urls else {
        return bad_request("urls must be an array of URLs");
    };
    match state.update_url_list(id, action, body.name.as_deref(), body.list_type, &urls) {
        Ok(list) => axum::Json(list_json(&list, None)).into_response(),
        Err(e) => list_error(e),
    }
}

async fn delete_url_list(AxState(state): AxState<App>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match state.delete_url_list(id) {
        Ok(list) => axum::Json(list_json(&list, None)).into_response(),
        Err(e) => list_error(e),
    }
}

async fn deploy_url_lists(AxState(state): AxState<App>) -> Response {
    let lists: Vec<Value> = state.deploy().iter().map(|l| list_json(l, None)).collect();
    axum::Json(lists).into_response()
}

// ---------------------------------------------------------------- v1 file-hash list

/// `token`, `name` and `list` gathered from the query string and the JSON or form body.
fn v1_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, String> {
    let mut params = Map::new();
    for (k, v) in query_pairs(query) {
        params.insert(k, Value::String(v));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in url::form_urlencoded::parse(body) {
            params.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        return Ok(params);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => {
            for (k, v) in obj {
                params.insert(k, v);
            }
            Ok(params)
        }
        Ok(_) => Err("The request body must be a JSON object".to_string()),
        Err(e) => Err(format!("Invalid JSON body: {e}")),
    }
}

async fn update_file_hash_list(
    AxState(state): AxState<App>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let args = state.args();
    let error_status = StatusCode::from_u16(args.v1_error_status).unwrap_or(StatusCode::OK);
    if !matches!(
        method,
        Method::GET | Method::POST | Method::PUT | Method::PATCH
    ) {
        return v1_error(
            StatusCode::METHOD_NOT_ALLOWED,
            vec!["Method Not Allowed".to_string()],
        );
    }
    let bytes = match read_body(&state, body, true).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let params = match v1_params(query.as_deref(), &headers, &bytes) {
        Ok(p) => p,
        Err(message) => return v1_error(error_status, vec![message]),
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match params.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{key} must be a string")),
        }
    };
    let token = match text("token") {
        Ok(t) => t.unwrap_or_default(),
        Err(m) => return v1_error(error_status, vec![m]),
    };
    if token != args.v1_token() {
        return v1_error(
            error_status,
            vec!["Invalid token. Please generate a new token.".to_string()],
        );
    }
    if let Some(verdict) = state.rate_v1(&token)
        && !verdict.allowed
    {
        let mut response = v1_error(
            StatusCode::TOO_MANY_REQUESTS,
            vec!["Too many requests: the v1 rate limit is exceeded".to_string()],
        );
        if let Ok(v) = HeaderValue::from_str(&verdict.reset.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let (name, list) = match (text("name"), text("list")) {
        (Ok(n), Ok(l)) => (n.unwrap_or_default(), l.unwrap_or_default()),
        (Err(m), _) | (_, Err(m)) => return v1_error(error_status, vec![m]),
    };
    match state.update_file_hash_list(&name, &list) {
        Ok(count) => axum::Json(json!({
            "status": "success",
            "data": [{"name": name.trim(), "count": count}],
        }))
        .into_response(),
        Err(e @ FileHashError::Duplicate) => v1_error(StatusCode::OK, e.errors()),
        Err(e) => v1_error(error_status, e.errors()),
    }
}

// ---------------------------------------------------------------- /_sim

async fn sim_state(AxState(state): AxState<App>) -> Response {
    axum::Json(state.snapshot()).into_response()
}

async fn sim_reset(AxState(state): AxState<App>) -> Response {
    state.reset();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_sim/alerts`: one alert object or an array of them, each with `alert_type`
/// (`malware` or `malsite`) and any fields to set; the rest is generated.
async fn sim_alerts(AxState(state): AxState<App>, body: Body) -> Response {
    let bytes = match read_body(&state, body, false).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("Invalid JSON body: {e}")),
    };
    let items = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        _ => return bad_request("Send an alert object or an array of them"),
    };
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(fields) = item else {
            return bad_request("Each alert must be a JSON object");
        };
        let Some(alert_type) = fields
            .get("alert_type")
            .and_then(Value::as_str)
            .and_then(AlertType::parse)
        else {
            return bad_request("Each alert needs alert_type: malware or malsite");
        };
        if fields.get("timestamp").is_some_and(|t| !t.is_i64()) {
            return bad_request("timestamp must be an integer epoch in seconds");
        }
        parsed.push((alert_type, fields));
    }
    let created: Vec<Value> = parsed
        .into_iter()
        .map(|(t, fields)| state.inject_alert(t, fields))
        .collect();
    (StatusCode::CREATED, axum::Json(created)).into_response()
}
