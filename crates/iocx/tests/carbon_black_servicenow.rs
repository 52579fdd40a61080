//! Carbon Black Cloud and ServiceNow end to end through the real binary: ServiceNow's threat
//! intelligence observables become a Carbon Black custom feed (replaced whole when the selection
//! changes), and Carbon Black's alerts open ServiceNow security incidents. On SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use iocx_sim::carbon_black as cb;
use iocx_sim::common::SimHandle;
use iocx_sim::servicenow as sn;
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

fn feed_values(emulator: &cb::Emulator, name: &str) -> usize {
    let state = emulator.state.snapshot();
    state["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["feedinfo"]["name"] == name)
        .flat_map(|f| f["reports"].as_array().cloned().unwrap_or_default())
        .flat_map(|r| r["iocs_v2"].as_array().cloned().unwrap_or_default())
        .map(|i| i["values"].as_array().map_or(0, Vec::len))
        .sum()
}

#[test]
fn observables_feed_carbon_black_and_alerts_open_incidents() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for t in stores() {
        let (cb_handle, carbon): (SimHandle, cb::Emulator) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let args = cb::Args {
                alerts: 40,
                ..cb::Args::default()
            };
            cb::start(listener, &args).await.unwrap()
        });
        let (sn_handle, snow): (SimHandle, sn::Emulator) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let args = sn::Args {
                records: 300,
                ..sn::Args::default()
            };
            sn::start(listener, &args).await.unwrap()
        });
        let data = tempdir();
        let db = t.url.as_str();
        let run = |args: &[&str]| ok_in(db, data.path(), args);
        let url = format!("url={}", cb_handle.base_url);
        let org = format!("org_key={}", cb::DEFAULT_ORG_KEY);
        let id = format!("api_id={}", cb::DEFAULT_API_ID);
        let secret = format!("api_secret={}", cb::DEFAULT_API_SECRET);
        run(&[
            "configs",
            "add",
            "carbon",
            "--connector",
            "carbon_black",
            "--set",
            &url,
            "--set",
            &org,
            "--set",
            &id,
            "--secret",
            &secret,
            "--no-verify-tls",
            "--initial-range-days",
            "365",
            "--aging-days",
            "3650",
        ]);
        let instance = format!("instance={}", sn_handle.base_url);
        let user = format!("username={}", sn::DEFAULT_USER);
        let password = format!("password={}", sn::DEFAULT_PASSWORD);
        run(&[
            "configs",
            "add",
            "snow",
            "--connector",
            "servicenow",
            "--set",
            &instance,
            "--set",
            &user,
            "--secret",
            &password,
            "--initial-range-days",
            "365",
            "--aging-days",
            "3650",
        ]);
        assert!(run(&["configs", "test", "carbon"]).contains("feed"));
        assert!(run(&["configs", "test", "snow"]).contains("observable"));
        run(&["pull", "snow"]);
        run(&["pull", "carbon"]);

        // ServiceNow observables → a Carbon Black feed.
        let rule = "kind in (sha256, md5, ipv4, ipv6, domain) and source = snow and active";
        let expected = selected(&run(&["rules", "preview", rule]));
        assert!(expected > 0);
        run(&["rules", "add", "snow-iocs", rule]);
        run(&[
            "sharings",
            "add",
            "snow-to-carbon",
            "--source",
            "snow",
            "--rule",
            "snow-iocs",
            "--destination",
            "carbon",
            "--target",
            "feed",
            "--param",
            "feed_name=from-snow",
        ]);
        let out = run(&["share", "snow-to-carbon"]);
        assert!(
            out.contains(&format!(" {expected} shared")),
            "{expected}: {out}"
        );
        assert_eq!(feed_values(&carbon, "from-snow"), expected);

        // A narrower rule: the feed is replaced with the smaller set.
        let narrow = "kind = domain and source = snow and active";
        let domains = selected(&run(&["rules", "preview", narrow]));
        assert!(domains > 0 && domains < expected);
        run(&["rules", "edit", "snow-iocs", narrow]);
        let out = run(&["share", "snow-to-carbon"]);
        assert!(
            out.contains(&format!("{} retracted", expected - domains)),
            "{out}"
        );
        assert_eq!(feed_values(&carbon, "from-snow"), domains);

        // Nothing selected any more: the feed is emptied.
        run(&[
            "rules",
            "edit",
            "snow-iocs",
            "kind = ipv6 and severity > critical",
        ]);
        let out = run(&["share", "snow-to-carbon"]);
        assert!(out.contains(&format!("{domains} retracted")), "{out}");
        assert_eq!(feed_values(&carbon, "from-snow"), 0);

        // Carbon Black alerts → ServiceNow security incidents.
        let rule = "source = carbon and active";
        let alerts = selected(&run(&["rules", "preview", rule]));
        assert!(alerts > 0);
        run(&["rules", "add", "edr-hits", rule]);
        run(&[
            "sharings",
            "add",
            "carbon-to-snow",
            "--source",
            "carbon",
            "--rule",
            "edr-hits",
            "--destination",
            "snow",
            "--target",
            "incidents",
        ]);
        let before = snow.state.snapshot()["tables"]["sn_si_incident"]
            .as_array()
            .map_or(0, Vec::len);
        let out = run(&["share", "carbon-to-snow"]);
        assert!(
            out.contains(&format!(" {alerts} shared")),
            "{alerts}: {out}"
        );
        let incidents: Vec<Value> = snow.state.snapshot()["tables"]["sn_si_incident"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(incidents.len(), before + alerts);
        rt.block_on(async {
            cb_handle.stop().await;
            sn_handle.stop().await;
        });
    }
}
