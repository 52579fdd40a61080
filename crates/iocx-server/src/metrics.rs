//! Prometheus metrics at `/metrics` (text exposition format 0.0.4): HTTP latency by route
//! template, what runs ingested, shared, failed and retracted (per configuration and sharing,
//! from [`iocx_engine::counters`]), and the store's size and contents (cached for 30 seconds,
//! so a scrape never scans a large store).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::App;

/// A series' labels.
type Labels = Vec<(&'static str, String)>;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The service's own metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    http: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    store: Mutex<Option<(Instant, iocx_store::Stats)>>,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut http) = self.http.lock() {
            let h = http
                .entry((method.to_string(), route.to_string(), status))
                .or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }
}

/// Middleware: times every request under its route template (`/api/v1/rules/{name}`, never
/// the raw path, so label values stay bounded).
pub async fn track(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    app.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// `GET /metrics`.
pub async fn render(State(app): State<Arc<App>>) -> Response {
    let mut out = String::with_capacity(8192);
    // Runs.
    let mut by_name: BTreeMap<&str, Vec<(Labels, f64)>> = BTreeMap::new();
    let series = iocx_engine::counters::snapshot();
    for (name, l, v) in &series {
        by_name
            .entry(name)
            .or_default()
            .push((l.iter().map(|(k, v)| (*k, v.clone())).collect(), *v));
    }
    for (name, rows) in &by_name {
        let _ = writeln!(out, "# TYPE {name} counter");
        for (l, v) in rows {
            let pairs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let _ = writeln!(out, "{name}{} {v}", labels(&pairs));
        }
    }
    // The store, at most every 30 seconds.
    let cached = app
        .metrics
        .store
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .filter(|(at, _)| at.elapsed() < Duration::from_secs(30));
    let stats = match cached {
        Some((_, s)) => Some(s),
        None => match app.store().call(|s| s.stats()).await {
            Ok(s) => {
                if let Ok(mut c) = app.metrics.store.lock() {
                    *c = Some((Instant::now(), s.clone()));
                }
                Some(s)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Could not read store statistics for /metrics");
                None
            }
        },
    };
    let _ = writeln!(
        out,
        "# TYPE iocx_store_up gauge\niocx_store_up {}",
        u8::from(stats.is_some())
    );
    if let Some(s) = stats {
        let _ = writeln!(out, "# TYPE iocx_indicators gauge");
        let _ = writeln!(out, "iocx_indicators{{state=\"all\"}} {}", s.indicators);
        let _ = writeln!(out, "iocx_indicators{{state=\"active\"}} {}", s.active);
        let _ = writeln!(out, "# TYPE iocx_indicators_by_kind gauge");
        for (k, n) in &s.by_kind {
            let _ = writeln!(out, "iocx_indicators_by_kind{} {n}", labels(&[("kind", k)]));
        }
        let _ = writeln!(out, "# TYPE iocx_indicators_by_source gauge");
        for (k, n) in &s.by_source {
            let _ = writeln!(
                out,
                "iocx_indicators_by_source{} {n}",
                labels(&[("source", k)])
            );
        }
        let _ = writeln!(
            out,
            "# TYPE iocx_observations gauge\niocx_observations {}",
            s.observations
        );
        let _ = writeln!(
            out,
            "# TYPE iocx_store_bytes gauge\niocx_store_bytes {}",
            s.size_bytes
        );
    }
    // HTTP.
    let http = app
        .metrics
        .http
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    let _ = writeln!(out, "# TYPE iocx_http_request_duration_seconds histogram");
    for ((method, route, status), h) in &http {
        let status = status.to_string();
        let base = [
            ("method", method.as_str()),
            ("route", route.as_str()),
            ("status", status.as_str()),
        ];
        for (i, b) in BUCKETS.iter().enumerate() {
            let le = b.to_string();
            let mut l = base.to_vec();
            l.push(("le", &le));
            let _ = writeln!(
                out,
                "iocx_http_request_duration_seconds_bucket{} {}",
                labels(&l),
                h.counts[i]
            );
        }
        let mut l = base.to_vec();
        l.push(("le", "+Inf"));
        let _ = writeln!(
            out,
            "iocx_http_request_duration_seconds_bucket{} {}",
            labels(&l),
            h.count
        );
        let _ = writeln!(
            out,
            "iocx_http_request_duration_seconds_sum{} {}",
            labels(&base),
            h.sum
        );
        let _ = writeln!(
            out,
            "iocx_http_request_duration_seconds_count{} {}",
            labels(&base),
            h.count
        );
    }
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
