//! The HTTP handlers: OAuth2 tokens, bearer checks and rate limits, parameter and body checks,
//! and every answer in the CrowdStrike envelope.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use rand::Rng as _;
use serde_json::{Map, Value, json};

use super::data::{
    ALERT_SORT_FIELDS, AfterAtEnd, AfterToken, CAPACITY_MESSAGE, INDICATOR_SORT_FIELDS, Listing,
    PageStart, Sort, State, WriteOutcome,
};
use super::fql::{self, Filter};
use super::model::{
    ALERT_FIELDS, Action, Alert, INDICATOR_FIELDS, IocType, ItemError, ItemRules, Platform,
    Severity, parse_create, parse_update,
};
use super::{Args, envelope_error};
use crate::common::Faults;

/// Most alerts one page of `/alerts/combined/alerts/v1` may hold.
pub const MAX_ALERTS_LIMIT: usize = 1000;

/// A bearer token the emulator issued.
struct Issued {
    client_id: String,
    expires: Instant,
}

/// Everything the handlers share.
pub(crate) struct Ctx {
    pub(crate) state: Arc<State>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) args: Args,
    tokens: Mutex<HashMap<String, Issued>>,
    limiter: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Ctx {
    pub(crate) fn new(state: Arc<State>, faults: Arc<Faults>, args: Args) -> Ctx {
        Ctx {
            state,
            faults,
            args,
            tokens: Mutex::new(HashMap::new()),
            limiter: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn rules(&self) -> ItemRules {
        ItemRules {
            severity_optional: self.args.severity_optional,
            reject_uppercase: self.args.reject_uppercase,
        }
    }

    /// Issues a token for `client_id`, forgetting expired ones.
    fn issue(&self) -> String {
        let bytes: [u8; 32] = rand::thread_rng().r#gen();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        tokens.retain(|_, t| t.expires > now);
        tokens.insert(
            token.clone(),
            Issued {
                client_id: self.args.client_id.clone(),
                expires: now + Duration::from_secs(self.args.token_lifetime_secs),
            },
        );
        token
    }
}

type Shared = AxumState<Arc<Ctx>>;

/// Who a request came from, and what its rate-limit headers say.
struct Caller {
    client_id: String,
    remaining: Option<u64>,
}

/// A whole-request refusal, answered in the CrowdStrike envelope.
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
    powered_by: &'static str,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            powered_by: "crowdstrike-api-gateway",
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, message);
        e.powered_by = "ioc-manager";
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = envelope_error(self.status, self.powered_by, &self.message);
        if let Some(secs) = self.retry_after {
            let at = Utc::now().timestamp() + i64::try_from(secs).unwrap_or(60);
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
            if let Ok(v) = HeaderValue::from_str(&at.to_string()) {
                headers.insert("X-RateLimit-RetryAfter", v);
            }
            headers.insert("X-RateLimit-Remaining", HeaderValue::from_static("0"));
        }
        response
    }
}

type Answer = Result<Response, ApiError>;

/// The meta block of every answer.
fn meta(started: Instant, powered_by: &str, trace_id: &str, pagination: Option<Value>) -> Value {
    let mut m = json!({
        "query_time": started.elapsed().as_secs_f64(),
        "powered_by": powered_by,
        "trace_id": trace_id,
    });
    if let Some(p) = pagination {
        m["pagination"] = p;
    }
    m
}

/// A success (or per-item failure) answer in the envelope, with the rate-limit headers. Each
/// argument is one part of the envelope, so they stay apart.
#[allow(clippy::too_many_arguments)]
fn answer(
    ctx: &Ctx,
    caller: Option<&Caller>,
    status: StatusCode,
    started: Instant,
    powered_by: &str,
    pagination: Option<Value>,
    resources: Value,
    errors: Vec<Value>,
) -> Response {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "meta": meta(started, powered_by, &trace_id, pagination),
        "resources": resources,
        "errors": errors,
    });
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        headers.insert("X-Cs-Traceid", v);
    }
    if ctx.args.rate_limit_per_minute > 0 {
        if let Ok(v) = HeaderValue::from_str(&ctx.args.rate_limit_per_minute.to_string()) {
            headers.insert("X-RateLimit-Limit", v);
        }
        if let Some(remaining) = caller.and_then(|c| c.remaining)
            && let Ok(v) = HeaderValue::from_str(&remaining.to_string())
        {
            headers.insert("X-RateLimit-Remaining", v);
        }
    }
    response
}

/// Checks `Authorization: Bearer <token>` and the caller's rate limit.
fn admit(ctx: &Ctx, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let denied = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "access denied, invalid bearer token",
        )
    };
    let client_id = {
        let tokens = ctx.tokens.lock().unwrap_or_else(|p| p.into_inner());
        match presented.and_then(|t| tokens.get(t)) {
            Some(t) if t.expires > Instant::now() => t.client_id.clone(),
            _ => return Err(denied()),
        }
    };
    let limit = ctx.args.rate_limit_per_minute;
    if limit == 0 {
        return Ok(Caller {
            client_id,
            remaining: None,
        });
    }
    let window = Duration::from_secs(60);
    let now = Instant::now();
    let mut limiter = ctx.limiter.lock().unwrap_or_else(|p| p.into_inner());
    let seen = limiter.entry(client_id.clone()).or_default();
    while seen
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        seen.pop_front();
    }
    if seen.len() as u64 >= limit {
        // Refused requests do not count; the window frees up when the oldest one leaves it.
        let wait = seen
            .front()
            .map(|t| window.saturating_sub(now.duration_since(*t)).as_secs() + 1)
            .unwrap_or(1);
        let mut refusal = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded.");
        refusal.retry_after = Some(wait);
        return Err(refusal);
    }
    seen.push_back(now);
    Ok(Caller {
        client_id,
        remaining: Some(limit - seen.len() as u64),
    })
}

/// The query string as ordered pairs (repeated keys kept).
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every value of a repeated (or comma-joined) parameter.
fn all(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn parse_bool(pairs: &[(String, String)], key: &str) -> Result<bool, ApiError> {
    match first(pairs, key).map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad(format!(
            "Invalid value '{other}' for {key}: expected true or false"
        ))),
    }
}

fn parse_filter(text: Option<&str>, fields: &[&str]) -> Result<Option<Filter>, ApiError> {
    match text {
        None => Ok(None),
        Some(t) => fql::parse(t, fields).map_err(|e| ApiError::bad(e.to_string())),
    }
}

fn parse_limit(text: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match text {
        None => Ok(default),
        Some(t) => match t.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad(format!(
                "Invalid limit '{t}': expected an integer from 1 to {max}"
            ))),
        },
    }
}

fn parse_sort(text: Option<&str>, default: &str, allowed: &[&str]) -> Result<Sort, ApiError> {
    let t = text.filter(|t| !t.trim().is_empty()).unwrap_or(default);
    Sort::parse(t, allowed).ok_or_else(|| {
        ApiError::bad(format!(
            "Invalid sort '{t}': expected FIELD.asc, FIELD.desc, FIELD|asc or FIELD|desc with FIELD one of {}",
            allowed.join(", ")
        ))
    })
}

/// Decodes an `after` token for `resource` under `sort`.
fn parse_after(text: &str, resource: &str, sort: &Sort) -> Result<AfterToken, ApiError> {
    match AfterToken::decode(text) {
        Some(t) if t.resource == resource && t.sort == sort.text() => Ok(t),
        Some(_) => Err(ApiError::bad(
            "Invalid after token: it was issued for another query; repeat the sort of the first page",
        )),
        None => Err(ApiError::bad(
            "Invalid after token: pass meta.pagination.after of the previous page as it is",
        )),
    }
}

/// `GET /iocs/queries/indicators/v1` and `/iocs/combined/indicator/v1` share their parameters.
struct IndicatorQuery {
    filter: Option<Filter>,
    sort: Sort,
    start: PageStart,
    limit: usize,
}

fn indicator_query(ctx: &Ctx, pairs: &[(String, String)]) -> Result<IndicatorQuery, ApiError> {
    let filter = parse_filter(first(pairs, "filter"), INDICATOR_FIELDS)?;
    let sort = parse_sort(
        first(pairs, "sort"),
        &ctx.args.default_sort,
        INDICATOR_SORT_FIELDS,
    )?;
    let mut limit = parse_limit(
        first(pairs, "limit"),
        ctx.args.default_limit,
        ctx.args.max_limit,
    )?;
    parse_bool(pairs, "from_parent")?;
    let offset = first(pairs, "offset").filter(|o| !o.trim().is_empty());
    let after = first(pairs, "after").filter(|a| !a.trim().is_empty());
    let start = match (offset, after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "offset and after are mutually exclusive; use one or the other",
            ));
        }
        (Some(o), None) => {
            let window = ctx.args.offset_window;
            let offset = o.trim().parse::<usize>().map_err(|_| {
                ApiError::bad(format!(
                    "Invalid offset '{o}': expected a non-negative integer"
                ))
            })?;
            if offset >= window {
                return Err(ApiError::bad(format!(
                    "offset must be less than {window}; use the 'after' parameter to retrieve results beyond the first {window}"
                )));
            }
            limit = limit.min(window - offset);
            PageStart::Offset(offset)
        }
        (None, Some(a)) => PageStart::After(Some(parse_after(a, "i", &sort)?)),
        (None, None) => PageStart::After(None),
    };
    Ok(IndicatorQuery {
        filter,
        sort,
        start,
        limit,
    })
}

/// `meta.pagination` for a listing.
fn pagination<T>(
    ctx: &Ctx,
    listing: &Listing<T>,
    start: &PageStart,
    limit: usize,
    sort: &Sort,
    resource: &str,
) -> Value {
    match start {
        PageStart::Offset(offset) => json!({
            "limit": limit,
            "offset": offset,
            "total": listing.total,
        }),
        PageStart::After(_) => {
            let after = match (&listing.next, ctx.state.after_at_end()) {
                (Some(t), _) => t.encode(),
                (None, AfterAtEnd::Empty) => String::new(),
                (None, AfterAtEnd::Token) => ctx.state.end_token(resource, sort).encode(),
            };
            json!({"limit": limit, "total": listing.total, "after": after})
        }
    }
}

/// `GET /iocs/queries/indicators/v1`: ids.
pub(crate) async fn query_indicators(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let q = indicator_query(&ctx, &pairs(raw.as_deref()))?;
    let now = Utc::now();
    let listing = ctx
        .state
        .list(q.filter.as_ref(), &q.sort, &q.start, q.limit, now);
    let p = pagination(&ctx, &listing, &q.start, q.limit, &q.sort, "i");
    let ids: Vec<Value> = listing.items.iter().map(|i| i.id.clone().into()).collect();
    Ok(answer(
        &ctx,
        Some(&caller),
        StatusCode::OK,
        started,
        "ioc-manager",
        Some(p),
        Value::Array(ids),
        Vec::new(),
    ))
}

/// `GET /iocs/combined/indicator/v1`: objects.
pub(crate) async fn combined_indicators(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let q = indicator_query(&ctx, &pairs(raw.as_deref()))?;
    let now = Utc::now();
    let listing = ctx
        .state
        .list(q.filter.as_ref(), &q.sort, &q.start, q.limit, now);
    let p = pagination(&ctx, &listing, &q.start, q.limit, &q.sort, "i");
    let items: Vec<Value> = listing.items.iter().map(|i| i.to_wire(now)).collect();
    Ok(answer(
        &ctx,
        Some(&caller),
        StatusCode::OK,
        started,
        "ioc-manager",
        Some(p),
        Value::Array(items),
        Vec::new(),
    ))
}

fn not_found_error(id: &str) -> Value {
    json!({"code": 404, "message": format!("Could not find indicator with id '{id}'"), "id": id})
}

/// `GET /iocs/entities/indicators/v1?ids=…`.
pub(crate) async fn get_indicators(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let ids = all(&pairs(raw.as_deref()), "ids");
    if ids.is_empty() {
        return Err(ApiError::bad("ids is required"));
    }
    if ids.len() > ctx.args.max_per_request {
        return Err(ApiError::bad(format!(
            "Too many ids: {}; the maximum is {} per request",
            ids.len(),
            ctx.args.max_per_request
        )));
    }
    let now = Utc::now();
    let (found, missing) = ctx.state.get(&ids);
    let status = if found.is_empty() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok(answer(
        &ctx,
        Some(&caller),
        status,
        started,
        "ioc-manager",
        None,
        found.iter().map(|i| i.to_wire(now)).collect(),
        missing.iter().map(|id| not_found_error(id)).collect(),
    ))
}

/// Reads a JSON object body of at most `--max-body-bytes`.
async fn read_json(ctx: &Ctx, body: Body) -> Result<Map<String, Value>, ApiError> {
    let bytes = axum::body::to_bytes(body, ctx.args.max_body_bytes)
        .await
        .map_err(|_| {
            let mut e = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The request body is larger than {} bytes",
                    ctx.args.max_body_bytes
                ),
            );
            e.powered_by = "ioc-manager";
            e
        })?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad(format!("The body is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad("The body must be a JSON object")),
    }
}

fn items_of<'a>(
    ctx: &Ctx,
    body: &'a Map<String, Value>,
    required: bool,
) -> Result<&'a [Value], ApiError> {
    let items: &[Value] = match body.get("indicators") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) if !required => &[],
        _ => {
            return Err(ApiError::bad(
                "indicators must be a list of indicator objects",
            ));
        }
    };
    if required && items.is_empty() {
        return Err(ApiError::bad("indicators must hold at least one indicator"));
    }
    if items.len() > ctx.args.max_per_request {
        return Err(ApiError::bad(format!(
            "Too many indicators in the request: {}; the maximum is {} per request",
            items.len(),
            ctx.args.max_per_request
        )));
    }
    Ok(items)
}

fn write_answer(
    ctx: &Ctx,
    caller: &Caller,
    ok: StatusCode,
    started: Instant,
    out: WriteOutcome,
) -> Response {
    let status = if out.errors.is_empty() {
        ok
    } else {
        StatusCode::BAD_REQUEST
    };
    answer(
        ctx,
        Some(caller),
        status,
        started,
        "ioc-manager",
        None,
        Value::Array(out.resources),
        out.errors,
    )
}

/// `POST /iocs/entities/indicators/v1`.
pub(crate) async fn create_indicators(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let q = pairs(raw.as_deref());
    parse_bool(&q, "retrodetects")?;
    parse_bool(&q, "ignore_warnings")?;
    let body = read_json(&ctx, body).await?;
    let items = items_of(&ctx, &body, true)?;
    if ctx.faults.capacity_reached() {
        return Err(ApiError::bad(CAPACITY_MESSAGE));
    }
    let now = Utc::now();
    let rules = ctx.rules();
    let parsed = items
        .iter()
        .map(|item| (item.clone(), parse_create(item, &rules, now)))
        .collect();
    let out = ctx
        .state
        .create(parsed, now, &caller.client_id)
        .map_err(|_| ApiError::bad(CAPACITY_MESSAGE))?;
    Ok(write_answer(
        &ctx,
        &caller,
        StatusCode::CREATED,
        started,
        out,
    ))
}

/// `PATCH /iocs/entities/indicators/v1`: `indicators` by id and/or a `bulk_update` by filter.
pub(crate) async fn update_indicators(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let q = pairs(raw.as_deref());
    parse_bool(&q, "retrodetects")?;
    parse_bool(&q, "ignore_warnings")?;
    let body = read_json(&ctx, body).await?;
    let now = Utc::now();
    let bulk = match body.get("bulk_update") {
        None | Some(Value::Null) => None,
        Some(Value::Object(b)) => Some(b),
        Some(_) => return Err(ApiError::bad("bulk_update must be an object")),
    };
    // falconpy sends an empty `indicators: [{}]` beside a bulk update; empty items are no-ops.
    let items: Vec<&Value> = items_of(&ctx, &body, bulk.is_none())?
        .iter()
        .filter(|i| i.as_object().is_none_or(|m| !m.is_empty()))
        .collect();
    if bulk.is_none() && items.is_empty() {
        return Err(ApiError::bad(
            "indicators must hold at least one indicator with an id",
        ));
    }
    let mut out = WriteOutcome::default();
    if let Some(bulk) = bulk {
        let filter_text = match bulk.get("filter") {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            _ => return Err(ApiError::bad("bulk_update.filter is required")),
        };
        let filter = parse_filter(Some(filter_text), INDICATOR_FIELDS)?;
        let mut fields_only = bulk.clone();
        fields_only.remove("filter");
        fields_only.remove("from_parent");
        let fields = parse_update(&fields_only, now).map_err(|e| ApiError::bad(e.message))?;
        out = ctx
            .state
            .bulk_update(filter.as_ref(), &fields, now, &caller.client_id);
    }
    let parsed = items
        .into_iter()
        .map(|item| {
            let result = match item.as_object() {
                None => Err(ItemError::invalid(
                    "indicators",
                    "each indicator must be a JSON object",
                )),
                Some(map) => match map.get("id") {
                    Some(Value::String(id)) if !id.is_empty() => {
                        let mut rest = map.clone();
                        rest.remove("id");
                        parse_update(&rest, now).map(|f| (id.clone(), f))
                    }
                    _ => Err(ItemError::invalid("id", "id is required")),
                },
            };
            (item.clone(), result)
        })
        .collect();
    let by_id = ctx.state.update(parsed, now, &caller.client_id);
    out.resources.extend(by_id.resources);
    out.errors.extend(by_id.errors);
    out.written += by_id.written;
    Ok(write_answer(&ctx, &caller, StatusCode::OK, started, out))
}

/// `DELETE /iocs/entities/indicators/v1?ids=…|filter=…`: the filter wins when both are given.
pub(crate) async fn delete_indicators(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let q = pairs(raw.as_deref());
    parse_bool(&q, "from_parent")?;
    let now = Utc::now();
    if let Some(text) = first(&q, "filter").filter(|f| !f.trim().is_empty()) {
        let filter = parse_filter(Some(text), INDICATOR_FIELDS)?
            .ok_or_else(|| ApiError::bad("filter must not be empty"))?;
        let deleted = ctx.state.delete_filter(&filter, now);
        return Ok(answer(
            &ctx,
            Some(&caller),
            StatusCode::OK,
            started,
            "ioc-manager",
            None,
            deleted.into_iter().map(Value::from).collect(),
            Vec::new(),
        ));
    }
    let ids = all(&q, "ids");
    if ids.is_empty() {
        return Err(ApiError::bad("Either ids or filter must be provided"));
    }
    if ids.len() > ctx.args.max_per_request {
        return Err(ApiError::bad(format!(
            "Too many ids: {}; the maximum is {} per request",
            ids.len(),
            ctx.args.max_per_request
        )));
    }
    let (deleted, missing) = ctx.state.delete_ids(&ids);
    let status = if deleted.is_empty() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok(answer(
        &ctx,
        Some(&caller),
        status,
        started,
        "ioc-manager",
        None,
        deleted.into_iter().map(Value::from).collect(),
        missing.iter().map(|id| not_found_error(id)).collect(),
    ))
}

/// The helper queries: the value domains of the indicator fields.
fn domain_answer(ctx: &Ctx, caller: &Caller, started: Instant, values: Vec<&str>) -> Response {
    let mut values = values;
    values.sort_unstable();
    let total = values.len();
    answer(
        ctx,
        Some(caller),
        StatusCode::OK,
        started,
        "ioc-manager",
        Some(json!({"limit": total, "offset": 0, "total": total})),
        values.into_iter().map(Value::from).collect(),
        Vec::new(),
    )
}

/// `GET /iocs/queries/ioc-types/v1`.
pub(crate) async fn ioc_types(AxumState(ctx): Shared, headers: HeaderMap) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let values = IocType::ALL.iter().map(|t| t.key()).collect();
    Ok(domain_answer(&ctx, &caller, started, values))
}

/// `GET /iocs/queries/platforms/v1`.
pub(crate) async fn platforms(AxumState(ctx): Shared, headers: HeaderMap) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let values = Platform::ALL.iter().map(|t| t.key()).collect();
    Ok(domain_answer(&ctx, &caller, started, values))
}

/// `GET /iocs/queries/severities/v1`.
pub(crate) async fn severities(AxumState(ctx): Shared, headers: HeaderMap) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let values = Severity::ALL.iter().map(|t| t.key()).collect();
    Ok(domain_answer(&ctx, &caller, started, values))
}

/// `GET /iocs/queries/actions/v1`.
pub(crate) async fn query_actions(AxumState(ctx): Shared, headers: HeaderMap) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let values = Action::ALL.iter().map(|t| t.key()).collect();
    Ok(domain_answer(&ctx, &caller, started, values))
}

fn action_object(a: Action) -> Value {
    let (name, description) = match a {
        Action::NoAction => (
            "No action",
            "Save the indicator for future use; no action is taken.",
        ),
        Action::Allow => ("Allow", "Allow the file to run (hashes only)."),
        Action::PreventNoUi => (
            "Block, hide detection",
            "Block the file without a detection in the console (hashes only).",
        ),
        Action::Detect => (
            "Detect only",
            "Show a detection when the indicator is seen.",
        ),
        Action::Prevent => (
            "Block",
            "Block the file and show a detection (hashes only).",
        ),
    };
    json!({
        "id": a.key(),
        "name": name,
        "description": description,
        "ioc_types": IocType::ALL.iter().filter(|t| !a.hash_only() || t.is_hash()).map(|t| t.key()).collect::<Vec<_>>(),
    })
}

/// `GET /iocs/entities/actions/v1?ids=…`.
pub(crate) async fn get_actions(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let ids = all(&pairs(raw.as_deref()), "ids");
    if ids.is_empty() {
        return Err(ApiError::bad("ids is required"));
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in &ids {
        match Action::from_key(id) {
            Some(a) => found.push(action_object(a)),
            None => missing.push(json!({"code": 404, "message": format!("Could not find action with id '{id}'"), "id": id})),
        }
    }
    let status = if found.is_empty() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok(answer(
        &ctx,
        Some(&caller),
        status,
        started,
        "ioc-manager",
        None,
        Value::Array(found),
        missing,
    ))
}

/// `POST /alerts/combined/alerts/v1`: detections with their indicators, for pulling hashes,
/// domains and addresses that sensors saw.
pub(crate) async fn combined_alerts(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let started = Instant::now();
    let caller = admit(&ctx, &headers)?;
    let body = read_json(&ctx, body).await?;
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) if key == "limit" => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::bad(format!("{key} has the wrong type"))),
        }
    };
    let filter = parse_filter(text("filter")?.as_deref(), ALERT_FIELDS)?;
    let sort = parse_sort(
        text("sort")?.as_deref(),
        "created_timestamp.desc",
        ALERT_SORT_FIELDS,
    )?;
    let limit = parse_limit(text("limit")?.as_deref(), 100, MAX_ALERTS_LIMIT)?;
    let start = match text("after")?.filter(|a| !a.trim().is_empty()) {
        Some(a) => PageStart::After(Some(parse_after(&a, "a", &sort)?)),
        None => PageStart::After(None),
    };
    let listing = ctx.state.list_alerts(filter.as_ref(), &sort, &start, limit);
    let p = pagination(&ctx, &listing, &start, limit, &sort, "a");
    let items: Vec<Value> = listing.items.iter().map(Alert::to_wire).collect();
    Ok(answer(
        &ctx,
        Some(&caller),
        StatusCode::OK,
        started,
        "detectsapi",
        Some(p),
        Value::Array(items),
        Vec::new(),
    ))
}

/// Reads a form body (`application/x-www-form-urlencoded`).
async fn read_form(body: Body) -> Result<Vec<(String, String)>, ApiError> {
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is too large",
        )
    })?;
    Ok(url::form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

/// `POST /oauth2/token`: client credentials to a bearer token (201).
pub(crate) async fn token(AxumState(ctx): Shared, body: Body) -> Answer {
    let started = Instant::now();
    let form = read_form(body).await?;
    let (Some(id), Some(secret)) = (first(&form, "client_id"), first(&form, "client_secret"))
    else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "client_id and client_secret are required",
        ));
    };
    if let Some(grant) = first(&form, "grant_type")
        && grant != "client_credentials"
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("unsupported grant_type '{grant}'"),
        ));
    }
    if id != ctx.args.client_id || secret != ctx.args.client_secret.as_str() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "access denied, authorization failed",
        ));
    }
    let token = ctx.issue();
    let trace_id = uuid::Uuid::new_v4().to_string();
    let _ = started;
    let mut response = (
        StatusCode::CREATED,
        Json(json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": ctx.args.token_lifetime_secs,
        })),
    )
        .into_response();
    // Never `X-Cs-Region`: falconpy would move to the real cloud (contract §2.2).
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert("X-Cs-Traceid", v);
    }
    Ok(response)
}

/// `POST /oauth2/revoke`: `Authorization: basic base64(id:secret)`, form `token`.
pub(crate) async fn revoke(AxumState(ctx): Shared, headers: HeaderMap, body: Body) -> Answer {
    let started = Instant::now();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        })
        .and_then(|b64| STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let expected = format!("{}:{}", ctx.args.client_id, ctx.args.client_secret.as_str());
    if basic.as_deref() != Some(expected.as_str()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "access denied, authorization failed",
        ));
    }
    let form = read_form(body).await?;
    let Some(token) = first(&form, "token").filter(|t| !t.is_empty()) else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "token is required"));
    };
    ctx.tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(token);
    Ok(answer(
        &ctx,
        None,
        StatusCode::OK,
        started,
        "crowdstrike-api-gateway",
        None,
        Value::Array(Vec::new()),
        Vec::new(),
    ))
}

/// `GET /_sim/state`: the IOCs and alerts in wire form.
pub(crate) async fn get_state(AxumState(ctx): Shared) -> Response {
    Json(ctx.state.snapshot(Utc::now())).into_response()
}

/// `DELETE /_sim/state`: empties the IOCs and the alerts.
pub(crate) async fn clear_state(AxumState(ctx): Shared) -> Response {
    ctx.state.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_sim/alerts`: adds detections, `[{"ioc_type","ioc_value","ioc_source"?,
/// "updated_timestamp"?, "severity"?, "confidence"?, "pattern_disposition"?}]`.
pub(crate) async fn add_alerts(AxumState(ctx): Shared, Json(items): Json<Value>) -> Response {
    let Value::Array(items) = items else {
        return envelope_error(StatusCode::BAD_REQUEST, "iocx-sim", "expected a JSON array");
    };
    let now = Utc::now();
    let mut added = 0usize;
    for (n, item) in items.iter().enumerate() {
        let s = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let i = |k: &str, d: i64| item.get(k).and_then(Value::as_i64).unwrap_or(d);
        let (ioc_type, ioc_value) = (s("ioc_type"), s("ioc_value"));
        if ioc_type.is_empty() || ioc_value.is_empty() {
            return envelope_error(
                StatusCode::BAD_REQUEST,
                "iocx-sim",
                &format!("item {n}: ioc_type and ioc_value are required"),
            );
        }
        let updated = item
            .get("updated_timestamp")
            .and_then(Value::as_str)
            .and_then(super::model::parse_time)
            .unwrap_or(now);
        let id: [u8; 16] = rand::thread_rng().r#gen();
        let source = s("ioc_source");
        ctx.state.put_alert(Alert {
            composite_id: format!(
                "{}:ind:{}:{}",
                hex::encode([0x5a; 16]),
                hex::encode(id),
                now.timestamp_nanos_opt().unwrap_or(0)
            ),
            ioc_type,
            ioc_value,
            ioc_source: if source.is_empty() {
                "library_load".into()
            } else {
                source
            },
            ioc_description: s("ioc_description"),
            description: "A file or domain matched an indicator of compromise.".into(),
            ioc_context: Vec::new(),
            severity: i("severity", 70),
            confidence: i("confidence", 80),
            pattern_disposition: i("pattern_disposition", 2048),
            pattern_disposition_description: "Detection, standard detection.".into(),
            status: "new".into(),
            hostname: "WKS-SIM".into(),
            device_id: hex::encode(id),
            filename: s("filename"),
            created: updated,
            updated,
        });
        added += 1;
    }
    (StatusCode::CREATED, Json(json!({"added": added}))).into_response()
}

/// Any path the API does not have.
pub(crate) async fn not_found() -> Response {
    envelope_error(
        StatusCode::NOT_FOUND,
        "crowdstrike-api-gateway",
        "Not Found",
    )
}

/// A known path with a method it does not take.
pub(crate) async fn method_not_allowed() -> Response {
    envelope_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "crowdstrike-api-gateway",
        "Method Not Allowed",
    )
}
