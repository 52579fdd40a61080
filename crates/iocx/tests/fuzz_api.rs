//! The API fuzzer (`scripts/fuzz-api`: schemathesis against `/api/v1/openapi.json`) as part of
//! the suite, with a small budget per operation, when `IOCX_TEST_PYTHON` names a Python that
//! has schemathesis (crates/iocx/tests/sdk/fuzz/requirements.txt).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

#[test]
fn the_fuzzer_finds_no_server_error_and_no_schema_violation() {
    let Some(python) = std::env::var_os("IOCX_TEST_PYTHON") else {
        let _ = writeln!(
            std::io::stderr(),
            "API fuzzing not run: IOCX_TEST_PYTHON is not set"
        );
        return;
    };
    let st = Path::new(&python).with_file_name("st");
    assert!(
        st.exists(),
        "{} is missing: install crates/iocx/tests/sdk/fuzz/requirements.txt",
        st.display()
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/fuzz-api"))
        .arg("25")
        .env("IOCX_BIN", env!("CARGO_BIN_EXE_iocx"))
        .env("IOCX_ST", &st)
        .env_remove("IOCX_DATABASE_URL")
        .env_remove("IOCX_DATA")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the fuzzer found problems:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
