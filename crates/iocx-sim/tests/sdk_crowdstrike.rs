//! CrowdStrike's official Python SDK, falconpy, against the CrowdStrike emulator.
//!
//! Runs `tests/sdk/crowdstrike/check_falconpy.py` with the interpreter named by
//! `IOCX_TEST_PYTHON` (a venv with `tests/sdk/crowdstrike/requirements.txt` installed):
//!
//! ```text
//! python3 -m venv /root/.cache/iocx-venv
//! /root/.cache/iocx-venv/bin/pip install -r crates/iocx-sim/tests/sdk/crowdstrike/requirements.txt
//! IOCX_TEST_PYTHON=/root/.cache/iocx-venv/bin/python cargo test -p iocx-sim --test sdk_crowdstrike
//! ```
//!
//! Without the variable the test says so and passes; with it, any mismatch fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use iocx_sim::crowdstrike::{self, Args};

const CLIENT_ID: &str = "sdk-check-client";
const CLIENT_SECRET: &str = "sdk-check-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falconpy_works_unchanged_against_the_emulator() {
    let Some(python) = std::env::var_os("IOCX_TEST_PYTHON") else {
        // Written straight to stderr so that it shows even though the test passes (libtest
        // captures only the print macros).
        let _ = writeln!(
            std::io::stderr(),
            "SDK check not run: IOCX_TEST_PYTHON is not set (point it at a Python with \
             crates/iocx-sim/tests/sdk/crowdstrike/requirements.txt installed)"
        );
        return;
    };
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/crowdstrike/check_falconpy.py");
    let mut args = Args::new(CLIENT_ID, CLIENT_SECRET);
    // More indicators than the (shrunk) offset window, so that the SDK must scroll with `after`
    // past it; the contract's window of 10,000 works the same way, only slower.
    args.iocs = 650;
    args.offset_window = 300;
    args.alerts = 7;
    // Shorter than falconpy's smallest renew window (120 s): the SDK fetches a new token before
    // every call, which exercises its refresh path.
    args.token_lifetime_secs = 60;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handle, emulator) = crowdstrike::start(listener, &args).await.unwrap();

    let mut command = tokio::process::Command::new(&python);
    command
        .arg(&script)
        .arg(&handle.base_url)
        .arg(CLIENT_ID)
        .arg(CLIENT_SECRET)
        .arg(args.offset_window.to_string())
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the falconpy check took more than 5 minutes")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", PathBuf::from(&python).display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the falconpy check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("falconpy check passed"), "{stdout}");
    // The SDK really talked to this emulator: tokens, pages past the window, writes.
    let log = emulator.log.snapshot();
    let count =
        |f: &dyn Fn(&iocx_sim::common::RequestRecord) -> bool| log.iter().filter(|r| f(r)).count();
    assert!(count(&|r| r.path.starts_with("/oauth2/token")) >= 3);
    assert!(count(&|r| r.path.contains("after=")) >= 6);
    assert!(count(&|r| r.method == "POST" && r.path.starts_with("/iocs/")) >= 2);
    assert!(count(&|r| r.method == "PATCH") >= 2);
    assert!(count(&|r| r.method == "DELETE") >= 2);
    handle.stop().await;
}
