//! MISP's official Python SDK, PyMISP, against the MISP emulator.
//!
//! Runs `tests/sdk/misp/check_pymisp.py` with the interpreter named by
//! `IOCX_TEST_PYTHON` (a venv with `tests/sdk/misp/requirements.txt` installed):
//!
//! ```text
//! python3 -m venv /root/.cache/iocx-venv
//! /root/.cache/iocx-venv/bin/pip install -r crates/iocx-sim/tests/sdk/misp/requirements.txt
//! IOCX_TEST_PYTHON=/root/.cache/iocx-venv/bin/python cargo test -p iocx-sim --test sdk_misp
//! ```
//!
//! Without the variable the test says so and passes; with it, any mismatch fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use iocx_sim::misp::{self, Args};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymisp_works_unchanged_against_the_emulator() {
    let Some(python) = std::env::var_os("IOCX_TEST_PYTHON") else {
        // Written straight to stderr so that it shows even though the test passes (libtest
        // captures only the print macros).
        let _ = writeln!(
            std::io::stderr(),
            "SDK check not run: IOCX_TEST_PYTHON is not set (point it at a Python with \
             crates/iocx-sim/tests/sdk/misp/requirements.txt installed)"
        );
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/misp/check_pymisp.py");
    let key = "sdk-check-key-0123456789abcdef0123456789";
    let args = Args::new(key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handle, emulator) = misp::start(listener, &args).await.unwrap();

    let mut command = tokio::process::Command::new(&python);
    command
        .arg(&script)
        .arg(&handle.base_url)
        .arg(key)
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the pymisp check took more than 5 minutes")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", PathBuf::from(&python).display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the pymisp check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("pymisp check passed"), "{stdout}");
    // The SDK really talked to this emulator: its start-up calls, the add, and restSearch pages.
    let log = emulator.log.snapshot();
    let count = |path: &str| log.iter().filter(|r| r.path.starts_with(path)).count();
    assert!(count("/servers/getVersion") >= 2, "{log:?}");
    assert!(count("/users/view/me") >= 1);
    assert!(count("/events/add") >= 1);
    assert!(count("/attributes/restSearch") >= 3, "three pages at least");
    assert_eq!(emulator.state.len(), 1, "one event stored");
    handle.stop().await;
}
