//! The HTTP handlers: the API-key check, PyMISP's start-up calls, events, attributes, tags, the
//! two `restSearch`es, the static feed, in MISP's envelopes (`{"name","message","url"}` errors).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::Args;
use super::data::{Fail, State};
use super::model::describe_types;
use super::search::{Filters, loose_bool};
use crate::common::Faults;

/// Everything the handlers share.
pub(crate) struct Ctx {
    pub(crate) state: Arc<State>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) args: Args,
}

type Shared = AxumState<Arc<Ctx>>;

/// A refusal with the URL it answers.
pub(crate) struct ApiError {
    fail: Fail,
    url: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.fail.status).unwrap_or(StatusCode::FORBIDDEN);
        let mut body =
            json!({"name": self.fail.message, "message": self.fail.message, "url": self.url});
        if let Some(errors) = self.fail.errors {
            body["saved"] = json!(false);
            body["errors"] = errors;
        }
        let mut response = (status, Json(body)).into_response();
        if let Some(loc) = self.fail.location
            && let Ok(v) = HeaderValue::from_str(&loc)
        {
            response.headers_mut().insert(header::LOCATION, v);
        }
        response
    }
}

type Answer = Result<Response, ApiError>;

fn err(uri: &Uri, fail: Fail) -> ApiError {
    ApiError {
        fail,
        url: uri.path().to_string(),
    }
}

fn ok(v: Value) -> Answer {
    Ok(Json(v).into_response())
}

/// Checks the API key (`Authorization: KEY` or `X-MISP-AUTH: KEY`) and, with
/// `--require-accept-json`, the JSON `Accept`.
fn admit(ctx: &Ctx, headers: &HeaderMap, uri: &Uri) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .or_else(|| headers.get("x-misp-auth"))
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if presented != Some(ctx.args.key.as_str()) || ctx.args.key.is_empty() {
        return Err(err(
            uri,
            Fail::new(
                403,
                "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.",
            ),
        ));
    }
    if ctx.args.require_accept_json {
        let json = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        if !json && !uri.path().ends_with(".json") {
            return Err(err(
                uri,
                Fail::new(
                    406,
                    "This API answers JSON only; send Accept: application/json.",
                ),
            ));
        }
    }
    Ok(())
}

async fn read_json(ctx: &Ctx, uri: &Uri, body: Body) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, ctx.args.max_body_bytes)
        .await
        .map_err(|_| err(uri, Fail::new(413, "The request body is too large.")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        err(
            uri,
            Fail::new(400, format!("Malformed JSON in the request body: {e}")),
        )
    })
}

fn id_of(raw: &str) -> String {
    raw.trim_end_matches(".json").to_string()
}

/// `GET /servers/getVersion`.
pub(crate) async fn get_version(AxumState(ctx): Shared, headers: HeaderMap, uri: Uri) -> Answer {
    admit(&ctx, &headers, &uri)?;
    ok(json!({
        "version": ctx.args.misp_version,
        "pymisp_recommended_version": ctx.args.pymisp_recommended_version,
        "perm_sync": false,
        "perm_sighting": true,
        "perm_galaxy_editor": false,
        "request_encoding": ["gzip"],
        "filter_sightings": true,
    }))
}

/// `GET /servers/getPyMISPVersion.json`.
pub(crate) async fn get_pymisp_version(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    ok(json!({"version": ctx.args.pymisp_recommended_version}))
}

/// `GET /users/view/me`: the key's user with its role, settings and organisation.
pub(crate) async fn user_me(AxumState(ctx): Shared, headers: HeaderMap, uri: Uri) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let org = ctx.state.org();
    ok(json!({
        "User": {
            "id": "1", "org_id": org.id.to_string(), "server_id": "0", "email": ctx.args.user_email,
            "autoalert": false, "authkey": null, "invited_by": "0", "gpgkey": null,
            "certif_public": "", "nids_sid": "4000000", "termsaccepted": true, "newsread": "0",
            "role_id": "3", "change_pw": false, "contactalert": false, "disabled": false,
            "expiration": null, "current_login": "0", "last_login": "0", "last_api_access": "0",
            "force_logout": false, "date_created": "1700000000", "date_modified": "1700000000",
            "last_pw_change": "1700000000",
        },
        "Role": {
            "id": "3", "name": "User", "created": "2024-01-01 00:00:00", "modified": "2024-01-01 00:00:00",
            "perm_add": true, "perm_modify": true, "perm_modify_org": true, "perm_publish": true,
            "perm_delegate": false, "perm_sync": false, "perm_admin": false, "perm_audit": false,
            "perm_full": false, "perm_auth": true, "perm_site_admin": false, "perm_regexp_access": false,
            "perm_tagger": true, "perm_template": false, "perm_sharing_group": false,
            "perm_tag_editor": true, "perm_sighting": true, "perm_object_template": false,
            "default_role": true, "memory_limit": "", "max_execution_time": "",
            "restricted_to_site_admin": false, "perm_publish_zmq": false, "perm_publish_kafka": false,
            "perm_decaying": false, "enforce_rate_limit": false, "rate_limit_count": "0",
            "perm_galaxy_editor": false, "perm_warninglist": false, "perm_view_feed_correlations": false,
            "perm_analyst_data": false, "permission": "3", "permission_description": "publish",
        },
        "UserSetting": {},
        "Organisation": {"id": org.id.to_string(), "name": org.name, "uuid": org.uuid, "local": true},
    }))
}

/// `GET /attributes/describeTypes.json`.
pub(crate) async fn describe(AxumState(ctx): Shared, headers: HeaderMap, uri: Uri) -> Answer {
    admit(&ctx, &headers, &uri)?;
    ok(describe_types())
}

/// `POST /events/add` (and `/events/add/metadata:1`): 200 with the stored event.
pub(crate) async fn add_event(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = read_json(&ctx, &uri, body).await?;
    if ctx.faults.capacity_reached() {
        return Err(err(
            &uri,
            Fail::new(403, "Could not add Event: the instance is out of capacity."),
        ));
    }
    let (event, errors) = ctx
        .state
        .add_event(&body, Utc::now())
        .map_err(|f| err(&uri, f))?;
    let metadata = uri.path().contains("metadata:1");
    let mut out = if metadata {
        let mut head = ctx.state.event_json(&event, false);
        if let Some(Value::Object(e)) = head.get_mut("Event") {
            for k in [
                "Attribute",
                "ShadowAttribute",
                "RelatedEvent",
                "Galaxy",
                "Object",
                "EventReport",
                "CryptographicKey",
            ] {
                e.remove(k);
            }
        }
        head
    } else {
        ctx.state.event_json(&event, false)
    };
    if let (Some(errors), true) = (errors, ctx.args.report_dropped_attributes) {
        out["Event"]["dropped_attributes"] = errors;
    }
    ok(out)
}

/// `GET|POST|HEAD /events/view/{id}`: by id or UUID; POST may carry `{"deleted": 1}`.
pub(crate) async fn view_event(
    AxumState(ctx): Shared,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = if method == Method::POST {
        read_json(&ctx, &uri, body).await?
    } else {
        Value::Null
    };
    let with_deleted = loose_bool(body.get("deleted"))
        .ok()
        .flatten()
        .unwrap_or(false);
    let event = ctx
        .state
        .event(&id_of(&id))
        .ok_or_else(|| err(&uri, Fail::new(404, "Invalid event")))?;
    if method == Method::HEAD {
        return Ok(StatusCode::OK.into_response());
    }
    ok(ctx.state.event_json(&event, with_deleted))
}

/// `POST|PUT /events/edit/{id}`.
pub(crate) async fn edit_event(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = read_json(&ctx, &uri, body).await?;
    let event = ctx
        .state
        .edit_event(&id_of(&id), &body, Utc::now())
        .map_err(|f| err(&uri, f))?;
    ok(ctx.state.event_json(&event, false))
}

/// `POST|DELETE /events/delete/{id}`.
pub(crate) async fn delete_event(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let id = ctx
        .state
        .delete_event(&id_of(&id))
        .ok_or_else(|| err(&uri, Fail::new(404, "Invalid event")))?;
    ok(
        json!({"saved": true, "success": true, "name": "Event deleted.", "message": "Event deleted.", "url": uri.path(), "id": id.to_string()}),
    )
}

/// `POST /events/publish/{id}` and `/events/unpublish/{id}`.
pub(crate) async fn publish(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path((verb, id)): Path<(String, String)>,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let publish = match verb.as_str() {
        "publish" | "alert" => true,
        "unpublish" => false,
        _ => return Err(err(&uri, Fail::new(404, "Not Found"))),
    };
    let id = ctx
        .state
        .set_published(&id_of(&id), publish, Utc::now())
        .ok_or_else(|| err(&uri, Fail::new(404, "Invalid event")))?;
    let message = if publish {
        "Job queued"
    } else {
        "Event unpublished."
    };
    ok(
        json!({"saved": true, "success": true, "name": message, "message": message, "url": uri.path(), "id": id.to_string()}),
    )
}

fn filters(ctx: &Ctx, uri: &Uri, body: &Value) -> Result<Filters, ApiError> {
    let Value::Object(map) = body else {
        return Err(err(
            uri,
            Fail::new(400, "The search filters must be a JSON object."),
        ));
    };
    let f = Filters::parse(map, Utc::now()).map_err(|e| err(uri, Fail::new(400, e.0)))?;
    if !f.return_format.eq_ignore_ascii_case("json") {
        return Err(err(
            uri,
            Fail::new(
                400,
                format!(
                    "Invalid return format {}; this emulator answers json.",
                    f.return_format
                ),
            ),
        ));
    }
    if f.limit.is_some_and(|l| l > ctx.args.max_limit) && ctx.args.refuse_large_limit {
        return Err(err(
            uri,
            Fail::new(400, format!("limit may be at most {}.", ctx.args.max_limit)),
        ));
    }
    Ok(f)
}

fn with_count(mut response: Response, total: usize) -> Response {
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        response.headers_mut().insert("x-result-count", v);
    }
    response
}

/// `POST /attributes/restSearch`: `{"response": {"Attribute": […]}}` with `X-Result-Count`.
pub(crate) async fn attributes_search(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = read_json(&ctx, &uri, body).await?;
    let f = filters(&ctx, &uri, &body)?;
    let (total, attrs) = ctx.state.search_attributes(&f);
    Ok(with_count(
        Json(json!({"response": {"Attribute": attrs}})).into_response(),
        total,
    ))
}

/// `POST /events/restSearch`: `{"response": [{"Event": …}]}` with `X-Result-Count`.
pub(crate) async fn events_search(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = read_json(&ctx, &uri, body).await?;
    let f = filters(&ctx, &uri, &body)?;
    let (total, events) = ctx.state.search_events(&f);
    Ok(with_count(
        Json(json!({"response": events})).into_response(),
        total,
    ))
}

/// `GET|POST /events/index`: event heads, newest first; POST takes filters and paging.
pub(crate) async fn events_index(
    AxumState(ctx): Shared,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let mut body = if method == Method::POST {
        read_json(&ctx, &uri, body).await?
    } else {
        json!({})
    };
    if let Some(q) = uri.query()
        && let Value::Object(map) = &mut body
    {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            map.entry(k.into_owned())
                .or_insert(Value::String(v.into_owned()));
        }
    }
    // CakePHP named parameters: /events/index/limit:10/page:2
    if let Value::Object(map) = &mut body {
        for seg in uri.path().split('/').skip(3) {
            if let Some((k, v)) = seg.split_once(':') {
                map.entry(k.to_string())
                    .or_insert(Value::String(v.to_string()));
            }
        }
        map.remove("returnFormat");
    }
    let f = filters(&ctx, &uri, &body)?;
    ok(Value::Array(ctx.state.index(&f)))
}

/// `POST /attributes/add/{event}`: one attribute (`{"Attribute": …}` back) or a list
/// (`{"Attribute": […], "errors": …}`).
pub(crate) async fn add_attribute(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(event): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = read_json(&ctx, &uri, body).await?;
    if ctx.faults.capacity_reached() {
        return Err(err(
            &uri,
            Fail::new(
                403,
                "Could not add Attribute: the instance is out of capacity.",
            ),
        ));
    }
    let (made, errors, single) = ctx
        .state
        .add_attributes(&id_of(&event), &body, Utc::now())
        .map_err(|f| err(&uri, f))?;
    if single {
        return ok(json!({"Attribute": made.into_iter().next().unwrap_or(Value::Null)}));
    }
    let mut out = json!({"Attribute": made});
    if !errors.is_empty() {
        out["errors"] = json!({"name": "Some attributes could not be saved.", "message": "Some attributes could not be saved.", "url": uri.path(), "errors": errors});
    }
    ok(out)
}

/// `GET|HEAD /attributes/view/{id}`.
pub(crate) async fn view_attribute(
    AxumState(ctx): Shared,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let a = ctx
        .state
        .attribute_json(&id_of(&id))
        .ok_or_else(|| err(&uri, Fail::new(404, "Invalid attribute")))?;
    if method == Method::HEAD {
        return Ok(StatusCode::OK.into_response());
    }
    ok(a)
}

/// `POST|PUT /attributes/edit/{id}`.
pub(crate) async fn edit_attribute(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = read_json(&ctx, &uri, body).await?;
    let a = ctx
        .state
        .edit_attribute(&id_of(&id), &body, Utc::now())
        .map_err(|f| err(&uri, f))?;
    ok(a)
}

/// `POST|DELETE /attributes/delete/{id}` (`{"hard": 1}` or `/attributes/delete/{id}/1` removes
/// it; otherwise it is soft-deleted).
pub(crate) async fn delete_attribute(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(params): Path<Vec<(String, String)>>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = read_json(&ctx, &uri, body).await?;
    let id = params
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| id_of(v))
        .unwrap_or_default();
    let hard = loose_bool(body.get("hard")).ok().flatten().unwrap_or(false)
        || params.iter().any(|(k, v)| k == "hard" && v == "1");
    ctx.state
        .delete_attribute(&id, hard, Utc::now())
        .ok_or_else(|| err(&uri, Fail::new(404, "Invalid attribute")))?;
    ok(json!({"message": "Attribute deleted."}))
}

/// `POST /attributes/deleteSelected/{event}`: `{"id": [ids] | "all", "allow_hard_delete": 0|1}`.
pub(crate) async fn delete_selected(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(event): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = read_json(&ctx, &uri, body).await?;
    let ids = match body.get("id") {
        Some(Value::String(s)) if s == "all" => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .collect(),
        ),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .map(|n| vec![n]),
        None => return Err(err(&uri, Fail::new(400, "No attributes selected."))),
    };
    let hard = loose_bool(body.get("allow_hard_delete"))
        .ok()
        .flatten()
        .unwrap_or(false);
    let n = ctx
        .state
        .delete_selected(&id_of(&event), ids, hard, Utc::now())
        .ok_or_else(|| err(&uri, Fail::new(404, "Invalid event")))?;
    let message = format!("{n} attribute(s) deleted.");
    ok(
        json!({"saved": true, "success": true, "name": message, "message": message, "url": uri.path()}),
    )
}

/// `GET /tags/index`: `{"Tag": […]}`.
pub(crate) async fn tags_index(AxumState(ctx): Shared, headers: HeaderMap, uri: Uri) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let tags: Vec<Value> = ctx.state.tags().iter().map(|t| t.to_wire(None)).collect();
    ok(json!({"Tag": tags}))
}

/// `GET /tags/view/{id}`.
pub(crate) async fn tag_view(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let tag = ctx
        .state
        .tag(&id_of(&id))
        .ok_or_else(|| err(&uri, Fail::new(404, "Invalid tag")))?;
    ok(json!({"Tag": tag.to_wire(None)}))
}

/// `POST /tags/add`: `{"Tag": {name, colour, exportable}}` or bare.
pub(crate) async fn tag_add(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = read_json(&ctx, &uri, body).await?;
    let t = body.get("Tag").unwrap_or(&body);
    let name = t.get("name").and_then(Value::as_str).unwrap_or("");
    let colour = t.get("colour").and_then(Value::as_str);
    let exportable = loose_bool(t.get("exportable"))
        .ok()
        .flatten()
        .unwrap_or(true);
    let tag = ctx
        .state
        .add_tag(name, colour, exportable)
        .map_err(|f| err(&uri, f))?;
    ok(json!({"Tag": tag.to_wire(None)}))
}

fn tag_search_result(ctx: &Ctx, name: &str, strict: bool) -> Value {
    let results: Vec<Value> = ctx
        .state
        .tags()
        .iter()
        .filter(|t| {
            if strict {
                t.name == name
            } else {
                super::search::like(&t.name, &format!("%{}%", name.trim_matches('%')))
            }
        })
        .map(|t| json!({"Tag": t.to_wire(None), "Taxonomy": [], "TaxonomyPredicate": []}))
        .collect();
    Value::Array(results)
}

/// `GET /tags/search/{name}`: substring match.
pub(crate) async fn tag_search_get(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    ok(tag_search_result(&ctx, &name, false))
}

/// `POST /tags/search`: `{"name": …, "strict_tagname": 0|1}` (PyMISP's `search_tags`).
pub(crate) async fn tag_search_post(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let body = read_json(&ctx, &uri, body).await?;
    let name = body
        .get("name")
        .or_else(|| body.get("tag"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let strict = loose_bool(body.get("strict_tagname"))
        .ok()
        .flatten()
        .unwrap_or(false);
    ok(tag_search_result(&ctx, &name, strict))
}

/// `POST /tags/attachTagToObject` and `/tags/removeTagFromObject`: `{"uuid", "tag", "local"}`.
pub(crate) async fn tag_object(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(verb): Path<String>,
    body: Body,
) -> Answer {
    admit(&ctx, &headers, &uri)?;
    let attach = match verb.as_str() {
        "attachTagToObject" => true,
        "removeTagFromObject" => false,
        _ => return Err(err(&uri, Fail::new(404, "Not Found"))),
    };
    let body = read_json(&ctx, &uri, body).await?;
    let uuid = body.get("uuid").and_then(Value::as_str).unwrap_or("");
    let tag = match body.get("tag") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(err(&uri, Fail::new(400, "A tag is required."))),
    };
    let local = loose_bool(body.get("local"))
        .ok()
        .flatten()
        .unwrap_or(false);
    ctx.state
        .tag_object(uuid, &tag, local, attach, Utc::now())
        .map_err(|f| err(&uri, f))?;
    if attach {
        ok(json!({"saved": true, "success": "Tag(s) attached.", "check_publish": true}))
    } else {
        ok(json!({"saved": true, "success": "Tag removed.", "check_publish": true}))
    }
}

/// `GET /feed/{manifest.json | <uuid>.json | hashes.csv}`: the published events as a static
/// MISP feed (no key needed, as static feeds are usually served).
pub(crate) async fn feed(AxumState(ctx): Shared, uri: Uri, Path(file): Path<String>) -> Answer {
    if !ctx.args.serve_feed {
        return Err(err(&uri, Fail::new(404, "Not Found")));
    }
    match file.as_str() {
        "manifest.json" => ok(ctx.state.feed_manifest()),
        "hashes.csv" => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=UTF-8")],
            ctx.state.feed_hashes(),
        )
            .into_response()),
        other => {
            let uuid = other.strip_suffix(".json").unwrap_or("");
            ctx.state
                .feed_event(uuid)
                .map(|e| Json(e).into_response())
                .ok_or_else(|| err(&uri, Fail::new(404, "Not Found")))
        }
    }
}

/// `GET /_sim/state`.
pub(crate) async fn get_state(AxumState(ctx): Shared) -> Response {
    Json(ctx.state.snapshot()).into_response()
}

/// `DELETE /_sim/state`: removes every event.
pub(crate) async fn clear_state(AxumState(ctx): Shared) -> Response {
    ctx.state.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// Any path the API does not have.
pub(crate) async fn not_found(uri: Uri) -> Response {
    err(&uri, Fail::new(404, "Not Found")).into_response()
}

/// A known path with a method it does not take.
pub(crate) async fn method_not_allowed(uri: Uri) -> Response {
    err(&uri, Fail::new(405, "Method Not Allowed")).into_response()
}
