//! Test support: a fresh store on each backend.
//!
//! SQLite stores are files in a new temporary directory. PostgreSQL stores live in a fresh schema
//! of the database named by `IOCX_TEST_POSTGRES` (for example
//! `postgres://postgres@127.0.0.1:5432/test`), dropped afterwards. When that variable is unset the
//! PostgreSQL half of a test says so and passes; when it is set and the server cannot be used, the
//! test fails — it never silently skips.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use crate::Store;

/// The environment variable naming the PostgreSQL test database.
pub const POSTGRES_ENV: &str = "IOCX_TEST_POSTGRES";

/// A store for one test, removed when dropped.
pub struct TestStore {
    /// The store.
    pub store: Store,
    /// The database URL or path, for passing to a child `iocx` process.
    pub url: String,
    dir: Option<PathBuf>,
    schema: Option<(String, String)>,
}

impl TestStore {
    /// A fresh SQLite store in a new temporary directory.
    pub fn sqlite() -> TestStore {
        let dir = std::env::temp_dir().join(format!("iocx-test-{}", random_suffix()));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        let path = dir.join("iocx.db");
        let url = path.display().to_string();
        let store = Store::open(&url).expect("opening a SQLite test store");
        TestStore {
            store,
            url,
            dir: Some(dir),
            schema: None,
        }
    }

    /// A fresh PostgreSQL store, or `None` (with a note on stderr) when `IOCX_TEST_POSTGRES` is
    /// unset.
    ///
    /// # Panics
    /// When the variable is set but the server cannot be used.
    pub fn postgres() -> Option<TestStore> {
        let Ok(base) = std::env::var(POSTGRES_ENV) else {
            eprintln!(
                "note: {POSTGRES_ENV} is not set; the PostgreSQL half of this test did not run"
            );
            return None;
        };
        let schema = format!("iocx_test_{}", random_suffix());
        let mut admin = postgres::Client::connect(&base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={base} is set but unusable: {e}"));
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("creating a test schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let store =
            Store::open(&url).unwrap_or_else(|e| panic!("opening the PostgreSQL test store: {e}"));
        Some(TestStore {
            store,
            url,
            dir: None,
            schema: Some((base, schema)),
        })
    }

    /// Both backends that are available: SQLite always, PostgreSQL when configured.
    pub fn all() -> Vec<TestStore> {
        let mut out = vec![TestStore::sqlite()];
        out.extend(TestStore::postgres());
        out
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((base, schema)) = &self.schema
            && let Ok(mut admin) = postgres::Client::connect(base, postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().r#gen();
    format!("{}_{n:016x}", std::process::id())
}

/// Runs `test` against every available backend, naming the backend in any panic.
pub fn on_each_backend(test: impl Fn(&Store)) {
    for t in TestStore::all() {
        let name = t.store.describe();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&t.store)));
        if let Err(panic) = result {
            eprintln!("failed on {name}");
            std::panic::resume_unwind(panic);
        }
    }
}
