//! The Trend Vision One emulator over real HTTP on 127.0.0.1:0, asserted the way a client sees it:
//! auth, paging with filters, 207 per-item results, limits, deletes, faults and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use iocx_sim::common::{FaultConfig, SimHandle};
use iocx_sim::trend_vision_one::{self, Args, CapacityOverflow, Emulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "test-token";
const SO: &str = "/v3.0/threatintel/suspiciousObjects";
const SO_DELETE: &str = "/v3.0/threatintel/suspiciousObjects/delete";
const EX: &str = "/v3.0/threatintel/suspiciousObjectExceptions";
const EX_DELETE: &str = "/v3.0/threatintel/suspiciousObjectExceptions/delete";
const LIMIT_TEXT: &str = "The number of objects exceeds the maximum limit";

struct Sim {
    handle: SimHandle,
    emulator: Emulator,
    http: reqwest::Client,
}

impl Sim {
    async fn start(args: Args) -> Sim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (handle, emulator) = trend_vision_one::start(listener, &args).await.unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Sim {
            handle,
            emulator,
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(TOKEN)
    }

    fn get_q(&self, path: &str, query: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        self.http
            .get(format!("{}?{query}", self.url(path)))
            .bearer_auth(TOKEN)
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(TOKEN).json(body)
    }

    async fn set_faults(&self, faults: FaultConfig) {
        let r = self
            .http
            .put(self.url("/_sim/faults"))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

fn args() -> Args {
    Args::new(TOKEN)
}

fn faults() -> FaultConfig {
    FaultConfig {
        retry_after_secs: 1,
        server_error_status: 500,
        ..FaultConfig::default()
    }
}

/// Asserts Trend's error envelope and returns the message.
async fn expect_error(response: reqwest::Response, status: StatusCode, code: &str) -> String {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.contains("application/json"), "{content_type}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

async fn multi(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), StatusCode::MULTI_STATUS);
    response.json().await.unwrap()
}

fn statuses(entries: &[Value]) -> Vec<u64> {
    entries
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect()
}

fn key(item: &Value) -> (String, String) {
    let t = item["type"].as_str().unwrap().to_string();
    let v = item[&t].as_str().unwrap().to_string();
    (t, v)
}

fn time(item: &Value, field: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(item[field].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// Follows `nextLink` verbatim from `first` to the end; returns every item and the page count.
async fn page_through(
    sim: &Sim,
    first: reqwest::RequestBuilder,
    filter: Option<&str>,
    resend_filter: bool,
) -> (Vec<Value>, usize) {
    let mut request = first;
    if let Some(f) = filter {
        request = request.header("TMV1-Filter", f);
    }
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        pages += 1;
        items.extend(body["items"].as_array().unwrap().iter().cloned());
        let Some(next) = body.get("nextLink") else {
            break;
        };
        let next = next.as_str().unwrap();
        assert!(next.starts_with(&sim.handle.base_url), "{next}");
        request = sim.http.get(next).bearer_auth(TOKEN);
        if let (Some(f), true) = (filter, resend_filter) {
            request = request.header("TMV1-Filter", f);
        }
    }
    (items, pages)
}

#[tokio::test]
async fn auth_uses_bearer_and_the_401_envelope() {
    let sim = Sim::start(args()).await;
    let r = sim
        .http
        .get(sim.url("/v3.0/healthcheck/connectivity"))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "Unauthorized").await;
    let r = sim
        .http
        .get(sim.url(SO))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "Unauthorized").await;
    let r = sim
        .http
        .post(sim.url(SO))
        .header("Authorization", format!("Basic {TOKEN}"))
        .json(&json!([{"ip": "198.51.100.1"}]))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "Unauthorized").await;
    assert!(sim.emulator.state.suspicious_objects().is_empty());

    let r = sim
        .get("/v3.0/healthcheck/connectivity")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "available"})
    );
}

#[tokio::test]
async fn paging_through_many_pages_with_filters_matches_the_state() {
    let mut a = args();
    a.objects = 900;
    a.exceptions = 250;
    let sim = Sim::start(a).await;
    let all = sim.emulator.state.snapshot();
    let held = all["suspiciousObjects"].as_array().unwrap();
    assert_eq!(held.len(), 900);

    // Unfiltered, default page size: 9 pages, every item once, newest first.
    let (items, pages) = page_through(&sim, sim.get(SO), None, false).await;
    assert_eq!(pages, 9);
    assert_eq!(items.len(), 900);
    let keys: BTreeSet<_> = items.iter().map(key).collect();
    assert_eq!(keys, held.iter().map(key).collect());
    let stamps: Vec<_> = items
        .iter()
        .map(|i| time(i, "lastModifiedDateTime"))
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "newest first");
    for item in &items {
        for field in [
            "type",
            "scanAction",
            "riskLevel",
            "inExceptionList",
            "lastModifiedDateTime",
            "expiredDateTime",
        ] {
            assert!(item.get(field).is_some(), "{field} missing in {item}");
        }
    }

    // Filtered, top=50, by risk: the filter rides in the skipToken when not re-sent.
    let filter = "(type eq 'url' or type eq 'domain' or type eq 'ip') and not riskLevel eq 'low'";
    let want: BTreeSet<_> = held
        .iter()
        .filter(|i| {
            ["url", "domain", "ip"].contains(&i["type"].as_str().unwrap())
                && i["riskLevel"] != "low"
        })
        .map(key)
        .collect();
    for resend in [false, true] {
        let first = sim.get_q(SO, &[("top", "50"), ("orderBy", "expiredDateTime asc")]);
        let (items, pages) = page_through(&sim, first, Some(filter), resend).await;
        assert!(pages > 4, "{pages} pages");
        assert_eq!(items.iter().map(key).collect::<BTreeSet<_>>(), want);
        assert_eq!(items.len(), want.len());
        let expiry: Vec<_> = items.iter().map(|i| time(i, "expiredDateTime")).collect();
        assert!(
            expiry.windows(2).all(|w| w[0] <= w[1]),
            "expiredDateTime asc"
        );
    }

    // A date range over lastModifiedDateTime.
    let start = Utc::now() - chrono::Duration::days(10);
    let start_text = start.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let first = sim.get_q(
        SO,
        &[
            ("top", "200"),
            ("startDateTime", start_text.as_str()),
            ("orderBy", "lastModifiedDateTime asc"),
        ],
    );
    let (items, _) = page_through(&sim, first, Some("not type eq 'ip'"), false).await;
    let want: BTreeSet<_> = held
        .iter()
        .filter(|i| i["type"] != "ip" && time(i, "lastModifiedDateTime") >= start)
        .map(key)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(items.iter().map(key).collect::<BTreeSet<_>>(), want);

    // Exceptions page too.
    let (items, pages) = page_through(&sim, sim.get_q(EX, &[("top", "50")]), None, false).await;
    assert_eq!((items.len(), pages), (250, 5));
    assert!(items[0].get("scanAction").is_none());
}

#[tokio::test]
async fn paging_is_stable_while_items_are_added_and_updated() {
    let mut a = args();
    a.objects = 300;
    let sim = Sim::start(a).await;
    let before: BTreeSet<_> = sim.emulator.state.snapshot()["suspiciousObjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .collect();
    let mut request = sim.get_q(SO, &[("top", "50")]);
    let mut seen = Vec::new();
    let mut n = 0;
    loop {
        let body: Value = request.send().await.unwrap().json().await.unwrap();
        seen.extend(body["items"].as_array().unwrap().iter().map(key));
        // New objects arrive between pages.
        n += 1;
        let r = sim
            .post(SO, &json!([{"domain": format!("arrived-{n}.example")}]))
            .send()
            .await
            .unwrap();
        assert_eq!(statuses(&multi(r).await), [201]);
        match body.get("nextLink") {
            Some(next) => request = sim.http.get(next.as_str().unwrap()).bearer_auth(TOKEN),
            None => break,
        }
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an item came twice");
    assert!(
        before.is_subset(&unique),
        "an item that was there was skipped"
    );
}

#[tokio::test]
async fn list_parameters_are_checked() {
    let sim = Sim::start(args()).await;
    for (name, value) in [
        ("top", "10"),
        ("top", "abc"),
        ("top", "1000"),
        ("orderBy", "lastModifiedDateTime sideways"),
        ("orderBy", "description asc"),
        ("startDateTime", "yesterday"),
        ("endDateTime", "2024-13-01T00:00:00Z"),
        ("skipToken", "garbage"),
    ] {
        let r = sim.get_q(SO, &[(name, value)]).send().await.unwrap();
        let message = expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
        assert!(message.contains(name), "{name}={value}: {message}");
    }
    let r = sim
        .get_q(
            SO,
            &[
                ("startDateTime", "2025-02-01T00:00:00Z"),
                ("endDateTime", "2025-01-01T00:00:00Z"),
            ],
        )
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
    let r = sim
        .get_q(EX, &[("orderBy", "riskLevel desc")])
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
    for filter in [
        "type ne 'url'",
        "type eq 'url' and",
        "contains(url,'x')",
        "riskLevel eq 'critical'",
    ] {
        let r = sim
            .get(SO)
            .header("TMV1-Filter", filter)
            .send()
            .await
            .unwrap();
        let message = expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
        assert!(message.contains("TMV1-Filter"), "{message}");
    }
    let r = sim
        .get(EX)
        .header("TMV1-Filter", "scanAction eq 'block'")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
    for top in ["50", "100", "200"] {
        let r = sim.get_q(SO, &[("top", top)]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // A token issued for one list is refused by the other.
    let mut a = args();
    a.objects = 120;
    a.exceptions = 120;
    let sim = Sim::start(a).await;
    let body: Value = sim.get(SO).send().await.unwrap().json().await.unwrap();
    let next = body["nextLink"].as_str().unwrap().replace(SO, EX);
    let r = sim.http.get(next).bearer_auth(TOKEN).send().await.unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;

    // --lenient-top accepts other sizes (Netskope validates keys with top=1).
    let mut a = args();
    a.objects = 5;
    a.lenient_top = true;
    let sim = Sim::start(a).await;
    let body: Value = sim
        .get_q(SO, &[("top", "1")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert!(body["nextLink"].as_str().unwrap().contains("top=1"));
}

#[tokio::test]
async fn adds_answer_207_per_item_in_request_order() {
    let sim = Sim::start(args()).await;
    let body = json!([
        {"url": "http://x.example/a", "description": "d", "riskLevel": "low", "scanAction": "log", "daysToExpiration": 7},
        {"fileSha1": "abc"},
        {"domain": "evil.example", "scanAction": "block", "riskLevel": "high", "daysToExpiration": -1},
        {"ip": "198.51.100.7", "riskLevel": "critical"},
        {"fileSha256": "A".repeat(64)},
        "not an object",
        {},
        {"ip": "198.51.100.8", "domain": "two.example"},
        {"senderMailAddress": "bad@sender.example", "daysToExpiration": 0},
        {"ip": "2001:db8::7", "description": "x".repeat(1001)},
        {"ip": "198.51.100.9", "bogus": true},
    ]);
    let entries = multi(sim.post(SO, &body).send().await.unwrap()).await;
    assert_eq!(
        statuses(&entries),
        [201, 400, 201, 400, 201, 400, 400, 400, 400, 400, 400]
    );
    assert_eq!(entries[0], json!({"status": 201}), "no body on success");
    for (i, field) in [
        (1, "fileSha1"),
        (3, "riskLevel"),
        (6, "Required fields not found"),
        (8, "daysToExpiration"),
        (9, "description"),
        (10, "bogus"),
    ] {
        let error = &entries[i]["body"]["error"];
        assert_eq!(error["code"], "BadRequest");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{i}: {error}"
        );
    }
    let held = sim.emulator.state.suspicious_objects();
    assert_eq!(held.len(), 3);

    let listed: Value = sim.get(SO).send().await.unwrap().json().await.unwrap();
    let items = listed["items"].as_array().unwrap();
    let url = items.iter().find(|i| i["type"] == "url").unwrap();
    assert_eq!(url["url"], "http://x.example/a");
    assert_eq!(url["riskLevel"], "low");
    assert_eq!(url["scanAction"], "log");
    assert_eq!(url["description"], "d");
    assert_eq!(url["inExceptionList"], false);
    let lifetime = time(url, "expiredDateTime") - time(url, "lastModifiedDateTime");
    assert_eq!(lifetime, chrono::Duration::days(7));
    let domain = items.iter().find(|i| i["type"] == "domain").unwrap();
    assert_eq!(domain["expiredDateTime"], "9999-12-31T23:59:59Z");
    let hash = items.iter().find(|i| i["type"] == "fileSha256").unwrap();
    assert_eq!(hash["riskLevel"], "high", "default riskLevel");
    assert_eq!(hash["scanAction"], "block", "default scanAction");
    assert!(hash.get("description").is_none());
    let lifetime = time(hash, "expiredDateTime") - time(hash, "lastModifiedDateTime");
    assert_eq!(lifetime, chrono::Duration::days(30), "default expiry");

    // Re-adding updates in place: same count, new fields, lastModifiedDateTime moves forward.
    let before = time(url, "lastModifiedDateTime");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let entries = multi(
        sim.post(
            SO,
            &json!([{"url": "http://x.example/a", "riskLevel": "medium"}]),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(statuses(&entries), [201]);
    let held = sim.emulator.state.suspicious_objects();
    assert_eq!(held.len(), 3);
    let url = held
        .iter()
        .find(|o| o.value == "http://x.example/a")
        .unwrap();
    assert_eq!(url.risk_level, trend_vision_one::RiskLevel::Medium);
    assert!(url.last_modified > before);

    // Exceptions: 201 per item; inExceptionList follows; suspicious-only fields are refused.
    let entries = multi(
        sim.post(
            EX,
            &json!([
                {"domain": "evil.example", "description": "partner"},
                {"ip": "192.168.35.1-192.168.35.254"},
                {"url": "http://y.example", "riskLevel": "high"},
            ]),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(statuses(&entries), [201, 201, 400]);
    let flagged = sim
        .emulator
        .state
        .suspicious_objects()
        .into_iter()
        .find(|o| o.value == "evil.example")
        .unwrap();
    assert!(flagged.in_exception_list);
    let listed: Value = sim
        .get(SO)
        .header("TMV1-Filter", "domain eq 'EVIL.example'")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["inExceptionList"], true);
    let exceptions: Value = sim.get(EX).send().await.unwrap().json().await.unwrap();
    assert_eq!(exceptions["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn batch_caps_and_the_body_limit() {
    let sim = Sim::start(args()).await;
    let items = |n: usize| {
        Value::Array(
            (0..n)
                .map(|i| json!({"domain": format!("d{i}.example")}))
                .collect(),
        )
    };
    let r = sim.post(SO, &items(1001)).send().await.unwrap();
    let message = expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
    assert!(message.contains("1000"), "{message}");
    assert!(
        !message.contains(LIMIT_TEXT),
        "distinct from the per-type cap"
    );
    assert!(sim.emulator.state.suspicious_objects().is_empty());
    let entries = multi(sim.post(SO, &items(1000)).send().await.unwrap()).await;
    assert_eq!(entries.len(), 1000);
    assert!(statuses(&entries).iter().all(|s| *s == 201));
    let r = sim.post(SO_DELETE, &items(1001)).send().await.unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;

    let r = sim.post(EX, &items(101)).send().await.unwrap();
    let message = expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
    assert!(message.contains("100"), "{message}");
    assert_eq!(
        multi(sim.post(EX, &items(100)).send().await.unwrap())
            .await
            .len(),
        100
    );
    let r = sim.post(EX_DELETE, &items(101)).send().await.unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;

    // Over 1 MB: 413, whether the length is declared or the body is chunked.
    let big = json!([{"url": format!("http://x.example/{}", "a".repeat(1024 * 1024))}]);
    let r = sim.post(SO, &big).send().await.unwrap();
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let r = sim
        .http
        .post(sim.url(SO))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge").await;
    // Just under the limit is fine.
    let fits = json!([{"ip": "198.51.100.200", "pad": " ".repeat(1000 * 1000)}]);
    let entries = multi(sim.post(SO, &fits).send().await.unwrap()).await;
    assert_eq!(
        statuses(&entries),
        [400],
        "parsed (the unknown key is refused)"
    );
}

#[tokio::test]
async fn per_type_cap_refuses_the_whole_request() {
    let mut a = args();
    a.capacity_per_type = 10;
    let sim = Sim::start(a).await;
    let domains = |from: usize, to: usize| {
        Value::Array(
            (from..to)
                .map(|i| json!({"domain": format!("d{i}.example")}))
                .collect(),
        )
    };
    let entries = multi(sim.post(SO, &domains(0, 8)).send().await.unwrap()).await;
    assert_eq!(entries.len(), 8);
    // 8 held + 3 new > 10: refused whole, nothing stored.
    let r = sim.post(SO, &domains(7, 10)).send().await.unwrap();
    assert_eq!(
        statuses(&multi(r).await),
        [201, 201, 201],
        "7 is an update: 8 + 2 = 10 fits"
    );
    let r = sim.post(SO, &domains(10, 11)).send().await.unwrap();
    let message = expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
    assert!(message.contains(LIMIT_TEXT), "{message}");
    assert_eq!(sim.emulator.state.suspicious_objects().len(), 10);
    // Updates of held objects and other types still go through.
    let r = sim
        .post(
            SO,
            &json!([{"domain": "d0.example", "riskLevel": "low"}, {"ip": "198.51.100.1"}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(statuses(&multi(r).await), [201, 201]);

    // Evict mode makes room by dropping the objects closest to expiry.
    let mut a = args();
    a.capacity_per_type = 3;
    a.capacity_overflow = CapacityOverflow::Evict;
    let sim = Sim::start(a).await;
    let r = sim
        .post(
            SO,
            &json!([
                {"domain": "soon.example", "daysToExpiration": 1},
                {"domain": "later.example", "daysToExpiration": 90},
                {"domain": "never.example", "daysToExpiration": -1},
            ]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(statuses(&multi(r).await), [201, 201, 201]);
    let r = sim
        .post(SO, &json!([{"domain": "new.example"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(statuses(&multi(r).await), [201]);
    let held: BTreeSet<String> = sim
        .emulator
        .state
        .suspicious_objects()
        .into_iter()
        .map(|o| o.value)
        .collect();
    assert_eq!(
        held,
        ["later.example", "never.example", "new.example"]
            .map(String::from)
            .into()
    );
}

#[tokio::test]
async fn deletes_answer_per_item() {
    let sim = Sim::start(args()).await;
    let r = sim
        .post(
            SO,
            &json!([{"ip": "198.51.100.7"}, {"url": "http://x.example/a"}, {"fileSha1": "ab".repeat(20)}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(statuses(&multi(r).await), [201, 201, 201]);
    let entries = multi(
        sim.post(
            SO_DELETE,
            &json!([
                {"ip": "198.51.100.7", "description": "ignored"},
                {"url": "http://never-added.example"},
                {"description": "no value"},
                {"fileSha1": "AB".repeat(20)},
            ]),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(statuses(&entries), [204, 404, 400, 204]);
    assert_eq!(entries[0], json!({"status": 204}));
    assert_eq!(
        entries[1]["body"]["error"],
        json!({"code": "NotFound", "message": "Not found"})
    );
    let held = sim.emulator.state.suspicious_objects();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].value, "http://x.example/a");

    let r = sim
        .post(EX, &json!([{"domain": "*.partner.example"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(statuses(&multi(r).await), [201]);
    let entries = multi(
        sim.post(
            EX_DELETE,
            &json!([{"domain": "*.partner.example"}, {"domain": "*.partner.example"}]),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(statuses(&entries), [204, 404]);
    assert!(sim.emulator.state.exceptions().is_empty());

    // --delete-missing no-content answers 204 for unknown objects.
    let mut a = args();
    a.delete_missing = trend_vision_one::DeleteMissing::NoContent;
    let sim = Sim::start(a).await;
    let r = sim
        .post(SO_DELETE, &json!([{"ip": "198.51.100.99"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(statuses(&multi(r).await), [204]);
}

#[tokio::test]
async fn hostile_requests_get_the_envelope() {
    let sim = Sim::start(args()).await;
    let raw = |body: &'static str, content_type: &'static str| {
        sim.http
            .post(sim.url(SO))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body)
    };
    for (body, content_type) in [
        ("{not json", "application/json"),
        ("", "application/json"),
        ("{\"ip\": \"198.51.100.1\"}", "application/json"),
        ("[]", "application/json"),
        ("[{\"ip\": \"198.51.100.1\"}]", "text/plain"),
    ] {
        let r = raw(body, content_type).send().await.unwrap();
        let message = expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
        assert!(message.starts_with("Invalid request format."), "{message}");
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let r = sim
        .http
        .post(sim.url(SO))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json;charset=utf-8")
        .body(deep)
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
    let r = raw(
        "[{\"ip\": 7}, [1], null]",
        "application/json; charset=utf-8",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(statuses(&multi(r).await), [400, 400, 400]);
    let r = sim.get("/v3.0/threatintel/nothing").send().await.unwrap();
    expect_error(r, StatusCode::NOT_FOUND, "NotFound").await;
    let r = sim
        .http
        .delete(sim.url(SO))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed").await;
    let r = sim
        .get(SO)
        .header("TMV1-Filter", "x".repeat(5000))
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
    // Still serving.
    let r = sim.get(SO).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn faults_rate_limit_errors_outage_and_capacity() {
    let mut a = args();
    a.objects = 10;
    a.faults.rate_limit_every = Some(3);
    a.faults.retry_after_secs = 7;
    let sim = Sim::start(a).await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = sim.get(SO).send().await.unwrap();
        codes.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.headers()["retry-after"], "7");
            let message = expect_error(r, StatusCode::TOO_MANY_REQUESTS, "TooManyRequests").await;
            assert_eq!(message, "Too many API requests");
        }
    }
    assert_eq!(codes, [200, 200, 429, 200, 200, 429]);

    sim.set_faults(FaultConfig {
        server_error_every: Some(2),
        server_error_status: 503,
        ..faults()
    })
    .await;
    let first = sim.get(SO).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = sim.get(SO).send().await.unwrap();
    expect_error(
        second,
        StatusCode::SERVICE_UNAVAILABLE,
        "InternalServerError",
    )
    .await;

    sim.set_faults(FaultConfig {
        slow_ms: Some(300),
        ..faults()
    })
    .await;
    let started = Instant::now();
    assert_eq!(sim.get(SO).send().await.unwrap().status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    sim.set_faults(FaultConfig {
        drop_every: Some(1),
        ..faults()
    })
    .await;
    let dropped = match sim.get(SO).send().await {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(dropped, "the connection should break mid-answer");

    sim.set_faults(FaultConfig {
        outage_secs: Some(60),
        ..faults()
    })
    .await;
    let r = sim
        .get("/v3.0/healthcheck/connectivity")
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable").await;

    sim.set_faults(FaultConfig {
        capacity_reached: true,
        ..faults()
    })
    .await;
    for path in [SO, EX] {
        let r = sim
            .post(path, &json!([{"ip": "198.51.100.1"}]))
            .send()
            .await
            .unwrap();
        let message = expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
        assert!(message.contains(LIMIT_TEXT), "{message}");
    }
    // Lists still work while capacity is reached.
    assert_eq!(sim.get(SO).send().await.unwrap().status(), StatusCode::OK);
    sim.set_faults(faults()).await;
    let r = sim
        .post(SO, &json!([{"ip": "198.51.100.1"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(statuses(&multi(r).await), [201]);

    // The log saw the injected answers.
    let log = sim.emulator.log.snapshot();
    assert!(log.iter().any(|r| r.injected && r.status == 429));
    assert!(log.iter().any(|r| r.injected && r.status == 503));
}

#[tokio::test]
async fn capacity_fault_by_flag_and_rate_limit_per_minute() {
    let mut a = args();
    a.faults.capacity_reached = true;
    a.rate_limit_per_minute = Some(3);
    let sim = Sim::start(a).await;
    let r = sim
        .post(SO, &json!([{"ip": "198.51.100.1"}]))
        .send()
        .await
        .unwrap();
    let message = expect_error(r, StatusCode::BAD_REQUEST, "BadRequest").await;
    assert!(message.contains(LIMIT_TEXT));
    // Counted per endpoint over 60 s.
    for _ in 0..3 {
        assert_eq!(sim.get(SO).send().await.unwrap().status(), StatusCode::OK);
    }
    let r = sim.get(SO).send().await.unwrap();
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&wait), "{wait}");
    let message = expect_error(r, StatusCode::TOO_MANY_REQUESTS, "TooManyRequests").await;
    assert_eq!(message, "Too many API requests");
    assert_eq!(sim.get(EX).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn sim_state_route_shows_and_clears_both_lists() {
    let mut a = args();
    a.objects = 12;
    a.exceptions = 6;
    let sim = Sim::start(a).await;
    let state: Value = sim
        .http
        .get(sim.url("/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["suspiciousObjects"].as_array().unwrap().len(), 12);
    assert_eq!(state["exceptions"].as_array().unwrap().len(), 6);
    let types: BTreeSet<_> = state["suspiciousObjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types.len(), 6, "every type is seeded");
    let r = sim
        .http
        .delete(sim.url("/_sim/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(sim.emulator.state.suspicious_objects().is_empty());
    assert!(sim.emulator.state.exceptions().is_empty());
    let listed: Value = sim.get(SO).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!({"items": []}));
}

#[tokio::test]
async fn tls_mode_serves_https_with_a_self_signed_certificate() {
    let mut a = args();
    a.tls = true;
    a.objects = 150;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handle, _emulator) = trend_vision_one::start(listener, &a).await.unwrap();
    assert!(handle.base_url.starts_with("https://"));
    let cert =
        reqwest::Certificate::from_pem(handle.tls.as_ref().unwrap().cert_pem.as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([cert])
        .build()
        .unwrap();
    let body: Value = http
        .get(format!("{}{SO}", handle.base_url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        body["nextLink"]
            .as_str()
            .unwrap()
            .starts_with(&handle.base_url)
    );
}
