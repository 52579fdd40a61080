//! Helpers for tests that run the real `iocx` binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use iocx_store::testing::TestStore;

/// The `iocx` binary built for these tests.
pub fn iocx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iocx"));
    c.env_remove("IOCX_DATABASE_URL")
        .env_remove("IOCX_DATA")
        .env("IOCX_LOG", "warn");
    c
}

/// Runs `iocx --database URL ARGS…` and returns its output.
pub fn run(db: &str, args: &[&str]) -> Output {
    iocx()
        .arg("--database")
        .arg(db)
        .args(args)
        .output()
        .expect("running iocx")
}

/// Like [`run`], asserting success, returning stdout.
pub fn ok(db: &str, args: &[&str]) -> String {
    let out = run(db, args);
    assert!(
        out.status.success(),
        "iocx {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A temporary directory for files.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Writes a file and returns its path.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("writing a test file");
    p
}

/// Every available backend's fresh store (SQLite always, PostgreSQL when configured).
pub fn stores() -> Vec<TestStore> {
    TestStore::all()
}

/// The export of a store as sorted JSON objects (ids and export order do not matter).
pub fn export_sorted(db: &str) -> Vec<serde_json::Value> {
    let text = ok(db, &["export", "--format", "json"]);
    let mut rows: Vec<serde_json::Value> =
        serde_json::from_str(&text).expect("export is a JSON array");
    rows.sort_by_key(|r| format!("{}:{}", r["kind"], r["value"]));
    rows
}

/// A feed and webhook receiver on 127.0.0.1, for end-to-end tests.
pub mod servers {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use futures::StreamExt as _;

    /// What the servers saw.
    #[derive(Default)]
    pub struct Seen {
        /// Feed bodies by path.
        pub feeds: BTreeMap<String, String>,
        /// Delay before answering a feed request.
        pub feed_delay: Duration,
        /// Stream feed bodies slowly: this pause after each 16 KiB.
        pub feed_trickle: Option<Duration>,
        /// Requests per feed path, as (start, end) instants.
        pub feed_requests: BTreeMap<String, Vec<(Instant, Instant)>>,
        /// Webhook batches: (batch id, action, values).
        pub batches: Vec<(String, String, Vec<String>)>,
        /// Delay before answering a webhook batch.
        pub webhook_delay: Duration,
        /// Answer webhook batches with this status instead of 200.
        pub webhook_status: Option<u16>,
    }

    impl Seen {
        /// Distinct deliveries of `action` per value, counting a repeated batch id once (the
        /// receiver honours idempotency keys, as the webhook contract asks).
        pub fn deliveries(&self, action: &str) -> BTreeMap<String, u32> {
            let mut seen_batches = std::collections::HashSet::new();
            let mut out = BTreeMap::new();
            for (batch, a, values) in &self.batches {
                if a != action || !seen_batches.insert(batch.clone()) {
                    continue;
                }
                for v in values {
                    *out.entry(v.clone()).or_insert(0) += 1;
                }
            }
            out
        }
    }

    /// Shared state of the servers.
    pub type Shared = Arc<Mutex<Seen>>;

    async fn feed(
        State(s): State<Shared>,
        Path(path): Path<String>,
        headers: HeaderMap,
    ) -> Response {
        let start = Instant::now();
        let (body, delay) = {
            let seen = s.lock().unwrap();
            (seen.feeds.get(&path).cloned(), seen.feed_delay)
        };
        tokio::time::sleep(delay).await;
        let response = match body {
            None => StatusCode::NOT_FOUND.into_response(),
            Some(body) => {
                let etag = format!(
                    "\"{:x}\"",
                    body.len() as u64 * 31 + body.bytes().map(u64::from).sum::<u64>()
                );
                let trickle = s.lock().unwrap().feed_trickle;
                if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str())
                {
                    StatusCode::NOT_MODIFIED.into_response()
                } else if let Some(pause) = trickle {
                    let chunks: Vec<Bytes> = body
                        .as_bytes()
                        .chunks(16 * 1024)
                        .map(Bytes::copy_from_slice)
                        .collect();
                    let stream = futures::stream::iter(chunks).then(move |c| async move {
                        tokio::time::sleep(pause).await;
                        Ok::<Bytes, std::io::Error>(c)
                    });
                    (
                        [("etag", etag), ("content-type", "text/plain".to_string())],
                        axum::body::Body::from_stream(stream),
                    )
                        .into_response()
                } else {
                    (
                        [("etag", etag), ("content-type", "text/plain".to_string())],
                        body,
                    )
                        .into_response()
                }
            }
        };
        s.lock()
            .unwrap()
            .feed_requests
            .entry(path)
            .or_default()
            .push((start, Instant::now()));
        response
    }

    async fn webhook(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
        let (delay, status) = {
            let seen = s.lock().unwrap();
            (seen.webhook_delay, seen.webhook_status)
        };
        tokio::time::sleep(delay).await;
        if let Some(code) = status {
            return StatusCode::from_u16(code).unwrap().into_response();
        }
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let values: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["value"].as_str().unwrap().to_string())
            .collect();
        let batch = headers
            .get("idempotency-key")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        s.lock()
            .unwrap()
            .batches
            .push((batch, v["action"].as_str().unwrap().to_string(), values));
        StatusCode::OK.into_response()
    }

    /// Starts the servers on a thread of their own; returns the address and the state.
    pub fn start() -> (SocketAddr, Shared) {
        let shared: Shared = Arc::new(Mutex::new(Seen::default()));
        let state = shared.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = Router::new()
                    .route("/feeds/{path}", get(feed))
                    .route("/webhook", post(webhook))
                    .with_state(state);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        (rx.recv().unwrap(), shared)
    }
}

/// Runs `iocx` with a database and a data directory (for the master key).
pub fn run_in(db: &str, data: &Path, args: &[&str]) -> Output {
    iocx()
        .arg("--database")
        .arg(db)
        .arg("--data")
        .arg(data)
        .env("IOCX_ALLOW_SHORT_INTERVALS", "1")
        .args(args)
        .output()
        .expect("running iocx")
}

/// Runs `iocx` with a database and a data directory (for the master key), asserting success.
pub fn ok_in(db: &str, data: &Path, args: &[&str]) -> String {
    let out = run_in(db, data, args);
    assert!(
        out.status.success(),
        "iocx {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}
