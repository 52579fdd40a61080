//! ThreatQ and TippingPoint SMS end to end through the real binary (the seeds' 003/004 story):
//! a ThreatQ data collection is pulled, its network indicators go into the SMS reputation
//! database, the IPS hits one of them, the hits come back as sightings of that indicator, and the
//! entries leave the SMS when they leave the rule. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use iocx_sim::common::SimHandle;
use iocx_sim::threatq as tq;
use iocx_sim::tippingpoint_sms as sms;
use serde_json::{Value, json};

fn selected(preview: &str) -> usize {
    preview
        .split_whitespace()
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

#[test]
fn a_threatq_collection_reaches_the_ips_and_its_hits_come_back() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for t in stores() {
        let (tq_handle, _threatq): (SimHandle, tq::Emulator) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut args = tq::Args::new("tq-id", "tq-secret");
            args.indicators = 400;
            tq::start(listener, &args).await.unwrap()
        });
        let (sms_handle, ips): (SimHandle, sms::Emulator) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sms::start(listener, &sms::Args::new("sms-key"))
                .await
                .unwrap()
        });
        let data = tempdir();
        let db = t.url.as_str();
        let run = |args: &[&str]| ok_in(db, data.path(), args);
        let url = format!("url={}", tq_handle.base_url);
        run(&[
            "configs",
            "add",
            "threatq",
            "--connector",
            "threatq",
            "--set",
            &url,
            "--set",
            "client_id=tq-id",
            "--secret",
            "client_secret=tq-secret",
            "--set",
            "collection=Active Indicators",
            "--aging-days",
            "3650",
        ]);
        let url = format!("url={}", sms_handle.base_url);
        run(&[
            "configs",
            "add",
            "sms",
            "--connector",
            "tippingpoint_sms",
            "--set",
            &url,
            "--secret",
            "api_key=sms-key",
        ]);
        assert!(run(&["configs", "test", "threatq"]).contains("Active Indicators"));
        assert!(run(&["configs", "test", "sms"]).contains("SMS"));
        run(&["pull", "threatq"]);

        let rule = "kind in (ipv4, domain, url) and source = threatq and active";
        let expected = selected(&run(&["rules", "preview", rule]));
        assert!(expected > 10, "enough for import files: {expected}");
        run(&["rules", "add", "to-ips", rule]);
        run(&[
            "sharings",
            "add",
            "threatq-to-sms",
            "--source",
            "threatq",
            "--rule",
            "to-ips",
            "--destination",
            "sms",
            "--target",
            "reputation",
            "--param",
            "scan_action=block",
        ]);
        let out = run(&["share", "threatq-to-sms"]);
        assert!(
            out.contains(&format!(" {expected} shared")),
            "{expected}: {out}"
        );
        assert_eq!(ips.state.len(), expected);

        // The IPS hits one entry three times; the hits become sightings of that indicator.
        let rows: Vec<Value> = serde_json::from_str(&run(&["export", "--format", "json"])).unwrap();
        let target = rows
            .iter()
            .find(|r| r["kind"] == "ipv4" || r["kind"] == "domain")
            .expect("a network indicator");
        let value = target["value"].as_str().unwrap().to_string();
        let answer = rt.block_on(async {
            reqwest::Client::new()
                .post(format!("{}/_sim/events", sms_handle.base_url))
                .json(&json!({ "value": value, "count": 3, "device": "ips-edge-01" }))
                .send()
                .await
                .unwrap()
                .status()
        });
        assert!(answer.is_success());
        run(&["pull", "sms"]);
        let found: Value = serde_json::from_str(&run(&["search", &value, "--json"])).unwrap();
        let text = found.to_string();
        assert!(text.contains("\"sms\""), "the SMS reported it: {text}");
        assert!(text.contains("device:"), "and from which device: {text}");

        // Out of the rule: deleted from the reputation database.
        run(&[
            "rules",
            "edit",
            "to-ips",
            "kind = ipv6 and severity > critical",
        ]);
        let out = run(&["share", "threatq-to-sms"]);
        assert!(out.contains(&format!("{expected} retracted")), "{out}");
        assert_eq!(ips.state.len(), 0);
        rt.block_on(async {
            tq_handle.stop().await;
            sms_handle.stop().await;
        });
    }
}

/// A port on 127.0.0.1 that is free for UDP now.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_listening_pull_records_syslog_hits_and_commits_them_when_stopped() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for t in stores() {
        let port = free_udp_port();
        let listen = format!("127.0.0.1:{port}");
        let (sms_handle, _ips): (SimHandle, sms::Emulator) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut args = sms::Args::new("sms-key");
            args.syslog_udp = Some(listen.parse().unwrap());
            sms::start(listener, &args).await.unwrap()
        });
        let http = |path: &str, body: Option<Value>| {
            rt.block_on(async {
                let c = reqwest::Client::new();
                let url = format!("{}{path}", sms_handle.base_url);
                let r = match body {
                    Some(b) => c.post(url).json(&b),
                    None => c.get(url).header("X-SMS-API-KEY", "sms-key"),
                };
                let r = r.send().await.unwrap();
                assert!(r.status().is_success(), "{path}: {}", r.status());
            })
        };
        http("/repEntries/add?ip=198.51.100.7", None);

        let data = tempdir();
        let db = t.url.as_str();
        let run = |args: &[&str]| ok_in(db, data.path(), args);
        let url = format!("url={}", sms_handle.base_url);
        let listen_field = format!("syslog_listen={listen}");
        run(&[
            "configs",
            "add",
            "sms",
            "--connector",
            "tippingpoint_sms",
            "--set",
            &url,
            "--secret",
            "api_key=sms-key",
            "--set",
            &listen_field,
            "--set",
            "syslog_protocol=udp",
        ]);
        let pull = iocx()
            .arg("--database")
            .arg(db)
            .arg("--data")
            .arg(data.path())
            .args(["pull", "sms"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Listening once the port is taken.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::UdpSocket::bind(&listen).is_ok() {
            assert!(std::time::Instant::now() < deadline, "iocx never listened");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Not in the store (exit 1) until the first batch is committed.
        let search = || {
            let out = run_in(db, data.path(), &["search", "198.51.100.7", "--json"]);
            String::from_utf8_lossy(&out.stdout).into_owned()
        };

        // Hits arrive while the pull runs and are committed within the flush second.
        http(
            "/_sim/events",
            Some(json!({ "value": "198.51.100.7", "count": 3, "device": "ips-edge-01" })),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !search().contains("device:ips-edge-01") {
            assert!(std::time::Instant::now() < deadline, "{}", search());
            std::thread::sleep(std::time::Duration::from_millis(200));
        }

        // Hits received just before a stop are committed by the stop.
        http(
            "/_sim/events",
            Some(json!({ "value": "198.51.100.7", "count": 2, "device": "ips-edge-02" })),
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pull.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = pull.wait_with_output().unwrap();
        let stderr = format!(
            "{}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stderr.contains("stopped"), "{stderr}");
        let found = search();
        assert!(found.contains("device:ips-edge-02"), "{found}\n{stderr}");
        let runs = run(&["runs"]);
        assert!(runs.contains("interrupted"), "{runs}");
        rt.block_on(sms_handle.stop());
    }
}
