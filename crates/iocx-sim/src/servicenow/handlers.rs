//! The HTTP side: Basic and OAuth bearer authentication, `/oauth_token.do`, the Table API (one
//! dispatcher, shared by plain requests and the Batch API), rate limiting and the admin routes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::data::{State, WriteError};
use super::model::{self, Display, RenderOptions, Table};
use super::query;
use super::{Args, InvalidQuery, error_body};

/// An OAuth grant: who it is for and until when it is good.
#[derive(Debug, Clone)]
struct Grant {
    user: String,
    read_only: bool,
    expires: Instant,
}

/// Everything the handlers share.
pub(crate) struct Ctx {
    pub(crate) state: Arc<State>,
    pub(crate) args: Args,
    access_tokens: Mutex<HashMap<String, Grant>>,
    refresh_tokens: Mutex<HashMap<String, Grant>>,
    limiter: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Ctx {
    pub(crate) fn new(state: Arc<State>, args: Args) -> Ctx {
        Ctx {
            state,
            args,
            access_tokens: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(HashMap::new()),
            limiter: Mutex::new(HashMap::new()),
        }
    }
}

type Shared = AxumState<Arc<Ctx>>;

/// An answer of the Table API, before it becomes an HTTP response (or a Batch API entry).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    fn error(status: StatusCode, message: &str, detail: Option<&str>) -> Reply {
        Reply::json(status, error_body(message, detail))
    }

    fn with_header(mut self, name: &str, value: String) -> Reply {
        self.headers.push((name.to_string(), value));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (self.status, Json(body)).into_response(),
            None => self.status.into_response(),
        };
        for (name, value) in self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                response.headers_mut().append(n, v);
            }
        }
        response
    }
}

fn no_resource() -> Reply {
    Reply::error(
        StatusCode::BAD_REQUEST,
        "Requested URI does not represent any resource",
        None,
    )
}

fn record_not_found() -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        "No Record found",
        Some("Record doesn't exist or ACL restricts the record retrieval"),
    )
}

fn acl_refusal(operation: &str) -> Reply {
    Reply::error(
        StatusCode::FORBIDDEN,
        "Operation Failed",
        Some(&format!(
            "ACL Exception {operation} Failed due to security constraints"
        )),
    )
}

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    pub(crate) user: String,
    pub(crate) read_only: bool,
}

fn unauthenticated(message: &str) -> Reply {
    Reply::error(
        StatusCode::UNAUTHORIZED,
        message,
        Some("Required to provide Auth information"),
    )
    .with_header(
        "WWW-Authenticate",
        "BASIC realm=\"Service-now\"".to_string(),
    )
}

fn check_password(args: &Args, user: &str, password: &str) -> Option<Principal> {
    if user == args.user && password == args.password.as_str() {
        return Some(Principal {
            user: user.to_string(),
            read_only: false,
        });
    }
    match &args.read_only_user {
        Some(ro) if ro.user == user && ro.password == password => Some(Principal {
            user: user.to_string(),
            read_only: true,
        }),
        _ => None,
    }
}

/// Checks `Authorization: Basic …` or `Authorization: Bearer …`.
fn authenticate(ctx: &Ctx, headers: &HeaderMap) -> Result<Principal, Reply> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(unauthenticated("User Not Authenticated"));
    };
    let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASE64
            .decode(credentials.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':'))
            && let Some(p) = check_password(&ctx.args, user, password)
        {
            return Ok(p);
        }
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let tokens = ctx.access_tokens.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(grant) = tokens.get(credentials.trim())
            && Instant::now() < grant.expires
        {
            return Ok(Principal {
                user: grant.user.clone(),
                read_only: grant.read_only,
            });
        }
    }
    Err(unauthenticated("User is not authenticated"))
}

/// One sliding window per user.
fn rate_limit(ctx: &Ctx, user: &str) -> Result<(), Reply> {
    let Some(limit) = ctx.args.rate_limit else {
        return Ok(());
    };
    let window = Duration::from_secs(ctx.args.rate_limit_window_secs.max(1));
    let now = Instant::now();
    let mut limiter = ctx.limiter.lock().unwrap_or_else(|p| p.into_inner());
    let seen = limiter.entry(user.to_string()).or_default();
    while seen
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        seen.pop_front();
    }
    if seen.len() as u64 >= limit {
        let wait = seen
            .front()
            .map(|t| window.saturating_sub(now.duration_since(*t)).as_secs() + 1)
            .unwrap_or(1);
        return Err(Reply::error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded",
            Some(&format!(
                "The rate limit of {limit} requests per {} seconds was exceeded for user {user}",
                window.as_secs()
            )),
        )
        .with_header("Retry-After", wait.to_string())
        .with_header("X-RateLimit-Limit", limit.to_string())
        .with_header(
            "X-RateLimit-Reset",
            (Utc::now().timestamp() + wait as i64).to_string(),
        ));
    }
    seen.push_back(now);
    Ok(())
}

/// The host clients reached us by, for links.
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

fn params_of(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn flag(params: &[(String, String)], name: &str) -> bool {
    param(params, name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn number_param(params: &[(String, String)], name: &str) -> Result<Option<usize>, Reply> {
    match param(params, name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(|n| Some(n.max(0) as usize))
            .map_err(|_| {
                Reply::error(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid value for {name}"),
                    Some(&format!("{name} must be an integer, got {v:?}")),
                )
            }),
    }
}

fn render_options(params: &[(String, String)], base_url: &str) -> RenderOptions {
    let display = match param(params, "sysparm_display_value")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("true") => Display::Display,
        Some("all") => Display::All,
        _ => Display::Raw,
    };
    let fields = param(params, "sysparm_fields")
        .map(|f| {
            f.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|f| !f.is_empty());
    RenderOptions {
        display,
        exclude_links: flag(params, "sysparm_exclude_reference_link"),
        fields,
        base_url: base_url.to_string(),
    }
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "Exception while reading request",
            Some("No request body"),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "Exception while reading request",
            Some("The request body must be a JSON object"),
        )),
        Err(e) => Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "Exception while reading request",
            Some(&format!("Cannot decode the request body: {e}")),
        )),
    }
}

/// Builds the `Link` header: first, prev, next and last pages, or nothing on a single page.
fn link_header(
    base: &str,
    path: &str,
    params: &[(String, String)],
    offset: usize,
    limit: usize,
    total: usize,
) -> Option<String> {
    if limit == 0 || (offset == 0 && total <= limit) {
        return None;
    }
    let url_for = |o: usize| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            if k != "sysparm_offset" && k != "sysparm_limit" {
                q.append_pair(k, v);
            }
        }
        q.append_pair("sysparm_limit", &limit.to_string());
        q.append_pair("sysparm_offset", &o.to_string());
        format!("<{base}{path}?{}>", q.finish())
    };
    let last = if total == 0 {
        0
    } else {
        (total - 1) / limit * limit
    };
    let mut links = vec![format!("{};rel=\"first\"", url_for(0))];
    if offset > 0 {
        links.push(format!(
            "{};rel=\"prev\"",
            url_for(offset.saturating_sub(limit))
        ));
    }
    if offset.saturating_add(limit) < total {
        links.push(format!("{};rel=\"next\"", url_for(offset + limit)));
    }
    links.push(format!("{};rel=\"last\"", url_for(last)));
    Some(links.join(","))
}

fn list(
    ctx: &Ctx,
    table: &'static Table,
    path: &str,
    params: &[(String, String)],
    base: &str,
) -> Reply {
    let limit = match number_param(params, "sysparm_limit") {
        Ok(l) => l.unwrap_or(ctx.args.default_limit).min(ctx.args.max_limit),
        Err(r) => return r,
    };
    let offset = match number_param(params, "sysparm_offset") {
        Ok(o) => o.unwrap_or(0),
        Err(r) => return r,
    };
    let text = param(params, "sysparm_query").unwrap_or_default();
    let query = match ctx.args.invalid_query {
        InvalidQuery::Ignore => query::parse_lenient(text).without_unknown_fields(table),
        policy => {
            let parsed = query::parse(text).and_then(|q| {
                let unknown = q.unknown_fields(table);
                if unknown.is_empty() {
                    Ok(q)
                } else {
                    Err(query::QueryError(format!(
                        "unknown field(s) {} in table {}",
                        unknown.join(", "),
                        table.name
                    )))
                }
            });
            match (parsed, policy) {
                (Ok(q), _) => q,
                (Err(_), InvalidQuery::NoRows) => {
                    return Reply::json(StatusCode::OK, json!({"result": []}))
                        .with_header("X-Total-Count", "0".to_string());
                }
                (Err(e), _) => {
                    return Reply::error(StatusCode::BAD_REQUEST, "Invalid query", Some(&e.0));
                }
            }
        }
    };
    let opts = render_options(params, base);
    let now = Utc::now();
    let (total, page) = ctx.state.read(|db| {
        let mut hits: Vec<&model::Record> = db
            .rows(table.name)
            .filter(|r| query.matches(db, table, r, now))
            .collect();
        if !query.order.is_empty() {
            hits.sort_by(|a, b| query.compare(db, table, a, b));
        }
        let total = hits.len();
        let page: Vec<Value> = hits
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|r| model::render(db, table, r, &opts))
            .collect();
        (total, page)
    });
    let mut reply = Reply::json(StatusCode::OK, json!({"result": page}))
        .with_header("X-Total-Count", total.to_string());
    if !flag(params, "sysparm_suppress_pagination_header")
        && let Some(link) = link_header(base, path, params, offset, limit, total)
    {
        reply = reply.with_header("Link", link);
    }
    reply
}

fn render_one(
    ctx: &Ctx,
    table: &'static Table,
    record: &model::Record,
    params: &[(String, String)],
    base: &str,
) -> Value {
    let opts = render_options(params, base);
    ctx.state
        .read(|db| json!({"result": model::render(db, table, record, &opts)}))
}

/// The Table API: `GET`/`POST /api/now[/v1|/v2]/table/{table}` and
/// `GET`/`PUT`/`PATCH`/`DELETE …/{table}/{sys_id}`.
pub(crate) fn table_api(
    ctx: &Ctx,
    principal: &Principal,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    base: &str,
) -> Reply {
    let Some(rest) = path.strip_prefix("/api/now/") else {
        return no_resource();
    };
    let rest = rest
        .strip_prefix("v1/")
        .or_else(|| rest.strip_prefix("v2/"))
        .unwrap_or(rest);
    let Some(rest) = rest.strip_prefix("table/") else {
        return no_resource();
    };
    let mut parts = rest.trim_end_matches('/').split('/');
    let table_name = parts.next().unwrap_or_default();
    let sys_id = parts.next();
    if parts.next().is_some() || table_name.is_empty() {
        return no_resource();
    }
    let Some(table) = model::table(table_name) else {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid table {table_name}"),
            None,
        );
    };
    let params = params_of(query);
    let now = Utc::now();
    match (method.as_str(), sys_id) {
        ("GET", None) => list(ctx, table, path, &params, base),
        ("GET", Some(id)) => {
            match ctx.state.read(|db| {
                use model::Lookup as _;
                db.record(table.name, id).cloned()
            }) {
                Some(r) => Reply::json(StatusCode::OK, render_one(ctx, table, &r, &params, base)),
                None => record_not_found(),
            }
        }
        ("POST", None) => {
            if principal.read_only {
                return acl_refusal("Insert");
            }
            let fields = match parse_body(body) {
                Ok(f) => f,
                Err(r) => return r,
            };
            match ctx
                .state
                .write(|db| db.insert(table, &fields, &principal.user, now))
            {
                Ok(r) => {
                    let id = r.get("sys_id").cloned().unwrap_or_default();
                    Reply::json(
                        StatusCode::CREATED,
                        render_one(ctx, table, &r, &params, base),
                    )
                    .with_header(
                        "Location",
                        format!("{base}/api/now/table/{}/{id}", table.name),
                    )
                }
                Err(WriteError::Invalid(m, d)) => Reply::error(StatusCode::FORBIDDEN, &m, Some(&d)),
                Err(WriteError::NotFound) => record_not_found(),
            }
        }
        ("PUT" | "PATCH", Some(id)) => {
            if principal.read_only {
                return acl_refusal("Update");
            }
            let fields = match parse_body(body) {
                Ok(f) => f,
                Err(r) => return r,
            };
            match ctx
                .state
                .write(|db| db.update(table, id, &fields, &principal.user, now))
            {
                Ok(r) => Reply::json(StatusCode::OK, render_one(ctx, table, &r, &params, base)),
                Err(WriteError::NotFound) => record_not_found(),
                Err(WriteError::Invalid(m, d)) => {
                    Reply::error(StatusCode::BAD_REQUEST, &m, Some(&d))
                }
            }
        }
        ("DELETE", Some(id)) => {
            if principal.read_only {
                return acl_refusal("Delete");
            }
            match ctx.state.write(|db| db.delete(table.name, id)) {
                Ok(()) => Reply {
                    status: StatusCode::NO_CONTENT,
                    headers: Vec::new(),
                    body: None,
                },
                Err(_) => record_not_found(),
            }
        }
        _ => Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not Supported",
            Some(&format!("{method} is not supported on {path}")),
        ),
    }
}

fn status_text(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("").to_string()
}

/// The Batch API: `POST /api/now/v1/batch` (or `/api/now/batch`).
fn batch(ctx: &Ctx, principal: &Principal, body: &[u8], base: &str) -> Reply {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                "Exception while reading request",
                Some("The batch request must be a JSON object with rest_requests"),
            );
        }
    };
    let Some(Value::Array(items)) = request.get("rest_requests") else {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "Exception while reading request",
            Some("rest_requests must be a list"),
        );
    };
    let id_of = |item: &Value| match item.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let mut serviced = Vec::new();
    for item in items.iter().take(ctx.args.batch_max_requests) {
        let started = Instant::now();
        let id = id_of(item);
        let reply = batch_item(ctx, principal, item, base);
        let exclude_headers = item
            .get("exclude_response_headers")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut headers = Vec::new();
        if !exclude_headers {
            if reply.body.is_some() {
                headers.push(
                    json!({"name": "Content-Type", "value": "application/json;charset=UTF-8"}),
                );
            }
            for (name, value) in &reply.headers {
                headers.push(json!({"name": name, "value": value}));
            }
        }
        let encoded = reply
            .body
            .as_ref()
            .map(|b| BASE64.encode(b.to_string()))
            .unwrap_or_default();
        serviced.push(json!({
            "id": id,
            "body": encoded,
            "status_code": reply.status.as_u16(),
            "status_text": status_text(reply.status),
            "headers": headers,
            "execution_time": started.elapsed().as_millis() as u64,
        }));
    }
    let unserviced: Vec<String> = items
        .iter()
        .skip(ctx.args.batch_max_requests)
        .map(id_of)
        .collect();
    Reply::json(
        StatusCode::OK,
        json!({
            "batch_request_id": request.get("batch_request_id").cloned().unwrap_or(Value::Null),
            "serviced_requests": serviced,
            "unserviced_requests": unserviced,
        }),
    )
}

fn batch_item(ctx: &Ctx, principal: &Principal, item: &Value, base: &str) -> Reply {
    let bad = |detail: &str| {
        Reply::error(
            StatusCode::BAD_REQUEST,
            "Exception while reading request",
            Some(detail),
        )
    };
    let Some(url) = item.get("url").and_then(Value::as_str) else {
        return bad("Each rest_request needs a url");
    };
    let Some(method) = item
        .get("method")
        .and_then(Value::as_str)
        .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
    else {
        return bad("Each rest_request needs a method");
    };
    let body = match item.get("body").and_then(Value::as_str) {
        None => Vec::new(),
        Some(b) => match BASE64.decode(b.trim()) {
            Ok(bytes) => bytes,
            Err(_) => return bad("The body of a rest_request must be base64"),
        },
    };
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    if path.contains("/batch") {
        return bad("Batch requests cannot be nested");
    }
    table_api(ctx, principal, &method, path, query, &body, base)
}

async fn read_body(ctx: &Ctx, body: Body) -> Result<Vec<u8>, Reply> {
    let limit = ctx.args.max_body_bytes;
    axum::body::to_bytes(body, limit)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| {
            Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
                Some(&format!("The request body exceeds {limit} bytes")),
            )
        })
}

/// Every `/api/now/…` request: authentication, rate limit, then the Batch or Table API.
pub(crate) async fn api(
    AxumState(ctx): Shared,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Reply {
    let principal = match authenticate(&ctx, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(r) = rate_limit(&ctx, &principal.user) {
        return r;
    }
    let body = match read_body(&ctx, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let scheme = if ctx.args.tls { "https" } else { "http" };
    let base = format!("{scheme}://{}", request_host(&headers, &uri));
    let path = uri.path();
    if path == "/api/now/v1/batch" || path == "/api/now/batch" {
        if method != Method::POST {
            return Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not Supported",
                Some("The Batch API takes POST"),
            );
        }
        return batch(&ctx, &principal, &body, &base);
    }
    table_api(&ctx, &principal, &method, path, uri.query(), &body, &base)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        json!({"error_description": description, "error": error}),
    )
}

fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// `POST /oauth_token.do`: the `password`, `refresh_token` and `client_credentials` grants,
/// with the client given in the form or as HTTP Basic.
pub(crate) async fn oauth_token(AxumState(ctx): Shared, headers: HeaderMap, body: Body) -> Reply {
    let body = match read_body(&ctx, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Basic "))
        .and_then(|c| BASE64.decode(c.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|(a, _)| a.clone()));
    let client_secret = form
        .get("client_secret")
        .cloned()
        .or_else(|| basic.as_ref().map(|(_, b)| b.clone()));
    let client_ok = match (&ctx.args.client_id, &ctx.args.client_secret) {
        (Some(id), Some(secret)) => {
            client_id.as_deref() == Some(id.as_str())
                && client_secret.as_deref() == Some(secret.as_str())
        }
        _ => false,
    };
    let denied = || oauth_error(StatusCode::UNAUTHORIZED, "server_error", "access_denied");
    if !client_ok {
        return denied();
    }
    let ttl = Duration::from_secs(ctx.args.token_ttl_secs);
    let (principal, refresh) = match form.get("grant_type").map(String::as_str) {
        Some("password") => {
            let user = form.get("username").map(String::as_str).unwrap_or("");
            let password = form.get("password").map(String::as_str).unwrap_or("");
            match check_password(&ctx.args, user, password) {
                Some(p) => (p, None),
                None => return denied(),
            }
        }
        Some("refresh_token") => {
            let token = form.get("refresh_token").cloned().unwrap_or_default();
            let grant = ctx
                .refresh_tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&token)
                .cloned();
            match grant {
                Some(g) if Instant::now() < g.expires => (
                    Principal {
                        user: g.user,
                        read_only: g.read_only,
                    },
                    Some(token),
                ),
                _ => return denied(),
            }
        }
        Some("client_credentials") => (
            Principal {
                user: ctx.args.user.clone(),
                read_only: false,
            },
            None,
        ),
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!(
                    "grant_type {:?} is not supported; use password, refresh_token or client_credentials",
                    other.unwrap_or("")
                ),
            );
        }
    };
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let access = new_token();
    let grant = Grant {
        user: principal.user.clone(),
        read_only: principal.read_only,
        expires: Instant::now() + ttl,
    };
    ctx.access_tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(access.clone(), grant.clone());
    let mut answer = json!({
        "access_token": access,
        "scope": "useraccount",
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    });
    if grant_type != "client_credentials" {
        let refresh = refresh.unwrap_or_else(|| {
            let token = new_token();
            ctx.refresh_tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    token.clone(),
                    Grant {
                        expires: Instant::now() + Duration::from_secs(100 * 24 * 3600),
                        ..grant
                    },
                );
            token
        });
        answer["refresh_token"] = json!(refresh);
    }
    Reply::json(StatusCode::OK, answer)
}

/// `GET /_sim/state`.
pub(crate) async fn get_state(AxumState(ctx): Shared) -> Response {
    Json(ctx.state.snapshot()).into_response()
}

/// `DELETE /_sim/state`.
pub(crate) async fn clear_state(AxumState(ctx): Shared) -> Response {
    ctx.state.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// Any other path.
pub(crate) async fn not_found() -> Reply {
    Reply::error(
        StatusCode::BAD_REQUEST,
        "Requested URI does not represent any resource",
        None,
    )
}
