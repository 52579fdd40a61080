//! CrowdStrike Falcon and SentinelOne end to end through the real binary: Falcon's custom IOCs
//! go to SentinelOne's threat intelligence, SentinelOne's threat hashes go to Falcon, and both
//! are retracted when they leave the rules. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use iocx_sim::common::SimHandle;
use iocx_sim::crowdstrike as cs;
use iocx_sim::sentinelone as s1;
use serde_json::Value;

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
fn edr_indicators_flow_both_ways_and_are_retracted() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for t in stores() {
        let (cs_handle, falcon): (SimHandle, cs::Emulator) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut args = cs::Args::new("cs-id", "cs-secret");
            args.iocs = 60;
            cs::start(listener, &args).await.unwrap()
        });
        let (s1_handle, sentinel): (SimHandle, s1::Emulator) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut args = s1::Args::new("s1-token");
            args.threats = 30;
            s1::start(listener, &args).await.unwrap()
        });
        let data = tempdir();
        let db = t.url.as_str();
        let run = |args: &[&str]| ok_in(db, data.path(), args);
        let cs_base = format!("base_url={}", cs_handle.base_url);
        run(&[
            "configs",
            "add",
            "falcon",
            "--connector",
            "crowdstrike",
            "--set",
            &cs_base,
            "--set",
            "client_id=cs-id",
            "--secret",
            "client_secret=cs-secret",
            "--initial-range-days",
            "365",
            "--aging-days",
            "3650",
        ]);
        let console = format!("console={}", s1_handle.base_url);
        run(&[
            "configs",
            "add",
            "sentinel",
            "--connector",
            "sentinelone",
            "--set",
            &console,
            "--secret",
            "token=s1-token",
            "--initial-range-days",
            "365",
            "--aging-days",
            "3650",
        ]);
        assert!(run(&["configs", "test", "falcon"]).contains("custom IOC"));
        assert!(run(&["configs", "test", "sentinel"]).contains("IOC"));
        run(&["pull", "falcon"]);
        run(&["pull", "sentinel"]);

        // Falcon → SentinelOne.
        let rule =
            "kind in (sha256, md5, domain, ipv4) and source = falcon and not safe and active";
        let expected = selected(&run(&["rules", "preview", rule]));
        assert!(expected > 0);
        run(&["rules", "add", "from-falcon", rule]);
        run(&[
            "sharings",
            "add",
            "falcon-to-s1",
            "--source",
            "falcon",
            "--rule",
            "from-falcon",
            "--destination",
            "sentinel",
            "--target",
            "threat_intelligence",
        ]);
        let out = run(&["share", "falcon-to-s1"]);
        assert!(
            out.contains(&format!(" {expected} shared")),
            "{expected}: {out}"
        );
        let ours = |e: &s1::Emulator| -> usize {
            e.state.snapshot()["iocs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| {
                    i["source"]
                        .as_str()
                        .is_some_and(|s| s.contains("Shared by iocx"))
                })
                .count()
        };
        assert_eq!(ours(&sentinel), expected);

        // SentinelOne's threat hashes → Falcon, blocked.
        let rule = "kind in (sha256, md5) and source = sentinel and active";
        let hashes = selected(&run(&["rules", "preview", rule]));
        assert!(hashes > 0);
        run(&["rules", "add", "from-s1", rule]);
        run(&[
            "sharings",
            "add",
            "s1-to-falcon",
            "--source",
            "sentinel",
            "--rule",
            "from-s1",
            "--destination",
            "falcon",
            "--target",
            "ioc_management",
            "--param",
            "action=prevent",
        ]);
        let out = run(&["share", "s1-to-falcon"]);
        assert!(
            out.contains(&format!(" {hashes} shared")),
            "{hashes}: {out}"
        );
        let blocked: Vec<Value> = falcon.state.snapshot(chrono::Utc::now())["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| {
                i["source"]
                    .as_str()
                    .is_some_and(|s| s.contains("Shared by iocx"))
            })
            .cloned()
            .collect();
        assert_eq!(blocked.len(), hashes);
        assert!(blocked.iter().all(|i| i["action"] == "prevent"));

        // Falcon pulled again: iocx's own IOCs come back as echoes and are not shared on.
        std::thread::sleep(std::time::Duration::from_millis(1_100));
        run(&["pull", "falcon"]);
        let again = run(&["share", "falcon-to-s1"]);
        assert!(again.contains(" 0 shared"), "{again}");

        // Out of the rules: taken back out of both.
        run(&[
            "rules",
            "edit",
            "from-falcon",
            "kind = ipv6 and severity > critical",
        ]);
        let out = run(&["share", "falcon-to-s1"]);
        assert!(out.contains(&format!("{expected} retracted")), "{out}");
        assert_eq!(ours(&sentinel), 0);
        run(&[
            "rules",
            "edit",
            "from-s1",
            "kind = ipv6 and severity > critical",
        ]);
        let out = run(&["share", "s1-to-falcon"]);
        assert!(out.contains(&format!("{hashes} retracted")), "{out}");
        rt.block_on(async {
            cs_handle.stop().await;
            s1_handle.stop().await;
        });
    }
}
