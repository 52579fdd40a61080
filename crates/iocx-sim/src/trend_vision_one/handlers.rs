//! The HTTP handlers: authentication, rate limiting, parameter and body checks, and the answers in
//! Trend's envelopes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde_json::Value;

use super::data::{Cursor, ListQuery, Order, Page, SkipToken, State, capacity_message};
use super::filter::{self, ListKind};
use super::model::{self, ItemRules};
use super::{Args, BodyTooLarge, render_error};
use crate::common::Faults;

/// Everything the handlers share.
pub(crate) struct Ctx {
    pub(crate) state: Arc<State>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) args: Args,
    limiter: Mutex<HashMap<&'static str, VecDeque<Instant>>>,
}

impl Ctx {
    pub(crate) fn new(state: Arc<State>, faults: Arc<Faults>, args: Args) -> Ctx {
        Ctx {
            state,
            faults,
            args,
            limiter: Mutex::new(HashMap::new()),
        }
    }

    fn rules(&self) -> ItemRules {
        ItemRules {
            ignore_unknown_fields: self.args.ignore_unknown_fields,
            zero_days: self.args.zero_days_to_expiration,
            default_scan_action: self.args.default_scan_action,
            default_days: self.args.default_days_to_expiration,
        }
    }
}

type Shared = AxumState<Arc<Ctx>>;

/// A whole-request refusal, answered in Trend's envelope (or as a gateway page).
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    html: bool,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            html: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.html {
            return (self.status, Html(self.message)).into_response();
        }
        let mut response = render_error(self.status, self.code, &self.message);
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

type Answer = Result<Response, ApiError>;

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn invalid_param(field: &str, why: &str) -> ApiError {
    bad_request(format!(
        "Invalid request - Invalid field format: {field} ({why})."
    ))
}

/// Checks `Authorization: Bearer <token>` and the rate limit of `endpoint`.
fn admit(ctx: &Ctx, headers: &HeaderMap, endpoint: &'static str) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match presented {
        None => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "The Authorization header is missing or is not a Bearer token.",
            ));
        }
        Some(token) if token != ctx.args.token.as_str() => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "The API key is invalid or has expired.",
            ));
        }
        Some(_) => {}
    }
    if let Some(limit) = ctx.args.rate_limit_per_minute {
        let window = Duration::from_secs(60);
        let now = Instant::now();
        let mut limiter = ctx.limiter.lock().unwrap_or_else(|p| p.into_inner());
        let seen = limiter.entry(endpoint).or_default();
        while seen
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            seen.pop_front();
        }
        if seen.len() as u64 >= limit {
            // Refused requests do not count; retry once the oldest counted one leaves the window.
            let wait = seen
                .front()
                .map(|t| window.saturating_sub(now.duration_since(*t)).as_secs() + 1)
                .unwrap_or(1);
            let mut refusal = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many API requests",
            );
            refusal.retry_after = Some(wait);
            return Err(refusal);
        }
        seen.push_back(now);
    }
    Ok(())
}

/// `GET /v3.0/healthcheck/connectivity`.
pub(crate) async fn connectivity(AxumState(ctx): Shared, headers: HeaderMap) -> Answer {
    admit(&ctx, &headers, "connectivity")?;
    Ok(Json(serde_json::json!({"status": "available"})).into_response())
}

/// `GET /v3.0/threatintel/suspiciousObjects`.
pub(crate) async fn list_suspicious(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Answer {
    list(&ctx, ListKind::Suspicious, &headers, &uri, query.as_deref())
}

/// `GET /v3.0/threatintel/suspiciousObjectExceptions`.
pub(crate) async fn list_exceptions(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Answer {
    list(&ctx, ListKind::Exceptions, &headers, &uri, query.as_deref())
}

fn list_tag(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Suspicious => "so",
        ListKind::Exceptions => "ex",
    }
}

fn list_path(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Suspicious => "/v3.0/threatintel/suspiciousObjects",
        ListKind::Exceptions => "/v3.0/threatintel/suspiciousObjectExceptions",
    }
}

fn parse_time(field: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            invalid_param(
                field,
                "an ISO 8601 UTC timestamp such as 2024-01-01T00:00:00Z",
            )
        })
}

fn parse_top(ctx: &Ctx, value: Option<&String>) -> Result<usize, ApiError> {
    let Some(value) = value else {
        return Ok(ctx.args.default_top);
    };
    match value.trim().parse::<usize>() {
        Ok(n) if ctx.args.lenient_top && (1..=200).contains(&n) => Ok(n),
        Ok(n @ (50 | 100 | 200)) => Ok(n),
        _ if ctx.args.lenient_top => Err(invalid_param("top", "an integer from 1 to 200")),
        _ => Err(invalid_param("top", "allowed: 50, 100, 200")),
    }
}

fn parse_order(kind: ListKind, value: Option<&String>) -> Result<Order, ApiError> {
    let text = value.map_or("lastModifiedDateTime desc", String::as_str);
    match Order::parse(text, kind) {
        Some(o) if text.len() <= 30 => Ok(o),
        _ => Err(invalid_param(
            "orderBy",
            match kind {
                ListKind::Suspicious => {
                    "allowed: riskLevel, lastModifiedDateTime or expiredDateTime, then asc or desc"
                }
                ListKind::Exceptions => {
                    "allowed: lastModifiedDateTime asc or lastModifiedDateTime desc"
                }
            },
        )),
    }
}

fn list(
    ctx: &Ctx,
    kind: ListKind,
    headers: &HeaderMap,
    uri: &Uri,
    raw_query: Option<&str>,
) -> Answer {
    let endpoint = match kind {
        ListKind::Suspicious => "list-suspicious",
        ListKind::Exceptions => "list-exceptions",
    };
    admit(ctx, headers, endpoint)?;
    let now = Utc::now();
    let mut params: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()) {
        params.insert(k.into_owned(), v.into_owned());
    }
    let top = parse_top(ctx, params.get("top"))?;
    let order = parse_order(kind, params.get("orderBy"))?;
    let start = params
        .get("startDateTime")
        .map(|v| parse_time("startDateTime", v))
        .transpose()?;
    let end = params
        .get("endDateTime")
        .map(|v| parse_time("endDateTime", v))
        .transpose()?
        .unwrap_or(now);
    if start.is_some_and(|s| s > end) {
        return Err(bad_request(
            "Invalid request - startDateTime must not be later than endDateTime.",
        ));
    }
    let token = match params.get("skipToken") {
        None => None,
        Some(text) => match SkipToken::decode(text) {
            Some(t) if t.list == list_tag(kind) && t.order == order => Some(t),
            Some(_) => {
                return Err(invalid_param(
                    "skipToken",
                    "issued for another list or order; follow nextLink as given",
                ));
            }
            None => return Err(invalid_param("skipToken", "not a token this API issued")),
        },
    };
    let filter_text = match headers.get("TMV1-Filter") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    invalid_param(
                        "TMV1-Filter",
                        "must be printable ASCII; quote values in '…'",
                    )
                })?
                .to_string(),
        ),
        None => token.as_ref().and_then(|t| t.filter.clone()),
    };
    let filter = match filter_text.as_deref() {
        None => None,
        Some(f) => {
            filter::parse(f, kind).map_err(|e| invalid_param("TMV1-Filter", &e.to_string()))?
        }
    };

    let query = ListQuery {
        order,
        start,
        end,
        filter,
        after: token.as_ref().map(|t| Cursor {
            primary: t.primary,
            rev: t.rev,
        }),
        top,
    };
    let Page { items, next } = match kind {
        ListKind::Suspicious => ctx.state.list_suspicious(&query, now),
        ListKind::Exceptions => ctx.state.list_exceptions(&query, now),
    };
    let mut body = serde_json::Map::new();
    body.insert("items".into(), Value::Array(items));
    if let Some(cursor) = next {
        let token = SkipToken {
            list: list_tag(kind).to_string(),
            order,
            primary: cursor.primary,
            rev: cursor.rev,
            filter: filter_text.filter(|f| !f.trim().is_empty()),
        };
        let mut echo = url::form_urlencoded::Serializer::new(String::new());
        for name in ["top", "orderBy", "startDateTime", "endDateTime"] {
            if let Some(v) = params.get(name) {
                echo.append_pair(name, v);
            }
        }
        echo.append_pair("skipToken", &token.encode());
        let link = format!(
            "{}://{}{}?{}",
            if ctx.args.tls { "https" } else { "http" },
            request_host(headers, uri),
            list_path(kind),
            echo.finish()
        );
        body.insert("nextLink".into(), link.into());
    }
    Ok(Json(Value::Object(body)).into_response())
}

/// The host clients reached us by, for absolute `nextLink`s.
fn request_host(headers: &HeaderMap, uri: &Uri) -> String {
    let candidate = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()));
    match candidate {
        Some(h)
            if !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'[' | b']')
                }) =>
        {
            h
        }
        _ => "127.0.0.1".to_string(),
    }
}

/// Reads a POST body as a JSON array of at most `max_items` items, answering whole-request
/// problems the way the API does.
async fn read_batch(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: Body,
    max_items: usize,
) -> Result<Vec<Value>, ApiError> {
    let limit = ctx.args.max_body_bytes;
    // A body over the limit is still read (and dropped) up to four times the limit before the
    // 413 goes out, so an ordinary client that is still sending sees the answer rather than a
    // reset connection; beyond that the answer goes out at once.
    let drain_up_to = limit.saturating_mul(4) as u64;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > drain_up_to) {
        return Err(too_large(ctx));
    }
    let mut stream = body.into_data_stream();
    let mut bytes: Vec<u8> = Vec::new();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|_| bad_request("Invalid request format. The body could not be read."))?;
        total += chunk.len() as u64;
        if total > drain_up_to {
            return Err(too_large(ctx));
        }
        if total <= limit as u64 {
            bytes.extend_from_slice(&chunk);
        }
    }
    if total > limit as u64 {
        return Err(too_large(ctx));
    }
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !json_type {
        return Err(bad_request(
            "Invalid request format. The Content-Type must be application/json.",
        ));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        bad_request(format!(
            "Invalid request format. The body is not valid JSON: {e}."
        ))
    })?;
    let Value::Array(items) = value else {
        return Err(bad_request(
            "Invalid request format. The body must be a JSON array of objects.",
        ));
    };
    if items.is_empty() {
        return Err(bad_request(
            "Invalid request format. The array must hold at least one item.",
        ));
    }
    if items.len() > max_items {
        return Err(bad_request(format!(
            "Invalid request - The number of items in the request ({}) exceeds the maximum limit of {max_items} per request.",
            items.len()
        )));
    }
    Ok(items)
}

fn too_large(ctx: &Ctx) -> ApiError {
    let mut refusal = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        "The request body exceeds the maximum size of 1 MB.",
    );
    if ctx.args.body_too_large == BodyTooLarge::Html {
        refusal.html = true;
        refusal.message = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n</body>\r\n</html>\r\n".to_string();
    }
    refusal
}

fn multi_status(entries: Vec<Value>) -> Answer {
    Ok((StatusCode::MULTI_STATUS, Json(Value::Array(entries))).into_response())
}

/// `POST /v3.0/threatintel/suspiciousObjects`.
pub(crate) async fn add_suspicious(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, "add-suspicious")?;
    let items = read_batch(&ctx, &headers, body, ctx.args.max_objects_per_request).await?;
    if ctx.faults.capacity_reached() {
        return Err(bad_request(capacity_message(
            None,
            ctx.args.capacity_per_type,
        )));
    }
    let rules = ctx.rules();
    let parsed = items
        .iter()
        .map(|item| model::parse_suspicious_add(item, &rules))
        .collect();
    let entries = ctx
        .state
        .add_suspicious(parsed, Utc::now())
        .map_err(|e| bad_request(e.message))?;
    multi_status(entries)
}

/// `POST /v3.0/threatintel/suspiciousObjectExceptions`.
pub(crate) async fn add_exceptions(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, "add-exceptions")?;
    let items = read_batch(&ctx, &headers, body, ctx.args.max_exceptions_per_request).await?;
    if ctx.faults.capacity_reached() {
        return Err(bad_request(capacity_message(
            None,
            ctx.args.exception_capacity_per_type,
        )));
    }
    let rules = ctx.rules();
    let parsed = items
        .iter()
        .map(|item| model::parse_exception_add(item, &rules))
        .collect();
    let entries = ctx
        .state
        .add_exceptions(parsed, Utc::now())
        .map_err(|e| bad_request(e.message))?;
    multi_status(entries)
}

/// `POST /v3.0/threatintel/suspiciousObjects/delete`.
pub(crate) async fn delete_suspicious(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, "delete-suspicious")?;
    let items = read_batch(&ctx, &headers, body, ctx.args.max_objects_per_request).await?;
    let parsed = items.iter().map(model::parse_delete).collect();
    multi_status(ctx.state.delete_suspicious(parsed))
}

/// `POST /v3.0/threatintel/suspiciousObjectExceptions/delete`.
pub(crate) async fn delete_exceptions(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, "delete-exceptions")?;
    let items = read_batch(&ctx, &headers, body, ctx.args.max_exceptions_per_request).await?;
    let parsed = items.iter().map(model::parse_delete).collect();
    multi_status(ctx.state.delete_exceptions(parsed))
}

/// `GET /_sim/state`: both lists in wire form.
pub(crate) async fn get_state(AxumState(ctx): Shared) -> Response {
    Json(ctx.state.snapshot()).into_response()
}

/// `DELETE /_sim/state`: empties both lists.
pub(crate) async fn clear_state(AxumState(ctx): Shared) -> Response {
    ctx.state.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// Any path the API does not have.
pub(crate) async fn not_found() -> Response {
    render_error(StatusCode::NOT_FOUND, "NotFound", "Not found")
}

/// A known path with a method it does not take.
pub(crate) async fn method_not_allowed() -> Response {
    render_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "Method not allowed",
    )
}
