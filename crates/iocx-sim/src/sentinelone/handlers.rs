//! The HTTP handlers: `ApiToken` checks and rate limits, parameter and body validation in the
//! console's marshmallow style, scopes, and the answers in SentinelOne's envelopes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::data::{
    Cmp, CreateError, Cursor, IocFilter, Page, Paging, State, ThreatFilter, site_wire,
};
use super::model::{IocRules, IocType, Scope, Threat, parse_ioc, parse_time};
use super::{Args, ErrorDetailStyle, UserScope, s1_error};
use crate::common::Faults;

/// The smallest id SentinelOne accepts for accounts and sites.
pub const MIN_ID: u64 = 100_000_000_000_000_000;

/// Everything the handlers share.
pub(crate) struct Ctx {
    pub(crate) state: Arc<State>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) args: Args,
    limiter: Mutex<HashMap<String, VecDeque<Instant>>>,
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
}

type Shared = AxumState<Arc<Ctx>>;

/// A whole-request refusal in SentinelOne's envelope `{"errors":[{"code","detail","title"}]}`.
pub(crate) struct ApiError {
    status: StatusCode,
    code: u64,
    title: &'static str,
    detail: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn validation(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: 4_000_010,
            title: "Validation Error",
            detail: Some(detail.into()),
            retry_after: None,
        }
    }

    fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: 4_030_010,
            title: "Insufficient permissions",
            detail: Some(detail.into()),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = s1_error(self.status, self.code, self.title, self.detail.as_deref());
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

type Answer = Result<Response, ApiError>;

/// Checks `Authorization: ApiToken <token>` and the token's rate limit.
fn admit(ctx: &Ctx, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("apitoken")
                .then(|| token.trim())
        });
    if presented != Some(ctx.args.token.as_str()) {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: 4_010_010,
            title: "Authentication Failed",
            detail: None,
            retry_after: None,
        });
    }
    let Some(limit) = ctx.args.rate_limit_per_minute.filter(|l| *l > 0) else {
        return Ok(());
    };
    let window = Duration::from_secs(60);
    let now = Instant::now();
    let mut limiter = ctx.limiter.lock().unwrap_or_else(|p| p.into_inner());
    let seen = limiter
        .entry(ctx.args.token.as_str().to_string())
        .or_default();
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
        return Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: 4_290_010,
            title: "Too Many Requests",
            detail: Some(format!(
                "The API token made more than {limit} requests in a minute."
            )),
            retry_after: Some(wait),
        });
    }
    seen.push_back(now);
    Ok(())
}

/// The query string as a map of its last values; repeated keys are joined with commas.
fn params(raw: Option<&str>) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        out.entry(k.into_owned())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    out
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_bool(key: &str, text: Option<&String>) -> Result<bool, ApiError> {
    match text.map(|t| t.to_ascii_lowercase()).as_deref() {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(ApiError::validation(format!("{key}: Not a valid boolean."))),
    }
}

fn parse_range(
    key: &str,
    text: Option<&String>,
    lo: usize,
    hi: usize,
    default: usize,
) -> Result<usize, ApiError> {
    match text {
        None => Ok(default),
        Some(t) => match t.trim().parse::<usize>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(ApiError::validation(format!(
                "{key}: Must be greater than or equal to {lo} and less than or equal to {hi}."
            ))),
        },
    }
}

/// Checks account or site ids: digits, at least [`MIN_ID`].
fn check_ids(key: &str, ids: &[String]) -> Result<(), ApiError> {
    for (i, id) in ids.iter().enumerate() {
        match id.parse::<u64>() {
            Ok(n) if n >= MIN_ID => {}
            Ok(_) => {
                return Err(ApiError::validation(format!(
                    "{key}: {i}: Must be greater than or equal to {MIN_ID}."
                )));
            }
            Err(_) => {
                return Err(ApiError::validation(format!(
                    "{key}: {i}: Not a valid integer."
                )));
            }
        }
    }
    Ok(())
}

/// Turns scope selectors into scopes the token may use.
fn scopes(
    ctx: &Ctx,
    tenant: bool,
    account_ids: &[String],
    site_ids: &[String],
) -> Result<Vec<Scope>, ApiError> {
    check_ids("accountIds", account_ids)?;
    check_ids("siteIds", site_ids)?;
    let mut out = Vec::new();
    if tenant {
        if ctx.args.user_scope == UserScope::Account {
            return Err(ApiError::forbidden(
                "tenant: only users with a global scope may use tenant=true",
            ));
        }
        out.push(Scope::Tenant);
    }
    for id in account_ids {
        out.push(Scope::Account(id.clone()));
    }
    for id in site_ids {
        out.push(Scope::Site(id.clone()));
    }
    for s in &out {
        if !ctx.state.knows(s) {
            return Err(ApiError::forbidden(format!(
                "{} {} is not in the scope of this API token",
                s.name(),
                s.id().as_str().unwrap_or_default()
            )));
        }
    }
    Ok(out)
}

/// The scopes a request without any selector sees.
fn default_view(ctx: &Ctx) -> Vec<Scope> {
    match ctx.args.user_scope {
        UserScope::Global => Vec::new(),
        UserScope::Account => vec![Scope::Account(ctx.state.account_id().to_string())],
    }
}

fn unknown_params(
    ctx: &Ctx,
    p: &HashMap<String, String>,
    known: &dyn Fn(&str) -> bool,
) -> Result<(), ApiError> {
    if ctx.args.ignore_unknown_params {
        return Ok(());
    }
    let mut unknown: Vec<&String> = p.keys().filter(|k| !known(k)).collect();
    unknown.sort();
    match unknown.first() {
        Some(k) => Err(ApiError::validation(format!("{k}: Unknown field."))),
        None => Ok(()),
    }
}

fn time_filters(
    p: &HashMap<String, String>,
    fields: &[&str],
) -> Result<Vec<(String, Cmp, DateTime<Utc>)>, ApiError> {
    let mut out = Vec::new();
    for (k, v) in p {
        let Some((field, suffix)) = k.split_once("__") else {
            continue;
        };
        let (Some(cmp), true) = (Cmp::from_suffix(suffix), fields.contains(&field)) else {
            continue;
        };
        let t = parse_time(v)
            .ok_or_else(|| ApiError::validation(format!("{k}: Not a valid datetime.")))?;
        out.push((field.to_string(), cmp, t));
    }
    Ok(out)
}

fn is_time_param(k: &str, fields: &[&str]) -> bool {
    k.split_once("__")
        .is_some_and(|(f, s)| fields.contains(&f) && Cmp::from_suffix(s).is_some())
}

/// `limit`, `skip`, `cursor`, `sortBy`, `sortOrder`.
fn paging(
    ctx: &Ctx,
    p: &HashMap<String, String>,
    resource: &str,
    sort_fields: &[&str],
) -> Result<Paging, ApiError> {
    let limit = parse_range("limit", p.get("limit"), 1, 1000, ctx.args.default_limit)?;
    let skip = parse_range("skip", p.get("skip"), 0, 1000, 0)?;
    let sort_by = match p.get("sortBy") {
        None => "id".to_string(),
        Some(s) if sort_fields.contains(&s.as_str()) => s.clone(),
        Some(_) => {
            return Err(ApiError::validation(format!(
                "sortBy: Must be one of: {}.",
                sort_fields.join(", ")
            )));
        }
    };
    let desc = match p.get("sortOrder").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(ApiError::validation(
                "sortOrder: Must be one of: asc, desc.",
            ));
        }
    };
    let cursor = match p.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => match Cursor::decode(text) {
            Some(c) if c.resource == resource && c.sort_by == sort_by && c.desc == desc => Some(c),
            _ => {
                return Err(ApiError::validation(
                    "cursor: Invalid cursor; pass pagination.nextCursor as it is, with the same sortBy and sortOrder.",
                ));
            }
        },
    };
    Ok(Paging {
        sort_by,
        desc,
        cursor,
        skip,
        limit,
    })
}

/// The list answer: `{"data":[…],"pagination":{"nextCursor","totalItems"}}`.
fn page_answer(page: Page, count_only: bool, skip_count: bool) -> Response {
    let total: Value = if skip_count {
        Value::Null
    } else {
        page.total.into()
    };
    let (data, next) = if count_only {
        (Vec::new(), None)
    } else {
        (page.items, page.next)
    };
    Json(json!({
        "data": data,
        "pagination": {"nextCursor": next, "totalItems": total},
    }))
    .into_response()
}

const IOC_TIME_FIELDS: &[&str] = &["updatedAt", "uploadTime", "creationTime", "validUntil"];
const IOC_SORT_FIELDS: &[&str] = &[
    "id",
    "creationTime",
    "uploadTime",
    "updatedAt",
    "validUntil",
    "source",
    "type",
    "value",
];
const IOC_PARAMS: &[&str] = &[
    "limit",
    "cursor",
    "skip",
    "skipCount",
    "countOnly",
    "sortBy",
    "sortOrder",
    "accountIds",
    "siteIds",
    "tenant",
    "type",
    "value",
    "source",
    "externalId",
    "uuids",
    "batchId",
    "name__contains",
    "creator__contains",
    "description__contains",
    "category__in",
    "labels__in",
    "severity",
];

fn parse_types(text: Option<&String>) -> Result<Vec<IocType>, ApiError> {
    text.map(|t| list(t))
        .unwrap_or_default()
        .iter()
        .map(|t| {
            IocType::from_key(t).ok_or_else(|| {
                ApiError::validation(format!(
                    "type: Must be one of: {}.",
                    IocType::ALL.map(IocType::key).join(", ")
                ))
            })
        })
        .collect()
}

/// `GET /web/api/v2.1/threat-intelligence/iocs`.
pub(crate) async fn list_iocs(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    admit(&ctx, &headers)?;
    let p = params(raw.as_deref());
    unknown_params(&ctx, &p, &|k| {
        IOC_PARAMS.contains(&k) || is_time_param(k, IOC_TIME_FIELDS)
    })?;
    let paging = paging(&ctx, &p, "iocs", IOC_SORT_FIELDS)?;
    let mut scopes = scopes(
        &ctx,
        parse_bool("tenant", p.get("tenant"))?,
        &p.get("accountIds").map(|t| list(t)).unwrap_or_default(),
        &p.get("siteIds").map(|t| list(t)).unwrap_or_default(),
    )?;
    if scopes.is_empty() {
        scopes = default_view(&ctx);
    }
    let lower = |k: &str| p.get(k).map(|v| v.to_ascii_lowercase());
    let filter = IocFilter {
        scopes,
        types: parse_types(p.get("type"))?,
        value: p.get("value").cloned(),
        source: p.get("source").cloned(),
        external_id: p.get("externalId").cloned(),
        uuids: p.get("uuids").map(|t| list(t)).unwrap_or_default(),
        batch_id: p.get("batchId").cloned(),
        name_contains: lower("name__contains"),
        creator_contains: lower("creator__contains"),
        description_contains: lower("description__contains"),
        category_in: p.get("category__in").map(|t| list(t)).unwrap_or_default(),
        labels_in: p.get("labels__in").map(|t| list(t)).unwrap_or_default(),
        severity: match p.get("severity") {
            None => None,
            Some(s) => Some(
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::validation("severity: Not a valid integer."))?,
            ),
        },
        times: time_filters(&p, IOC_TIME_FIELDS)?,
    };
    let page = ctx.state.list_iocs(&filter, &paging, Utc::now());
    Ok(page_answer(
        page,
        parse_bool("countOnly", p.get("countOnly"))?,
        parse_bool("skipCount", p.get("skipCount"))?,
    ))
}

/// Reads a JSON object body of at most `--max-body-bytes`.
async fn read_json(ctx: &Ctx, body: Body) -> Result<Map<String, Value>, ApiError> {
    let bytes = axum::body::to_bytes(body, ctx.args.max_body_bytes)
        .await
        .map_err(|_| ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: 4_130_010,
            title: "Request Entity Too Large",
            detail: Some(format!(
                "The request body is larger than {} bytes.",
                ctx.args.max_body_bytes
            )),
            retry_after: None,
        })?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::validation(format!("Invalid JSON body: {e}.")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::validation("_schema: Invalid input type.")),
    }
}

fn id_list(filter: &Map<String, Value>, key: &str) -> Result<Vec<String>, ApiError> {
    match filter.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(ApiError::validation(format!(
                    "filter.{key}: Not a valid list."
                ))),
            })
            .collect(),
        Some(Value::String(s)) => Ok(list(s)),
        Some(_) => Err(ApiError::validation(format!(
            "filter.{key}: Not a valid list."
        ))),
    }
}

/// The scope part of a body's `filter`.
fn body_scopes(ctx: &Ctx, filter: &Map<String, Value>) -> Result<Vec<Scope>, ApiError> {
    if filter.get("groupIds").is_some_and(|g| !g.is_null()) {
        return Err(ApiError::validation(
            "filter.groupIds: group scopes are not emulated; use tenant, accountIds or siteIds.",
        ));
    }
    let tenant = match filter.get("tenant") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::validation("filter.tenant: Not a valid boolean.")),
    };
    scopes(
        ctx,
        tenant,
        &id_list(filter, "accountIds")?,
        &id_list(filter, "siteIds")?,
    )
}

fn body_filter(body: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    match body.get("filter") {
        Some(Value::Object(f)) => Ok(f.clone()),
        None | Some(Value::Null) => Err(ApiError::validation(
            "filter: Missing data for required field.",
        )),
        Some(_) => Err(ApiError::validation("filter: Invalid input type.")),
    }
}

/// `POST /web/api/v2.1/threat-intelligence/iocs`: `{"filter": {scope}, "data": [ioc, …]}`.
pub(crate) async fn create_iocs(AxumState(ctx): Shared, headers: HeaderMap, body: Body) -> Answer {
    admit(&ctx, &headers)?;
    let body = read_json(&ctx, body).await?;
    let filter = body_filter(&body)?;
    for key in filter.keys() {
        if !["tenant", "accountIds", "siteIds", "groupIds"].contains(&key.as_str()) {
            return Err(ApiError::validation(format!(
                "filter.{key}: Unknown field."
            )));
        }
    }
    let mut scopes = body_scopes(&ctx, &filter)?;
    if scopes.is_empty() {
        if !ctx.args.implicit_scope {
            return Err(ApiError::validation(
                "filter: Must include a scope: tenant, accountIds or siteIds.",
            ));
        }
        scopes = match ctx.args.user_scope {
            UserScope::Global => vec![Scope::Tenant],
            UserScope::Account => vec![Scope::Account(ctx.state.account_id().to_string())],
        };
    }
    let items = match body.get("data") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            return Err(ApiError::validation(
                "data: Missing data for required field.",
            ));
        }
        Some(_) => return Err(ApiError::validation("data: Not a valid list.")),
    };
    if items.is_empty() {
        return Err(ApiError::validation("data: Shorter than minimum length 1."));
    }
    if items.len() > ctx.args.max_per_request {
        return Err(ApiError::validation(format!(
            "data: Longer than maximum length {}.",
            ctx.args.max_per_request
        )));
    }
    if ctx.faults.capacity_reached() {
        return Err(capacity_error(ctx.args.capacity.unwrap_or(0)));
    }
    let now = Utc::now();
    let rules = IocRules {
        reject_over_cap: ctx.args.reject_valid_until_over_cap,
    };
    let parsed = items.iter().map(|i| parse_ioc(i, &rules, now)).collect();
    match ctx.state.create(parsed, &scopes, now) {
        Ok(data) => Ok(Json(json!({"data": data})).into_response()),
        Err(CreateError::Capacity(cap)) => Err(capacity_error(cap)),
        Err(CreateError::Invalid(errors)) => {
            let inner = json!({"errors": errors.iter().map(|e| e.to_entry()).collect::<Vec<_>>()});
            let detail = match ctx.args.error_detail_style {
                ErrorDetailStyle::Json => inner.to_string(),
                ErrorDetailStyle::Python => python_repr(&inner),
            };
            Err(ApiError::validation(detail))
        }
    }
}

fn capacity_error(cap: usize) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: 4_000_030,
        title: "Limit Exceeded",
        detail: Some(format!(
            "The number of threat intelligence IOCs would exceed the limit of {cap}."
        )),
        retry_after: None,
    }
}

/// Writes JSON as Python's `repr` of the same value (single-quoted strings, `True`, `None`),
/// the way a Python back end formats a dict into a message.
pub fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let escaped = s.replace('\\', "\\\\").replace('\'', "\\'");
            format!("'{escaped}'")
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    python_repr(&Value::String(k.clone())),
                    python_repr(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `DELETE /web/api/v2.1/threat-intelligence/iocs`: `{"filter": {scope?, selectors}}`.
pub(crate) async fn delete_iocs(AxumState(ctx): Shared, headers: HeaderMap, body: Body) -> Answer {
    admit(&ctx, &headers)?;
    let body = read_json(&ctx, body).await?;
    let filter = body_filter(&body)?;
    const SELECTORS: &[&str] = &["uuids", "value", "type", "source", "externalId", "batchId"];
    for key in filter.keys() {
        let known = SELECTORS.contains(&key.as_str())
            || ["tenant", "accountIds", "siteIds", "groupIds"].contains(&key.as_str());
        if !known {
            return Err(ApiError::validation(format!(
                "filter.{key}: Unknown field."
            )));
        }
    }
    if !SELECTORS
        .iter()
        .any(|k| filter.get(*k).is_some_and(|v| !v.is_null()))
    {
        return Err(ApiError::validation(format!(
            "filter: Must include at least one of {}.",
            SELECTORS.join(", ")
        )));
    }
    let mut scopes = body_scopes(&ctx, &filter)?;
    if scopes.is_empty() {
        scopes = default_view(&ctx);
    }
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match filter.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::validation(format!(
                "filter.{k}: Not a valid string."
            ))),
        }
    };
    let types = match filter.get("type") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(t)) => parse_types(Some(t))?,
        Some(Value::Array(ts)) => parse_types(Some(
            &ts.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ))?,
        Some(_) => return Err(ApiError::validation("filter.type: Not a valid string.")),
    };
    let f = IocFilter {
        scopes,
        types,
        value: text("value")?,
        source: text("source")?,
        external_id: text("externalId")?,
        uuids: id_list(&filter, "uuids")?,
        batch_id: text("batchId")?,
        ..IocFilter::default()
    };
    let affected = ctx.state.delete(&f, Utc::now());
    Ok(Json(json!({"data": {"affected": affected}})).into_response())
}

const THREAT_TIME_FIELDS: &[&str] = &["createdAt", "updatedAt"];
const THREAT_SORT_FIELDS: &[&str] = &["id", "createdAt", "updatedAt"];
const THREAT_PARAMS: &[&str] = &[
    "limit",
    "cursor",
    "skip",
    "skipCount",
    "countOnly",
    "sortBy",
    "sortOrder",
    "accountIds",
    "siteIds",
    "tenant",
    "ids",
    "analystVerdicts",
    "classifications",
    "contentHashes",
];
const VERDICTS: &[&str] = &["true_positive", "suspicious", "false_positive", "undefined"];

/// `GET /web/api/v2.1/threats`.
pub(crate) async fn list_threats(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    admit(&ctx, &headers)?;
    let p = params(raw.as_deref());
    unknown_params(&ctx, &p, &|k| {
        THREAT_PARAMS.contains(&k) || is_time_param(k, THREAT_TIME_FIELDS)
    })?;
    let paging = paging(&ctx, &p, "threats", THREAT_SORT_FIELDS)?;
    let mut scopes = scopes(
        &ctx,
        parse_bool("tenant", p.get("tenant"))?,
        &p.get("accountIds").map(|t| list(t)).unwrap_or_default(),
        &p.get("siteIds").map(|t| list(t)).unwrap_or_default(),
    )?;
    if scopes.is_empty() {
        scopes = default_view(&ctx);
    }
    let verdicts = p
        .get("analystVerdicts")
        .map(|t| list(t))
        .unwrap_or_default();
    if let Some(bad) = verdicts.iter().find(|v| !VERDICTS.contains(&v.as_str())) {
        return Err(ApiError::validation(format!(
            "analystVerdicts: '{bad}': Must be one of: {}.",
            VERDICTS.join(", ")
        )));
    }
    let filter = ThreatFilter {
        scopes,
        ids: p.get("ids").map(|t| list(t)).unwrap_or_default(),
        verdicts,
        classifications: p
            .get("classifications")
            .map(|t| list(t))
            .unwrap_or_default(),
        hashes: p
            .get("contentHashes")
            .map(|t| list(&t.to_ascii_lowercase()))
            .unwrap_or_default(),
        times: time_filters(&p, THREAT_TIME_FIELDS)?,
    };
    let page = ctx.state.list_threats(&filter, &paging);
    Ok(page_answer(
        page,
        parse_bool("countOnly", p.get("countOnly"))?,
        parse_bool("skipCount", p.get("skipCount"))?,
    ))
}

/// `GET /web/api/v2.1/sites` (`name`, `siteIds`, `accountIds`).
pub(crate) async fn list_sites(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    admit(&ctx, &headers)?;
    let p = params(raw.as_deref());
    let ids = p.get("siteIds").map(|t| list(t)).unwrap_or_default();
    let accounts = p.get("accountIds").map(|t| list(t)).unwrap_or_default();
    check_ids("siteIds", &ids)?;
    check_ids("accountIds", &accounts)?;
    let now = Utc::now();
    let sites: Vec<Value> = ctx
        .state
        .sites()
        .iter()
        .filter(|s| p.get("name").is_none_or(|n| *n == s.name))
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .filter(|_| accounts.is_empty() || accounts.iter().any(|a| a == ctx.state.account_id()))
        .map(|s| site_wire(&ctx.state, s, now))
        .collect();
    let total = sites.len();
    Ok(Json(json!({
        "data": {
            "allSites": {"activeLicenses": 0, "totalLicenses": 0},
            "sites": sites,
        },
        "pagination": {"nextCursor": null, "totalItems": total},
    }))
    .into_response())
}

/// `GET /web/api/v2.1/system/info`: the console's version (a cheap "test connection").
pub(crate) async fn system_info(AxumState(ctx): Shared, headers: HeaderMap) -> Answer {
    admit(&ctx, &headers)?;
    Ok(Json(json!({
        "data": {
            "build": "iocx-sim",
            "patch": "0",
            "release": "1",
            "version": "2.1",
        }
    }))
    .into_response())
}

/// `GET /_sim/state`: IOCs and threats in wire form.
pub(crate) async fn get_state(AxumState(ctx): Shared) -> Response {
    Json(ctx.state.snapshot()).into_response()
}

/// `DELETE /_sim/state`: empties the IOCs and threats.
pub(crate) async fn clear_state(AxumState(ctx): Shared) -> Response {
    ctx.state.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_sim/threats`: adds threats, `[{"sha256"?, "md5"?, "sha1"?, "threatName"?,
/// "analystVerdict"?, "siteId"?, "updatedAt"?}]`.
pub(crate) async fn add_threats(AxumState(ctx): Shared, body: Body) -> Response {
    let items = match axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    {
        Some(Value::Array(items)) => items,
        _ => return ApiError::validation("expected a JSON array of threats").into_response(),
    };
    let now = Utc::now();
    let mut added = 0usize;
    for item in &items {
        let s = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
        let site_id = s("siteId")
            .or_else(|| ctx.state.sites().first().map(|x| x.id.clone()))
            .unwrap_or_default();
        let site_name = ctx
            .state
            .sites()
            .iter()
            .find(|x| x.id == site_id)
            .map(|x| x.name.clone())
            .unwrap_or_default();
        let updated = s("updatedAt")
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(now);
        ctx.state.put_threat(Threat {
            id: ctx.state.next_threat_id(),
            account_id: ctx.state.account_id().to_string(),
            site_id,
            site_name,
            threat_name: s("threatName").unwrap_or_else(|| "sample.exe".into()),
            sha1: s("sha1"),
            sha256: s("sha256"),
            md5: s("md5"),
            file_path: "\\Device\\HarddiskVolume3\\Users\\user\\Downloads\\sample.exe".into(),
            classification: s("classification").unwrap_or_else(|| "Malware".into()),
            confidence_level: "malicious".into(),
            analyst_verdict: s("analystVerdict").unwrap_or_else(|| "undefined".into()),
            engines: vec!["SentinelOne Cloud".into()],
            mitigation_status: "mitigated".into(),
            computer_name: "WKS-SIM".into(),
            created_at: updated,
            updated_at: updated,
        });
        added += 1;
    }
    (StatusCode::CREATED, Json(json!({"added": added}))).into_response()
}

/// Any path the API does not have.
pub(crate) async fn not_found() -> Response {
    s1_error(StatusCode::NOT_FOUND, 4_040_010, "Not Found", None)
}

/// A known path with a method it does not take.
pub(crate) async fn method_not_allowed() -> Response {
    s1_error(
        StatusCode::METHOD_NOT_ALLOWED,
        4_050_010,
        "Method Not Allowed",
        None,
    )
}
