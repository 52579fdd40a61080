//! The HTTP handlers: the three ways to authenticate, the `repEntries` calls with parameters
//! from the query string, a form body or a multipart upload, the `dbAccess` export servlet,
//! the version calls, and the `/_sim` routes that make events happen.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State as AxumState};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::cef::{self, ALERT_COLUMNS, Device, Event, HitSpec};
use super::data::{Refusal, State};
use super::model::{AddressKind, Category, Param, normalize, split_fields};
use super::syslog::Emitter;
use super::{Args, DeleteMissing, Methods, render_error};
use crate::common::Faults;

/// Everything the handlers share.
pub(crate) struct Ctx {
    pub(crate) state: Arc<State>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) args: Args,
    pub(crate) emitter: Emitter,
    pub(crate) devices: Vec<Device>,
    pub(crate) rng: Mutex<StdRng>,
}

impl Ctx {
    /// The hit an event generator makes by default.
    pub(crate) fn spec(&self, device: Device) -> HitSpec {
        HitSpec {
            device,
            action: "Block".into(),
            count: 1,
            severity: 3,
            filter_name: self.args.reputation_filter_name.clone(),
            profile: self.args.profile_name.clone(),
            url_signature: self.args.url_signature,
        }
    }

    /// Records an event in ALERTS and sends it to the syslog targets.
    pub(crate) async fn emit(&self, event: Event) -> Event {
        let event = self.state.record(event);
        if self.emitter.has_targets() {
            let line = cef::syslog_line(
                &event,
                &self.args.sms_name,
                self.args.syslog_facility,
                !self.args.syslog_without_host,
            );
            self.emitter.send(&line).await;
        }
        event
    }

    /// Makes one random hit on a random held entry, if there is one.
    pub(crate) async fn emit_random(&self) -> Option<Event> {
        let (entry, device) = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            let entry = self.state.random_entry(&mut *rng)?;
            let device =
                self.devices[rand::Rng::gen_range(&mut *rng, 0..self.devices.len())].clone();
            (entry, device)
        };
        let spec = self.spec(device);
        let event = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            cef::hit(&entry, &spec, Utc::now(), &mut *rng)
        };
        Some(self.emit(event).await)
    }
}

type Shared = AxumState<Arc<Ctx>>;

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        body.into(),
    )
        .into_response()
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        render_error(status, "", &self.message)
    }
}

type Answer = Result<Response, Refusal>;

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// The parameters of a request, from the query string and the body, and an uploaded file.
struct Gathered {
    params: Vec<(String, String)>,
    file: Option<String>,
}

impl Gathered {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// The boundary of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Parses a multipart body into (field name, content) parts.
fn multipart(body: &[u8], boundary: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let Some(mut at) = find(body, delimiter, 0) else {
        return Err("the multipart body has no boundary".into());
    };
    loop {
        at += delimiter.len();
        if body.get(at..at + 2) == Some(b"--") {
            break;
        }
        // Skip the line break after the delimiter.
        while body.get(at).is_some_and(|b| *b == b'\r' || *b == b'\n') {
            at += 1;
        }
        let Some(head_end) = find(body, b"\r\n\r\n", at) else {
            return Err("a multipart part has no headers".into());
        };
        let head = String::from_utf8_lossy(&body[at..head_end]).to_string();
        let content_start = head_end + 4;
        let Some(next) = find(body, delimiter, content_start) else {
            return Err("a multipart part is not terminated".into());
        };
        let mut content_end = next;
        if content_end >= 2 && &body[content_end - 2..content_end] == b"\r\n" {
            content_end -= 2;
        }
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .and_then(|l| {
                l.split(';').find_map(|p| {
                    let (k, v) = p.trim().split_once('=')?;
                    (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
                })
            })
            .unwrap_or_default();
        parts.push((name, body[content_start..content_end].to_vec()));
        at = next;
    }
    Ok(parts)
}

async fn gather(
    ctx: &Ctx,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: Body,
) -> Result<Gathered, Refusal> {
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let bytes = axum::body::to_bytes(body, ctx.args.max_upload_bytes)
        .await
        .map_err(|_| {
            refuse(
                400,
                format!(
                    "request body larger than {} bytes",
                    ctx.args.max_upload_bytes
                ),
            )
        })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let lower = content_type.to_ascii_lowercase();
    let mut file = None;
    if lower.starts_with("multipart/form-data") {
        let b = boundary(&content_type)
            .ok_or_else(|| refuse(400, "multipart body without a boundary"))?;
        for (name, content) in multipart(&bytes, &b).map_err(|e| refuse(400, e))? {
            if name == "file" {
                file = Some(String::from_utf8_lossy(&content).to_string());
            } else if !name.is_empty() {
                params.push((name, String::from_utf8_lossy(&content).trim().to_string()));
            }
        }
    } else if lower.starts_with("application/x-www-form-urlencoded") {
        params.extend(
            url::form_urlencoded::parse(&bytes).map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
    }
    Ok(Gathered { params, file })
}

/// Checks `X-SMS-API-KEY`, HTTP Basic, or `smsuser`/`smspass`.
fn admit(ctx: &Ctx, headers: &HeaderMap, params: &Gathered) -> Result<(), Refusal> {
    let unauthorized = || refuse(401, "Unauthorized: missing or incorrect credentials");
    if let Some(key) = headers.get("x-sms-api-key") {
        let key = key.to_str().map_err(|_| unauthorized())?.trim();
        if !ctx.args.api_key.is_empty() && key == ctx.args.api_key {
            return Ok(());
        }
        if ctx
            .args
            .restricted_api_key
            .as_deref()
            .is_some_and(|r| !r.is_empty() && r == key)
        {
            return Err(refuse(
                403,
                "Forbidden: the user lacks the Access SMS Web Services capability",
            ));
        }
        return Err(unauthorized());
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, b64) = v.trim().split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return None;
            }
            let text = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
            let (u, p) = text.split_once(':')?;
            Some((u.to_string(), p.to_string()))
        });
    let pair = basic.or_else(|| {
        Some((
            params.get("smsuser")?.to_string(),
            params.get("smspass")?.to_string(),
        ))
    });
    match pair {
        Some((u, p)) if u == ctx.args.user && p == ctx.args.password && !p.is_empty() => Ok(()),
        _ => Err(unauthorized()),
    }
}

fn method_allowed(ctx: &Ctx, method: &Method) -> Result<(), Refusal> {
    let ok = match ctx.args.methods {
        Methods::Both => *method == Method::GET || *method == Method::POST,
        Methods::Get => *method == Method::GET,
        Methods::Post => *method == Method::POST,
    };
    if ok {
        Ok(())
    } else {
        Err(refuse(405, "Method not allowed"))
    }
}

/// `repEntries/add`: exactly one of `ip`, `dns`, `url`, and optional `TagData`.
pub(crate) async fn add(
    AxumState(ctx): Shared,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Answer {
    let g = gather(&ctx, &headers, raw.as_deref(), body).await?;
    admit(&ctx, &headers, &g)?;
    method_allowed(&ctx, &method)?;
    let given: Vec<(Param, &str)> = Param::ALL
        .iter()
        .flat_map(|p| g.all(p.name()).into_iter().map(move |v| (*p, v)))
        .collect();
    let [(param, address)] = given.as_slice() else {
        return Err(refuse(400, "exactly one of ip, dns or url is required"));
    };
    let tag_data = g.get("TagData").or_else(|| g.get("tagdata")).unwrap_or("");
    let pairs = if tag_data.trim().is_empty() {
        Vec::new()
    } else {
        let fields =
            split_fields(tag_data, ',').map_err(|e| refuse(400, format!("TagData: {e}")))?;
        fields
            .chunks(2)
            .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
            .collect()
    };
    if ctx.faults.capacity_reached() {
        return Err(refuse(412, "the reputation database is full"));
    }
    ctx.state.add(*param, address, &pairs, Utc::now())?;
    Ok(text(StatusCode::OK, "OK"))
}

fn address_type(g: &Gathered) -> Result<AddressKind, Refusal> {
    match g.get("type") {
        None | Some("") => Ok(AddressKind::Ipv4),
        Some(t) => AddressKind::from_type(t)
            .ok_or_else(|| refuse(400, format!("unknown type {t}: use ipv4, ipv6, dns or url"))),
    }
}

/// `repEntries/import`: multipart `file` with `type` = `ipv4` (default), `ipv6`, `dns`, `url`.
pub(crate) async fn import(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Answer {
    let g = gather(&ctx, &headers, raw.as_deref(), body).await?;
    admit(&ctx, &headers, &g)?;
    let kind = address_type(&g)?;
    let Some(file) = g.file.as_deref() else {
        return Err(refuse(400, "a multipart file field named file is required"));
    };
    let lines = file
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .count();
    if lines > ctx.args.max_import_entries {
        return Err(refuse(
            400,
            format!(
                "the file holds {lines} entries; import at most {} per file",
                ctx.args.max_import_entries
            ),
        ));
    }
    if ctx.faults.capacity_reached() {
        return Err(refuse(412, "the reputation database is full"));
    }
    let report = ctx.state.import(kind, file, Utc::now())?;
    Ok(text(
        StatusCode::OK,
        format!(
            "OK: {} added, {} updated, {} ignored",
            report.added, report.updated, report.ignored
        ),
    ))
}

/// `repEntries/delete`: `criteria` = `entry` (with `ip`/`dns`/`url` values or a file and
/// `type`), `user`, `repdv` or `all`.
pub(crate) async fn delete(
    AxumState(ctx): Shared,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Answer {
    let g = gather(&ctx, &headers, raw.as_deref(), body).await?;
    admit(&ctx, &headers, &g)?;
    if g.file.is_none() {
        method_allowed(&ctx, &method)?;
    }
    let Some(criteria) = g.get("criteria") else {
        return Err(refuse(
            400,
            "criteria is required: entry, user, repdv or all",
        ));
    };
    let deleted = match criteria.trim().to_ascii_lowercase().as_str() {
        "entry" => {
            let mut keys = Vec::new();
            for p in Param::ALL {
                for v in g.all(p.name()) {
                    keys.push(normalize(p, v).map_err(|e| refuse(400, e))?);
                }
            }
            if let Some(file) = g.file.as_deref() {
                keys.extend(State::file_addresses(address_type(&g)?, file));
            }
            if keys.is_empty() {
                return Err(refuse(
                    400,
                    "criteria=entry needs ip, dns or url values, or a file",
                ));
            }
            let n = ctx.state.delete_entries(&keys);
            if n == 0 && ctx.args.delete_missing == DeleteMissing::NotFound {
                return Err(refuse(404, "no such entry"));
            }
            n
        }
        "user" => ctx.state.delete_where(true, false),
        "repdv" => ctx.state.delete_where(false, true),
        "all" => ctx.state.delete_where(true, true),
        other => {
            return Err(refuse(
                400,
                format!("unknown criteria {other}: use entry, user, repdv or all"),
            ));
        }
    };
    Ok(text(StatusCode::OK, format!("OK: {deleted} deleted")))
}

/// `repEntries/query`: repeated `ip=`, `dns=` or `url=` (one kind), up to the limit.
pub(crate) async fn query(
    AxumState(ctx): Shared,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Answer {
    let g = gather(&ctx, &headers, raw.as_deref(), body).await?;
    admit(&ctx, &headers, &g)?;
    method_allowed(&ctx, &method)?;
    let kinds: Vec<Param> = Param::ALL
        .into_iter()
        .filter(|p| !g.all(p.name()).is_empty())
        .collect();
    let [param] = kinds.as_slice() else {
        return Err(refuse(
            400,
            "query takes ip, dns or url values, one kind per request",
        ));
    };
    let values = g.all(param.name());
    if values.len() > ctx.args.max_query_values {
        return Err(refuse(
            400,
            format!(
                "{} values given; at most {} per request",
                values.len(),
                ctx.args.max_query_values
            ),
        ));
    }
    let mut keys = Vec::with_capacity(values.len());
    for v in values {
        keys.push(normalize(*param, v).map_err(|e| refuse(412, e))?);
    }
    let found = ctx.state.query(&keys);
    if found.is_empty() {
        let status =
            StatusCode::from_u16(ctx.args.empty_query_status).unwrap_or(StatusCode::NO_CONTENT);
        if status == StatusCode::NO_CONTENT {
            return Ok(status.into_response());
        }
        return Ok(text(status, ""));
    }
    let mut out = String::new();
    for e in found {
        out.push_str(&e.query_line());
        out.push('\n');
    }
    Ok(text(StatusCode::OK, out))
}

fn parse_ms(g: &Gathered, name: &str) -> Result<Option<i64>, Refusal> {
    g.get(name)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| refuse(400, format!("{name} must be epoch milliseconds")))
        })
        .transpose()
}

/// `dbAccess/tptDBServlet`: `method=Status|Version|GetData|GetNewestRecord|GetOldestRecord|DataDictionary`.
pub(crate) async fn db_access(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Answer {
    let g = gather(&ctx, &headers, raw.as_deref(), body).await?;
    admit(&ctx, &headers, &g)?;
    let method = g.get("method").unwrap_or("");
    let format = g.get("format").unwrap_or("csv").to_ascii_lowercase();
    if !matches!(format.as_str(), "csv" | "xml" | "sql") {
        return Err(refuse(
            400,
            format!("unknown format {format}: use csv, xml or sql"),
        ));
    }
    let table = g.get("table").unwrap_or("").to_ascii_uppercase();
    let header_row = !ctx.args.csv_without_header;
    match method {
        "Status" => Ok(text(StatusCode::OK, "OK")),
        "Version" => Ok(text(StatusCode::OK, ctx.args.api_version.clone())),
        "GetData" | "GetNewestRecord" | "GetOldestRecord" => {
            let rows = match table.as_str() {
                "ALERTS" => {
                    let mut alerts = ctx.state.alerts();
                    alerts.sort_by_key(|e| (e.end, e.external_id));
                    if method == "GetData" {
                        let (Some(begin), Some(end)) =
                            (parse_ms(&g, "begin_time")?, parse_ms(&g, "end_time")?)
                        else {
                            return Err(refuse(
                                400,
                                "begin_time and end_time are required (epoch milliseconds)",
                            ));
                        };
                        let limit = match g.get("limit") {
                            None => usize::MAX,
                            Some(l) => l
                                .trim()
                                .parse::<usize>()
                                .map_err(|_| refuse(400, "limit must be a number"))?,
                        };
                        alerts
                            .iter()
                            .filter(|e| {
                                let t = e.end.timestamp_millis();
                                t >= begin && (t < end || (ctx.args.end_time_inclusive && t == end))
                            })
                            .take(limit)
                            .map(cef::alert_row)
                            .collect()
                    } else {
                        let pick = if method == "GetNewestRecord" {
                            alerts.last()
                        } else {
                            alerts.first()
                        };
                        pick.map(cef::alert_row).into_iter().collect()
                    }
                }
                "DDOS_STATS" | "QUARANTINE_HOSTS" | "RATELIMIT_STATS" => Vec::new(),
                other => return Err(refuse(400, format!("unknown table {other}"))),
            };
            let columns: &[&str] = if table == "ALERTS" {
                &ALERT_COLUMNS
            } else {
                &[]
            };
            Ok(text(
                StatusCode::OK,
                cef::export(&table, columns, &rows, &format, header_row),
            ))
        }
        "DataDictionary" => {
            let (columns, rows): (Vec<&str>, Vec<Vec<String>>) = match table.as_str() {
                "SIGNATURE" => (
                    vec![
                        "ID",
                        "NUMBER",
                        "SEVERITY_ID",
                        "NAME",
                        "CLASS",
                        "PRODUCT_CATEGORY_ID",
                        "PROTOCOL",
                        "TAXONOMY_ID",
                        "CVE_ID",
                        "BUGTRAQ_ID",
                        "DESCRIPTION",
                        "MESSAGE",
                    ],
                    [cef::IP_REPUTATION_SIGNATURE, cef::DNS_REPUTATION_SIGNATURE]
                        .into_iter()
                        .chain(
                            (ctx.args.url_signature != cef::DNS_REPUTATION_SIGNATURE
                                && ctx.args.url_signature != cef::IP_REPUTATION_SIGNATURE)
                                .then_some(ctx.args.url_signature),
                        )
                        .map(|n| {
                            vec![
                                cef::signature_uuid(n),
                                n.to_string(),
                                "3".into(),
                                format!(
                                    "{n}: Reputation: {}",
                                    if n == cef::IP_REPUTATION_SIGNATURE {
                                        "IP"
                                    } else {
                                        "Host"
                                    }
                                ),
                                "Reputation".into(),
                                "1".into(),
                                "ip".into(),
                                cef::REPUTATION_TAXONOMY.to_string(),
                                String::new(),
                                String::new(),
                                "A reputation entry matched.".into(),
                                "%1".into(),
                            ]
                        })
                        .collect(),
                ),
                "DEVICE" => (
                    vec![
                        "ID",
                        "SHORT_ID",
                        "NAME",
                        "MODEL",
                        "SERIAL_NUMBER",
                        "IP_ADDRESS",
                    ],
                    ctx.devices
                        .iter()
                        .enumerate()
                        .map(|(i, d)| {
                            vec![
                                d.id.clone(),
                                (i + 1).to_string(),
                                d.name.clone(),
                                "TX 2200".into(),
                                format!("X{:09}", i + 1),
                                d.ip.to_string(),
                            ]
                        })
                        .collect(),
                ),
                "SEVERITY" => (
                    vec!["ID", "NAME"],
                    ["Low", "Minor", "Major", "Critical"]
                        .iter()
                        .enumerate()
                        .map(|(i, n)| vec![(i + 1).to_string(), n.to_string()])
                        .collect(),
                ),
                other => {
                    return Err(refuse(
                        400,
                        format!("unknown data dictionary table {other}"),
                    ));
                }
            };
            Ok(text(
                StatusCode::OK,
                cef::export(&table, &columns, &rows, &format, header_row),
            ))
        }
        "" => Err(refuse(400, "method is required")),
        other => Err(refuse(400, format!("unknown method {other}"))),
    }
}

/// `smsAdmin/info?request=version`.
pub(crate) async fn sms_info(
    AxumState(ctx): Shared,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Answer {
    let g = gather(&ctx, &headers, raw.as_deref(), body).await?;
    admit(&ctx, &headers, &g)?;
    match g.get("request") {
        Some("version") => Ok(text(StatusCode::OK, ctx.args.sms_version.clone())),
        _ => Err(refuse(400, "request=version is the supported request")),
    }
}

/// `GET /_sim/state`.
pub(crate) async fn get_state(AxumState(ctx): Shared) -> Response {
    Json(ctx.state.snapshot()).into_response()
}

/// `DELETE /_sim/state`: removes every entry and alert.
pub(crate) async fn clear_state(AxumState(ctx): Shared) -> Response {
    ctx.state.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_sim/reap`: runs the TTL clean-up now.
pub(crate) async fn reap(AxumState(ctx): Shared) -> Response {
    let removed = ctx.state.reap(Utc::now());
    Json(json!({"removed": removed})).into_response()
}

/// `GET /_sim/tag-categories`.
pub(crate) async fn list_categories(AxumState(ctx): Shared) -> Response {
    let all: Vec<Value> = ctx
        .state
        .categories()
        .iter()
        .map(Category::to_json)
        .collect();
    Json(Value::Array(all)).into_response()
}

fn sim_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// `POST /_sim/tag-categories` with `{"spec": "NAME=TYPE[:SPEC]"}`.
pub(crate) async fn add_category(AxumState(ctx): Shared, body: axum::body::Bytes) -> Response {
    let spec = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v.get("spec").and_then(Value::as_str).map(str::to_string),
        Err(_) => None,
    };
    let Some(spec) = spec else {
        return sim_error(
            StatusCode::BAD_REQUEST,
            "expected {\"spec\": \"NAME=TYPE[:SPEC]\"}",
        );
    };
    match Category::parse_spec(&spec).and_then(|c| ctx.state.add_category(c)) {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(e) => sim_error(StatusCode::BAD_REQUEST, e),
    }
}

/// `GET /_sim/events`: the ALERTS table as JSON and the syslog counters.
pub(crate) async fn list_events(AxumState(ctx): Shared) -> Response {
    let alerts: Vec<Value> = ctx.state.alerts().iter().map(Event::to_json).collect();
    Json(json!({"events": alerts, "syslog": ctx.emitter.counters.to_json()})).into_response()
}

/// `POST /_sim/events`: `{"value"?, "count"?, "device"?, "action"?, "hits"?, "severity"?}` —
/// emit `count` hits on the entry `value` would match (or on random entries) from `device`.
pub(crate) async fn post_events(AxumState(ctx): Shared, body: axum::body::Bytes) -> Response {
    let req: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return sim_error(StatusCode::BAD_REQUEST, "expected a JSON object"),
        }
    };
    let count = req.get("count").and_then(Value::as_u64).unwrap_or(1);
    if count == 0 || count > 100_000 {
        return sim_error(StatusCode::BAD_REQUEST, "count must be 1 to 100000");
    }
    let severity = req.get("severity").and_then(Value::as_u64).unwrap_or(3);
    if !(1..=4).contains(&severity) {
        return sim_error(StatusCode::BAD_REQUEST, "severity must be 1 to 4");
    }
    let device = match req.get("device").and_then(Value::as_str) {
        Some(name) => ctx
            .devices
            .iter()
            .find(|d| d.name == name)
            .cloned()
            .unwrap_or_else(|| Device::named(name, ctx.devices.len())),
        None => ctx.devices[0].clone(),
    };
    let mut spec = ctx.spec(device);
    spec.severity = severity as u8;
    if let Some(a) = req.get("action").and_then(Value::as_str) {
        spec.action = a.to_string();
    }
    if let Some(h) = req.get("hits").and_then(Value::as_u64) {
        spec.count = h.max(1);
    }
    let target = match req.get("value").and_then(Value::as_str) {
        Some(v) => match ctx.state.find_for_value(v) {
            Some(e) => Some(e),
            None => {
                return sim_error(
                    StatusCode::NOT_FOUND,
                    format!("no reputation entry matches {v}"),
                );
            }
        },
        None => None,
    };
    let mut out = Vec::with_capacity(count.min(1000) as usize);
    for _ in 0..count {
        let entry = match &target {
            Some(e) => e.clone(),
            None => {
                let mut rng = ctx.rng.lock().unwrap_or_else(|p| p.into_inner());
                match ctx.state.random_entry(&mut *rng) {
                    Some(e) => e,
                    None => {
                        return sim_error(StatusCode::CONFLICT, "the reputation database is empty");
                    }
                }
            }
        };
        let mut event = {
            let mut rng = ctx.rng.lock().unwrap_or_else(|p| p.into_inner());
            cef::hit(&entry, &spec, Utc::now(), &mut *rng)
        };
        if let Some(v) = req.get("value").and_then(Value::as_str)
            && entry.kind == AddressKind::Dns
        {
            // A name under a suffix entry hits with its own name.
            let name = v.trim().to_ascii_lowercase();
            event.matched.clone_from(&name);
            event.dhost = Some(name);
        }
        let event = ctx.emit(event).await;
        if out.len() < 1000 {
            out.push(event.to_json());
        }
    }
    (
        StatusCode::CREATED,
        Json(json!({"emitted": count, "events": out})),
    )
        .into_response()
}

/// Any path the API does not have.
pub(crate) async fn not_found() -> Response {
    render_error(StatusCode::NOT_FOUND, "", "Not Found")
}

/// A known path with a method it does not take.
pub(crate) async fn method_not_allowed() -> Response {
    render_error(StatusCode::METHOD_NOT_ALLOWED, "", "Method not allowed")
}

/// A fresh random source for events.
pub(crate) fn rng(seed: u64) -> Mutex<StdRng> {
    Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed))
}
