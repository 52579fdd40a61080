//! The HTTP handlers: API key and org key checks, rate limiting, body reading, and the answers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::alerts::{self, SearchLimits};
use super::data::{Refusal, State};
use super::model::{self, Report};
use super::{Args, BeyondWindow, MissingReportId, WrongOrg, render_error};
use crate::common::Faults;

/// Everything the handlers share.
pub(crate) struct Ctx {
    pub(crate) state: Arc<State>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) args: Args,
    limiter: Mutex<VecDeque<Instant>>,
}

impl Ctx {
    pub(crate) fn new(state: Arc<State>, faults: Arc<Faults>, args: Args) -> Ctx {
        Ctx {
            state,
            faults,
            args,
            limiter: Mutex::new(VecDeque::new()),
        }
    }
}

type Shared = AxumState<Arc<Ctx>>;

/// A refusal, answered in the emulator's error envelope.
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    malformed_query: bool,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            malformed_query: false,
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = if self.malformed_query {
            (
                self.status,
                Json(json!({
                    "error_code": self.code,
                    "reason": "query_malformed_syntax",
                    "message": self.message,
                    "success": false,
                })),
            )
                .into_response()
        } else {
            render_error(self.status, self.code, &self.message)
        };
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        match r {
            Refusal::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", m),
            Refusal::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", m),
            Refusal::Invalid(m) => bad_request(m),
        }
    }
}

type Answer = Result<Response, ApiError>;

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
}

/// Whether a request only reads (searches are POSTs that only read) or changes something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

/// Which key a request came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Full,
    ReadOnly,
}

/// Checks `X-Auth-Token: SECRET/ID`, the org key in the path, the key's permission for the
/// method, and the rate limit.
fn admit(ctx: &Ctx, headers: &HeaderMap, org: &str, op: Op) -> Result<(), ApiError> {
    let presented = headers
        .get("X-Auth-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let full = format!(
        "{}/{}",
        ctx.args.api_secret.as_str(),
        ctx.args.api_id.as_str()
    );
    let key = match presented {
        None | Some("") => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "The X-Auth-Token header is missing; send X-Auth-Token: API_SECRET_KEY/API_ID.",
            ));
        }
        Some(t) if t == full => Key::Full,
        Some(t)
            if ctx
                .args
                .read_only_key
                .as_ref()
                .is_some_and(|k| k.as_str() == t) =>
        {
            Key::ReadOnly
        }
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "The API key is not valid (expected API_SECRET_KEY/API_ID).",
            ));
        }
    };
    if org != ctx.args.org_key {
        return Err(match ctx.args.wrong_org {
            WrongOrg::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Organization {org} not found"),
            ),
            WrongOrg::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("The API key has no access to organization {org}"),
            ),
        });
    }
    if key == Key::ReadOnly && op == Op::Write {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "The API key's access level does not allow this operation.",
        ));
    }
    rate_limit(ctx)
}

/// One sliding window over every API request. Refused requests count too, so a client that keeps
/// calling while blocked extends its own block, as the documented limiter does.
fn rate_limit(ctx: &Ctx) -> Result<(), ApiError> {
    let Some(limit) = ctx.args.rate_limit else {
        return Ok(());
    };
    let window = Duration::from_secs(ctx.args.rate_limit_window_secs.max(1));
    let now = Instant::now();
    let mut seen = ctx.limiter.lock().unwrap_or_else(|p| p.into_inner());
    while seen
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        seen.pop_front();
    }
    seen.push_back(now);
    // Bound the memory a hammering client can cost.
    while seen.len() as u64 > limit.saturating_mul(2).max(limit + 1) {
        seen.pop_front();
    }
    if seen.len() as u64 > limit {
        let excess = (seen.len() as u64 - limit) as usize;
        let wait = seen
            .get(excess - 1)
            .map(|t| window.saturating_sub(now.duration_since(*t)).as_secs() + 1)
            .unwrap_or(1);
        let mut refusal = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Rate limit exceeded; retry after the Retry-After seconds.",
        );
        refusal.retry_after = Some(wait);
        return Err(refusal);
    }
    Ok(())
}

async fn read_json(ctx: &Ctx, body: Body) -> Result<Value, ApiError> {
    let limit = ctx.args.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_TOO_LARGE",
            format!("The request body exceeds {limit} bytes."),
        )
    })?;
    // Content-Type is not checked: Netskope's plugin posts JSON without one.
    serde_json::from_slice(&bytes)
        .map_err(|e| bad_request(format!("The request body is not valid JSON: {e}")))
}

fn capacity_refusal(ctx: &Ctx) -> ApiError {
    bad_request(format!(
        "A feed may hold at most {} reports.",
        ctx.args.max_reports_per_feed
    ))
}

fn parse_reports(ctx: &Ctx, value: Option<&Value>) -> Result<Vec<Report>, ApiError> {
    let items = match value {
        None | Some(Value::Null) => return Err(bad_request("reports: is required")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad_request("reports: must be a list")),
    };
    let make_id = || ctx.state.new_id();
    let assign: Option<&dyn Fn() -> String> = match ctx.args.missing_report_id {
        MissingReportId::Assign => Some(&make_id),
        MissingReportId::Reject => None,
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| model::parse_report(v, &format!("reports[{i}]"), assign))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_request(e.0))
}

fn ok_json(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /threathunter/feedmgr/healthcheck`.
pub(crate) async fn healthcheck() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `GET …/feeds[?include_public=true]`.
pub(crate) async fn list_feeds(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Read)?;
    let include_public = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "include_public" && v.eq_ignore_ascii_case("true"));
    ok_json(json!({"results": ctx.state.list_feeds(include_public)}))
}

async fn create(ctx: &Ctx, headers: &HeaderMap, org: &str, body: Body, public: bool) -> Answer {
    admit(ctx, headers, org, Op::Write)?;
    let value = read_json(ctx, body).await?;
    let feedinfo = value
        .get("feedinfo")
        .ok_or_else(|| bad_request("feedinfo: is required"))?;
    let input = model::parse_feedinfo(feedinfo, "feedinfo").map_err(|e| bad_request(e.0))?;
    let reports = match value.get("reports") {
        None | Some(Value::Null) => Vec::new(),
        r => parse_reports(ctx, r)?,
    };
    if ctx.faults.capacity_reached() && !reports.is_empty() {
        return Err(capacity_refusal(ctx));
    }
    let info = ctx.state.create_feed(input, reports, public)?;
    ok_json(json!(info))
}

/// `POST …/feeds`: `{"feedinfo": {…}, "reports": […]}` → the new `FeedInfo`.
pub(crate) async fn create_feed(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Body,
) -> Answer {
    create(&ctx, &headers, &org, body, false).await
}

/// `POST …/feeds/public`: refused, only Carbon Black publishes public feeds.
pub(crate) async fn create_public_feed(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Body,
) -> Answer {
    create(&ctx, &headers, &org, body, true).await
}

/// `GET …/feeds/{id}`: `{"feedinfo": …, "reports": […]}`.
pub(crate) async fn get_feed(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Read)?;
    match ctx.state.get_feed(&id) {
        Some(feed) => ok_json(feed),
        None => Err(Refusal::NotFound(format!("Feed {id} not found")).into()),
    }
}

/// `DELETE …/feeds/{id}` → 204.
pub(crate) async fn delete_feed(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    ctx.state.delete_feed(&id)?;
    no_content()
}

/// `PUT …/feeds/{id}/feedinfo` → the updated `FeedInfo`.
pub(crate) async fn put_feedinfo(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    let value = read_json(&ctx, body).await?;
    // Accept the FeedInfo bare (as documented) or wrapped in "feedinfo".
    let info = value.get("feedinfo").unwrap_or(&value);
    let input = model::parse_feedinfo(info, "feedinfo").map_err(|e| bad_request(e.0))?;
    ok_json(json!(ctx.state.update_feedinfo(&id, input)?))
}

/// `GET …/feeds/{id}/reports`: `{"results": [Report]}`.
pub(crate) async fn list_reports(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Read)?;
    ok_json(json!({"results": ctx.state.feed_reports(&id)?}))
}

/// `POST …/feeds/{id}/reports`: `{"reports": […]}` replaces every report → `{"success": true}`.
pub(crate) async fn replace_reports(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    let value = read_json(&ctx, body).await?;
    let reports = parse_reports(&ctx, value.get("reports"))?;
    if ctx.faults.capacity_reached() && !reports.is_empty() {
        return Err(capacity_refusal(&ctx));
    }
    ctx.state.replace_reports(&id, reports)?;
    ok_json(json!({"success": true}))
}

fn report_for_path(value: &Value, path_id: &str, assign: bool) -> Result<Report, ApiError> {
    let id = path_id.to_string();
    let make_id = move || id.clone();
    let report = model::parse_report(value, "report", assign.then_some(&make_id as _))
        .map_err(|e| bad_request(e.0))?;
    if report.id != path_id {
        return Err(bad_request(format!(
            "report.id: {:?} does not match the report in the path ({path_id:?})",
            report.id
        )));
    }
    Ok(report)
}

/// `PUT …/feeds/{id}/reports/{report_id}` → the report.
pub(crate) async fn put_report(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id, report_id)): Path<(String, String, String)>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    let value = read_json(&ctx, body).await?;
    let report = report_for_path(&value, &report_id, true)?;
    ok_json(json!(ctx.state.put_report(&id, report)?))
}

/// `DELETE …/feeds/{id}/reports/{report_id}` → 204.
pub(crate) async fn delete_report(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id, report_id)): Path<(String, String, String)>,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    ctx.state.delete_report(&id, &report_id)?;
    no_content()
}

/// `GET …/watchlists`: `{"results": [Watchlist]}`.
pub(crate) async fn list_watchlists(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Read)?;
    ok_json(json!({"results": ctx.state.list_watchlists()}))
}

/// `POST …/watchlists` → the new watchlist.
pub(crate) async fn create_watchlist(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    let value = read_json(&ctx, body).await?;
    let input = model::parse_watchlist(&value).map_err(|e| bad_request(e.0))?;
    ok_json(json!(ctx.state.create_watchlist(input, Utc::now())?))
}

/// `GET …/watchlists/{id}`.
pub(crate) async fn get_watchlist(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Read)?;
    match ctx.state.get_watchlist(&id) {
        Some(w) => ok_json(json!(w)),
        None => Err(Refusal::NotFound(format!("Watchlist {id} not found")).into()),
    }
}

/// `PUT …/watchlists/{id}` → the updated watchlist.
pub(crate) async fn put_watchlist(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    let value = read_json(&ctx, body).await?;
    let input = model::parse_watchlist(&value).map_err(|e| bad_request(e.0))?;
    ok_json(json!(ctx.state.update_watchlist(&id, input, Utc::now())?))
}

/// `DELETE …/watchlists/{id}` → 204.
pub(crate) async fn delete_watchlist(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    ctx.state.delete_watchlist(&id)?;
    no_content()
}

async fn watchlist_flag(
    ctx: &Ctx,
    headers: &HeaderMap,
    method: Method,
    org: &str,
    id: &str,
    flag: &str,
) -> Answer {
    admit(ctx, headers, org, Op::Write)?;
    let on = method == Method::PUT;
    let alerts = match flag {
        "alert" => true,
        "tag" => false,
        _ => return Err(Refusal::NotFound("Not found".to_string()).into()),
    };
    ctx.state.set_watchlist_flag(id, alerts, on)?;
    if on {
        ok_json(json!({ flag: true }))
    } else {
        no_content()
    }
}

/// `PUT …/watchlists/{id}/alert|tag` → `{"alert": true}`; `DELETE` → 204.
pub(crate) async fn put_watchlist_flag(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id, flag)): Path<(String, String, String)>,
) -> Answer {
    watchlist_flag(&ctx, &headers, Method::PUT, &org, &id, &flag).await
}

/// `DELETE …/watchlists/{id}/alert|tag` → 204.
pub(crate) async fn delete_watchlist_flag(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id, flag)): Path<(String, String, String)>,
) -> Answer {
    watchlist_flag(&ctx, &headers, Method::DELETE, &org, &id, &flag).await
}

/// `POST …/watchlistmgr/v3/orgs/{org}/reports` → the report (with an ID when it had none).
pub(crate) async fn create_watchlist_report(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    let value = read_json(&ctx, body).await?;
    let make_id = || ctx.state.new_id();
    let report =
        model::parse_report(&value, "report", Some(&make_id)).map_err(|e| bad_request(e.0))?;
    if ctx.faults.capacity_reached() {
        return Err(capacity_refusal(&ctx));
    }
    ok_json(json!(ctx.state.create_watchlist_report(report)?))
}

/// `GET …/watchlistmgr/v3/orgs/{org}/reports/{id}`.
pub(crate) async fn get_watchlist_report(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Read)?;
    match ctx.state.get_watchlist_report(&id) {
        Some(r) => ok_json(json!(r)),
        None => Err(Refusal::NotFound(format!("Report {id} not found")).into()),
    }
}

/// `PUT …/watchlistmgr/v3/orgs/{org}/reports/{id}` → the report.
pub(crate) async fn put_watchlist_report(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    let value = read_json(&ctx, body).await?;
    let report = report_for_path(&value, &id, true)?;
    ok_json(json!(ctx.state.update_watchlist_report(report)?))
}

/// `DELETE …/watchlistmgr/v3/orgs/{org}/reports/{id}` → 204.
pub(crate) async fn delete_watchlist_report(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Write)?;
    ctx.state.delete_watchlist_report(&id)?;
    no_content()
}

/// `POST /api/alerts/v7/orgs/{org}/alerts/_search`.
pub(crate) async fn search_alerts(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Read)?;
    let value = read_json(&ctx, body).await?;
    let limits = SearchLimits {
        window: ctx.args.result_window,
    };
    let search = alerts::parse_search(&value, Utc::now(), limits).map_err(|e| {
        if e.beyond_window && ctx.args.beyond_window == BeyondWindow::ServerError {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                e.message,
            )
        } else {
            let mut refusal = ApiError::new(
                StatusCode::BAD_REQUEST,
                if e.malformed_query {
                    "QUERY_MALFORMED_SYNTAX"
                } else {
                    "INVALID_ARGUMENT"
                },
                e.message,
            );
            refusal.malformed_query = e.malformed_query;
            refusal
        }
    })?;
    let page = ctx.state.search_alerts(&search);
    ok_json(json!({
        "results": page.results,
        "num_found": page.num_found,
        "num_available": page.num_available,
    }))
}

/// `GET /api/alerts/v7/orgs/{org}/alerts/{id}`.
pub(crate) async fn get_alert(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Answer {
    admit(&ctx, &headers, &org, Op::Read)?;
    let body = json!({"criteria": {"id": [id]}, "rows": 1});
    let limits = SearchLimits {
        window: ctx.args.result_window,
    };
    let search =
        alerts::parse_search(&body, Utc::now(), limits).map_err(|e| bad_request(e.message))?;
    let page = ctx.state.search_alerts(&search);
    match page.results.into_iter().next() {
        Some(a) => ok_json(a),
        None => Err(Refusal::NotFound(format!("Alert {id} not found")).into()),
    }
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

/// `POST /_sim/alerts`: a JSON array of (partial) alerts to add → `{"added": N}`.
pub(crate) async fn add_alerts(AxumState(ctx): Shared, body: Body) -> Answer {
    let value = read_json(&ctx, body).await?;
    let items = match &value {
        Value::Array(items) => items.as_slice(),
        Value::Object(_) => std::slice::from_ref(&value),
        _ => {
            return Err(bad_request(
                "The body must be an alert object or a list of them",
            ));
        }
    };
    let added = ctx
        .state
        .add_alerts_json(items, Utc::now())
        .map_err(bad_request)?;
    ok_json(json!({"added": added}))
}

/// Any path the API does not have.
pub(crate) async fn not_found() -> Response {
    render_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found")
}

/// A known path with a method it does not take.
pub(crate) async fn method_not_allowed() -> Response {
    render_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "Method not allowed",
    )
}
