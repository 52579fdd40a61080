//! The MISP emulator over real HTTP on 127.0.0.1:0, asserted the way a client sees it: the API
//! key, PyMISP's start-up calls, event adds with invalid attributes, both restSearches with
//! filters and paging, tags, deletes, the static feed, faults and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_sim::common::{FaultConfig, SimHandle};
use iocx_sim::misp::{self, Args, Emulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

struct Sim {
    handle: SimHandle,
    emulator: Emulator,
    http: reqwest::Client,
}

impl Sim {
    async fn start(args: Args) -> Sim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (handle, emulator) = misp::start(listener, &args).await.unwrap();
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

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(path))
            .header("Authorization", KEY)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value, Option<String>) {
        let r = self
            .http
            .post(self.url(path))
            .header("Authorization", KEY)
            .header("Accept", "application/json")
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let count = r
            .headers()
            .get("x-result-count")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, r.json().await.unwrap_or(Value::Null), count)
    }
}

fn attrs(answer: &Value) -> Vec<Value> {
    answer["response"]["Attribute"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn the_key_is_required_and_pymisps_start_up_calls_answer() {
    let sim = Sim::start(Args::new(KEY)).await;
    for key in [None, Some("wrong")] {
        let mut r = sim.http.get(sim.url("/servers/getVersion"));
        if let Some(k) = key {
            r = r.header("Authorization", k);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body: Value = r.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("Authentication failed")
        );
        assert_eq!(body["url"], "/servers/getVersion");
    }
    // X-MISP-AUTH is the alternative header.
    let r = sim
        .http
        .get(sim.url("/servers/getVersion"))
        .header("X-MISP-AUTH", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (s, v) = sim.get("/servers/getVersion").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["version"].as_str().unwrap().starts_with("2.5."));
    let (_, me) = sim.get("/users/view/me").await;
    assert!(
        me["Role"].is_object() && me["UserSetting"].is_object(),
        "{me}"
    );
    let (_, types) = sim.get("/attributes/describeTypes.json").await;
    assert_eq!(
        types["result"]["sane_defaults"]["ip-dst"]["default_category"],
        "Network activity"
    );
    let (s, v) = sim.get("/no/such/path").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["url"], "/no/such/path");
    sim.handle.stop().await;
}

#[tokio::test]
async fn events_are_added_viewed_searched_and_paged() {
    let sim = Sim::start(Args::new(KEY)).await;
    let attributes: Vec<Value> = (0..25)
        .map(|i| json!({"type": "ip-dst", "value": format!("198.51.100.{i}")}))
        .chain([
            json!({"type": "domain", "value": "Evil.Example", "Tag": [{"name": "kill-chain:c2"}]}),
            json!({"type": "md5", "value": "not-a-hash"}),
            json!({"type": "url", "value": "http://evil.example/a", "to_ids": false}),
        ])
        .collect();
    let (s, added, _) = sim
        .post(
            "/events/add",
            &json!({"Event": {"info": "Loopback test", "threat_level_id": "1", "published": true,
                "Tag": [{"name": "tlp:amber"}], "Attribute": attributes}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{added}");
    let event = &added["Event"];
    let id = event["id"].as_str().unwrap().to_string();
    let uuid = event["uuid"].as_str().unwrap().to_string();
    // The bad md5 was dropped; the domain stored lowercased.
    assert_eq!(event["Attribute"].as_array().unwrap().len(), 27);
    assert!(event["Attribute"].to_string().contains("evil.example"));
    assert_eq!(event["Tag"][0]["name"], "tlp:amber");

    // The same UUID again is refused with where the event is.
    let r = sim
        .http
        .post(sim.url("/events/add"))
        .header("Authorization", KEY)
        .json(&json!({"Event": {"info": "again", "uuid": uuid}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.headers().get("location").unwrap().to_str().unwrap(),
        format!("/events/view/{id}")
    );
    // A missing info is a validation failure naming the field.
    let (s, v, _) = sim
        .post("/events/add", &json!({"Event": {"info": ""}}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v["errors"].to_string().contains("info"), "{v}");

    let (s, viewed) = sim.get(&format!("/events/view/{uuid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(viewed["Event"]["id"], id.as_str());

    // Pages of 10 with a count header; the filter keeps IDS attributes only.
    let mut seen = Vec::new();
    for page in 1.. {
        let (s, v, count) = sim
            .post(
                "/attributes/restSearch",
                &json!({"returnFormat": "json", "page": page, "limit": 10, "to_ids": 1,
                    "timestamp": "1d", "includeEventTags": 1}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(count.as_deref(), Some("26"));
        let a = attrs(&v);
        seen.extend(a.iter().map(|a| a["value"].as_str().unwrap().to_string()));
        if a.len() < 10 {
            break;
        }
        let first = &a[0];
        assert_eq!(first["Event"]["info"], "Loopback test");
        assert!(first["Tag"].to_string().contains("tlp:amber"), "{first}");
    }
    assert_eq!(seen.len(), 26);
    assert!(!seen.contains(&"http://evil.example/a".to_string()));

    // Type, tag and negated filters.
    let (_, v, _) = sim
        .post(
            "/attributes/restSearch",
            &json!({"returnFormat": "json", "type": ["domain", "url"], "tags": ["kill-chain:%"]}),
        )
        .await;
    assert_eq!(attrs(&v).len(), 1);
    let (_, v, _) = sim
        .post(
            "/attributes/restSearch",
            &json!({"returnFormat": "json", "tags": ["!tlp:amber"]}),
        )
        .await;
    assert!(attrs(&v).is_empty(), "event tags count for the negation");
    // A timestamp in the future matches nothing.
    let (_, v, _) = sim
        .post(
            "/attributes/restSearch",
            &json!({"returnFormat": "json", "timestamp": (chrono::Utc::now().timestamp() + 100).to_string()}),
        )
        .await;
    assert!(attrs(&v).is_empty());
    // A malformed filter is a 400 naming it.
    let (s, v, _) = sim
        .post("/attributes/restSearch", &json!({"limit": "many"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("limit"), "{v}");

    // Events restSearch with metadata carries the threat level and no attributes.
    let (s, v, _) = sim
        .post(
            "/events/restSearch",
            &json!({"returnFormat": "json", "eventid": [id], "metadata": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["response"][0]["Event"]["threat_level_id"], "1");
    assert!(v["response"][0]["Event"].get("Attribute").is_none());

    // Soft delete hides an attribute from searches; the feed follows.
    let victim = viewed["Event"]["Attribute"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _, _) = sim
        .post(&format!("/attributes/delete/{victim}"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v, count) = sim
        .post(
            "/attributes/restSearch",
            &json!({"returnFormat": "json", "to_ids": 1}),
        )
        .await;
    assert_eq!(attrs(&v).len(), 25);
    assert_eq!(count.as_deref(), Some("25"));
    let manifest: Value = sim
        .http
        .get(sim.url("/feed/manifest.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest[&uuid]["threat_level_id"], 1);
    let hashes = sim
        .http
        .get(sim.url("/feed/hashes.csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hashes.lines().count(), 26);

    // Tags: attach by name to the event, found by search.
    let (s, _, _) = sim
        .post(
            "/tags/attachTagToObject",
            &json!({"uuid": uuid, "tag": "iocx:test"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, found) = sim.get("/tags/search/iocx").await;
    assert_eq!(found[0]["Tag"]["name"], "iocx:test");
    assert_eq!(sim.emulator.state.len(), 1);
    sim.handle.stop().await;
}

#[tokio::test]
async fn seeded_events_page_and_faults_answer_in_misps_envelope() {
    let mut args = Args::new(KEY);
    args.events = 40;
    let sim = Sim::start(args).await;
    let (_, all, count) = sim
        .post("/attributes/restSearch", &json!({"returnFormat": "json"}))
        .await;
    let total: usize = count.unwrap().parse().unwrap();
    assert_eq!(attrs(&all).len(), total);
    assert!(total >= 40 * 5);
    let mut paged = 0;
    for page in 1.. {
        let (_, v, _) = sim
            .post(
                "/attributes/restSearch",
                &json!({"returnFormat": "json", "page": page, "limit": 100}),
            )
            .await;
        paged += attrs(&v).len();
        if attrs(&v).len() < 100 {
            break;
        }
    }
    assert_eq!(paged, total);

    sim.emulator.faults.set(FaultConfig {
        rate_limit_every: Some(1),
        retry_after_secs: 7,
        ..FaultConfig::default()
    });
    let r = sim
        .http
        .post(sim.url("/attributes/restSearch"))
        .header("Authorization", KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers().get("retry-after").unwrap(), "7");
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");
    sim.emulator.faults.set(FaultConfig::default());

    // Hostile input: not JSON, not an object, a huge body.
    let r = sim
        .http
        .post(sim.url("/events/add"))
        .header("Authorization", KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (s, _, _) = sim.post("/attributes/restSearch", &json!([1, 2])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let r = sim
        .http
        .post(sim.url("/events/add"))
        .header("Authorization", KEY)
        .body(vec![b' '; 17 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    sim.handle.stop().await;
}
