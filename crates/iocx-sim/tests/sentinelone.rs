//! The SentinelOne emulator over real HTTP on 127.0.0.1:0, driven the way Netskope's plugin
//! drives the console (SentinelOne has no official Python SDK to check with): `ApiToken` auth,
//! scoped creates in batches of 2,500, the partial-failure answer and its retry, cursor paging
//! of IOCs and threats, deletes by filter, rate limits, faults and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use iocx_sim::common::{FaultConfig, SimHandle};
use iocx_sim::sentinelone::{self, Args, Emulator, ErrorDetailStyle, InvalidIocs, UserScope};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "s1-test-token";
const IOCS: &str = "/web/api/v2.1/threat-intelligence/iocs";
const THREATS: &str = "/web/api/v2.1/threats";

struct Sim {
    handle: SimHandle,
    emulator: Emulator,
    http: reqwest::Client,
}

impl Sim {
    async fn start(args: Args) -> Sim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (handle, emulator) = sentinelone::start(listener, &args).await.unwrap();
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

    fn get(&self, path: &str, query: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        self.http
            .get(format!("{}?{query}", self.url(path)))
            .header("Authorization", format!("ApiToken {TOKEN}"))
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(IOCS))
            .header("Authorization", format!("ApiToken {TOKEN}"))
            .json(body)
    }

    fn delete(&self, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .delete(self.url(IOCS))
            .header("Authorization", format!("ApiToken {TOKEN}"))
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
    Args::new(TOKEN)
}

fn faults() -> FaultConfig {
    FaultConfig {
        retry_after_secs: 1,
        server_error_status: 500,
        ..FaultConfig::default()
    }
}

/// An IOC the way Netskope's plugin builds it.
fn ce_ioc(t: &str, v: &str) -> Value {
    json!({
        "value": v, "type": t, "source": "Netskope CE | feed", "externalId": v,
        "method": "EQUALS", "creationTime": "2024-05-01T10:00:00Z", "validUntil": null,
        "description": "shared by iocx",
    })
}

fn sha(n: usize) -> String {
    format!("{n:064x}")
}

/// Asserts SentinelOne's error envelope and returns (code, detail).
async fn error(response: reqwest::Response, status: StatusCode) -> (u64, String) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    let e = &body["errors"][0];
    assert!(e["title"].is_string(), "{body}");
    (
        e["code"].as_u64().unwrap(),
        e["detail"].as_str().unwrap_or_default().to_string(),
    )
}

async fn ok(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn api_tokens_are_checked() {
    let sim = Sim::start(args()).await;
    let r = sim.http.get(sim.url(IOCS)).send().await.unwrap();
    assert_eq!(error(r, StatusCode::UNAUTHORIZED).await.0, 4_010_010);
    let r = sim
        .http
        .get(sim.url(IOCS))
        .header("Authorization", "ApiToken wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(error(r, StatusCode::UNAUTHORIZED).await.0, 4_010_010);
    let r = sim
        .http
        .get(sim.url(IOCS))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = ok(sim
        .get("/web/api/v2.1/system/info", &[])
        .send()
        .await
        .unwrap())
    .await;
    assert!(body["data"]["version"].is_string());
    let body = ok(sim
        .get("/web/api/v2.1/sites", &[("name", "iocx lab")])
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"]["sites"][0]["id"], "1100000000000000003");
    let body = ok(sim
        .get("/web/api/v2.1/sites", &[("name", "nope")])
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"]["sites"], json!([]));
}

#[tokio::test]
async fn creates_store_iocs_in_the_scope_with_default_validity() {
    let sim = Sim::start(args()).await;
    let body = ok(sim
        .post(&json!({"filter": {"tenant": true}, "data": [
            ce_ioc("SHA256", &sha(1)), ce_ioc("DNS", "evil.example"), ce_ioc("IPV4", "203.0.113.7"),
        ]}))
        .send()
        .await
        .unwrap())
    .await;
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    let batch = data[0]["batchId"].as_str().unwrap();
    for item in data {
        assert_eq!(item["uuid"].as_str().unwrap().len(), 32);
        assert_eq!(item["batchId"], batch);
        assert_eq!(item["scope"], "global");
        assert_eq!(item["method"], "EQUALS");
        assert_eq!(item["creator"], "iocx-sim@example.com");
        assert_eq!(item["creationTime"], "2024-05-01T10:00:00.000000Z");
    }
    let days = |item: &Value| {
        let upload =
            chrono::DateTime::parse_from_rfc3339(item["uploadTime"].as_str().unwrap()).unwrap();
        let until =
            chrono::DateTime::parse_from_rfc3339(item["validUntil"].as_str().unwrap()).unwrap();
        (until - upload).num_days()
    };
    assert_eq!(days(&data[0]), 180);
    assert_eq!(days(&data[1]), 90);
    assert_eq!(days(&data[2]), 14);
    // Site and account scopes; uploading the same IOC again replaces it and keeps its uuid.
    let site = "1100000000000000002";
    let body = ok(sim.post(&json!({"filter": {"siteIds": [site]}, "data": [ce_ioc("MD5", &format!("{:032x}", 1))]})).send().await.unwrap()).await;
    assert_eq!(body["data"][0]["scope"], "site");
    assert_eq!(body["data"][0]["scopeId"], site);
    let uuid = body["data"][0]["uuid"].clone();
    let body = ok(sim.post(&json!({"filter": {"siteIds": [site]}, "data": [ce_ioc("MD5", &format!("{:032X}", 1))]})).send().await.unwrap()).await;
    assert_eq!(body["data"][0]["uuid"], uuid);
    assert_eq!(sim.emulator.state.count(), 4);
    // validUntil past the cap is cut; in the past it is refused.
    let mut far = ce_ioc("IPV6", "2001:db8::7");
    far["validUntil"] = json!("2999-01-01T00:00:00Z");
    let body = ok(sim
        .post(&json!({"filter": {"accountIds": ["1100000000000000001"]}, "data": [far]}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"][0]["scope"], "account");
    assert_eq!(days(&body["data"][0]), 30);
    let mut past = ce_ioc("IPV6", "2001:db8::8");
    past["validUntil"] = json!("2001-01-01T00:00:00Z");
    let r = sim
        .post(&json!({"filter": {"tenant": true}, "data": [past]}))
        .send()
        .await
        .unwrap();
    assert!(
        error(r, StatusCode::BAD_REQUEST)
            .await
            .1
            .contains("validUntil")
    );
}

#[tokio::test]
async fn scopes_are_required_and_checked() {
    let sim = Sim::start(args()).await;
    let data = json!([ce_ioc("SHA1", &"a".repeat(40))]);
    let r = sim
        .post(&json!({"filter": {}, "data": data}))
        .send()
        .await
        .unwrap();
    assert!(
        error(r, StatusCode::BAD_REQUEST)
            .await
            .1
            .starts_with("filter: Must include a scope")
    );
    let r = sim.post(&json!({"data": data})).send().await.unwrap();
    assert_eq!(
        error(r, StatusCode::BAD_REQUEST).await.1,
        "filter: Missing data for required field."
    );
    let r = sim
        .post(&json!({"filter": {"siteIds": ["0"]}, "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error(r, StatusCode::BAD_REQUEST).await,
        (
            4_000_010,
            "siteIds: 0: Must be greater than or equal to 100000000000000000.".to_string()
        )
    );
    let r = sim
        .post(&json!({"filter": {"siteIds": ["999999999999999999"]}, "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(error(r, StatusCode::FORBIDDEN).await.0, 4_030_010);
    let r = sim
        .post(&json!({"filter": {"groupIds": ["1100000000000000009"]}, "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // An account user: no tenant scope; an implicit scope is its account.
    let mut a = args();
    a.user_scope = UserScope::Account;
    a.implicit_scope = true;
    let sim = Sim::start(a).await;
    let r = sim
        .post(&json!({"filter": {"tenant": true}, "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(error(r, StatusCode::FORBIDDEN).await.0, 4_030_010);
    let body = ok(sim
        .post(&json!({"filter": {}, "data": data}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"][0]["scope"], "account");
    let r = sim.get(IOCS, &[("tenant", "true")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn invalid_iocs_refuse_the_batch_with_a_detail_clients_can_parse() {
    let sim = Sim::start(args()).await;
    let mut bad_method = ce_ioc("MD5", &format!("{:032x}", 2));
    bad_method["method"] = json!("CONTAINS");
    let mut no_source = ce_ioc("MD5", &format!("{:032x}", 3));
    no_source.as_object_mut().unwrap().remove("source");
    let batch = json!([
        ce_ioc("SHA256", &sha(1)),
        ce_ioc("SHA256", "not-a-hash"),
        ce_ioc("IPV4", "300.1.2.3"),
        ce_ioc("domain", "lower-case-type.example"),
        bad_method,
        no_source,
        ce_ioc("URL", "https://evil.example/login"),
    ]);
    let r = sim
        .post(&json!({"filter": {"tenant": true}, "data": batch}))
        .send()
        .await
        .unwrap();
    let (code, detail) = error(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, 4_000_010);
    let detail: Value = serde_json::from_str(&detail).unwrap();
    let invalid: Vec<(String, String)> = detail["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["value"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(invalid.len(), 5);
    assert_eq!(sim.emulator.state.count(), 0);
    // Netskope's plugin drops the named IOCs and retries: the rest goes through.
    let retry: Vec<Value> = batch
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            let key = (
                i["value"].as_str().unwrap().to_string(),
                i["type"].as_str().unwrap().to_string(),
            );
            !invalid.contains(&key)
        })
        .cloned()
        .collect();
    assert_eq!(retry.len(), 2);
    let body = ok(sim
        .post(&json!({"filter": {"tenant": true}, "data": retry}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    // The Python-literal detail and the skip mode.
    let mut a = args();
    a.error_detail_style = ErrorDetailStyle::Python;
    let sim = Sim::start(a).await;
    let r = sim
        .post(&json!({"filter": {"tenant": true}, "data": [ce_ioc("MD5", "x")]}))
        .send()
        .await
        .unwrap();
    assert!(
        error(r, StatusCode::BAD_REQUEST)
            .await
            .1
            .starts_with("{'errors': [{")
    );
    let mut a = args();
    a.invalid_iocs = InvalidIocs::SkipInvalid;
    let sim = Sim::start(a).await;
    let body = ok(sim.post(&json!({"filter": {"tenant": true}, "data": [ce_ioc("MD5", "x"), ce_ioc("SHA256", &sha(5))]})).send().await.unwrap()).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn batches_stop_at_2500_and_capacity_refuses_creates() {
    let mut a = args();
    a.capacity = Some(2600);
    let sim = Sim::start(a).await;
    let batch = |from: usize, n: usize| {
        (from..from + n)
            .map(|i| ce_ioc("SHA256", &sha(i)))
            .collect::<Vec<_>>()
    };
    let r = sim
        .post(&json!({"filter": {"tenant": true}, "data": batch(0, 2501)}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error(r, StatusCode::BAD_REQUEST).await.1,
        "data: Longer than maximum length 2500."
    );
    let body = ok(sim
        .post(&json!({"filter": {"tenant": true}, "data": batch(0, 2500)}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2500);
    let r = sim
        .post(&json!({"filter": {"tenant": true}, "data": batch(2500, 101)}))
        .send()
        .await
        .unwrap();
    assert_eq!(error(r, StatusCode::BAD_REQUEST).await.0, 4_000_030);
    assert_eq!(sim.emulator.state.count(), 2500);
    // Re-uploading held IOCs does not count against the capacity.
    ok(sim
        .post(&json!({"filter": {"tenant": true}, "data": batch(0, 200)}))
        .send()
        .await
        .unwrap())
    .await;
    sim.set_faults(FaultConfig {
        capacity_reached: true,
        ..faults()
    })
    .await;
    let r = sim
        .post(&json!({"filter": {"tenant": true}, "data": batch(9000, 1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(error(r, StatusCode::BAD_REQUEST).await.0, 4_000_030);
    let r = sim
        .post(&json!({"filter": {"tenant": true}, "data": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn iocs_page_by_cursor_with_filters() {
    let mut a = args();
    a.iocs = 57;
    let sim = Sim::start(a).await;
    let held: BTreeSet<String> = sim
        .emulator
        .state
        .iocs()
        .into_iter()
        .map(|i| i.uuid)
        .collect();
    assert_eq!(held.len(), 57);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![
            ("limit", "10"),
            ("sortBy", "updatedAt"),
            ("sortOrder", "desc"),
        ];
        if let Some(c) = &cursor {
            q.push(("cursor", c.as_str()));
        }
        let body = ok(sim.get(IOCS, &q).send().await.unwrap()).await;
        assert_eq!(body["pagination"]["totalItems"], 57);
        seen.extend(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["uuid"].as_str().unwrap().to_string()),
        );
        pages += 1;
        cursor = body["pagination"]["nextCursor"]
            .as_str()
            .map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, 6);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), held);
    assert_eq!(seen.len(), 57);
    // Default page size, skipCount, countOnly, type and value filters, time comparisons.
    let body = ok(sim
        .get(IOCS, &[("skipCount", "true")])
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 10);
    assert_eq!(body["pagination"]["totalItems"], Value::Null);
    let body = ok(sim
        .get(IOCS, &[("countOnly", "true"), ("type", "MD5,SHA1")])
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["pagination"]["totalItems"], 16);
    let one = sim
        .emulator
        .state
        .iocs()
        .into_iter()
        .find(|i| i.ioc_type == sentinelone::model::IocType::Sha256)
        .unwrap();
    let body = ok(sim
        .get(IOCS, &[("value", one.value.to_uppercase().as_str())])
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"][0]["uuid"], one.uuid);
    let body = ok(sim
        .get(IOCS, &[("updatedAt__gt", "2999-01-01T00:00:00Z")])
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["pagination"]["totalItems"], 0);
    let body = ok(sim
        .get(
            IOCS,
            &[("siteIds", "1100000000000000002"), ("limit", "1000")],
        )
        .send()
        .await
        .unwrap())
    .await;
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["scope"] == "site")
    );
    // Bad parameters are validation errors naming the field.
    for (k, v) in [
        ("limit", "0"),
        ("limit", "1001"),
        ("sortBy", "colour"),
        ("cursor", "junk"),
        ("type", "dns"),
        ("updatedAt__gt", "yesterday"),
        ("colour", "red"),
    ] {
        let r = sim.get(IOCS, &[(k, v)]).send().await.unwrap();
        let (code, detail) = error(r, StatusCode::BAD_REQUEST).await;
        assert_eq!(code, 4_000_010);
        assert!(detail.starts_with(k), "{k}: {detail}");
    }
}

#[tokio::test]
async fn deletes_by_filter_the_way_netskope_retracts() {
    let sim = Sim::start(args()).await;
    ok(sim
        .post(&json!({"filter": {"tenant": true}, "data": [ce_ioc("DNS", "a.example"), ce_ioc("DNS", "b.example"), ce_ioc("SHA256", &sha(1))]}))
        .send()
        .await
        .unwrap())
    .await;
    let body = ok(sim
        .delete(&json!({"filter": {"value": "A.example", "tenant": true}}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body, json!({"data": {"affected": 1}}));
    let body = ok(sim
        .delete(&json!({"filter": {"value": "a.example"}}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"]["affected"], 0);
    let uuid = sim.emulator.state.iocs()[0].uuid.clone();
    let body = ok(sim
        .delete(&json!({"filter": {"uuids": [uuid]}}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(body["data"]["affected"], 1);
    let r = sim
        .delete(&json!({"filter": {"tenant": true}}))
        .send()
        .await
        .unwrap();
    assert!(
        error(r, StatusCode::BAD_REQUEST)
            .await
            .1
            .starts_with("filter: Must include at least one of")
    );
    let r = sim
        .delete(&json!({"filter": {"colour": "red"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sim.emulator.state.count(), 1);
}

#[tokio::test]
async fn threats_page_by_cursor_the_way_netskope_pulls_hashes() {
    let mut a = args();
    a.threats = 25;
    let sim = Sim::start(a).await;
    let r = sim
        .http
        .post(sim.url("/_sim/threats"))
        .json(&json!([{"sha256": sha(42), "md5": format!("{:032x}", 42), "analystVerdict": "true_positive"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![
            ("updatedAt__gte", "2000-01-01T00:00:00.000000Z"),
            ("updatedAt__lte", "2999-01-01T00:00:00Z"),
            ("limit", "10"),
            ("tenant", "true"),
        ];
        if let Some(c) = &cursor {
            q.push(("cursor", c.as_str()));
        }
        let body = ok(sim.get(THREATS, &q).send().await.unwrap()).await;
        assert_eq!(body["pagination"]["totalItems"], 26);
        seen.extend(body["data"].as_array().unwrap().iter().cloned());
        cursor = body["pagination"]["nextCursor"]
            .as_str()
            .map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 26);
    assert_eq!(
        seen.iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect::<BTreeSet<_>>()
            .len(),
        26
    );
    assert!(
        seen.iter()
            .all(|t| t["threatInfo"]["sha1"].is_string() || t["threatInfo"]["sha256"].is_string())
    );
    let body = ok(sim
        .get(
            THREATS,
            &[
                ("analystVerdicts", "true_positive"),
                ("contentHashes", &sha(42)),
            ],
        )
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(
        body["data"][0]["threatInfo"]["analystVerdictDescription"],
        "True positive"
    );
    let body = ok(sim
        .get(
            THREATS,
            &[("siteIds", "1100000000000000003"), ("limit", "100")],
        )
        .send()
        .await
        .unwrap())
    .await;
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["agentDetectionInfo"]["siteName"] == "iocx lab")
    );
    let r = sim
        .get(THREATS, &[("analystVerdicts", "guilty")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let mut a = args();
    a.rate_limit_per_minute = Some(2);
    let sim = Sim::start(a).await;
    for _ in 0..2 {
        ok(sim.get(IOCS, &[]).send().await.unwrap()).await;
    }
    let r = sim.get(IOCS, &[]).send().await.unwrap();
    let secs: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((55..=61).contains(&secs));
    assert_eq!(error(r, StatusCode::TOO_MANY_REQUESTS).await.0, 4_290_010);
}

#[tokio::test]
async fn hostile_requests_get_the_envelope() {
    let sim = Sim::start(args()).await;
    for body in [
        "not json",
        "[]",
        "{\"filter\": 5, \"data\": []}",
        "{\"filter\": {\"tenant\": true}, \"data\": {}}",
        "{\"filter\": {\"tenant\": \"yes\"}, \"data\": [1]}",
    ] {
        let r = sim
            .http
            .post(sim.url(IOCS))
            .header("Authorization", format!("ApiToken {TOKEN}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error(r, StatusCode::BAD_REQUEST).await.0,
            4_000_010,
            "{body}"
        );
    }
    let body = json!({"filter": {"tenant": true}, "data": [1, "x", null, {"type": 5}]});
    let r = sim.post(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = sim.get("/web/api/v2.1/nothing", &[]).send().await.unwrap();
    assert_eq!(error(r, StatusCode::NOT_FOUND).await.0, 4_040_010);
    let r = sim.http.put(sim.url(IOCS)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn faults_come_in_the_sentinelone_envelope() {
    let sim = Sim::start(args()).await;
    sim.set_faults(FaultConfig {
        rate_limit_every: Some(1),
        retry_after_secs: 4,
        ..faults()
    })
    .await;
    let r = sim.get(IOCS, &[]).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "4");
    assert_eq!(error(r, StatusCode::TOO_MANY_REQUESTS).await.0, 4_290_010);
    sim.set_faults(FaultConfig {
        server_error_every: Some(1),
        server_error_status: 502,
        ..faults()
    })
    .await;
    let r = sim.get(THREATS, &[]).send().await.unwrap();
    assert_eq!(error(r, StatusCode::BAD_GATEWAY).await.0, 5_020_010);
    sim.set_faults(FaultConfig {
        outage_secs: Some(30),
        ..faults()
    })
    .await;
    let r = sim.get(IOCS, &[]).send().await.unwrap();
    assert_eq!(error(r, StatusCode::SERVICE_UNAVAILABLE).await.0, 5_030_010);
    sim.set_faults(FaultConfig {
        slow_ms: Some(300),
        ..faults()
    })
    .await;
    let started = Instant::now();
    ok(sim.get(IOCS, &[]).send().await.unwrap()).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.set_faults(FaultConfig {
        drop_every: Some(1),
        ..faults()
    })
    .await;
    let outcome = match sim.get(IOCS, &[]).send().await {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(outcome.is_err());
    sim.set_faults(faults()).await;
    let state: Value = sim
        .http
        .get(sim.url("/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(state["iocs"].is_array() && state["threats"].is_array());
    let r = sim
        .http
        .delete(sim.url("/_sim/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}
