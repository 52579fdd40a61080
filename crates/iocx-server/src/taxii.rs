//! A TAXII 2.1 server (read-only): discovery at `/taxii2/`, one API root at `/taxii2/api/`,
//! one collection per published rule, and its objects as STIX 2.1 indicators.
//!
//! - A collection's id is a UUIDv5 of the rule's name, so it is stable across restarts and nodes.
//! - Objects are the indicators the rule selects, ordered by their last material change; each
//!   change is a new version whose `date_added` is that time. `added_after` filters on it,
//!   `next` is an opaque position, and `X-TAXII-Date-Added-First`/`-Last` carry the page's range.
//! - An indicator that stopped being active (expired, aged out, marked safe) is served with
//!   `revoked: true`, so consumers withdraw it.
//! - Authentication: an API token (`Authorization: Bearer`, or as the basic password) or a
//!   user's basic credentials; any role may read.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use iocx_model::Timestamp;
use iocx_model::feed::stix;
use iocx_store::{Role, RuleRow};
use serde_json::{Value, json};

use crate::App;
use crate::api::{P, Q};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::sources;

/// The TAXII media type.
pub const TAXII: &str = "application/taxii+json;version=2.1";
/// The STIX media type.
pub const STIX: &str = "application/stix+json;version=2.1";

const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5c1b_2a57_6f0e_4b8e_9f4e_1d2c_7a90_3b11);

/// The TAXII routes.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/taxii2/", get(discovery))
        .route("/taxii2/api/", get(api_root))
        .route("/taxii2/api/collections/", get(collections))
        .route("/taxii2/api/collections/{id}/", get(collection))
        .route("/taxii2/api/collections/{id}/objects/", get(objects))
        .route("/taxii2/api/collections/{id}/manifest/", get(manifest))
}

fn taxii(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII));
    r
}

/// TAXII errors are `error` resources with the TAXII media type.
fn error(e: ApiError) -> Response {
    let mut r = taxii(
        e.status,
        json!({"title": e.code, "description": e.message, "http_status": e.status.as_str()}),
    );
    if e.status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"iocx TAXII\""),
        );
    }
    r
}

/// Refuses requests that accept neither TAXII 2.1 nor anything.
fn check_accept(headers: &HeaderMap) -> ApiResult<()> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let ok = accept.split(',').any(|a| {
        let a = a.trim().replace(' ', "").to_ascii_lowercase();
        a.starts_with("*/*")
            || a.starts_with("application/*")
            || a == "application/taxii+json"
            || a.starts_with("application/taxii+json;version=2.1")
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!("this server answers {TAXII}"),
        ))
    }
}

async fn guard(who: Result<Principal, ApiError>, headers: &HeaderMap) -> ApiResult<Principal> {
    check_accept(headers)?;
    let who = who?;
    who.require(Role::Viewer)?;
    Ok(who)
}

async fn discovery(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    who: Result<Principal, ApiError>,
) -> Response {
    if let Err(e) = guard(who, &headers).await {
        return error(e);
    }
    taxii(
        StatusCode::OK,
        json!({
            "title": app.config.taxii.title,
            "description": "Indicators curated by iocx, one collection per published rule.",
            "default": "/taxii2/api/",
            "api_roots": ["/taxii2/api/"],
        }),
    )
}

async fn api_root(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    who: Result<Principal, ApiError>,
) -> Response {
    if let Err(e) = guard(who, &headers).await {
        return error(e);
    }
    taxii(
        StatusCode::OK,
        json!({
            "title": format!("{} API root", app.config.taxii.title),
            "versions": [TAXII],
            "max_content_length": app.config.server.max_body_bytes,
        }),
    )
}

fn collection_id(rule: &str) -> String {
    uuid::Uuid::new_v5(&NAMESPACE, rule.as_bytes()).to_string()
}

fn collection_resource(r: &RuleRow) -> Value {
    json!({
        "id": collection_id(&r.name),
        "title": r.name,
        "description": if r.description.is_empty() { format!("Indicators selected by: {}", r.expression) } else { r.description.clone() },
        "can_read": true,
        "can_write": false,
        "media_types": [STIX],
    })
}

async fn published(app: &App) -> ApiResult<Vec<RuleRow>> {
    let rules = app.store().call(|s| s.rules()).await?;
    let wanted = &app.config.taxii.collections;
    Ok(rules
        .into_iter()
        .filter(|r| wanted.is_empty() || wanted.contains(&r.name))
        .collect())
}

async fn find(app: &App, id: &str) -> ApiResult<RuleRow> {
    published(app)
        .await?
        .into_iter()
        .find(|r| collection_id(&r.name) == id)
        .ok_or_else(|| ApiError::not_found(format!("collection {id:?}")))
}

async fn collections(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    who: Result<Principal, ApiError>,
) -> Response {
    if let Err(e) = guard(who, &headers).await {
        return error(e);
    }
    match published(&app).await {
        Ok(rules) => taxii(
            StatusCode::OK,
            json!({"collections": rules.iter().map(collection_resource).collect::<Vec<_>>()}),
        ),
        Err(e) => error(e),
    }
}

async fn collection(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    who: Result<Principal, ApiError>,
    id: Result<P<String>, ApiError>,
) -> Response {
    let result = async {
        guard(who, &headers).await?;
        let P(id) = id?;
        Ok::<_, ApiError>(collection_resource(&find(&app, &id).await?))
    }
    .await;
    match result {
        Ok(v) => taxii(StatusCode::OK, v),
        Err(e) => error(e),
    }
}

/// `objects/` and `manifest/` query parameters.
#[derive(serde::Deserialize)]
struct ObjectsQuery {
    added_after: Option<String>,
    limit: Option<usize>,
    next: Option<String>,
    #[serde(rename = "match[type]")]
    match_type: Option<String>,
    #[serde(rename = "match[id]")]
    match_id: Option<String>,
    #[serde(rename = "match[spec_version]")]
    match_spec_version: Option<String>,
    #[serde(rename = "match[version]")]
    match_version: Option<String>,
}

struct Page {
    objects: Vec<(i64, iocx_store::IndicatorDetail)>,
    more: bool,
    next: Option<String>,
}

fn rfc3339(t: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp(t.0, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> ApiResult<i64> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| {
            ApiError::invalid(
                "added_after",
                "an RFC 3339 timestamp, e.g. 2026-01-01T00:00:00Z",
            )
        })
}

fn encode_next(changed: i64, id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{changed}:{id}"))
}

fn decode_next(text: &str) -> ApiResult<(i64, i64)> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (a, b) = s.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .ok_or_else(|| ApiError::invalid("next", "not a position this server gave"))
}

async fn page(app: &App, id: &str, q: &ObjectsQuery) -> ApiResult<Page> {
    let rule = find(app, id).await?;
    let limit = q.limit.unwrap_or(app.config.taxii.max_page);
    if limit == 0 {
        return Err(ApiError::invalid("limit", "at least 1"));
    }
    let limit = limit.min(app.config.taxii.max_page);
    let wants_indicators = q
        .match_type
        .as_deref()
        .is_none_or(|t| t.split(',').any(|t| t.trim() == "indicator"));
    let wants_version = q
        .match_spec_version
        .as_deref()
        .is_none_or(|v| v.split(',').any(|v| v.trim() == "2.1"));
    if !wants_indicators || !wants_version {
        return Ok(Page {
            objects: Vec::new(),
            more: false,
            next: None,
        });
    }
    let mut after = match (&q.next, &q.added_after) {
        (Some(n), _) => decode_next(n)?,
        (None, Some(a)) => (parse_time(a)?, i64::MAX),
        (None, None) => (i64::MIN, 0),
    };
    let compiled = sources::compile(app, rule, "rule").await?;
    let match_ids: Option<Vec<String>> = q
        .match_id
        .as_deref()
        .map(|m| m.split(',').map(|s| s.trim().to_string()).collect());
    let mut objects = Vec::new();
    let mut more = false;
    // Allow-list exclusions and id matches are applied after the query: read until the page
    // is full or the collection ends.
    loop {
        let want = (limit - objects.len()) as i64 + 1;
        let (sql, params) = (compiled.sql.clone(), compiled.params.clone());
        let rows = app
            .store()
            .call(move |s| s.select_changed(&sql, &params, after, want.max(2)))
            .await?;
        let exhausted = (rows.len() as i64) < want.max(2);
        let Some(&(last_id, last_changed)) = rows.last() else {
            break;
        };
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let details = sources::details_kept(app, &compiled, ids, true).await?;
        for d in details {
            if let Some(m) = &match_ids
                && !m.contains(&stix::indicator_id(&d.indicator))
            {
                continue;
            }
            if objects.len() == limit {
                more = true;
                break;
            }
            objects.push((d.changed.0, d));
        }
        if more || exhausted {
            break;
        }
        after = (last_changed, last_id);
    }
    let next = if more {
        objects.last().map(|(c, d)| encode_next(*c, d.id))
    } else {
        None
    };
    Ok(Page {
        objects,
        more,
        next,
    })
}

fn date_headers(r: &mut Response, objects: &[(i64, iocx_store::IndicatorDetail)]) {
    if let (Some(first), Some(last)) = (objects.first(), objects.last()) {
        for (name, t) in [
            ("x-taxii-date-added-first", first.0),
            ("x-taxii-date-added-last", last.0),
        ] {
            if let Ok(v) = HeaderValue::from_str(&rfc3339(Timestamp(t))) {
                r.headers_mut().insert(name, v);
            }
        }
    }
}

async fn objects(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    who: Result<Principal, ApiError>,
    id: Result<P<String>, ApiError>,
    q: Result<Q<ObjectsQuery>, ApiError>,
) -> Response {
    let result = async {
        guard(who, &headers).await?;
        let (P(id), Q(q)) = (id?, q?);
        if q.match_version
            .as_deref()
            .is_some_and(|v| v != "last" && v != "all" && parse_time(v).is_err())
        {
            return Err(ApiError::invalid(
                "match[version]",
                "last, all, first or a timestamp",
            ));
        }
        page(&app, &id, &q).await
    }
    .await;
    match result {
        Ok(p) => {
            let objects: Vec<Value> = p
                .objects
                .iter()
                .map(|(_, d)| {
                    stix::indicator_object(&d.export_row(), !d.active || d.aggregate.safe)
                })
                .collect();
            let mut body = json!({"more": p.more, "objects": objects});
            if let Some(n) = &p.next {
                body["next"] = json!(n);
            }
            let mut r = taxii(StatusCode::OK, body);
            date_headers(&mut r, &p.objects);
            r
        }
        Err(e) => error(e),
    }
}

async fn manifest(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    who: Result<Principal, ApiError>,
    id: Result<P<String>, ApiError>,
    q: Result<Q<ObjectsQuery>, ApiError>,
) -> Response {
    let result = async {
        guard(who, &headers).await?;
        let (P(id), Q(q)) = (id?, q?);
        page(&app, &id, &q).await
    }
    .await;
    match result {
        Ok(p) => {
            let objects: Vec<Value> = p
                .objects
                .iter()
                .map(|(changed, d)| {
                    json!({
                        "id": stix::indicator_id(&d.indicator),
                        "date_added": rfc3339(Timestamp(*changed)),
                        "version": rfc3339(d.changed),
                        "media_type": STIX,
                    })
                })
                .collect();
            let mut body = json!({"more": p.more, "objects": objects});
            if let Some(n) = &p.next {
                body["next"] = json!(n);
            }
            let mut r = taxii(StatusCode::OK, body);
            date_headers(&mut r, &p.objects);
            r
        }
        Err(e) => error(e),
    }
}
