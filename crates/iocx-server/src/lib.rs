//! # iocx-server
//!
//! The long-running service behind `iocx serve`: the REST API under `/api/v1` (described by
//! `/api/v1/openapi.json`), a TAXII 2.1 server under `/taxii2/`, EDL lists under `/edl/`,
//! Prometheus metrics at `/metrics`, `/healthz` and `/readyz` — and the scheduler, in-process.
//!
//! Design decisions:
//! - **One state, [`App`]**, shared by every handler behind an `Arc`: the engine (store + vault),
//!   the configuration, metrics and the login limiter. Handlers are thin: validation and
//!   business logic live in `iocx-engine`, so the CLI and the API behave the same.
//! - **Errors are JSON** (`{"error": {"code", "message", "field"}}`) with the status that fits;
//!   extractor rejections are turned into the same shape, so no input gets a non-JSON 4xx or
//!   a 5xx.
//! - **Every change is audited** with the actor, the target and the state before and after
//!   (secrets masked).

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod config;
pub mod console;
pub mod edl;
pub mod error;
pub mod metrics;
pub mod openapi;
mod sources;
pub mod taxii;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use iocx_engine::Engine;
use iocx_store::Store;
use tokio_util::sync::CancellationToken;

pub use config::ServeConfig;

/// What every handler shares.
pub struct App {
    /// The engine: store and vault.
    pub engine: Arc<Engine>,
    /// The service configuration.
    pub config: ServeConfig,
    /// Counters and histograms for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Failed-login counters.
    pub logins: auth::LoginLimiter,
    /// A password hash verified for unknown users, so timing does not reveal names.
    pub dummy_hash: String,
    /// Cancelled on shutdown; runs started through the API stop with it.
    pub cancel: CancellationToken,
    /// Runs started through the API, tracked so shutdown waits for them.
    pub tasks: tokio_util::task::TaskTracker,
    /// The dashboard figures and when they were computed.
    pub stats_cache: std::sync::Mutex<Option<(std::time::Instant, serde_json::Value)>>,
}

impl App {
    /// The store.
    pub fn store(&self) -> &Store {
        &self.engine.store
    }
}

/// Builds the application state.
///
/// # Errors
/// When hashing the dummy password fails.
pub async fn app(
    engine: Engine,
    config: ServeConfig,
    cancel: CancellationToken,
) -> anyhow::Result<Arc<App>> {
    let dummy_hash = auth::hash_password(auth::random_secret(16))
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(Arc::new(App {
        engine: Arc::new(engine),
        config,
        metrics: metrics::Metrics::default(),
        logins: auth::LoginLimiter::default(),
        dummy_hash,
        cancel,
        tasks: tokio_util::task::TaskTracker::new(),
        stats_cache: std::sync::Mutex::new(None),
    }))
}

/// Every route of the service.
pub fn router(app: Arc<App>) -> Router {
    let edl = edl::EdlState::new(Arc::new(sources::StoreEdl::new(app.clone())));
    let mut router = Router::new()
        .nest("/api/v1", api::router(app.clone()))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render))
        .merge(console::router())
        .merge(edl::router(edl));
    if app.config.taxii.enabled {
        router = router.merge(taxii::router());
    }
    router
        .fallback(|| async {
            error::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
        })
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(app.config.server.max_body_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(app.config.server.request_timeout_secs.max(1)),
        ))
        .with_state(app)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the store answers.
async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    match tokio::time::timeout(
        Duration::from_secs(5),
        app.store().call(|s| s.sources().map(|v| v.len())),
    )
    .await
    {
        Ok(Ok(_)) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready", "store": app.store().describe()})),
        ),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "unavailable", "error": e.to_string()})),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                serde_json::json!({"status": "unavailable", "error": "the store did not answer in 5 s"}),
            ),
        ),
    }
}

/// Serves `app` on `listener` until `app.cancel`, with the scheduler when configured. On
/// cancellation: stops accepting, lets requests in flight finish, stops the scheduler (running
/// jobs commit what they have and resume from their checkpoint later) and waits at most the
/// configured grace for runs started through the API.
///
/// # Errors
/// When the TLS files cannot be used or the listener fails.
pub async fn serve(app: Arc<App>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let scheduler = if app.config.scheduler.enabled {
        let engine = app.engine.clone();
        let cancel = app.cancel.clone();
        Some(tokio::spawn(async move {
            iocx_engine::scheduler::run(engine, cancel).await;
        }))
    } else {
        None
    };
    let routes = router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let cancel = app.cancel.clone();
    match (&app.config.server.tls_cert, &app.config.server.tls_key) {
        (Some(cert), Some(key)) => {
            let acceptor = tls::acceptor(cert, key)?;
            tls::serve(listener, acceptor, router(app.clone()), cancel.clone()).await;
        }
        _ => {
            axum::serve(listener, routes)
                .with_graceful_shutdown(async move { cancel.cancelled().await })
                .await
                .context("serving HTTP")?;
        }
    }
    app.tasks.close();
    let grace = Duration::from_secs(app.config.server.shutdown_grace_secs);
    if let Some(s) = scheduler
        && tokio::time::timeout(grace, s).await.is_err()
    {
        tracing::warn!(
            "The scheduler's jobs did not stop in time; they resume from their checkpoints"
        );
    }
    if tokio::time::timeout(grace, app.tasks.wait()).await.is_err() {
        tracing::warn!(
            "Runs started through the API did not stop in time; they resume from their checkpoints"
        );
    }
    Ok(())
}
