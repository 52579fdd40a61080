//! The TippingPoint SMS emulator over real HTTP on 127.0.0.1:0, asserted the way a client sees
//! it: the three ways to authenticate, add with `TagData`, multipart imports, deletes, sorted
//! queries, TTL expiry, the size cap, CEF events received by a UDP and a TCP listener in the
//! test, the ALERTS export, faults and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use iocx_sim::common::{FaultConfig, SimHandle};
use iocx_sim::tippingpoint_sms::{self, Args, Emulator, OverCapacity, TcpFraming};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const KEY: &str = "sms-api-key";

struct Sim {
    handle: SimHandle,
    emulator: Emulator,
    http: reqwest::Client,
}

impl Sim {
    async fn start(args: Args) -> Sim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (handle, emulator) = tippingpoint_sms::start(listener, &args).await.unwrap();
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
        self.http.get(self.url(path)).header("X-SMS-API-KEY", KEY)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).header("X-SMS-API-KEY", KEY)
    }

    async fn text(&self, r: reqwest::RequestBuilder, status: StatusCode) -> String {
        let r = r.send().await.unwrap();
        let got = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let body = r.text().await.unwrap();
        assert_eq!(got, status, "{body}");
        if !body.is_empty() {
            assert!(ct.unwrap_or_default().starts_with("text/plain"), "{body}");
        }
        body
    }

    /// `curl -F file=@… "…/repEntries/import?type=…"`.
    fn upload(&self, path: &str, file: &str) -> reqwest::RequestBuilder {
        let boundary = "----iocxBoundary7MA4YWxkTrZu0gW";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"entries.csv\"\r\nContent-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n"
        );
        self.post(path)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
    }

    async fn events(&self, body: Value) -> Value {
        let r = self
            .http
            .post(self.url("/_sim/events"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    }
}

fn args() -> Args {
    let mut a = Args::new(KEY);
    a.password = "pw".into();
    a.restricted_api_key = Some("no-ws".into());
    a.tag_categories = vec![
        "MalwareIpType=multilist:cncHost,infectedHost,malwareSource".into(),
        "AtaHost=text".into(),
        "ThreatScore=range:1-100".into(),
        "CreatedDate=text".into(),
    ];
    a
}

fn qs(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

const TTL_LATER: &str = "2099-10-25 07:15:00-0400";

#[tokio::test]
async fn three_ways_to_authenticate_and_the_documented_refusals() {
    let sim = Sim::start(args()).await;
    sim.text(
        sim.get("/dbAccess/tptDBServlet?method=Status"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        sim.text(
            sim.http
                .get(sim.url("/dbAccess/tptDBServlet?method=Status&smsuser=iocx&smspass=pw")),
            StatusCode::OK
        )
        .await,
        "OK"
    );
    sim.text(
        sim.http
            .get(sim.url("/smsAdmin/info?request=version"))
            .basic_auth("iocx", Some("pw")),
        StatusCode::OK,
    )
    .await;
    for req in [
        sim.http.get(sim.url("/repEntries/query?ip=1.1.1.1")),
        sim.http
            .get(sim.url("/repEntries/query?ip=1.1.1.1"))
            .header("X-SMS-API-KEY", "wrong"),
        sim.http
            .get(sim.url("/repEntries/query?ip=1.1.1.1&smsuser=iocx&smspass=no")),
        sim.http
            .get(sim.url("/repEntries/query?ip=1.1.1.1"))
            .basic_auth("iocx", Some("bad")),
    ] {
        sim.text(req, StatusCode::UNAUTHORIZED).await;
    }
    sim.text(
        sim.http
            .get(sim.url("/repEntries/query?ip=1.1.1.1"))
            .header("X-SMS-API-KEY", "no-ws"),
        StatusCode::FORBIDDEN,
    )
    .await;
    sim.text(sim.get("/repEntries/nothing"), StatusCode::NOT_FOUND)
        .await;
}

#[tokio::test]
async fn add_merges_tags_and_query_answers_sorted_lines() {
    let sim = Sim::start(args()).await;
    // The guide's example, with a quoted comma.
    sim.text(
        sim.get("/repEntries/add?ip=1.1.1.1&TagData=MalwareIpType,infectedHost,CreatedDate,%22Jan%2022,%202014%22"),
        StatusCode::OK,
    )
    .await;
    // POST with parameters in a form body; list multi-values with ~~~.
    sim.text(
        sim.post("/repEntries/add")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("ip=1.1.1.2&TagData=AtaHost%2Cmyata.device.com%2CThreatScore%2C28%2CMalwareIpType%2CcncHost~~~infectedHost"),
        StatusCode::OK,
    )
    .await;
    sim.text(
        sim.get("/repEntries/add?ip=1.1.1.10&TagData=AtaHost,x"),
        StatusCode::OK,
    )
    .await;
    // Merge: the existing entry keeps CreatedDate, MalwareIpType is overwritten, AtaHost added.
    sim.text(
        sim.get(
            "/repEntries/add?ip=1.1.1.1&TagData=AtaHost,myata.device.com,MalwareIpType,cncHost",
        ),
        StatusCode::OK,
    )
    .await;
    let body = sim
        .text(
            sim.get("/repEntries/query?ip=1.1.1.10&ip=1.1.1.2&ip=1.1.1.1&ip=9.9.9.9"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        body,
        "1.1.1.1,MalwareIpType,cncHost,CreatedDate,\"Jan 22, 2014\",AtaHost,myata.device.com\n\
         1.1.1.2,AtaHost,myata.device.com,ThreatScore,28,MalwareIpType,cncHost~~~infectedHost\n\
         1.1.1.10,AtaHost,x\n"
    );
    // CIDR normalisation; DNS, URL and IPv6 entries; untagged entries.
    sim.text(
        sim.get("/repEntries/add?ip=192.168.66.127/24"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        sim.text(
            sim.get("/repEntries/query?ip=192.168.66.0/24"),
            StatusCode::OK
        )
        .await,
        "192.168.66.0/24\n"
    );
    sim.text(sim.get("/repEntries/add?dns=Foo.Example"), StatusCode::OK)
        .await;
    sim.text(
        sim.get("/repEntries/add?dns=%5Bexact.example%5D"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        sim.text(
            sim.get("/repEntries/query?dns=foo.example&dns=[exact.example]"),
            StatusCode::OK
        )
        .await,
        "[exact.example]\nfoo.example\n"
    );
    sim.text(
        sim.get("/repEntries/add?url=http%3A%2F%2Fevil.example%2Fa.php"),
        StatusCode::OK,
    )
    .await;
    sim.text(
        sim.get("/repEntries/query?url=http%3A%2F%2Fevil.example%2Fa.php"),
        StatusCode::OK,
    )
    .await;
    // No match: 204 with no body.
    let r = sim
        .get("/repEntries/query?ip=8.8.8.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn add_and_query_refusals() {
    let sim = Sim::start(args()).await;
    for (path, status) in [
        ("/repEntries/add", StatusCode::BAD_REQUEST),
        (
            "/repEntries/add?ip=1.1.1.1&dns=a.example",
            StatusCode::BAD_REQUEST,
        ),
        ("/repEntries/add?ip=1.1.1.999", StatusCode::BAD_REQUEST),
        (
            "/repEntries/add?ip=1.1.1.1&TagData=NoSuchCategory,x",
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            "/repEntries/add?ip=1.1.1.1&TagData=MalwareIpType,CNCHOST",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/repEntries/add?ip=1.1.1.1&TagData=ThreatScore,1000",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/repEntries/add?ip=1.1.1.1&TagData=,x",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/repEntries/add?ip=1.1.1.1&TagData=AtaHost,%22open",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/repEntries/add?ip=1.1.1.1&TagData=Reputation%20Entries%20TTL,next%20week",
            StatusCode::BAD_REQUEST,
        ),
        ("/repEntries/query", StatusCode::BAD_REQUEST),
        (
            "/repEntries/query?ip=1.1.1.1&dns=a.example",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/repEntries/query?ip=not-an-ip",
            StatusCode::PRECONDITION_FAILED,
        ),
    ] {
        sim.text(sim.get(path), status).await;
    }
    assert!(sim.emulator.state.is_empty());
    // An empty value drops its pair only.
    sim.text(
        sim.get("/repEntries/add?ip=1.1.1.1&TagData=AtaHost,,ThreatScore,5"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        sim.text(sim.get("/repEntries/query?ip=1.1.1.1"), StatusCode::OK)
            .await,
        "1.1.1.1,ThreatScore,5\n"
    );
    // 10,001 values is over the limit.
    let many: String = (0..10_001)
        .map(|n| format!("ip=10.0.{}.{}", n / 256 % 256, n % 256))
        .collect::<Vec<_>>()
        .join("&");
    sim.text(
        sim.post("/repEntries/query")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(many),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn imports_take_csv_and_pipe_files_and_ignore_bad_lines() {
    let sim = Sim::start(args()).await;
    let file = format!(
        "# a comment\n\
         198.51.100.1,MalwareIpType,cncHost,Reputation Entries TTL,{TTL_LATER}\n\
         198.51.100.2\n\
         \"198.51.100.3\",AtaHost,\"a, b\"\n\
         not-an-ip,AtaHost,x\n\
         198.51.100.4,NoSuchCategory,x\n\
         198.51.100.5,,x\n\
         2001:db8::1,AtaHost,v6-in-v4-file\n"
    );
    let body = sim
        .text(
            sim.upload("/repEntries/import?type=ipv4", &file),
            StatusCode::OK,
        )
        .await;
    assert_eq!(body, "OK: 3 added, 0 updated, 4 ignored");
    assert_eq!(
        sim.text(
            sim.get("/repEntries/query?ip=198.51.100.3&ip=198.51.100.1"),
            StatusCode::OK
        )
        .await,
        format!(
            "198.51.100.1,MalwareIpType,cncHost,Reputation Entries TTL,{TTL_LATER}\n198.51.100.3,AtaHost,\"a, b\"\n"
        )
    );
    // URLs are pipe-delimited (commas belong to the URL).
    let urls = "http://evil.example/a,b.php|AtaHost|x\nhttps://evil.example/c|MalwareIpType|malwareSource\n";
    let body = sim
        .text(
            sim.upload("/repEntries/import?type=url", urls),
            StatusCode::OK,
        )
        .await;
    assert_eq!(body, "OK: 2 added, 0 updated, 0 ignored");
    sim.text(
        sim.get("/repEntries/query?url=http%3A%2F%2Fevil.example%2Fa%2Cb.php"),
        StatusCode::OK,
    )
    .await;
    // Re-import merges.
    let body = sim
        .text(
            sim.upload(
                "/repEntries/import?type=ipv4",
                "198.51.100.2,AtaHost,now-tagged\n",
            ),
            StatusCode::OK,
        )
        .await;
    assert_eq!(body, "OK: 0 added, 1 updated, 0 ignored");
    // Refusals: no file, a bad type, too many lines.
    sim.text(
        sim.post("/repEntries/import?type=ipv4"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    sim.text(
        sim.upload("/repEntries/import?type=sha1", "x\n"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let big: String = (0..10_001)
        .map(|n| format!("10.1.{}.{}\n", n / 256, n % 256))
        .collect();
    sim.text(
        sim.upload("/repEntries/import?type=ipv4", &big),
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A file of exactly 10,000 is fine.
    let ok: String = (0..10_000)
        .map(|n| format!("10.2.{}.{}\n", n / 256, n % 256))
        .collect();
    let body = sim
        .text(
            sim.upload("/repEntries/import?type=ipv4", &ok),
            StatusCode::OK,
        )
        .await;
    assert_eq!(body, "OK: 10000 added, 0 updated, 0 ignored");
    // A broken multipart body is a 400, not a panic.
    sim.text(
        sim.post("/repEntries/import")
            .header("content-type", "multipart/form-data; boundary=zzz")
            .body("--zzz\r\nno headers end"),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn deletes_by_value_by_file_and_by_criteria() {
    let mut a = args();
    a.repdv_entries = 5;
    let sim = Sim::start(a).await;
    for path in [
        "/repEntries/add?ip=1.1.1.1",
        "/repEntries/add?ip=1.1.1.2",
        "/repEntries/add?dns=a.example",
        "/repEntries/add?dns=b.example",
        "/repEntries/add?ip=1.1.1.3",
    ] {
        sim.text(sim.get(path), StatusCode::OK).await;
    }
    assert_eq!(sim.emulator.state.len(), 10);
    sim.text(
        sim.get("/repEntries/delete?ip=1.1.1.1"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    sim.text(
        sim.get("/repEntries/delete?criteria=entry"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    sim.text(
        sim.get("/repEntries/delete?criteria=sometimes"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let body = sim
        .text(
            sim.get("/repEntries/delete?ip=1.1.1.1&ip=1.1.1.2&dns=a.example&dns=b.example&criteria=entry"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(body, "OK: 4 deleted");
    let r = sim
        .get("/repEntries/query?ip=1.1.1.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // By file.
    let body = sim
        .text(
            sim.upload(
                "/repEntries/delete?criteria=entry&type=ipv4",
                "1.1.1.3,AtaHost,x\n",
            ),
            StatusCode::OK,
        )
        .await;
    assert_eq!(body, "OK: 1 deleted");
    // ThreatDV entries are not returned by query, and go with criteria=repdv (FortiSOAR sends
    // upper case).
    let r = sim
        .get("/repEntries/query?ip=100.64.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    sim.text(sim.get("/repEntries/add?ip=9.9.9.9"), StatusCode::OK)
        .await;
    assert_eq!(
        sim.text(sim.get("/repEntries/delete?criteria=REPDV"), StatusCode::OK)
            .await,
        "OK: 5 deleted"
    );
    assert_eq!(
        sim.text(sim.post("/repEntries/delete?criteria=all"), StatusCode::OK)
            .await,
        "OK: 1 deleted"
    );
    assert!(sim.emulator.state.is_empty());
}

#[tokio::test]
async fn entries_are_reaped_when_their_ttl_passes() {
    let mut a = args();
    a.reap_interval_ms = 200;
    let sim = Sim::start(a).await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1))
        .format("%Y-%m-%d %H:%M:%S%z")
        .to_string();
    let tag = format!("Reputation Entries TTL,{soon}");
    let r = sim
        .get(&format!(
            "/repEntries/add?{}",
            qs(&[("ip", "203.0.113.9"), ("TagData", &tag)])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let later = format!("Reputation Entries TTL,{TTL_LATER}");
    let r = sim
        .get(&format!(
            "/repEntries/add?{}",
            qs(&[("ip", "203.0.113.10"), ("TagData", &later)])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    sim.text(sim.get("/repEntries/query?ip=203.0.113.9"), StatusCode::OK)
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = sim
        .get("/repEntries/query?ip=203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    sim.text(sim.get("/repEntries/query?ip=203.0.113.10"), StatusCode::OK)
        .await;
}

#[tokio::test]
async fn the_size_cap_refuses_new_entries_but_not_merges() {
    let mut a = args();
    a.max_entries = 3;
    a.over_capacity = OverCapacity::Reject;
    let sim = Sim::start(a).await;
    for n in 1..=3 {
        sim.text(
            sim.get(&format!("/repEntries/add?ip=1.1.1.{n}")),
            StatusCode::OK,
        )
        .await;
    }
    sim.text(
        sim.get("/repEntries/add?ip=1.1.1.4"),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    sim.text(
        sim.get("/repEntries/add?ip=1.1.1.1&TagData=AtaHost,x"),
        StatusCode::OK,
    )
    .await;
    sim.text(
        sim.upload("/repEntries/import", "1.1.1.2\n1.1.1.5\n"),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(sim.emulator.state.len(), 3);
    sim.text(
        sim.upload("/repEntries/import", "1.1.1.2,AtaHost,y\n"),
        StatusCode::OK,
    )
    .await;
}

/// Seeded entries, hits asked for by value, and the same events arriving over UDP and TCP and
/// in the ALERTS export.
#[tokio::test]
async fn cef_events_reach_udp_and_tcp_listeners_and_the_alerts_export() {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut a = args();
    a.entries = 50;
    a.syslog_udp = Some(udp.local_addr().unwrap());
    a.syslog_tcp = Some(tcp.local_addr().unwrap());
    let sim = Sim::start(a).await;
    sim.text(sim.get("/repEntries/add?ip=198.51.100.77"), StatusCode::OK)
        .await;
    sim.text(sim.get("/repEntries/add?dns=evil.example"), StatusCode::OK)
        .await;
    let started = chrono::Utc::now().timestamp_millis();
    let made = sim
        .events(json!({"value": "198.51.100.77", "count": 3, "device": "ips-edge-02", "hits": 4}))
        .await;
    assert_eq!(made["emitted"], 3);
    // A name under a suffix entry hits with its own name.
    sim.events(json!({"value": "cdn.evil.example", "count": 1}))
        .await;

    let mut udp_lines = Vec::new();
    let mut buf = vec![0u8; 65536];
    for _ in 0..4 {
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from(&mut buf))
            .await
            .expect("a UDP datagram")
            .unwrap();
        assert!(from.ip().is_loopback());
        udp_lines.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    let (stream, _) = tokio::time::timeout(Duration::from_secs(5), tcp.accept())
        .await
        .unwrap()
        .unwrap();
    let mut reader = BufReader::new(stream).lines();
    let mut tcp_lines = Vec::new();
    for _ in 0..4 {
        let line = tokio::time::timeout(Duration::from_secs(5), reader.next_line())
            .await
            .expect("a TCP line")
            .unwrap()
            .unwrap();
        tcp_lines.push(line);
    }
    assert_eq!(udp_lines, tcp_lines);
    for line in &udp_lines[..3] {
        assert!(line.starts_with("<131>"), "{line}");
        assert!(
            line.contains(
                " sms-01 CEF:0|TippingPoint|UnityOne|1.0.0.17|7610|iocx Reputation Block|3|"
            ),
            "{line}"
        );
        for field in [
            " cat=Reputation ",
            " cnt=4 ",
            " act=Block ",
            " dvchost=ips-edge-02 ",
            " cs6=198.51.100.77 ",
            " cn2=33554431 ",
        ] {
            assert!(line.contains(field), "{field} missing from {line}");
        }
        assert!(
            line.contains(" dst=198.51.100.77 ") || line.contains(" src=198.51.100.77 "),
            "{line}"
        );
        let rt: i64 = line
            .split("|rt=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rt >= started - 1000, "{rt} {started}");
    }
    assert!(udp_lines[3].contains("|7611|"), "{}", udp_lines[3]);
    assert!(udp_lines[3].contains(" cs6=cdn.evil.example "));
    assert!(udp_lines[3].contains(" dpt=53"));

    // The ALERTS table has the same four events.
    let end = chrono::Utc::now().timestamp_millis() + 1;
    let csv = sim
        .text(
            sim.get(&format!(
                "/dbAccess/tptDBServlet?method=GetData&table=ALERTS&begin_time={}&end_time={end}",
                started - 10_000
            )),
            StatusCode::OK,
        )
        .await;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "SEQUENCE_NUM");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4);
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    assert_eq!(rows[0][col("MESSAGE_PARMS")], "198.51.100.77");
    assert_eq!(rows[0][col("HIT_COUNT")], "4");
    assert_eq!(rows[3][col("MESSAGE_PARMS")], "cdn.evil.example");
    // Sequence numbers count per device.
    assert_eq!(rows[0][col("SEQUENCE_NUM")], "1");
    assert_eq!(rows[2][col("SEQUENCE_NUM")], "3");
    assert_eq!(rows[3][col("SEQUENCE_NUM")], "1");
    let xml = sim
        .text(
            sim.get(&format!(
                "/dbAccess/tptDBServlet?method=GetData&table=ALERTS&begin_time=0&end_time={end}&format=xml&limit=2"
            )),
            StatusCode::OK,
        )
        .await;
    assert_eq!(xml.matches("<r>").count(), 2);
    assert!(xml.contains("<column name=\"SEQUENCE_NUM\" type=\"NUMBER\"/>"));
    let newest = sim
        .text(
            sim.get("/dbAccess/tptDBServlet?method=GetNewestRecord&table=ALERTS&format=sql"),
            StatusCode::OK,
        )
        .await;
    assert!(newest.starts_with("INSERT INTO ALERTS (SEQUENCE_NUM,"));
    assert!(newest.contains("'cdn.evil.example'"));
    // An empty window, and refusals.
    let empty = sim
        .text(
            sim.get("/dbAccess/tptDBServlet?method=GetData&table=ALERTS&begin_time=0&end_time=1"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(empty.lines().count(), 1);
    for bad in [
        "/dbAccess/tptDBServlet?method=GetData&table=ALERTS",
        "/dbAccess/tptDBServlet?method=GetData&table=NOPE&begin_time=0&end_time=1",
        "/dbAccess/tptDBServlet?method=Hack",
        "/dbAccess/tptDBServlet",
        "/dbAccess/tptDBServlet?method=GetData&table=ALERTS&begin_time=x&end_time=1",
    ] {
        sim.text(sim.get(bad), StatusCode::BAD_REQUEST).await;
    }
    let dictionary = sim
        .text(
            sim.get("/dbAccess/tptDBServlet?method=DataDictionary&table=SIGNATURE&format=csv"),
            StatusCode::OK,
        )
        .await;
    assert!(dictionary.contains(",7610,"));
    // Hits on random seeded entries; unknown values are refused.
    let made = sim.events(json!({"count": 20})).await;
    assert_eq!(made["events"].as_array().unwrap().len(), 20);
    let r = sim
        .http
        .post(sim.url("/_sim/events"))
        .json(&json!({"value": "never-added.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for _ in 0..20 {
        tokio::time::timeout(Duration::from_secs(5), udp.recv_from(&mut buf))
            .await
            .expect("a UDP datagram")
            .unwrap();
    }
    let counters: Value = sim
        .http
        .get(sim.url("/_sim/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["syslog"]["udp_sent"], 24);
    assert_eq!(counters["events"].as_array().unwrap().len(), 24);
}

#[tokio::test]
async fn the_generator_emits_at_its_rate_with_octet_counting_over_tcp() {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut a = args();
    a.entries = 20;
    a.events_per_second = 20.0;
    a.syslog_tcp = Some(tcp.local_addr().unwrap());
    a.syslog_tcp_framing = TcpFraming::OctetCounting;
    let sim = Sim::start(a).await;
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(5), tcp.accept())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut buf = vec![0u8; 1 << 20];
    let n = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::AsyncReadExt::read(&mut stream, &mut buf),
    )
    .await
    .unwrap()
    .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    // Octet counting: "<len> <line>" repeated, no newlines.
    let (len, rest) = text.split_once(' ').unwrap();
    let len: usize = len.parse().unwrap();
    assert!(rest[..len].starts_with('<') && rest[..len].contains("CEF:0|TippingPoint|UnityOne|"));
    assert!(!text.contains('\n'));
    let alerts = sim.emulator.state.alerts().len();
    assert!(
        (8..=40).contains(&alerts),
        "{alerts} events in about a second at 20/s"
    );
}

#[tokio::test]
async fn syslog_targets_must_be_loopback() {
    let mut a = args();
    a.syslog_udp = Some("192.0.2.1:514".parse().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = tippingpoint_sms::start(listener, &a).await.unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn faults_and_methods() {
    let mut a = args();
    a.methods = tippingpoint_sms::Methods::Post;
    let sim = Sim::start(a).await;
    sim.text(
        sim.get("/repEntries/add?ip=1.1.1.1"),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    sim.text(sim.post("/repEntries/add?ip=1.1.1.1"), StatusCode::OK)
        .await;
    let set = |f: FaultConfig| sim.http.put(sim.url("/_sim/faults")).json(&f).send();
    set(FaultConfig {
        rate_limit_every: Some(2),
        retry_after_secs: 3,
        server_error_status: 500,
        ..FaultConfig::default()
    })
    .await
    .unwrap();
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = sim
            .post("/repEntries/query?ip=1.1.1.1")
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.headers()["retry-after"], "3");
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
        }
    }
    assert_eq!(codes, [200, 429, 200, 429]);
    set(FaultConfig {
        capacity_reached: true,
        retry_after_secs: 1,
        server_error_status: 500,
        ..FaultConfig::default()
    })
    .await
    .unwrap();
    sim.text(
        sim.post("/repEntries/add?ip=1.1.1.2"),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    set(FaultConfig {
        server_error_every: Some(1),
        server_error_status: 500,
        retry_after_secs: 1,
        ..FaultConfig::default()
    })
    .await
    .unwrap();
    sim.text(
        sim.post("/repEntries/add?ip=1.1.1.2"),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    // Admin routes bypass faults.
    let state: Value = sim
        .http
        .get(sim.url("/_sim/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["entries"].as_array().unwrap().len(), 1);
    assert!(state["tag_categories"].as_array().unwrap().len() >= 10);
    let r = sim
        .http
        .post(sim.url("/_sim/tag-categories"))
        .json(&json!({"spec": "Campaign=text"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = sim
        .http
        .post(sim.url("/_sim/tag-categories"))
        .json(&json!({"spec": "Campaign=yesno"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
