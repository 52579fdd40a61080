//! The REST API under `/api/v1`. Every route is listed in [`crate::openapi`]; the permission
//! each needs is checked first thing in its handler (`who.require(Role::…)`), and every change
//! is audited.
//!
//! Permissions: **viewer** reads everything but secrets and the audit log; **analyst** also
//! edits rules, allow-lists and sharings, adds indicators and runs pulls, shares and syncs;
//! **admin** also manages configurations, users and tokens and reads the audit log. Anyone
//! authenticated manages their own tokens (never above their role).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iocx_engine::admin::{self, ParamInput, RuleInput};
use iocx_engine::configs::ConfigChange;
use iocx_engine::pull::Trigger;
use iocx_engine::share::ShareMode;
use iocx_model::parse::{ParseOptions, parse};
use iocx_model::{Attributes, Kind, Record, Reputation, Severity, TagSet, Timestamp};
use iocx_store::{AuditQuery, IngestOptions, Role, SharingSpec, SourceKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::App;
use crate::auth::{self, Principal};
use crate::error::{ApiError, ApiResult};
use crate::sources;

type AppState = State<Arc<App>>;

/// A JSON body whose rejections are API errors.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Body<T>> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    let status = e.status();
    let text = e.body_text();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(status, "too_large", text);
    }
    if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return ApiError::new(
            status,
            "unsupported_media_type",
            "send Content-Type: application/json",
        );
    }
    ApiError::invalid("body", text)
}

/// A query string whose rejections are API errors.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Q<T>> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Q(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::invalid("query", e.body_text())
}

/// A path parameter whose rejections are API errors.
pub struct P<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<P<T>> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(P(v)),
            Err(e) => Err(ApiError::invalid("path", e.body_text())),
        }
    }
}

/// The API's routes.
pub fn router(_app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/indicators", get(search).post(add_indicators))
        .route("/indicators/actions", post(indicator_actions))
        .route("/indicators/{id}", get(indicator))
        .route("/connectors", get(connectors))
        .route("/connectors/{name}", get(connector))
        .route(
            "/configurations",
            get(configurations).post(create_configuration),
        )
        .route(
            "/configurations/{name}",
            get(configuration)
                .patch(update_configuration)
                .delete(delete_configuration),
        )
        .route("/configurations/{name}/test", post(test_configuration))
        .route("/configurations/{name}/run", post(run_configuration))
        .route("/rules", get(rules).post(create_rule))
        .route("/rules/preview", post(preview_rule))
        .route(
            "/rules/{name}",
            get(rule).put(update_rule).delete(delete_rule),
        )
        .route("/allowlists", get(allowlists).post(create_allowlist))
        .route(
            "/allowlists/{name}",
            get(allowlist).delete(delete_allowlist),
        )
        .route(
            "/allowlists/{name}/entries",
            post(add_entries).delete(remove_entries),
        )
        .route("/sharings", get(sharings).post(create_sharing))
        .route(
            "/sharings/{name}",
            get(sharing).put(update_sharing).delete(delete_sharing),
        )
        .route("/sharings/{name}/enable", post(enable_sharing))
        .route("/sharings/{name}/disable", post(disable_sharing))
        .route("/sharings/{name}/sync", post(sync_sharing))
        .route("/sharings/{name}/run", post(run_sharing))
        .route("/runs", get(runs))
        .route("/runs/{id}", get(run))
        .route("/runs/{id}/logs", get(run_logs))
        .route("/stats", get(stats))
        .route("/users", get(users).post(create_user))
        .route(
            "/users/{name}",
            axum::routing::patch(update_user).delete(delete_user),
        )
        .route("/tokens", get(tokens).post(create_token))
        .route("/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/audit", get(audit))
}

async fn openapi() -> Response {
    let mut r = Json(crate::openapi::document()).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

// ----- auth -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(app): AppState,
    parts: Parts2,
    Body(b): Body<LoginBody>,
) -> ApiResult<Response> {
    if b.username.len() > 200 || b.password.len() > 1024 {
        return Err(ApiError::unauthenticated("wrong user name or password"));
    }
    let user = auth::login(&app, parts.client, &b.username, &b.password).await?;
    let (set_cookie, csrf, expires) = start_session(&app, &user).await?;
    let mut r =
        Json(json!({"user": user, "csrf_token": csrf, "expires_at": expires})).into_response();
    r.headers_mut().insert(header::SET_COOKIE, set_cookie);
    Ok(r)
}

/// Starts a browser session for `user`: the `Set-Cookie` value, the CSRF token, the expiry.
///
/// # Errors
/// Store errors.
pub(crate) async fn start_session(
    app: &App,
    user: &iocx_store::User,
) -> ApiResult<(HeaderValue, String, Timestamp)> {
    let cookie = auth::random_secret(32);
    let csrf = auth::random_secret(24);
    let hash = app.engine.vault.keyed_hash("session", cookie.as_bytes());
    let hours = app.config.auth.session_hours;
    let expires = Timestamp::now().plus(hours * 3600);
    let (id, c) = (user.id, csrf.clone());
    app.store()
        .call(move |s| s.create_session(&hash, id, &c, expires))
        .await?;
    let who = Principal {
        user: user.name.clone(),
        role: user.role,
        actor: format!("user:{}", user.name),
        via: auth::Via::Session,
        csrf: None,
    };
    app.audit(&who, "session.login", &user.name, None, None)
        .await;
    let secure = app
        .config
        .auth
        .secure_cookies
        .unwrap_or(app.config.server.tls_cert.is_some());
    let set_cookie = format!(
        "{}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        auth::SESSION_COOKIE,
        hours * 3600,
        if secure { "; Secure" } else { "" }
    );
    let value = HeaderValue::from_str(&set_cookie).map_err(ApiError::internal)?;
    Ok((value, csrf, expires))
}

/// The request's client address.
pub(crate) struct Parts2 {
    pub(crate) client: Option<std::net::IpAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Parts2 {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Parts2> {
        Ok(Parts2 {
            client: auth::client_addr(parts),
        })
    }
}

async fn logout(
    State(app): AppState,
    who: Principal,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == auth::SESSION_COOKIE)
        .map(|(_, v)| v.to_string());
    if let Some(c) = cookie {
        let hash = app.engine.vault.keyed_hash("session", c.as_bytes());
        app.store().call(move |s| s.delete_session(&hash)).await?;
    }
    app.audit(&who, "session.logout", &who.user, None, None)
        .await;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("iocx_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(r)
}

async fn me(who: Principal) -> Json<Value> {
    Json(json!({"user": who.user, "role": who.role, "actor": who.actor}))
}

// ----- indicators -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    /// A value (defanged is fine).
    value: Option<String>,
    /// A rule expression.
    rule: Option<String>,
    /// The name of a saved rule.
    rule_name: Option<String>,
    kind: Option<String>,
    source: Option<String>,
    severity: Option<String>,
    active: Option<bool>,
    after: Option<i64>,
    limit: Option<i64>,
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

async fn search(
    State(app): AppState,
    who: Principal,
    Q(q): Q<SearchQuery>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    if let Some(value) = &q.value {
        let parsed = parse(value, None, &ParseOptions::default())
            .map_err(|e| ApiError::invalid("value", e.to_string()))?;
        let wanted: Vec<_> = parsed.iter().cloned().collect();
        let found = app.store().call(move |s| s.lookup(&wanted, false)).await?;
        let items: Vec<_> = found.into_iter().flatten().collect();
        return Ok(Json(json!({"items": items, "next": null})));
    }
    let mut terms = Vec::new();
    let rule = match (&q.rule, &q.rule_name) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "rule",
                "give rule or rule_name, not both",
            ));
        }
        (Some(e), None) => Some(sources::adhoc(e)),
        (None, Some(n)) => Some(sources::rule(&app, n).await?),
        (None, None) => None,
    };
    if let Some(r) = &rule {
        terms.push(format!("({})", r.expression));
    }
    if let Some(k) = &q.kind {
        let kind: Kind = k
            .parse()
            .map_err(|_| ApiError::invalid("kind", format!("one of {}", sources::kind_names())))?;
        terms.push(format!("kind = {kind}"));
    }
    if let Some(s) = &q.source {
        terms.push(format!("source = {}", quote(s)));
    }
    if let Some(s) = &q.severity {
        let sev = Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ApiError::invalid("severity", "unknown, low, medium, high or critical")
            })?;
        terms.push(format!("severity >= {}", sev.as_str()));
    }
    match q.active {
        Some(true) => terms.push("active".into()),
        Some(false) => terms.push("not active".into()),
        None => {}
    }
    let expression = if terms.is_empty() {
        "true".to_string()
    } else {
        terms.join(" and ")
    };
    let row = iocx_store::RuleRow {
        expression,
        exclusions: rule.map(|r| r.exclusions).unwrap_or_default(),
        ..sources::adhoc("")
    };
    let field = if q.rule.is_some() { "rule" } else { "query" };
    let compiled = sources::compile(&app, row, field).await?;
    let (sql, params) = (compiled.sql.clone(), compiled.params.clone());
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::invalid("after", "a position from `next`"));
    }
    let ids = app
        .store()
        .call(move |s| s.select_ids(&sql, &params, after, limit))
        .await?;
    let next = if ids.len() as i64 == limit {
        ids.last().copied()
    } else {
        None
    };
    let items = sources::details_kept(&app, &compiled, ids, false).await?;
    Ok(Json(
        json!({"items": items, "next": next.map(|n| n.to_string())}),
    ))
}

async fn indicator(State(app): AppState, who: Principal, P(id): P<i64>) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let detail = app
        .store()
        .call(move |s| s.details(&[id], true))
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found(format!("indicator {id}")))?;
    let deliveries = app
        .store()
        .call(move |s| s.deliveries_for_indicator(id))
        .await?;
    let (_, explained) =
        iocx_engine::explain::explain(&app.engine, &detail.indicator, None).await?;
    Ok(Json(
        json!({"indicator": detail, "deliveries": deliveries, "explain": explained}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddIndicators {
    /// The API source they are recorded under.
    source: String,
    indicators: Vec<NewIndicator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewIndicator {
    value: String,
    kind: Option<Kind>,
    #[serde(default)]
    severity: Severity,
    reputation: Option<u8>,
    #[serde(default)]
    tags: Vec<String>,
    comment: Option<String>,
    expires: Option<Timestamp>,
    #[serde(default)]
    safe: bool,
}

async fn add_indicators(
    State(app): AppState,
    who: Principal,
    Body(b): Body<AddIndicators>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Analyst)?;
    iocx_engine::configs::check_name(&b.source)
        .map_err(|e| ApiError::invalid("source", e.message))?;
    if b.indicators.is_empty() || b.indicators.len() > 100_000 {
        return Err(ApiError::invalid(
            "indicators",
            "send 1 to 100,000 indicators per request",
        ));
    }
    let mut records = Vec::with_capacity(b.indicators.len());
    let mut rejected = Vec::new();
    for (i, n) in b.indicators.iter().enumerate() {
        let parsed = match parse(&n.value, n.kind, &ParseOptions::default()) {
            Ok(p) => p,
            Err(e) => {
                rejected.push(json!({"index": i, "value": n.value, "reason": e.to_string()}));
                continue;
            }
        };
        let reputation = match n.reputation {
            None => None,
            Some(r) => {
                match Reputation::new(r) {
                    Some(r) => Some(r),
                    None => {
                        rejected.push(json!({"index": i, "value": n.value, "reason": "reputation is 1 to 10"}));
                        continue;
                    }
                }
            }
        };
        for ind in parsed.iter() {
            let mut r = Record::new(ind.clone());
            r.attributes = Attributes {
                severity: n.severity,
                reputation,
                tags: TagSet::from_tags(n.tags.iter().map(String::as_str)),
                comment: n.comment.clone(),
                expires: n.expires,
                safe: n.safe,
                link: None,
            };
            r.hits = 1;
            records.push(r);
        }
    }
    let source_name = b.source.clone();
    let existing = app.store().call(|s| s.sources()).await?;
    if let Some(s) = existing.iter().find(|s| s.name == source_name)
        && s.kind != SourceKind::Api
    {
        return Err(ApiError::invalid(
            "source",
            format!(
                "{source_name:?} is a {} source; API additions need their own name",
                s.kind.as_str()
            ),
        ));
    }
    let outcome = app
        .store()
        .call(move |s| {
            let source = s.ensure_source(&source_name, SourceKind::Api, None)?;
            s.ingest(
                &source,
                &IngestOptions {
                    now: Timestamp::now(),
                    echo: false,
                    run_id: None,
                },
                records,
                None,
            )
        })
        .await?;
    app.audit(
        &who,
        "indicators.add",
        &b.source,
        None,
        Some(json!({"accepted": b.indicators.len() - rejected.len(), "rejected": rejected.len()})),
    )
    .await;
    Ok(Json(json!({
        "new": outcome.new, "updated": outcome.updated, "unchanged": outcome.unchanged,
        "rejected": rejected,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    /// tag, untag, safe, unsafe or clear
    action: String,
    ids: Vec<i64>,
    #[serde(default)]
    tags: Vec<String>,
}

async fn indicator_actions(
    State(app): AppState,
    who: Principal,
    Body(b): Body<ActionBody>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Analyst)?;
    if b.ids.is_empty() || b.ids.len() > 100_000 {
        return Err(ApiError::invalid("ids", "1 to 100,000 indicator ids"));
    }
    let tags: Vec<String> = b
        .tags
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if tags.iter().any(|t| t.len() > 100) {
        return Err(ApiError::invalid(
            "tags",
            "tags have at most 100 characters",
        ));
    }
    let marks = match b.action.as_str() {
        "tag" | "untag" if tags.is_empty() => {
            return Err(ApiError::invalid("tags", "name the tags"));
        }
        "tag" => iocx_store::UserMarks {
            add_tags: tags,
            ..Default::default()
        },
        "untag" => iocx_store::UserMarks {
            remove_tags: tags,
            ..Default::default()
        },
        "safe" => iocx_store::UserMarks {
            safe: Some(Some(true)),
            ..Default::default()
        },
        "unsafe" => iocx_store::UserMarks {
            safe: Some(Some(false)),
            ..Default::default()
        },
        "clear" => iocx_store::UserMarks {
            safe: Some(None),
            ..Default::default()
        },
        _ => {
            return Err(ApiError::invalid(
                "action",
                "tag, untag, safe, unsafe or clear",
            ));
        }
    };
    let ids = b.ids.clone();
    let changed = app
        .store()
        .call(move |s| s.mark_indicators(&ids, &marks))
        .await?;
    app.audit(
        &who,
        &format!("indicators.{}", b.action),
        &format!("{} indicators", b.ids.len()),
        None,
        Some(json!({"ids": b.ids.iter().take(1000).collect::<Vec<_>>(), "tags": b.tags})),
    )
    .await;
    Ok(Json(json!({ "changed": changed })))
}

// ----- connectors and configurations -----

async fn connectors(who: Principal) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let specs: Vec<_> = iocx_connectors::registry()
        .iter()
        .map(|c| c.spec())
        .collect();
    Ok(Json(json!({ "items": specs })))
}

async fn connector(who: Principal, P(name): P<String>) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let c = iocx_connectors::connector(&name)
        .ok_or_else(|| ApiError::not_found(format!("connector {name:?}")))?;
    Ok(Json(json!(c.spec())))
}

/// A configuration as the API shows it: secrets only as set/unset.
fn config_view(app: &App, c: &iocx_store::Configuration) -> Value {
    let secrets: BTreeMap<String, bool> = iocx_engine::configs::values(&app.engine.vault, c)
        .map(|(_, v)| v.secrets_set())
        .unwrap_or_default();
    json!({
        "name": c.name,
        "connector": c.connector,
        "enabled": c.enabled,
        "values": c.params,
        "secrets": secrets,
        "platform": c.platform,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

async fn configurations(State(app): AppState, who: Principal) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let list = app.store().call(|s| s.configurations()).await?;
    let jobs = app.store().call(|s| s.jobs()).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|c| {
            let mut v = config_view(&app, c);
            v["next_run_at"] = json!(
                jobs.iter()
                    .find(|j| j.name == format!("pull:{}", c.name))
                    .map(|j| j.next_run_at)
            );
            v
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn configuration(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let n = name.clone();
    let c = app
        .store()
        .call(move |s| s.configuration(&n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("configuration {name:?}")))?;
    let subject = name.clone();
    let recent = app.store().call(move |s| s.runs(Some(&subject), 5)).await?;
    let mut v = config_view(&app, &c);
    v["recent_runs"] = json!(recent);
    Ok(Json(v))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ConfigBody {
    name: Option<String>,
    connector: Option<String>,
    enabled: Option<bool>,
    values: BTreeMap<String, Value>,
    secrets: BTreeMap<String, String>,
    unset: Vec<String>,
    interval_secs: Option<i64>,
    aging_days: Option<i64>,
    override_reputation: Option<Option<u8>>,
    initial_range_days: Option<i64>,
    polling: Option<bool>,
    verify_tls: Option<bool>,
    ca_bundle: Option<Option<String>>,
    proxy: Option<Option<String>>,
    timeout_secs: Option<i64>,
}

impl ConfigBody {
    fn change(self) -> ConfigChange {
        ConfigChange {
            set: self.values,
            unset: self.unset,
            secrets: self.secrets,
            enabled: self.enabled,
            interval_secs: self.interval_secs,
            aging_days: self.aging_days,
            override_reputation: self.override_reputation,
            initial_range_days: self.initial_range_days,
            polling: self.polling,
            verify_tls: self.verify_tls,
            ca_bundle: self.ca_bundle,
            proxy: self.proxy,
            timeout_secs: self.timeout_secs,
        }
    }
}

async fn create_configuration(
    State(app): AppState,
    who: Principal,
    Body(b): Body<ConfigBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(Role::Admin)?;
    let name = b
        .name
        .clone()
        .ok_or_else(|| ApiError::invalid("name", "required"))?;
    let connector = b
        .connector
        .clone()
        .ok_or_else(|| ApiError::invalid("connector", "required"))?;
    let n = name.clone();
    if app
        .store()
        .call(move |s| s.configuration(&n))
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(format!(
            "a configuration called {name:?} exists"
        )));
    }
    let engine = app.engine.clone();
    let change = b.change();
    let saved = tokio::task::spawn_blocking(move || {
        iocx_engine::configs::create(&engine.store, &engine.vault, &name, &connector, &change)
    })
    .await
    .map_err(ApiError::internal)??;
    let view = config_view(&app, &saved.configuration);
    app.audit(
        &who,
        "configuration.create",
        &saved.configuration.name,
        None,
        Some(view.clone()),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"configuration": view, "warnings": saved.warnings})),
    ))
}

async fn update_configuration(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
    Body(b): Body<ConfigBody>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Admin)?;
    if b.name.as_ref().is_some_and(|n| n != &name) || b.connector.is_some() {
        return Err(ApiError::invalid(
            "name",
            "a configuration's name and connector do not change; create another",
        ));
    }
    let n = name.clone();
    let before = app
        .store()
        .call(move |s| s.configuration(&n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("configuration {name:?}")))?;
    let engine = app.engine.clone();
    let change = b.change();
    let n = name.clone();
    let saved = tokio::task::spawn_blocking(move || {
        iocx_engine::configs::edit(&engine.store, &engine.vault, &n, &change)
    })
    .await
    .map_err(ApiError::internal)??;
    let view = config_view(&app, &saved.configuration);
    app.audit(
        &who,
        "configuration.update",
        &name,
        Some(config_view(&app, &before)),
        Some(view.clone()),
    )
    .await;
    Ok(Json(
        json!({"configuration": view, "warnings": saved.warnings}),
    ))
}

async fn delete_configuration(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<StatusCode> {
    who.require(Role::Admin)?;
    let n = name.clone();
    let before = app
        .store()
        .call(move |s| s.configuration(&n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("configuration {name:?}")))?;
    let n = name.clone();
    app.store()
        .call(move |s| s.delete_configuration(&n))
        .await?;
    app.audit(
        &who,
        "configuration.delete",
        &name,
        Some(config_view(&app, &before)),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn test_configuration(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Analyst)?;
    match admin::test_configuration(&app.engine, &name).await {
        Ok(message) => Ok(Json(json!({"ok": true, "message": message}))),
        Err(iocx_engine::EngineError::NotFound(w)) => Err(ApiError::not_found(w)),
        Err(e) => Ok(Json(json!({"ok": false, "message": e.to_string()}))),
    }
}

async fn run_configuration(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(Role::Analyst)?;
    let n = name.clone();
    app.store()
        .call(move |s| s.configuration(&n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("configuration {name:?}")))?;
    let (engine, cancel, n) = (app.engine.clone(), app.cancel.clone(), name.clone());
    app.tasks.spawn(async move {
        match iocx_engine::pull::run_pull(&engine, &n, Trigger::Manual, cancel, &|_| {}).await {
            Ok((_, c)) if c.new + c.updated + c.retired > 0 => {
                let _ = iocx_engine::scheduler::after_pull(&engine, &n).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(configuration = %n, error = %e, "Run now failed"),
        }
    });
    app.audit(&who, "configuration.run", &name, None, None)
        .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"started": true, "runs": format!("/api/v1/runs?subject={name}")})),
    ))
}

// ----- rules and allow-lists -----

async fn rules(State(app): AppState, who: Principal) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let items = app.store().call(|s| s.rules()).await?;
    Ok(Json(json!({ "items": items })))
}

async fn rule(State(app): AppState, who: Principal, P(name): P<String>) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    Ok(Json(json!(sources::rule(&app, &name).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleBody {
    name: Option<String>,
    expression: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    exclusions: Vec<String>,
    #[serde(default)]
    muted: bool,
}

async fn save_rule(
    app: &App,
    who: &Principal,
    name: &str,
    b: RuleBody,
    create: bool,
) -> ApiResult<Value> {
    let n = name.to_string();
    let before = app.store().call(move |s| s.rule(&n)).await?;
    if create && before.is_some() {
        return Err(ApiError::conflict(format!("a rule called {name:?} exists")));
    }
    if !create && before.is_none() {
        return Err(ApiError::not_found(format!("rule {name:?}")));
    }
    let input = RuleInput {
        expression: b.expression,
        description: b.description,
        exclusions: b.exclusions,
        muted: b.muted,
    };
    let store = app.store().clone();
    let n = name.to_string();
    let saved = tokio::task::spawn_blocking(move || admin::save_rule(&store, &n, &input))
        .await
        .map_err(ApiError::internal)??;
    let action = if create { "rule.create" } else { "rule.update" };
    app.audit(
        who,
        action,
        name,
        before.map(|b| json!(b)),
        Some(json!(saved)),
    )
    .await;
    Ok(json!(saved))
}

async fn create_rule(
    State(app): AppState,
    who: Principal,
    Body(b): Body<RuleBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(Role::Analyst)?;
    let name = b
        .name
        .clone()
        .ok_or_else(|| ApiError::invalid("name", "required"))?;
    Ok((
        StatusCode::CREATED,
        Json(save_rule(&app, &who, &name, b, true).await?),
    ))
}

async fn update_rule(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
    Body(b): Body<RuleBody>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Analyst)?;
    if b.name.as_ref().is_some_and(|n| n != &name) {
        return Err(ApiError::invalid(
            "name",
            "renaming is not supported; create another rule",
        ));
    }
    Ok(Json(save_rule(&app, &who, &name, b, false).await?))
}

async fn delete_rule(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<StatusCode> {
    who.require(Role::Analyst)?;
    let before = sources::rule(&app, &name).await?;
    let users: Vec<String> = app
        .store()
        .call(|s| s.sharings())
        .await?
        .into_iter()
        .filter(|s| s.rule == name)
        .map(|s| s.name)
        .collect();
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "rule {name:?} is used by the sharing(s) {}",
            users.join(", ")
        )));
    }
    let n = name.clone();
    app.store().call(move |s| s.delete_rule(&n)).await?;
    app.audit(&who, "rule.delete", &name, Some(json!(before)), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    expression: String,
    #[serde(default)]
    exclusions: Vec<String>,
    #[serde(default = "default_sample")]
    sample: usize,
}

fn default_sample() -> usize {
    10
}

async fn preview_rule(
    State(app): AppState,
    who: Principal,
    Body(b): Body<PreviewBody>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    if b.sample > 100 {
        return Err(ApiError::invalid("sample", "at most 100"));
    }
    let started = std::time::Instant::now();
    let row = iocx_store::RuleRow {
        exclusions: b.exclusions,
        ..sources::adhoc(&b.expression)
    };
    let compiled = sources::compile(&app, row, "expression").await?;
    let (sql, params) = (compiled.sql.clone(), compiled.params.clone());
    let count = app
        .store()
        .call(move |s| s.count_matching(&sql, &params))
        .await?;
    let mut sample = Vec::new();
    let mut after = 0;
    while sample.len() < b.sample {
        let (sql, params) = (compiled.sql.clone(), compiled.params.clone());
        let ids = app
            .store()
            .call(move |s| s.select_ids(&sql, &params, after, 200))
            .await?;
        let Some(&last) = ids.last() else { break };
        after = last;
        sample.extend(sources::details_kept(&app, &compiled, ids, false).await?);
    }
    sample.truncate(b.sample);
    Ok(Json(json!({
        "expression": compiled.rule.to_string(),
        "count": count,
        "sample": sample,
        "seconds": started.elapsed().as_secs_f64(),
    })))
}

async fn allowlists(State(app): AppState, who: Principal) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let items = app.store().call(|s| s.allowlists(false)).await?;
    Ok(Json(json!({ "items": items })))
}

async fn allowlist(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let n = name.clone();
    let l = app
        .store()
        .call(move |s| s.allowlist(&n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("allow-list {name:?}")))?;
    Ok(Json(json!(l)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowListBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    entries: Vec<String>,
}

fn allow_entries(entries: &[String]) -> ApiResult<Vec<iocx_store::AllowEntry>> {
    entries
        .iter()
        .map(|e| {
            let entry = iocx_model::rule::AllowList::normalise(e)
                .map_err(|err| ApiError::invalid("entries", format!("{e:?}: {err}")))?;
            Ok(iocx_store::AllowEntry {
                entry,
                comment: String::new(),
            })
        })
        .collect()
}

async fn create_allowlist(
    State(app): AppState,
    who: Principal,
    Body(b): Body<AllowListBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(Role::Analyst)?;
    iocx_engine::configs::check_name(&b.name).map_err(|e| ApiError::invalid("name", e.message))?;
    let entries = allow_entries(&b.entries)?;
    let (n, d) = (b.name.clone(), b.description.clone());
    let saved = app
        .store()
        .call(move |s| {
            if s.allowlist(&n)?.is_some() {
                return Err(iocx_store::StoreError::Conflict(format!(
                    "an allow-list called {n:?} exists"
                )));
            }
            s.save_allowlist(&n, &d, false)?;
            s.add_allow_entries(&n, &entries)?;
            s.allowlist(&n)
        })
        .await?;
    app.audit(&who, "allowlist.create", &b.name, None, Some(json!(saved)))
        .await;
    Ok((StatusCode::CREATED, Json(json!(saved))))
}

async fn delete_allowlist(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<StatusCode> {
    who.require(Role::Analyst)?;
    let n = name.clone();
    if !app.store().call(move |s| s.delete_allowlist(&n)).await? {
        return Err(ApiError::not_found(format!("allow-list {name:?}")));
    }
    app.audit(&who, "allowlist.delete", &name, None, None).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesBody {
    entries: Vec<String>,
}

async fn add_entries(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
    Body(b): Body<EntriesBody>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Analyst)?;
    let entries = allow_entries(&b.entries)?;
    let n = name.clone();
    let added = app
        .store()
        .call(move |s| s.add_allow_entries(&n, &entries))
        .await?;
    app.audit(
        &who,
        "allowlist.add_entries",
        &name,
        None,
        Some(json!({"entries": b.entries})),
    )
    .await;
    Ok(Json(json!({ "added": added })))
}

async fn remove_entries(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
    Body(b): Body<EntriesBody>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Analyst)?;
    let (n, e) = (name.clone(), b.entries.clone());
    let removed = app
        .store()
        .call(move |s| s.remove_allow_entries(&n, &e))
        .await?;
    app.audit(
        &who,
        "allowlist.remove_entries",
        &name,
        Some(json!({"entries": b.entries})),
        None,
    )
    .await;
    Ok(Json(json!({ "removed": removed })))
}

// ----- sharings -----

async fn sharings(State(app): AppState, who: Principal) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let items = app.store().call(|s| s.sharings()).await?;
    Ok(Json(json!({ "items": items })))
}

async fn sharing(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let n = name.clone();
    let s = app
        .store()
        .call(move |s| s.sharing(&n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("sharing {name:?}")))?;
    let id = s.id;
    let deliveries = app.store().call(move |st| st.delivery_counts(id)).await?;
    let subject = name.clone();
    let recent = app
        .store()
        .call(move |st| st.runs(Some(&subject), 5))
        .await?;
    Ok(Json(
        json!({"sharing": s, "deliveries": deliveries, "recent_runs": recent}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SharingBody {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    sources: Vec<String>,
    rule: String,
    destination: String,
    target: String,
    #[serde(default)]
    params: BTreeMap<String, Value>,
    #[serde(default = "default_interval")]
    interval_secs: i64,
    #[serde(default = "yes")]
    after_pull: bool,
}

fn default_interval() -> i64 {
    900
}

fn yes() -> bool {
    true
}

async fn save_sharing(
    app: &App,
    who: &Principal,
    existing: Option<&str>,
    b: SharingBody,
    name: String,
) -> ApiResult<Value> {
    let spec = SharingSpec {
        name: name.clone(),
        description: b.description,
        enabled: b.enabled,
        sources: b.sources,
        rule: b.rule,
        destination: b.destination,
        target: b.target,
        params: BTreeMap::new(),
        interval_secs: b.interval_secs,
        after_pull: b.after_pull,
    };
    let before = match existing {
        Some(e) => {
            let e = e.to_string();
            app.store().call(move |s| s.sharing(&e)).await?
        }
        None => None,
    };
    let saved =
        admin::save_sharing(&app.engine, existing, spec, ParamInput::Json(b.params)).await?;
    let action = if existing.is_some() {
        "sharing.update"
    } else {
        "sharing.create"
    };
    app.audit(
        who,
        action,
        &name,
        before.map(|b| json!(b)),
        Some(json!(saved)),
    )
    .await;
    Ok(json!(saved))
}

async fn create_sharing(
    State(app): AppState,
    who: Principal,
    Body(b): Body<SharingBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(Role::Analyst)?;
    let name = b
        .name
        .clone()
        .ok_or_else(|| ApiError::invalid("name", "required"))?;
    let n = name.clone();
    if app.store().call(move |s| s.sharing(&n)).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "a sharing called {name:?} exists"
        )));
    }
    Ok((
        StatusCode::CREATED,
        Json(save_sharing(&app, &who, None, b, name).await?),
    ))
}

async fn update_sharing(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
    Body(b): Body<SharingBody>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Analyst)?;
    let n = name.clone();
    if app.store().call(move |s| s.sharing(&n)).await?.is_none() {
        return Err(ApiError::not_found(format!("sharing {name:?}")));
    }
    let new_name = b.name.clone().unwrap_or_else(|| name.clone());
    Ok(Json(
        save_sharing(&app, &who, Some(&name), b, new_name).await?,
    ))
}

async fn delete_sharing(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<StatusCode> {
    who.require(Role::Analyst)?;
    let n = name.clone();
    let before = app
        .store()
        .call(move |s| s.sharing(&n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("sharing {name:?}")))?;
    let n = name.clone();
    app.store().call(move |s| s.delete_sharing(&n)).await?;
    app.audit(&who, "sharing.delete", &name, Some(json!(before)), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_sharing_enabled(
    app: &App,
    who: &Principal,
    name: &str,
    enabled: bool,
) -> ApiResult<Json<Value>> {
    who.require(Role::Analyst)?;
    let n = name.to_string();
    let s = app
        .store()
        .call(move |s| s.sharing(&n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("sharing {name:?}")))?;
    let spec = SharingSpec {
        enabled,
        ..admin::spec_of(&s)
    };
    let n = name.to_string();
    let saved = app
        .store()
        .call(move |st| {
            let saved = st.save_sharing(Some(&n), &spec)?;
            if enabled {
                st.set_job_due(&format!("share:{n}"), Timestamp::now())?;
            }
            Ok(saved)
        })
        .await?;
    let action = if enabled {
        "sharing.enable"
    } else {
        "sharing.disable"
    };
    app.audit(who, action, name, Some(json!(s)), Some(json!(saved)))
        .await;
    Ok(Json(json!(saved)))
}

async fn enable_sharing(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<Json<Value>> {
    set_sharing_enabled(&app, &who, &name, true).await
}

async fn disable_sharing(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<Json<Value>> {
    set_sharing_enabled(&app, &who, &name, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    /// Indicators last seen within this many days; absent = all time.
    days: Option<i64>,
    /// `false` (default): count only ("Fetch"); `true`: send ("Sync").
    #[serde(default)]
    send: bool,
}

async fn sync_sharing(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
    Body(b): Body<SyncBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(if b.send { Role::Analyst } else { Role::Viewer })?;
    if b.days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(ApiError::invalid("days", "between 1 and 3650"));
    }
    let since = b.days.map(|d| Timestamp::now().plus_days(-d));
    let mode = ShareMode::Sync { since };
    let (counts, send, retract) = iocx_engine::share::preview(&app.engine, &name, mode).await?;
    if !b.send {
        return Ok((
            StatusCode::OK,
            Json(json!({"to_send": send, "to_retract": retract, "counts": counts})),
        ));
    }
    let (engine, cancel, n) = (app.engine.clone(), app.cancel.clone(), name.clone());
    app.tasks.spawn(async move {
        if let Err(e) = iocx_engine::share::run_share(&engine, &n, mode, false, cancel).await {
            tracing::warn!(sharing = %n, error = %e, "Sync failed");
        }
    });
    app.audit(
        &who,
        "sharing.sync",
        &name,
        None,
        Some(json!({"days": b.days, "to_send": send})),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"started": true, "to_send": send, "to_retract": retract, "runs": format!("/api/v1/runs?subject={name}")}),
        ),
    ))
}

async fn run_sharing(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(Role::Analyst)?;
    let n = name.clone();
    app.store()
        .call(move |s| s.sharing(&n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("sharing {name:?}")))?;
    let (engine, cancel, n) = (app.engine.clone(), app.cancel.clone(), name.clone());
    app.tasks.spawn(async move {
        if let Err(e) =
            iocx_engine::share::run_share(&engine, &n, ShareMode::Regular, false, cancel).await
        {
            tracing::warn!(sharing = %n, error = %e, "Share now failed");
        }
    });
    app.audit(&who, "sharing.run", &name, None, None).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"started": true, "runs": format!("/api/v1/runs?subject={name}")})),
    ))
}

// ----- runs, stats -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    subject: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    limit: Option<i64>,
}

async fn runs(State(app): AppState, who: Principal, Q(q): Q<RunsQuery>) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    if q.kind
        .as_deref()
        .is_some_and(|k| !matches!(k, "pull" | "share" | "import"))
    {
        return Err(ApiError::invalid("kind", "pull, share or import"));
    }
    if q.state
        .as_deref()
        .is_some_and(|k| !matches!(k, "running" | "succeeded" | "failed" | "interrupted"))
    {
        return Err(ApiError::invalid(
            "state",
            "running, succeeded, failed or interrupted",
        ));
    }
    let subject = q.subject.clone();
    // Filters beyond the subject apply to a wider window read newest first.
    let filtered = q.state.is_some() || q.kind.is_some();
    let read = if filtered {
        (limit * 10).min(5000)
    } else {
        limit
    };
    let list = app
        .store()
        .call(move |s| s.runs(subject.as_deref(), read))
        .await?;
    let items: Vec<_> = list
        .into_iter()
        .filter(|r| q.state.as_deref().is_none_or(|s| r.state.as_str() == s))
        .filter(|r| {
            q.kind
                .as_deref()
                .is_none_or(|k| r.job.starts_with(&format!("{k}:")) || r.job == k)
        })
        .take(limit as usize)
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn run(State(app): AppState, who: Principal, P(id): P<i64>) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    let r = app
        .store()
        .call(move |s| s.run(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {id}")))?;
    Ok(Json(json!(r)))
}

async fn run_logs(State(app): AppState, who: Principal, P(id): P<i64>) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    if app.store().call(move |s| s.run(id)).await?.is_none() {
        return Err(ApiError::not_found(format!("run {id}")));
    }
    let lines = app.store().call(move |s| s.logs(id)).await?;
    Ok(Json(json!({ "items": lines })))
}

async fn stats(State(app): AppState, who: Principal) -> ApiResult<Json<Value>> {
    who.require(Role::Viewer)?;
    // The figures scan the store: computed at most every 10 seconds.
    if let Ok(cache) = app.stats_cache.lock()
        && let Some((at, v)) = cache.as_ref()
        && at.elapsed() < std::time::Duration::from_secs(10)
    {
        return Ok(Json(v.clone()));
    }
    let v = dashboard(&app).await?;
    if let Ok(mut cache) = app.stats_cache.lock() {
        *cache = Some((std::time::Instant::now(), v.clone()));
    }
    Ok(Json(v))
}

/// Adds `n` to `map[bucket][key]`.
fn bump(map: &mut BTreeMap<i64, BTreeMap<String, u64>>, bucket: i64, key: &str, n: u64) {
    *map.entry(bucket)
        .or_default()
        .entry(key.to_string())
        .or_default() += n;
}

fn series(map: BTreeMap<i64, BTreeMap<String, u64>>) -> Vec<Value> {
    map.into_iter()
        .map(|(t, v)| json!({"start": Timestamp(t), "counts": v}))
        .collect()
}

/// The dashboard's figures (also rendered by the console).
pub(crate) async fn dashboard(app: &App) -> ApiResult<Value> {
    let now = Timestamp::now();
    let store = app.store().call(|s| s.stats()).await?;
    // Ingested per hour (48 hours) and per day (30 days), by source.
    let since = Timestamp((now.0 - 30 * 86_400).div_euclid(86_400) * 86_400);
    let hours = app.store().call(move |s| s.ingest_hours(since)).await?;
    let (mut by_hour, mut by_day) = (BTreeMap::new(), BTreeMap::new());
    for h in &hours {
        let n = h.new + h.updated + h.unchanged;
        if h.hour.0 >= now.0 - 48 * 3600 {
            bump(&mut by_hour, h.hour.0, &h.source, n);
        }
        bump(
            &mut by_day,
            h.hour.0.div_euclid(86_400) * 86_400,
            &h.source,
            n,
        );
    }
    // Shared per hour and day, by sharing, from the share runs.
    let runs = app.store().call(|s| s.runs(None, 5000)).await?;
    let (mut shared_hour, mut shared_day) = (BTreeMap::new(), BTreeMap::new());
    for r in runs.iter().filter(|r| r.job == "share") {
        let Some(end) = r.ended_at else { continue };
        if end.0 < since.0 {
            continue;
        }
        let n = r.counts["shared"].as_u64().unwrap_or(0);
        if end.0 >= now.0 - 48 * 3600 {
            bump(
                &mut shared_hour,
                end.0.div_euclid(3600) * 3600,
                &r.subject,
                n,
            );
        }
        bump(
            &mut shared_day,
            end.0.div_euclid(86_400) * 86_400,
            &r.subject,
            n,
        );
    }
    // The most sighted indicators with the systems that reported them.
    let top = app.store().call(|s| s.top_sighted(10)).await?;
    let top = app.store().call(move |s| s.details(&top, true)).await?;
    let top: Vec<Value> = top
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "kind": d.indicator.kind, "value": d.indicator.value, "hits": d.aggregate.hits,
                "severity": d.aggregate.severity,
                "sources": d.observations.iter().filter(|o| !o.observation.echo)
                    .map(|o| json!({"source": o.source, "hits": o.observation.hits})).collect::<Vec<_>>(),
            })
        })
        .collect();
    // Configuration health and sharing status.
    let configurations = app.store().call(|s| s.configurations()).await?;
    let jobs = app.store().call(|s| s.jobs()).await?;
    let mut health = Vec::new();
    for c in configurations {
        let last = runs
            .iter()
            .find(|r| r.subject == c.name && r.job == "pull")
            .cloned();
        let last_error = runs
            .iter()
            .find(|r| r.subject == c.name && r.error.is_some())
            .and_then(|r| r.error.clone());
        health.push(json!({
            "configuration": c.name, "connector": c.connector, "enabled": c.enabled,
            "last_run": last, "last_error": last_error,
            "next_run_at": jobs.iter().find(|j| j.name == format!("pull:{}", c.name)).map(|j| j.next_run_at),
        }));
    }
    let sharings = app.store().call(|s| s.sharings()).await?;
    let mut status = Vec::new();
    for sh in sharings {
        let id = sh.id;
        let counts = app.store().call(move |s| s.delivery_counts(id)).await?;
        let last = runs
            .iter()
            .find(|r| r.subject == sh.name && r.job == "share")
            .cloned();
        status.push(json!({
            "sharing": sh.name, "enabled": sh.enabled, "destination": sh.destination, "target": sh.target,
            "deliveries": counts.iter().map(|(state, reason, n)| json!({"state": state, "reason": reason, "count": n})).collect::<Vec<_>>(),
            "last_run": last,
        }));
    }
    Ok(json!({
        "store": store,
        "ingested": {"hourly": series(by_hour), "daily": series(by_day)},
        "shared": {"hourly": series(shared_hour), "daily": series(shared_day)},
        "top_sighted": top,
        "configurations": health,
        "sharings": status,
    }))
}

// ----- users, tokens, audit -----

async fn users(State(app): AppState, who: Principal) -> ApiResult<Json<Value>> {
    who.require(Role::Admin)?;
    let items = app.store().call(|s| s.users()).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    name: String,
    password: String,
    role: Role,
}

async fn create_user(
    State(app): AppState,
    who: Principal,
    Body(b): Body<UserBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    who.require(Role::Admin)?;
    iocx_engine::configs::check_name(&b.name).map_err(|e| ApiError::invalid("name", e.message))?;
    let hash = auth::hash_password(b.password).await?;
    let (n, role) = (b.name.clone(), b.role);
    let user = app
        .store()
        .call(move |s| s.create_user(&n, &hash, role))
        .await?;
    app.audit(&who, "user.create", &b.name, None, Some(json!(user)))
        .await;
    Ok((StatusCode::CREATED, Json(json!(user))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    password: Option<String>,
    role: Option<Role>,
    disabled: Option<bool>,
}

async fn update_user(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
    Body(b): Body<UserPatch>,
) -> ApiResult<Json<Value>> {
    // Anyone may change their own password; everything else is an admin's.
    let own_password_only = name == who.user && b.role.is_none() && b.disabled.is_none();
    if !own_password_only {
        who.require(Role::Admin)?;
    }
    if name == who.user
        && (b.disabled == Some(true)
            || b.role.is_some_and(|r| r < Role::Admin) && who.role == Role::Admin)
    {
        return Err(ApiError::conflict(
            "you cannot disable or demote yourself; another admin can",
        ));
    }
    let hash = match b.password {
        Some(p) => Some(auth::hash_password(p).await?),
        None => None,
    };
    let n = name.clone();
    let before = app.store().call(move |s| s.user(&n)).await?.map(|(u, _)| u);
    let n = name.clone();
    let (role, disabled) = (b.role, b.disabled);
    let user = app
        .store()
        .call(move |s| s.update_user(&n, role, hash.as_deref(), disabled))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {name:?}")))?;
    app.audit(
        &who,
        "user.update",
        &name,
        before.map(|b| json!(b)),
        Some(json!(user)),
    )
    .await;
    Ok(Json(json!(user)))
}

async fn delete_user(
    State(app): AppState,
    who: Principal,
    P(name): P<String>,
) -> ApiResult<StatusCode> {
    who.require(Role::Admin)?;
    if name == who.user {
        return Err(ApiError::conflict("you cannot delete yourself"));
    }
    let n = name.clone();
    if !app.store().call(move |s| s.delete_user(&n)).await? {
        return Err(ApiError::not_found(format!("user {name:?}")));
    }
    app.audit(&who, "user.delete", &name, None, None).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensQuery {
    user: Option<String>,
}

async fn tokens(
    State(app): AppState,
    who: Principal,
    Q(q): Q<TokensQuery>,
) -> ApiResult<Json<Value>> {
    // Admins list anyone's tokens; others only their own.
    let user = match (who.role, q.user) {
        (Role::Admin, u) => u,
        (_, Some(u)) if u != who.user => {
            return Err(ApiError::forbidden("only admins list other users' tokens"));
        }
        _ => Some(who.user.clone()),
    };
    let items = app.store().call(move |s| s.tokens(user.as_deref())).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    name: String,
    role: Option<Role>,
    /// Days until it expires; absent = never.
    expires_in_days: Option<i64>,
}

#[derive(Serialize)]
struct CreatedToken {
    token: String,
    #[serde(flatten)]
    record: iocx_store::ApiToken,
}

async fn create_token(
    State(app): AppState,
    who: Principal,
    Body(b): Body<TokenBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let role = b.role.unwrap_or(who.role);
    if role > who.role {
        return Err(ApiError::forbidden(format!(
            "a token cannot have more than your role ({})",
            who.role
        )));
    }
    if b.expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(ApiError::invalid("expires_in_days", "between 1 and 3650"));
    }
    let expires = b.expires_in_days.map(|d| Timestamp::now().plus_days(d));
    let (token, record) = app.create_token(&who.user, &b.name, role, expires).await?;
    app.audit(
        &who,
        "token.create",
        &record.name,
        None,
        Some(json!(record)),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!(CreatedToken { token, record })),
    ))
}

async fn revoke_token(
    State(app): AppState,
    who: Principal,
    P(id): P<i64>,
) -> ApiResult<StatusCode> {
    let t = app
        .store()
        .call(move |s| s.token(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("token {id}")))?;
    if t.user != who.user {
        who.require(Role::Admin)?;
    }
    if !app
        .store()
        .call(move |s| s.revoke_token(id, Timestamp::now()))
        .await?
    {
        return Err(ApiError::conflict(format!(
            "token {id} was revoked already"
        )));
    }
    app.audit(&who, "token.revoke", &t.name, Some(json!(t)), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQ {
    before: Option<i64>,
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    limit: Option<i64>,
}

async fn audit(State(app): AppState, who: Principal, Q(q): Q<AuditQ>) -> ApiResult<Json<Value>> {
    who.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    if q.before.is_some_and(|b| b < 0) {
        return Err(ApiError::invalid("before", "an id from `next`"));
    }
    let query = AuditQuery {
        before_id: q.before,
        actor: q.actor,
        action: q.action,
        target: q.target,
        limit,
    };
    let items = app.store().call(move |s| s.audit_log(&query)).await?;
    let next = if items.len() as i64 == limit {
        items.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(json!({ "items": items, "next": next })))
}
