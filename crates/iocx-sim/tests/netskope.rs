//! The Netskope emulator over real HTTP on 127.0.0.1: auth, the dataexport iterator, URL lists
//! with pending and deployed versions, the v1 file-hash list, rate limits and every fault.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::Read as _;
use std::time::{Duration, Instant};

use iocx_sim::common::{FaultConfig, SimHandle};
use iocx_sim::netskope::{self, Args, EarlyNext, Emulator, NewIndexStart, UnknownFileHashList};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const TOKEN: &str = "v2-secret";
const V1: &str = "v1-secret";
const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Sim {
    _handle: SimHandle,
    emu: Emulator,
    base: String,
    http: Client,
}

fn args() -> Args {
    Args {
        token: TOKEN.to_string(),
        v1_token: Some(V1.to_string()),
        alerts: 0,
        ..Args::default()
    }
}

async fn start(args: Args) -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handle, emu) = netskope::start(listener, &args).await.unwrap();
    Sim {
        base: handle.base_url.clone(),
        _handle: handle,
        emu,
        http: Client::new(),
    }
}

impl Sim {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("Netskope-Api-Token", TOKEN)
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn page(&self, kind: &str, index: &str, op: &str) -> Value {
        let (status, body) = self
            .json(
                Method::GET,
                &format!("/api/v2/events/dataexport/alerts/{kind}?index={index}&operation={op}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["ok"], 1);
        body
    }

    async fn inject(&self, alerts: Value) -> Vec<Value> {
        let resp = self
            .http
            .post(format!("{}/_sim/alerts", self.base))
            .json(&alerts)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json().await.unwrap()
    }

    async fn set_faults(&self, faults: FaultConfig) {
        let resp = self
            .http
            .put(format!("{}/_sim/faults", self.base))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }

    async fn sim_state(&self) -> Value {
        self.http
            .get(format!("{}/_sim/state", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn v1(&self, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/api/v1/updateFileHashList", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn ids(page: &Value) -> Vec<String> {
    page["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["_id"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------- auth

#[tokio::test]
async fn v2_auth_failures() {
    let sim = start(Args {
        read_only_token: Some("reader".into()),
        ..args()
    })
    .await;
    let url = format!("{}/api/v2/policy/urllist", sim.base);
    let none = sim.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let body: Value = none.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Netskope-Api-Token")
    );

    let wrong = sim
        .http
        .get(&url)
        .header("Netskope-Api-Token", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.json::<Value>().await.unwrap()["message"].is_string());

    let bearer = sim.http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    let reader = sim
        .http
        .get(&url)
        .header("Netskope-Api-Token", "reader")
        .send()
        .await
        .unwrap();
    assert_eq!(reader.status(), StatusCode::OK);
    let write = sim
        .http
        .post(&url)
        .header("Netskope-Api-Token", "reader")
        .json(&json!({"name": "x", "data": {"urls": ["a.example.com"], "type": "exact"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::FORBIDDEN);
    assert!(write.json::<Value>().await.unwrap()["message"].is_string());
    assert!(sim.emu.state.url_lists(netskope::ListView::All).is_empty());

    let iterator = sim
        .http
        .get(format!(
            "{}/api/v2/events/dataexport/alerts/malware?index=i&operation=head",
            sim.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(iterator.status(), StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------- iterator

#[tokio::test]
async fn iterator_head_next_resend_tail_and_cursor_per_index() {
    let sim = start(Args {
        alerts: 60,
        page_size: 4,
        wait_time: 9,
        ..args()
    })
    .await;
    let all: Vec<String> = sim
        .emu
        .state
        .alerts(netskope::model::AlertType::Malware)
        .iter()
        .map(|a| a["_id"].as_str().unwrap().to_string())
        .collect();
    assert!(all.len() > 8);

    let p1 = sim.page("malware", "ce_malware", "head").await;
    assert_eq!(ids(&p1), all[0..4]);
    assert_eq!(p1["wait_time"], 0);
    assert!(p1["timestamp_hwm"].as_i64().unwrap() > 0);
    for alert in p1["result"].as_array().unwrap() {
        assert_eq!(alert["alert_type"], "Malware");
        assert_eq!(alert["md5"].as_str().unwrap().len(), 32);
        assert_eq!(alert["sha256"].as_str().unwrap().len(), 64);
        assert!(alert["timestamp"].is_i64());
    }
    let again = sim.page("malware", "ce_malware", "resend").await;
    assert_eq!(ids(&again), ids(&p1));
    assert_eq!(again["timestamp_hwm"], p1["timestamp_hwm"]);

    // Another index starts on its own.
    let other = sim.page("malware", "other", "head").await;
    assert_eq!(ids(&other), all[0..4]);
    let other2 = sim.page("malware", "other", "next").await;
    assert_eq!(ids(&other2), all[4..8]);

    let p2 = sim.page("malware", "ce_malware", "next").await;
    assert_eq!(ids(&p2), all[4..8]);
    let mut seen: Vec<String> = ids(&p1);
    seen.extend(ids(&p2));
    loop {
        let p = sim.page("malware", "ce_malware", "next").await;
        let got = ids(&p);
        seen.extend(got.clone());
        if got.len() < 4 {
            assert_eq!(p["wait_time"], 9, "caught up: wait");
            break;
        }
        assert_eq!(p["wait_time"], 0, "more data: no wait");
    }
    assert_eq!(seen, all);

    // The malsite iterator with the same index name is a different cursor.
    let ms = sim.page("malsite", "ce_malware", "head").await;
    assert_eq!(ms["result"][0]["alert_type"], "malsite");
    assert!(ms["result"][0]["url"].is_string());
    assert!(ms["result"][0]["malsite_category"].is_array());

    // tail skips what is stored; new alerts come with next.
    let t = sim.page("malware", "live", "tail").await;
    assert!(ids(&t).is_empty());
    let created = sim
        .inject(json!({"alert_type": "malware", "md5": MD5, "sha256": SHA}))
        .await;
    let n = sim.page("malware", "live", "next").await;
    assert_eq!(
        ids(&n),
        vec![created[0]["_id"].as_str().unwrap().to_string()]
    );
    assert_eq!(n["result"][0]["md5"], MD5);
    assert_eq!(n["result"][0]["sha256"], SHA);
}

#[tokio::test]
async fn iterator_epoch_positions_in_one_hour_batches() {
    let sim = start(Args {
        alerts: 300,
        ..args()
    })
    .await;
    let all = sim.emu.state.alerts(netskope::model::AlertType::Malsite);
    let mid = all[all.len() / 2]["_insertion_epoch_timestamp"]
        .as_i64()
        .unwrap();
    let p = sim.page("malsite", "epoch", &mid.to_string()).await;
    let got = p["result"].as_array().unwrap();
    assert!(!got.is_empty());
    for a in got {
        let t = a["_insertion_epoch_timestamp"].as_i64().unwrap();
        assert!(t >= mid && t < mid + 3600, "{t} outside [{mid}, {mid}+1h)");
    }
    assert_eq!(p["wait_time"], 0);
    assert!(p["timestamp_hwm"].as_i64().unwrap() < mid + 3600);
    // next continues after the window, without a gap.
    let n = sim.page("malsite", "epoch", "next").await;
    let expected: Vec<&str> = all
        .iter()
        .filter(|a| a["_insertion_epoch_timestamp"].as_i64().unwrap() >= mid)
        .map(|a| a["_id"].as_str().unwrap())
        .collect();
    let mut seen = ids(&p);
    seen.extend(ids(&n));
    assert_eq!(seen, expected);
    // An epoch in the future gives an empty page.
    let future = sim.page("malsite", "future", "99999999999").await;
    assert!(ids(&future).is_empty());
}

#[tokio::test]
async fn iterator_bad_requests() {
    let sim = start(args()).await;
    let (s, b) = sim
        .json(
            Method::GET,
            "/api/v2/events/dataexport/alerts/malware?index=x",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["message"].as_str().unwrap().contains("operation"));
    let (s, _) = sim
        .json(
            Method::GET,
            "/api/v2/events/dataexport/alerts/malware?index=x&operation=rewind",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = sim
        .json(
            Method::GET,
            "/api/v2/events/dataexport/alerts/nonsense?index=x&operation=head",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let dlp = sim.page("dlp", "x", "head").await;
    assert!(ids(&dlp).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_alert_lost_or_repeated_while_alerts_arrive() {
    let sim = start(Args {
        alerts: 50,
        page_size: 7,
        wait_time: 0,
        ..args()
    })
    .await;
    let state = sim.emu.state.clone();
    let producer = tokio::spawn(async move {
        for i in 0..300 {
            let mut fields = serde_json::Map::new();
            fields.insert("url".into(), json!(format!("https://arrival{i}.example/")));
            state.inject_alert(netskope::model::AlertType::Malsite, fields);
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let mut seen = Vec::new();
    let mut first = true;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let op = if first { "head" } else { "next" };
        first = false;
        // Checked before the call: an empty page after the producer ended means the end.
        let done = producer.is_finished();
        let p = sim.page("malsite", "race", op).await;
        seen.extend(ids(&p));
        if done && ids(&p).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    producer.await.unwrap();
    let all: Vec<String> = sim
        .emu
        .state
        .alerts(netskope::model::AlertType::Malsite)
        .iter()
        .map(|a| a["_id"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no alert repeated");
    assert_eq!(seen.len(), all.len(), "no alert lost");
    assert!(seen == all, "every alert exactly once, in order");
}

#[tokio::test]
async fn wait_time_is_enforced_when_asked() {
    let sim = start(Args {
        alerts: 0,
        wait_time: 1,
        early_next: EarlyNext::Empty,
        ..args()
    })
    .await;
    sim.inject(json!([{"alert_type": "malsite"}])).await;
    let p = sim.page("malsite", "w", "head").await;
    assert_eq!(ids(&p).len(), 1);
    assert_eq!(p["wait_time"], 1);
    sim.inject(json!([{"alert_type": "malsite"}])).await;
    let early = sim.page("malsite", "w", "next").await;
    assert!(ids(&early).is_empty(), "too early: empty page");
    assert_eq!(early["wait_time"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = sim.page("malsite", "w", "next").await;
    assert_eq!(ids(&later).len(), 1, "nothing lost by the early call");

    let strict = start(Args {
        alerts: 0,
        wait_time: 30,
        early_next: EarlyNext::Reject,
        new_index_start: NewIndexStart::Tail,
        ..args()
    })
    .await;
    let t = strict.page("malware", "s", "next").await;
    assert!(ids(&t).is_empty());
    let resp = strict
        .req(
            Method::GET,
            "/api/v2/events/dataexport/alerts/malware?index=s&operation=next",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry));
}

#[tokio::test]
async fn iterator_answers_gzip_when_accepted() {
    let sim = start(Args {
        alerts: 20,
        ..args()
    })
    .await;
    let raw = Client::builder().no_gzip().build().unwrap();
    let resp = raw
        .get(format!(
            "{}/api/v2/events/dataexport/alerts/malsite?index=g&operation=head",
            sim.base
        ))
        .header("Netskope-Api-Token", TOKEN)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let bytes = resp.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["ok"], 1);
    // reqwest with gzip enabled decodes it transparently.
    let p = sim.page("malsite", "g2", "head").await;
    assert_eq!(p["result"], body["result"]);
}

// ---------------------------------------------------------------- rate limits

#[tokio::test]
async fn rate_limit_headers_and_429() {
    let sim = start(Args {
        rate_limit: 3,
        rate_limit_window_secs: 60,
        ..args()
    })
    .await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = sim
            .req(
                Method::GET,
                "/api/v2/events/dataexport/alerts/malware?index=r&operation=next",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["ratelimit-limit"], "3");
        let reset: u64 = r.headers()["ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&reset));
        remaining.push(
            r.headers()["ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let r = sim
        .req(Method::GET, "/api/v2/policy/urllist")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.json::<Value>().await.unwrap()["message"].is_string());

    // v1: its own window, 429 in the v1 envelope.
    let v1 = start(Args {
        v1_rate_limit: 2,
        ..args()
    })
    .await;
    for _ in 0..2 {
        let (s, b) = v1
            .v1(json!({"token": V1, "name": "iocx-file-hashes", "list": MD5}))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, b) = v1
        .v1(json!({"token": V1, "name": "iocx-file-hashes", "list": MD5}))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(b["status"], "error");
}

// ---------------------------------------------------------------- URL lists

async fn create(sim: &Sim, name: &str, urls: &[&str], kind: &str) -> Value {
    let (s, b) = sim
        .json(
            Method::POST,
            "/api/v2/policy/urllist",
            Some(json!({"name": name, "data": {"urls": urls, "type": kind}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b.is_array(), "create answers an array");
    b[0].clone()
}

#[tokio::test]
async fn url_list_append_replace_deploy_with_pending_and_deployed() {
    let sim = start(args()).await;
    let list = create(&sim, "iocx-block", &["cedefaultpush.io"], "exact").await;
    let id = list["id"].as_i64().unwrap();
    assert_eq!(list["pending"], 1);
    assert_eq!(list["modify_type"], "Created");
    assert_eq!(list["modify_by"], "Netskope API");
    assert_eq!(list["data"]["type"], "exact");
    assert_eq!(list["modify_time"].as_str().unwrap().len(), 19);

    // CE looks lists up by name with field=id,name.
    let (_, names) = sim
        .json(Method::GET, "/api/v2/policy/urllist?field=id,name", None)
        .await;
    assert_eq!(names, json!([{"id": id, "name": "iocx-block"}]));
    let (_, applied) = sim
        .json(Method::GET, "/api/v2/policy/urllist?pending=0", None)
        .await;
    assert_eq!(applied, json!([]));

    let (s, deployed) = sim
        .json(Method::POST, "/api/v2/policy/urllist/deploy", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(deployed[0]["pending"], 0);

    let (s, appended) = sim
        .json(
            Method::PATCH,
            &format!("/api/v2/policy/urllist/{id}/append"),
            Some(json!({"data": {"urls": ["evil.example.com", "*.bad.example.net", "https://phish.example.org/login"], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{appended}");
    assert_eq!(appended["pending"], 1);
    assert_eq!(appended["modify_type"], "Edited");
    assert_eq!(appended["data"]["urls"].as_array().unwrap().len(), 4);

    // Deployed and pending versions differ until the deploy.
    let (_, applied) = sim
        .json(Method::GET, "/api/v2/policy/urllist?pending=0", None)
        .await;
    assert_eq!(applied[0]["data"]["urls"], json!(["cedefaultpush.io"]));
    let (_, pending) = sim
        .json(Method::GET, "/api/v2/policy/urllist?pending=1", None)
        .await;
    assert_eq!(pending[0]["data"]["urls"].as_array().unwrap().len(), 4);
    let st = sim.sim_state().await;
    let entry = &st["url_lists"][0];
    assert_eq!(
        entry["deployed_content"]["urls"],
        json!(["cedefaultpush.io"])
    );
    assert_eq!(
        entry["pending_content"]["urls"].as_array().unwrap().len(),
        4
    );

    // Replace (CE's retraction) and deploy.
    let (s, replaced) = sim
        .json(
            Method::PATCH,
            &format!("/api/v2/policy/urllist/{id}/replace"),
            Some(json!({"data": {"urls": ["cedefaultpush.io", "evil.example.com"], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        replaced["data"]["urls"],
        json!(["cedefaultpush.io", "evil.example.com"])
    );
    sim.json(Method::POST, "/api/v2/policy/urllist/deploy", None)
        .await;
    let (_, got) = sim
        .json(Method::GET, &format!("/api/v2/policy/urllist/{id}"), None)
        .await;
    assert_eq!(got["pending"], 0);
    assert_eq!(
        got["data"]["urls"],
        json!(["cedefaultpush.io", "evil.example.com"])
    );
    let st = sim.sim_state().await;
    assert!(st["url_lists"][0]["pending_content"].is_null());

    // PUT replaces all, and may change the type.
    let (s, put) = sim
        .json(
            Method::PUT,
            &format!("/api/v2/policy/urllist/{id}"),
            Some(json!({"name": "iocx-regex", "data": {"urls": [r"^https?://[^/]*\.evil\.example/"], "type": "regex"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{put}");
    assert_eq!(put["data"]["type"], "regex");
    let (s, b) = sim
        .json(
            Method::PUT,
            &format!("/api/v2/policy/urllist/{id}"),
            Some(json!({"data": {"urls": ["a.example.com"], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["message"], "name required");

    // Delete marks, deploy removes.
    let (s, del) = sim
        .json(
            Method::DELETE,
            &format!("/api/v2/policy/urllist/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(del["modify_type"], "Deleted");
    assert_eq!(del["pending"], 1);
    let (_, after) = sim
        .json(Method::POST, "/api/v2/policy/urllist/deploy", None)
        .await;
    assert_eq!(after, json!([]));
    let (s, _) = sim
        .json(Method::GET, &format!("/api/v2/policy/urllist/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn url_list_invalid_entries_are_refused_and_a_retry_without_them_succeeds() {
    let sim = start(args()).await;
    let id = create(&sim, "l", &["seed.example.com"], "exact").await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v2/policy/urllist/{id}/append");
    let urls = json!([
        "good.example.com",
        "bad*.example.com",
        "exa mple.com",
        "user:pw@x.example.com",
        "2001:db8::1",
        "# comment",
        "*.fine.example.org"
    ]);
    let (s, b) = sim
        .json(
            Method::PATCH,
            &path,
            Some(json!({"data": {"urls": urls, "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let rejected: Vec<&str> = b["message"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_str().unwrap())
        .collect();
    assert_eq!(
        rejected,
        [
            "bad*.example.com",
            "exa mple.com",
            "user:pw@x.example.com",
            "2001:db8::1"
        ]
    );
    assert!(
        b["message"][0][1].is_string(),
        "each rejection has a reason"
    );
    let (_, unchanged) = sim
        .json(Method::GET, &format!("/api/v2/policy/urllist/{id}"), None)
        .await;
    assert_eq!(unchanged["data"]["urls"], json!(["seed.example.com"]));

    let (s, ok) = sim
        .json(
            Method::PATCH,
            &path,
            Some(json!({"data": {"urls": ["good.example.com", "# comment", "*.fine.example.org"], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        ok["data"]["urls"],
        json!(["seed.example.com", "good.example.com", "*.fine.example.org"])
    );

    // Regex lists check that patterns compile.
    let (s, b) = sim
        .json(
            Method::POST,
            "/api/v2/policy/urllist",
            Some(json!({"name": "rx", "data": {"urls": ["(open"], "type": "regex"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["message"][0][0], "(open");
}

#[tokio::test]
async fn url_list_size_limits_and_body_errors() {
    let sim = start(Args {
        url_list_max_entries: 5,
        url_list_max_bytes: 120,
        max_body_bytes: 64 * 1024,
        ..args()
    })
    .await;
    let id = create(&sim, "small", &["a.example.com"], "exact").await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v2/policy/urllist/{id}/append");
    let many: Vec<String> = (0..5).map(|i| format!("h{i}.example.com")).collect();
    let (s, b) = sim
        .json(
            Method::PATCH,
            &path,
            Some(json!({"data": {"urls": many, "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["message"].as_str().unwrap().contains("exceeds"), "{b}");
    let long = format!("{}.example.com", "x".repeat(60));
    let long2 = format!("{}.example.com", "y".repeat(60));
    let (s, b) = sim
        .json(
            Method::PATCH,
            &path,
            Some(json!({"data": {"urls": [long, long2], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["message"].as_str().unwrap().contains("bytes"));
    let (s, _) = sim
        .json(
            Method::PATCH,
            &path,
            Some(json!({"data": {"urls": ["b.example.com"], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Empty lists, taken names, bad shapes, bad JSON, unknown ids and actions, huge bodies.
    let (s, _) = sim
        .json(
            Method::PATCH,
            &format!("/api/v2/policy/urllist/{id}/replace"),
            Some(json!({"data": {"urls": [], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, b) = sim
        .json(
            Method::POST,
            "/api/v2/policy/urllist",
            Some(json!({"name": "small", "data": {"urls": ["c.example.com"], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["message"].as_str().unwrap().contains("already exists"));
    let (s, b) = sim
        .json(
            Method::POST,
            "/api/v2/policy/urllist",
            Some(json!({"name": "t", "data": {"urls": "a.example.com", "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["message"], "urls must be an array of URLs");
    let (s, b) = sim
        .json(
            Method::POST,
            "/api/v2/policy/urllist",
            Some(json!({"name": "t", "data": {"urls": [1, 2], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["message"], "urls must be an array of URLs");
    let (s, b) = sim
        .json(
            Method::POST,
            "/api/v2/policy/urllist",
            Some(json!({"name": "t", "data": {"urls": ["a.example.com"], "type": "fuzzy"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["message"], "data.type must be one of exact, regex");
    let resp = sim
        .req(Method::POST, "/api/v2/policy/urllist")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.json::<Value>().await.unwrap()["message"].is_string());
    let (s, _) = sim
        .json(Method::GET, "/api/v2/policy/urllist/999", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = sim
        .json(Method::GET, "/api/v2/policy/urllist/abc", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = sim
        .json(
            Method::PATCH,
            &format!("/api/v2/policy/urllist/{id}/merge"),
            Some(json!({"data": {"urls": ["a.example.com"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, b) = sim
        .json(Method::POST, "/api/v2/policy/urllist/5", None)
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(b["message"].is_string());
    let huge = "x".repeat(100 * 1024);
    let resp = sim
        .req(Method::POST, "/api/v2/policy/urllist")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(resp.json::<Value>().await.unwrap()["message"].is_string());
}

#[tokio::test]
async fn url_list_listing_pages_with_limit_and_offset() {
    let sim = start(args()).await;
    for i in 0..5 {
        create(&sim, &format!("l{i}"), &["a.example.com"], "exact").await;
    }
    let (_, page) = sim
        .json(
            Method::GET,
            "/api/v2/policy/urllist?limit=2&offset=3&field=name",
            None,
        )
        .await;
    assert_eq!(page, json!([{"name": "l3"}, {"name": "l4"}]));
    let (s, _) = sim
        .json(Method::GET, "/api/v2/policy/urllist?pending=2", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn url_list_default_limits_are_the_contract_ones() {
    let a = Args::default();
    assert_eq!(a.url_list_max_bytes, 7 * 1024 * 1024);
    assert_eq!(a.url_list_max_entries, 300_000);
    assert_eq!(a.file_hash_max_bytes, 8 * 1024 * 1024);
    // A list just under 300,000 entries and 7 MB is accepted; one more entry is not.
    let sim = start(args()).await;
    let urls: Vec<String> = (0..300_000).map(|i| format!("h{i}.example.com")).collect();
    let (s, b) = sim
        .json(
            Method::POST,
            "/api/v2/policy/urllist",
            Some(json!({"name": "big", "data": {"urls": urls, "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let id = b[0]["id"].as_i64().unwrap();
    let (s, b) = sim
        .json(
            Method::PATCH,
            &format!("/api/v2/policy/urllist/{id}/append"),
            Some(json!({"data": {"urls": ["one-more.example.com"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["message"].as_str().unwrap().contains("300000"));
}

// ---------------------------------------------------------------- file-hash list

#[tokio::test]
async fn file_hash_list_replace_and_duplicate_answer() {
    let sim = start(args()).await;
    let (s, b) = sim
        .v1(json!({"token": V1, "name": "iocx-file-hashes", "list": format!("{MD5},{SHA}")}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "success");
    assert_eq!(
        sim.emu
            .state
            .file_hash_list("iocx-file-hashes")
            .unwrap()
            .hashes,
        [MD5, SHA]
    );
    // The same set again (any order or case): the duplicate answer, with HTTP 200.
    let (s, b) = sim
        .v1(json!({"token": V1, "name": "iocx-file-hashes", "list": format!("{},{MD5}", SHA.to_uppercase())}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "error");
    assert!(
        b["errors"][0]
            .as_str()
            .unwrap()
            .contains("Duplicate request, no change in file hashes")
    );
    // Full-state replace.
    let (_, b) = sim
        .v1(json!({"token": V1, "name": "iocx-file-hashes", "list": SHA}))
        .await;
    assert_eq!(b["status"], "success");
    assert_eq!(
        sim.emu
            .state
            .file_hash_list("iocx-file-hashes")
            .unwrap()
            .hashes,
        [SHA]
    );
    let st = sim.sim_state().await;
    assert_eq!(st["file_hash_lists"]["iocx-file-hashes"]["count"], 1);

    // Form body and query parameters carry the same fields.
    let resp = sim
        .http
        .post(format!("{}/api/v1/updateFileHashList", sim.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("token", V1),
            ("name", "iocx-file-hashes"),
            ("list", MD5),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "success");
    let resp = sim
        .http
        .get(format!(
            "{}/api/v1/updateFileHashList?{}",
            sim.base,
            form(&[("token", V1), ("name", "iocx-file-hashes"), ("list", SHA)])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "success");

    // Errors: v1 envelope.
    for (body, needle) in [
        (
            json!({"token": "bad", "name": "iocx-file-hashes", "list": MD5}),
            "token",
        ),
        (json!({"name": "iocx-file-hashes", "list": MD5}), "token"),
        (
            json!({"token": V1, "name": "missing", "list": MD5}),
            "not found",
        ),
        (
            json!({"token": V1, "name": "iocx-file-hashes", "list": "abc,def"}),
            "Invalid file hash",
        ),
        (
            json!({"token": V1, "name": "iocx-file-hashes"}),
            "list is required",
        ),
        (
            json!({"token": V1, "name": 5, "list": MD5}),
            "name must be a string",
        ),
    ] {
        let (s, b) = sim.v1(body.clone()).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(b["status"], "error", "{body}");
        assert_eq!(b["errorCode"], "General Error");
        let errors = b["errors"].to_string();
        assert!(errors.contains(needle), "{body}: {errors}");
    }
    let resp = sim
        .http
        .post(format!("{}/api/v1/updateFileHashList", sim.base))
        .header("content-type", "application/json")
        .body("[1,")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "error");
}

#[tokio::test]
async fn file_hash_list_size_limit_and_options() {
    let sim = start(Args {
        file_hash_max_bytes: 100,
        file_hash_unknown_list: UnknownFileHashList::Create,
        v1_error_status: 400,
        ..args()
    })
    .await;
    let four = [MD5; 4].join(",");
    let distinct: Vec<String> = (0..4).map(|i| format!("{i}{}", &MD5[1..])).collect();
    let (s, b) = sim
        .v1(json!({"token": V1, "name": "new-list", "list": distinct.join(",")}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["errors"][0].as_str().unwrap().contains("exceeds"));
    // Duplicates inside one request count once.
    let (s, b) = sim
        .v1(json!({"token": V1, "name": "new-list", "list": four}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The duplicate answer stays 200 whatever --v1-error-status says.
    let (s, b) = sim
        .v1(json!({"token": V1, "name": "new-list", "list": MD5}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "error");
}

// ---------------------------------------------------------------- /_sim

#[tokio::test]
async fn sim_state_inject_and_reset() {
    let sim = start(Args {
        alerts: 30,
        ..args()
    })
    .await;
    let st = sim.sim_state().await;
    let total =
        st["alerts"]["malware"].as_u64().unwrap() + st["alerts"]["malsite"].as_u64().unwrap();
    assert_eq!(total, 30);
    sim.page("malsite", "tail-me", "tail").await;
    let created = sim
        .inject(json!({"alert_type": "malsite", "url": "https://known-bad.example/x", "malsite_category": ["Phishing"], "severity": "critical"}))
        .await;
    assert_eq!(created[0]["url"], "https://known-bad.example/x");
    let p = sim.page("malsite", "tail-me", "next").await;
    assert_eq!(p["result"][0]["url"], "https://known-bad.example/x");
    assert_eq!(p["result"][0]["malsite_category"], json!(["Phishing"]));
    assert_eq!(p["result"][0]["severity"], "critical");
    let st = sim.sim_state().await;
    assert_eq!(
        st["alerts"]["malsite"].as_u64().unwrap() + st["alerts"]["malware"].as_u64().unwrap(),
        31
    );
    assert!(
        st["iterators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["index"] == "tail-me")
    );

    let bad = sim
        .http
        .post(format!("{}/_sim/alerts", sim.base))
        .json(&json!({"alert_type": "virus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    create(&sim, "gone-after-reset", &["a.example.com"], "exact").await;
    let resp = sim
        .http
        .delete(format!("{}/_sim/state", sim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let st = sim.sim_state().await;
    assert_eq!(st["url_lists"], json!([]));
    assert_eq!(st["iterators"], json!([]));
    assert_eq!(
        st["alerts"]["malware"].as_u64().unwrap() + st["alerts"]["malsite"].as_u64().unwrap(),
        30
    );
}

#[tokio::test]
async fn alert_rate_keeps_alerts_coming() {
    let sim = start(Args {
        alerts: 0,
        alert_rate: Some(1200.0),
        ..args()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let counts = sim.emu.state.alert_counts();
    let total: usize = counts.values().sum();
    assert!(total >= 5, "{total} alerts after 0.8 s at 20/s");
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn fault_429_every_nth_with_retry_after_in_both_envelopes() {
    let sim = start(args()).await;
    sim.set_faults(FaultConfig {
        rate_limit_every: Some(2),
        retry_after_secs: 7,
        ..FaultConfig::default()
    })
    .await;
    let a = sim
        .req(Method::GET, "/api/v2/policy/urllist")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::OK);
    let b = sim
        .req(Method::GET, "/api/v2/policy/urllist")
        .send()
        .await
        .unwrap();
    assert_eq!(b.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(b.headers()["retry-after"], "7");
    assert!(b.json::<Value>().await.unwrap()["message"].is_string());
    let (s, _) = sim
        .v1(json!({"token": V1, "name": "iocx-file-hashes", "list": MD5}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = sim
        .v1(json!({"token": V1, "name": "iocx-file-hashes", "list": SHA}))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["status"], "error");
    assert!(body["errors"].is_array());
    let log = sim.emu.log.snapshot();
    assert_eq!(log.iter().filter(|r| r.injected).count(), 2);
}

#[tokio::test]
async fn fault_5xx_slow_and_outage() {
    let sim = start(Args {
        faults: FaultConfig {
            server_error_every: Some(1),
            server_error_status: 502,
            ..FaultConfig::default()
        },
        ..args()
    })
    .await;
    let (s, b) = sim.json(Method::GET, "/api/v2/policy/urllist", None).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert!(b["message"].is_string());

    sim.set_faults(FaultConfig {
        slow_ms: Some(300),
        ..FaultConfig::default()
    })
    .await;
    let t = Instant::now();
    let (s, _) = sim.json(Method::GET, "/api/v2/policy/urllist", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(300));

    sim.set_faults(FaultConfig {
        outage_secs: Some(60),
        ..FaultConfig::default()
    })
    .await;
    let (s, b) = sim.json(Method::GET, "/api/v2/policy/urllist", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(b["message"].is_string());
    sim.set_faults(FaultConfig::default()).await;
    let (s, _) = sim.json(Method::GET, "/api/v2/policy/urllist", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn fault_dropped_connection_then_resend_recovers_the_page() {
    let sim = start(Args {
        alerts: 40,
        page_size: 3,
        ..args()
    })
    .await;
    let all: Vec<String> = sim
        .emu
        .state
        .alerts(netskope::model::AlertType::Malsite)
        .iter()
        .map(|a| a["_id"].as_str().unwrap().to_string())
        .collect();
    let p1 = sim.page("malsite", "d", "head").await;
    assert_eq!(ids(&p1), all[0..3]);
    sim.set_faults(FaultConfig {
        drop_every: Some(1),
        ..FaultConfig::default()
    })
    .await;
    let broken = sim
        .req(
            Method::GET,
            "/api/v2/events/dataexport/alerts/malsite?index=d&operation=next",
        )
        .send()
        .await;
    let failed = match broken {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "the answer broke mid-body");
    sim.set_faults(FaultConfig::default()).await;
    // The cursor had advanced: resend gives the lost page, next the one after.
    let again = sim.page("malsite", "d", "resend").await;
    assert_eq!(ids(&again), all[3..6]);
    let p3 = sim.page("malsite", "d", "next").await;
    assert_eq!(ids(&p3), all[6..9]);
}

#[tokio::test]
async fn fault_capacity_reached_refuses_additions() {
    let sim = start(args()).await;
    let id = create(&sim, "cap", &["a.example.com"], "exact").await["id"]
        .as_i64()
        .unwrap();
    sim.set_faults(FaultConfig {
        capacity_reached: true,
        ..FaultConfig::default()
    })
    .await;
    let (s, b) = sim
        .json(
            Method::PATCH,
            &format!("/api/v2/policy/urllist/{id}/append"),
            Some(json!({"data": {"urls": ["b.example.com"], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["message"].as_str().unwrap().contains("capacity"));
    let (s, _) = sim
        .json(
            Method::POST,
            "/api/v2/policy/urllist",
            Some(json!({"name": "other", "data": {"urls": ["a.example.com"], "type": "exact"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, b) = sim
        .v1(json!({"token": V1, "name": "iocx-file-hashes", "list": MD5}))
        .await;
    assert_eq!(b["status"], "error");
    assert!(b["errors"][0].as_str().unwrap().contains("capacity"));
    // Reads and deploys still work.
    let (s, _) = sim
        .json(Method::POST, "/api/v2/policy/urllist/deploy", None)
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_get_the_vendor_envelope() {
    let sim = start(args()).await;
    let (s, b) = sim.json(Method::GET, "/api/v2/nothing/here", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(b["message"].is_string());
    let (s, b) = sim.json(Method::GET, "/api/v1/nothing", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(b["status"], "error");
}

#[tokio::test]
async fn default_page_holds_ten_thousand_alerts() {
    let sim = start(Args {
        alerts: 21_000,
        ..args()
    })
    .await;
    let total = sim
        .emu
        .state
        .alerts(netskope::model::AlertType::Malware)
        .len();
    assert!(total > 10_000 && total < 20_000, "{total}");
    let p1 = sim.page("malware", "big", "head").await;
    assert_eq!(ids(&p1).len(), 10_000);
    assert_eq!(p1["wait_time"], 0);
    let p2 = sim.page("malware", "big", "next").await;
    assert_eq!(ids(&p1).len() + ids(&p2).len(), total);
    assert_eq!(p2["wait_time"], 5);
}
