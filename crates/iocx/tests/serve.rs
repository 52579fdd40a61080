//! `iocx serve` end to end, through the real binary on SQLite and PostgreSQL: the first admin,
//! sessions with CSRF, API tokens and roles, everything the CLI does through the API, the audit
//! log, TAXII 2.1 paging, an EDL with a conditional GET, metrics, hostile requests, and a clean
//! shutdown on SIGTERM. The official `taxii2-client` reads a collection page by page when
//! `IOCX_TEST_PYTHON` names a Python that has it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "correct horse battery";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: &str, data: &std::path::Path, env: &[(&str, &str)]) -> Server {
    let mut child = iocx()
        .arg("--database")
        .arg(db)
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("IOCX_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting iocx serve");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").unwrap();
    let base = first
        .split("serving on ")
        .nth(1)
        .expect("the address")
        .trim_end_matches('/')
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn json_of(r: reqwest::blocking::Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")),
    )
}

struct Api<'a> {
    c: &'a Client,
    base: &'a str,
    token: String,
}

impl Api<'_> {
    fn get(&self, path: &str) -> (StatusCode, Value) {
        json_of(
            self.c
                .get(format!("{}/api/v1{path}", self.base))
                .bearer_auth(&self.token)
                .send()
                .unwrap(),
        )
    }
    fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .c
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .unwrap();
        if r.status() == StatusCode::NO_CONTENT {
            return (r.status(), Value::Null);
        }
        json_of(r)
    }
    fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, body)
    }
}

fn wait_for_run(api: &Api<'_>, subject: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, runs) = api.get(&format!("/runs?subject={subject}&limit=1"));
        if let Some(r) = runs["items"].get(0)
            && r["state"] != "running"
        {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{subject} did not finish: {runs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_api_does_what_the_cli_does_with_roles_and_an_audit_trail() {
    for t in stores() {
        let data = tempdir();
        // A change from the command line is audited too.
        ok_in(
            &t.url,
            data.path(),
            &["rules", "add", "cli-rule", "kind = url"],
        );
        let server = start(
            &t.url,
            data.path(),
            &[
                ("IOCX__EDL__WEB__RULE", "web"),
                ("IOCX__EDL__WEB__KINDS", "[\"url\", \"domain\"]"),
                ("IOCX__EDL__WEB__STRIP_URL_SCHEME", "true"),
                ("IOCX__AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "3"),
            ],
        );
        let c = client();
        let base = server.base.as_str();

        // Unauthenticated requests are refused with JSON errors; health is open.
        let (s, e) = json_of(c.get(format!("{base}/api/v1/stats")).send().unwrap());
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(e["error"]["code"], "unauthenticated");
        assert_eq!(
            c.get(format!("{base}/healthz")).send().unwrap().status(),
            200
        );
        assert_eq!(
            c.get(format!("{base}/readyz")).send().unwrap().status(),
            200
        );

        // A session: log in, then changes need the CSRF token.
        let login = c
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .unwrap();
        assert_eq!(login.status(), 200);
        let cookie = login
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        assert!(
            login.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .contains("HttpOnly")
        );
        let csrf = login.json::<Value>().unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_string();
        let no_csrf = c
            .post(format!("{base}/api/v1/tokens"))
            .header("cookie", &cookie)
            .json(&json!({"name": "x"}))
            .send()
            .unwrap();
        assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
        let (s, created) = json_of(
            c.post(format!("{base}/api/v1/tokens"))
                .header("cookie", &cookie)
                .header("x-csrf-token", &csrf)
                .json(&json!({"name": "automation", "expires_in_days": 30}))
                .send()
                .unwrap(),
        );
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let admin = Api {
            c: &c,
            base,
            token: created["token"].as_str().unwrap().to_string(),
        };
        assert_eq!(admin.get("/auth/me").1["role"], "admin");

        // Indicators in through the API; a malformed one is rejected by index.
        let (s, added) = admin.post(
            "/indicators",
            json!({"source": "api-feed", "indicators": [
                {"value": "hxxps://evil[.]example/login", "severity": "high", "tags": ["phish"]},
                {"value": "bad.example.org", "severity": "critical"},
                {"value": "198.51.100.7", "severity": "medium"},
                {"value": "44d88612fea8a8f36de82e1278abb02f", "severity": "high"},
                {"value": "http://malware.example.net/payload.exe", "severity": "low"},
                {"value": "not an indicator at all"},
            ]}),
        );
        assert_eq!(s, 200, "{added}");
        assert_eq!(added["new"], 5, "{added}");
        assert_eq!(added["rejected"][0]["index"], 5);
        let (_, found) = admin.get("/indicators?value=bad%5B.%5Dexample.org");
        assert_eq!(found["items"][0]["kind"], "domain", "{found}");
        let (_, found) = admin.get("/indicators?value=https%3A%2F%2Fevil.example%2Flogin");
        let id = found["items"][0]["id"].as_i64().unwrap();
        let (s, detail) = admin.get(&format!("/indicators/{id}"));
        assert_eq!(s, 200);
        assert_eq!(detail["indicator"]["observations"][0]["source"], "api-feed");

        // Bulk actions: the user's marks outrank the source.
        let (s, marked) = admin.post(
            "/indicators/actions",
            json!({"action": "tag", "ids": [id], "tags": ["triaged"]}),
        );
        assert_eq!(
            (s, marked["changed"].as_u64()),
            (StatusCode::OK, Some(1)),
            "{marked}"
        );
        let (_, marked) = admin.post(
            "/indicators/actions",
            json!({"action": "safe", "ids": [id]}),
        );
        assert_eq!(marked["changed"], 1);
        let (_, detail) = admin.get(&format!("/indicators/{id}"));
        assert_eq!(detail["indicator"]["safe"], true, "{detail}");
        assert_eq!(detail["indicator"]["user_tags"][0], "triaged");
        admin.post(
            "/indicators/actions",
            json!({"action": "clear", "ids": [id]}),
        );
        assert_eq!(
            admin
                .post(
                    "/indicators/actions",
                    json!({"action": "explode", "ids": [id]})
                )
                .0,
            400
        );

        // Rules: a bad one names the field; a good one previews.
        let (s, e) = admin.post(
            "/rules",
            json!({"name": "bad", "expression": "severity >>= high"}),
        );
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("expression"))
        );
        let (s, _) = admin.post(
            "/rules",
            json!({"name": "web", "expression": "kind in (url, domain) and source = api-feed"}),
        );
        assert_eq!(s, StatusCode::CREATED);
        let (_, p) = admin.post(
            "/rules/preview",
            json!({"expression": "kind in (url, domain) and source = api-feed"}),
        );
        assert_eq!(p["count"], 3, "{p}");
        let (_, page) = admin.get("/indicators?rule_name=web&limit=2");
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let after = page["next"].as_str().unwrap();
        let (_, page2) = admin.get(&format!("/indicators?rule_name=web&limit=2&after={after}"));
        assert_eq!(page2["items"].as_array().unwrap().len(), 1);

        // A destination, a sharing, Fetch then Sync.
        let (s, cfg) = admin.post(
            "/configurations",
            json!({"name": "sink", "connector": "discard"}),
        );
        assert_eq!(s, StatusCode::CREATED, "{cfg}");
        let (s, t) = admin.post("/configurations/sink/test", json!({}));
        assert_eq!((s, t["ok"].as_bool()), (StatusCode::OK, Some(true)), "{t}");
        let (s, e) = admin.post(
            "/sharings",
            json!({"name": "web-out", "rule": "web", "destination": "sink", "target": "nope"}),
        );
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("target")),
            "{e}"
        );
        let (s, sh) = admin.post(
            "/sharings",
            json!({"name": "web-out", "rule": "web", "destination": "sink", "target": "drop"}),
        );
        assert_eq!(s, StatusCode::CREATED, "{sh}");
        let (_, fetch) = admin.post("/sharings/web-out/sync", json!({"days": 7}));
        assert_eq!(fetch["to_send"], 3, "{fetch}");
        let (s, _) = admin.post("/sharings/web-out/sync", json!({"days": 7, "send": true}));
        assert_eq!(s, StatusCode::ACCEPTED);
        let run = wait_for_run(&admin, "web-out");
        assert_eq!(run["state"], "succeeded", "{run}");
        assert_eq!(run["counts"]["shared"], 3, "{run}");
        let (_, logs) = admin.get(&format!("/runs/{}/logs", run["id"]));
        assert!(!logs["items"].as_array().unwrap().is_empty());

        // Roles: a viewer reads but changes nothing.
        let (s, _) = admin.post(
            "/users",
            json!({"name": "vic", "password": "viewer password 1", "role": "viewer"}),
        );
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = admin.post(
            "/users",
            json!({"name": "short", "password": "x", "role": "viewer"}),
        );
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let basic = c
            .post(format!("{base}/api/v1/tokens"))
            .basic_auth("vic", Some("viewer password 1"))
            .json(&json!({"name": "vic-ro"}))
            .send()
            .unwrap();
        let (s, vt) = json_of(basic);
        assert_eq!(s, StatusCode::CREATED, "{vt}");
        let viewer = Api {
            c: &c,
            base,
            token: vt["token"].as_str().unwrap().to_string(),
        };
        assert_eq!(viewer.get("/rules").0, 200);
        let (s, e) = viewer.post("/rules", json!({"name": "r2", "expression": "kind = url"}));
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        assert_eq!(
            viewer
                .post("/sharings/web-out/sync", json!({"send": true}))
                .0,
            403
        );
        assert_eq!(viewer.get("/audit").0, 403);
        let (s, _) = viewer.post("/tokens", json!({"name": "up", "role": "admin"}));
        assert_eq!(s, StatusCode::FORBIDDEN, "no token above the user's role");

        // EDL with a conditional GET; schemes stripped.
        let edl = c.get(format!("{base}/edl/web.txt")).send().unwrap();
        assert_eq!(edl.status(), 200);
        let etag = edl.headers()["etag"].to_str().unwrap().to_string();
        let body = edl.text().unwrap();
        assert!(body.lines().any(|l| l == "evil.example/login"), "{body}");
        assert_eq!(body.lines().count(), 3, "{body}");
        let again = c
            .get(format!("{base}/edl/web.txt"))
            .header("if-none-match", &etag)
            .send()
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

        // TAXII 2.1: discovery, the collection, pages with next and the date headers.
        let taxii = |path: &str| {
            c.get(format!("{base}{path}"))
                .basic_auth("admin", Some(&admin.token))
                .header("accept", "application/taxii+json;version=2.1")
                .send()
                .unwrap()
        };
        let d = taxii("/taxii2/");
        assert_eq!(
            d.headers()["content-type"],
            "application/taxii+json;version=2.1"
        );
        let (_, cols) = json_of(taxii("/taxii2/api/collections/"));
        let col = cols["collections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["title"] == "web")
            .unwrap()
            .clone();
        let id = col["id"].as_str().unwrap();
        let first = taxii(&format!("/taxii2/api/collections/{id}/objects/?limit=2"));
        assert!(first.headers().contains_key("x-taxii-date-added-first"));
        let (_, p1) = json_of(first);
        assert_eq!(p1["more"], true);
        assert_eq!(p1["objects"].as_array().unwrap().len(), 2);
        assert!(
            p1["objects"][0]["pattern"]
                .as_str()
                .unwrap()
                .starts_with('[')
        );
        let next = p1["next"].as_str().unwrap();
        let (_, p2) = json_of(taxii(&format!(
            "/taxii2/api/collections/{id}/objects/?limit=2&next={next}"
        )));
        assert_eq!(
            (
                p2["more"].as_bool(),
                p2["objects"].as_array().unwrap().len()
            ),
            (Some(false), 1)
        );
        let (_, none) = json_of(taxii(&format!(
            "/taxii2/api/collections/{id}/objects/?added_after=2999-01-01T00:00:00Z"
        )));
        assert_eq!(none["objects"].as_array().unwrap().len(), 0);
        let wrong = c
            .get(format!("{base}/taxii2/"))
            .basic_auth("admin", Some(&admin.token))
            .header("accept", "text/html")
            .send()
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::NOT_ACCEPTABLE);

        // Hostile requests get JSON 4xx, never 5xx.
        let r = c
            .post(format!("{base}/api/v1/rules"))
            .bearer_auth(&admin.token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .unwrap();
        assert_eq!(json_of(r).0, StatusCode::BAD_REQUEST);
        let big = vec![b'a'; 17 * 1024 * 1024];
        // Its own client: the server closes a connection whose body it refused unread.
        let r = client()
            .post(format!("{base}/api/v1/indicators"))
            .bearer_auth(&admin.token)
            .header("content-type", "application/json")
            .body(big)
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(admin.get("/runs/not-a-number").0, StatusCode::BAD_REQUEST);
        assert_eq!(admin.get("/indicators?limit=0").0, StatusCode::BAD_REQUEST);
        assert_eq!(admin.get("/nope").0, StatusCode::NOT_FOUND);
        let (s, _) = admin.get("/indicators?rule=%28%28%28");
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // Every documented operation exists (answers something other than "no such route").
        let (_, doc) = json_of(c.get(format!("{base}/api/v1/openapi.json")).send().unwrap());
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                let url = format!(
                    "{base}/api/v1{}",
                    path.replace("{name}", "zz-none").replace("{id}", "999999")
                );
                let r = c
                    .request(method.to_uppercase().parse().unwrap(), &url)
                    .bearer_auth(&viewer.token)
                    .json(&json!({}))
                    .send()
                    .unwrap();
                let status = r.status();
                let text = r.text().unwrap();
                assert!(
                    status != StatusCode::METHOD_NOT_ALLOWED && !text.contains("no such route"),
                    "{method} {path}: {status} {text}"
                );
                assert!(status.as_u16() < 500, "{method} {path}: {status} {text}");
            }
        }

        // Revocation, the audit log, metrics.
        let (_, toks) = admin.get("/tokens?user=vic");
        let vid = toks["items"][0]["id"].as_i64().unwrap();
        assert_eq!(
            admin
                .send(
                    reqwest::Method::DELETE,
                    &format!("/tokens/{vid}"),
                    json!({})
                )
                .0,
            204
        );
        let (s, e) = viewer.get("/rules");
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(e["error"]["message"].as_str().unwrap().contains("revoked"));
        let (_, audit) = admin.get("/audit?limit=100");
        let actions: Vec<&str> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for a in [
            "rule.create",
            "sharing.create",
            "configuration.create",
            "token.create",
            "token.revoke",
            "user.create",
            "sharing.sync",
            "session.login",
        ] {
            assert!(actions.contains(&a), "{a} in {actions:?}");
        }
        assert!(
            audit["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["target"] == "cli-rule"
                    && e["action"] == "rule.create"
                    && e["actor"].as_str().unwrap().starts_with("cli:")),
            "{audit}"
        );
        let user_entry = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "user.create")
            .unwrap();
        assert!(
            !user_entry.to_string().contains("viewer password"),
            "no secrets in the audit log"
        );
        let metrics = c
            .get(format!("{base}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            metrics.contains("route=\"/api/v1/rules/preview\""),
            "route templates"
        );
        assert!(
            metrics.contains("iocx_shared_total{sharing=\"web-out\"} 3"),
            "{metrics}"
        );

        // Wrong passwords are limited.
        for _ in 0..3 {
            let r = c
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": "admin", "password": "wrong wrong wrong"}))
                .send()
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        let r = c
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

        // SIGTERM: a clean, prompt exit.
        let mut server = server;
        let pid = server.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                break;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn taxii2_client_reads_a_collection_page_by_page() {
    let Some(python) = std::env::var_os("IOCX_TEST_PYTHON") else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "taxii2-client check not run: IOCX_TEST_PYTHON is not set"
        );
        return;
    };
    let t = TestStore::sqlite();
    let data = tempdir();
    let lines: String = (0..25).map(|i| format!("evil-{i}.example.com\n")).collect();
    let file = write(data.path(), "feed.txt", &lines);
    ok_in(
        &t.url,
        data.path(),
        &["import", "--source", "feed", file.to_str().unwrap()],
    );
    ok_in(
        &t.url,
        data.path(),
        &[
            "rules",
            "add",
            "feed-domains",
            "kind = domain and source = feed",
        ],
    );
    let server = start(&t.url, data.path(), &[]);
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk/taxii/read_collection.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(format!("{}/taxii2/", server.base))
        .arg("admin")
        .arg(ADMIN_PASSWORD)
        .arg("feed-domains")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("objects=25 pages=3"), "{stdout}");
}

#[test]
fn the_demo_shares_between_the_netskope_and_vision_one_emulators() {
    let mut child = iocx()
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting iocx serve --demo");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = None;
    let mut token = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("serving on ").nth(1) {
            base = Some(rest.trim_end_matches('/').to_string());
        }
        if let Some(rest) = line
            .split("an API token for the demo (admin, 1 day): ")
            .nth(1)
        {
            token = Some(rest.trim().to_string());
        }
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let server = Server {
        child,
        base: base.expect("the address"),
    };
    let c = client();
    let api = Api {
        c: &c,
        base: &server.base,
        token: token.expect("the demo token"),
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let wanted = [
        "netskope-to-vision-one",
        "vision-one-to-netskope",
        "vision-one-hashes-to-netskope",
    ];
    loop {
        let (_, runs) = api.get("/runs?kind=share&limit=50");
        let done: Vec<&str> = runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["state"] == "succeeded" && r["counts"]["shared"].as_u64().unwrap_or(0) > 0
            })
            .filter_map(|r| r["subject"].as_str())
            .collect();
        if wanted.iter().all(|w| done.contains(w)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo's sharings did not all deliver: {runs}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, stats) = api.get("/stats");
    let by_source = &stats["store"]["by_source"];
    assert!(by_source["netskope"].as_u64().unwrap() > 0, "{stats}");
    assert!(by_source["vision-one"].as_u64().unwrap() > 0, "{stats}");
    // The dashboard: what each source brought today, the most sighted indicators with who
    // reported them, and each sharing's deliveries.
    let today = stats["ingested"]["daily"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(today["counts"]["netskope"].as_u64().unwrap() > 0, "{today}");
    assert!(
        today["counts"]["vision-one"].as_u64().unwrap() > 0,
        "{today}"
    );
    let top = stats["top_sighted"].as_array().unwrap();
    assert!(!top.is_empty());
    for t in top {
        let per_source: u64 = t["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["hits"].as_u64().unwrap())
            .sum();
        assert_eq!(per_source, t["hits"].as_u64().unwrap(), "{t}");
    }
    let shared: u64 = stats["shared"]["daily"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            d["counts"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
        })
        .sum();
    assert!(shared > 0, "{stats}");
    assert_eq!(stats["sharings"].as_array().unwrap().len(), 3);
}

#[test]
fn https_from_certificate_and_key_files() {
    let t = TestStore::sqlite();
    let data = tempdir();
    let identity = iocx_sim::common::TlsIdentity::self_signed().unwrap();
    let cert = write(data.path(), "cert.pem", &identity.cert_pem);
    let key = write(data.path(), "key.pem", &identity.key_pem);
    let server = start(
        &t.url,
        data.path(),
        &[
            ("IOCX__SERVER__TLS_CERT", cert.to_str().unwrap()),
            ("IOCX__SERVER__TLS_KEY", key.to_str().unwrap()),
        ],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let c = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(identity.cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let base = server.base.replace("127.0.0.1", "localhost");
    assert_eq!(
        c.get(format!("{base}/healthz")).send().unwrap().status(),
        200
    );
    let login = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("; Secure"),
        "TLS sessions get Secure cookies: {cookie}"
    );
    // Plain HTTP on the TLS port is refused.
    let plain = client()
        .get(server.base.replace("https://", "http://") + "/healthz")
        .send();
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // A key that does not go with the certificate stops the start with a message naming it.
    let other = iocx_sim::common::TlsIdentity::self_signed().unwrap();
    let wrong = write(data.path(), "other-key.pem", &other.key_pem);
    let out = iocx()
        .arg("--database")
        .arg(&t.url)
        .arg("--data")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("IOCX__SERVER__TLS_CERT", &cert)
        .env("IOCX__SERVER__TLS_KEY", &wrong)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tls_key") || stderr.contains("tls_cert"),
        "{stderr}"
    );
}

#[test]
fn console_pages_need_a_session_and_hide_edits_from_viewers() {
    let t = TestStore::sqlite();
    let data = tempdir();
    let feed = write(
        data.path(),
        "feed.txt",
        "evil.example.com\nhttps://phish.example.net/login\n",
    );
    ok_in(
        &t.url,
        data.path(),
        &["import", "--source", "feed", feed.to_str().unwrap()],
    );
    let server = start(&t.url, data.path(), &[]);
    let base = server.base.as_str();
    let browser = |user: &str, password: &str| {
        let c = Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .unwrap();
        let r = c
            .post(format!("{base}/ui/login"))
            .form(&[("username", user), ("password", password)])
            .send()
            .unwrap();
        (c, r)
    };
    // No session: every page sends the browser to the login page.
    let anonymous = client();
    let r = anonymous
        .get(format!("{base}/ui/indicators"))
        .send()
        .unwrap();
    assert!(r.url().path().ends_with("/ui/login"), "{}", r.url());
    // A wrong password is shown on the page.
    let (_, r) = browser("admin", "not the password");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().unwrap().contains("wrong user name or password"));
    // The admin sees the dashboard, the indicators and the actions.
    let (admin, r) = browser("admin", ADMIN_PASSWORD);
    assert!(r.url().path().ends_with("/ui/"), "{}", r.url());
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = r.text().unwrap();
    assert!(
        html.contains("<h1>Dashboard</h1>") && html.contains("feed"),
        "{html}"
    );
    let list = admin
        .get(format!("{base}/ui/indicators?q=evil%5B.%5Dexample.com"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let id: String = list
        .split("/ui/indicators/")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let detail = admin
        .get(format!("{base}/ui/indicators/{id}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(detail.contains("evil.example.com") && detail.contains("data-action=\"safe\""));
    let runs = admin
        .get(format!("{base}/ui/runs"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(runs.contains("feed"), "the import's run is listed");
    // A viewer sees the same indicator without edit controls.
    let out = iocx()
        .arg("--database")
        .arg(&t.url)
        .arg("--data")
        .arg(data.path())
        .args(["users", "add", "vera", "--role", "viewer"])
        .env("IOCX_PASSWORD", "viewer password 2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (viewer, _) = browser("vera", "viewer password 2");
    let detail = viewer
        .get(format!("{base}/ui/indicators/{id}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(detail.contains("evil.example.com") && !detail.contains("data-action"));
    // The other pages, for both roles.
    ok_in(
        &t.url,
        data.path(),
        &["rules", "add", "web", "kind in (url, domain)"],
    );
    ok_in(
        &t.url,
        data.path(),
        &["configs", "add", "sink", "--connector", "discard"],
    );
    ok_in(
        &t.url,
        data.path(),
        &[
            "sharings",
            "add",
            "web-out",
            "--rule",
            "web",
            "--destination",
            "sink",
            "--target",
            "drop",
        ],
    );
    for (path, admin_sees, viewer_lacks) in [
        (
            "/ui/configurations",
            "data-config-action=\"test\"",
            "data-config-action",
        ),
        ("/ui/rules", "kind in (url, domain)", "\u{1}"),
        ("/ui/sharings", "data-sync=\"fetch\"", "data-sync"),
        ("/ui/settings", "<h2>Users</h2>", "<h2>Users</h2>"),
    ] {
        let a = admin.get(format!("{base}{path}")).send().unwrap();
        assert_eq!(a.status(), 200, "{path}");
        let a = a.text().unwrap();
        assert!(a.contains(admin_sees), "{path}: {a}");
        let v = viewer
            .get(format!("{base}{path}"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(!v.contains(viewer_lacks), "{path} for a viewer: {v}");
    }

    // Static files are served; unknown ones are not.
    assert_eq!(
        anonymous
            .get(format!("{base}/ui/static/iocx.js"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        anonymous
            .get(format!("{base}/ui/static/secret"))
            .send()
            .unwrap()
            .status(),
        404
    );
}
