//! The HTTP handlers: the OAuth token endpoint, bearer checks, registries, indicators with their
//! sub-resources, saved searches and the Threat Library queries, in ThreatQ's envelopes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::data::{FieldErrors, NewIndicator, Sort, State, StoreError, parse_new_indicator};
use super::model::{
    Indicator, Relation, Render, STATUSES, attribute_wire, indicator_fields, indicator_wire,
    source_wire, status_by_id, tag_wire,
};
use super::query::{self, Query};
use super::{Args, render_error};
use crate::common::Faults;

/// Everything the handlers share.
pub(crate) struct Ctx {
    pub(crate) state: Arc<State>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) args: Args,
}

type Shared = AxumState<Arc<Ctx>>;

/// A refusal in one of ThreatQ's error forms.
pub(crate) enum ApiError {
    /// `{"errors": [message]}` with this status.
    Plain(StatusCode, String),
    /// 400 `{"data": {"errors": {field: [messages]}}}`.
    Fields(FieldErrors),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Plain(status, message) => render_error(status, "", &message),
            ApiError::Fields(errors) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"data": {"errors": errors}})),
            )
                .into_response(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Fields(f) => ApiError::Fields(f),
            StoreError::Message(m) => ApiError::Plain(StatusCode::BAD_REQUEST, m),
            StoreError::NotFound => not_found_error(),
        }
    }
}

type Answer = Result<Response, ApiError>;

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::Plain(StatusCode::BAD_REQUEST, message.into())
}

fn not_found_error() -> ApiError {
    ApiError::Plain(
        StatusCode::NOT_FOUND,
        "The requested object does not exist.".into(),
    )
}

fn field_error(field: &str, message: &str) -> ApiError {
    let mut errors = FieldErrors::new();
    errors.insert(field.to_string(), vec![message.to_string()]);
    ApiError::Fields(errors)
}

fn params(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Values of a list parameter: `name=a,b`, repeated `name=a&name=b`, or `name[]=a`.
fn list_param(params: &[(String, String)], name: &str) -> Vec<String> {
    let bracket = format!("{name}[]");
    params
        .iter()
        .filter(|(k, _)| *k == name || *k == bracket)
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_usize(params: &[(String, String)], name: &str, default: usize) -> Result<usize, ApiError> {
    match param(params, name) {
        None | Some("") => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| field_error(name, &format!("The {name} must be an integer."))),
    }
}

async fn read_body(ctx: &Ctx, body: Body) -> Result<Vec<u8>, ApiError> {
    axum::body::to_bytes(body, ctx.args.max_body_bytes)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| {
            ApiError::Plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The request body exceeds the maximum size of {} bytes.",
                    ctx.args.max_body_bytes
                ),
            )
        })
}

async fn read_json(ctx: &Ctx, body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(ctx, body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| bad_request(format!("The request body is not valid JSON: {e}")))
}

/// Checks `Authorization: Bearer <token>` against the live tokens.
fn admit(ctx: &Ctx, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, t) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| t.trim())
        });
    let denied = || ApiError::Plain(StatusCode::UNAUTHORIZED, "Access denied".into());
    let token = token.ok_or_else(denied)?;
    let now = Utc::now();
    ctx.state.check_access(token, now).ok_or_else(denied)?;
    ctx.state.reap(now);
    Ok(())
}

fn ok(value: Value) -> Answer {
    Ok(Json(value).into_response())
}

fn created(value: Value) -> Answer {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// `POST /api/token`: client credentials (HTTP Basic), password and refresh-token grants, with
/// parameters in the query string, a form body or a JSON body.
pub(crate) async fn token(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Answer {
    let mut fields: BTreeMap<String, String> = params(raw.as_deref()).into_iter().collect();
    let bytes = read_body(&ctx, body).await?;
    let text = String::from_utf8_lossy(&bytes);
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) {
        for (k, v) in map {
            if let Some(s) = v.as_str() {
                fields.entry(k).or_insert_with(|| s.to_string());
            }
        }
    } else if !text.trim().is_empty() {
        for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
            fields
                .entry(k.into_owned())
                .or_insert_with(|| v.into_owned());
        }
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, b64) = v.trim().split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return None;
            }
            let decoded = STANDARD.decode(b64.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (id, secret) = text.split_once(':')?;
            Some((id.to_string(), secret.to_string()))
        });
    let bad_login = |message: &str| {
        ApiError::Plain(
            StatusCode::from_u16(ctx.args.bad_login_status).unwrap_or(StatusCode::BAD_REQUEST),
            message.to_string(),
        )
    };
    let now = Utc::now();
    let grant = fields.get("grant_type").map(String::as_str).unwrap_or("");
    let subject = match grant {
        "client_credentials" => {
            let (id, secret) = basic
                .or_else(|| {
                    Some((
                        fields.get("client_id")?.clone(),
                        fields.get("client_secret")?.clone(),
                    ))
                })
                .ok_or_else(|| bad_login("Client authentication failed"))?;
            if id != ctx.args.client_id || secret != ctx.args.client_secret {
                return Err(bad_login("Client authentication failed"));
            }
            id
        }
        "password" => {
            let email = fields.get("email").or_else(|| fields.get("username"));
            let password = fields.get("password");
            let client = fields.get("client_id");
            if client.is_none_or(|c| *c != ctx.args.ui_client_id) {
                return Err(bad_login("Client authentication failed"));
            }
            match (email, password) {
                (Some(e), Some(p)) if *e == ctx.args.email && *p == ctx.args.password => e.clone(),
                _ => return Err(bad_login("The user credentials were incorrect.")),
            }
        }
        "refresh_token" => {
            let Some(rt) = fields.get("refresh_token") else {
                return Err(bad_login("The refresh token is invalid."));
            };
            ctx.state
                .take_refresh(rt, ctx.args.reuse_refresh_tokens, now)
                .ok_or_else(|| bad_login("The refresh token is invalid."))?
        }
        "" => return Err(bad_login("The grant_type parameter is required.")),
        _ => return Err(bad_login("The authorization grant type is not supported.")),
    };
    let issued = ctx.state.issue_token(
        &subject,
        ctx.args.token_lifetime_secs,
        ctx.args.refresh_lifetime_secs,
        now,
    );
    ok(json!({
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
    }))
}

/// `GET /api/objects`.
pub(crate) async fn objects(AxumState(ctx): Shared, headers: HeaderMap) -> Answer {
    admit(&ctx, &headers)?;
    let types: Vec<Value> = ctx
        .state
        .types()
        .iter()
        .map(|t| json!({"id": t.id, "name": t.name}))
        .collect();
    let statuses: Vec<Value> = STATUSES.iter().map(|s| s.to_wire()).collect();
    ok(json!({"data": [
        {"id": 1, "collection": "indicators", "name": "indicator", "display_name": "Indicator",
         "display_name_plural": "Indicators", "types": types, "statuses": statuses},
        {"id": 2, "collection": "events", "name": "event", "display_name": "Event",
         "display_name_plural": "Events", "types": [{"id": 1, "name": "Sighting"}, {"id": 2, "name": "Incident"}], "statuses": []},
        {"id": 3, "collection": "adversaries", "name": "adversary", "display_name": "Adversary",
         "display_name_plural": "Adversaries", "types": [], "statuses": []},
        {"id": 4, "collection": "attachments", "name": "attachment", "display_name": "File",
         "display_name_plural": "Files", "types": [], "statuses": []},
    ]}))
}

/// `GET /api/indicator/types[?name=]`.
pub(crate) async fn types(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    admit(&ctx, &headers)?;
    let p = params(raw.as_deref());
    let name = param(&p, "name");
    let data: Vec<Value> = ctx
        .state
        .types()
        .iter()
        .filter(|t| name.is_none_or(|n| t.name.eq_ignore_ascii_case(n.trim())))
        .map(|t| t.to_wire())
        .collect();
    ok(json!({"total": data.len(), "data": data}))
}

fn parse_id(text: &str) -> Result<u64, ApiError> {
    text.trim().parse::<u64>().map_err(|_| not_found_error())
}

/// `GET /api/indicator/types/{id}`.
pub(crate) async fn type_by_id(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    admit(&ctx, &headers)?;
    let id = parse_id(&id)?;
    let t = ctx
        .state
        .types()
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(not_found_error)?;
    ok(json!({"data": t.to_wire()}))
}

/// `GET /api/indicator/statuses[?name=]`.
pub(crate) async fn statuses(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    admit(&ctx, &headers)?;
    let p = params(raw.as_deref());
    let name = param(&p, "name");
    let data: Vec<Value> = STATUSES
        .iter()
        .filter(|s| name.is_none_or(|n| s.name.eq_ignore_ascii_case(n.trim())))
        .map(|s| s.to_wire())
        .collect();
    ok(json!({"total": data.len(), "data": data}))
}

/// `GET /api/indicator/statuses/{id}`.
pub(crate) async fn status_by_id_handler(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    admit(&ctx, &headers)?;
    let s = status_by_id(parse_id(&id)?).ok_or_else(not_found_error)?;
    ok(json!({"data": s.to_wire()}))
}

/// Which relations a list answer carries: the `with` parameter, plus the defaults.
fn render_for(ctx: &Ctx, with: &[String], score_object: bool) -> Render {
    let mut render = Render {
        score_object,
        ..Render::default()
    };
    if ctx.args.relations_by_default {
        render
            .with
            .extend([Relation::Attributes, Relation::Sources, Relation::Tags]);
    }
    for w in with {
        if let Some(r) = Relation::from_key(w) {
            render.with.insert(r);
        }
    }
    render
}

/// Renders indicators for a list answer: by `fields` when given, else whole.
fn render_list(ctx: &Ctx, items: &[Indicator], fields: &[String], with: &[String]) -> Vec<Value> {
    if fields.is_empty() {
        let render = render_for(ctx, with, false);
        items.iter().map(|i| indicator_wire(i, &render)).collect()
    } else {
        items
            .iter()
            .map(|i| indicator_fields(i, fields, ctx.args.tags_as_objects))
            .collect()
    }
}

/// `GET /api/indicators[?value=&type_id=&status_id=&with=&limit=&offset=]`.
pub(crate) async fn list_indicators(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    admit(&ctx, &headers)?;
    let p = params(raw.as_deref());
    let limit = parse_usize(&p, "limit", ctx.args.default_page_size)?.min(ctx.args.max_page_size);
    let offset = parse_usize(&p, "offset", 0)?;
    let num = |name: &str| -> Result<Option<u64>, ApiError> {
        param(&p, name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| field_error(name, &format!("The {name} must be an integer.")))
            })
            .transpose()
    };
    let type_id = num("type_id")?;
    let status_id = num("status_id")?;
    let (total, items) = ctx
        .state
        .list(param(&p, "value"), type_id, status_id, offset, limit);
    let data = render_list(
        &ctx,
        &items,
        &list_param(&p, "fields"),
        &list_param(&p, "with"),
    );
    ok(json!({"total": total, "data": data, "limit": limit, "offset": offset}))
}

fn parse_items(ctx: &Ctx, body: &Value) -> Result<Vec<NewIndicator>, ApiError> {
    let (items, single) = match body {
        Value::Array(items) => (items.clone(), false),
        Value::Object(_) => (vec![body.clone()], true),
        _ => {
            return Err(bad_request(
                "The body must be an indicator object or an array of them.",
            ));
        }
    };
    if items.is_empty() {
        return Err(bad_request("No indicators were given."));
    }
    if items.len() > ctx.args.max_batch {
        return Err(bad_request(format!(
            "A request may carry at most {} indicators; this one carries {}.",
            ctx.args.max_batch,
            items.len()
        )));
    }
    let mut errors = FieldErrors::new();
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = if single {
            String::new()
        } else {
            format!("{i}.")
        };
        match parse_new_indicator(item, ctx.state.types(), &prefix) {
            Ok(n) => parsed.push(n),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Fields(errors));
    }
    Ok(parsed)
}

fn created_wire(items: &[Indicator]) -> Vec<Value> {
    let render = Render {
        with: [Relation::Attributes, Relation::Sources, Relation::Tags]
            .into_iter()
            .collect(),
        score_object: false,
    };
    items.iter().map(|i| indicator_wire(i, &render)).collect()
}

/// `POST /api/indicators`: one object or an array; 201 with `data` as a list.
pub(crate) async fn create_indicators(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    admit(&ctx, &headers)?;
    let body = read_json(&ctx, body).await?;
    let items = parse_items(&ctx, &body)?;
    if ctx.faults.capacity_reached() {
        return Err(bad_request(
            "The indicator limit of this instance has been reached.",
        ));
    }
    let done = ctx.state.create(items, Utc::now())?;
    let data = created_wire(&done);
    created(json!({"total": data.len(), "data": data}))
}

/// `POST /api/indicators/consume` (and `/consume/new`): bulk upsert of an array.
pub(crate) async fn consume_indicators(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    admit(&ctx, &headers)?;
    let body = read_json(&ctx, body).await?;
    let body = match body {
        Value::Object(ref m) if m.contains_key("data") => {
            m.get("data").cloned().unwrap_or(Value::Null)
        }
        other => other,
    };
    if !body.is_array() {
        return Err(bad_request(
            "The consume body must be an array of indicators.",
        ));
    }
    let items = parse_items(&ctx, &body)?;
    if ctx.faults.capacity_reached() {
        return Err(bad_request(
            "The indicator limit of this instance has been reached.",
        ));
    }
    let done = ctx.state.create(items, Utc::now())?;
    let data = created_wire(&done);
    created(json!({"total": data.len(), "data": data}))
}

fn fields_of(body: &Value, p: &[(String, String)]) -> Vec<String> {
    match body.get("fields") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => s.split(',').map(|f| f.trim().to_string()).collect(),
        _ => list_param(p, "fields"),
    }
}

fn parse_sort(p: &[(String, String)]) -> Result<Sort, ApiError> {
    match param(p, "sort") {
        None | Some("") => Ok(Sort {
            field: super::data::SortField::Id,
            desc: false,
        }),
        Some(s) => Sort::parse(s).ok_or_else(|| {
            field_error(
                "sort",
                "The sort must be one of id, value, score, created_at, updated_at, touched_at, optionally prefixed with -.",
            )
        }),
    }
}

fn compile(body: &Value) -> Result<Query, ApiError> {
    query::parse_api_query(body, Utc::now())
        .map_err(|e| ApiError::Plain(StatusCode::BAD_REQUEST, e.0))
}

/// `POST /api/indicators/query?limit&offset&sort`: `{"criteria","filters","fields"}` →
/// `{"total","data","limit","offset"}`.
pub(crate) async fn query_indicators(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Answer {
    admit(&ctx, &headers)?;
    let p = params(raw.as_deref());
    let body = read_json(&ctx, body).await?;
    if !body.is_object() {
        return Err(bad_request("The query body must be an object."));
    }
    let limit = parse_usize(&p, "limit", ctx.args.default_page_size)?.min(ctx.args.max_page_size);
    let offset = parse_usize(&p, "offset", 0)?;
    let sort = parse_sort(&p)?;
    let compiled = compile(&body)?;
    let (total, items) = ctx.state.query(&compiled, sort, offset, limit);
    let with = match body.get("with") {
        Some(Value::Array(w)) => w
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => list_param(&p, "with"),
    };
    let data = render_list(&ctx, &items, &fields_of(&body, &p), &with);
    ok(json!({"total": total, "data": data, "limit": limit, "offset": offset}))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CursorMark {
    s: String,
    k: String,
    i: u64,
}

/// `GET /api/indicators/query/hash/{hash}?sort&limit&cursorMark&fields`: a data collection's
/// indicators with Solr-style cursor paging.
pub(crate) async fn collection_page(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(hash): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    admit(&ctx, &headers)?;
    let p = params(raw.as_deref());
    let search = ctx.state.search(&hash).ok_or_else(not_found_error)?;
    let limit =
        parse_usize(&p, "limit", ctx.args.default_page_size)?.clamp(1, ctx.args.max_page_size);
    let sort = parse_sort(&p)?;
    let mark = param(&p, "cursorMark").unwrap_or("*");
    let after = if mark == "*" || mark.is_empty() {
        None
    } else {
        let decoded = URL_SAFE_NO_PAD
            .decode(mark)
            .ok()
            .and_then(|b| serde_json::from_slice::<CursorMark>(&b).ok())
            .filter(|c| c.s == sort.text())
            .ok_or_else(|| field_error("cursorMark", "The cursorMark is invalid for this sort."))?;
        Some((decoded.k, decoded.i))
    };
    let compiled = compile(&search.api_query())?;
    let (total, items) = ctx
        .state
        .query_after(&compiled, sort, after.as_ref(), limit);
    let next = match items.last() {
        Some(last) => {
            let (k, i) = sort.key(last);
            let cursor = CursorMark {
                s: sort.text(),
                k,
                i,
            };
            serde_json::to_vec(&cursor)
                .map(|b| URL_SAFE_NO_PAD.encode(b))
                .unwrap_or_default()
        }
        None => mark.to_string(),
    };
    let fields = list_param(&p, "fields");
    let data = if items.is_empty() && ctx.args.empty_page_as_object {
        Value::Object(Map::new())
    } else {
        Value::Array(render_list(&ctx, &items, &fields, &list_param(&p, "with")))
    };
    ok(json!({"total": total, "data": data, "nextCursorMark": next, "limit": limit}))
}

fn single_render(p: &[(String, String)]) -> Render {
    let mut render = Render {
        score_object: true,
        ..Render::default()
    };
    for w in list_param(p, "with") {
        if let Some(r) = Relation::from_key(&w) {
            render.with.insert(r);
        }
    }
    render
}

/// `GET /api/indicators/{id}[?with=]`.
pub(crate) async fn get_indicator(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    admit(&ctx, &headers)?;
    let ind = ctx.state.get(parse_id(&id)?).ok_or_else(not_found_error)?;
    let p = params(raw.as_deref());
    ok(json!({"data": indicator_wire(&ind, &single_render(&p))}))
}

/// `PUT /api/indicators/{id}`: status, description, expiry.
pub(crate) async fn update_indicator(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers)?;
    let id = parse_id(&id)?;
    let body = read_json(&ctx, body).await?;
    if !body.is_object() {
        return Err(bad_request("The body must be an object."));
    }
    let ind = ctx.state.update(id, &body, Utc::now())?;
    ok(json!({"data": indicator_wire(&ind, &Render::default())}))
}

/// `DELETE /api/indicators/{id}`: 204.
pub(crate) async fn delete_indicator(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    admit(&ctx, &headers)?;
    if ctx.state.delete(parse_id(&id)?) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found_error())
    }
}

/// `GET|PUT /api/indicator/{id}/scores`: `{"manual_score": 0..10 | null}`.
pub(crate) async fn scores(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    method: axum::http::Method,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers)?;
    let id = parse_id(&id)?;
    let ind = if method == axum::http::Method::GET {
        ctx.state.get(id).ok_or_else(not_found_error)?
    } else {
        let body = read_json(&ctx, body).await?;
        let manual = match body.get("manual_score") {
            None => {
                return Err(field_error(
                    "manual_score",
                    "The manual score field is required.",
                ));
            }
            Some(Value::Null) => None,
            Some(v) => {
                let n = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .filter(|n| (0.0..=10.0).contains(n));
                match n {
                    Some(n) => Some(n),
                    None => {
                        return Err(field_error(
                            "manual_score",
                            "The manual score must be between 0 and 10.",
                        ));
                    }
                }
            }
        };
        ctx.state.set_score(id, manual, Utc::now())?
    };
    let wire = indicator_wire(
        &ind,
        &Render {
            score_object: true,
            ..Render::default()
        },
    );
    ok(json!({"data": wire.get("score").cloned().unwrap_or(Value::Null)}))
}

/// `GET /api/indicators/{id}/{attributes|sources|tags}`.
pub(crate) async fn list_relation(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((id, kind)): Path<(String, String)>,
) -> Answer {
    admit(&ctx, &headers)?;
    let ind = ctx.state.get(parse_id(&id)?).ok_or_else(not_found_error)?;
    let data: Vec<Value> = match kind.as_str() {
        "attributes" => ind
            .attributes
            .iter()
            .map(|a| attribute_wire(ind.id, a))
            .collect(),
        "sources" => ind.sources.iter().map(|s| source_wire(&ind, s)).collect(),
        "tags" => ind.tags.iter().map(tag_wire).collect(),
        "adversaries" | "events" | "attachments" | "indicators" => Vec::new(),
        _ => return Err(not_found_error()),
    };
    ok(json!({"total": data.len(), "data": data}))
}

/// `POST /api/indicators/{id}/{attributes|sources|tags}`: one object or an array; 201.
pub(crate) async fn add_relation(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((id, kind)): Path<(String, String)>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers)?;
    let id = parse_id(&id)?;
    let current = ctx.state.get(id).ok_or_else(not_found_error)?;
    let body = read_json(&ctx, body).await?;
    let items = match body {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut probe = json!({"value": current.value, "type": current.indicator_type.name});
    let key = match kind.as_str() {
        "attributes" | "sources" | "tags" => kind.clone(),
        _ => return Err(not_found_error()),
    };
    probe[&key] = Value::Array(items);
    let new = parse_new_indicator(&probe, ctx.state.types(), "").map_err(ApiError::Fields)?;
    let ind = ctx.state.add_relations(id, &new, Utc::now())?;
    let data: Vec<Value> = match kind.as_str() {
        "attributes" => ind
            .attributes
            .iter()
            .filter(|a| {
                new.attributes
                    .iter()
                    .any(|(n, v)| *n == a.name && *v == a.value)
            })
            .map(|a| attribute_wire(ind.id, a))
            .collect(),
        "sources" => ind
            .sources
            .iter()
            .filter(|s| new.sources.iter().any(|(n, _)| *n == s.name))
            .map(|s| source_wire(&ind, s))
            .collect(),
        _ => ind
            .tags
            .iter()
            .filter(|t| new.tags.contains(&t.name))
            .map(tag_wire)
            .collect(),
    };
    created(json!({"total": data.len(), "data": data}))
}

/// `PUT /api/indicators/{id}/attributes/{pivot}`: `{"value": …}`.
pub(crate) async fn edit_relation(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((id, kind, pivot)): Path<(String, String, String)>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers)?;
    if kind != "attributes" {
        return Err(not_found_error());
    }
    let body = read_json(&ctx, body).await?;
    let Some(value) = body.get("value").and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }) else {
        return Err(field_error("value", "The value field is required."));
    };
    let wire = ctx.state.edit_relation(
        parse_id(&id)?,
        &kind,
        parse_id(&pivot)?,
        Some(value),
        Utc::now(),
    )?;
    ok(json!({"data": wire}))
}

/// `DELETE /api/indicators/{id}/{attributes|sources|tags}/{pivot}`: 204.
pub(crate) async fn delete_relation(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path((id, kind, pivot)): Path<(String, String, String)>,
) -> Answer {
    admit(&ctx, &headers)?;
    ctx.state
        .edit_relation(parse_id(&id)?, &kind, parse_id(&pivot)?, None, Utc::now())?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/search/query[?name=]`: the saved searches.
pub(crate) async fn list_searches(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    admit(&ctx, &headers)?;
    let p = params(raw.as_deref());
    let name = param(&p, "name");
    let data: Vec<Value> = ctx
        .state
        .searches()
        .iter()
        .filter(|s| name.is_none_or(|n| s.name == n))
        .map(|s| s.to_wire(ctx.args.search_json_as_string))
        .collect();
    ok(json!({"total": data.len(), "data": data}))
}

/// `GET /api/search/query/{id}` (an id, a hash or an exact name).
pub(crate) async fn get_search(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Answer {
    admit(&ctx, &headers)?;
    let s = ctx.state.search(&key).ok_or_else(not_found_error)?;
    ok(json!({"data": s.to_wire(ctx.args.search_json_as_string)}))
}

/// `POST /api/search/query`: `{"name", "json": {"ui_query", "api_query"}}` (json may be a string).
pub(crate) async fn create_search(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    admit(&ctx, &headers)?;
    let body = read_json(&ctx, body).await?;
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    let json = match body.get("json") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    if let Some(api) = json.get("api_query") {
        compile(api)?;
    }
    let s = ctx.state.add_search(name, json, Utc::now())?;
    created(json!({"data": s.to_wire(ctx.args.search_json_as_string)}))
}

/// `DELETE /api/search/query/{id}`.
pub(crate) async fn delete_search(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    admit(&ctx, &headers)?;
    if ctx.state.delete_search(parse_id(&id)?) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found_error())
    }
}

/// `GET /api/search?query=&limit=`: a quick search over indicator values.
pub(crate) async fn quick_search(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    admit(&ctx, &headers)?;
    let p = params(raw.as_deref());
    let Some(text) = param(&p, "query").filter(|q| !q.trim().is_empty()) else {
        return Err(field_error("query", "The query field is required."));
    };
    let limit = parse_usize(&p, "limit", 10)?.min(ctx.args.max_page_size);
    let data: Vec<Value> = ctx
        .state
        .text_search(text.trim(), limit)
        .iter()
        .map(|i| json!({"id": i.id, "value": i.value, "object": "indicator", "type": i.indicator_type.name}))
        .collect();
    ok(json!({"total": data.len(), "data": data}))
}

/// `GET /_sim/state`.
pub(crate) async fn get_state(AxumState(ctx): Shared) -> Response {
    Json(ctx.state.snapshot()).into_response()
}

/// `DELETE /_sim/state`: removes every indicator.
pub(crate) async fn clear_state(AxumState(ctx): Shared) -> Response {
    ctx.state.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// Any path the API does not have.
pub(crate) async fn not_found() -> Response {
    not_found_error().into_response()
}

/// A known path with a method it does not take.
pub(crate) async fn method_not_allowed() -> Response {
    render_error(StatusCode::METHOD_NOT_ALLOWED, "", "Method not allowed.")
}
