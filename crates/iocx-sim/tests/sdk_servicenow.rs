//! pysnow, the Python ServiceNow client, against the ServiceNow emulator.
//!
//! Runs `tests/sdk/servicenow/check_pysnow.py` with the interpreter named by `IOCX_TEST_PYTHON`
//! (a venv with `tests/sdk/servicenow/requirements.txt` installed):
//!
//! ```text
//! python3 -m venv /root/.cache/iocx-venv
//! /root/.cache/iocx-venv/bin/pip install -r crates/iocx-sim/tests/sdk/servicenow/requirements.txt
//! IOCX_TEST_PYTHON=/root/.cache/iocx-venv/bin/python cargo test -p iocx-sim --test sdk_servicenow
//! ```
//!
//! Without the variable the test says so and passes; with it, any mismatch fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use iocx_sim::servicenow::{self, Args, Password};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pysnow_works_unchanged_against_the_emulator() {
    let Some(python) = std::env::var_os("IOCX_TEST_PYTHON") else {
        // Straight to stderr so that it shows although the test passes.
        let _ = writeln!(
            std::io::stderr(),
            "SDK check not run: IOCX_TEST_PYTHON is not set (point it at a Python with \
             crates/iocx-sim/tests/sdk/servicenow/requirements.txt installed)"
        );
        return;
    };
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/servicenow/check_pysnow.py");
    let args = Args {
        records: 420,
        incidents: 20,
        client_id: Some("iocx-client".to_string()),
        client_secret: Some(Password::from("iocx-client-secret")),
        ..Args::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handle, emulator) = servicenow::start(listener, &args).await.unwrap();

    let mut command = tokio::process::Command::new(&python);
    command
        .arg(&script)
        .arg(&handle.base_url)
        .arg(&args.user)
        .arg(args.password.as_str())
        .arg("iocx-client")
        .arg("iocx-client-secret")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the pysnow check took more than 5 minutes")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", PathBuf::from(&python).display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the pysnow check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("pysnow check passed"), "{stdout}");
    // pysnow really talked to this emulator: several pages, a create, an update and a delete.
    let log = emulator.log.snapshot();
    let pages = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("sysparm_offset="))
        .count();
    let writes = log
        .iter()
        .filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "DELETE"))
        .count();
    assert!(pages >= 5, "{pages} paged GETs logged");
    assert!(writes >= 4, "{writes} writes logged");
    handle.stop().await;
}
