//! The Carbon Black Cloud emulator over real HTTPS on 127.0.0.1:0, asserted the way a client sees
//! it: auth and org keys, feeds with full-state report replacement, report validation, the feed
//! limits, watchlists, alert search paging and filters, faults and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_sim::carbon_black::{self, Args, BeyondWindow, Emulator, IocCounting, Secret, WrongOrg};
use iocx_sim::common::{FaultConfig, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Sim {
    handle: SimHandle,
    emulator: Emulator,
    http: reqwest::Client,
    token: String,
    org: String,
}

impl Sim {
    async fn start(args: Args) -> Sim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (handle, emulator) = carbon_black::start(listener, &args).await.unwrap();
        let pem = handle
            .tls
            .as_ref()
            .expect("the emulator serves TLS")
            .cert_pem
            .clone();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .no_proxy()
            .build()
            .unwrap();
        Sim {
            handle,
            emulator,
            http,
            token: args.auth_token(),
            org: args.org_key.clone(),
        }
    }

    fn fm(&self, tail: &str) -> String {
        format!("/threathunter/feedmgr/v2/orgs/{}{tail}", self.org)
    }

    fn wm(&self, tail: &str) -> String {
        format!("/threathunter/watchlistmgr/v3/orgs/{}{tail}", self.org)
    }

    fn search_path(&self) -> String {
        format!("/api/alerts/v7/orgs/{}/alerts/_search", self.org)
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.handle.base_url))
            .header("X-Auth-Token", &self.token)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create_feed(&self, reports: Value) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                &self.fm("/feeds"),
                Some(json!({
                    "feedinfo": {"name": "iocx test", "owner": self.org, "provider_url": "",
                                 "summary": "s", "category": "development"},
                    "reports": reports,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn report_ids(&self, feed: &str) -> Vec<String> {
        let (status, body) = self
            .call(
                Method::GET,
                &self.fm(&format!("/feeds/{feed}/reports")),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut ids: Vec<String> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    async fn set_faults(&self, faults: FaultConfig) {
        let r = self
            .http
            .put(format!("{}/_sim/faults", self.handle.base_url))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

fn report(id: &str, field: &str, values: &[&str]) -> Value {
    json!({
        "id": id, "timestamp": 1_700_000_000, "title": format!("report {id}"),
        "description": "", "severity": 10,
        "iocs_v2": [{"id": format!("{id}-ioc"), "match_type": "equality", "field": field, "values": values}],
    })
}

#[tokio::test]
async fn the_api_key_and_org_key_are_checked() {
    let sim = Sim::start(Args {
        read_only_key: Some(Secret::from("ROSECRET/ROID")),
        ..Args::default()
    })
    .await;
    let url = format!("{}{}", sim.handle.base_url, sim.fm("/feeds"));
    let none = sim.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["error_code"], "UNAUTHORIZED");
    assert_eq!(body["success"], false);
    let wrong = sim
        .http
        .get(&url)
        .header("X-Auth-Token", "SECRET/WRONG")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let (status, body) = sim
        .call(
            Method::GET,
            "/threathunter/feedmgr/v2/orgs/OTHERORG/feeds",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = sim.call(Method::GET, &sim.fm("/feeds"), None).await;
    assert_eq!(status, StatusCode::OK);

    // The read-only key reads and searches but may not write.
    let ro = |m: Method, p: String| {
        sim.http
            .request(m, format!("{}{p}", sim.handle.base_url))
            .header("X-Auth-Token", "ROSECRET/ROID")
    };
    assert_eq!(
        ro(Method::GET, sim.fm("/feeds"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let search = ro(Method::POST, sim.search_path())
        .json(&json!({"rows": 0}))
        .send();
    assert_eq!(search.await.unwrap().status(), StatusCode::OK);
    let create = ro(Method::POST, sim.fm("/feeds"))
        .json(
            &json!({"feedinfo": {"name": "x", "provider_url": "", "summary": "", "category": ""}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), StatusCode::FORBIDDEN);
    let body: Value = create.json().await.unwrap();
    assert_eq!(body["error_code"], "FORBIDDEN");

    // --wrong-org forbidden answers 403 instead.
    let sim = Sim::start(Args {
        wrong_org: WrongOrg::Forbidden,
        ..Args::default()
    })
    .await;
    let (status, _) = sim
        .call(
            Method::GET,
            "/threathunter/feedmgr/v2/orgs/OTHERORG/feeds",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn replacing_reports_is_full_state() {
    let sim = Sim::start(Args::default()).await;
    let feed = sim
        .create_feed(json!([
            report("a", "process_sha256", &["aa"]),
            report("b", "netconn_ipv4", &["203.0.113.1"])
        ]))
        .await;
    assert_eq!(sim.report_ids(&feed).await, ["a", "b"]);

    // Netskope's plugin: one report per push, each push replaces the feed's reports.
    let (status, body) = sim
        .call(
            Method::POST,
            &sim.fm(&format!("/feeds/{feed}/reports")),
            Some(json!({"reports": [report("c", "dns", &["evil.example"])]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"success": true}));
    assert_eq!(sim.report_ids(&feed).await, ["c"]);

    let (status, got) = sim
        .call(Method::GET, &sim.fm(&format!("/feeds/{feed}")), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["feedinfo"]["id"], feed.as_str());
    assert_eq!(got["feedinfo"]["access"], "private");
    assert_eq!(
        got["reports"][0]["iocs_v2"][0]["values"],
        json!(["evil.example"])
    );

    // An empty set empties the feed.
    let (status, _) = sim
        .call(
            Method::POST,
            &sim.fm(&format!("/feeds/{feed}/reports")),
            Some(json!({"reports": []})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(sim.report_ids(&feed).await.is_empty());

    // One report at a time: PUT replaces an existing one, DELETE removes it.
    let reports = sim.fm(&format!("/feeds/{feed}/reports"));
    let body = json!({"reports": [report("d", "process_md5", &["00"]), report("e", "ipv6", &["2001:db8::1"])]});
    assert_eq!(
        sim.call(Method::POST, &reports, Some(body)).await.0,
        StatusCode::OK
    );
    let (status, body) = sim
        .call(
            Method::PUT,
            &format!("{reports}/d"),
            Some(report("d", "process_md5", &["11", "22"])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["iocs_v2"][0]["values"], json!(["11", "22"]));
    let (status, _) = sim
        .call(
            Method::PUT,
            &format!("{reports}/zz"),
            Some(report("zz", "md5", &["1"])),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        sim.call(Method::DELETE, &format!("{reports}/e"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(sim.report_ids(&feed).await, ["d"]);
    assert_eq!(
        sim.call(Method::DELETE, &format!("{reports}/e"), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // Feed info update, then delete.
    let (status, info) = sim
        .call(
            Method::PUT,
            &sim.fm(&format!("/feeds/{feed}/feedinfo")),
            Some(json!({"name": "renamed", "provider_url": "", "summary": "new", "category": "c"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["name"], "renamed");
    assert_eq!(info["id"], feed.as_str());
    assert_eq!(
        sim.call(Method::DELETE, &sim.fm(&format!("/feeds/{feed}")), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = sim
        .call(Method::GET, &sim.fm(&format!("/feeds/{feed}")), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "NOT_FOUND");
}

#[tokio::test]
async fn feed_limits_refuse_the_whole_request() {
    let sim = Sim::start(Args {
        max_reports_per_feed: 3,
        max_iocs_per_report: 5,
        ..Args::default()
    })
    .await;
    let feed = sim
        .create_feed(json!([report("keep", "md5", &["00"])]))
        .await;
    let path = sim.fm(&format!("/feeds/{feed}/reports"));
    let four: Vec<Value> = (0..4)
        .map(|i| report(&format!("r{i}"), "md5", &["1"]))
        .collect();
    let (status, body) = sim
        .call(Method::POST, &path, Some(json!({"reports": four})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at most 3 reports"),
        "{body}"
    );
    // Nothing changed.
    assert_eq!(sim.report_ids(&feed).await, ["keep"]);

    // Six values in one IOC break the per-report limit when values count (the default)...
    let six = report("big", "process_sha256", &["1", "2", "3", "4", "5", "6"]);
    let (status, body) = sim
        .call(Method::POST, &path, Some(json!({"reports": [six.clone()]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("at most 5"),
        "{body}"
    );
    // ...and a feed create is held to the same limits.
    let (status, _) = sim
        .call(
            Method::POST,
            &sim.fm("/feeds"),
            Some(
                json!({"feedinfo": {"name": "n", "provider_url": "", "summary": "", "category": ""},
                        "reports": [six.clone()]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Counting entries instead lets one six-value IOC through.
    let sim = Sim::start(Args {
        max_iocs_per_report: 5,
        ioc_limit_counts: IocCounting::Entries,
        ..Args::default()
    })
    .await;
    let feed = sim.create_feed(json!([six])).await;
    assert_eq!(sim.report_ids(&feed).await, ["big"]);

    // capacity_reached refuses report writes with the per-feed message.
    sim.set_faults(FaultConfig {
        capacity_reached: true,
        ..FaultConfig::default()
    })
    .await;
    let (status, body) = sim
        .call(
            Method::POST,
            &sim.fm(&format!("/feeds/{feed}/reports")),
            Some(json!({"reports": [report("x", "md5", &["1"])]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("at most"),
        "{body}"
    );
}

#[tokio::test]
async fn reports_are_validated_field_by_field() {
    let sim = Sim::start(Args::default()).await;
    let feed = sim.create_feed(json!([])).await;
    let path = sim.fm(&format!("/feeds/{feed}/reports"));
    let base = report("r", "process_sha256", &["aa"]);
    let with = |key: &str, value: Value| {
        let mut r = base.clone();
        r[key] = value;
        r
    };
    let without = |key: &str| {
        let mut r = base.clone();
        r.as_object_mut().unwrap().remove(key);
        r
    };
    let ioc = |v: Value| with("iocs_v2", json!([v]));
    let cases = [
        (with("severity", json!(0)), "severity"),
        (with("severity", json!(11)), "severity"),
        (with("timestamp", json!("2024-01-01")), "timestamp"),
        (with("timestamp", json!(-5)), "timestamp"),
        (with("title", json!("")), "title"),
        (without("id"), "reports[0].id"),
        (without("description"), "description"),
        (with("iocs_v2", json!([])), "iocs_v2"),
        (
            ioc(json!({"id": "i", "match_type": "equality", "field": "md5", "values": []})),
            "values",
        ),
        (
            ioc(json!({"id": "i", "match_type": "equality", "values": ["x"]})),
            "field",
        ),
        (
            ioc(json!({"id": "i", "match_type": "fuzzy", "field": "md5", "values": ["x"]})),
            "match_type",
        ),
        (
            ioc(json!({"id": "i", "match_type": "query", "values": ["a", "b"]})),
            "exactly one",
        ),
        (
            ioc(
                json!({"id": "i", "match_type": "regex", "field": "process_name", "values": ["(unclosed"]}),
            ),
            "regular expression",
        ),
        (
            ioc(json!({"id": "", "match_type": "equality", "field": "md5", "values": ["x"]})),
            "id",
        ),
        (
            with(
                "iocs_v2",
                json!([
            {"id": "same", "match_type": "equality", "field": "md5", "values": ["x"]},
            {"id": "same", "match_type": "equality", "field": "md5", "values": ["y"]}]),
            ),
            "duplicate",
        ),
    ];
    for (bad, needle) in cases {
        let (status, body) = sim
            .call(Method::POST, &path, Some(json!({"reports": [bad.clone()]})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} was accepted");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message} should name {needle}");
    }
    let (status, body) = sim
        .call(
            Method::POST,
            &path,
            Some(json!({"reports": [base.clone(), base.clone()]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("duplicate report id")
    );

    // Legacy iocs are converted to iocs_v2; query IOCs need no field.
    let legacy = json!({"id": "l", "timestamp": 1, "title": "t", "description": "d", "severity": 3,
                        "iocs": {"md5": ["0123"], "dns": ["evil.example"], "ipv4": []}});
    let query = ioc(json!({"id": "q", "match_type": "query", "values": ["process_name:evil.exe"]}));
    let (status, body) = sim
        .call(
            Method::POST,
            &path,
            Some(json!({"reports": [legacy, query]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, got) = sim.call(Method::GET, &path, None).await;
    let legacy = got["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "l")
        .unwrap();
    let fields: Vec<&str> = legacy["iocs_v2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["process_hash", "netconn_domain"]);

    // Hostile bodies get the envelope, never a panic.
    for raw in ["{", "[]", "null", "{\"reports\": 7}", "{\"reports\": [7]}"] {
        let resp = sim
            .req(Method::POST, &path)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{raw}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["success"], false, "{raw}");
    }
    // Netskope's plugin posts JSON without a Content-Type.
    let resp = sim
        .req(Method::POST, &path)
        .body(json!({"reports": [report("nct", "md5", &["1"])]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_report_ids_are_refused_or_assigned() {
    let sim = Sim::start(Args::default()).await;
    let mut no_id = report("x", "md5", &["1"]);
    no_id.as_object_mut().unwrap().remove("id");
    let (status, _) = sim
        .call(
            Method::POST,
            &sim.fm("/feeds"),
            Some(
                json!({"feedinfo": {"name": "n", "provider_url": "", "summary": "", "category": ""},
                        "reports": [no_id.clone()]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let sim = Sim::start(Args {
        missing_report_id: carbon_black::MissingReportId::Assign,
        ..Args::default()
    })
    .await;
    let feed = sim.create_feed(json!([no_id])).await;
    let ids = sim.report_ids(&feed).await;
    assert_eq!(ids.len(), 1);
    assert!(!ids[0].is_empty());
}

#[tokio::test]
async fn public_feeds_and_watchlists() {
    let sim = Sim::start(Args::default()).await;
    let (_, own) = sim.call(Method::GET, &sim.fm("/feeds"), None).await;
    assert!(own["results"].as_array().unwrap().is_empty());
    let (_, all) = sim
        .call(Method::GET, &sim.fm("/feeds?include_public=true"), None)
        .await;
    let public = all["results"].as_array().unwrap();
    assert!(!public.is_empty());
    let public_id = public[0]["id"].as_str().unwrap();
    assert_eq!(public[0]["access"], "public");
    let (status, _) = sim
        .call(
            Method::DELETE,
            &sim.fm(&format!("/feeds/{public_id}")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = sim
        .call(
            Method::POST,
            &sim.fm("/feeds/public"),
            Some(json!({"feedinfo": {"name": "n", "provider_url": "", "summary": "", "category": ""}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let feed = sim.create_feed(json!([report("a", "md5", &["1"])])).await;
    let (status, _) = sim
        .call(
            Method::POST,
            &sim.wm("/watchlists"),
            Some(json!({"name": "w", "classifier": {"key": "feed_id", "value": "nope"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, w) = sim
        .call(
            Method::POST,
            &sim.wm("/watchlists"),
            Some(json!({"name": "w", "description": "d", "classifier": {"key": "feed_id", "value": feed}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{w}");
    let id = w["id"].as_str().unwrap();
    assert_eq!(w["alerts_enabled"], false);
    assert_eq!(w["tags_enabled"], true);
    let (status, body) = sim
        .call(
            Method::PUT,
            &sim.wm(&format!("/watchlists/{id}/alert")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"alert": true}));
    let (_, got) = sim
        .call(Method::GET, &sim.wm(&format!("/watchlists/{id}")), None)
        .await;
    assert_eq!(got["alerts_enabled"], true);

    // Watchlist reports get an ID when they have none.
    let mut r = report("ignored", "md5", &["1"]);
    r.as_object_mut().unwrap().remove("id");
    let (status, made) = sim.call(Method::POST, &sim.wm("/reports"), Some(r)).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let rid = made["id"].as_str().unwrap();
    let (status, _) = sim
        .call(Method::GET, &sim.wm(&format!("/reports/{rid}")), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sim.call(Method::DELETE, &sim.wm(&format!("/watchlists/{id}")), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sim.call(Method::GET, &sim.wm(&format!("/watchlists/{id}")), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

async fn search(sim: &Sim, body: Value) -> (StatusCode, Value) {
    sim.call(Method::POST, &sim.search_path(), Some(body)).await
}

#[tokio::test]
async fn alert_search_pages_filters_and_sorts() {
    let sim = Sim::start(Args {
        alerts: 530,
        ..Args::default()
    })
    .await;
    // Netskope's validation call.
    let (status, body) = search(&sim, json!({"rows": 0})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["num_found"], 530);
    assert_eq!(body["num_available"], 530);
    assert!(body["results"].as_array().unwrap().is_empty());

    // Paging with start (1-based) and rows, ascending by backend_timestamp, as Netskope does.
    let mut ids = Vec::new();
    let mut stamps = Vec::new();
    let mut start = 1;
    loop {
        let (status, body) = search(
            &sim,
            json!({"rows": 200, "start": start, "sort": [{"field": "backend_timestamp", "order": "ASC"}]}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let results = body["results"].as_array().unwrap();
        for a in results {
            ids.push(a["id"].as_str().unwrap().to_string());
            stamps.push(a["backend_timestamp"].as_str().unwrap().to_string());
        }
        if results.len() < 200 {
            break;
        }
        start += 200;
    }
    assert_eq!(ids.len(), 530);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 530);
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted);

    // Netskope's pull body: minimum severity, reputations, a time range.
    let (_, all) = search(&sim, json!({"rows": 10000})).await;
    let all = all["results"].as_array().unwrap().clone();
    let mid = stamps[265].clone();
    let (status, body) = search(
        &sim,
        json!({
            "rows": 2000, "start": 1,
            "criteria": {"minimum_severity": 5, "process_reputation": ["KNOWN_MALWARE", "PUP"]},
            "time_range": {"start": mid, "end": "2100-01-01T00:00:00.000Z"},
            "sort": [{"field": "backend_timestamp", "order": "ASC"}],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = all
        .iter()
        .filter(|a| {
            a["severity"].as_i64().unwrap() >= 5
                && ["KNOWN_MALWARE", "PUP"].contains(&a["process_reputation"].as_str().unwrap())
                && a["backend_timestamp"].as_str().unwrap() >= mid.as_str()
        })
        .count();
    assert_eq!(body["num_found"], expected);
    for a in body["results"].as_array().unwrap() {
        assert!(a["process_sha256"].as_str().unwrap().len() == 64);
        assert!(a["first_event_timestamp"].is_string());
    }

    // Exclusions and the query subset.
    let (_, body) = search(
        &sim,
        json!({"rows": 10000, "exclusions": {"type": ["CB_ANALYTICS"]}}),
    )
    .await;
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["type"] != "CB_ANALYTICS")
    );
    let (_, body) = search(
        &sim,
        json!({"rows": 10000, "query": "type:WATCHLIST AND device_os:WINDOWS"}),
    )
    .await;
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["type"] == "WATCHLIST" && a["device_os"] == "WINDOWS")
    );
    let (status, body) = search(
        &sim,
        json!({"query": "type:WATCHLIST OR type:CB_ANALYTICS"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["reason"], "query_malformed_syntax");

    // Refusals: unknown fields, bad ranges, the result window.
    for bad in [
        json!({"criteria": {"no_such_field": ["x"]}}),
        json!({"criteria": {"minimum_severity": 11}}),
        json!({"time_range": {"start": "yesterday"}}),
        json!({"sort": [{"field": "nope"}]}),
        json!({"rows": 10001}),
        json!({"rows": 2000, "start": 8002}),
        json!("not an object"),
    ] {
        let (status, body) = search(&sim, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["success"], false);
    }
    let (status, _) = search(&sim, json!({"rows": 2000, "start": 8001})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = search(&sim, json!({"time_range": {"range": "-1d"}, "rows": 10000})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["num_found"].as_u64().unwrap() < 530);

    // Alerts added at run time are found; get by id.
    let r = sim
        .http
        .post(format!("{}/_sim/alerts", sim.handle.base_url))
        .json(&json!([{"id": "added-1", "process_sha256": "ab".repeat(32), "severity": 9}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, body) = search(
        &sim,
        json!({"criteria": {"process_sha256": ["ab".repeat(32)]}}),
    )
    .await;
    assert_eq!(body["num_found"], 1);
    let (status, one) = sim
        .call(
            Method::GET,
            &format!("/api/alerts/v7/orgs/{}/alerts/added-1", sim.org),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["severity"], 9);
    assert_eq!(sim.emulator.state.alert_count(), 531);
}

#[tokio::test]
async fn the_result_window_caps_num_available() {
    let sim = Sim::start(Args {
        alerts: 60,
        result_window: 50,
        beyond_window: BeyondWindow::ServerError,
        ..Args::default()
    })
    .await;
    let (status, body) = search(&sim, json!({"rows": 50})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["num_found"], 60);
    assert_eq!(body["num_available"], 50);
    let (status, _) = search(&sim, json!({"rows": 10, "start": 45})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn faults_and_rate_limits_use_the_envelope() {
    let sim = Sim::start(Args::default()).await;
    sim.set_faults(FaultConfig {
        rate_limit_every: Some(2),
        retry_after_secs: 7,
        ..FaultConfig::default()
    })
    .await;
    let first = sim
        .req(Method::GET, &sim.fm("/feeds"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = sim
        .req(Method::GET, &sim.fm("/feeds"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["retry-after"], "7");
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error_code"], "TOO_MANY_REQUESTS");
    sim.set_faults(FaultConfig {
        server_error_every: Some(1),
        server_error_status: 503,
        ..FaultConfig::default()
    })
    .await;
    let (status, body) = sim.call(Method::GET, &sim.fm("/feeds"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["success"], false);
    sim.set_faults(FaultConfig::default()).await;
    // The admin routes are never faulted and show what the API holds.
    let state: Value = sim
        .http
        .get(format!("{}/_sim/state", sim.handle.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["org_key"], sim.org.as_str());

    let sim = Sim::start(Args {
        rate_limit: Some(3),
        rate_limit_window_secs: 60,
        ..Args::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            sim.call(Method::GET, &sim.fm("/feeds"), None).await.0,
            StatusCode::OK
        );
    }
    let resp = sim
        .req(Method::GET, &sim.fm("/feeds"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&wait), "{wait}");

    // Bodies past the limit get 413 in the envelope.
    let sim = Sim::start(Args {
        max_body_bytes: 1024,
        ..Args::default()
    })
    .await;
    let feed = sim.create_feed(json!([])).await;
    let values: Vec<String> = (0..200).map(|i| format!("{i:064}")).collect();
    let big = json!({"reports": [{"id": "r", "timestamp": 1, "title": "t", "description": "", "severity": 1,
                     "iocs_v2": [{"id": "i", "match_type": "equality", "field": "md5", "values": values}]}]});
    let (status, body) = sim
        .call(
            Method::POST,
            &sim.fm(&format!("/feeds/{feed}/reports")),
            Some(big),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["success"], false);
    let (status, body) = sim.call(Method::GET, "/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "NOT_FOUND");
}
