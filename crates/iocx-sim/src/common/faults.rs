//! Switchable faults and the request log.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

/// The faults an emulator injects. Every field is off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct FaultConfig {
    /// Answer every Nth API request with 429 Too Many Requests and a `Retry-After` header.
    #[arg(long = "fault-429-every", value_name = "N")]
    pub rate_limit_every: Option<u64>,
    /// Seconds sent in `Retry-After` with injected 429s.
    #[arg(
        long = "fault-retry-after",
        value_name = "SECONDS",
        default_value_t = 1
    )]
    pub retry_after_secs: u64,
    /// Answer every Nth API request with a server error.
    #[arg(long = "fault-5xx-every", value_name = "N")]
    pub server_error_every: Option<u64>,
    /// The status of injected server errors (500, 502, 503 or 504).
    #[arg(
        long = "fault-5xx-status",
        value_name = "STATUS",
        default_value_t = 500
    )]
    pub server_error_status: u16,
    /// Delay every answer by this many milliseconds.
    #[arg(long = "fault-slow-ms", value_name = "MS")]
    pub slow_ms: Option<u64>,
    /// Drop the connection mid-answer on every Nth API request.
    #[arg(long = "fault-drop-every", value_name = "N")]
    pub drop_every: Option<u64>,
    /// Answer every API request with 503 for this many seconds from when the fault is set.
    #[arg(long = "fault-outage-secs", value_name = "SECONDS")]
    pub outage_secs: Option<u64>,
    /// Refuse additions as the vendor does when its capacity is reached.
    #[arg(long = "fault-capacity-reached")]
    pub capacity_reached: bool,
}

/// The `iocx sim` flags shared by every emulator.
pub type FaultArgs = FaultConfig;

/// The live fault settings of one emulator, shared by its handlers and its middleware.
#[derive(Debug, Default)]
pub struct Faults {
    config: RwLock<FaultConfig>,
    counter: AtomicU64,
    outage_until: Mutex<Option<Instant>>,
    drop_after_answer: AtomicBool,
}

impl Faults {
    /// Faults with these settings.
    pub fn new(config: FaultConfig) -> Arc<Faults> {
        let faults = Arc::new(Faults::default());
        faults.set(config);
        faults
    }

    /// The current settings.
    pub fn config(&self) -> FaultConfig {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Replaces the settings (an outage window starts now).
    pub fn set(&self, config: FaultConfig) {
        if let Ok(mut until) = self.outage_until.lock() {
            *until = config
                .outage_secs
                .map(|s| Instant::now() + Duration::from_secs(s));
        }
        if let Ok(mut c) = self.config.write() {
            *c = config;
        }
        self.counter.store(0, Ordering::SeqCst);
    }

    /// Whether handlers should refuse additions as "capacity reached".
    pub fn capacity_reached(&self) -> bool {
        self.config
            .read()
            .map(|c| c.capacity_reached)
            .unwrap_or(false)
    }

    /// Chooses how a dropped connection (`--fault-drop-every`) behaves for this emulator: `false`
    /// (the default) drops it before the handler runs, so the request has no effect; `true` lets
    /// the handler run and then cuts the answer's body half-way, as when a connection breaks
    /// after the server committed its work (e.g. a paging cursor that has already advanced).
    pub fn set_drop_after_answer(&self, after: bool) {
        self.drop_after_answer.store(after, Ordering::SeqCst);
    }

    /// Whether dropped connections happen after the handler ran (see
    /// [`Faults::set_drop_after_answer`]).
    pub fn drop_after_answer(&self) -> bool {
        self.drop_after_answer.load(Ordering::SeqCst)
    }

    fn outage(&self) -> bool {
        self.outage_until
            .lock()
            .ok()
            .and_then(|u| *u)
            .is_some_and(|until| Instant::now() < until)
    }
}

/// Renders an error in the vendor's own envelope: `(status, code, message)` to a response.
pub type ErrorRenderer = fn(StatusCode, &str, &str) -> Response;

/// One request an emulator answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// Whether the status came from an injected fault.
    pub injected: bool,
}

/// Every request an emulator answered, newest last (bounded to the last 100,000).
#[derive(Debug, Default)]
pub struct RequestLog(Mutex<Vec<RequestRecord>>);

impl RequestLog {
    const LIMIT: usize = 100_000;

    /// Appends a record.
    pub fn push(&self, record: RequestRecord) {
        if let Ok(mut log) = self.0.lock() {
            if log.len() >= Self::LIMIT {
                log.drain(..Self::LIMIT / 2);
            }
            log.push(record);
        }
    }

    /// A copy of the log.
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Empties the log.
    pub fn clear(&self) {
        if let Ok(mut log) = self.0.lock() {
            log.clear();
        }
    }
}

#[derive(Clone)]
struct FaultState {
    faults: Arc<Faults>,
    log: Arc<RequestLog>,
    render: ErrorRenderer,
}

/// Middleware that injects the configured faults into every request except `/_sim/…` ones and
/// records every request in the log. [`admin_routes`] installs it.
pub async fn fault_layer(
    State(state): State<FaultStateHandle>,
    request: Request,
    next: Next,
) -> Response {
    let state = &state.0;
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    if request.uri().path().starts_with("/_sim/") {
        return next.run(request).await;
    }
    let config = state.faults.config();
    let n = state.faults.counter.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(ms) = config.slow_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let every = |k: Option<u64>| k.is_some_and(|k| k > 0 && n % k == 0);
    let injected = if state.faults.outage() {
        Some((state.render)(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "Service temporarily unavailable",
        ))
    } else if every(config.rate_limit_every) {
        let mut response = (state.render)(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests",
        );
        if let Ok(value) = HeaderValue::from_str(&config.retry_after_secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        Some(response)
    } else if every(config.server_error_every) {
        let status = StatusCode::from_u16(config.server_error_status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Some((state.render)(
            status,
            "InternalServerError",
            "Internal server error",
        ))
    } else if every(config.drop_every) && state.faults.drop_after_answer() {
        let response = cut_mid_body(next.run(request).await).await;
        state.log.push(RequestRecord {
            method,
            path,
            status: response.status().as_u16(),
            injected: true,
        });
        return response;
    } else if every(config.drop_every) {
        // Headers promise a body that never comes: the client sees the connection close mid-answer.
        let body = Body::from_stream(futures::stream::once(async {
            Err::<bytes::Bytes, std::io::Error>(std::io::Error::other(
                "connection dropped by fault injection",
            ))
        }));
        let mut response = Response::new(body);
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("1024"));
        Some(response)
    } else {
        None
    };
    let (response, was_injected) = match injected {
        Some(r) => (r, true),
        None => (next.run(request).await, false),
    };
    state.log.push(RequestRecord {
        method,
        path,
        status: response.status().as_u16(),
        injected: was_injected,
    });
    response
}

/// Keeps `response`'s status and headers but sends only the first half of its body before
/// failing the stream, so the client sees the connection break mid-answer.
async fn cut_mid_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::other(
            "connection dropped by fault injection",
        )),
    ];
    parts.headers.remove(header::TRANSFER_ENCODING);
    if let Ok(value) = HeaderValue::from_str(&bytes.len().max(1).to_string()) {
        parts.headers.insert(header::CONTENT_LENGTH, value);
    }
    Response::from_parts(parts, Body::from_stream(futures::stream::iter(chunks)))
}

/// The state [`fault_layer`] needs (opaque).
#[derive(Clone)]
pub struct FaultStateHandle(Arc<FaultState>);

/// Wraps `router` with the fault middleware and adds the admin routes (`/_sim/faults`,
/// `/_sim/requests`).
pub fn admin_routes(
    router: axum::Router,
    faults: Arc<Faults>,
    log: Arc<RequestLog>,
    render: ErrorRenderer,
) -> axum::Router {
    let handle = FaultStateHandle(Arc::new(FaultState {
        faults: faults.clone(),
        log: log.clone(),
        render,
    }));
    let admin = axum::Router::new()
        .route(
            "/_sim/faults",
            get({
                let faults = faults.clone();
                move || async move { Json(faults.config()) }
            })
            .put({
                let faults = faults.clone();
                move |Json(config): Json<FaultConfig>| async move {
                    faults.set(config);
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/_sim/requests",
            get({
                let log = log.clone();
                move || async move { Json(log.snapshot()) }
            })
            .delete({
                let log = log.clone();
                move || async move {
                    log.clear();
                    StatusCode::NO_CONTENT
                }
            }),
        );
    router
        .merge(admin)
        .layer(axum::middleware::from_fn_with_state(handle, fault_layer))
}

/// A plain JSON error renderer, for emulators whose vendor has no envelope of its own.
pub fn plain_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}
