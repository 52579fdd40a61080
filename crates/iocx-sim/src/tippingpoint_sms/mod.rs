//! # TippingPoint SMS emulator
//!
//! The Trend Micro TippingPoint Security Management System Web API as written down in
//! `contracts/tippingpoint-sms-and-threatq.md` Part A: the reputation database (`repEntries`
//! add, import, delete, query) with its tag categories, TTL expiry and size cap, the
//! `dbAccess/tptDBServlet` export of the ALERTS table, and — what makes it an enforcement point
//! for iocx — detection events: reputation hits on the entries it holds, sent as the SMS's
//! remote-syslog "ArcSight CEF Format v4.2" lines to a UDP and/or TCP receiver on loopback.
//! There is no official Python SDK.
//!
//! ## Routes
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET, POST | `/repEntries/add?ip=\|dns=\|url=&TagData=` | 200 `OK` |
//! | POST | `/repEntries/import?type=ipv4\|ipv6\|dns\|url` (multipart `file`) | 200 `OK: N added, N updated, N ignored` |
//! | GET, POST | `/repEntries/delete?criteria=entry\|user\|repdv\|all[&ip=…&dns=…&url=…]` (or multipart `file` + `type`) | 200 `OK: N deleted` |
//! | GET, POST | `/repEntries/query?ip=…&ip=…` (or `dns=`, `url=`) | 200 lines `address,category,value,…`; 204 when none |
//! | GET | `/dbAccess/tptDBServlet?method=Status\|Version\|GetData\|GetNewestRecord\|GetOldestRecord\|DataDictionary` | `OK`, the API version, or a table as csv/xml/sql |
//! | GET | `/smsAdmin/info?request=version` | the SMS version |
//! | GET, DELETE | `/_sim/state` | entries, categories, alert count; DELETE empties entries and alerts |
//! | GET, POST | `/_sim/tag-categories` | the categories; POST `{"spec":"NAME=TYPE[:SPEC]"}` makes one |
//! | GET, POST | `/_sim/events` | the ALERTS table and syslog counters; POST emits hits (below) |
//! | POST | `/_sim/reap` | runs the TTL clean-up now → `{"removed": N}` |
//! | GET, PUT | `/_sim/faults`; GET, DELETE `/_sim/requests` | shared admin routes ([`crate::common`]) |
//!
//! Parameters come from the query string, an `application/x-www-form-urlencoded` body or a
//! `multipart/form-data` body. Every API route authenticates by `X-SMS-API-KEY: --api-key`, by
//! HTTP Basic `--user:--password`, or by `smsuser`/`smspass` parameters; anything else is 401,
//! and `--restricted-api-key` (a user without "Access SMS Web Services") is 403. Bodies of
//! answers and errors are `text/plain`; the statuses are the guide's: 400 bad request, 401, 403,
//! 404, 412 "preconditioned fail", 500.
//!
//! ## The reputation database
//!
//! An entry is an address — IPv4 or IPv6 (with CIDR; host bits are zeroed, `/32` and `/128`
//! become plain addresses), a DNS name (lowercased; `[name]` is the exact-match form) or a URL —
//! with tag category/value pairs. `TagData` and import lines use CSV quoting (`"a, b"`, `""`),
//! list values join with `~~~`; an empty value drops its pair; an empty category refuses the
//! entry. Categories must exist: the predefined `Reputation Entries TTL`, `STIX - ID`,
//! `STIX - Severity`, `STIX - Confidence`, the seven Vision One's sync uses (`Trend Micro
//! Detection Category`, `Trend Micro Publisher`, `Trend Micro Source`, `Trend Micro Suspicious
//! Object Source`, `Trend Micro Scan Action`, `Trend Micro Severity`, plus the TTL), and any made
//! with `--tag-category NAME=TYPE[:SPEC]` (`text`, `yesno`, `list:a,b`, `multilist:a,b`,
//! `date[:FORMAT]`, `range:MIN-MAX`). Adding an existing address merges: given categories are
//! overwritten, others kept.
//!
//! Import files hold one kind (`type`), one entry per line: IP and DNS files comma-delimited,
//! URL files `|`-delimited; invalid lines are ignored and counted.
//!
//! Entries with a `Reputation Entries TTL` date are removed once it passes, by a clean-up that
//! runs every `--reap-interval-ms` (and on `POST /_sim/reap`).
//!
//! ## Events
//!
//! A hit on an entry becomes one record in the ALERTS table (served by `GetData`) and one syslog
//! line to `--syslog-udp ADDR` and/or `--syslog-tcp ADDR` (loopback only):
//!
//! ```text
//! <131>Jun  3 12:00:01 sms-01 CEF:0|TippingPoint|UnityOne|1.0.0.17|7610|iocx Reputation Block|3|rt=1717416001000 cat=Reputation proto=TCP app=TCP cnt=1 act=Block … dvchost=ips-edge-01 cs6=198.51.100.7 cs6Label=Filter Message Parms externalId=1 src=10.1.2.3 dst=198.51.100.7 spt=50123 dpt=443
//! ```
//!
//! IP entries hit with filter 7610 (a host inside a CIDR entry for blocks), DNS entries with 7611
//! (`dst` a resolver, `dhost` the name), URL entries with `--url-signature` and `request` the URL.
//! `cs6` is the matched IP, name or URL — what iocx counts hits by. `--events-per-second R`
//! makes R hits a second on random entries from `--devices N` devices; `POST /_sim/events` with
//! `{"value": "x", "count": 5, "device": "ips-edge-02", "hits": 3, "action": "Block",
//! "severity": 4}` makes hits on the entry `x` would match (exact, DNS suffix or CIDR; 404 when
//! none), or on random entries without `value`.
//!
//! Faults from [`crate::common::Faults`] apply to every API route, as `text/plain` bodies;
//! `capacity_reached` refuses adds and imports with 412.
//!
//! ## Choices
//!
//! Where the contract marks a fact unconfirmed, the emulator chooses and a flag switches:
//!
//! - **Methods**: add, delete and query take GET and POST (`--methods both`; `get` or `post`
//!   refuse the other with 405). Import and delete-by-file take a multipart POST.
//! - **Answer bodies** of add, import and delete are short `text/plain` lines (`OK…`); the real
//!   ones are undocumented. Not switchable.
//! - **Unknown tag category** on add: 412 (`--unknown-category-status 400` for 400); in an import
//!   the line is ignored.
//! - **TTL format**: only the public sample's `yyyy-MM-dd HH:mm:ssZ` (`2018-10-25
//!   07:15:00-0400`); `--lenient-dates` also takes RFC 3339, `yyyy-MM-dd HH:mm:ss` (UTC) and
//!   `yyyy-MM-dd`. A bad date refuses an add with 400 and ignores an import line.
//! - **Comment lines** in import files start with `#`; blank lines are skipped. Not switchable.
//! - **Import size**: at most `--max-import-entries` (10,000, the guide's upper recommendation)
//!   lines per file, else 400.
//! - **Database size**: `--max-entries` (6,000,000, the guide's guidance). Past it
//!   (`--over-capacity reject`) new entries are refused with 412 and nothing of the request is
//!   applied; `accept` treats the number as guidance only.
//! - **Deleting absent entries** by value: 200 (`--delete-missing ok`); `not-found` answers 404
//!   when none of the listed entries existed.
//! - **Query**: at most `--max-query-values` (10,000) values, else 400; mixing `ip`, `dns` and
//!   `url` is 400; an unparsable value is 412 ("syntax error", per a public client); no match is
//!   204 (`--empty-query-status 200` answers 200 with an empty body). Lines are sorted by
//!   address: IPs numerically, names and URLs as text. Values with commas are quoted.
//! - **Syslog**: RFC 3164 header with the SMS name (`--sms-name`; `--syslog-without-host` drops
//!   it), facility `--syslog-facility` (16, local0), syslog severity from the event's (critical →
//!   2 … low → 5). CEF header severity is the SMS severity 1–4. TCP lines end with `\n`
//!   (`--syslog-tcp-framing octet-counting` for RFC 6587 octet counting).
//! - **URL hits** use filter number 7611 like DNS hits (`--url-signature`).
//! - **ALERTS export**: `END_TIME` in `[begin_time, end_time)` (`--end-time-inclusive` closes
//!   it); CSV has a header row (`--csv-without-header`); `MESSAGE_PARMS` holds the matched value;
//!   IPv4 addresses are integers with `_HIGH` 0, IPv6 their low and high 64 bits.

mod cef;
mod data;
mod handlers;
mod model;
mod syslog;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;

use crate::common::{self, FaultArgs, Faults, RequestLog, SimHandle, TlsIdentity};

pub use cef::{
    ALERT_COLUMNS, DNS_REPUTATION_SIGNATURE, Device, Event, HitSpec, IP_REPUTATION_SIGNATURE,
    REPUTATION_TAXONOMY, alert_row, cef_record, hit, numeric_ip, syslog_line,
};
pub use data::{Entry, EntryOrigin, ImportReport, OverCapacity, Refusal, State};
pub use model::{
    AddressKind, Category, CategoryType, MULTI_VALUE_SEPARATOR, Origin, Param, TTL_CATEGORY,
    TTL_FORMAT, default_categories, format_ttl, normalize, parse_date, split_fields,
};
pub use syslog::{Counters, Emitter, TcpFraming};

/// Which HTTP methods add, delete and query take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Methods {
    /// GET and POST.
    Both,
    /// GET only, as the guide's examples.
    Get,
    /// POST only.
    Post,
}

/// What deleting entries that do not exist answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeleteMissing {
    /// 200.
    Ok,
    /// 404 when none of the listed entries existed.
    NotFound,
}

/// The `iocx sim tippingpoint-sms` flags.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// The API key clients send as `X-SMS-API-KEY`.
    #[arg(long, value_name = "KEY")]
    pub api_key: String,
    /// An API key of a user without the "Access SMS Web Services" capability (answers 403).
    #[arg(long, value_name = "KEY")]
    pub restricted_api_key: Option<String>,
    /// User name for HTTP Basic and `smsuser`.
    #[arg(long, value_name = "NAME", default_value = "iocx")]
    pub user: String,
    /// Password for HTTP Basic and `smspass` (empty disables both).
    #[arg(long, value_name = "PASSWORD", default_value = "")]
    pub password: String,
    /// Pre-fill N user entries tagged as Vision One's sync tags them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub entries: usize,
    /// Pre-fill N ThreatDV entries (never returned by query).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub repdv_entries: usize,
    /// Seed of the pre-filled data and of generated events.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Another tag category, `NAME=TYPE[:SPEC]` (repeatable).
    #[arg(long = "tag-category", value_name = "SPEC")]
    pub tag_categories: Vec<String>,
    /// Status of an add naming an unknown tag category (400 or 412).
    #[arg(long, value_name = "STATUS", default_value_t = 412)]
    pub unknown_category_status: u16,
    /// Also accept RFC 3339 and plain dates in date categories.
    #[arg(long)]
    pub lenient_dates: bool,
    /// Which methods add, delete and query take.
    #[arg(long, value_enum, default_value_t = Methods::Both)]
    pub methods: Methods,
    /// Most lines in one import file.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_import_entries: usize,
    /// Most entries the database holds.
    #[arg(long, value_name = "N", default_value_t = 6_000_000)]
    pub max_entries: usize,
    /// What happens past `--max-entries`.
    #[arg(long, value_enum, default_value_t = OverCapacity::Reject)]
    pub over_capacity: OverCapacity,
    /// What deleting absent entries answers.
    #[arg(long, value_enum, default_value_t = DeleteMissing::Ok)]
    pub delete_missing: DeleteMissing,
    /// Most values in one query.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_query_values: usize,
    /// Status of a query with no match (204 or 200).
    #[arg(long, value_name = "STATUS", default_value_t = 204)]
    pub empty_query_status: u16,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// Milliseconds between TTL clean-ups.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub reap_interval_ms: u64,
    /// Send CEF syslog lines over UDP to this loopback address.
    #[arg(long, value_name = "ADDR")]
    pub syslog_udp: Option<SocketAddr>,
    /// Send CEF syslog lines over TCP to this loopback address.
    #[arg(long, value_name = "ADDR")]
    pub syslog_tcp: Option<SocketAddr>,
    /// How lines are framed over TCP.
    #[arg(long, value_enum, default_value_t = TcpFraming::Lf)]
    pub syslog_tcp_framing: TcpFraming,
    /// Syslog facility number (16 = local0).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub syslog_facility: u8,
    /// Leave the SMS host name out of the syslog header.
    #[arg(long)]
    pub syslog_without_host: bool,
    /// Random reputation hits per second on held entries (0 = only on request).
    #[arg(long, value_name = "R", default_value_t = 0.0)]
    pub events_per_second: f64,
    /// Managed devices that report hits.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub devices: usize,
    /// The SMS's host name (`cs5`, syslog header).
    #[arg(long, value_name = "NAME", default_value = "sms-01")]
    pub sms_name: String,
    /// The reputation filter's name (CEF header Name).
    #[arg(long, value_name = "NAME", default_value = "iocx Reputation Block")]
    pub reputation_filter_name: String,
    /// The inspection profile's name (`cs1`).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "Default Reputation Profile"
    )]
    pub profile_name: String,
    /// Filter number of URL reputation hits.
    #[arg(long, value_name = "N", default_value_t = 7611)]
    pub url_signature: u32,
    /// Most alerts kept for the export.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_alerts: usize,
    /// Include `end_time` itself in `GetData` windows.
    #[arg(long)]
    pub end_time_inclusive: bool,
    /// CSV exports without the header row.
    #[arg(long)]
    pub csv_without_header: bool,
    /// What `method=Version` answers.
    #[arg(long, value_name = "TEXT", default_value = "1.0")]
    pub api_version: String,
    /// What `smsAdmin/info?request=version` answers.
    #[arg(long, value_name = "TEXT", default_value = "6.5.1.135000")]
    pub sms_version: String,
    /// Serve HTTPS with a self-signed certificate for 127.0.0.1 and localhost.
    #[arg(long)]
    pub tls: bool,
    /// Fault injection.
    #[command(flatten)]
    pub faults: FaultArgs,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("api_key", &"****")
            .field("user", &self.user)
            .field("password", &"****")
            .field("entries", &self.entries)
            .field("syslog_udp", &self.syslog_udp)
            .field("syslog_tcp", &self.syslog_tcp)
            .finish_non_exhaustive()
    }
}

impl Args {
    /// The flags' defaults with this API key (for tests and in-process use).
    pub fn new(api_key: &str) -> Args {
        Args {
            api_key: api_key.to_string(),
            restricted_api_key: None,
            user: "iocx".into(),
            password: String::new(),
            entries: 0,
            repdv_entries: 0,
            seed: 1,
            tag_categories: Vec::new(),
            unknown_category_status: 412,
            lenient_dates: false,
            methods: Methods::Both,
            max_import_entries: 10_000,
            max_entries: 6_000_000,
            over_capacity: OverCapacity::Reject,
            delete_missing: DeleteMissing::Ok,
            max_query_values: 10_000,
            empty_query_status: 204,
            max_upload_bytes: 64 * 1024 * 1024,
            reap_interval_ms: 10_000,
            syslog_udp: None,
            syslog_tcp: None,
            syslog_tcp_framing: TcpFraming::Lf,
            syslog_facility: 16,
            syslog_without_host: false,
            events_per_second: 0.0,
            devices: 2,
            sms_name: "sms-01".into(),
            reputation_filter_name: "iocx Reputation Block".into(),
            profile_name: "Default Reputation Profile".into(),
            url_signature: DNS_REPUTATION_SIGNATURE,
            max_alerts: 100_000,
            end_time_inclusive: false,
            csv_without_header: false,
            api_version: "1.0".into(),
            sms_version: "6.5.1.135000".into(),
            tls: false,
            faults: FaultArgs {
                retry_after_secs: 1,
                server_error_status: 500,
                ..FaultArgs::default()
            },
        }
    }
}

/// A built emulator: what it holds, its fault switches, its request log and its syslog sender.
#[derive(Debug, Clone)]
pub struct Emulator {
    /// The reputation database and the ALERTS table.
    pub state: Arc<State>,
    /// The live fault settings.
    pub faults: Arc<Faults>,
    /// Every request answered.
    pub log: Arc<RequestLog>,
    /// The syslog sender and its counters.
    pub emitter: Emitter,
}

/// Renders an error as the SMS does: the status and a short `text/plain` body.
pub fn render_error(status: StatusCode, _code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        message.to_string(),
    )
        .into_response()
}

/// Builds the router (already wrapped by [`common::admin_routes`]), the state pre-filled as
/// `args` say, and the syslog sender (this needs a runtime: it binds the UDP socket and starts
/// the TCP writer). No TTL clean-up or event generator runs; [`start`] starts those.
///
/// # Errors
/// A bad `--tag-category`, a non-loopback syslog target, or a UDP socket that cannot be bound.
pub async fn build(args: &Args) -> anyhow::Result<(axum::Router, Emulator)> {
    let (router, emulator, _) = build_parts(args).await?;
    Ok((router, emulator))
}

async fn build_parts(args: &Args) -> anyhow::Result<(axum::Router, Emulator, Arc<handlers::Ctx>)> {
    let extra = args
        .tag_categories
        .iter()
        .map(|s| Category::parse_spec(s).map_err(|e| anyhow::anyhow!("--tag-category {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let state = Arc::new(State::new(
        data::Config {
            max_entries: args.max_entries,
            over_capacity: args.over_capacity,
            lenient_dates: args.lenient_dates,
            unknown_category_status: args.unknown_category_status,
            max_alerts: args.max_alerts,
        },
        extra,
    ));
    state.seed(args.entries, args.repdv_entries, args.seed, Utc::now());
    let emitter = Emitter::start(args.syslog_udp, args.syslog_tcp, args.syslog_tcp_framing).await?;
    let faults = Faults::new(args.faults.clone());
    let log = Arc::new(RequestLog::default());
    let devices = (0..args.devices.max(1)).map(Device::numbered).collect();
    let ctx = Arc::new(handlers::Ctx {
        state: state.clone(),
        faults: faults.clone(),
        args: args.clone(),
        emitter: emitter.clone(),
        devices,
        rng: handlers::rng(args.seed),
    });
    let api = axum::Router::new()
        .route("/repEntries/add", get(handlers::add).post(handlers::add))
        .route("/repEntries/import", post(handlers::import))
        .route(
            "/repEntries/delete",
            get(handlers::delete).post(handlers::delete),
        )
        .route(
            "/repEntries/query",
            get(handlers::query).post(handlers::query),
        )
        .route(
            "/dbAccess/tptDBServlet",
            get(handlers::db_access).post(handlers::db_access),
        )
        .route("/smsAdmin/info", get(handlers::sms_info))
        .route(
            "/_sim/state",
            get(handlers::get_state).delete(handlers::clear_state),
        )
        .route("/_sim/reap", post(handlers::reap))
        .route(
            "/_sim/tag-categories",
            get(handlers::list_categories).post(handlers::add_category),
        )
        .route(
            "/_sim/events",
            get(handlers::list_events).post(handlers::post_events),
        )
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(ctx.clone());
    let router = common::admin_routes(api, faults.clone(), log.clone(), render_error);
    Ok((
        router,
        Emulator {
            state,
            faults,
            log,
            emitter,
        },
        ctx,
    ))
}

/// Runs the TTL clean-up and the event generator until the emulator is dropped.
fn spawn_background(ctx: &Arc<handlers::Ctx>) {
    let reap_every = Duration::from_millis(ctx.args.reap_interval_ms.max(10));
    let weak: Weak<handlers::Ctx> = Arc::downgrade(ctx);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(reap_every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(ctx) = weak.upgrade() else { break };
            ctx.state.reap(Utc::now());
        }
    });
    let rate = ctx.args.events_per_second;
    if rate > 0.0 && rate.is_finite() {
        let weak: Weak<handlers::Ctx> = Arc::downgrade(ctx);
        tokio::spawn(async move {
            let period = Duration::from_millis(100);
            let per_tick = rate.min(100_000.0) / 10.0;
            let mut owed = 0.0;
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(ctx) = weak.upgrade() else { break };
                owed += per_tick;
                while owed >= 1.0 {
                    owed -= 1.0;
                    if ctx.emit_random().await.is_none() {
                        owed = 0.0;
                    }
                }
            }
        });
    }
}

/// Builds the emulator, starts its TTL clean-up and event generator, and serves it on `listener`
/// (HTTPS with a self-signed certificate when `--tls`). The background tasks end when the server
/// is gone.
///
/// # Errors
/// As [`build`], or when the listener has no local address or the TLS identity cannot be made.
pub async fn start(
    listener: tokio::net::TcpListener,
    args: &Args,
) -> anyhow::Result<(SimHandle, Emulator)> {
    let (router, emulator, ctx) = build_parts(args).await?;
    spawn_background(&ctx);
    drop(ctx);
    let tls = if args.tls {
        Some(TlsIdentity::self_signed()?)
    } else {
        None
    };
    let handle = common::serve(listener, router, tls).await?;
    Ok((handle, emulator))
}
