//! # Netskope tenant emulator
//!
//! The parts of a Netskope tenant's REST API that iocx (and Netskope's own Cloud Threat Exchange
//! plugin) use, as a real HTTP server on loopback:
//!
//! - **Data Export iterator** (`GET /api/v2/events/dataexport/alerts/{malware|malsite}?index=NAME
//!   &operation=head|tail|next|resend|EPOCH`): a server-side cursor per (alert type, `index`),
//!   pages in the envelope `{"ok":1,"result":[…],"wait_time":S,"timestamp_hwm":EPOCH}`, gzip when
//!   the client accepts it, and `ratelimit-limit`/`ratelimit-remaining`/`ratelimit-reset` headers.
//!   The other alert types the real endpoint knows (`dlp`, `uba`, …) answer with empty pages.
//! - **URL lists** (`/api/v2/policy/urllist`): list (`pending`, `field`, `limit`, `offset`),
//!   create, get, `PUT` replace, `PATCH /{id}/append` and `/{id}/replace`, delete, and
//!   `POST /api/v2/policy/urllist/deploy`, which applies every pending change. Each list keeps a
//!   pending working copy beside the deployed version. Entries are checked as the tenant does
//!   (no spaces or non-ASCII, scheme ignored, no `user:pass@`, one `*` at most and only as a
//!   leading `*.`, no IPv6, regex entries must compile); a request with invalid entries is
//!   refused whole with `400 {"message": [[entry, reason], …]}`, so a client can retry without
//!   them. Size limits: 7 MB of JSON-encoded entries and 300,000 entries per list.
//! - **File-hash list** (v1 `/api/v1/updateFileHashList`, POST with a JSON or form body, or
//!   GET/PUT/PATCH with query parameters; `token`, `name`, `list`): replaces the content of a
//!   named list with the comma-separated MD5/SHA-256 hashes, up to 8 MB; sending the same set
//!   again answers `{"status":"error","errors":["Duplicate request, no change in file hashes"]}`,
//!   which clients treat as success.
//! - **Auth**: v2 needs `Netskope-Api-Token: TOKEN` (or `Authorization: Bearer TOKEN`): none or a
//!   wrong one gets `401 {"message": …}`; the `--read-only-token` gets `403` on writes. v1 needs
//!   the v1 token as `token` in the query, the JSON body or the form body.
//! - **Admin** (no auth, never faulted): `GET`/`DELETE /_sim/state`, `POST /_sim/alerts`,
//!   plus the shared `/_sim/faults` and `/_sim/requests`.
//!
//! Injected faults come from [`crate::common::Faults`]; they are rendered in the v2 envelope
//! (`{"message": …}`), or in the v1 envelope on v1 paths. A dropped connection happens after the
//! handler ran (the iterator has advanced and the body breaks half-way), which is the case the
//! `resend` operation exists for.
//!
//! ## Choices
//!
//! Where the contract (`contracts/vendors.md` §1) leaves a fact unconfirmed, the emulator
//! chooses as follows; each choice has a flag.
//!
//! - **Page size**: at most 10,000 alerts per page (`--page-size`).
//! - **`wait_time`**: `0` when more data is waiting behind the page, otherwise the configured
//!   value (`--wait-time`, default 5 s; CE assumes 30 s when the key is missing).
//!   A `next` that arrives before that time has run out is served anyway by default;
//!   `--early-next empty` answers an empty page with the seconds left and leaves the cursor alone,
//!   `--early-next reject` answers 429 with `Retry-After`.
//! - **`timestamp_hwm`**: now, when the page reached the end of the data; otherwise the indexing
//!   time (`_insertion_epoch_timestamp`) of the page's last alert, or the end of the epoch window
//!   when the window cut the page.
//! - **Epoch operation**: positions the cursor at the first alert indexed at or after the epoch
//!   and answers the alerts of the following hour (`--epoch-window-secs`, 0 for no window); `next`
//!   pages are bounded by size only.
//! - **`head`/`tail`**: `head` answers the first page of everything retained; `tail` positions the
//!   cursor at now and answers an empty page. `resend` repeats the last page with the same
//!   `wait_time` and `timestamp_hwm`; before any page it answers an empty page.
//! - **Cursor key**: (alert type, `index`), not the token; a missing `index` is an iterator of its
//!   own with the empty name. A `next` on an index never used before starts at the oldest alert
//!   (`--new-index-start head`) or at now (`tail`).
//! - **Ordering**: alerts are served in indexing order, and new alerts are always indexed after
//!   every stored one, so `next` never skips or repeats an alert however alerts arrive.
//! - **Rate limits**: one window per v2 token over all v2 endpoints, 600 requests per 60 s
//!   (`--rate-limit`, `--rate-limit-window-secs`; 0 disables), headers on every v2 answer, and
//!   `429 {"message": …}` with `Retry-After` when spent. v1: 24 requests per 5 s per token
//!   (`--v1-rate-limit`, `--v1-rate-limit-window-secs`), 429 in the v1 envelope.
//! - **Error statuses and texts**: v2 errors are `{"message": "…"}` (the OAS `400Response`); an
//!   unknown list id is 404; the list size limit, an empty list, a taken name and the capacity
//!   fault are 400 with a string `message`, invalid entries 400 with an array `message`. v1
//!   errors are `{"status":"error","errorCode":"General Error","errors":[…]}` answered with HTTP
//!   200 (`--v1-error-status`); the duplicate answer is always HTTP 200, as CE's handling of it
//!   requires (CE reads the body only after a successful status). 401/403/429 texts are the
//!   emulator's own; clients should key on the status, not the text.
//! - **`pending` query parameter**: absent shows every list as its working copy, `pending=0` the
//!   deployed versions only, `pending=1` only the lists with changes waiting.
//! - **Empty lists**: refused (CE keeps a placeholder entry for that reason); `--allow-empty-url-lists`
//!   accepts them. IPv4 entries are accepted unless `--deny-ip-entries`.
//! - **Size accounting**: a URL list's size is the compact JSON encoding of its entries; the limits
//!   apply to the whole working copy after the change (`--url-list-max-bytes`,
//!   `--url-list-max-entries`). A file-hash list's size is the comma-joined list
//!   (`--file-hash-max-bytes`, `--file-hash-max-entries`).
//! - **File-hash lists**: must exist on the tenant (`--file-hash-list NAME`, repeatable; default
//!   `iocx-file-hashes`); an unknown name is an error unless `--file-hash-unknown-list create`.
//!   Any invalid hash refuses the whole request. "Same content" means the same set of hashes,
//!   ignoring order, case and duplicates. The change applies at once (no deploy step).
//! - **Body size**: requests over 16 MiB (`--max-body-bytes`) get 413 in the vendor's envelope.
//! - **Alert values**: `alert_type` is `Malware` for malware alerts and `malsite` for malsite
//!   alerts (CE compares it ignoring case); each alert carries `_id` and
//!   `_insertion_epoch_timestamp` (its indexing time) beside about 40 of the OAS keys.
//! - **Not emulated**: the older `/api/v2/events/data/alert` query endpoint, the
//!   `/api/v2/events/datasearch/alert` search, `/api/v2/policy/urllist/file` bulk upload, and
//!   `/api/v2/policy/deploy` (the path netskope-py-sdk 1.0.3 and the CLI use; the OAS and CE use
//!   `/api/v2/policy/urllist/deploy`). netskope-py-sdk 1.0.3 also sends flat
//!   `{"name","urls","type"}` bodies on create/update; they get the same 400 as any body without
//!   `data.urls`, which is what the API's own validation messages describe.

mod data;
mod handlers;
pub mod model;
mod state;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use state::{
    DUPLICATE_FILE_HASH_REQUEST, ExportAnswer, FileHashError, FileHashList, ListError, ListView,
    MODIFY_BY, Operation, RateVerdict, State, UpdateAction,
};

use crate::common::{self, FaultArgs, Faults, RequestLog, SimHandle, TlsIdentity};
use model::MIB;

/// What a `next` does when it comes before the last page's `wait_time` has run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EarlyNext {
    /// Serve the next page anyway.
    Serve,
    /// Answer an empty page with the seconds left as `wait_time`; the cursor stays.
    Empty,
    /// Answer 429 with `Retry-After`; the cursor stays.
    Reject,
}

/// Where a `next` on an index never used before starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NewIndexStart {
    /// At the oldest retained alert.
    Head,
    /// At now.
    Tail,
}

/// What `updateFileHashList` does with a list name the tenant does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnknownFileHashList {
    /// Answer an error, as for a list not created in the tenant's UI.
    Error,
    /// Create the list.
    Create,
}

/// The `iocx sim netskope` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The v2 API token, expected in the `Netskope-Api-Token` header.
    #[arg(long, value_name = "TOKEN", default_value = "netskope-sim-v2-token")]
    pub token: String,
    /// The v1 token for `/api/v1/updateFileHashList` (defaults to the v2 token).
    #[arg(long = "v1-token", value_name = "TOKEN")]
    pub v1_token: Option<String>,
    /// A v2 token that may only read: writes answer 403.
    #[arg(long = "read-only-token", value_name = "TOKEN")]
    pub read_only_token: Option<String>,
    /// Alerts to pre-generate (about half malware, half malsite) over the last 30 days.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub alerts: usize,
    /// Keep generating this many new alerts per minute while running.
    #[arg(long = "alert-rate", value_name = "PER_MIN")]
    pub alert_rate: Option<f64>,
    /// Seed for the generated data.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Maximum alerts per iterator page.
    #[arg(long = "page-size", value_name = "N", default_value_t = 10_000)]
    pub page_size: usize,
    /// `wait_time` (seconds) answered when the iterator has caught up.
    #[arg(long = "wait-time", value_name = "SECONDS", default_value_t = 5)]
    pub wait_time: u64,
    /// What a `next` before `wait_time` has run out gets.
    #[arg(long = "early-next", value_enum, default_value_t = EarlyNext::Serve)]
    pub early_next: EarlyNext,
    /// Where `next` on a new index starts.
    #[arg(long = "new-index-start", value_enum, default_value_t = NewIndexStart::Head)]
    pub new_index_start: NewIndexStart,
    /// The span an epoch operation's page covers, in seconds (0: no window).
    #[arg(
        long = "epoch-window-secs",
        value_name = "SECONDS",
        default_value_t = 3600
    )]
    pub epoch_window_secs: u64,
    /// v2 requests allowed per token per window (0: unlimited).
    #[arg(long = "rate-limit", value_name = "N", default_value_t = 600)]
    pub rate_limit: u32,
    /// The v2 rate-limit window in seconds.
    #[arg(
        long = "rate-limit-window-secs",
        value_name = "SECONDS",
        default_value_t = 60
    )]
    pub rate_limit_window_secs: u64,
    /// v1 requests allowed per token per window (0: unlimited).
    #[arg(long = "v1-rate-limit", value_name = "N", default_value_t = 24)]
    pub v1_rate_limit: u32,
    /// The v1 rate-limit window in seconds.
    #[arg(
        long = "v1-rate-limit-window-secs",
        value_name = "SECONDS",
        default_value_t = 5
    )]
    pub v1_rate_limit_window_secs: u64,
    /// The HTTP status of v1 `status: error` answers.
    #[arg(long = "v1-error-status", value_name = "STATUS", default_value_t = 200)]
    pub v1_error_status: u16,
    /// Maximum size of a URL list: bytes of its JSON-encoded entries.
    #[arg(long = "url-list-max-bytes", value_name = "BYTES", default_value_t = 7 * MIB)]
    pub url_list_max_bytes: usize,
    /// Maximum entries in a URL list.
    #[arg(
        long = "url-list-max-entries",
        value_name = "N",
        default_value_t = 300_000
    )]
    pub url_list_max_entries: usize,
    /// Accept URL lists with no entry.
    #[arg(long = "allow-empty-url-lists")]
    pub allow_empty_url_lists: bool,
    /// Refuse IPv4 addresses in exact URL lists (a tenant without the feature).
    #[arg(long = "deny-ip-entries")]
    pub deny_ip_entries: bool,
    /// File-hash lists that exist on the tenant (repeatable).
    #[arg(
        long = "file-hash-list",
        value_name = "NAME",
        default_value = "iocx-file-hashes"
    )]
    pub file_hash_lists: Vec<String>,
    /// What an update of an unknown file-hash list does.
    #[arg(long = "file-hash-unknown-list", value_enum, default_value_t = UnknownFileHashList::Error)]
    pub file_hash_unknown_list: UnknownFileHashList,
    /// Maximum size of a file-hash list: bytes of the comma-joined hashes.
    #[arg(long = "file-hash-max-bytes", value_name = "BYTES", default_value_t = 8 * MIB)]
    pub file_hash_max_bytes: usize,
    /// Maximum hashes in a file-hash list.
    #[arg(
        long = "file-hash-max-entries",
        value_name = "N",
        default_value_t = 300_000
    )]
    pub file_hash_max_entries: usize,
    /// Largest request body accepted.
    #[arg(long = "max-body-bytes", value_name = "BYTES", default_value_t = 16 * MIB)]
    pub max_body_bytes: usize,
    /// Serve HTTPS with a self-signed certificate for 127.0.0.1 and localhost.
    #[arg(long)]
    pub tls: bool,
    /// Injected faults.
    #[command(flatten)]
    pub faults: FaultArgs,
}

impl Default for Args {
    fn default() -> Args {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: Args,
        }
        // Parsing no flags cannot fail: every field has a default.
        Wrapper::try_parse_from(["netskope"])
            .map(|w| w.args)
            .unwrap_or_else(|_| Args::fallback())
    }
}

impl Args {
    fn fallback() -> Args {
        Args {
            token: "netskope-sim-v2-token".to_string(),
            v1_token: None,
            read_only_token: None,
            alerts: 200,
            alert_rate: None,
            seed: 1,
            page_size: 10_000,
            wait_time: 5,
            early_next: EarlyNext::Serve,
            new_index_start: NewIndexStart::Head,
            epoch_window_secs: 3600,
            rate_limit: 600,
            rate_limit_window_secs: 60,
            v1_rate_limit: 24,
            v1_rate_limit_window_secs: 5,
            v1_error_status: 200,
            url_list_max_bytes: 7 * MIB,
            url_list_max_entries: 300_000,
            allow_empty_url_lists: false,
            deny_ip_entries: false,
            file_hash_lists: vec!["iocx-file-hashes".to_string()],
            file_hash_unknown_list: UnknownFileHashList::Error,
            file_hash_max_bytes: 8 * MIB,
            file_hash_max_entries: 300_000,
            max_body_bytes: 16 * MIB,
            tls: false,
            faults: FaultArgs {
                retry_after_secs: 1,
                server_error_status: 500,
                ..FaultArgs::default()
            },
        }
    }

    /// The v1 token in force (the v2 token unless `--v1-token` is given).
    pub fn v1_token(&self) -> &str {
        self.v1_token.as_deref().unwrap_or(&self.token)
    }
}

/// A running (or buildable) emulator's shared parts.
#[derive(Debug, Clone)]
pub struct Emulator {
    /// What the tenant holds.
    pub state: Arc<State>,
    /// The live fault settings.
    pub faults: Arc<Faults>,
    /// Every request answered.
    pub log: Arc<RequestLog>,
}

/// Marks a response rendered for an injected fault, so v1 paths can re-render it in the v1
/// envelope.
#[derive(Debug, Clone)]
struct InjectedError(String);

/// Renders an injected fault in the v2 envelope (`{"message": …}`); see [`v1_envelope`].
fn render_fault(status: StatusCode, _code: &str, message: &str) -> Response {
    let mut response = v2_error(status, message);
    response
        .extensions_mut()
        .insert(InjectedError(message.to_string()));
    response
}

/// A v2 error: `{"message": "…"}`.
pub(crate) fn v2_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}

/// A v1 error: `{"status":"error","errorCode":"General Error","errors":[…]}`.
pub(crate) fn v1_error(status: StatusCode, errors: Vec<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({
            "status": "error",
            "errorCode": "General Error",
            "errors": errors,
        })),
    )
        .into_response()
}

/// Re-renders injected faults on `/api/v1/` paths in the v1 envelope, keeping status and headers.
async fn v1_envelope(request: Request, next: Next) -> Response {
    let is_v1 = request.uri().path().starts_with("/api/v1/");
    let response = next.run(request).await;
    if !is_v1 {
        return response;
    }
    let Some(InjectedError(message)) = response.extensions().get::<InjectedError>().cloned() else {
        return response;
    };
    let (mut parts, _body) = response.into_parts();
    let fresh = v1_error(parts.status, vec![message]);
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        fresh_parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json")),
    );
    Response::from_parts(parts, body)
}

/// Builds the emulator's router (already wrapped with the fault layer and the admin routes) and
/// its shared parts.
pub fn build(args: &Args) -> (Router, Emulator) {
    let faults = Faults::new(args.faults.clone());
    // The iterator must have advanced when a connection breaks mid-answer: that is what `resend`
    // is for.
    faults.set_drop_after_answer(true);
    let log = Arc::new(RequestLog::default());
    let state = Arc::new(State::new(args, faults.clone()));
    let router = handlers::router(state.clone());
    let router = common::admin_routes(router, faults.clone(), log.clone(), render_fault)
        .layer(axum::middleware::from_fn(v1_envelope));
    (router, Emulator { state, faults, log })
}

/// Builds the emulator and serves it on `listener` (HTTPS with `--tls`); with `--alert-rate`,
/// a task keeps adding alerts until the emulator is dropped.
///
/// # Errors
/// When the listener has no address or the TLS identity cannot be made.
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
    if let Some(rate) = args.alert_rate.filter(|r| r.is_finite() && *r > 0.0) {
        spawn_alert_generator(Arc::downgrade(&emulator.state), rate);
    }
    Ok((handle, emulator))
}

fn spawn_alert_generator(state: std::sync::Weak<State>, per_minute: f64) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let per_tick = per_minute / 240.0;
        let mut due = 0.0f64;
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else {
                break;
            };
            due += per_tick;
            while due >= 1.0 {
                state.generate_alert();
                due -= 1.0;
            }
        }
    });
}
