//! The ThreatQ emulator over real HTTP on 127.0.0.1:0, asserted the way a client sees it: the
//! OAuth grants and expiry, registries, creates and bulk upserts with validation errors, saved
//! searches paged both ways, filters, sub-resources, expiry of indicators, faults and hostile
//! input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use iocx_sim::common::{FaultConfig, SimHandle};
use iocx_sim::threatq::{self, Args, DuplicateCreate, Emulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ID: &str = "iocx-client";
const SECRET: &str = "s3cret";

struct Sim {
    handle: SimHandle,
    emulator: Emulator,
    http: reqwest::Client,
    token: String,
}

impl Sim {
    async fn start(args: Args) -> Sim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (handle, emulator) = threatq::start(listener, &args).await.unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut sim = Sim {
            handle,
            emulator,
            http,
            token: String::new(),
        };
        sim.token = sim.login().await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        sim
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url)
    }

    async fn login(&self) -> Value {
        let r = self
            .http
            .post(self.url("/api/token?grant_type=client_credentials"))
            .basic_auth(ID, Some(SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(&self.token)
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
    }

    fn put(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .put(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
    }

    async fn json(&self, r: reqwest::RequestBuilder, status: StatusCode) -> Value {
        let r = r.send().await.unwrap();
        let got = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(got, status, "{body}");
        serde_json::from_str(&body).unwrap()
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
    let mut a = Args::new(ID, SECRET);
    a.password = "pw".into();
    a
}

#[tokio::test]
async fn every_grant_issues_tokens_and_bad_logins_are_refused() {
    let sim = Sim::start(args()).await;
    let body = sim.login().await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["refresh_token"].as_str().unwrap().len() > 20);

    // Password grant: client id in the query, credentials in JSON (the vendor SDK's way).
    let r = sim
        .http
        .post(sim.url("/api/token?grant_type=password&client_id=threatq-ui"))
        .json(&json!({"email": "analyst@example.com", "password": "pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // All four in a form body (XSOAR's way).
    let r = sim
        .http
        .post(sim.url("/api/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&client_id=threatq-ui&email=analyst%40example.com&password=pw")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let issued: Value = r.json().await.unwrap();

    // Refresh: works once, then the refresh token is spent.
    let refresh = issued["refresh_token"].as_str().unwrap();
    let path = format!("/api/token?grant_type=refresh_token&refresh_token={refresh}");
    let r = sim.http.post(sim.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let fresh: Value = r.json().await.unwrap();
    let r = sim.http.post(sim.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = sim
        .http
        .get(sim.url("/api/objects"))
        .bearer_auth(fresh["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    for (path, user, pass) in [
        ("/api/token?grant_type=client_credentials", ID, "wrong"),
        ("/api/token?grant_type=client_credentials", "nobody", SECRET),
        ("/api/token?grant_type=implicit", ID, SECRET),
        ("/api/token", ID, SECRET),
    ] {
        let r = sim
            .http
            .post(sim.url(path))
            .basic_auth(user, Some(pass))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path} {user}");
        let body: Value = r.json().await.unwrap();
        assert!(body["errors"][0].is_string(), "{body}");
    }
    let r = sim
        .http
        .post(sim.url("/api/token?grant_type=password&client_id=threatq-ui"))
        .json(&json!({"email": "analyst@example.com", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // No token, a wrong one, a garbled header: 401 in the errors form.
    for auth in [
        None,
        Some("Bearer nope"),
        Some("Basic Zm9v"),
        Some("Bearer"),
    ] {
        let mut req = sim.http.get(sim.url("/api/indicators"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"errors": ["Access denied"]}));
    }
}

#[tokio::test]
async fn access_tokens_expire_and_refresh_restores_access() {
    let mut a = args();
    a.token_lifetime_secs = 1;
    let sim = Sim::start(a).await;
    let issued = sim.login().await;
    assert_eq!(issued["expires_in"], 1);
    let token = issued["access_token"].as_str().unwrap().to_string();
    let r = sim
        .http
        .get(sim.url("/api/objects"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = sim
        .http
        .get(sim.url("/api/objects"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = sim
        .http
        .post(sim.url(&format!(
            "/api/token?grant_type=refresh_token&refresh_token={}",
            issued["refresh_token"].as_str().unwrap()
        )))
        .bearer_auth(&token)
        .basic_auth(ID, Some(SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let fresh: Value = r.json().await.unwrap();
    let r = sim
        .http
        .get(sim.url("/api/objects"))
        .bearer_auth(fresh["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn registries_list_types_statuses_and_objects() {
    let mut a = args();
    a.type_id_offset = 40;
    let sim = Sim::start(a).await;
    let types = sim
        .json(sim.get("/api/indicator/types?name=SHA-256"), StatusCode::OK)
        .await;
    assert_eq!(types["data"].as_array().unwrap().len(), 1);
    let id = types["data"][0]["id"].as_u64().unwrap();
    assert!(id > 40);
    let one = sim
        .json(
            sim.get(&format!("/api/indicator/types/{id}")),
            StatusCode::OK,
        )
        .await;
    assert_eq!(one["data"]["name"], "SHA-256");
    assert_eq!(one["data"]["class"], "host");
    let statuses = sim
        .json(sim.get("/api/indicator/statuses"), StatusCode::OK)
        .await;
    let names: Vec<(u64, String)> = statuses["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_u64().unwrap(),
                s["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (1, "Active".to_string()),
            (2, "Expired".to_string()),
            (3, "Indirect".to_string()),
            (4, "Review".to_string()),
            (5, "Whitelisted".to_string())
        ]
    );
    let objects = sim.json(sim.get("/api/objects"), StatusCode::OK).await;
    let indicators = &objects["data"][0];
    assert_eq!(indicators["collection"], "indicators");
    assert_eq!(indicators["display_name_plural"], "Indicators");
    assert!(indicators["types"].as_array().unwrap().len() >= 20);
    sim.json(sim.get("/api/indicator/types/99999"), StatusCode::NOT_FOUND)
        .await;
    sim.json(
        sim.get("/api/indicator/statuses/abc"),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn creates_validate_merge_and_come_back_with_relations() {
    let sim = Sim::start(args()).await;
    let one = sim
        .json(
            sim.post(
                "/api/indicators",
                &json!({"value": "login.phish.example", "type": "FQDN", "status": "Active",
                        "sources": [{"name": "iocx"}],
                        "attributes": [{"name": "Confidence", "value": "High"}]}),
            ),
            StatusCode::CREATED,
        )
        .await;
    let data = one["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "data is a list even for one");
    let id = data[0]["id"].as_u64().unwrap();
    assert_eq!(data[0]["status_id"], 1);
    assert_eq!(data[0]["sources"][0]["name"], "iocx");
    assert!(data[0]["sources"][0]["pivot"]["id"].is_u64());
    assert_eq!(data[0]["attributes"][0]["value"], "High");
    assert_eq!(data[0]["hash"].as_str().unwrap().len(), 32);

    // The same indicator again (other case, new source): merged, same id.
    let again = sim
        .json(
            sim.post(
                "/api/indicators",
                &json!([{"value": "LOGIN.phish.example", "type_id": data[0]["type_id"],
                         "status_id": 1, "sources": [{"name": "Second Feed", "tlp_id": 2}]}]),
            ),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(again["data"][0]["id"].as_u64().unwrap(), id);
    assert_eq!(again["data"][0]["sources"].as_array().unwrap().len(), 2);

    // Validation: field form, array items keyed by position; nothing stored.
    let before = sim.emulator.state.len();
    let refused = sim
        .json(
            sim.post(
                "/api/indicators",
                &json!([
                    {"value": "198.51.100.9", "type": "IP Address"},
                    {"value": "not-an-ip", "type": "IP Address"},
                    {"value": "x.example"},
                    {"value": "y.example", "type": "FQDN", "status": "Sleeping"}
                ]),
            ),
            StatusCode::BAD_REQUEST,
        )
        .await;
    let errors = &refused["data"]["errors"];
    assert!(
        errors["1.value"][0]
            .as_str()
            .unwrap()
            .contains("IP Address")
    );
    assert_eq!(errors["2.type"][0], "The type field is required.");
    assert_eq!(errors["3.status"][0], "The selected status is invalid.");
    assert!(errors.get("0.value").is_none());
    assert_eq!(sim.emulator.state.len(), before);

    // Without a status the default (Review) applies.
    let review = sim
        .json(
            sim.post(
                "/api/indicators",
                &json!({"value": "http://dl.phish.example/a.exe", "type": "URL"}),
            ),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(review["data"][0]["status"]["name"], "Review");

    // Single-object read: score as an object, relations on request.
    let got = sim
        .json(
            sim.get(&format!("/api/indicators/{id}?with=attributes,sources")),
            StatusCode::OK,
        )
        .await;
    assert_eq!(got["data"]["value"], "login.phish.example");
    assert!(got["data"]["score"]["generated_score"].is_number());
    assert!(got["data"]["score"]["manual_score"].is_null());
    assert_eq!(got["data"]["attributes"][0]["name"], "Confidence");
    let by_value = sim
        .json(
            sim.get("/api/indicators?value=login.phish.example&with=sources"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(by_value["total"], 1);
    assert_eq!(by_value["data"][0]["sources"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn duplicate_creates_can_be_rejected() {
    let mut a = args();
    a.duplicate_create = DuplicateCreate::Reject;
    let sim = Sim::start(a).await;
    let body = json!({"value": "a.example", "type": "FQDN"});
    sim.json(sim.post("/api/indicators", &body), StatusCode::CREATED)
        .await;
    let refused = sim
        .json(sim.post("/api/indicators", &body), StatusCode::BAD_REQUEST)
        .await;
    assert_eq!(
        refused["data"]["errors"]["value"][0],
        "The value has already been taken."
    );
}

#[tokio::test]
async fn consume_upserts_batches_with_tlp_tags_and_caps() {
    let mut a = args();
    a.max_batch = 600;
    let sim = Sim::start(a).await;
    let items: Vec<Value> = (0..500)
        .map(|n| {
            json!({"value": format!("{:064x}", n), "type": {"name": "SHA-256"},
                   "status": {"name": "Active"}, "tlp_id": 3, "tags": ["iocx"],
                   "sources": [{"name": "iocx"}], "attributes": [{"name": "Severity", "value": "High"}]})
        })
        .collect();
    let done = sim
        .json(
            sim.post("/api/indicators/consume", &Value::Array(items.clone())),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(done["data"].as_array().unwrap().len(), 500);
    assert_eq!(done["data"][0]["sources"][0]["tlp_id"], 3);
    assert_eq!(done["data"][0]["tags"][0]["name"], "iocx");
    // Again through the older path: upserted, nothing new.
    sim.json(
        sim.post("/api/indicators/consume/new", &Value::Array(items)),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(sim.emulator.state.len(), 500);
    let too_many: Vec<Value> = (0..601)
        .map(|n| json!({"value": format!("h{n}.example"), "type": "FQDN"}))
        .collect();
    let refused = sim
        .json(
            sim.post("/api/indicators/consume", &Value::Array(too_many)),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        refused["errors"][0]
            .as_str()
            .unwrap()
            .contains("at most 600")
    );
    sim.json(
        sim.post("/api/indicators/consume", &json!({"value": "x"})),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

/// The vendor SDK's flow, as Netskope's plugin runs it: objects, saved search by name (its
/// `json` a string), then `POST /api/indicators/query` with `fields`, paged by offset.
#[tokio::test]
async fn saved_search_by_name_pages_with_offset_and_fields() {
    let mut a = args();
    a.indicators = 2500;
    let sim = Sim::start(a).await;
    let searches = sim.json(sim.get("/api/search/query"), StatusCode::OK).await;
    let search = searches["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Vision One Blocklist")
        .unwrap()
        .clone();
    let parsed: Value = serde_json::from_str(search["json"].as_str().unwrap()).unwrap();
    let mut body = parsed["api_query"].clone();
    body["fields"] = json!(["id", "value", "type", "score", "status", "tags"]);
    let mut offset = 0;
    let mut total = None;
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    loop {
        let page = sim
            .json(
                sim.post(
                    &format!("/api/indicators/query?limit=250&offset={offset}"),
                    &body,
                ),
                StatusCode::OK,
            )
            .await;
        pages += 1;
        let t = page["total"].as_u64().unwrap() as usize;
        assert_eq!(*total.get_or_insert(t), t);
        assert_eq!(page["limit"], 250);
        assert_eq!(page["offset"], offset);
        let data = page["data"].as_array().unwrap();
        for ind in data {
            let keys: BTreeSet<&str> = ind
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["id", "score", "status", "tags", "type", "value"]
                    .into_iter()
                    .collect()
            );
            assert_eq!(ind["status"], "Active");
            let t = ind["type"].as_str().unwrap();
            assert!(
                [
                    "FQDN",
                    "IP Address",
                    "URL",
                    "Email Address",
                    "SHA-1",
                    "SHA-256"
                ]
                .contains(&t),
                "{t}"
            );
            assert!(ind["score"].as_f64().unwrap() <= 10.0);
            assert!(seen.insert(ind["id"].as_u64().unwrap()), "repeated {ind}");
        }
        offset += data.len();
        if offset >= t || data.is_empty() {
            break;
        }
    }
    assert!(pages >= 4, "{pages} pages");
    assert_eq!(seen.len(), total.unwrap());
    // By id and by exact name; unknown 404.
    let id = search["id"].as_u64().unwrap();
    let one = sim
        .json(sim.get(&format!("/api/search/query/{id}")), StatusCode::OK)
        .await;
    assert_eq!(one["data"]["name"], "Vision One Blocklist");
    let by_name = sim
        .json(
            sim.get("/api/search/query?name=Whitelisted%20Indicators"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(by_name["total"], 1);
    sim.json(sim.get("/api/search/query/424242"), StatusCode::NOT_FOUND)
        .await;
}

/// Elastic's flow: the data collection's hash endpoint with `cursorMark`.
#[tokio::test]
async fn collection_hash_endpoint_pages_with_cursor_marks() {
    let mut a = args();
    a.indicators = 700;
    let sim = Sim::start(a).await;
    let searches = sim.json(sim.get("/api/search/query"), StatusCode::OK).await;
    let active = searches["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Active Indicators")
        .unwrap()
        .clone();
    let hash = active["hash"].as_str().unwrap();
    let mut mark = "*".to_string();
    let mut seen = Vec::new();
    let mut last_updated = String::new();
    loop {
        let page = sim
            .json(
                sim.get(&format!(
                    "/api/indicators/query/hash/{hash}?sort=updated_at&limit=100&cursorMark={mark}&fields=*,attributes,sources"
                )),
                StatusCode::OK,
            )
            .await;
        assert_eq!(page["limit"], 100);
        let data = page["data"].as_array().unwrap();
        if data.is_empty() {
            assert_eq!(page["nextCursorMark"], mark.as_str());
            break;
        }
        for ind in data {
            assert_eq!(ind["status"]["name"], "Active");
            assert!(ind["attributes"].is_array());
            assert!(ind["sources"].is_array());
            let u = ind["updated_at"].as_str().unwrap().to_string();
            assert!(u >= last_updated, "sorted by updated_at");
            last_updated = u;
            seen.push(ind["id"].as_u64().unwrap());
        }
        // Adding during paging neither repeats nor skips what was there.
        if seen.len() == 100 {
            sim.json(
                sim.post(
                    "/api/indicators",
                    &json!({"value": "late.example", "type": "FQDN", "status": "Active"}),
                ),
                StatusCode::CREATED,
            )
            .await;
        }
        mark = page["nextCursorMark"].as_str().unwrap().to_string();
    }
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len());
    assert!(seen.len() > 300, "{}", seen.len());
    // The id and the name work as the collection id too; a foreign mark is refused.
    let id = active["id"].as_u64().unwrap();
    sim.json(
        sim.get(&format!("/api/indicators/query/hash/{id}?limit=5")),
        StatusCode::OK,
    )
    .await;
    sim.json(
        sim.get(&format!(
            "/api/indicators/query/hash/{hash}?cursorMark=garbage"
        )),
        StatusCode::BAD_REQUEST,
    )
    .await;
    sim.json(
        sim.get("/api/indicators/query/hash/ffffffffffffffffffffffffffffffff"),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn ad_hoc_queries_filter_sort_and_refuse_unknown_fields() {
    let sim = Sim::start(args()).await;
    let items = json!([
        {"value": "a.example", "type": "FQDN", "status": "Active", "tags": ["c2"]},
        {"value": "b.example", "type": "FQDN", "status": "Expired"},
        {"value": "198.51.100.1", "type": "IP Address", "status": "Active",
         "attributes": [{"name": "Confidence", "value": "High"}]},
        {"value": "me@phish.example", "type": "Email Address", "status": "Whitelisted"}
    ]);
    let made = sim
        .json(sim.post("/api/indicators", &items), StatusCode::CREATED)
        .await;
    let ip_id = made["data"][2]["id"].as_u64().unwrap();
    sim.json(
        sim.put(
            &format!("/api/indicator/{ip_id}/scores"),
            &json!({"manual_score": 9}),
        ),
        StatusCode::OK,
    )
    .await;
    let q = |body: Value| sim.post("/api/indicators/query?sort=-id", &body);
    let values = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["value"].as_str().unwrap().to_string())
            .collect()
    };
    let page = sim
        .json(
            q(json!({"criteria": {"value": "me@phish.example"}, "filters": {"type_name": "Email Address"}})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(values(&page), ["me@phish.example"]);
    let page = sim
        .json(
            q(json!({"filters": {"score": {"+gte": 8}}})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(values(&page), ["198.51.100.1"]);
    let page = sim
        .json(
            q(json!({"filters": {"+or": [{"status_name": "Expired"}, {"tags": "c2"}]}})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(values(&page), ["b.example", "a.example"]);
    let page = sim
        .json(
            q(json!({"filters": {"created_at": {"+gt": "-1 hour", "+lt": "NOW"}}})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(page["total"], 4);
    let refused = sim
        .json(
            q(json!({"filters": {"colour": "red"}})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(refused["errors"][0].as_str().unwrap().contains("colour"));
    sim.json(
        sim.post("/api/indicators/query?sort=banana", &json!({})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    sim.json(
        sim.post("/api/indicators/query?limit=ten", &json!({})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    // Limits larger than the maximum are cut to it.
    let page = sim
        .json(
            sim.post("/api/indicators/query?limit=999999", &json!({})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(page["limit"], 1000);
    // Quick search.
    let found = sim
        .json(sim.get("/api/search?query=phish&limit=5"), StatusCode::OK)
        .await;
    assert_eq!(found["data"][0]["object"], "indicator");
    // Saved searches can be made, are unique by name, and can be deleted.
    let made = sim
        .json(
            sim.post(
                "/api/search/query",
                &json!({"name": "Mine", "json": {"ui_query": {}, "api_query": {"criteria": {}, "filters": {"type_name": "FQDN"}}}}),
            ),
            StatusCode::CREATED,
        )
        .await;
    let dup = sim
        .json(
            sim.post("/api/search/query", &json!({"name": "Mine", "json": {}})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        dup["data"]["errors"]["name"][0],
        "The name has already been taken."
    );
    let hash = made["data"]["hash"].as_str().unwrap();
    let page = sim
        .json(
            sim.get(&format!("/api/indicators/query/hash/{hash}?fields=value")),
            StatusCode::OK,
        )
        .await;
    assert_eq!(page["total"], 2);
    let r = sim
        .http
        .delete(sim.url(&format!("/api/search/query/{}", made["data"]["id"])))
        .bearer_auth(&sim.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn status_score_relations_and_deletes() {
    let sim = Sim::start(args()).await;
    let made = sim
        .json(
            sim.post(
                "/api/indicators",
                &json!({"value": "c2.example", "type": "FQDN", "status": "Active"}),
            ),
            StatusCode::CREATED,
        )
        .await;
    let id = made["data"][0]["id"].as_u64().unwrap();
    let updated = sim
        .json(
            sim.put(
                &format!("/api/indicators/{id}"),
                &json!({"status": "Whitelisted"}),
            ),
            StatusCode::OK,
        )
        .await;
    assert_eq!(updated["data"]["status_id"], 5);
    sim.json(
        sim.put(&format!("/api/indicators/{id}"), &json!({"status": "Nope"})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let score = sim
        .json(
            sim.put(
                &format!("/api/indicator/{id}/scores"),
                &json!({"manual_score": 7}),
            ),
            StatusCode::OK,
        )
        .await;
    assert_eq!(score["data"]["manual_score"], 7);
    sim.json(
        sim.put(
            &format!("/api/indicator/{id}/scores"),
            &json!({"manual_score": 11}),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let attr = sim
        .json(
            sim.post(
                &format!("/api/indicators/{id}/attributes"),
                &json!({"name": "Sighting Count", "value": "3"}),
            ),
            StatusCode::CREATED,
        )
        .await;
    let pivot = attr["data"][0]["id"].as_u64().unwrap();
    let edited = sim
        .json(
            sim.put(
                &format!("/api/indicators/{id}/attributes/{pivot}"),
                &json!({"value": "4"}),
            ),
            StatusCode::OK,
        )
        .await;
    assert_eq!(edited["data"]["value"], "4");
    let src = sim
        .json(
            sim.post(
                &format!("/api/indicators/{id}/sources"),
                &json!({"name": "iocx"}),
            ),
            StatusCode::CREATED,
        )
        .await;
    let source_pivot = src["data"][0]["id"].as_u64().unwrap();
    sim.json(
        sim.post(
            &format!("/api/indicators/{id}/tags"),
            &json!({"name": "blocked"}),
        ),
        StatusCode::CREATED,
    )
    .await;
    let tags = sim
        .json(
            sim.get(&format!("/api/indicators/{id}/tags")),
            StatusCode::OK,
        )
        .await;
    assert_eq!(tags["data"][0]["name"], "blocked");
    for path in [
        format!("/api/indicators/{id}/attributes/{pivot}"),
        format!("/api/indicators/{id}/sources/{source_pivot}"),
    ] {
        let r = sim
            .http
            .delete(sim.url(&path))
            .bearer_auth(&sim.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{path}");
    }
    let got = sim
        .json(
            sim.get(&format!(
                "/api/indicators/{id}?with=attributes,sources,tags"
            )),
            StatusCode::OK,
        )
        .await;
    assert_eq!(got["data"]["attributes"], json!([]));
    assert_eq!(got["data"]["sources"], json!([]));
    let del = |path: String| {
        sim.http
            .delete(sim.url(&path))
            .bearer_auth(&sim.token)
            .send()
    };
    assert_eq!(
        del(format!("/api/indicators/{id}")).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        del(format!("/api/indicators/{id}")).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let body = sim
        .json(
            sim.get(&format!("/api/indicators/{id}")),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(body["errors"][0].is_string());
}

#[tokio::test]
async fn indicators_turn_expired_when_their_time_passes() {
    let sim = Sim::start(args()).await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let made = sim
        .json(
            sim.post(
                "/api/indicators",
                &json!({"value": "198.51.100.77", "type": "IP Address", "status": "Active", "expires_at": soon}),
            ),
            StatusCode::CREATED,
        )
        .await;
    let id = made["data"][0]["id"].as_u64().unwrap();
    assert_eq!(made["data"][0]["status"]["name"], "Active");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let got = sim
        .json(sim.get(&format!("/api/indicators/{id}")), StatusCode::OK)
        .await;
    assert_eq!(got["data"]["status"]["name"], "Expired");
    assert!(got["data"]["expired_at"].is_string());
}

#[tokio::test]
async fn faults_and_hostile_input_get_the_errors_envelope() {
    let mut a = args();
    a.indicators = 5;
    let sim = Sim::start(a).await;
    sim.set_faults(FaultConfig {
        rate_limit_every: Some(2),
        retry_after_secs: 4,
        server_error_status: 500,
        ..FaultConfig::default()
    })
    .await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = sim.get("/api/indicators").send().await.unwrap();
        codes.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.headers()["retry-after"], "4");
            let body: Value = r.json().await.unwrap();
            assert!(body["errors"][0].is_string());
        }
    }
    assert_eq!(codes, [200, 429, 200, 429]);
    sim.set_faults(FaultConfig {
        server_error_every: Some(1),
        server_error_status: 503,
        retry_after_secs: 1,
        ..FaultConfig::default()
    })
    .await;
    let r = sim.get("/api/indicators").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    sim.set_faults(FaultConfig {
        capacity_reached: true,
        retry_after_secs: 1,
        server_error_status: 500,
        ..FaultConfig::default()
    })
    .await;
    let refused = sim
        .json(
            sim.post(
                "/api/indicators",
                &json!({"value": "x.example", "type": "FQDN"}),
            ),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(refused["errors"][0].as_str().unwrap().contains("limit"));
    sim.set_faults(FaultConfig {
        retry_after_secs: 1,
        server_error_status: 500,
        ..FaultConfig::default()
    })
    .await;

    // Hostile bodies and paths.
    let r = sim
        .http
        .post(sim.url("/api/indicators"))
        .bearer_auth(&sim.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(body["errors"][0].as_str().unwrap().contains("JSON"));
    for bad in [
        json!(42),
        json!([]),
        json!(["str"]),
        json!({"value": null, "type": 7}),
    ] {
        let r = sim.post("/api/indicators", &bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    for path in [
        "/api/indicators/99999999999999999999999",
        "/api/indicators/-1",
        "/api/nothing",
        "/api/indicators/1/weird",
    ] {
        let r = sim.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(body["errors"].is_array());
    }
    let r = sim
        .http
        .patch(sim.url("/api/indicators"))
        .bearer_auth(&sim.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    // State admin route.
    let state: Value = sim
        .http
        .get(sim.url("/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["indicators"].as_array().unwrap().len(), 5);
    let r = sim
        .http
        .delete(sim.url("/_sim/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(sim.emulator.state.is_empty());
}
