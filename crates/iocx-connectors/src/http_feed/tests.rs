//! Tests of `http_feed` against feeds served on 127.0.0.1 by axum, and local files.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::*;
use crate::Settings;
use crate::testing::{self, Drained, drain};

/// One path of the test site.
#[derive(Clone, Default)]
struct Page {
    body: Vec<u8>,
    content_type: Option<&'static str>,
    etag: Option<String>,
    last_modified: Option<String>,
    /// Send with `Content-Encoding: gzip` (the body is compressed here).
    gzip_encoding: bool,
    /// Answer this many requests with 429 and `Retry-After: 1` first.
    rate_limited: u32,
    /// Wait this long before answering.
    delay: Duration,
    /// Send this many bytes, then stall for a minute.
    stall_after: Option<usize>,
    /// Answer with this status and the body.
    status: Option<u16>,
    /// Require this header (name, value); 401 otherwise, with a body echoing what came.
    require: Option<(&'static str, String)>,
}

#[derive(Default)]
struct Site {
    pages: BTreeMap<String, Page>,
    /// Every request: path and headers.
    requests: Vec<(String, HeaderMap)>,
}

type Shared = Arc<Mutex<Site>>;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

async fn page(
    State(site): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let page = {
        let mut s = site.lock().unwrap();
        s.requests.push((path.clone(), headers.clone()));
        let Some(p) = s.pages.get_mut(&path) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if p.rate_limited > 0 {
            p.rate_limited -= 1;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response();
        }
        p.clone()
    };
    tokio::time::sleep(page.delay).await;
    if let Some((name, value)) = &page.require {
        let got = headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if got != value {
            return (
                StatusCode::UNAUTHORIZED,
                format!("refused credentials {got:?}"),
            )
                .into_response();
        }
    }
    if let Some(status) = page.status {
        let mut r = (StatusCode::from_u16(status).unwrap(), page.body).into_response();
        if let Some(ct) = page.content_type {
            r.headers_mut().insert("content-type", ct.parse().unwrap());
        }
        return r;
    }
    let matches = |h: &str, v: &Option<String>| {
        v.is_some() && headers.get(h).and_then(|x| x.to_str().ok()) == v.as_deref()
    };
    let mut builder = Response::builder();
    if let Some(e) = &page.etag {
        builder = builder.header("etag", e);
    }
    if let Some(m) = &page.last_modified {
        builder = builder.header("last-modified", m);
    }
    if matches("if-none-match", &page.etag) || matches("if-modified-since", &page.last_modified) {
        return builder.status(304).body(Body::empty()).unwrap();
    }
    if let Some(ct) = page.content_type {
        builder = builder.header("content-type", ct);
    }
    let body = if page.gzip_encoding {
        builder = builder.header("content-encoding", "gzip");
        gzip(&page.body)
    } else {
        page.body
    };
    match page.stall_after {
        Some(n) => {
            let first = Bytes::copy_from_slice(&body[..n.min(body.len())]);
            let stream = futures::stream::iter([Ok::<Bytes, std::io::Error>(first)]).chain(
                futures::stream::once(async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(Bytes::new())
                }),
            );
            builder.body(Body::from_stream(stream)).unwrap()
        }
        None => builder.body(Body::from(body)).unwrap(),
    }
}

async fn site(pages: Vec<(&str, Page)>) -> (SocketAddr, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Site::default()));
    for (path, p) in pages {
        shared.lock().unwrap().pages.insert(path.to_string(), p);
    }
    let app = Router::new()
        .route("/{path}", get(page))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, shared)
}

fn text(body: &str) -> Page {
    Page {
        body: body.as_bytes().to_vec(),
        content_type: Some("text/plain"),
        ..Page::default()
    }
}

fn feed_ctx(values: Value) -> (Context, Arc<testing::MemoryLog>) {
    testing::context(HttpFeed.spec(), values)
}

async fn pull(values: Value, checkpoint: Option<Value>) -> (Drained, Arc<testing::MemoryLog>) {
    let (ctx, log) = feed_ctx(values);
    let drained = drain(&HttpFeed, &ctx, checkpoint, None).await;
    (drained, log)
}

fn domains(n: usize, prefix: &str) -> String {
    (0..n)
        .map(|i| format!("{prefix}{i}.feed.example\n"))
        .collect()
}

#[tokio::test]
async fn a_text_feed_is_read_with_comments_and_rejects_counted() {
    let body = "# a threat list\n\nevil[.]example\n1.2.3.4 # a comment\nhxxp://bad.example/x\nnot an indicator\n999.1.1.1\n";
    let mut p = text(body);
    p.etag = Some("\"v1\"".into());
    let (addr, _) = site(vec![("list.txt", p)]).await;
    let (d, log) = pull(
        json!({"url": format!("http://{addr}/list.txt"), "tags": "a, b", "severity": "high"}),
        None,
    )
    .await;
    assert!(d.error.is_none(), "{}", d.error_message());
    assert_eq!(
        d.values(),
        ["evil.example", "1.2.3.4", "http://bad.example/x"]
    );
    let r = &d.batches[0].records[0];
    assert_eq!(r.attributes.severity, Severity::High);
    assert_eq!(r.attributes.tags.as_slice(), ["a", "b"]);
    assert_eq!(
        d.rejected(),
        BTreeMap::from([("bad_ipv4".into(), 1), ("unrecognised".into(), 1)])
    );
    // The rejections are logged with their line; the checkpoint says the read is complete.
    assert!(
        log.contains("line 6: rejected (unrecognised)"),
        "{}",
        log.text()
    );
    assert!(
        log.contains("line 7: rejected (bad_ipv4)"),
        "{}",
        log.text()
    );
    assert_eq!(d.checkpoint(), Some(json!({"etag": "\"v1\""})));
    assert!(!d.batches.last().unwrap().snapshot_complete);
}

#[tokio::test]
async fn an_abuse_ch_csv_feed_reads_its_commented_header() {
    let body = "################################################################\n\
                # abuse.ch URLhaus Database Dump (CSV - recent URLs only)       #\n\
                ################################################################\n\
                #\n\
                # id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
                \"3412\",\"2026-11-20 10:00:02\",\"http://1.2.3.4:8080/bins/x.sh\",\"online\",\"2026-11-20 10:00:02\",\"malware_download\",\"elf,mirai\",\"https://urlhaus.abuse.ch/url/3412/\",\"anonymous\"\n\
                \"3411\",\"2026-11-20 09:00:00\",\"http://evil.example/a.exe\",\"offline\",\"\",\"malware_download\",\"exe\",\"https://urlhaus.abuse.ch/url/3411/\",\"anonymous\"\n";
    let mut p = text(body);
    p.content_type = Some("text/csv");
    let (addr, _) = site(vec![("csv_recent", p)]).await;
    let (d, _) = pull(
        json!({"url": format!("http://{addr}/csv_recent"), "preset": "abuse_ch_csv"}),
        None,
    )
    .await;
    assert!(d.error.is_none(), "{}", d.error_message());
    assert_eq!(
        d.values(),
        ["http://1.2.3.4:8080/bins/x.sh", "http://evil.example/a.exe"]
    );
    let r = &d.batches[0].records[0];
    assert_eq!(r.attributes.tags.as_slice(), ["elf", "mirai"]);
    assert_eq!(r.attributes.comment.as_deref(), Some("malware_download"));
    assert_eq!(
        r.attributes.link.as_deref(),
        Some("https://urlhaus.abuse.ch/url/3412/")
    );
    assert!(r.first_seen.is_some());
}

#[tokio::test]
async fn json_arrays_and_mapped_fields() {
    let plain = json!([
        {"indicator": "evil.example", "type": "domain", "severity": "critical", "tags": ["x"]},
        {"indicator": "5.6.7.8", "type": "ipv4"},
        "d41d8cd98f00b204e9800998ecf8427e",
    ]);
    let mapped = json!([
        {"observable": {"text": "a.example", "what": "domain"}, "url": "http://ignored.example/"},
        {"observable": {"text": "1.1.1.1", "what": "ipv4"}},
    ]);
    let csv = "ref,obs,cat\n1,b.example,domain\n2,2.2.2.2,ipv4\n";
    let (addr, _) = site(vec![
        (
            "plain",
            Page {
                body: plain.to_string().into_bytes(),
                content_type: Some("application/json"),
                ..Page::default()
            },
        ),
        (
            "mapped.json",
            Page {
                body: mapped.to_string().into_bytes(),
                ..Page::default()
            },
        ),
        (
            "mapped.csv",
            Page {
                body: csv.as_bytes().to_vec(),
                ..Page::default()
            },
        ),
    ])
    .await;
    let (d, _) = pull(
        json!({"url": format!("http://{addr}/plain"), "preset": "json_array"}),
        None,
    )
    .await;
    assert_eq!(
        d.values(),
        [
            "evil.example",
            "5.6.7.8",
            "d41d8cd98f00b204e9800998ecf8427e"
        ],
        "{}",
        d.error_message()
    );
    assert_eq!(
        d.batches[0].records[0].attributes.severity,
        Severity::Critical
    );
    assert_eq!(d.batches[0].records[2].indicator.kind, Kind::Md5);

    let fields = json!({"url": format!("http://{addr}/mapped.json"), "value_field": "observable.text", "kind_field": "observable.what"});
    let (d, _) = pull(fields, None).await;
    assert_eq!(
        d.values(),
        ["a.example", "1.1.1.1"],
        "{}",
        d.error_message()
    );
    assert_eq!(d.batches[0].records[0].indicator.kind, Kind::Domain);

    let fields = json!({"url": format!("http://{addr}/mapped.csv"), "value_field": "obs", "kind_field": "cat"});
    let (d, _) = pull(fields, None).await;
    assert_eq!(
        d.values(),
        ["b.example", "2.2.2.2"],
        "{}",
        d.error_message()
    );
    // A value column by number, no header needed.
    let fields =
        json!({"url": format!("http://{addr}/mapped.csv"), "format": "csv", "value_field": "2"});
    let (d, _) = pull(fields, None).await;
    assert_eq!(
        d.values(),
        ["b.example", "2.2.2.2"],
        "{}",
        d.error_message()
    );
    // A preset that disagrees with the format is a configuration error naming the field.
    let fields = json!({"url": format!("http://{addr}/plain"), "preset": "plain", "format": "csv"});
    let (d, _) = pull(fields, None).await;
    assert_eq!(d.error.as_ref().unwrap().kind, ErrorKind::Config);
    assert!(
        d.error_message().starts_with("format:"),
        "{}",
        d.error_message()
    );
}

#[tokio::test]
async fn gzip_by_content_encoding_and_by_magic_bytes() {
    let body = domains(500, "g");
    let (addr, _) = site(vec![
        (
            "encoded.txt",
            Page {
                body: body.clone().into_bytes(),
                gzip_encoding: true,
                ..Page::default()
            },
        ),
        (
            "file.txt.gz",
            Page {
                body: gzip(body.as_bytes()),
                content_type: Some("application/gzip"),
                ..Page::default()
            },
        ),
    ])
    .await;
    for path in ["encoded.txt", "file.txt.gz"] {
        let (d, _) = pull(json!({"url": format!("http://{addr}/{path}")}), None).await;
        assert!(d.error.is_none(), "{path}: {}", d.error_message());
        assert_eq!(d.records(), 500, "{path}");
        assert_eq!(d.values()[499], "g499.feed.example");
    }
}

#[tokio::test]
async fn etag_and_last_modified_make_the_next_pull_conditional() {
    let mut by_etag = text(&domains(3, "e"));
    by_etag.etag = Some("\"abc\"".into());
    let mut by_date = text(&domains(3, "m"));
    by_date.last_modified = Some("Wed, 21 Oct 2026 07:28:00 GMT".into());
    let (addr, site) = site(vec![("etag.txt", by_etag), ("dated.txt", by_date)]).await;
    for (path, header, value) in [
        ("etag.txt", "if-none-match", "\"abc\""),
        (
            "dated.txt",
            "if-modified-since",
            "Wed, 21 Oct 2026 07:28:00 GMT",
        ),
    ] {
        let values = json!({"url": format!("http://{addr}/{path}")});
        let (first, _) = pull(values.clone(), None).await;
        assert_eq!(first.records(), 3, "{path}: {}", first.error_message());
        let (second, log) = pull(values, first.checkpoint()).await;
        // 304: a successful pull with no batches.
        assert!(
            second.error.is_none() && second.batches.is_empty(),
            "{path}: {second:?}"
        );
        assert!(
            log.contains("has not changed since the last pull (HTTP 304)"),
            "{}",
            log.text()
        );
        let s = site.lock().unwrap();
        let last = s.requests.iter().rev().find(|(p, _)| p == path).unwrap();
        assert_eq!(last.1.get(header).unwrap().to_str().unwrap(), value);
    }
}

#[tokio::test]
async fn html_pages_and_garbage_end_the_run_naming_the_url() {
    let page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>oops</body></html>\n";
    let words: String = (0..300).map(|i| format!("word number {i}\n")).collect();
    let (addr, _) = site(vec![
        (
            "typed.txt",
            Page {
                body: page.into(),
                content_type: Some("text/html; charset=utf-8"),
                ..Page::default()
            },
        ),
        ("sniffed.txt", text(page)),
        ("words.txt", text(&words)),
        (
            "binary.txt",
            Page {
                body: vec![0, 1, 2, 3, 0, 255],
                ..Page::default()
            },
        ),
        (
            "missing.txt",
            Page {
                status: Some(404),
                body: b"no such feed".to_vec(),
                ..Page::default()
            },
        ),
    ])
    .await;
    for (path, expected) in [
        (
            "typed.txt",
            "answered an HTML page (text/html; charset=utf-8), not a feed",
        ),
        ("sniffed.txt", "returned an HTML page, not a feed"),
        (
            "words.txt",
            "does not look like a feed in this format: 300 of its first 300 items",
        ),
        ("binary.txt", "returned binary data, not text"),
        ("missing.txt", "HTTP 404 Not Found: no such feed"),
    ] {
        let url = format!("http://{addr}/{path}");
        let (d, _) = pull(json!({"url": url}), None).await;
        let message = d.error_message();
        assert!(
            message.contains(&url) && message.contains(expected),
            "{path}: {message}"
        );
        assert!(d.batches.is_empty(), "{path}");
        let (ctx, _) = feed_ctx(json!({"url": url}));
        let e = HttpFeed.validate(&ctx).await.unwrap_err();
        assert!(e.message.contains(&url), "{path}: {}", e.message);
    }
    let (d, _) = pull(json!({"url": format!("http://{addr}/sniffed.txt")}), None).await;
    assert!(
        d.error_message()
            .contains("It starts: <!DOCTYPE html> <html><head><title>502 Bad Gateway"),
        "{}",
        d.error_message()
    );
    // The reject limit is a setting: 100 turns the check off.
    let (d, _) = pull(
        json!({"url": format!("http://{addr}/words.txt"), "max_reject_percent": 100}),
        None,
    )
    .await;
    assert!(d.error.is_none());
    assert_eq!(d.rejected().values().sum::<u64>(), 300);
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let mut p = text(&domains(2, "r"));
    p.rate_limited = 1;
    let (addr, site) = site(vec![("limited.txt", p)]).await;
    let started = Instant::now();
    let (d, _) = pull(json!({"url": format!("http://{addr}/limited.txt")}), None).await;
    assert_eq!(d.records(), 2, "{}", d.error_message());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(site.lock().unwrap().requests.len(), 2);
}

#[tokio::test]
async fn a_server_that_hangs_ends_the_run_after_the_timeout() {
    let slow = Page {
        delay: Duration::from_secs(30),
        ..text("a.example\n")
    };
    let body = domains(50, "s");
    let stalls = Page {
        stall_after: Some(body.len() / 2),
        ..text(&body)
    };
    let (addr, _) = site(vec![("slow.txt", slow), ("stalls.txt", stalls)]).await;
    let settings = Settings {
        timeout: Duration::from_secs(1),
        ..testing::settings()
    };
    let started = Instant::now();
    let (ctx, _) = testing::context_with(
        HttpFeed.spec(),
        json!({"url": format!("http://{addr}/slow.txt")}),
        settings.clone(),
    );
    let d = drain(&HttpFeed, &ctx, None, None).await;
    let e = d.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Network, "{e}");
    assert!(
        e.message.contains(&format!("GET http://{addr}/slow.txt")),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    // A body that stops half-way: what was read stands, then the run fails.
    let (ctx, _) = testing::context_with(
        HttpFeed.spec(),
        json!({"url": format!("http://{addr}/stalls.txt")}),
        settings,
    );
    let d = drain(&HttpFeed, &ctx, None, None).await;
    let e = d.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::Network, "{e}");
    assert!(
        e.message.contains("reading the feed failed after position"),
        "{e}"
    );
    assert!(d.records() > 0 && d.records() < 50, "{}", d.records());
    assert!(d.checkpoint().unwrap()["position"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_pull_stopped_mid_way_resumes_after_its_last_batch_if_the_feed_is_unchanged() {
    let mut p = text(&domains(25_000, "big"));
    p.etag = Some("\"one\"".into());
    let (addr, site) = site(vec![("big.txt", p)]).await;
    let values = json!({"url": format!("http://{addr}/big.txt"), "snapshot": true});
    let (ctx, log) = feed_ctx(values.clone());
    // Killed after the first batch.
    let first = drain(&HttpFeed, &ctx, None, Some(1)).await;
    assert_eq!(first.records(), 10_000);
    let stored = first.checkpoint().unwrap();
    assert_eq!(stored, json!({"etag": "\"one\"", "position": 10_000}));
    let rest = drain(&HttpFeed, &ctx, Some(stored.clone()), None).await;
    assert!(
        log.contains("Resuming the feed after position 10000"),
        "{}",
        log.text()
    );
    assert_eq!(rest.records(), 15_000);
    assert_eq!(rest.values()[0], "big10000.feed.example");
    // Read in two pulls: not one complete snapshot, so nothing is retired.
    assert!(!rest.batches.last().unwrap().snapshot_complete);
    assert!(log.contains("not one complete snapshot"));
    assert_eq!(rest.checkpoint(), Some(json!({"etag": "\"one\""})));

    // The feed changes under an interrupted pull: it is read again from the start.
    {
        let mut s = site.lock().unwrap();
        let p = s.pages.get_mut("big.txt").unwrap();
        p.etag = Some("\"two\"".into());
        p.body = domains(12_000, "new").into_bytes();
    }
    let (ctx, log) = feed_ctx(values);
    let again = drain(&HttpFeed, &ctx, Some(stored), None).await;
    assert_eq!(again.records(), 12_000);
    assert!(log.contains("reading it from the start"), "{}", log.text());
    // A complete read of a full snapshot lets the engine retire what left it.
    assert!(again.batches.last().unwrap().snapshot_complete);
    assert_eq!(
        again.batches.iter().filter(|b| b.snapshot_complete).count(),
        1
    );
}

#[tokio::test]
async fn an_empty_snapshot_retires_nothing() {
    let (addr, _) = site(vec![("empty.txt", text("# nothing today\n"))]).await;
    let (d, log) = pull(
        json!({"url": format!("http://{addr}/empty.txt"), "snapshot": true}),
        None,
    )
    .await;
    assert!(d.error.is_none());
    assert_eq!(d.batches.len(), 1);
    assert!(!d.batches[0].snapshot_complete);
    assert!(log.contains("listed no indicators; nothing is retired"));
}

#[tokio::test]
async fn local_files_by_url_and_path_with_size_and_mtime_as_validators() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed list.txt");
    std::fs::write(&path, domains(3, "f")).unwrap();
    let url = url::Url::from_file_path(&path).unwrap().to_string();
    assert!(url.contains("%20"));
    for location in [url, path.display().to_string()] {
        let values = json!({"url": location});
        let (first, _) = pull(values.clone(), None).await;
        assert_eq!(first.records(), 3, "{location}: {}", first.error_message());
        let checkpoint = first.checkpoint().unwrap();
        assert!(
            checkpoint["identity"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}:", domains(3, "f").len()))
        );
        let (second, log) = pull(values.clone(), Some(checkpoint.clone())).await;
        assert!(second.batches.is_empty() && second.error.is_none());
        assert!(log.contains("has not changed since the last pull"));
        let (ctx, _) = feed_ctx(values);
        let ok = HttpFeed.validate(&ctx).await.unwrap();
        assert!(ok.contains("3 of its first 3 items are indicators"), "{ok}");
    }
    std::fs::write(&path, domains(4, "f")).unwrap();
    let (d, _) = pull(json!({"url": path.display().to_string()}), None).await;
    assert_eq!(d.records(), 4);
    let (d, _) = pull(
        json!({"url": dir.path().join("missing.txt").display().to_string()}),
        None,
    )
    .await;
    assert!(
        d.error_message().contains("cannot read"),
        "{}",
        d.error_message()
    );
}

#[tokio::test]
async fn the_size_limit_holds_for_plain_and_compressed_bodies() {
    let big = domains(120_000, "size"); // about 2.5 MB
    let (addr, _) = site(vec![
        ("big.txt", text(&big)),
        (
            "big.txt.gz",
            Page {
                body: gzip(big.as_bytes()),
                ..Page::default()
            },
        ),
        (
            "encoded.txt",
            Page {
                body: big.clone().into_bytes(),
                gzip_encoding: true,
                ..Page::default()
            },
        ),
    ])
    .await;
    for path in ["big.txt", "big.txt.gz", "encoded.txt"] {
        let (d, _) = pull(
            json!({"url": format!("http://{addr}/{path}"), "max_size_mb": 1}),
            None,
        )
        .await;
        let e = d.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Config, "{path}: {e}");
        assert!(
            e.message.contains("1 MB") && e.message.contains("max_size_mb"),
            "{path}: {e}"
        );
    }
}

#[tokio::test]
async fn authentication_is_sent_and_secrets_stay_out_of_messages() {
    let need = |name: &'static str, value: &str| Page {
        require: Some((name, value.to_string())),
        ..text("a.example\n")
    };
    let (addr, _) = site(vec![
        ("bearer", need("authorization", "Bearer t0ken-value")),
        ("basic", need("authorization", "Basic dXNlcjpwYXNzLXdvcmQ=")),
        ("header", need("x-api-key", "k3y-value")),
    ])
    .await;
    let url = |p: &str| format!("http://{addr}/{p}");
    for values in [
        json!({"url": url("bearer"), "auth": "bearer", "token": "t0ken-value"}),
        json!({"url": url("basic"), "auth": "basic", "username": "user", "password": "pass-word"}),
        json!({"url": url("header"), "auth": "header", "header_name": "X-API-Key", "header_value": "k3y-value"}),
    ] {
        let (d, _) = pull(values.clone(), None).await;
        assert_eq!(d.values(), ["a.example"], "{values}: {}", d.error_message());
    }
    // A wrong token: refused, and the server's echo of it is redacted.
    let (d, _) = pull(json!({"url": url("header"), "auth": "header", "header_name": "X-API-Key", "header_value": "wr0ng-value"}), None).await;
    let e = d.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(
        e.message.contains("HTTP 401") && !e.message.contains("wr0ng-value"),
        "{e}"
    );
    assert!(e.message.contains("***"), "{e}");
    // A method without its secret names the missing field.
    let (d, _) = pull(json!({"url": url("bearer"), "auth": "bearer"}), None).await;
    assert_eq!(
        d.error_message(),
        "token: required for bearer token authentication"
    );
}

#[tokio::test]
async fn validate_samples_the_feed() {
    let (addr, _) = site(vec![(
        "list.txt",
        text("a.example\nb.example\nnonsense here\n"),
    )])
    .await;
    let (ctx, _) = feed_ctx(json!({"url": format!("http://{addr}/list.txt")}));
    let ok = HttpFeed.validate(&ctx).await.unwrap();
    assert!(
        ok.starts_with(&format!(
            "http://{addr}/list.txt answered HTTP 200 OK (text/plain"
        )),
        "{ok}"
    );
    assert!(
        ok.ends_with("read as txt, 2 of its first 3 items are indicators"),
        "{ok}"
    );
}

#[tokio::test]
async fn echoes_of_what_iocx_pushed_are_marked() {
    let body = json!([
        {"value": "mine.example", "comment": "Shared by iocx | hook"},
        {"value": "theirs.example", "comment": "seen in the wild"},
    ]);
    let (addr, _) = site(vec![(
        "list.json",
        Page {
            body: body.to_string().into_bytes(),
            ..Page::default()
        },
    )])
    .await;
    let (d, _) = pull(json!({"url": format!("http://{addr}/list.json")}), None).await;
    let echoes: Vec<bool> = d.batches[0].records.iter().map(|r| r.echo).collect();
    assert_eq!(echoes, [true, false]);
}

#[tokio::test]
async fn dropping_the_stream_stops_the_download() {
    let body = domains(30_000, "d");
    let p = Page {
        stall_after: Some(body.len() / 2),
        ..text(&body)
    };
    let (addr, _) = site(vec![("stalls.txt", p)]).await;
    let (ctx, _) = feed_ctx(json!({"url": format!("http://{addr}/stalls.txt")}));
    let started = Instant::now();
    let d = drain(&HttpFeed, &ctx, None, Some(1)).await;
    assert_eq!(d.records(), 10_000);
    // Cancelling the context ends a pull that waits on a stalled body promptly.
    let (ctx, _) = feed_ctx(json!({"url": format!("http://{addr}/stalls.txt")}));
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel();
    });
    let d = drain(&HttpFeed, &ctx, None, None).await;
    assert_eq!(d.error.unwrap().kind, ErrorKind::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(5));
}
