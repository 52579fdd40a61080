//! The `external` connector end to end: the Python example plugin pulls and receives
//! indicators through the real binary, and programs that misbehave end their runs with errors
//! that say how, keeping what was committed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn python() -> Option<&'static str> {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok { Some("python3") } else { None }
}

fn plugin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/external/blocklist_plugin.py")
}

fn add_plugin(db: &str, data: &Path, name: &str, options: &serde_json::Value) {
    ok_in(
        db,
        data,
        &[
            "configs",
            "add",
            name,
            "--connector",
            "external",
            "--set",
            "command=python3",
            "--set",
            &format!("arguments={}", plugin().display()),
            "--set",
            &format!("options={options}"),
        ],
    );
}

fn blocklist(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_example_plugin_pulls_and_keeps_a_blocklist() {
    let Some(_) = python() else {
        eprintln!("python3 is not installed; skipping");
        return;
    };
    for t in stores() {
        let data = tempdir();
        let db = t.url.as_str();
        let mut list = String::from("# example list\n");
        for i in 0..1_200 {
            list.push_str(&format!("host{i}[.]plugin[.]example\n"));
        }
        list.push_str("999.1.1.1\nhxxp://evil.plugin.example/x,extra,columns\n");
        let source = write(data.path(), "list.txt", &list);
        let out = data.path().join("blocklist.jsonl");
        let options = serde_json::json!({
            "source": source, "blocklist": out, "batch": 500, "severity": "critical"
        });
        add_plugin(db, data.path(), "plugin", &options);

        let tested = ok_in(db, data.path(), &["configs", "test", "plugin"]);
        assert!(tested.contains("Example blocklist plugin"), "{tested}");

        // Pull: three batches of records, the invalid address rejected with its reason.
        ok_in(db, data.path(), &["pull", "plugin"]);
        let runs = t.store.runs(Some("plugin"), 5).unwrap();
        let run = &runs[0];
        assert_eq!(run.counts["new"], 1_201, "{run:?}");
        assert_eq!(run.counts["rejected"]["bad_ipv4"], 1, "{run:?}");
        let found = ok_in(db, data.path(), &["search", "host7.plugin.example"]);
        assert!(found.contains("critical"), "{found}");
        let found = ok_in(db, data.path(), &["search", "http://evil.plugin.example/x"]);
        assert!(found.contains("plugin"), "{found}");

        // A second pull resumes after the last line: nothing new, nothing counted twice.
        ok_in(db, data.path(), &["pull", "plugin"]);
        let logs = ok_in(db, data.path(), &["logs", "plugin"]);
        assert!(logs.contains("resuming after line"), "{logs}");
        assert_eq!(t.store.stats().unwrap().indicators, 1_201);

        // Push: what a feed reports as critical goes to the plugin's blocklist target.
        let feed = write(
            data.path(),
            "feed.txt",
            "alpha.plugin.example\nbeta.plugin.example\n",
        );
        ok_in(
            db,
            data.path(),
            &[
                "import",
                feed.to_str().unwrap(),
                "--source",
                "feed",
                "--severity",
                "critical",
            ],
        );
        ok_in(
            db,
            data.path(),
            &["rules", "add", "critical", "severity >= critical"],
        );
        ok_in(
            db,
            data.path(),
            &[
                "sharings",
                "add",
                "to-plugin",
                "--rule",
                "critical",
                "--source",
                "feed",
                "--destination",
                "plugin",
                "--target",
                "blocklist",
                "--param",
                "tag=iocx",
            ],
        );
        ok_in(db, data.path(), &["share", "to-plugin"]);
        let entries = blocklist(&out);
        let values: Vec<&str> = entries
            .iter()
            .map(|e| e["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            values,
            ["alpha.plugin.example", "beta.plugin.example"],
            "{entries:?}"
        );
        assert_eq!(entries[0]["tag"], "iocx");
        // Sharing again sends nothing new.
        ok_in(db, data.path(), &["share", "to-plugin"]);
        assert_eq!(blocklist(&out).len(), 2);
    }
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    write(
        dir,
        name,
        &format!("import json, sys\nrequest = json.loads(sys.stdin.readline())\n{body}\n"),
    )
}

#[test]
fn misbehaving_programs_end_the_run_with_a_clear_error_and_keep_committed_batches() {
    let Some(_) = python() else {
        eprintln!("python3 is not installed; skipping");
        return;
    };
    let cases: &[(&str, &str, &str, u64)] = &[
        (
            "garbage",
            r#"print(json.dumps({"type": "batch", "records": ["a.bad.example"], "checkpoint": 1}), flush=True)
print("Traceback (most recent call last):", flush=True)"#,
            "output line 2 is not a protocol message",
            1,
        ),
        (
            "crash",
            r#"print(json.dumps({"type": "batch", "records": ["b.bad.example", "c.bad.example"], "checkpoint": 2}), flush=True)
sys.stderr.write("KeyError: 'token'\n")
sys.exit(3)"#,
            "exited with status 3; it said: KeyError: 'token'",
            2,
        ),
        (
            "refuses",
            r#"print(json.dumps({"type": "error", "kind": "auth", "message": "the API key was refused"}), flush=True)"#,
            "the API key was refused",
            0,
        ),
        (
            "hangs",
            r#"import time
print(json.dumps({"type": "batch", "records": ["d.bad.example"], "checkpoint": 3}), flush=True)
time.sleep(60)"#,
            "printed nothing for 2 s",
            1,
        ),
    ];
    for t in stores() {
        let data = tempdir();
        let db = t.url.as_str();
        for (name, body, expected, kept) in cases {
            let path = script(data.path(), &format!("{name}.py"), body);
            ok_in(
                db,
                data.path(),
                &[
                    "configs",
                    "add",
                    name,
                    "--connector",
                    "external",
                    "--set",
                    "command=python3",
                    "--set",
                    &format!("arguments={}", path.display()),
                    "--set",
                    "idle_timeout_secs=2",
                ],
            );
            let out = run_in(db, data.path(), &["pull", name]);
            assert!(!out.status.success(), "{name} should fail");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(expected), "{name}: {stderr}");
            let run = &t.store.runs(Some(name), 1).unwrap()[0];
            assert_eq!(run.state, iocx_store::RunState::Failed, "{name}: {run:?}");
            assert!(
                run.error.as_deref().unwrap_or("").contains(expected),
                "{name}: {run:?}"
            );
            assert_eq!(run.counts["new"], *kept, "{name}: {run:?}");
        }
        // The checkpoint of the last committed batch is kept for the next run.
        assert_eq!(
            t.store.last_checkpoint("pull", "crash").unwrap().as_deref(),
            Some("2")
        );
        // A program that cannot be started says so.
        ok_in(
            db,
            data.path(),
            &[
                "configs",
                "add",
                "missing",
                "--connector",
                "external",
                "--set",
                "command=/nonexistent/plugin",
            ],
        );
        let out = run_in(db, data.path(), &["pull", "missing"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cannot start \"/nonexistent/plugin\""),
            "{stderr}"
        );
    }
}
