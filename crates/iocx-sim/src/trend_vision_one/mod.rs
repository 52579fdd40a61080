//! # Trend Vision One emulator
//!
//! The threat-intel suspicious-object endpoints of Trend Vision One public API v3.0, as written
//! down in `contracts/trend-vision-one.md`: the Suspicious Object List, the Exception List, and
//! the connectivity check. Trend's official Python SDK, `pytmv1` (checked with 0.11.0), works
//! against it unchanged; `tests/sdk_trend_vision_one.rs` proves it.
//!
//! ## Routes
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/v3.0/healthcheck/connectivity` | 200 `{"status":"available"}` |
//! | GET | `/v3.0/threatintel/suspiciousObjects` | 200 `{"items":[…],"nextLink":…}` |
//! | POST | `/v3.0/threatintel/suspiciousObjects` | 207, one `{"status":201}` or error entry per item |
//! | POST | `/v3.0/threatintel/suspiciousObjects/delete` | 207, one `{"status":204}` or error entry per item |
//! | GET | `/v3.0/threatintel/suspiciousObjectExceptions` | 200 `{"items":[…],"nextLink":…}` |
//! | POST | `/v3.0/threatintel/suspiciousObjectExceptions` | 207 (201 per item) |
//! | POST | `/v3.0/threatintel/suspiciousObjectExceptions/delete` | 207 (204 per item) |
//! | GET, DELETE | `/_sim/state` | both lists as JSON; DELETE empties them |
//! | GET, PUT | `/_sim/faults`; GET, DELETE `/_sim/requests` | shared admin routes ([`crate::common`]) |
//!
//! Every API route wants `Authorization: Bearer <--token>`; without it the answer is 401
//! `{"error":{"code":"Unauthorized","message":…}}`. Every error, whole-request or per item, uses
//! the envelope `{"error":{"code":"…","message":"…"}}` with `Content-Type: application/json`.
//!
//! Lists take `top`, `orderBy`, `startDateTime`, `endDateTime` (a range over
//! `lastModifiedDateTime`, both ends inclusive) and the `TMV1-Filter` header (fields `type`, the
//! six value fields, and on the Suspicious Object List `scanAction` and `riskLevel`; operators
//! `eq`, `and`, `or`, `not`, parentheses; values in single quotes; anything else is a 400 naming
//! the column). Pages end with an absolute `nextLink` that repeats the query and adds an opaque
//! `skipToken`: the token holds the sort key of the page's last item (keyset paging, ties broken
//! by a revision counter), so paging neither skips nor repeats items while others are added or
//! deleted, and it also carries the filter, so a client that does not re-send `TMV1-Filter` on
//! the next page still gets filtered pages.
//!
//! Adds validate each item (exactly one value key; value format and length per type;
//! `description` ≤ 1000 characters; `scanAction` block|log; `riskLevel` high|medium|low;
//! `daysToExpiration` -1 or 1..=36500) and answer 207 in request order, refused items as
//! `{"status":400,"body":{"error":{"code":"BadRequest","message":"Invalid request - …"}}}`.
//! Whole-request problems are a plain 400: a body that is not a JSON array, an empty array, more
//! than 1000 suspicious objects or 100 exceptions per request (the same caps on deletes), and a
//! type that would pass its cap of 10,000 objects ("The number of objects exceeds the maximum
//! limit…", which Netskope's plugin treats as "stop pushing"). Bodies over 1 MB get 413 (the
//! rest of the body is read and dropped, up to 4 MB, so a client still sending sees the 413
//! rather than a reset). Exception values may also be patterns: `*.example.com`, IP ranges
//! `a-b` and CIDR blocks.
//! `inExceptionList` is true on a suspicious object whose type and value are also on the
//! Exception List (exact match). Values are the same object when they are equal after this
//! normalisation: hashes, domains and mail addresses case-insensitively, IP addresses by parsed
//! form, URLs exactly.
//!
//! Faults from [`crate::common::Faults`] apply to every API route: 429 with `Retry-After` (its
//! message is Trend's documented "Too many API requests"), 5xx, slow answers, dropped
//! connections, an outage window (503), and `capacity_reached`, which refuses every add on both
//! lists with the per-type cap's 400.
//!
//! ## Pointing pytmv1 at it
//!
//! `pytmv1.init(name, token, "http://127.0.0.1:PORT")`: the SDK appends `/v3.0` itself, accepts
//! plain `http://` and IP hosts, and follows `nextLink` by taking its path after the first five
//! characters (`/v3.0`) and its query, so the host in `nextLink` does not matter to it. Clear
//! `HTTP_PROXY`/`HTTPS_PROXY` for loopback. No TLS is needed; `--tls` serves HTTPS with a
//! self-signed certificate for clients that insist (the certificate is in
//! [`crate::common::SimHandle::tls`]).
//!
//! ## Choices
//!
//! Where the contract marks a fact unconfirmed, the emulator chooses and a flag switches:
//!
//! - **`top`**: documented as 50, 100 or 200, default 100. Other values get a 400 unless
//!   `--lenient-top` (any 1..=200; Netskope's plugin validates a key with `top=1` and is said to
//!   work in production). `--default-top` changes the default.
//! - **`orderBy`**: default `lastModifiedDateTime desc`; a field without a direction sorts
//!   ascending (both per Trend's published parameter descriptions). Not switchable.
//! - **Date range**: `startDateTime` ≤ `lastModifiedDateTime` ≤ `endDateTime`, both inclusive;
//!   `endDateTime` defaults to now, `startDateTime` to the beginning.
//! - **`TMV1-Filter` on next pages**: accepted when re-sent (it wins), else taken from the
//!   `skipToken`. Value comparisons use the normalisation above, not wildcard matching.
//! - **Never-expiring objects** (`daysToExpiration: -1`): `expiredDateTime` is
//!   `9999-12-31T23:59:59Z` (`--never-expires-as`); pytmv1 needs a string there.
//! - **Expired objects**: removed from the list once expired (they are neither listed nor counted
//!   against the cap), unless `--list-expired` keeps them.
//! - **`daysToExpiration: 0`**: refused per item (`--zero-days-to-expiration invalid`); `never`
//!   treats it as -1, `default` as omitted. pytmv1 cannot send 0 at all.
//! - **Defaults of an add**: `riskLevel` high (documented); `scanAction` and `daysToExpiration`
//!   come from the tenant's settings, here `--default-scan-action block` and
//!   `--default-days-to-expiration 30`.
//! - **Re-adding an object already listed**: replaces it (fields the add omits take their
//!   defaults), moves `lastModifiedDateTime`, answers 201 (`--duplicate-add update`); `reject`
//!   answers a per-item 400 instead.
//! - **Unknown keys on an add item** (such as `riskLevel` on an exception): a per-item 400
//!   naming the key, as Netskope saw for exceptions; `--ignore-unknown-fields` accepts and drops
//!   them. Delete items always ignore keys other than the value key (pytmv1 sends `description`).
//! - **Deleting an object that is not listed**: per-item 404 `NotFound` "Not found", as Trend's
//!   mock does (`--delete-missing not-found`); `no-content` answers 204.
//! - **The per-type cap** (`--capacity-per-type`, 10,000): an add that would pass it is refused
//!   whole with 400 and nothing is stored (`--capacity-overflow reject`, what the API showed
//!   Netskope); `evict` drops the objects of that type closest to expiry instead, as the console
//!   describes. The Exception List's cap is undocumented: `--exception-capacity-per-type`,
//!   10,000, always rejecting.
//! - **A batch over the per-request cap**: whole-request 400 "Invalid request - The number of
//!   items in the request (N) exceeds the maximum limit of 1000 per request." Its words differ
//!   from the per-type cap's on purpose, so a client can tell "split the batch" from "the list is
//!   full".
//! - **Body over 1 MB** (1,048,576 bytes, `--max-body-bytes`): 413 in the JSON envelope with code
//!   `RequestEntityTooLarge`; `--body-too-large html` answers a gateway-style HTML page instead.
//! - **Rate limits**: Trend publishes no per-endpoint numbers. Off by default;
//!   `--rate-limit-per-minute N` counts each endpoint over a sliding 60 s window and answers 429
//!   "Too many API requests" with `Retry-After` until the oldest request leaves it.
//! - **401**: code `Unauthorized`, with a message saying whether the header was missing or the
//!   key was wrong (the real wording is unknown).
//! - **Content-Type**: any `application/json…` is accepted on POSTs; anything else is a 400.

mod data;
mod filter;
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
use axum::routing::{get, post};
use chrono::Utc;

use crate::common::{self, FaultArgs, Faults, RequestLog, SimHandle, TlsIdentity};

pub use data::{
    CapacityOverflow, Cursor, DeleteMissing, DuplicateAdd, ListQuery, Order, OrderField, Page,
    SkipToken, State, capacity_message,
};
pub use filter::{Filter, FilterError, ListKind, MAX_FILTER_CHARS, Subject, parse as parse_filter};
pub use model::{
    ExceptionObject, ItemError, ItemRules, ObjectRef, ObjectType, RiskLevel, ScanAction,
    SuspiciousAdd, SuspiciousObject, TIME_FORMAT, ZeroDays, format_time,
};

/// The documented cap of objects per type on the Suspicious Object List.
pub const DEFAULT_CAPACITY_PER_TYPE: usize = 10_000;
/// The most suspicious objects one add or delete request may carry.
pub const MAX_OBJECTS_PER_REQUEST: usize = 1000;
/// The most exceptions one add or delete request may carry.
pub const MAX_EXCEPTIONS_PER_REQUEST: usize = 100;
/// The largest request body: 1 MB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// What `expiredDateTime` holds for objects that never expire (unconfirmed; see Choices).
pub const NEVER_EXPIRES_AS: &str = "9999-12-31T23:59:59Z";

/// The API key the emulator accepts. Its `Debug` form hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(****)")
    }
}

impl FromStr for Token {
    type Err = String;

    fn from_str(s: &str) -> Result<Token, String> {
        if s.is_empty() {
            Err("the token must not be empty".to_string())
        } else {
            Ok(Token(s.to_string()))
        }
    }
}

impl From<&str> for Token {
    fn from(s: &str) -> Token {
        Token(s.to_string())
    }
}

/// How a body over the size limit is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BodyTooLarge {
    /// 413 in Trend's JSON error envelope.
    Json,
    /// 413 as a gateway's HTML page.
    Html,
}

/// The `iocx sim trend-vision-one` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// The API key clients must send as `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "TOKEN")]
    pub token: Token,
    /// Pre-fill the Suspicious Object List with N realistic objects of every type.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub objects: usize,
    /// Pre-fill the Exception List with N exceptions of every type.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub exceptions: usize,
    /// Seed of the pre-filled data (the same seed gives the same objects).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Most suspicious objects held per object type.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CAPACITY_PER_TYPE)]
    pub capacity_per_type: usize,
    /// Most exceptions held per object type (undocumented).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CAPACITY_PER_TYPE)]
    pub exception_capacity_per_type: usize,
    /// What an add that would pass the per-type cap does.
    #[arg(long, value_enum, default_value_t = CapacityOverflow::Reject)]
    pub capacity_overflow: CapacityOverflow,
    /// Most items in one suspicious-object add or delete request.
    #[arg(long, value_name = "N", default_value_t = MAX_OBJECTS_PER_REQUEST)]
    pub max_objects_per_request: usize,
    /// Most items in one exception add or delete request.
    #[arg(long, value_name = "N", default_value_t = MAX_EXCEPTIONS_PER_REQUEST)]
    pub max_exceptions_per_request: usize,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// How a body over the size limit is answered.
    #[arg(long, value_enum, default_value_t = BodyTooLarge::Json)]
    pub body_too_large: BodyTooLarge,
    /// Page size when a list request has no `top`.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub default_top: usize,
    /// Accept any `top` from 1 to 200, not only the documented 50, 100 and 200.
    #[arg(long)]
    pub lenient_top: bool,
    /// `scanAction` of an added object that has none (the tenant's default setting).
    #[arg(long, value_enum, default_value_t = ScanAction::Block)]
    pub default_scan_action: ScanAction,
    /// `daysToExpiration` of an added object that has none (-1 = never).
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 30,
        allow_negative_numbers = true
    )]
    pub default_days_to_expiration: i64,
    /// What `daysToExpiration: 0` means.
    #[arg(long, value_enum, default_value_t = ZeroDays::Invalid)]
    pub zero_days_to_expiration: ZeroDays,
    /// `expiredDateTime` of objects that never expire.
    #[arg(long, value_name = "TIMESTAMP", default_value = NEVER_EXPIRES_AS)]
    pub never_expires_as: String,
    /// Keep listing (and counting) suspicious objects after they expire.
    #[arg(long)]
    pub list_expired: bool,
    /// What deleting an object that is not listed answers per item.
    #[arg(long, value_enum, default_value_t = DeleteMissing::NotFound)]
    pub delete_missing: DeleteMissing,
    /// What re-adding an object that is already listed does.
    #[arg(long, value_enum, default_value_t = DuplicateAdd::Update)]
    pub duplicate_add: DuplicateAdd,
    /// Accept and drop unknown keys on add items instead of refusing the item.
    #[arg(long)]
    pub ignore_unknown_fields: bool,
    /// Answer 429 when one endpoint gets more than N requests in 60 seconds.
    #[arg(long, value_name = "N")]
    pub rate_limit_per_minute: Option<u64>,
    /// Serve HTTPS with a self-signed certificate for 127.0.0.1 and localhost.
    #[arg(long)]
    pub tls: bool,
    /// Fault injection.
    #[command(flatten)]
    pub faults: FaultArgs,
}

impl Args {
    /// The flags' defaults with this token (for tests and in-process use).
    pub fn new(token: &str) -> Args {
        Args {
            token: Token::from(token),
            objects: 0,
            exceptions: 0,
            seed: 1,
            capacity_per_type: DEFAULT_CAPACITY_PER_TYPE,
            exception_capacity_per_type: DEFAULT_CAPACITY_PER_TYPE,
            capacity_overflow: CapacityOverflow::Reject,
            max_objects_per_request: MAX_OBJECTS_PER_REQUEST,
            max_exceptions_per_request: MAX_EXCEPTIONS_PER_REQUEST,
            max_body_bytes: MAX_BODY_BYTES,
            body_too_large: BodyTooLarge::Json,
            default_top: 100,
            lenient_top: false,
            default_scan_action: ScanAction::Block,
            default_days_to_expiration: 30,
            zero_days_to_expiration: ZeroDays::Invalid,
            never_expires_as: NEVER_EXPIRES_AS.to_string(),
            list_expired: false,
            delete_missing: DeleteMissing::NotFound,
            duplicate_add: DuplicateAdd::Update,
            ignore_unknown_fields: false,
            rate_limit_per_minute: None,
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
    /// Both lists.
    pub state: Arc<State>,
    /// The live fault settings.
    pub faults: Arc<Faults>,
    /// Every request answered.
    pub log: Arc<RequestLog>,
}

/// Renders an error in Trend's envelope, `{"error":{"code":…,"message":…}}`. A 429 always
/// carries Trend's documented message "Too many API requests".
pub fn render_error(status: StatusCode, code: &str, message: &str) -> Response {
    let message = if status == StatusCode::TOO_MANY_REQUESTS {
        "Too many API requests"
    } else {
        message
    };
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// Builds the router (already wrapped by [`common::admin_routes`] with Trend's error renderer)
/// and the emulator's state, pre-filled as `args` say.
pub fn build(args: &Args) -> (axum::Router, Emulator) {
    let state = Arc::new(State::new(data::Config {
        capacity_per_type: args.capacity_per_type,
        exception_capacity_per_type: args.exception_capacity_per_type,
        capacity_overflow: args.capacity_overflow,
        duplicate_add: args.duplicate_add,
        delete_missing: args.delete_missing,
        list_expired: args.list_expired,
        never_expires_as: args.never_expires_as.clone(),
    }));
    state.seed(args.objects, args.exceptions, args.seed, Utc::now());
    let faults = Faults::new(args.faults.clone());
    let log = Arc::new(RequestLog::default());
    let ctx = Arc::new(handlers::Ctx::new(
        state.clone(),
        faults.clone(),
        args.clone(),
    ));
    let api = axum::Router::new()
        .route(
            "/v3.0/healthcheck/connectivity",
            get(handlers::connectivity),
        )
        .route(
            "/v3.0/threatintel/suspiciousObjects",
            get(handlers::list_suspicious).post(handlers::add_suspicious),
        )
        .route(
            "/v3.0/threatintel/suspiciousObjects/delete",
            post(handlers::delete_suspicious),
        )
        .route(
            "/v3.0/threatintel/suspiciousObjectExceptions",
            get(handlers::list_exceptions).post(handlers::add_exceptions),
        )
        .route(
            "/v3.0/threatintel/suspiciousObjectExceptions/delete",
            post(handlers::delete_exceptions),
        )
        .route(
            "/_sim/state",
            get(handlers::get_state).delete(handlers::clear_state),
        )
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(ctx);
    let router = common::admin_routes(api, faults.clone(), log.clone(), render_error);
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
