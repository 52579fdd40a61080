//! # CrowdStrike Falcon emulator
//!
//! Custom IOC Management of the Falcon API and the endpoint-detection alerts that carry
//! indicators, as written down in `contracts/vendors.md` §2 and `contracts/netskope-cte-anchor.md`
//! §5.2. CrowdStrike's official Python SDK, `crowdstrike-falconpy` (checked with 1.6.6), works
//! against it unchanged; `tests/sdk_crowdstrike.rs` proves it.
//!
//! ## Routes
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/oauth2/token` | 201 `{"access_token","token_type":"bearer","expires_in"}` |
//! | POST | `/oauth2/revoke` | 200 envelope; the token stops working |
//! | GET | `/iocs/queries/indicators/v1` | ids, paged |
//! | GET | `/iocs/combined/indicator/v1` | indicator objects, paged |
//! | GET | `/iocs/entities/indicators/v1?ids=…` | objects by id |
//! | POST | `/iocs/entities/indicators/v1` | 201 with the created objects; 400 with per-item errors |
//! | PATCH | `/iocs/entities/indicators/v1` | 200 with the updated objects (by id or `bulk_update`) |
//! | DELETE | `/iocs/entities/indicators/v1?ids=…` or `?filter=…` | 200, deleted ids |
//! | GET | `/iocs/queries/{ioc-types,platforms,severities,actions}/v1` | the value domains |
//! | GET | `/iocs/entities/actions/v1?ids=…` | action objects |
//! | POST | `/alerts/combined/alerts/v1` | detections with `ioc_type`/`ioc_value`, paged by `after` |
//! | GET, DELETE | `/_sim/state` | IOCs and alerts as JSON; DELETE empties both |
//! | POST | `/_sim/alerts` | adds detections (`[{"ioc_type","ioc_value",…}]`) |
//! | GET, PUT | `/_sim/faults`; GET, DELETE `/_sim/requests` | shared admin routes ([`crate::common`]) |
//!
//! Every answer but the token's is the CrowdStrike envelope `{"meta":{"query_time",
//! "pagination","powered_by","trace_id"},"resources":[…],"errors":[{"code","message"}]}` with an
//! `X-Cs-Traceid` header; API answers carry `X-RateLimit-Limit` and `X-RateLimit-Remaining`.
//! API calls want `Authorization: Bearer <token>` from `/oauth2/token`; a missing, unknown,
//! revoked or expired token gets 401 "access denied, invalid bearer token". Wrong client
//! credentials get 403 "access denied, authorization failed". The token answer never carries
//! `X-Cs-Region` (falconpy would leave for the real cloud).
//!
//! **Listing** (`queries`/`combined`): `filter` (FQL, see [`fql`]: every indicator field,
//! `+` AND, `,` OR, `!` NOT, `>`/`>=`/`<`/`<=`, `['a','b']` lists, `*'wild*'`), `sort`
//! (`field.asc|desc` or `field|asc|desc` over the contract's sort keys), `limit` (1–2,000,
//! default 100), and either `offset` or `after`. `offset` pages within the first 10,000 results
//! (`--offset-window`); `after` (or neither, which scrolls from the start) pages without end:
//! `meta.pagination.after` is an opaque token holding the sort key of the page's last item, so
//! scrolling neither skips nor repeats while indicators change. `total` counts every match.
//!
//! **Create**: `{"comment","indicators":[…]}`, at most 2,000 (`--max-per-request`). Each item is
//! checked: `type` sha256|md5|domain|ipv4|ipv6 with a value of that form; `action`
//! no_action|allow|prevent_no_ui|detect|prevent (the last three and `allow` only on hashes);
//! `severity` informational..critical; `platforms` ⊆ windows|mac|linux|ios|android (required);
//! `applied_globally: true` or `host_groups` (one of them); `source` 1–256 characters;
//! `expiration` RFC 3339 in the future. Refused items come back in `resources` as submitted plus
//! `message_type: "error"`, `field_name`, `message`, and in `errors` as `{"code","message"}`; a
//! `type`+`value` already held is refused with 409 "Duplicate type: 'T' and value: 'V'
//! combination.". Creates past the capacity (1,000,000, `--capacity`) are refused whole: 400
//! "Limit of 1 million indicators reached." (the words Netskope's plugin looks for). Expired
//! indicators stay, with `expired: true` and `action: "no_action"`.
//!
//! **Alerts**: `POST /alerts/combined/alerts/v1` with `{"filter","sort","limit" (≤ 1000),
//! "after"}`, the way Netskope's plugin pulls what sensors detected (`ioc_type`, `ioc_value`,
//! `ioc_source`, `ioc_context`, `updated_timestamp`, `severity`, `confidence`,
//! `pattern_disposition`).
//!
//! Faults from [`crate::common::Faults`] apply to every API route, in the CrowdStrike envelope;
//! injected 429s carry `Retry-After` and `X-RateLimit-RetryAfter` (epoch seconds), and
//! `capacity_reached` refuses every create with the capacity message.
//!
//! ## Pointing falconpy at it
//!
//! `IOC(client_id=ID, client_secret=SECRET, base_url="http://127.0.0.1:PORT")` (the same
//! keywords on `Alerts`, `OAuth2` and `APIHarnessV2`): falconpy keeps any base URL containing
//! `://`, so plain HTTP works and no TLS is needed. `--tls` serves HTTPS with a self-signed
//! certificate for clients that insist; pass `ssl_verify=False` (or the certificate's path from
//! [`crate::common::SimHandle::tls`]). Clear `HTTP(S)_PROXY` for loopback.
//!
//! ## Choices
//!
//! Where the contract leaves a fact unconfirmed, the emulator chooses as follows; each choice
//! has a flag.
//!
//! - **Token lifetime**: `expires_in` 1799 s (`--token-lifetime-secs`; set a few seconds to make
//!   clients refresh). falconpy renews a token 120 s or more before it expires, so a lifetime
//!   under that makes it fetch a new token before every call.
//! - **Rate limit**: 6,000 requests per client per sliding minute (`--rate-limit-per-minute`, 0
//!   turns it off), then 429 "API rate limit exceeded." with `X-RateLimit-RetryAfter` (the epoch
//!   second the window frees) and `Retry-After` (seconds). The token routes are not counted.
//! - **`offset` window**: `offset` ≥ 10,000 is a 400 that points at `after`; a page that would
//!   cross the window is cut at it (`--offset-window`, small in tests).
//! - **Default page and order**: `limit` 100 (`--default-limit`), sort `created_on.asc`
//!   (`--default-sort`); ties are broken by creation order.
//! - **What `after` carries**: the sort and the last key, not the filter: each page applies the
//!   filter it is sent with (clients repeat the whole query, as falconpy and Netskope's plugin
//!   do). A token used with another sort is a 400.
//! - **`after` on the last page**: an empty string (`--after-at-end empty`); `token` answers a
//!   token that leads to an empty page. Offset pages carry `offset` (the one requested), no
//!   `after`.
//! - **Partly refused creates**: the valid items are created and the answer is 400 with both
//!   lists (`--partial-create store-valid`); `reject-all` creates nothing when any item is
//!   refused. Updates behave like `store-valid`. A request with no refused item answers 201
//!   (create) or 200 (update).
//! - **Duplicates**: refused per item (409 in `errors`), also within one request.
//! - **Severity**: required with `detect`, `prevent` and `prevent_no_ui`
//!   (`--severity-optional` drops that rule). `severity: ""` clears it.
//! - **Value case**: upper-case md5/sha256/IPv6 values are lower-cased and domains too
//!   (`--reject-uppercase` refuses hex and IPv6 values with upper case instead). FQL string
//!   comparisons ignore ASCII case.
//! - **Updates**: `type` and `value` cannot change (per-item 400). Unknown ids are per-item
//!   404s. `bulk_update` needs a `filter`; an empty `indicators: [{}]` beside it (as falconpy
//!   sends) is ignored.
//! - **Deletes and gets by id**: unknown ids are `errors` entries with code 404; the status is
//!   404 only when none of the ids was found. Deletes answer the deleted ids in `resources`.
//! - **Warnings** (`ignore_warnings`): no item ever raises a warning; the flag is accepted.
//! - **Texts** of 400s other than the capacity and duplicate messages are the emulator's own;
//!   clients should key on status and `code`.
//! - **Not emulated**: MSSP (`member_cid`, `from_parent` are accepted and ignored), host groups
//!   (any id is accepted), retrodetects, the aggregate, device-count, process and report
//!   endpoints, and the legacy `/detects` API.

pub mod data;
pub mod fql;
mod handlers;
pub mod model;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;

use crate::common::{self, FaultArgs, Faults, RequestLog, SimHandle, TlsIdentity};

pub use data::{AfterAtEnd, CAPACITY_MESSAGE, PartialCreate, State};

/// The documented cap of custom IOCs per CID.
pub const DEFAULT_CAPACITY: usize = 1_000_000;
/// The most indicators one create, update, get or delete may carry.
pub const MAX_PER_REQUEST: usize = 2000;
/// How far `offset` paging reaches.
pub const OFFSET_WINDOW: usize = 10_000;
/// `expires_in` of a token, in seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 1799;
/// Requests per client per minute.
pub const RATE_LIMIT_PER_MINUTE: u64 = 6000;

/// A client secret. Its `Debug` form hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Secret, String> {
        if s.is_empty() {
            Err("the client secret must not be empty".to_string())
        } else {
            Ok(Secret(s.to_string()))
        }
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

/// The `iocx sim crowdstrike` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// The API client id clients authenticate with.
    #[arg(long, value_name = "ID")]
    pub client_id: String,
    /// The API client secret.
    #[arg(long, value_name = "SECRET")]
    pub client_secret: Secret,
    /// Pre-fill IOC Management with N realistic indicators (spread over the five types).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub iocs: usize,
    /// Pre-fill N endpoint-detection alerts carrying indicators.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub alerts: usize,
    /// Seed of the pre-filled data (the same seed gives the same indicators).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Most custom IOCs held.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CAPACITY)]
    pub capacity: usize,
    /// Most indicators (or ids) in one request.
    #[arg(long, value_name = "N", default_value_t = MAX_PER_REQUEST)]
    pub max_per_request: usize,
    /// Largest `limit` on the listing endpoints.
    #[arg(long, value_name = "N", default_value_t = MAX_PER_REQUEST)]
    pub max_limit: usize,
    /// `limit` when a listing has none.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub default_limit: usize,
    /// `sort` when a listing has none.
    #[arg(long, value_name = "SORT", default_value = "created_on.asc")]
    pub default_sort: String,
    /// How far `offset` paging reaches; beyond it only `after` works.
    #[arg(long, value_name = "N", default_value_t = OFFSET_WINDOW)]
    pub offset_window: usize,
    /// `expires_in` of issued tokens, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = TOKEN_LIFETIME_SECS)]
    pub token_lifetime_secs: u64,
    /// API requests per client per sliding minute (0: no limit).
    #[arg(long, value_name = "N", default_value_t = RATE_LIMIT_PER_MINUTE)]
    pub rate_limit_per_minute: u64,
    /// What a create with some refused items does.
    #[arg(long, value_enum, default_value_t = PartialCreate::StoreValid)]
    pub partial_create: PartialCreate,
    /// What `meta.pagination.after` holds on the last page.
    #[arg(long, value_enum, default_value_t = AfterAtEnd::Empty)]
    pub after_at_end: AfterAtEnd,
    /// Accept `detect`/`prevent` without a severity.
    #[arg(long)]
    pub severity_optional: bool,
    /// Refuse upper-case md5/sha256/IPv6 values instead of lower-casing them.
    #[arg(long)]
    pub reject_uppercase: bool,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Serve HTTPS with a self-signed certificate for 127.0.0.1 and localhost.
    #[arg(long)]
    pub tls: bool,
    /// Fault injection.
    #[command(flatten)]
    pub faults: FaultArgs,
}

impl Args {
    /// The flags' defaults with these credentials (for tests and in-process use).
    pub fn new(client_id: &str, client_secret: &str) -> Args {
        Args {
            client_id: client_id.to_string(),
            client_secret: Secret::from(client_secret),
            iocs: 0,
            alerts: 0,
            seed: 1,
            capacity: DEFAULT_CAPACITY,
            max_per_request: MAX_PER_REQUEST,
            max_limit: MAX_PER_REQUEST,
            default_limit: 100,
            default_sort: "created_on.asc".to_string(),
            offset_window: OFFSET_WINDOW,
            token_lifetime_secs: TOKEN_LIFETIME_SECS,
            rate_limit_per_minute: RATE_LIMIT_PER_MINUTE,
            partial_create: PartialCreate::StoreValid,
            after_at_end: AfterAtEnd::Empty,
            severity_optional: false,
            reject_uppercase: false,
            max_body_bytes: 32 * 1024 * 1024,
            tls: false,
            faults: FaultArgs {
                retry_after_secs: 1,
                server_error_status: 500,
                ..FaultArgs::default()
            },
        }
    }
}

/// A built emulator: what it holds, its fault switches and its request log.
#[derive(Debug, Clone)]
pub struct Emulator {
    /// The IOCs and alerts.
    pub state: Arc<State>,
    /// The live fault settings.
    pub faults: Arc<Faults>,
    /// Every request answered.
    pub log: Arc<RequestLog>,
}

/// An error in the CrowdStrike envelope: `{"meta":{…},"resources":[],"errors":[{"code",
/// "message"}]}` with an `X-Cs-Traceid` header.
pub fn envelope_error(status: StatusCode, powered_by: &str, message: &str) -> Response {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "meta": {"query_time": 0.0, "powered_by": powered_by, "trace_id": trace_id},
        "resources": [],
        "errors": [{"code": status.as_u16(), "message": message}],
    });
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert("X-Cs-Traceid", v);
    }
    response
}

/// Renders injected faults in the CrowdStrike envelope; a 429 says "API rate limit exceeded.".
pub fn render_error(status: StatusCode, _code: &str, message: &str) -> Response {
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => "API rate limit exceeded.",
        _ => message,
    };
    envelope_error(status, "crowdstrike-api-gateway", message)
}

/// Gives injected 429s the `X-RateLimit-RetryAfter` header (epoch seconds) CrowdStrike sends,
/// computed from the `Retry-After` the fault layer set.
async fn rate_limit_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.status() == StatusCode::TOO_MANY_REQUESTS
        && !response.headers().contains_key("X-RateLimit-RetryAfter")
    {
        let secs = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(1);
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&(Utc::now().timestamp() + secs).to_string()) {
            headers.insert("X-RateLimit-RetryAfter", v);
        }
        headers.insert("X-RateLimit-Remaining", HeaderValue::from_static("0"));
    }
    response
}

/// Builds the router (wrapped by [`common::admin_routes`] with the CrowdStrike error renderer)
/// and the emulator's state, pre-filled as `args` say.
pub fn build(args: &Args) -> (axum::Router, Emulator) {
    let state = Arc::new(State::new(
        data::Config {
            capacity: args.capacity,
            partial_create: args.partial_create,
            after_at_end: args.after_at_end,
            rules: model::ItemRules {
                severity_optional: args.severity_optional,
                reject_uppercase: args.reject_uppercase,
            },
        },
        args.seed,
    ));
    state.seed(
        args.iocs,
        args.alerts,
        args.seed,
        Utc::now(),
        &args.client_id,
    );
    let faults = Faults::new(args.faults.clone());
    let log = Arc::new(RequestLog::default());
    let ctx = Arc::new(handlers::Ctx::new(
        state.clone(),
        faults.clone(),
        args.clone(),
    ));
    let api = axum::Router::new()
        .route("/oauth2/token", post(handlers::token))
        .route("/oauth2/revoke", post(handlers::revoke))
        .route(
            "/iocs/queries/indicators/v1",
            get(handlers::query_indicators),
        )
        .route(
            "/iocs/combined/indicator/v1",
            get(handlers::combined_indicators),
        )
        .route(
            "/iocs/entities/indicators/v1",
            get(handlers::get_indicators)
                .post(handlers::create_indicators)
                .patch(handlers::update_indicators)
                .delete(handlers::delete_indicators),
        )
        .route("/iocs/queries/ioc-types/v1", get(handlers::ioc_types))
        .route("/iocs/queries/platforms/v1", get(handlers::platforms))
        .route("/iocs/queries/severities/v1", get(handlers::severities))
        .route("/iocs/queries/actions/v1", get(handlers::query_actions))
        .route("/iocs/entities/actions/v1", get(handlers::get_actions))
        .route(
            "/alerts/combined/alerts/v1",
            post(handlers::combined_alerts),
        )
        .route(
            "/_sim/state",
            get(handlers::get_state).delete(handlers::clear_state),
        )
        .route("/_sim/alerts", post(handlers::add_alerts))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(ctx);
    let router = common::admin_routes(api, faults.clone(), log.clone(), render_error)
        .layer(axum::middleware::from_fn(rate_limit_headers));
    (router, Emulator { state, faults, log })
}

/// Builds the emulator and serves it on `listener` (HTTPS with a self-signed certificate when
/// `--tls`).
///
/// # Errors
/// When the listener has no local address or the TLS identity cannot be made.
pub async fn start(
    listener: tokio::net::TcpListener,
    args: &Args,
) -> anyhow::Result<(SimHandle, Emulator)> {
    let (router, emulator) = build(args);
    let tls = if args.tls {
        Some(TlsIdentity::self_signed()?)
    } else {
        None
    };
    let handle = common::serve(listener, router, tls).await?;
    Ok((handle, emulator))
}
