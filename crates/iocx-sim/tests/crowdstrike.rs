//! The CrowdStrike emulator over real HTTP on 127.0.0.1:0, asserted the way a client sees it:
//! OAuth2, the envelope and rate-limit headers, FQL, offset and `after` paging past the offset
//! window, per-item create errors, the batch cap, the capacity refusal, updates, deletes by id
//! and by filter, alerts, faults and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use iocx_sim::common::{FaultConfig, SimHandle};
use iocx_sim::crowdstrike::{self, Args, CAPACITY_MESSAGE, Emulator, PartialCreate};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ID: &str = "test-client";
const SECRET: &str = "test-secret";
const ENTITIES: &str = "/iocs/entities/indicators/v1";
const COMBINED: &str = "/iocs/combined/indicator/v1";
const QUERIES: &str = "/iocs/queries/indicators/v1";

/// A form body (this build of reqwest has no `form` feature).
trait FormBody {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

struct Sim {
    handle: SimHandle,
    emulator: Emulator,
    http: reqwest::Client,
    token: String,
}

impl Sim {
    async fn start(args: Args) -> Sim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (handle, emulator) = crowdstrike::start(listener, &args).await.unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut sim = Sim {
            handle,
            emulator,
            http,
            token: String::new(),
        };
        sim.token = sim.new_token().await;
        sim
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url)
    }

    async fn new_token(&self) -> String {
        let r = self
            .http
            .post(self.url("/oauth2/token"))
            .form_body(&[("client_id", ID), ("client_secret", SECRET)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        self.http
            .get(format!("{}?{query}", self.url(path)))
            .bearer_auth(&self.token)
    }

    fn delete(&self, query: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        self.http
            .delete(format!("{}?{query}", self.url(ENTITIES)))
            .bearer_auth(&self.token)
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
    }

    fn patch(&self, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .patch(self.url(ENTITIES))
            .bearer_auth(&self.token)
            .json(body)
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
    Args::new(ID, SECRET)
}

fn faults() -> FaultConfig {
    FaultConfig {
        retry_after_secs: 1,
        server_error_status: 500,
        ..FaultConfig::default()
    }
}

fn ioc(t: &str, v: &str, action: &str) -> Value {
    json!({
        "type": t, "value": v, "action": action, "severity": "high",
        "platforms": ["windows", "mac", "linux"], "applied_globally": true,
        "source": "iocx test", "tags": ["iocx"], "description": "test",
    })
}

fn sha(n: usize) -> String {
    format!("{n:064x}")
}

/// Asserts the CrowdStrike envelope and returns the body.
async fn envelope(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert!(response.headers().contains_key("x-cs-traceid"));
    assert!(!response.headers().contains_key("x-cs-region"));
    let body: Value = response.json().await.unwrap();
    assert!(body["meta"]["trace_id"].is_string(), "{body}");
    assert!(body["meta"]["query_time"].is_number(), "{body}");
    assert!(body["meta"]["powered_by"].is_string(), "{body}");
    assert!(body["errors"].is_array(), "{body}");
    body
}

async fn error_message(response: reqwest::Response, status: StatusCode) -> String {
    let body = envelope(response, status).await;
    assert_eq!(body["errors"][0]["code"], status.as_u16(), "{body}");
    body["errors"][0]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn oauth2_tokens_are_issued_checked_revoked_and_expire() {
    let mut a = args();
    a.token_lifetime_secs = 1;
    let sim = Sim::start(a).await;
    // The token answer: 201, bearer, expires_in, never a region.
    let r = sim
        .http
        .post(sim.url("/oauth2/token"))
        .form_body(&[
            ("client_id", ID),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(!r.headers().contains_key("x-cs-region"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1);
    // Wrong credentials: 403 with the documented words; missing ones: 400.
    let r = sim
        .http
        .post(sim.url("/oauth2/token"))
        .form_body(&[("client_id", ID), ("client_secret", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_message(r, StatusCode::FORBIDDEN).await,
        "access denied, authorization failed"
    );
    let r = sim
        .http
        .post(sim.url("/oauth2/token"))
        .form_body(&[("client_id", ID)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // No token, a wrong token: 401.
    let r = sim.http.get(sim.url(QUERIES)).send().await.unwrap();
    assert_eq!(
        error_message(r, StatusCode::UNAUTHORIZED).await,
        "access denied, invalid bearer token"
    );
    let r = sim
        .http
        .get(sim.url(QUERIES))
        .bearer_auth("forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A fresh token works until it expires.
    let token = sim.new_token().await;
    let r = sim
        .http
        .get(sim.url(QUERIES))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = sim
        .http
        .get(sim.url(QUERIES))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Revoke: basic auth with the client's credentials; the token stops working.
    let token = sim.new_token().await;
    let r = sim
        .http
        .post(sim.url("/oauth2/revoke"))
        .basic_auth(ID, Some("wrong"))
        .form_body(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = sim
        .http
        .post(sim.url("/oauth2/revoke"))
        .basic_auth(ID, Some(SECRET))
        .form_body(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    envelope(r, StatusCode::OK).await;
    let r = sim
        .http
        .get(sim.url(QUERIES))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn offset_pages_stop_at_the_window_and_after_scrolls_past_it() {
    let mut a = args();
    a.iocs = 130;
    a.offset_window = 50;
    let sim = Sim::start(a).await;
    let held: BTreeSet<String> = sim
        .emulator
        .state
        .indicators()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(held.len(), 130);
    // Offset within the window; a page crossing it is cut; at the window: 400 naming `after`.
    let r = sim
        .get(COMBINED, &[("offset", "40"), ("limit", "20")])
        .send()
        .await
        .unwrap();
    let body = envelope(r, StatusCode::OK).await;
    assert_eq!(body["resources"].as_array().unwrap().len(), 10);
    assert_eq!(body["meta"]["pagination"]["total"], 130);
    assert_eq!(body["meta"]["pagination"]["offset"], 40);
    let r = sim.get(COMBINED, &[("offset", "50")]).send().await.unwrap();
    assert!(
        error_message(r, StatusCode::BAD_REQUEST)
            .await
            .contains("'after'")
    );
    let r = sim
        .get(COMBINED, &[("offset", "0"), ("after", "x")])
        .send()
        .await
        .unwrap();
    assert!(
        error_message(r, StatusCode::BAD_REQUEST)
            .await
            .contains("mutually exclusive")
    );
    // Scrolling sees every id once, past the window, and ends with an empty `after`.
    let mut seen = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let mut q = vec![("limit", "25"), ("sort", "modified_on|desc")];
        if !after.is_empty() {
            q.push(("after", after.as_str()));
        }
        let body = envelope(sim.get(QUERIES, &q).send().await.unwrap(), StatusCode::OK).await;
        assert_eq!(body["meta"]["pagination"]["total"], 130);
        seen.extend(
            body["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
        after = body["meta"]["pagination"]["after"]
            .as_str()
            .unwrap()
            .to_string();
        pages += 1;
        if after.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 6);
    assert_eq!(seen.len(), 130);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), held);
    // A token does not fit another sort, nor is a forged one accepted.
    let body = envelope(
        sim.get(QUERIES, &[("limit", "5")]).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let token = body["meta"]["pagination"]["after"]
        .as_str()
        .unwrap()
        .to_string();
    let r = sim
        .get(QUERIES, &[("after", token.as_str()), ("sort", "value.asc")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = sim
        .get(QUERIES, &[("after", "bm90LWEtdG9rZW4")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Limits and sorts are checked.
    for q in [
        [("limit", "0")],
        [("limit", "2001")],
        [("sort", "colour.asc")],
        [("offset", "-1")],
    ] {
        let r = sim.get(COMBINED, &q).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q:?}");
    }
}

#[tokio::test]
async fn scrolling_neither_skips_nor_repeats_while_indicators_change() {
    let mut a = args();
    a.iocs = 60;
    let sim = Sim::start(a).await;
    let body = envelope(
        sim.get(QUERIES, &[("limit", "20")]).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let mut seen: Vec<String> = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut after = body["meta"]["pagination"]["after"]
        .as_str()
        .unwrap()
        .to_string();
    // Delete one already seen and add new ones (created later, so they sort last).
    let r = sim
        .delete(&[("ids", seen[0].as_str())])
        .send()
        .await
        .unwrap();
    envelope(r, StatusCode::OK).await;
    let r = sim
        .post(
            ENTITIES,
            &json!({"indicators": [ioc("sha256", &sha(9_000_001), "detect")]}),
        )
        .send()
        .await
        .unwrap();
    envelope(r, StatusCode::CREATED).await;
    while !after.is_empty() {
        let body = envelope(
            sim.get(QUERIES, &[("limit", "20"), ("after", after.as_str())])
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        seen.extend(
            body["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
        after = body["meta"]["pagination"]["after"]
            .as_str()
            .unwrap()
            .to_string();
    }
    assert_eq!(seen.len(), 61);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 61);
}

#[tokio::test]
async fn fql_filters_select_what_netskope_asks_for() {
    let mut a = args();
    a.iocs = 200;
    let sim = Sim::start(a).await;
    let all = sim.emulator.state.indicators();
    let filter =
        "type: ['sha256', 'md5']+modified_on:>='2000-01-01T00:00:00.000000Z'+tags:!'netskope-ce'";
    let body = envelope(
        sim.get(
            COMBINED,
            &[
                ("filter", filter),
                ("limit", "2000"),
                ("sort", "modified_on|asc"),
            ],
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let got: BTreeSet<String> = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = all
        .iter()
        .filter(|i| i.ioc_type.is_hash() && !i.tags.iter().any(|t| t == "netskope-ce"))
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(got, want);
    assert!(!want.is_empty());
    // A value list (how Netskope checks existence and retracts), OR and NOT.
    let values: Vec<String> = all.iter().take(3).map(|i| i.value.clone()).collect();
    let list = format!(
        "value: [{}]",
        values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let body = envelope(
        sim.get(QUERIES, &[("filter", list.as_str())])
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["meta"]["pagination"]["total"], 3);
    let body = envelope(
        sim.get(QUERIES, &[("filter", "type:'ipv4',type:'ipv6'")])
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["meta"]["pagination"]["total"], 80);
    let body = envelope(
        sim.get(
            QUERIES,
            &[("filter", "type:!['ipv4','ipv6']+created_on:<'2999-01-01'")],
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["meta"]["pagination"]["total"], 120);
    // Bad filters are 400s that say where.
    for bad in [
        "colour:'red'",
        "type:'md5'+",
        "type:['md5'",
        "(type:'md5'",
        "type",
    ] {
        let r = sim.get(QUERIES, &[("filter", bad)]).send().await.unwrap();
        let message = error_message(r, StatusCode::BAD_REQUEST).await;
        assert!(message.contains("filter"), "{bad}: {message}");
    }
}

#[tokio::test]
async fn creates_answer_per_item_errors_and_respect_the_batch_cap() {
    let sim = Sim::start(args()).await;
    let good = ioc("sha256", &sha(1), "prevent");
    let r = sim
        .post(
            ENTITIES,
            &json!({"comment": "c", "indicators": [good.clone()]}),
        )
        .send()
        .await
        .unwrap();
    let body = envelope(r, StatusCode::CREATED).await;
    let created = &body["resources"][0];
    assert_eq!(created["id"].as_str().unwrap().len(), 64);
    assert_eq!(created["created_by"], ID);
    assert_eq!(created["expired"], false);
    assert_eq!(created["severity"], "high");
    let mut no_platform = ioc("md5", &format!("{:032x}", 5), "detect");
    no_platform["platforms"] = json!([]);
    let mut no_scope = ioc("md5", &format!("{:032x}", 6), "detect");
    no_scope["applied_globally"] = json!(false);
    let mut no_severity = ioc("md5", &format!("{:032x}", 7), "detect");
    no_severity.as_object_mut().unwrap().remove("severity");
    let mut past = ioc("md5", &format!("{:032x}", 8), "detect");
    past["expiration"] = json!("2001-01-01T00:00:00Z");
    let batch = json!({"indicators": [
        good,                                        // duplicate of what is held
        ioc("sha256", "xyz", "detect"),              // bad value
        ioc("domain", "evil.example", "prevent"),    // hash-only action
        ioc("ipv4", "203.0.113.5", "block"),         // unknown action
        no_platform, no_scope, no_severity, past,
        ioc("domain", "EVIL-TWO.example", "detect"), // valid (lower-cased)
        ioc("domain", "evil-two.example", "detect"), // duplicate within the batch
        ioc("ipv6", "2001:DB8::1", "no_action"),     // valid
    ]});
    let r = sim.post(ENTITIES, &batch).send().await.unwrap();
    let body = envelope(r, StatusCode::BAD_REQUEST).await;
    let resources = body["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 11);
    let fields: Vec<&str> = resources
        .iter()
        .map(|r| r["field_name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        fields,
        [
            "value",
            "value",
            "action",
            "action",
            "platforms",
            "applied_globally",
            "severity",
            "expiration",
            "",
            "value",
            ""
        ]
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Duplicate type: 'sha256' and value:")
    );
    assert_eq!(body["errors"].as_array().unwrap().len(), 9);
    assert_eq!(resources[8]["value"], "evil-two.example");
    assert_eq!(resources[10]["value"], "2001:db8::1");
    assert_eq!(sim.emulator.state.count(), 3);
    // The batch cap: 2,000 per request, whole-request 400.
    let many: Vec<Value> = (0..2001)
        .map(|n| ioc("sha256", &sha(100_000 + n), "detect"))
        .collect();
    let r = sim
        .post(ENTITIES, &json!({"indicators": many}))
        .send()
        .await
        .unwrap();
    assert!(
        error_message(r, StatusCode::BAD_REQUEST)
            .await
            .contains("maximum is 2000")
    );
    let exactly: Vec<Value> = (0..2000)
        .map(|n| ioc("sha256", &sha(100_000 + n), "detect"))
        .collect();
    let r = sim
        .post(ENTITIES, &json!({"indicators": exactly}))
        .send()
        .await
        .unwrap();
    envelope(r, StatusCode::CREATED).await;
    assert_eq!(sim.emulator.state.count(), 2003);
    // Hostile bodies get the envelope.
    for body in [
        "not json",
        "[]",
        "{\"indicators\": 5}",
        "{\"indicators\": []}",
        "{\"indicators\": [7]}",
    ] {
        let r = sim
            .http
            .post(sim.url(ENTITIES))
            .bearer_auth(&sim.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        envelope(r, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn reject_all_stores_nothing_when_an_item_is_refused() {
    let mut a = args();
    a.partial_create = PartialCreate::RejectAll;
    let sim = Sim::start(a).await;
    let r = sim
        .post(
            ENTITIES,
            &json!({"indicators": [ioc("sha256", &sha(1), "detect"), ioc("md5", "bad", "detect")]}),
        )
        .send()
        .await
        .unwrap();
    let body = envelope(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
    assert_eq!(sim.emulator.state.count(), 0);
}

#[tokio::test]
async fn the_capacity_refuses_whole_creates_with_the_documented_words() {
    let mut a = args();
    a.capacity = 10;
    let sim = Sim::start(a).await;
    let batch = |from: usize, n: usize| json!({"indicators": (from..from + n).map(|i| ioc("sha256", &sha(i), "detect")).collect::<Vec<_>>()});
    envelope(
        sim.post(ENTITIES, &batch(0, 8)).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let r = sim.post(ENTITIES, &batch(8, 5)).send().await.unwrap();
    assert_eq!(
        error_message(r, StatusCode::BAD_REQUEST).await,
        CAPACITY_MESSAGE
    );
    assert_eq!(sim.emulator.state.count(), 8);
    envelope(
        sim.post(ENTITIES, &batch(8, 2)).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // Netskope's pre-check reads the total of a plain listing.
    let body = envelope(sim.get(COMBINED, &[]).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(body["meta"]["pagination"]["total"], 10);
    // The fault refuses any create the same way.
    sim.emulator.state.clear();
    sim.set_faults(FaultConfig {
        capacity_reached: true,
        ..faults()
    })
    .await;
    let r = sim.post(ENTITIES, &batch(0, 1)).send().await.unwrap();
    assert_eq!(
        error_message(r, StatusCode::BAD_REQUEST).await,
        CAPACITY_MESSAGE
    );
}

#[tokio::test]
async fn updates_by_id_and_in_bulk_and_deletes_by_ids_and_filter() {
    let sim = Sim::start(args()).await;
    let r = sim
        .post(
            ENTITIES,
            &json!({"indicators": [
                ioc("domain", "a.example", "detect"), ioc("domain", "b.example", "detect"),
                ioc("sha256", &sha(1), "prevent"), ioc("md5", &format!("{:032x}", 1), "allow"),
            ]}),
        )
        .send()
        .await
        .unwrap();
    let body = envelope(r, StatusCode::CREATED).await;
    let ids: Vec<String> = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    // By id: one good, one unknown, one breaking a rule (prevent on a domain).
    let r = sim
        .patch(&json!({"comment": "c", "indicators": [
            {"id": ids[0], "severity": "low", "expiration": "2999-01-01T00:00:00Z"},
            {"id": "f".repeat(64), "severity": "low"},
            {"id": ids[1], "action": "prevent"},
        ]}))
        .send()
        .await
        .unwrap();
    let body = envelope(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["resources"][0]["severity"], "low");
    assert_eq!(body["errors"][0]["code"], 404);
    assert_eq!(body["errors"][1]["code"], 400);
    // In bulk by filter, with falconpy's empty item beside it.
    let r = sim
        .patch(&json!({"bulk_update": {"filter": "type:'domain'", "tags": ["bulk"]}, "indicators": [{}]}))
        .send()
        .await
        .unwrap();
    let body = envelope(r, StatusCode::OK).await;
    assert_eq!(body["resources"].as_array().unwrap().len(), 2);
    assert!(
        body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["tags"] == json!(["bulk"]))
    );
    // Get by ids with one unknown.
    let unknown = "e".repeat(64);
    let r = sim
        .get(
            ENTITIES,
            &[("ids", ids[2].as_str()), ("ids", unknown.as_str())],
        )
        .send()
        .await
        .unwrap();
    let body = envelope(r, StatusCode::OK).await;
    assert_eq!(body["resources"].as_array().unwrap().len(), 1);
    assert_eq!(body["errors"][0]["id"], unknown);
    // Delete by ids (one unknown), then by filter; the filter wins over ids.
    let r = sim
        .delete(&[("ids", ids[2].as_str()), ("ids", unknown.as_str())])
        .send()
        .await
        .unwrap();
    let body = envelope(r, StatusCode::OK).await;
    assert_eq!(body["resources"], json!([ids[2]]));
    let r = sim
        .delete(&[("ids", unknown.as_str())])
        .send()
        .await
        .unwrap();
    envelope(r, StatusCode::NOT_FOUND).await;
    let r = sim
        .delete(&[
            ("filter", "value:['a.example','b.example']"),
            ("ids", ids[3].as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body = envelope(r, StatusCode::OK).await;
    assert_eq!(body["resources"].as_array().unwrap().len(), 2);
    assert_eq!(sim.emulator.state.count(), 1);
    let r = sim.delete(&[]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn expired_indicators_stay_with_no_action() {
    let sim = Sim::start(args()).await;
    let mut item = ioc("sha256", &sha(3), "prevent");
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1200)).to_rfc3339();
    item["expiration"] = json!(soon);
    envelope(
        sim.post(ENTITIES, &json!({"indicators": [item]}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1400)).await;
    let body = envelope(
        sim.get(COMBINED, &[("filter", "expired:true")])
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["resources"][0]["action"], "no_action");
    assert_eq!(body["resources"][0]["expired"], true);
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_both_retry_headers() {
    let mut a = args();
    a.rate_limit_per_minute = 3;
    let sim = Sim::start(a).await;
    for remaining in ["2", "1", "0"] {
        let r = sim.get(QUERIES, &[]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert_eq!(r.headers()["x-ratelimit-remaining"], remaining);
    }
    let r = sim.get(QUERIES, &[]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let at: i64 = r.headers()["x-ratelimit-retryafter"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let secs: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((55..=61).contains(&secs), "{secs}");
    assert!((at - now - secs).abs() <= 1, "{at} {now} {secs}");
    assert_eq!(
        error_message(r, StatusCode::TOO_MANY_REQUESTS).await,
        "API rate limit exceeded."
    );
    // Tokens are not rate limited.
    sim.new_token().await;
}

#[tokio::test]
async fn alerts_page_by_after_with_netskope_filters() {
    let mut a = args();
    a.alerts = 40;
    let sim = Sim::start(a).await;
    let r = sim
        .http
        .post(sim.url("/_sim/alerts"))
        .json(&json!([{"ioc_type": "sha256", "ioc_value": sha(77), "ioc_source": "Netskope - Cloud Threat Exchange | feed"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let all = sim.emulator.state.alerts();
    assert_eq!(all.len(), 41);
    let filter = "updated_timestamp:>='2000-01-01T00:00:00.000000Z'+ioc_type:['hash_sha256', 'sha256', 'hash_md5', 'md5']+ioc_source:!*'Netskope - Cloud Threat Exchange*'+pattern_disposition:![4096]";
    let want = all
        .iter()
        .filter(|a| ["hash_sha256", "sha256", "hash_md5", "md5"].contains(&a.ioc_type.as_str()))
        .filter(|a| !a.ioc_source.starts_with("Netskope - Cloud Threat Exchange"))
        .filter(|a| a.pattern_disposition != 4096)
        .count();
    let mut got = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut body = json!({"limit": 5, "filter": filter, "sort": "updated_timestamp|asc"});
        if let Some(a) = &after {
            body["after"] = json!(a);
        }
        let page = envelope(
            sim.post("/alerts/combined/alerts/v1", &body)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        got.extend(page["resources"].as_array().unwrap().iter().cloned());
        after = page["meta"]["pagination"]["after"]
            .as_str()
            .filter(|a| !a.is_empty())
            .map(str::to_string);
        if after.is_none() {
            break;
        }
    }
    assert_eq!(got.len(), want);
    let stamps: Vec<&str> = got
        .iter()
        .map(|a| a["updated_timestamp"].as_str().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        got.iter()
            .all(|a| a["ioc_value"].is_string() && a["composite_id"].is_string())
    );
    let r = sim
        .post("/alerts/combined/alerts/v1", &json!({"limit": 1001}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn helper_queries_list_the_value_domains() {
    let sim = Sim::start(args()).await;
    let body = envelope(
        sim.get("/iocs/queries/ioc-types/v1", &[])
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        body["resources"],
        json!(["domain", "ipv4", "ipv6", "md5", "sha256"])
    );
    let body = envelope(
        sim.get("/iocs/queries/actions/v1", &[])
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["resources"].as_array().unwrap().len(), 5);
    let body = envelope(
        sim.get("/iocs/entities/actions/v1", &[("ids", "prevent")])
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["resources"][0]["ioc_types"], json!(["sha256", "md5"]));
    let r = sim.get("/no/such/v1", &[]).send().await.unwrap();
    envelope(r, StatusCode::NOT_FOUND).await;
    let r = sim
        .http
        .put(sim.url(ENTITIES))
        .bearer_auth(&sim.token)
        .send()
        .await
        .unwrap();
    envelope(r, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn faults_come_in_the_crowdstrike_envelope() {
    let sim = Sim::start(args()).await;
    // 429 every other request, with both retry headers.
    sim.set_faults(FaultConfig {
        rate_limit_every: Some(2),
        retry_after_secs: 3,
        ..faults()
    })
    .await;
    let first = sim.get(QUERIES, &[]).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let r = sim.get(QUERIES, &[]).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "3");
    let at: i64 = r.headers()["x-ratelimit-retryafter"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((at - chrono::Utc::now().timestamp() - 3).abs() <= 1);
    assert_eq!(
        error_message(r, StatusCode::TOO_MANY_REQUESTS).await,
        "API rate limit exceeded."
    );
    // 5xx.
    sim.set_faults(FaultConfig {
        server_error_every: Some(1),
        server_error_status: 503,
        ..faults()
    })
    .await;
    let r = sim.get(QUERIES, &[]).send().await.unwrap();
    error_message(r, StatusCode::SERVICE_UNAVAILABLE).await;
    // An outage.
    sim.set_faults(FaultConfig {
        outage_secs: Some(30),
        ..faults()
    })
    .await;
    let r = sim.get(QUERIES, &[]).send().await.unwrap();
    error_message(r, StatusCode::SERVICE_UNAVAILABLE).await;
    // Slow answers.
    sim.set_faults(FaultConfig {
        slow_ms: Some(300),
        ..faults()
    })
    .await;
    let started = Instant::now();
    let r = sim.get(QUERIES, &[]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Dropped connections.
    sim.set_faults(FaultConfig {
        drop_every: Some(1),
        ..faults()
    })
    .await;
    let outcome = match sim.get(QUERIES, &[]).send().await {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(outcome.is_err());
    // The admin routes are never faulted, and the state is readable and clearable.
    sim.set_faults(FaultConfig {
        server_error_every: Some(1),
        ..faults()
    })
    .await;
    let state: Value = sim
        .http
        .get(sim.url("/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(state["indicators"].is_array() && state["alerts"].is_array());
    let r = sim
        .http
        .delete(sim.url("/_sim/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let log: Value = sim
        .http
        .get(sim.url("/_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["injected"] == true)
    );
}
