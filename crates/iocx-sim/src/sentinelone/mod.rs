//! # SentinelOne emulator
//!
//! The threat-intelligence IOC endpoints of the SentinelOne management console (API 2.1), the
//! threats list that Netskope's plugin pulls hashes from, the site look-up and the system
//! version, as written down in `contracts/vendors.md` §3 and `contracts/netskope-cte-anchor.md`
//! §5.3. SentinelOne publishes no official Python SDK (the contract has none in scope), so
//! `tests/sentinelone.rs` drives it over HTTP the way Netskope's plugin does.
//!
//! ## Routes
//!
//! All under `/web/api/v2.1`:
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/threat-intelligence/iocs` | `{"data":[ioc…],"pagination":{"nextCursor","totalItems"}}` |
//! | POST | `/threat-intelligence/iocs` | `{"filter":{scope},"data":[ioc…]}` → 200 `{"data":[ioc…]}` |
//! | DELETE | `/threat-intelligence/iocs` | `{"filter":{scope?, selectors}}` → 200 `{"data":{"affected":N}}` |
//! | GET | `/threats` | threats with `threatInfo.{sha1,sha256,md5,…}`, cursor paging |
//! | GET | `/sites` | `{"data":{"allSites":{…},"sites":[…]},"pagination":{…}}` |
//! | GET | `/system/info` | `{"data":{"build","patch","release","version"}}` |
//!
//! and `GET`/`DELETE /_sim/state`, `POST /_sim/threats` (adds threats), plus the shared
//! `/_sim/faults` and `/_sim/requests` ([`crate::common`]).
//!
//! Every API route wants `Authorization: ApiToken <--token>`; without it the answer is 401
//! `{"errors":[{"code":4010010,"detail":null,"title":"Authentication Failed"}]}`. Every error
//! uses that envelope; validation errors are 400 code 4000010 "Validation Error" with a
//! `detail` in the console's style (`siteIds: 0: Must be greater than or equal to
//! 100000000000000000.`).
//!
//! **Listing** (IOCs and threats): `limit` 1–1000 (default 10), `cursor` (opaque; keyset paging
//! on the sort key, so pages neither skip nor repeat while IOCs change), `skip` 0–1000 (after
//! the cursor), `skipCount` (`totalItems: null`), `countOnly` (no data), `sortBy`, `sortOrder`.
//! Scope: `accountIds`, `siteIds` (ids of 18+ digits), `tenant=true`. IOC filters: `type` (comma
//! list), `value` (compared by identity: hashes and domains without case, IPs by parsed form),
//! `source`, `externalId`, `uuids`, `batchId`, `name__contains`, `creator__contains`,
//! `description__contains`, `category__in`, `labels__in`, `severity`, and `__gt`, `__gte`,
//! `__lt`, `__lte` on `updatedAt`, `uploadTime`, `creationTime`, `validUntil`. Threat filters:
//! `ids`, `analystVerdicts`, `classifications`, `contentHashes`, and the comparisons on
//! `createdAt` and `updatedAt`. `nextCursor` is `null` on the last page.
//!
//! **Create**: at most 2,500 IOCs (`--max-per-request`). Each needs `type` (DNS, IPV4, IPV6,
//! MD5, SHA1, SHA256, URL, upper case), a `value` of that form, `method: "EQUALS"` and `source`;
//! `name`, `description`, `externalId`, `severity` (0–7), `creationTime`, `validUntil`, the
//! list fields (`labels`, `category`, `mitreTactic`, `threatActors`, `intrusionSets`,
//! `reference`), `metadata` and `originalRiskScore` are optional. `validUntil` defaults to the
//! upload time plus 14 days (IP), 90 days (URL, DNS) or 180 days (hashes); a later one is cut to
//! 30/180/180 days; a past one is refused. IOCs whose `validUntil` passed are no longer listed.
//!
//! Faults from [`crate::common::Faults`] apply to every API route, in the SentinelOne envelope
//! (code = status × 10,000 + 10); `capacity_reached` refuses every create.
//!
//! ## Choices
//!
//! The contract marks several facts unconfirmed; the emulator chooses as follows, each with a
//! flag.
//!
//! - **Invalid IOCs in a batch**: the whole batch is refused with 400 and nothing is stored
//!   (`--invalid-iocs reject-batch`); `errors[0].detail` is a JSON string
//!   `{"errors":[{"value","type","message"}]}` naming every invalid IOC, the shape Netskope's
//!   plugin parses to drop them and retry (`--error-detail-style python` writes it as a Python
//!   dict literal instead, which the plugin also reads). `skip-invalid` stores the valid ones
//!   and answers 200 with them only.
//! - **A create without a scope** (`"filter": {}`): refused with 400 (`filter: Must include a
//!   scope…`); `--implicit-scope` uses the token's own scope (the tenant for a global user, its
//!   account for an account user), as Netskope's plugin expects for account users.
//! - **The token's user** (`--user-scope global|account`, default global): an account user
//!   cannot use `tenant=true` (403 code 4030010) and sees only its account. Account and site
//!   ids that are not the emulated account (`--account-id`) or its sites (`--site`) are 403.
//!   Group scopes are not emulated (400).
//! - **Scope of listings and deletes**: a scope selects IOCs *within* it (the tenant holds
//!   everything; an account holds its own IOCs and those of its sites). Deletes need at least
//!   one selector (`uuids`, `value`, `type`, `source`, `externalId`, `batchId`) besides the
//!   scope, so `{"filter":{"tenant":true}}` cannot wipe the console; without a scope they apply
//!   to everything the token sees.
//! - **Uploading an IOC that exists** (same scope, type and value): it is replaced, keeps its
//!   `uuid`, and gets the new `batchId`, `uploadTime` and `updatedAt`. Not switchable.
//! - **`validUntil` past the cap**: cut to the cap (`--reject-valid-until-over-cap` refuses it).
//! - **Expired IOCs**: dropped once `validUntil` passes (`--list-expired` keeps them).
//! - **Unknown query parameters and filter keys**: 400 `NAME: Unknown field.`
//!   (`--ignore-unknown-params` ignores unknown query parameters).
//! - **What `cursor` carries**: `sortBy`, `sortOrder` and the last key, not the filters: each
//!   page applies the filters it is sent with (clients repeat the query). A cursor used with
//!   another order is a 400.
//! - **Default order**: `sortBy=id` (upload order; threats by id), ascending.
//! - **Capacity**: none by default; `--capacity N` refuses creates that would pass N IOCs with
//!   400 code 4000030 "Limit Exceeded".
//! - **Rate limits**: undocumented; off by default. `--rate-limit-per-minute N` answers 429 code
//!   4290010 "Too Many Requests" with `Retry-After` once the token made N requests in a sliding
//!   minute.
//! - **`scope` on the wire**: `global` (with `scopeId: null`), `account` or `site`.
//! - **Not emulated**: the STIX import (`/threat-intelligence/iocs/stix`), group scopes,
//!   multi-account tokens, and the many threat filters the plugin does not send.

mod data;
mod handlers;
pub mod model;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;

use crate::common::{self, FaultArgs, Faults, RequestLog, SimHandle, TlsIdentity};

pub use data::{
    Cmp, CreateError, Cursor, InvalidIocs, IocFilter, Page, Paging, Site, SortValue, State,
    ThreatFilter,
};
pub use handlers::{MIN_ID, python_repr};

/// The prefix of every API path.
pub const API: &str = "/web/api/v2.1";
/// The most IOCs one create may carry.
pub const MAX_PER_REQUEST: usize = 2500;
/// The emulated account's id unless `--account-id` says otherwise.
pub const ACCOUNT_ID: &str = "1100000000000000001";

/// An API token. Its `Debug` form hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The token.
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

/// The scope of the user the API token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UserScope {
    /// A global user: `tenant=true` works and every account and site is visible.
    Global,
    /// An account user: its account and sites only.
    Account,
}

/// How the partial-failure `detail` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ErrorDetailStyle {
    /// A JSON string.
    Json,
    /// A Python dict literal.
    Python,
}

/// The `iocx sim sentinelone` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// The API token clients must send as `Authorization: ApiToken TOKEN`.
    #[arg(long, value_name = "TOKEN")]
    pub token: Token,
    /// Pre-fill N realistic IOCs (spread over the seven types).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub iocs: usize,
    /// Pre-fill N threats carrying file hashes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threats: usize,
    /// Seed of the pre-filled data (the same seed gives the same IOCs).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// The emulated account's id.
    #[arg(long, value_name = "ID", default_value = ACCOUNT_ID)]
    pub account_id: String,
    /// The emulated account's name.
    #[arg(long, value_name = "NAME", default_value = "iocx demo")]
    pub account_name: String,
    /// The account's sites, by name (repeatable; ids follow the account id).
    #[arg(long = "site", value_name = "NAME", default_values_t = ["Default site".to_string(), "iocx lab".to_string()])]
    pub sites: Vec<String>,
    /// The scope of the token's user.
    #[arg(long, value_enum, default_value_t = UserScope::Global)]
    pub user_scope: UserScope,
    /// `creator` of uploaded IOCs (the token's user).
    #[arg(long, value_name = "NAME", default_value = "iocx-sim@example.com")]
    pub creator: String,
    /// Most IOCs held (none by default).
    #[arg(long, value_name = "N")]
    pub capacity: Option<usize>,
    /// Most IOCs in one create.
    #[arg(long, value_name = "N", default_value_t = MAX_PER_REQUEST)]
    pub max_per_request: usize,
    /// `limit` when a listing has none.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub default_limit: usize,
    /// What a create with invalid IOCs does.
    #[arg(long, value_enum, default_value_t = InvalidIocs::RejectBatch)]
    pub invalid_iocs: InvalidIocs,
    /// How the invalid IOCs are written into `errors[0].detail`.
    #[arg(long, value_enum, default_value_t = ErrorDetailStyle::Json)]
    pub error_detail_style: ErrorDetailStyle,
    /// A create without a scope uses the token's own scope instead of being refused.
    #[arg(long)]
    pub implicit_scope: bool,
    /// Refuse a `validUntil` past the type's cap instead of cutting it.
    #[arg(long)]
    pub reject_valid_until_over_cap: bool,
    /// Keep listing IOCs after their `validUntil`.
    #[arg(long)]
    pub list_expired: bool,
    /// Ignore unknown query parameters instead of refusing them.
    #[arg(long)]
    pub ignore_unknown_params: bool,
    /// Answer 429 once the token made more than N requests in a sliding minute.
    #[arg(long, value_name = "N")]
    pub rate_limit_per_minute: Option<u64>,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
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
            iocs: 0,
            threats: 0,
            seed: 1,
            account_id: ACCOUNT_ID.to_string(),
            account_name: "iocx demo".to_string(),
            sites: vec!["Default site".to_string(), "iocx lab".to_string()],
            user_scope: UserScope::Global,
            creator: "iocx-sim@example.com".to_string(),
            capacity: None,
            max_per_request: MAX_PER_REQUEST,
            default_limit: 10,
            invalid_iocs: InvalidIocs::RejectBatch,
            error_detail_style: ErrorDetailStyle::Json,
            implicit_scope: false,
            reject_valid_until_over_cap: false,
            list_expired: false,
            ignore_unknown_params: false,
            rate_limit_per_minute: None,
            max_body_bytes: 16 * 1024 * 1024,
            tls: false,
            faults: FaultArgs {
                retry_after_secs: 1,
                server_error_status: 500,
                ..FaultArgs::default()
            },
        }
    }

    /// The sites as (id, name): the i-th site's id is the account id plus i + 1.
    pub fn site_list(&self) -> Vec<Site> {
        let base: u128 = self.account_id.parse().unwrap_or(1_100_000_000_000_000_001);
        self.sites
            .iter()
            .enumerate()
            .map(|(i, name)| Site {
                id: (base + i as u128 + 1).to_string(),
                name: name.clone(),
            })
            .collect()
    }
}

/// A built emulator: what it holds, its fault switches and its request log.
#[derive(Debug, Clone)]
pub struct Emulator {
    /// The IOCs and threats.
    pub state: Arc<State>,
    /// The live fault settings.
    pub faults: Arc<Faults>,
    /// Every request answered.
    pub log: Arc<RequestLog>,
}

/// An error in SentinelOne's envelope: `{"errors":[{"code","detail","title"}]}`.
pub fn s1_error(status: StatusCode, code: u64, title: &str, detail: Option<&str>) -> Response {
    (
        status,
        Json(serde_json::json!({
            "errors": [{"code": code, "detail": detail, "title": title}],
        })),
    )
        .into_response()
}

/// Renders injected faults in SentinelOne's envelope; the code is the status × 10,000 + 10.
pub fn render_error(status: StatusCode, _code: &str, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    s1_error(
        status,
        u64::from(status.as_u16()) * 10_000 + 10,
        title,
        Some(message),
    )
}

/// Builds the router (wrapped by [`common::admin_routes`] with SentinelOne's error renderer)
/// and the emulator's state, pre-filled as `args` say.
pub fn build(args: &Args) -> (axum::Router, Emulator) {
    let state = Arc::new(State::new(
        data::Config {
            account_id: args.account_id.clone(),
            account_name: args.account_name.clone(),
            sites: args.site_list(),
            capacity: args.capacity,
            invalid_iocs: args.invalid_iocs,
            list_expired: args.list_expired,
            creator: args.creator.clone(),
        },
        args.seed,
    ));
    state.seed(args.iocs, args.threats, args.seed, Utc::now());
    let faults = Faults::new(args.faults.clone());
    let log = Arc::new(RequestLog::default());
    let ctx = Arc::new(handlers::Ctx::new(
        state.clone(),
        faults.clone(),
        args.clone(),
    ));
    let api = axum::Router::new()
        .route(
            &format!("{API}/threat-intelligence/iocs"),
            get(handlers::list_iocs)
                .post(handlers::create_iocs)
                .delete(handlers::delete_iocs),
        )
        .route(&format!("{API}/threats"), get(handlers::list_threats))
        .route(&format!("{API}/sites"), get(handlers::list_sites))
        .route(&format!("{API}/system/info"), get(handlers::system_info))
        .route(
            "/_sim/state",
            get(handlers::get_state).delete(handlers::clear_state),
        )
        .route("/_sim/threats", axum::routing::post(handlers::add_threats))
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
