//! The web console under `/ui/`: server-rendered pages (askama templates, checked at compile
//! time, embedded in the binary) over the same functions the API uses. Pages need a browser
//! session; the few changes they make go through the JSON API with the session's CSRF token
//! (`static/iocx.js`).

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use iocx_model::Timestamp;
use iocx_store::Role;
use serde::Deserialize;
use serde_json::Value;

use crate::App;
use crate::api::{P, Parts2, Q};
use crate::auth::{self, Principal};
use crate::error::ApiError;

/// The console's routes.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/login", get(login_page).post(login_submit))
        .route("/ui/", get(dashboard))
        .route("/ui/indicators", get(indicators))
        .route("/ui/indicators/{id}", get(indicator))
        .route("/ui/configurations", get(configurations))
        .route("/ui/configurations/new", get(new_configuration))
        .route("/ui/configurations/{name}/edit", get(edit_configuration))
        .route("/ui/rules", get(rules))
        .route("/ui/sharings", get(sharings))
        .route("/ui/settings", get(settings))
        .route("/ui/runs", get(runs))
        .route("/ui/runs/{id}", get(run))
        .route("/ui/static/{file}", get(asset))
}

async fn asset(P(file): P<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "iocx.css" => (
            include_str!("../static/iocx.css"),
            "text/css; charset=utf-8",
        ),
        "iocx.js" => (
            include_str!("../static/iocx.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    r
}

/// A page, or a redirect to the login page when there is no session.
fn page(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = Html(html).into_response();
            // Pages are never framed and never cached.
            r.headers_mut()
                .insert("x-frame-options", HeaderValue::from_static("DENY"));
            r.headers_mut().insert(
                "content-security-policy",
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                ),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// The caller when it has a browser session (pages are for people; tokens use the API).
fn session(who: Result<Principal, ApiError>) -> Option<Principal> {
    who.ok().filter(|p| p.via == auth::Via::Session)
}

fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

/// What every page's frame shows.
struct Frame {
    user: String,
    role: String,
    csrf: String,
}

fn frame(who: &Principal) -> Frame {
    Frame {
        user: who.user.clone(),
        role: who.role.to_string(),
        csrf: who.csrf.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
    username: String,
}

async fn login_page() -> Response {
    page(LoginPage {
        error: None,
        username: String::new(),
    })
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login_submit(
    State(app): State<Arc<App>>,
    parts: Parts2,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return page(LoginPage {
            error: Some("enter a user name and a password".into()),
            username: String::new(),
        });
    };
    let user = match auth::login(&app, parts.client, &f.username, &f.password).await {
        Ok(u) => u,
        Err(e) => {
            let mut r = page(LoginPage {
                error: Some(e.message),
                username: f.username,
            });
            *r.status_mut() = e.status;
            return r;
        }
    };
    match crate::api::start_session(&app, &user).await {
        Ok((cookie, _, _)) => {
            let mut r = Redirect::to("/ui/").into_response();
            r.headers_mut().insert(header::SET_COOKIE, cookie);
            r
        }
        Err(e) => e.into_response(),
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A bar chart of daily totals as inline SVG, with a text alternative.
fn bars(series: &Value, label: &str) -> String {
    let days: Vec<(String, u64)> = series
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    let total = d["counts"]
                        .as_object()
                        .map_or(0, |m| m.values().map(n).sum());
                    (text(&d["start"]).chars().take(10).collect(), total)
                })
                .collect()
        })
        .unwrap_or_default();
    if days.is_empty() {
        return "<p>Nothing yet.</p>".into();
    }
    let max = days.iter().map(|d| d.1).max().unwrap_or(1).max(1) as f64;
    let width = 1000.0 / days.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 1000 180\" role=\"img\" aria-label=\"{}\">",
        askama::filters::escape(label, askama::filters::Html)
            .map_or_else(|_| String::new(), |e| e.to_string())
    );
    for (i, (day, total)) in days.iter().enumerate() {
        let h = (*total as f64 / max) * 150.0;
        svg.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{day}: {total}</title></rect>",
            i as f64 * width + 2.0,
            160.0 - h,
            (width - 4.0).max(1.0),
            h
        ));
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"175\">{}</text>",
            i as f64 * width + 2.0,
            &day[5.min(day.len())..]
        ));
    }
    svg.push_str("</svg>");
    svg
}

struct TopRow {
    id: i64,
    value: String,
    kind: String,
    hits: u64,
    sources: String,
}

struct ConfigRow {
    name: String,
    connector: String,
    last_run: String,
    state: String,
    next_run: String,
    error: String,
}

struct SharingRow {
    name: String,
    destination: String,
    deliveries: String,
    last_run: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    title: &'static str,
    page: &'static str,
    user: String,
    role: String,
    csrf: String,
    total: u64,
    active: u64,
    by_kind: Vec<(String, u64)>,
    by_source: Vec<(String, u64)>,
    by_severity: Vec<(String, u64)>,
    ingested_svg: String,
    shared_svg: String,
    top: Vec<TopRow>,
    configurations: Vec<ConfigRow>,
    sharings: Vec<SharingRow>,
}

fn pairs(v: &Value) -> Vec<(String, u64)> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), n(v))).collect())
        .unwrap_or_default()
}

async fn dashboard(State(app): State<Arc<App>>, who: Result<Principal, ApiError>) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    let d = match crate::api::dashboard(&app).await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let f = frame(&who);
    page(DashboardPage {
        title: "Dashboard",
        page: "dashboard",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        total: n(&d["store"]["indicators"]),
        active: n(&d["store"]["active"]),
        by_kind: pairs(&d["store"]["by_kind"]),
        by_source: pairs(&d["store"]["by_source"]),
        by_severity: pairs(&d["store"]["by_severity"]),
        ingested_svg: bars(&d["ingested"]["daily"], "Indicators ingested per day"),
        shared_svg: bars(&d["shared"]["daily"], "Indicators shared per day"),
        top: d["top_sighted"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| TopRow {
                        id: t["id"].as_i64().unwrap_or(0),
                        value: text(&t["value"]),
                        kind: text(&t["kind"]),
                        hits: n(&t["hits"]),
                        sources: t["sources"]
                            .as_array()
                            .map(|s| {
                                s.iter()
                                    .map(|s| format!("{} ({})", text(&s["source"]), n(&s["hits"])))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        configurations: d["configurations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| ConfigRow {
                        name: text(&c["configuration"]),
                        connector: text(&c["connector"]),
                        last_run: text(&c["last_run"]["started_at"]),
                        state: text(&c["last_run"]["state"]),
                        next_run: text(&c["next_run_at"]),
                        error: text(&c["last_error"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        sharings: d["sharings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| SharingRow {
                        name: text(&s["sharing"]),
                        destination: format!(
                            "{} → {}",
                            text(&s["destination"]),
                            text(&s["target"])
                        ),
                        deliveries: s["deliveries"]
                            .as_array()
                            .map(|d| {
                                d.iter()
                                    .map(|x| {
                                        let reason = text(&x["reason"]);
                                        if reason.is_empty() {
                                            format!("{} {}", n(&x["count"]), text(&x["state"]))
                                        } else {
                                            format!(
                                                "{} {} ({reason})",
                                                n(&x["count"]),
                                                text(&x["state"])
                                            )
                                        }
                                    })
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default(),
                        last_run: format!(
                            "{} {}",
                            text(&s["last_run"]["state"]),
                            text(&s["last_run"]["ended_at"])
                        ),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

struct IndicatorRow {
    id: i64,
    value: String,
    kind: String,
    severity: String,
    reputation: u8,
    hits: u64,
    last_seen: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "indicators.html")]
struct IndicatorsPage {
    title: &'static str,
    page: &'static str,
    user: String,
    role: String,
    csrf: String,
    q: String,
    rule: String,
    error: Option<String>,
    items: Vec<IndicatorRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct IndicatorsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    rule: String,
    after: Option<i64>,
}

fn ts(t: Timestamp) -> String {
    t.to_rfc3339()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

async fn indicators(
    State(app): State<Arc<App>>,
    who: Result<Principal, ApiError>,
    q: Result<Q<IndicatorsQuery>, ApiError>,
) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    let Q(q) = match q {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let f = frame(&who);
    let mut error = None;
    let mut items = Vec::new();
    let mut next = None;
    let result: Result<(), ApiError> = async {
        if !q.q.trim().is_empty() {
            let parsed =
                iocx_model::parse::parse(&q.q, None, &iocx_model::parse::ParseOptions::default())
                    .map_err(|e| ApiError::invalid("q", e.to_string()))?;
            let wanted: Vec<_> = parsed.iter().cloned().collect();
            items = app
                .store()
                .call(move |s| s.lookup(&wanted, false))
                .await?
                .into_iter()
                .flatten()
                .collect();
            return Ok(());
        }
        let expression = if q.rule.trim().is_empty() {
            "true".to_string()
        } else {
            q.rule.clone()
        };
        let compiled =
            crate::sources::compile(&app, crate::sources::adhoc(&expression), "rule").await?;
        let (sql, params) = (compiled.sql.clone(), compiled.params.clone());
        let after = q.after.unwrap_or(0).max(0);
        let ids = app
            .store()
            .call(move |s| s.select_ids(&sql, &params, after, 100))
            .await?;
        if ids.len() == 100
            && let Some(last) = ids.last()
        {
            next = Some(format!(
                "/ui/indicators?rule={}&after={last}",
                url_encode(&q.rule)
            ));
        }
        items = crate::sources::details_kept(&app, &compiled, ids, false).await?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        error = Some(e.message);
    }
    page(IndicatorsPage {
        title: "Threat IoCs",
        page: "indicators",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        q: q.q,
        rule: q.rule,
        error,
        items: items
            .into_iter()
            .map(|d| IndicatorRow {
                id: d.id,
                value: d.indicator.value,
                kind: d.indicator.kind.to_string(),
                severity: d.aggregate.severity.as_str().to_string(),
                reputation: d.aggregate.reputation.get(),
                hits: d.aggregate.hits,
                last_seen: ts(d.aggregate.last_seen),
                active: d.active,
            })
            .collect(),
        next,
    })
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct ObservationRow {
    source: String,
    severity: String,
    hits: u64,
    first_seen: String,
    last_seen: String,
    echo: bool,
}

struct ExplainRow {
    sharing: String,
    delivered: bool,
    verdict: String,
}

#[derive(Template)]
#[template(path = "indicator.html")]
struct IndicatorPage {
    title: String,
    page: &'static str,
    user: String,
    role: String,
    csrf: String,
    id: i64,
    value: String,
    kind: String,
    severity: String,
    reputation: u8,
    hits: u64,
    first_seen: String,
    last_seen: String,
    active: bool,
    safe: bool,
    can_edit: bool,
    observations: Vec<ObservationRow>,
    explain: Vec<ExplainRow>,
}

async fn indicator(
    State(app): State<Arc<App>>,
    who: Result<Principal, ApiError>,
    id: Result<P<i64>, ApiError>,
) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    let P(id) = match id {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let detail = match app.store().call(move |s| s.details(&[id], true)).await {
        Ok(mut d) => match d.pop() {
            Some(d) => d,
            None => return ApiError::not_found(format!("indicator {id}")).into_response(),
        },
        Err(e) => return ApiError::from(e).into_response(),
    };
    let explained = iocx_engine::explain::explain(&app.engine, &detail.indicator, None)
        .await
        .map(|(_, e)| e)
        .unwrap_or_default();
    let f = frame(&who);
    page(IndicatorPage {
        title: detail.indicator.value.clone(),
        page: "indicators",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        id: detail.id,
        value: detail.indicator.value.clone(),
        kind: detail.indicator.kind.to_string(),
        severity: detail.aggregate.severity.as_str().into(),
        reputation: detail.aggregate.reputation.get(),
        hits: detail.aggregate.hits,
        first_seen: ts(detail.aggregate.first_seen),
        last_seen: ts(detail.aggregate.last_seen),
        active: detail.active,
        safe: detail.aggregate.safe,
        can_edit: who.role >= Role::Analyst,
        observations: detail
            .observations
            .iter()
            .map(|o| ObservationRow {
                source: o.source.clone(),
                severity: o.observation.attributes.severity.as_str().into(),
                hits: o.observation.hits,
                first_seen: ts(o.observation.first_seen),
                last_seen: ts(o.observation.last_seen),
                echo: o.observation.echo,
            })
            .collect(),
        explain: explained
            .into_iter()
            .map(|e| ExplainRow {
                sharing: e.sharing,
                delivered: e.delivered,
                verdict: e.verdict,
            })
            .collect(),
    })
}

struct RunRow {
    id: i64,
    kind: String,
    subject: String,
    state: String,
    started: String,
    counts: String,
    error: String,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    title: &'static str,
    page: &'static str,
    user: String,
    role: String,
    csrf: String,
    runs: Vec<RunRow>,
}

fn counts(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_u64().is_some_and(|n| n > 0))
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

async fn runs(State(app): State<Arc<App>>, who: Result<Principal, ApiError>) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    let list = match app.store().call(|s| s.runs(None, 200)).await {
        Ok(l) => l,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let f = frame(&who);
    page(RunsPage {
        title: "Runs and logs",
        page: "runs",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        runs: list
            .into_iter()
            .map(|r| RunRow {
                id: r.id,
                kind: r.job.clone(),
                subject: r.subject.clone(),
                state: r.state.as_str().into(),
                started: ts(r.started_at),
                counts: counts(&r.counts),
                error: r.error.unwrap_or_default(),
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    title: String,
    page: &'static str,
    user: String,
    role: String,
    csrf: String,
    id: i64,
    subject: String,
    state: String,
    started: String,
    lines: Vec<(String, String, String)>,
}

async fn run(
    State(app): State<Arc<App>>,
    who: Result<Principal, ApiError>,
    id: Result<P<i64>, ApiError>,
) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    let P(id) = match id {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let r = match app.store().call(move |s| s.run(id)).await {
        Ok(Some(r)) => r,
        Ok(None) => return ApiError::not_found(format!("run {id}")).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let lines = app
        .store()
        .call(move |s| s.logs(id))
        .await
        .unwrap_or_default();
    let f = frame(&who);
    page(RunPage {
        title: format!("Run {id}"),
        page: "runs",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        id,
        subject: r.subject,
        state: r.state.as_str().into(),
        started: ts(r.started_at),
        lines: lines
            .into_iter()
            .map(|l| (ts(l.at), l.level, l.message))
            .collect(),
    })
}

struct ConfigurationItem {
    name: String,
    connector: String,
    enabled: bool,
    interval: String,
    last_run: String,
    state: String,
    secrets: String,
}

#[derive(Template)]
#[template(path = "configurations.html")]
struct ConfigurationsPage {
    title: &'static str,
    page: &'static str,
    user: String,
    role: String,
    csrf: String,
    can_edit: bool,
    is_admin: bool,
    items: Vec<ConfigurationItem>,
}

async fn configurations(State(app): State<Arc<App>>, who: Result<Principal, ApiError>) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    let result = async {
        let list = app.store().call(|s| s.configurations()).await?;
        let runs = app.store().call(|s| s.runs(None, 1000)).await?;
        Ok::<_, ApiError>(
            list.into_iter()
                .map(|c| {
                    let last = runs.iter().find(|r| r.subject == c.name);
                    let secrets = iocx_engine::configs::values(&app.engine.vault, &c)
                        .map(|(_, v)| {
                            v.secrets_set()
                                .into_iter()
                                .map(|(k, set)| {
                                    format!("{k}: {}", if set { "set" } else { "not set" })
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_else(|e| e.to_string());
                    ConfigurationItem {
                        interval: format!("{} min", c.platform.interval_secs / 60),
                        last_run: last.map(|r| ts(r.started_at)).unwrap_or_default(),
                        state: last
                            .map(|r| r.state.as_str().to_string())
                            .unwrap_or_default(),
                        name: c.name,
                        connector: c.connector,
                        enabled: c.enabled,
                        secrets,
                    }
                })
                .collect::<Vec<_>>(),
        )
    }
    .await;
    let items = match result {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let f = frame(&who);
    page(ConfigurationsPage {
        title: "Configurations",
        page: "configurations",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        can_edit: who.role >= Role::Analyst,
        is_admin: who.role == Role::Admin,
        items,
    })
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    title: &'static str,
    page: &'static str,
    user: String,
    role: String,
    csrf: String,
    can_edit: bool,
    items: Vec<(String, String, String, bool)>,
}

async fn rules(State(app): State<Arc<App>>, who: Result<Principal, ApiError>) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    let list = match app.store().call(|s| s.rules()).await {
        Ok(l) => l,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let f = frame(&who);
    page(RulesPage {
        title: "Business rules",
        page: "rules",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        can_edit: who.role >= Role::Analyst,
        items: list
            .into_iter()
            .map(|r| (r.name, r.expression, r.exclusions.join(", "), r.muted))
            .collect(),
    })
}

struct SharingItem {
    name: String,
    sources: String,
    rule: String,
    destination: String,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "sharings.html")]
struct SharingsPage {
    title: &'static str,
    page: &'static str,
    user: String,
    role: String,
    csrf: String,
    can_edit: bool,
    items: Vec<SharingItem>,
    sources: Vec<String>,
    rule_names: Vec<String>,
    targets: Vec<(String, String, String)>,
}

async fn sharings(State(app): State<Arc<App>>, who: Result<Principal, ApiError>) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    let loaded = app
        .store()
        .call(|s| Ok((s.sharings()?, s.sources()?, s.rules()?, s.configurations()?)))
        .await;
    let (list, sources, rules, configurations) = match loaded {
        Ok(x) => x,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Destinations: every configuration whose connector declares push targets.
    let targets = configurations
        .iter()
        .filter_map(|c| iocx_connectors::connector(&c.connector).map(|k| (c, k.spec())))
        .filter(|(_, spec)| spec.capabilities.push)
        .flat_map(|(c, spec)| {
            spec.targets
                .iter()
                .map(|t| (c.name.clone(), t.name.clone(), t.label.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let f = frame(&who);
    page(SharingsPage {
        sources: sources.into_iter().map(|s| s.name).collect(),
        rule_names: rules.into_iter().map(|r| r.name).collect(),
        targets,
        title: "Sharing",
        page: "sharings",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        can_edit: who.role >= Role::Analyst,
        items: list
            .into_iter()
            .map(|s| SharingItem {
                sources: if s.sources.is_empty() {
                    "every source".into()
                } else {
                    s.sources.join(", ")
                },
                destination: format!("{} → {}", s.destination, s.target),
                name: s.name,
                rule: s.rule,
                enabled: s.enabled,
            })
            .collect(),
    })
}

struct TokenItem {
    id: i64,
    name: String,
    user: String,
    role: String,
    prefix: String,
    expires: String,
    last_used: String,
    state: String,
    revocable: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    title: &'static str,
    page: &'static str,
    user: String,
    role: String,
    csrf: String,
    is_admin: bool,
    tokens: Vec<TokenItem>,
    users: Vec<(String, String, bool, String)>,
}

async fn settings(State(app): State<Arc<App>>, who: Result<Principal, ApiError>) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    let is_admin = who.role == Role::Admin;
    let owner = (!is_admin).then(|| who.user.clone());
    let result = async {
        let tokens = app
            .store()
            .call(move |s| s.tokens(owner.as_deref()))
            .await?;
        let users = if is_admin {
            app.store().call(|s| s.users()).await?
        } else {
            Vec::new()
        };
        Ok::<_, ApiError>((tokens, users))
    }
    .await;
    let (tokens, users) = match result {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let now = Timestamp::now();
    let f = frame(&who);
    page(SettingsPage {
        title: "Settings",
        page: "settings",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        is_admin,
        tokens: tokens
            .into_iter()
            .map(|t| {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                TokenItem {
                    id: t.id,
                    revocable: state == "active",
                    state: state.into(),
                    name: t.name,
                    user: t.user,
                    role: t.role.to_string(),
                    prefix: t.prefix,
                    expires: t.expires_at.map(ts).unwrap_or_else(|| "never".into()),
                    last_used: t.last_used_at.map(ts).unwrap_or_default(),
                }
            })
            .collect(),
        users: users
            .into_iter()
            .map(|u| {
                (
                    u.name,
                    u.role.to_string(),
                    u.disabled,
                    u.last_login_at.map(ts).unwrap_or_default(),
                )
            })
            .collect(),
    })
}

/// One field of a configuration form, ready to render.
struct FieldView {
    key: String,
    label: String,
    help: String,
    kind: &'static str,
    required: bool,
    value: String,
    checked: bool,
    secret_set: bool,
    min: Option<f64>,
    max: Option<f64>,
    step: &'static str,
    options: Vec<(String, String, bool)>,
}

fn field_views(
    spec: &iocx_connectors::ConnectorSpec,
    values: &serde_json::Map<String, Value>,
    secrets_set: &std::collections::BTreeMap<String, bool>,
) -> Vec<FieldView> {
    use iocx_connectors::FieldKind as K;
    spec.fields
        .iter()
        .map(|f| {
            let current = values.get(&f.key).or(f.default.as_ref());
            let as_text = current.map(text).unwrap_or_default();
            let selected = |v: &str| match current {
                Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(v)),
                Some(Value::String(s)) => s == v,
                _ => false,
            };
            let (kind, min, max, step, options) = match &f.kind {
                K::Text { .. } => ("text", None, None, "any", Vec::new()),
                K::Textarea => ("textarea", None, None, "any", Vec::new()),
                K::Secret => ("secret", None, None, "any", Vec::new()),
                K::Number { min, max, integer } => (
                    "number",
                    *min,
                    *max,
                    if *integer { "1" } else { "any" },
                    Vec::new(),
                ),
                K::Choice { choices } => (
                    "choice",
                    None,
                    None,
                    "any",
                    choices
                        .iter()
                        .map(|c| (c.value.clone(), c.label.clone(), selected(&c.value)))
                        .collect(),
                ),
                K::MultiChoice { choices } => (
                    "multi_choice",
                    None,
                    None,
                    "any",
                    choices
                        .iter()
                        .map(|c| (c.value.clone(), c.label.clone(), selected(&c.value)))
                        .collect(),
                ),
                K::Boolean => ("boolean", None, None, "any", Vec::new()),
            };
            FieldView {
                key: f.key.clone(),
                label: f.label.clone(),
                help: f.help.clone(),
                kind,
                required: f.required,
                value: if kind == "secret" {
                    String::new()
                } else {
                    as_text
                },
                checked: current.and_then(Value::as_bool).unwrap_or(false),
                secret_set: secrets_set.get(&f.key).copied().unwrap_or(false),
                min,
                max,
                step,
                options,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "configuration_form.html")]
struct ConfigurationForm {
    title: String,
    page: &'static str,
    user: String,
    role: String,
    csrf: String,
    editing: bool,
    name: String,
    connector: String,
    connector_title: String,
    connector_description: String,
    connectors: Vec<(String, String)>,
    fields: Vec<FieldView>,
    enabled: bool,
    interval_minutes: i64,
    initial_range_days: i64,
    aging_days: i64,
    verify_tls: bool,
}

#[derive(Deserialize)]
struct NewQuery {
    connector: Option<String>,
}

async fn new_configuration(
    who: Result<Principal, ApiError>,
    q: Result<Q<NewQuery>, ApiError>,
) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    if let Err(e) = who.require(Role::Admin) {
        return e.into_response();
    }
    let connector = q.ok().and_then(|Q(q)| q.connector).unwrap_or_default();
    let spec = iocx_connectors::connector(&connector).map(|c| c.spec());
    if !connector.is_empty() && spec.is_none() {
        return ApiError::not_found(format!("connector {connector:?}")).into_response();
    }
    let platform = iocx_store::Platform::default();
    let f = frame(&who);
    page(ConfigurationForm {
        title: "New configuration".into(),
        page: "configurations",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        editing: false,
        name: String::new(),
        connector_title: spec.map(|s| s.title.clone()).unwrap_or_default(),
        connector_description: spec.map(|s| s.description.clone()).unwrap_or_default(),
        fields: spec
            .map(|s| field_views(s, &serde_json::Map::new(), &Default::default()))
            .unwrap_or_default(),
        connector,
        connectors: iocx_connectors::registry()
            .iter()
            .map(|c| (c.spec().name.clone(), c.spec().title.clone()))
            .collect(),
        enabled: true,
        interval_minutes: platform.interval_secs / 60,
        initial_range_days: platform.initial_range_days,
        aging_days: platform.aging_days,
        verify_tls: platform.verify_tls,
    })
}

async fn edit_configuration(
    State(app): State<Arc<App>>,
    who: Result<Principal, ApiError>,
    name: Result<P<String>, ApiError>,
) -> Response {
    let Some(who) = session(who) else {
        return to_login();
    };
    if let Err(e) = who.require(Role::Admin) {
        return e.into_response();
    }
    let P(name) = match name {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let n = name.clone();
    let c = match app.store().call(move |s| s.configuration(&n)).await {
        Ok(Some(c)) => c,
        Ok(None) => return ApiError::not_found(format!("configuration {name:?}")).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(connector) = iocx_connectors::connector(&c.connector) else {
        return ApiError::not_found(format!("connector {:?}", c.connector)).into_response();
    };
    let secrets_set = iocx_engine::configs::values(&app.engine.vault, &c)
        .map(|(_, v)| v.secrets_set())
        .unwrap_or_default();
    let values: serde_json::Map<String, Value> = c.params.clone().into_iter().collect();
    let f = frame(&who);
    page(ConfigurationForm {
        title: format!("Edit {}", c.name),
        page: "configurations",
        user: f.user,
        role: f.role,
        csrf: f.csrf,
        editing: true,
        name: c.name.clone(),
        connector: c.connector.clone(),
        connector_title: connector.spec().title.clone(),
        connector_description: connector.spec().description.clone(),
        connectors: Vec::new(),
        fields: field_views(connector.spec(), &values, &secrets_set),
        enabled: c.enabled,
        interval_minutes: c.platform.interval_secs / 60,
        initial_range_days: c.platform.initial_range_days,
        aging_days: c.platform.aging_days,
        verify_tls: c.platform.verify_tls,
    })
}
