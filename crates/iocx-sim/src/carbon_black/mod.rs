//! # VMware Carbon Black Cloud emulator
//!
//! The Enterprise EDR threat-intelligence endpoints of Carbon Black Cloud (Feed Manager v2,
//! Watchlist Manager v3) and the Alerts v7 search, as written down in `contracts/vendors.md` §4
//! and `contracts/netskope-cte-anchor.md` §5.4, served over **HTTPS** (self-signed) because
//! Carbon Black's official SDK, `carbon-black-cloud-sdk` (`cbc_sdk`, checked with 1.5.10),
//! refuses any URL that is not `https://`. The SDK works against it unchanged;
//! `tests/sdk_carbon_black.rs` proves it.
//!
//! ## Routes
//!
//! `FM` is `/threathunter/feedmgr/v2/orgs/{org_key}`, `WM` is
//! `/threathunter/watchlistmgr/v3/orgs/{org_key}`, `AL` is `/api/alerts/v7/orgs/{org_key}`.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/threathunter/feedmgr/healthcheck` | 204 (no key needed) |
//! | GET | `FM/feeds[?include_public=true]` | 200 `{"results":[FeedInfo]}` |
//! | POST | `FM/feeds` | 200 `FeedInfo` (new `id`); body `{"feedinfo":{…},"reports":[…]}` |
//! | POST | `FM/feeds/public` | 403: only Carbon Black publishes public feeds |
//! | GET, DELETE | `FM/feeds/{id}` | 200 `{"feedinfo":…,"reports":[…]}`; 204 |
//! | PUT | `FM/feeds/{id}/feedinfo` | 200 `FeedInfo` |
//! | GET | `FM/feeds/{id}/reports` | 200 `{"results":[Report]}` |
//! | POST | `FM/feeds/{id}/reports` | 200 `{"success":true}`: **replaces every report** |
//! | PUT, DELETE | `FM/feeds/{id}/reports/{report_id}` | 200 `Report`; 204 |
//! | GET, POST | `WM/watchlists` | 200 `{"results":[Watchlist]}`; 200 `Watchlist` |
//! | GET, PUT, DELETE | `WM/watchlists/{id}` | 200 `Watchlist`; 200; 204 |
//! | PUT, DELETE | `WM/watchlists/{id}/alert`, `…/tag` | 200 `{"alert":true}`; 204 |
//! | POST | `WM/reports` | 200 `Report` (an `id` is assigned when missing) |
//! | GET, PUT, DELETE | `WM/reports/{id}` | 200 `Report`; 200; 204 |
//! | POST | `AL/alerts/_search` | 200 `{"results":[…],"num_found":n,"num_available":n}` |
//! | GET | `AL/alerts/{id}` | 200 alert |
//! | GET, DELETE | `/_sim/state` | feeds, watchlists, reports, alert count; DELETE empties them |
//! | POST | `/_sim/alerts` | adds (partial) alerts given as JSON → `{"added":n}` |
//! | GET, PUT | `/_sim/faults`; GET, DELETE `/_sim/requests` | shared admin routes |
//!
//! **Auth**: `X-Auth-Token: API_SECRET_KEY/API_ID` (`--api-secret`, `--api-id`); missing or
//! wrong → 401. The org key in the path must be `--org-key`. `--read-only-key SECRET/ID` is a
//! second key that may read and search but gets 403 on every change.
//!
//! **Reports** are validated as cbc_sdk's schema describes: `id` (non-empty), `timestamp`
//! (integer > 0), `title` (non-empty), `description` (a string), `severity` (1–10), optional
//! `link`, `tags`, `visibility`, and at least one IOC. Each `iocs_v2` entry needs an `id` unique in
//! its report, `match_type` `equality`|`regex`|`query`, a non-empty list of non-empty `values`, a
//! `field` (any non-empty name, such as `process_sha256`, `netconn_ipv4`, `netconn_domain`, or
//! Netskope's `ipv4`/`dns`) unless it is a query, exactly one value if it is, and regexes that
//! compile. Legacy `iocs` (`md5`, `ipv4`, `ipv6`, `dns`, `query`) are converted into `iocs_v2`
//! (`process_hash`, `netconn_ipv4`, `netconn_ipv6`, `netconn_domain`, query). Any refusal is a
//! 400 naming the field (`reports[2].iocs_v2[0].values: must hold at least one value`), and
//! nothing changes.
//!
//! **Limits** (`--max-reports-per-feed` 10,000, `--max-iocs-per-report` 1,000): a feed create or
//! a report replacement past either limit is refused whole with 400 (`A feed may hold at most
//! 10000 reports; the request has 10001.` / `reports[0]: report "r1" holds 1001 IOC values; a
//! report may hold at most 1000.`). The `capacity_reached` fault refuses every non-empty report
//! write with the per-feed message.
//!
//! **Alert search**: `criteria` and `exclusions` map a field to a list of accepted values (any
//! match; array fields match on any element), plus `minimum_severity` (an integer) and, for the
//! timestamp fields, `{"start","end"}` or `{"range":"-3d"}`; `time_range` ranges over
//! `backend_timestamp`; `query` takes a small Lucene subset (ANDed `field:value` terms, a
//! trailing `*` for a prefix, bare words searched in every text field; `OR`, `NOT` and groups are
//! refused with `"reason":"query_malformed_syntax"`, which cbc_sdk raises as `QuerySyntaxError`);
//! `sort` is `[{"field","order"}]`; `start` is 1-based (0 reads as 1), `rows` defaults to 100.
//! `num_found` counts every match; `num_available` is `num_found` capped at the result window.
//! An unknown criteria or sort field is a 400.
//!
//! Faults from [`crate::common::Faults`] apply to every API route and are rendered in the same
//! envelope as every other error: `{"error_code":"…","message":"…","success":false}`.
//!
//! ## Pointing cbc_sdk at it
//!
//! `CBCloudAPI(url="https://127.0.0.1:PORT", token="API_SECRET_KEY/API_ID", org_key="ORG",
//! ssl_verify=False)`. The URL must be https (the SDK refuses `http://`), and the certificate is
//! self-signed: `ssl_verify=False` skips verification (the certificate is also in
//! [`crate::common::SimHandle::tls`] for clients that want to trust it instead). Clear
//! `HTTPS_PROXY` for loopback. The SDK's `Feed.create(…).build().save()`,
//! `select(Feed)`, `replace_reports_rawdata`/`replace_reports`, `Feed.delete()` and
//! `select(Alert)` all work.
//!
//! ## Choices
//!
//! Where the contract leaves a fact open, the emulator chooses, and a flag switches:
//!
//! - **Error envelope**: Carbon Black documents no body for 400s. Every error is
//!   `{"error_code": CODE, "message": …, "success": false}` with codes such as `UNAUTHORIZED`,
//!   `FORBIDDEN`, `NOT_FOUND`, `INVALID_REQUEST`, `INVALID_ARGUMENT`, `TOO_MANY_REQUESTS`. Not
//!   switchable.
//! - **Wrong org key in the path**: 404 (Netskope's plugin reads a 404 on its validation search as
//!   "Incorrect Organization Key"); `--wrong-org forbidden` answers 403.
//! - **What "1,000 IOCs per report" counts**: every value of every `iocs_v2` entry
//!   (`--ioc-limit-counts values`), since Netskope's plugin packs all values of a type into one
//!   entry and the limit is quoted as a warning about it; `entries` counts `iocs_v2` entries.
//! - **A feed report without `id`**: refused (`--missing-report-id reject`), as the SDK's schema
//!   requires one; `assign` gives it a random ID. Watchlist reports always get an ID when they
//!   have none (the SDK's `save_watchlist` posts none).
//! - **Empty `description` and `provider_url`**: accepted (Netskope's plugin sends both empty).
//! - **Duplicate report IDs in one replacement**: 400. Duplicate feed names: allowed.
//! - **Content-Type**: not checked (Netskope's plugin posts JSON without one).
//! - **Unknown feed, report or watchlist**: 404 (cbc_sdk's `ObjectNotFoundError`).
//! - **Public feeds**: two are always present (`include_public=true` lists them); changing or
//!   deleting them is 403.
//! - **Alert paging ceiling**: rows beyond the result window (`--result-window`, 10,000:
//!   `start + rows - 1 > 10000`, or `rows > 10000`) are refused with 400
//!   (`--beyond-window bad-request`); `server-error` answers 500, as cbc_sdk's comments suggest
//!   the service does. Default sort: `backend_timestamp` descending; both ends of a time range
//!   are inclusive.
//! - **Rate limit**: off by default; `--rate-limit N` allows N requests per sliding
//!   `--rate-limit-window-secs` (300) window over all API routes (one window: every client is on
//!   loopback), answering 429 with `Retry-After`; refused requests count, so a client that keeps
//!   calling extends its block.
//! - **Body size**: up to `--max-body-bytes` (50 MiB), then 413.
//! - **Not emulated**: the legacy `/appservices/v6` alert search, report ignore/severity routes,
//!   IOC ignore routes, and the feed-to-alert pipeline (feeds never raise alerts by themselves;
//!   add alerts with `--alerts` or `POST /_sim/alerts`).

mod alerts;
mod data;
mod handlers;
mod model;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::Utc;

use crate::common::{self, FaultArgs, Faults, RequestLog, SimHandle, TlsIdentity};

pub use alerts::{
    ALERT_FIELDS, Alert, REPUTATIONS, Search, SearchError, SearchLimits, SearchPage, format_time,
    parse_search, parse_time,
};
pub use data::{Config, Refusal, State};
pub use model::{
    Access, Classifier, FeedInfo, FeedInfoInput, Invalid, IocCounting, IocV2, MatchType, Report,
    Watchlist, WatchlistInput, parse_feedinfo, parse_report, parse_watchlist,
};

/// The documented cap of reports per feed.
pub const MAX_REPORTS_PER_FEED: usize = 10_000;
/// The documented cap of IOCs per report.
pub const MAX_IOCS_PER_REPORT: usize = 1_000;
/// The alert search's result window.
pub const RESULT_WINDOW: usize = 10_000;
/// The default API ID.
pub const DEFAULT_API_ID: &str = "IOCXSIM001";
/// The default API secret key.
pub const DEFAULT_API_SECRET: &str = "IOCXSIMSECRETKEY00000001";
/// The default organisation key.
pub const DEFAULT_ORG_KEY: &str = "7DESJ9GN";

/// A secret (an API secret key, or a whole `SECRET/ID` key). Its `Debug` form hides the value.
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
        if s.trim().is_empty() {
            Err("must not be empty".to_string())
        } else {
            Ok(Secret(s.trim().to_string()))
        }
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

/// What a request for an org key other than `--org-key` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WrongOrg {
    /// 404.
    NotFound,
    /// 403.
    Forbidden,
}

/// What a feed report without an `id` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MissingReportId {
    /// 400 naming the report.
    Reject,
    /// A random ID.
    Assign,
}

/// What an alert search past the result window answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BeyondWindow {
    /// 400.
    BadRequest,
    /// 500.
    ServerError,
}

/// The `iocx sim carbon-black` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// The API ID (the part after the slash in `X-Auth-Token`).
    #[arg(long, value_name = "ID", default_value = DEFAULT_API_ID)]
    pub api_id: String,
    /// The API secret key (the part before the slash in `X-Auth-Token`).
    #[arg(long, value_name = "SECRET", default_value = DEFAULT_API_SECRET)]
    pub api_secret: Secret,
    /// The organisation key expected in paths.
    #[arg(long, value_name = "KEY", default_value = DEFAULT_ORG_KEY)]
    pub org_key: String,
    /// A second key, `SECRET/ID`, that may read and search but not change anything.
    #[arg(long, value_name = "SECRET/ID")]
    pub read_only_key: Option<Secret>,
    /// Pre-fill N private feeds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub feeds: usize,
    /// Reports in each pre-filled feed.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub reports_per_feed: usize,
    /// Pre-fill N realistic alerts over the last seven days.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub alerts: usize,
    /// Seed of the pre-filled data and generated IDs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Most reports one feed holds.
    #[arg(long, value_name = "N", default_value_t = MAX_REPORTS_PER_FEED)]
    pub max_reports_per_feed: usize,
    /// Most IOCs one report holds.
    #[arg(long, value_name = "N", default_value_t = MAX_IOCS_PER_REPORT)]
    pub max_iocs_per_report: usize,
    /// What the per-report IOC limit counts.
    #[arg(long, value_enum, default_value_t = IocCounting::Values)]
    pub ioc_limit_counts: IocCounting,
    /// What a feed report without an `id` gets.
    #[arg(long, value_enum, default_value_t = MissingReportId::Reject)]
    pub missing_report_id: MissingReportId,
    /// The alert search's result window (highest reachable row and most rows per page).
    #[arg(long, value_name = "N", default_value_t = RESULT_WINDOW)]
    pub result_window: usize,
    /// What a search past the result window answers.
    #[arg(long, value_enum, default_value_t = BeyondWindow::BadRequest)]
    pub beyond_window: BeyondWindow,
    /// What a request for another organisation's key answers.
    #[arg(long, value_enum, default_value_t = WrongOrg::NotFound)]
    pub wrong_org: WrongOrg,
    /// Allow N API requests per window, then answer 429 with `Retry-After`.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u64>,
    /// The rate limit's sliding window.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub rate_limit_window_secs: u64,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Fault injection.
    #[command(flatten)]
    pub faults: FaultArgs,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            api_id: DEFAULT_API_ID.to_string(),
            api_secret: Secret::from(DEFAULT_API_SECRET),
            org_key: DEFAULT_ORG_KEY.to_string(),
            read_only_key: None,
            feeds: 0,
            reports_per_feed: 20,
            alerts: 0,
            seed: 1,
            max_reports_per_feed: MAX_REPORTS_PER_FEED,
            max_iocs_per_report: MAX_IOCS_PER_REPORT,
            ioc_limit_counts: IocCounting::Values,
            missing_report_id: MissingReportId::Reject,
            result_window: RESULT_WINDOW,
            beyond_window: BeyondWindow::BadRequest,
            wrong_org: WrongOrg::NotFound,
            rate_limit: None,
            rate_limit_window_secs: 300,
            max_body_bytes: 50 * 1024 * 1024,
            faults: FaultArgs {
                retry_after_secs: 1,
                server_error_status: 500,
                ..FaultArgs::default()
            },
        }
    }
}

impl Args {
    /// The `X-Auth-Token` value clients send: `SECRET/ID`.
    pub fn auth_token(&self) -> String {
        format!("{}/{}", self.api_secret.as_str(), self.api_id)
    }
}

/// A built emulator: what it holds, its fault switches and its request log.
#[derive(Debug, Clone)]
pub struct Emulator {
    /// Feeds, watchlists and alerts.
    pub state: Arc<State>,
    /// The live fault settings.
    pub faults: Arc<Faults>,
    /// Every request answered.
    pub log: Arc<RequestLog>,
}

/// `TooManyRequests` → `TOO_MANY_REQUESTS`; codes already in upper case stay.
fn screaming(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 4);
    for (i, c) in code.chars().enumerate() {
        if c.is_ascii_uppercase()
            && i > 0
            && !out.ends_with('_')
            && code.chars().any(|c| c.is_ascii_lowercase())
        {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Renders an error as `{"error_code":…,"message":…,"success":false}`.
pub fn render_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({
            "error_code": screaming(code),
            "message": message,
            "success": false,
        })),
    )
        .into_response()
}

/// Builds the router (already wrapped by [`common::admin_routes`]) and the emulator's state,
/// pre-filled as `args` say.
pub fn build(args: &Args) -> (axum::Router, Emulator) {
    let state = Arc::new(State::new(
        Config {
            org_key: args.org_key.clone(),
            max_reports_per_feed: args.max_reports_per_feed,
            max_iocs_per_report: args.max_iocs_per_report,
            ioc_counting: args.ioc_limit_counts,
            search: SearchLimits {
                window: args.result_window,
            },
        },
        args.seed,
    ));
    state.seed(args.feeds, args.reports_per_feed, args.alerts, Utc::now());
    let faults = Faults::new(args.faults.clone());
    let log = Arc::new(RequestLog::default());
    let ctx = Arc::new(handlers::Ctx::new(
        state.clone(),
        faults.clone(),
        args.clone(),
    ));
    use handlers as h;
    const FM: &str = "/threathunter/feedmgr/v2/orgs/{org}";
    const WM: &str = "/threathunter/watchlistmgr/v3/orgs/{org}";
    const AL: &str = "/api/alerts/v7/orgs/{org}";
    let api = axum::Router::new()
        .route("/threathunter/feedmgr/healthcheck", get(h::healthcheck))
        .route(
            &format!("{FM}/feeds"),
            get(h::list_feeds).post(h::create_feed),
        )
        .route(&format!("{FM}/feeds/public"), post(h::create_public_feed))
        .route(
            &format!("{FM}/feeds/{{id}}"),
            get(h::get_feed).delete(h::delete_feed),
        )
        .route(&format!("{FM}/feeds/{{id}}/feedinfo"), put(h::put_feedinfo))
        .route(
            &format!("{FM}/feeds/{{id}}/reports"),
            get(h::list_reports).post(h::replace_reports),
        )
        .route(
            &format!("{FM}/feeds/{{id}}/reports/{{report_id}}"),
            put(h::put_report).delete(h::delete_report),
        )
        .route(
            &format!("{WM}/watchlists"),
            get(h::list_watchlists).post(h::create_watchlist),
        )
        .route(
            &format!("{WM}/watchlists/{{id}}"),
            get(h::get_watchlist)
                .put(h::put_watchlist)
                .delete(h::delete_watchlist),
        )
        .route(
            &format!("{WM}/watchlists/{{id}}/{{flag}}"),
            put(h::put_watchlist_flag).delete(h::delete_watchlist_flag),
        )
        .route(&format!("{WM}/reports"), post(h::create_watchlist_report))
        .route(
            &format!("{WM}/reports/{{id}}"),
            get(h::get_watchlist_report)
                .put(h::put_watchlist_report)
                .delete(h::delete_watchlist_report),
        )
        .route(&format!("{AL}/alerts/_search"), post(h::search_alerts))
        .route(&format!("{AL}/alerts/{{id}}"), get(h::get_alert))
        .route("/_sim/state", get(h::get_state).delete(h::clear_state))
        .route("/_sim/alerts", post(h::add_alerts))
        .fallback(h::not_found)
        .method_not_allowed_fallback(h::method_not_allowed)
        .with_state(ctx);
    let router = common::admin_routes(api, faults.clone(), log.clone(), render_error);
    (router, Emulator { state, faults, log })
}

/// Builds the emulator and serves it over HTTPS with a fresh self-signed certificate (in the
/// returned handle's `tls`).
///
/// # Errors
/// When the listener has no local address or the TLS identity cannot be made.
pub async fn start(
    listener: tokio::net::TcpListener,
    args: &Args,
) -> anyhow::Result<(SimHandle, Emulator)> {
    let (router, emulator) = build(args);
    let handle = common::serve(listener, router, Some(TlsIdentity::self_signed()?)).await?;
    Ok((handle, emulator))
}
