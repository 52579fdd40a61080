//! A run's log: lines go to the process log at once and to the store in the background, so a
//! connector logging on an async thread never waits for the database.

use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

use iocx_connectors::{LogLevel, LogSink};
use iocx_store::Store;

/// The most lines one run keeps in the store (the rest only reach the process log).
const MAX_LINES: usize = 10_000;

/// Writes a run's log lines to the store.
pub struct RunLog {
    run_id: i64,
    subject: String,
    tx: Mutex<Option<Sender<(LogLevel, String)>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl RunLog {
    /// A log for run `run_id` of `subject`.
    pub fn new(store: Store, run_id: i64, subject: &str) -> RunLog {
        let (tx, rx) = channel::<(LogLevel, String)>();
        let writer = std::thread::Builder::new()
            .name("iocx-runlog".into())
            .spawn(move || {
                let mut written = 0usize;
                for (level, message) in rx {
                    if written < MAX_LINES {
                        let text = if written + 1 == MAX_LINES {
                            "Further log lines of this run were dropped (limit reached)".to_string()
                        } else {
                            message
                        };
                        if let Err(e) = store.log(run_id, level.as_str(), &text) {
                            tracing::warn!(run_id, error = %e, "Could not store a run log line");
                        }
                        written += 1;
                    }
                }
            })
            .ok();
        RunLog {
            run_id,
            subject: subject.to_string(),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(writer),
        }
    }

    /// Waits until every line is stored.
    pub fn flush(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut w) = self.writer.lock()
            && let Some(handle) = w.take()
        {
            let _ = handle.join();
        }
    }
}

impl LogSink for RunLog {
    fn log(&self, level: LogLevel, message: &str) {
        match level {
            LogLevel::Info => {
                tracing::info!(run = self.run_id, subject = %self.subject, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(run = self.run_id, subject = %self.subject, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(run = self.run_id, subject = %self.subject, "{message}")
            }
        }
        if let Ok(tx) = self.tx.lock()
            && let Some(tx) = tx.as_ref()
        {
            let _ = tx.send((level, message.to_string()));
        }
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        self.flush();
    }
}
