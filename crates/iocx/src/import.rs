//! `iocx import`: files into the store as one source, resumable after a crash.
//!
//! A reader thread parses the feed (the CPU-heavy part: refanging, canonical forms) while the
//! main thread writes batches, so the two cores of a small machine both work. Each batch is one
//! transaction that also records how far the file has been read; if the process is killed, the
//! same command finds the unfinished run and carries on after the last committed line, with the
//! same "seen" time, so the store ends exactly as after an uninterrupted import.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail};
use iocx_model::feed::{Column, FeedItem, FeedOptions, Format, Position, Reject, read_feed};
use iocx_model::{Kind, ParseOptions, Reputation, Severity, TagSet, Timestamp, UrlSchemePolicy};
use iocx_store::{
    BatchOutcome, IngestOptions, NewRun, Prepared, Progress, RunState, Source, SourceKind, Store,
};
use serde::{Deserialize, Serialize};

use crate::common::{Global, peak_rss_bytes, show_progress, thousands};

/// `iocx import` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to import; `-` reads standard input. Gzip files are recognised and decompressed.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// The source these indicators come from (created when new).
    #[arg(long, value_name = "NAME")]
    pub source: String,
    /// The feed format; auto detects it from the content and the file name.
    #[arg(long, default_value = "auto", value_name = "auto|txt|csv|json|stix")]
    pub format: String,
    /// Every value is of this kind; values of other kinds are rejected.
    #[arg(long, value_name = "KIND")]
    pub kind: Option<Kind>,
    /// Severity for records that give none.
    #[arg(long, value_name = "SEVERITY")]
    pub severity: Option<Severity>,
    /// Reputation 1–10 for records that give none.
    #[arg(long, value_name = "1-10")]
    pub reputation: Option<Reputation>,
    /// A tag for every record (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// The CSV column holding the indicator: a header name or a number from 1.
    #[arg(long, value_name = "NAME|N")]
    pub column: Option<Column>,
    /// What to do with URLs that have no scheme.
    #[arg(long, value_enum, default_value = "http")]
    pub url_scheme: SchemeArg,
    /// Write rejected lines, with line number and reason, to this file.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// The time recorded as "last seen" for records that do not carry one (default: now).
    #[arg(long, value_name = "TIME")]
    pub seen_at: Option<Timestamp>,
    /// Aging criteria of the source in days: its observations stop counting this long after
    /// they were last seen (default 90 for a new source).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub aging_days: Option<i64>,
    /// Records per transaction.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch: u64,
    /// Start over even if an earlier import of the same file was interrupted.
    #[arg(long)]
    pub no_resume: bool,
}

/// Scheme-less URL handling.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SchemeArg {
    /// Prefix http://.
    Http,
    /// Prefix https://.
    Https,
    /// Import both the http:// and the https:// URL.
    Both,
    /// Reject the value.
    Reject,
}

impl From<SchemeArg> for UrlSchemePolicy {
    fn from(s: SchemeArg) -> Self {
        match s {
            SchemeArg::Http => UrlSchemePolicy::Http,
            SchemeArg::Https => UrlSchemePolicy::Https,
            SchemeArg::Both => UrlSchemePolicy::Both,
            SchemeArg::Reject => UrlSchemePolicy::Reject,
        }
    }
}

/// Counts of one import, as saved with each batch and printed at the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Records that created an indicator.
    pub new: u64,
    /// Records that changed what the store knew.
    pub updated: u64,
    /// Re-sightings.
    pub unchanged: u64,
    /// Rejected lines by reason.
    pub rejected: BTreeMap<String, u64>,
}

impl Counts {
    fn add(&mut self, o: BatchOutcome) {
        self.new += o.new;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
    }

    /// Rejected lines in all.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// Lines (or elements) up to and including this one are committed.
    position: u64,
    /// The window being written when the run stopped: its last position…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_end: Option<u64>,
    /// …and the greatest key of it already committed (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// Length of the rejects file at that point.
    rejects_bytes: u64,
}

/// What one file's import did.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// The file.
    pub file: String,
    /// The detected or given format.
    pub format: Option<String>,
    /// The run id.
    pub run: Option<i64>,
    /// Whether this continued an interrupted import.
    pub resumed: bool,
    /// Counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Why reading stopped early, if it did.
    pub error: Option<String>,
    /// Seconds taken.
    pub seconds: f64,
}

/// The whole command's report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The source.
    pub source: String,
    /// Per file.
    pub files: Vec<FileReport>,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: Option<u64>,
}

/// A window of the feed: its records keyed, merged and sorted, and its rejects.
enum Message {
    Window {
        prepared: Prepared,
        rejects: Vec<Reject>,
        last: Option<Position>,
    },
    Done(Result<Format, String>),
}

/// Records per window. The reader sorts each window by key and the writer commits it as key
/// ranges, so each transaction touches a narrow slice of the key index instead of pages all
/// over it; a larger window means fewer index pages rewritten, at the cost of memory.
const WINDOW: usize = 200_000;

/// Runs `iocx import`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let source = store.ensure_source(&args.source, SourceKind::Import, args.aging_days)?;
    let format = match args.format.as_str() {
        "auto" => None,
        other => Some(other.parse::<Format>().map_err(anyhow::Error::msg)?),
    };
    let mut reports = Vec::new();
    for file in &args.files {
        let started = Instant::now();
        match import_file(global, &store, &source, &args, file, format) {
            Ok(mut report) => {
                report.seconds = started.elapsed().as_secs_f64();
                reports.push(report);
            }
            Err(e) => reports.push(FileReport {
                file: file.clone(),
                format: None,
                run: None,
                resumed: false,
                counts: Counts::default(),
                error: Some(format!("{e:#}")),
                seconds: started.elapsed().as_secs_f64(),
            }),
        }
    }
    let report = Report {
        source: args.source.clone(),
        files: reports,
        peak_rss_bytes: peak_rss_bytes(),
    };
    if global.json {
        crate::common::print_json(&report)?;
    } else {
        print_report(&report);
    }
    // Non-zero only when nothing at all could be read.
    let nothing = report.files.iter().all(|f| f.format.is_none());
    Ok(if nothing {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(report: &Report) {
    for f in &report.files {
        let c = &f.counts;
        let resumed = if f.resumed { " (resumed)" } else { "" };
        if f.format.is_none() {
            eprintln!(
                "{}: not imported: {}",
                f.file,
                f.error.as_deref().unwrap_or("unknown error")
            );
            continue;
        }
        println!(
            "{}{}: {} new, {} updated, {} unchanged, {} rejected in {:.1} s",
            f.file,
            resumed,
            thousands(c.new),
            thousands(c.updated),
            thousands(c.unchanged),
            thousands(c.rejected_total()),
            f.seconds
        );
        for (reason, n) in &c.rejected {
            println!("  rejected {reason}: {}", thousands(*n));
        }
        if let Some(e) = &f.error {
            println!("  stopped early: {e}");
        }
    }
}

/// `iocx@HOST:PID`, how runs name the process that owns them.
pub fn owner() -> String {
    iocx_engine::owner_name()
}

pub use iocx_engine::owner_alive;

fn identity(source: &Source, file: &str) -> anyhow::Result<Option<String>> {
    if file == "-" {
        return Ok(None);
    }
    let path = std::fs::canonicalize(file).with_context(|| format!("{file}: cannot open"))?;
    let meta = std::fs::metadata(&path).with_context(|| format!("{file}: cannot read"))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(Some(format!(
        "{}|{}|{}|{}",
        source.name,
        path.display(),
        meta.len(),
        modified
    )))
}

fn open_input(
    file: &str,
    counter: Arc<AtomicU64>,
) -> anyhow::Result<(Box<dyn BufRead + Send>, Option<u64>)> {
    let (raw, size): (Box<dyn Read + Send>, Option<u64>) = if file == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = File::open(file).with_context(|| format!("{file}: cannot open"))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let mut buffered = BufReader::with_capacity(
        1 << 20,
        CountingReader {
            inner: raw,
            count: counter,
        },
    );
    let gz = buffered
        .fill_buf()
        .map(|b| b.starts_with(&[0x1f, 0x8b]))
        .unwrap_or(false);
    let reader: Box<dyn BufRead + Send> = if gz {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    Ok((reader, size))
}

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn import_file(
    global: &Global,
    store: &Store,
    source: &Source,
    args: &Args,
    file: &str,
    format: Option<Format>,
) -> anyhow::Result<FileReport> {
    let identity = identity(source, file)?;
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (input, size) = open_input(file, bytes_read.clone())?;

    // An interrupted import of this very file resumes; anything else starts a new run.
    let mut resumed = None;
    if let Some(id) = identity.as_deref().filter(|_| !args.no_resume)
        && let Some(run) = store.find_unfinished("import", id)?
    {
        if run.state == RunState::Running && owner_alive(&run.owner) {
            bail!(
                "{file} is being imported right now by {} (run {})",
                run.owner,
                run.id
            );
        }
        if store.claim_run(run.id, &owner(), Timestamp(i64::MAX))? {
            resumed = Some(run);
        }
    }
    let (run, mut counts, checkpoint) = match resumed.clone() {
        Some(run) => {
            let counts: Counts = serde_json::from_value(run.counts.clone()).unwrap_or_default();
            let checkpoint: Checkpoint = run
                .checkpoint
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or_default();
            (run, counts, checkpoint)
        }
        None => {
            let run = store.create_run(&NewRun {
                job: "import".into(),
                subject: source.name.clone(),
                source_id: Some(source.id),
                identity: identity.clone(),
                observed_at: args.seen_at.unwrap_or_else(Timestamp::now),
                owner: owner(),
            })?;
            (run, Counts::default(), Checkpoint::default())
        }
    };

    let mut rejects_file = match &args.rejects {
        Some(path) => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the rejects file {}", path.display()))?;
            if resumed.is_some() {
                // Drop what an interrupted run wrote after its last commit.
                f.set_len(
                    checkpoint
                        .rejects_bytes
                        .min(f.metadata().map(|m| m.len()).unwrap_or(0)),
                )?;
            } else if f.metadata().map(|m| m.len()).unwrap_or(0) > 0
                && checkpoint.rejects_bytes == 0
            {
                f.set_len(0)?;
            }
            Some(std::io::BufWriter::new(f))
        }
        None => None,
    };

    let options = FeedOptions {
        format,
        file_name: Some(file.to_string()),
        kind: args.kind,
        defaults: iocx_model::Attributes {
            severity: args.severity.unwrap_or_default(),
            reputation: args.reputation,
            tags: TagSet::from_tags(&args.tags),
            ..Default::default()
        },
        column: args.column.clone(),
        parse: ParseOptions {
            url_scheme: args.url_scheme.into(),
        },
    };
    let skip_through = checkpoint.position;
    // A run interrupted inside a window re-reads exactly that window.
    let forced_end = checkpoint.window_end;
    let secret = store.key_secret();
    let now = run.observed_at;
    let window = WINDOW.max(args.batch as usize);
    let (tx, rx) = crossbeam_channel::bounded::<Message>(1);
    let reader = std::thread::Builder::new()
        .name("iocx-import-reader".into())
        .spawn(move || {
            let mut records = Vec::with_capacity(window);
            let mut rejects = Vec::new();
            let mut last: Option<Position> = None;
            let mut hung_up = false;
            let mut first_window = true;
            let result = read_feed(input, &options, &mut |item| {
                let position = match &item {
                    FeedItem::Record(p, _) => *p,
                    FeedItem::Reject(r) => r.position,
                };
                if position.number() <= skip_through {
                    return ControlFlow::Continue(());
                }
                // Cut windows only between positions, so one line's records commit together.
                let cut = match forced_end.filter(|_| first_window) {
                    Some(end) => position.number() > end,
                    None => records.len() >= window && last != Some(position),
                };
                if cut {
                    first_window = false;
                    let batch = Message::Window {
                        prepared: Prepared::new(std::mem::take(&mut records), &secret, now),
                        rejects: std::mem::take(&mut rejects),
                        last,
                    };
                    if tx.send(batch).is_err() {
                        hung_up = true;
                        return ControlFlow::Break(());
                    }
                }
                last = Some(position);
                match item {
                    FeedItem::Record(_, r) => records.push(r),
                    FeedItem::Reject(r) => rejects.push(r),
                }
                ControlFlow::Continue(())
            });
            if !hung_up {
                let prepared = Prepared::new(records, &secret, now);
                let _ = tx.send(Message::Window {
                    prepared,
                    rejects,
                    last,
                });
                let _ = tx.send(Message::Done(result.map_err(|e| e.to_string())));
            }
        })
        .context("starting the reader thread")?;

    let bar = show_progress(global).then(|| {
        let bar = match size {
            Some(n) => indicatif::ProgressBar::new(n).with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_message(file.to_string());
        bar
    });

    let ingest = IngestOptions {
        now: run.observed_at,
        echo: false,
        run_id: Some(run.id),
    };
    let mut rejects_bytes = checkpoint.rejects_bytes;
    let mut done_through = checkpoint.position;
    let mut resume_key = match (&checkpoint.key, checkpoint.window_end) {
        (Some(hex), Some(_)) => Some(decode_key(hex)?),
        _ => None,
    };
    let mut outcome: Option<Result<Format, String>> = None;
    let mut write_error = None;
    'windows: for message in rx.iter() {
        match message {
            Message::Window {
                mut prepared,
                rejects,
                last,
            } => {
                let Some(last) = last else { continue };
                match resume_key.take() {
                    // The interrupted window: its rejects were written and counted with its
                    // first committed range; skip what was committed.
                    Some(key) => prepared.skip_through(key),
                    None => {
                        for r in &rejects {
                            *counts.rejected.entry(r.reason.to_string()).or_default() += 1;
                            if let Some(w) = rejects_file.as_mut() {
                                let line = format!(
                                    "{file}:{}: {}: {}\n",
                                    r.position,
                                    r.reason,
                                    r.message.replace('\n', " ")
                                );
                                w.write_all(line.as_bytes())?;
                                rejects_bytes += line.len() as u64;
                            }
                        }
                        if let Some(w) = rejects_file.as_mut() {
                            w.flush()?;
                        }
                    }
                }
                let mut chunks = prepared.split(args.batch as usize);
                if chunks.is_empty() {
                    chunks.push(Prepared::new(Vec::new(), &secret, now));
                }
                let n = chunks.len();
                for (i, chunk) in chunks.into_iter().enumerate() {
                    let checkpoint = if i + 1 == n {
                        Checkpoint {
                            position: last.number(),
                            window_end: None,
                            key: None,
                            rejects_bytes,
                        }
                    } else {
                        Checkpoint {
                            position: done_through,
                            window_end: Some(last.number()),
                            key: chunk.last_key().map(|k| hex_key(&k)),
                            rejects_bytes,
                        }
                    };
                    let checkpoint = serde_json::to_string(&checkpoint)?;
                    let before = counts.clone();
                    let progress = |o: &BatchOutcome| {
                        let mut after = before.clone();
                        after.add(*o);
                        Progress {
                            checkpoint: Some(checkpoint.clone()),
                            counts: serde_json::to_value(&after).unwrap_or_default(),
                        }
                    };
                    match store.ingest_prepared(source, &ingest, &chunk, Some(&progress)) {
                        Ok(o) => counts.add(o),
                        Err(e) => {
                            write_error = Some(e);
                            break 'windows;
                        }
                    }
                    if let Some(bar) = &bar {
                        bar.set_position(bytes_read.load(Ordering::Relaxed));
                    }
                }
                done_through = last.number();
            }
            Message::Done(result) => outcome = Some(result),
        }
    }
    drop(rx);
    let _ = reader.join();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let counts_json = serde_json::to_value(&counts)?;
    if let Some(e) = write_error {
        store.finish_run(run.id, RunState::Failed, &counts_json, Some(&e.to_string()))?;
        return Err(anyhow::Error::new(e).context(format!("{file}: writing to the store")));
    }
    let (format, error) = match outcome {
        Some(Ok(f)) => (Some(f.to_string()), None),
        Some(Err(e)) => (Some("partial".to_string()), Some(e)),
        None => (
            None,
            Some("the reader stopped without a result".to_string()),
        ),
    };
    let state = if error.is_some() {
        RunState::Failed
    } else {
        RunState::Succeeded
    };
    store.finish_run(run.id, state, &counts_json, error.as_deref())?;
    Ok(FileReport {
        file: file.to_string(),
        format,
        run: Some(run.id),
        resumed: resumed.is_some(),
        counts,
        error,
        seconds: 0.0,
    })
}

fn hex_key(key: &iocx_model::IndicatorKey) -> String {
    key.0.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_key(hex: &str) -> anyhow::Result<iocx_model::IndicatorKey> {
    let mut out = [0u8; 16];
    if hex.len() != 32 {
        bail!("the interrupted run's checkpoint holds a malformed key {hex:?}");
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).with_context(|| {
            format!("the interrupted run's checkpoint holds a malformed key {hex:?}")
        })?;
    }
    Ok(iocx_model::IndicatorKey(out))
}
