//! The ServiceNow emulator over real HTTP on 127.0.0.1:0, asserted the way a client sees it:
//! Basic and OAuth auth, Table API CRUD, encoded queries, paging headers, field selection and
//! display values, the Batch API, faults and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use iocx_sim::common::{FaultConfig, SimHandle};
use iocx_sim::servicenow::{self, Args, Emulator, InvalidQuery, Password, ReadOnlyUser};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OBS: &str = "/api/now/table/sn_ti_observable";

struct Sim {
    handle: SimHandle,
    emulator: Emulator,
    http: reqwest::Client,
    args: Args,
}

impl Sim {
    async fn start(args: Args) -> Sim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (handle, emulator) = servicenow::start(listener, &args).await.unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Sim {
            handle,
            emulator,
            http,
            args,
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.handle.base_url))
            .basic_auth(&self.args.user, Some(self.args.password.as_str()))
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, Value) {
        self.send(self.req(Method::GET, path)).await
    }

    async fn get_q(&self, path: &str, query: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        self.send(self.req(Method::GET, &format!("{path}?{query}")))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, HeaderMap, Value) {
        self.send(self.req(Method::POST, path).json(&body)).await
    }

    async fn values(&self, query: &str) -> Vec<String> {
        let (status, _, body) = self
            .get_q(
                OBS,
                &[("sysparm_query", query), ("sysparm_fields", "value")],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        body["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_str().unwrap().to_string())
            .collect()
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn basic_auth_oauth_and_acls() {
    let sim = Sim::start(Args {
        client_id: Some("cid".into()),
        client_secret: Some(Password::from("csecret")),
        read_only_user: Some(ReadOnlyUser {
            user: "viewer".into(),
            password: "viewpw".into(),
        }),
        ..Args::default()
    })
    .await;
    let url = format!("{}{OBS}", sim.handle.base_url);
    let (status, headers, body) = sim.send(sim.http.get(&url)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["message"], "User Not Authenticated");
    assert_eq!(
        body["error"]["detail"],
        "Required to provide Auth information"
    );
    assert_eq!(body["status"], "failure");
    assert!(headers.contains_key("www-authenticate"));
    let (status, _, body) = sim
        .send(sim.http.get(&url).basic_auth(&sim.args.user, Some("nope")))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["message"], "User is not authenticated");
    assert_eq!(sim.get(OBS).await.0, StatusCode::OK);

    // OAuth password grant → bearer; refresh; client credentials; bad client.
    let token = |form: Vec<(&'static str, String)>| {
        sim.http
            .post(format!("{}/oauth_token.do", sim.handle.base_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
    };
    let (status, _, tok) = sim
        .send(token(vec![
            ("grant_type", "password".into()),
            ("client_id", "cid".into()),
            ("client_secret", "csecret".into()),
            ("username", sim.args.user.clone()),
            ("password", sim.args.password.as_str().into()),
        ]))
        .await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 1800);
    let access = tok["access_token"].as_str().unwrap().to_string();
    let refresh = tok["refresh_token"].as_str().unwrap().to_string();
    let (status, _, _) = sim.send(sim.http.get(&url).bearer_auth(&access)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = sim.send(sim.http.get(&url).bearer_auth("forged")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, again) = sim
        .send(
            token(vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", refresh.clone()),
            ])
            .basic_auth("cid", Some("csecret")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_ne!(again["access_token"], tok["access_token"]);
    let (status, _, cc) = sim
        .send(token(vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", "cid".into()),
            ("client_secret", "csecret".into()),
        ]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(cc.get("refresh_token").is_none());
    let (status, _, bad) = sim
        .send(token(vec![
            ("grant_type", "password".into()),
            ("client_id", "cid".into()),
            ("client_secret", "wrong".into()),
            ("username", sim.args.user.clone()),
            ("password", sim.args.password.as_str().into()),
        ]))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bad,
        json!({"error": "server_error", "error_description": "access_denied"})
    );

    // The read-only user reads but may not write.
    let (status, _, _) = sim
        .send(sim.http.get(&url).basic_auth("viewer", Some("viewpw")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = sim
        .send(
            sim.http
                .post(&url)
                .basic_auth("viewer", Some("viewpw"))
                .json(&json!({"value": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["message"], "Operation Failed");
}

#[tokio::test]
async fn table_api_crud_and_errors() {
    let sim = Sim::start(Args::default()).await;
    // Netskope's push: look up by value, create if absent (type not set).
    let (status, _, body) = sim
        .get_q(OBS, &[("sysparm_query", "value=198.51.100.9")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"result": []}));
    let (status, headers, made) = sim.post(OBS, json!({"value": "198.51.100.9"})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let record = &made["result"];
    let sys_id = record["sys_id"].as_str().unwrap().to_string();
    assert_eq!(sys_id.len(), 32);
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("{OBS}/{sys_id}"))
    );
    assert_eq!(record["type"], "");
    assert_eq!(record["sys_mod_count"], "0");
    assert_eq!(record["sys_created_by"], sim.args.user.as_str());
    let created = record["sys_created_on"].as_str().unwrap();
    assert!(servicenow::parse_time(created).is_some(), "{created}");
    assert_eq!(created.len(), 19);

    // A type given by its value resolves to the reference; links point at the type table.
    let (status, _, typed) = sim
        .post(
            OBS,
            json!({"value": "d41d8cd98f00b204e9800998ecf8427e", "type": "MD5", "notes": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let t = &typed["result"]["type"];
    let type_id = t["value"].as_str().unwrap();
    assert!(
        t["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/now/table/sn_ti_observable_type/{type_id}"))
    );
    assert_eq!(typed["result"]["notes"], "5");

    let one = format!("{OBS}/{sys_id}");
    let (status, _, got) = sim.get(&one).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["result"]["value"], "198.51.100.9");
    let (status, _, patched) = sim
        .send(
            sim.req(Method::PATCH, &one)
                .json(&json!({"finding": "Malicious", "sys_id": "ignored", "bogus": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["result"]["finding"], "Malicious");
    assert_eq!(patched["result"]["sys_id"], sys_id.as_str());
    assert_eq!(patched["result"]["sys_mod_count"], "1");
    assert!(patched["result"].get("bogus").is_none());
    let (status, _, put) = sim
        .send(
            sim.req(Method::PUT, &one)
                .json(&json!({"notes": "seen twice"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(put["result"]["sys_mod_count"], "2");
    let (status, _, body) = sim.send(sim.req(Method::DELETE, &one)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, _, body) = sim.get(&one).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["message"], "No Record found");
    assert_eq!(
        sim.send(sim.req(Method::DELETE, &one)).await.0,
        StatusCode::NOT_FOUND
    );

    // Task tables number their records; the versioned paths answer too.
    let (status, _, sir) = sim
        .post(
            "/api/now/v2/table/sn_si_incident",
            json!({"short_description": "beacon", "assigned_to": "beth.anglin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(sir["result"]["number"].as_str().unwrap().starts_with("SIR"));
    assert_eq!(sir["result"]["state"], "10");
    let (_, _, inc) = sim
        .post(
            "/api/now/v1/table/incident",
            json!({"short_description": "x"}),
        )
        .await;
    assert!(inc["result"]["number"].as_str().unwrap().starts_with("INC"));

    // Errors in the envelope.
    let (status, _, body) = sim.get("/api/now/table/no_such_table").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "Invalid table no_such_table");
    for raw in ["{", "[1,2]", "", "\"text\""] {
        let (status, _, body) = sim
            .send(
                sim.req(Method::POST, OBS)
                    .header("content-type", "application/json")
                    .body(raw),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw}");
        assert_eq!(body["status"], "failure");
    }
    let (status, _, _) = sim.send(sim.req(Method::PATCH, OBS).json(&json!({}))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _, _) = sim.get("/api/now/stats/incident").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = sim.get_q(OBS, &[("sysparm_limit", "ten")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Extreme paging values answer, never overflow.
    let (status, headers, body) = sim
        .get_q(
            OBS,
            &[
                ("sysparm_offset", "9223372036854775807"),
                ("sysparm_limit", "9223372036854775807"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"], json!([]));
    assert!(headers["link"].to_str().unwrap().contains("rel=\"prev\""));
    let (status, _, _) = sim.get_q(OBS, &[("sysparm_offset", "-5")]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn paging_headers_follow_offset_and_limit() {
    let sim = Sim::start(Args {
        records: 45,
        ..Args::default()
    })
    .await;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let (status, headers, body) = sim
            .get_q(
                OBS,
                &[
                    ("sysparm_limit", "10"),
                    ("sysparm_offset", &offset.to_string()),
                    ("sysparm_query", "ORDERBYsys_created_on"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["x-total-count"], "45");
        let link = headers["link"].to_str().unwrap().to_string();
        assert!(link.contains("rel=\"first\""), "{link}");
        assert!(link.contains("rel=\"last\""), "{link}");
        assert!(link.contains("sysparm_offset=40"), "{link}");
        assert_eq!(link.contains("rel=\"prev\""), offset > 0, "{link}");
        assert_eq!(link.contains("rel=\"next\""), offset < 40, "{link}");
        assert!(
            link.contains("sysparm_query=ORDERBYsys_created_on"),
            "{link}"
        );
        let page = body["result"].as_array().unwrap();
        seen.extend(
            page.iter()
                .map(|r| r["sys_created_on"].as_str().unwrap().to_string()),
        );
        if offset + 10 >= 45 {
            assert_eq!(page.len(), 5);
            break;
        }
        offset += 10;
    }
    assert_eq!(seen.len(), 45);
    let mut s = seen.clone();
    s.sort();
    assert_eq!(seen, s);

    // One page: no Link header. Past the end: empty result, count still there.
    let (_, headers, body) = sim.get_q(OBS, &[("sysparm_limit", "100")]).await;
    assert!(!headers.contains_key("link"));
    assert_eq!(body["result"].as_array().unwrap().len(), 45);
    let (_, headers, body) = sim.get_q(OBS, &[("sysparm_offset", "45")]).await;
    assert_eq!(body["result"], json!([]));
    assert_eq!(headers["x-total-count"], "45");
    let (_, headers, _) = sim
        .get_q(
            OBS,
            &[
                ("sysparm_limit", "10"),
                ("sysparm_suppress_pagination_header", "true"),
            ],
        )
        .await;
    assert!(!headers.contains_key("link"));
    assert_eq!(headers["x-total-count"], "45");

    // --max-limit caps a page.
    let sim = Sim::start(Args {
        records: 30,
        max_limit: 20,
        ..Args::default()
    })
    .await;
    let (_, _, body) = sim.get_q(OBS, &[("sysparm_limit", "10000")]).await;
    assert_eq!(body["result"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn encoded_queries_are_parsed() {
    let sim = Sim::start(Args::default()).await;
    let items = [
        ("a1", "MD5"),
        ("b2", "SHA256"),
        ("c3", "URL"),
        ("Dee4", "ipv4-addr"),
        ("e5", "Domain name"),
    ];
    for (value, kind) in items {
        let (status, _, _) = sim
            .post(
                OBS,
                json!({"value": value, "type": kind, "notes": format!("note {value}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(sorted(sim.values("value=a1").await), ["a1"]);
    assert_eq!(
        sorted(sim.values("value=A1").await),
        ["a1"],
        "= is case-insensitive"
    );
    assert_eq!(
        sorted(sim.values("value!=a1").await),
        ["Dee4", "b2", "c3", "e5"]
    );
    assert_eq!(
        sorted(sim.values("type.value=MD5^ORtype.value=SHA256").await),
        ["a1", "b2"]
    );
    // ^OR binds tighter than ^: a AND (b OR c).
    assert_eq!(
        sorted(
            sim.values("valueSTARTSWITHa^type.value=MD5^ORtype.value=URL")
                .await
        ),
        ["a1"]
    );
    assert_eq!(
        sorted(sim.values("value=a1^NQvalue=b2").await),
        ["a1", "b2"]
    );
    assert_eq!(sorted(sim.values("valueLIKEee").await), ["Dee4"]);
    assert_eq!(
        sorted(sim.values("valueNOT LIKEe").await),
        ["a1", "b2", "c3"]
    );
    assert_eq!(sorted(sim.values("valueENDSWITH3").await), ["c3"]);
    assert_eq!(sorted(sim.values("valueINa1,c3,zz").await), ["a1", "c3"]);
    assert_eq!(
        sorted(sim.values("valueNOT INa1,c3").await),
        ["Dee4", "b2", "e5"]
    );
    assert_eq!(
        sorted(sim.values("type.valueISEMPTY").await),
        Vec::<String>::new()
    );
    assert_eq!(
        sorted(sim.values("notesISNOTEMPTY^value>c3").await),
        ["Dee4", "e5"]
    );
    assert_eq!(
        sorted(sim.values("value>=c3^value<e5").await),
        ["Dee4", "c3"]
    );
    assert_eq!(sorted(sim.values("value<=b2").await), ["a1", "b2"]);
    assert_eq!(
        sim.values("ORDERBYDESCvalue").await,
        ["e5", "Dee4", "c3", "b2", "a1"]
    );
    assert_eq!(
        sim.values("ORDERBYtype").await[0],
        "e5",
        "references sort by display value"
    );
    // Dates: plain, dateGenerate and relative.
    assert_eq!(
        sim.values("sys_created_on>2020-01-01 00:00:00").await.len(),
        5
    );
    assert_eq!(
        sim.values("sys_created_on<javascript:gs.dateGenerate('2020-01-01','00:00:00')")
            .await
            .len(),
        0
    );
    assert_eq!(
        sim.values("sys_updated_on>javascript:gs.daysAgo(1)")
            .await
            .len(),
        5
    );
    assert_eq!(
        sim.values("sys_created_onBETWEENjavascript:gs.daysAgoStart(1)@javascript:gs.endOfToday()")
            .await
            .len(),
        5
    );

    // Unknown fields are dropped by default (the rest still filters)...
    assert_eq!(sorted(sim.values("no_such_field=1^value=b2").await), ["b2"]);
    assert_eq!(sim.values("garbage!!").await.len(), 5);
    // ...answer no rows or a 400 when asked.
    let strict = Sim::start(Args {
        invalid_query: InvalidQuery::Error,
        ..Args::default()
    })
    .await;
    let (status, _, body) = strict
        .get_q(OBS, &[("sysparm_query", "no_such_field=1")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "Invalid query");
    let none = Sim::start(Args {
        invalid_query: InvalidQuery::NoRows,
        records: 5,
        ..Args::default()
    })
    .await;
    let (status, headers, body) = none.get_q(OBS, &[("sysparm_query", "type.bogus=1")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"], json!([]));
    assert_eq!(headers["x-total-count"], "0");
}

#[tokio::test]
async fn fields_and_display_values() {
    let sim = Sim::start(Args::default()).await;
    sim.post(
        OBS,
        json!({"value": "evil.example", "type": "Domain name", "finding": "Suspicious"}),
    )
    .await;
    // Netskope's pull: dot-walked names come back as literal keys.
    let (_, _, body) = sim
        .get_q(
            OBS,
            &[(
                "sysparm_fields",
                "value,type.value,sys_id,sys_created_on,sys_updated_on,notes",
            )],
        )
        .await;
    let r = &body["result"][0];
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6, "{r}");
    assert_eq!(r["type.value"], "Domain name");
    assert_eq!(r["notes"], "");

    let (_, _, raw) = sim.get_q(OBS, &[("sysparm_fields", "type,finding")]).await;
    assert!(raw["result"][0]["type"]["link"].is_string());
    let (_, _, nolink) = sim
        .get_q(
            OBS,
            &[
                ("sysparm_fields", "type"),
                ("sysparm_exclude_reference_link", "true"),
            ],
        )
        .await;
    assert!(nolink["result"][0]["type"].is_string());
    let (_, _, shown) = sim
        .get_q(
            OBS,
            &[
                ("sysparm_fields", "type,finding"),
                ("sysparm_display_value", "true"),
            ],
        )
        .await;
    assert_eq!(shown["result"][0]["type"]["display_value"], "Domain name");
    let (_, _, all) = sim
        .get_q(
            OBS,
            &[
                ("sysparm_fields", "finding,type"),
                ("sysparm_display_value", "all"),
            ],
        )
        .await;
    assert_eq!(
        all["result"][0]["finding"],
        json!({"display_value": "Suspicious", "value": "Suspicious"})
    );
    assert!(all["result"][0]["type"]["value"].as_str().unwrap().len() == 32);

    let (_, _, inc) = sim
        .post(
            "/api/now/table/incident",
            json!({"short_description": "x", "priority": 1, "caller_id": "Abel Tuter"}),
        )
        .await;
    let id = inc["result"]["sys_id"].as_str().unwrap();
    let (_, _, shown) = sim
        .get_q(
            &format!("/api/now/table/incident/{id}"),
            &[("sysparm_display_value", "true")],
        )
        .await;
    assert_eq!(shown["result"]["priority"], "1 - Critical");
    assert_eq!(shown["result"]["caller_id"]["display_value"], "Abel Tuter");
    assert_eq!(shown["result"]["active"], "true");
}

#[tokio::test]
async fn the_batch_api_serves_many_table_requests_in_one() {
    let sim = Sim::start(Args {
        batch_max_requests: 3,
        ..Args::default()
    })
    .await;
    let create = |id: &str, value: &str| {
        json!({
            "id": id, "method": "POST", "url": OBS,
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "body": BASE64.encode(json!({"value": value, "type": "SHA256"}).to_string()),
        })
    };
    let (status, _, body) = sim
        .post(
            "/api/now/v1/batch",
            json!({
                "batch_request_id": "b1",
                "rest_requests": [
                    create("1", "aa"), create("2", "bb"),
                    {"id": "3", "method": "GET", "url": format!("{OBS}?sysparm_query=value=aa&sysparm_fields=value")},
                    create("4", "cc"),
                ],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["batch_request_id"], "b1");
    let served = body["serviced_requests"].as_array().unwrap();
    assert_eq!(served.len(), 3);
    assert_eq!(served[0]["status_code"], 201);
    assert_eq!(served[0]["status_text"], "Created");
    let decoded: Value =
        serde_json::from_slice(&BASE64.decode(served[2]["body"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(decoded, json!({"result": [{"value": "aa"}]}));
    assert!(
        served[2]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "X-Total-Count")
    );
    assert_eq!(body["unserviced_requests"], json!(["4"]));
    assert_eq!(
        sim.emulator.state.read(|db| db.count("sn_ti_observable")),
        2
    );

    // Bad sub-requests fail alone.
    let (status, _, body) = sim
        .post(
            "/api/now/batch",
            json!({"batch_request_id": "b2", "rest_requests": [
                {"id": "x", "method": "GET", "url": "/api/now/table/nope"},
                {"id": "y", "method": "POST", "url": OBS, "body": "%%%"},
                {"id": "z", "method": "GET", "url": "/api/now/v1/batch"},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for entry in body["serviced_requests"].as_array().unwrap() {
        assert_eq!(entry["status_code"], 400, "{entry}");
    }
    let (status, _, _) = sim.post("/api/now/v1/batch", json!([1])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn faults_rate_limits_and_state() {
    let sim = Sim::start(Args {
        records: 10,
        incidents: 3,
        ..Args::default()
    })
    .await;
    let put_faults = |f: FaultConfig| {
        sim.http
            .put(format!("{}/_sim/faults", sim.handle.base_url))
            .json(&f)
            .send()
    };
    put_faults(FaultConfig {
        rate_limit_every: Some(1),
        retry_after_secs: 4,
        ..FaultConfig::default()
    })
    .await
    .unwrap();
    let (status, headers, body) = sim.get(OBS).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "4");
    assert_eq!(body["error"]["message"], "Rate limit exceeded");
    assert_eq!(body["status"], "failure");
    put_faults(FaultConfig {
        outage_secs: Some(60),
        ..FaultConfig::default()
    })
    .await
    .unwrap();
    let (status, _, body) = sim.get(OBS).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "failure");
    put_faults(FaultConfig::default()).await.unwrap();

    let state: Value = sim
        .http
        .get(format!("{}/_sim/state", sim.handle.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["tables"]["sn_ti_observable"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        state["tables"]["sn_si_incident"].as_array().unwrap().len(),
        3
    );
    assert_eq!(
        state["tables"]["sn_ti_observable_type"]
            .as_array()
            .unwrap()
            .len(),
        9
    );
    let r = sim
        .http
        .delete(format!("{}/_sim/state", sim.handle.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, headers, _) = sim.get(OBS).await;
    assert_eq!(headers["x-total-count"], "0");
    let (_, headers, _) = sim.get("/api/now/table/sys_user").await;
    assert_ne!(headers["x-total-count"], "0");

    let sim = Sim::start(Args {
        rate_limit: Some(2),
        rate_limit_window_secs: 60,
        ..Args::default()
    })
    .await;
    assert_eq!(sim.get(OBS).await.0, StatusCode::OK);
    assert_eq!(sim.get(OBS).await.0, StatusCode::OK);
    let (status, headers, body) = sim.get(OBS).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(headers["x-ratelimit-limit"], "2");
    assert_eq!(body["error"]["message"], "Rate limit exceeded");

    // TLS when asked.
    let tls = Sim::start(Args {
        tls: true,
        ..Args::default()
    })
    .await;
    assert!(tls.handle.base_url.starts_with("https://"));
    let pem = tls.handle.tls.as_ref().unwrap().cert_pem.clone();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let resp = http
        .get(format!("{}{OBS}?sysparm_limit=1", tls.handle.base_url))
        .basic_auth(&tls.args.user, Some(tls.args.password.as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
