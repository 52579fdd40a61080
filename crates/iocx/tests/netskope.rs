//! The seeds' central scenario end to end through the real binary: Netskope's malware and
//! malsite alerts are pulled as sightings and shared to Trend Vision One's Suspicious Object
//! List, and Trend Vision One's objects are shared to a Netskope URL list (then deployed), and
//! retracted from it when they leave the rule. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use iocx_sim::common::SimHandle;
use iocx_sim::netskope::{self as ns, ListView};
use iocx_sim::trend_vision_one as tv1;
use serde_json::Value;

const NS_TOKEN: &str = "ns-e2e-token";
const TV1_TOKEN: &str = "tv1-e2e-token";

fn export(db: &str, data: &std::path::Path) -> Vec<Value> {
    serde_json::from_str(&ok_in(db, data, &["export", "--format", "json"])).unwrap()
}

fn selected_count(preview: &str) -> usize {
    preview
        .split_whitespace()
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

#[test]
fn netskope_and_trend_vision_one_share_both_ways() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for t in stores() {
        let (ns_handle, netskope): (SimHandle, ns::Emulator) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let args = ns::Args {
                token: NS_TOKEN.into(),
                v1_token: Some("ns-e2e-v1".into()),
                alerts: 60,
                page_size: 25,
                wait_time: 0,
                ..ns::Args::default()
            };
            ns::start(listener, &args).await.unwrap()
        });
        let (tv1_handle, trend): (SimHandle, tv1::Emulator) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut args = tv1::Args::new(TV1_TOKEN);
            args.objects = 40;
            tv1::start(listener, &args).await.unwrap()
        });
        let data = tempdir();
        let db = t.url.as_str();
        let run = |args: &[&str]| ok_in(db, data.path(), args);
        let tenant = format!("tenant={}", ns_handle.base_url);
        let ns_token = format!("token={NS_TOKEN}");
        run(&[
            "configs",
            "add",
            "netskope",
            "--connector",
            "netskope",
            "--set",
            &tenant,
            "--secret",
            &ns_token,
            "--initial-range-days",
            "90",
        ]);
        let base = format!("base_url={}", tv1_handle.base_url);
        let tv1_token = format!("token={TV1_TOKEN}");
        run(&[
            "configs",
            "add",
            "vision-one",
            "--connector",
            "trend_vision_one",
            "--set",
            &base,
            "--secret",
            &tv1_token,
            "--initial-range-days",
            "365",
            "--aging-days",
            "3650",
        ]);

        // Netskope → Trend Vision One: each alert is a sighting.
        run(&["pull", "netskope"]);
        let alerts: usize = netskope.state.alert_counts().values().sum();
        let rows = export(db, data.path());
        let from_netskope: Vec<&Value> = rows
            .iter()
            .filter(|r| {
                r["sources"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s == "netskope"))
            })
            .collect();
        assert!(!from_netskope.is_empty());
        let hits: u64 = from_netskope
            .iter()
            .filter(|r| r["kind"] == "url")
            .map(|r| r["hits"].as_u64().unwrap_or(0))
            .sum();
        let malsite = netskope.state.alerts(ns::model::AlertType::Malsite).len() as u64;
        assert_eq!(hits, malsite, "one hit per malsite alert ({alerts} alerts)");
        run(&[
            "rules",
            "add",
            "ns-threats",
            "kind in (url, sha256) and source = netskope",
        ]);
        let count: usize = from_netskope
            .iter()
            .filter(|r| r["kind"] == "url" || r["kind"] == "sha256")
            .count();
        run(&[
            "sharings",
            "add",
            "netskope-to-v1",
            "--source",
            "netskope",
            "--rule",
            "ns-threats",
            "--destination",
            "vision-one",
            "--target",
            "suspicious_objects",
        ]);
        let before = trend.state.suspicious_objects().len();
        let out = run(&["share", "netskope-to-v1"]);
        assert!(out.contains(&format!(" {count} shared")), "{count}: {out}");
        assert_eq!(trend.state.suspicious_objects().len(), before + count);

        // Trend Vision One → a Netskope URL list, deployed.
        run(&["pull", "vision-one"]);
        run(&[
            "rules",
            "add",
            "v1-web",
            "kind in (url, domain, ipv4) and source = vision-one",
        ]);
        let preview = run(&[
            "rules",
            "preview",
            "kind in (url, domain, ipv4) and source = vision-one",
        ]);
        let selected = selected_count(&preview);
        assert!(selected > 0, "{preview}");
        run(&[
            "sharings",
            "add",
            "v1-to-netskope",
            "--source",
            "vision-one",
            "--rule",
            "v1-web",
            "--destination",
            "netskope",
            "--target",
            "url_list",
            "--param",
            "list_name=iocx-from-vision-one",
        ]);
        let out = run(&["share", "v1-to-netskope"]);
        assert!(out.contains("succeeded"), "{out}");
        let list = netskope
            .state
            .url_lists(ListView::Applied)
            .into_iter()
            .find(|l| l.name == "iocx-from-vision-one")
            .expect("the list exists and is deployed");
        assert!(!list.pending, "deployed");
        let (_, deployed) = list.deployed.clone().unwrap();
        let shared: usize = out
            .split(" shared")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.replace(',', "").parse().ok())
            .unwrap();
        assert!(
            shared > 0 && deployed.urls.len() == shared,
            "{out}: {deployed:?}"
        );

        // Trend Vision One's hashes → the file hash list (a full-state replace, v1 token).
        run(&[
            "configs",
            "edit",
            "netskope",
            "--secret",
            "v1_token=ns-e2e-v1",
        ]);
        let rule = "kind in (md5, sha256) and source = vision-one and active";
        let hashes = selected_count(&run(&["rules", "preview", rule]));
        assert!(hashes > 0);
        run(&["rules", "add", "v1-hashes", rule]);
        run(&[
            "sharings",
            "add",
            "v1-hashes-to-netskope",
            "--source",
            "vision-one",
            "--rule",
            "v1-hashes",
            "--destination",
            "netskope",
            "--target",
            "file_hash_list",
            "--param",
            "list_name=iocx-file-hashes",
        ]);
        let out = run(&["share", "v1-hashes-to-netskope"]);
        assert!(
            out.contains(&format!(" {hashes} shared")),
            "{hashes}: {out}"
        );
        let list = netskope.state.file_hash_list("iocx-file-hashes").unwrap();
        assert_eq!(list.hashes.len(), hashes);

        // Out of the rule: replaced without them, deployed again.
        run(&[
            "rules",
            "edit",
            "v1-web",
            "kind = ipv4 and source = vision-one and severity > critical",
        ]);
        let out = run(&["share", "v1-to-netskope"]);
        assert!(out.contains(&format!("{shared} retracted")), "{out}");
        let list = netskope
            .state
            .url_list_by_name("iocx-from-vision-one")
            .unwrap();
        assert!(!list.pending);
        assert_eq!(
            list.working.urls,
            vec!["iocx-placeholder.invalid".to_string()]
        );
        rt.block_on(async {
            ns_handle.stop().await;
            tv1_handle.stop().await;
        });
    }
}
