//! Reading a feed body on a blocking thread: decompression, the size limit, the "is this a feed
//! at all?" checks, field mapping, and cutting the items into batches for the async side.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use iocx_model::Record;
use iocx_model::feed::{FeedError, FeedItem, FeedOptions, Format, Position};
use tokio::sync::mpsc;

use super::mapping::Mapping;
use crate::ErrorKind;

/// Records per batch.
pub const BATCH: usize = 10_000;

/// Items (records and rejections) judged before the reject ratio can end a read.
pub const SAMPLE: u64 = 1_000;

/// Rejections logged one by one (with their position); the rest are only counted.
pub const LOGGED_REJECTS: usize = 10;

/// Reject reasons that say nothing about whether the content is a feed: a revoked STIX
/// indicator is content the source meant to send.
const BENIGN_REASONS: &[&str] = &["revoked"];

/// What one read needs to know.
#[derive(Debug, Clone)]
pub struct ReadJob {
    /// How the location is named in messages.
    pub shown: String,
    /// Feed reader options.
    pub options: FeedOptions,
    /// Field mapping beyond what the feed readers know.
    pub mapping: Mapping,
    /// Positions up to this one were committed by an interrupted pull.
    pub skip_through: u64,
    /// The most bytes to read (after decompression).
    pub max_bytes: u64,
    /// The most rejections, in percent of the items sampled, before the content is judged not
    /// to be a feed.
    pub max_reject_percent: u64,
    /// Records per batch.
    pub batch: usize,
}

/// What the reading thread reports.
#[derive(Debug)]
pub enum Msg {
    /// A batch ending at `position` (every item up to it delivered); `last` when the content
    /// was read to its end.
    Batch {
        /// The records.
        records: Vec<Record>,
        /// Rejections by reason.
        rejected: BTreeMap<String, u64>,
        /// The last position in the batch (or the skip point when nothing was read).
        position: u64,
        /// Whether this ends the content.
        last: bool,
    },
    /// A line for the run log.
    Warn(String),
    /// The read failed; batches sent before stand.
    Failed(ErrorKind, String),
}

/// Why reading the input failed, as seen below the feed readers (which may wrap an I/O error
/// in a syntax error of their own).
#[derive(Debug, Clone, Default)]
struct Failure(Arc<Mutex<Option<(ErrorKind, String)>>>);

impl Failure {
    fn set(&self, kind: ErrorKind, message: String) {
        if let Ok(mut f) = self.0.lock()
            && f.is_none()
        {
            *f = Some((kind, message));
        }
    }

    fn get(&self) -> Option<(ErrorKind, String)> {
        self.0.lock().ok().and_then(|f| f.clone())
    }
}

/// The source as read from the network or disk: records its I/O errors.
struct Watched<R> {
    inner: R,
    failure: Failure,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            self.failure.set(ErrorKind::Network, e.to_string());
        })
    }
}

/// A reader that fails once more than `left` bytes come through it.
struct Limited<R> {
    inner: R,
    left: u64,
    max_mb: u64,
    failure: Failure,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            let message = format!(
                "the feed is larger than the {} MB the configuration allows (max_size_mb)",
                self.max_mb
            );
            self.failure.set(ErrorKind::Config, message.clone());
            return Err(std::io::Error::other(message));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Why the start of some content cannot be a feed, if it cannot.
pub fn not_a_feed(head: &[u8]) -> Option<String> {
    let sample = &head[..head.len().min(4096)];
    if sample.contains(&0) {
        return Some("binary data, not text".into());
    }
    let text = String::from_utf8_lossy(sample);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let lower: String = text
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    let markup = [
        "<!doctype",
        "<html",
        "<head",
        "<body",
        "<?xml",
        "<!--",
        "<rss",
        "<feed",
    ];
    if markup.iter().any(|m| lower.starts_with(m)) {
        let start: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let start: String = start.chars().take(160).collect();
        let what = if lower.starts_with("<?xml")
            || lower.starts_with("<rss")
            || lower.starts_with("<feed")
        {
            "an XML document"
        } else {
            "an HTML page"
        };
        return Some(format!(
            "{what}, not a feed — a login page, a captcha or an error page? It starts: {start}"
        ));
    }
    None
}

/// Wraps `input` for reading: gzip by magic bytes, the size limit on what is decompressed.
fn prepare(
    input: Box<dyn Read + Send>,
    job: &ReadJob,
    failure: &Failure,
) -> std::io::Result<Box<dyn BufRead + Send>> {
    let watched = Watched {
        inner: input,
        failure: failure.clone(),
    };
    let mut raw = BufReader::with_capacity(256 * 1024, watched);
    let gzipped = raw.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let decoded: Box<dyn Read + Send> = if gzipped {
        Box::new(flate2::bufread::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    Ok(Box::new(BufReader::with_capacity(
        256 * 1024,
        Limited {
            inner: decoded,
            left: job.max_bytes,
            max_mb: job.max_bytes >> 20,
            failure: failure.clone(),
        },
    )))
}

/// Counts and batches items as the feed reader delivers them.
struct Batcher<'a> {
    job: &'a ReadJob,
    tx: &'a mpsc::Sender<Msg>,
    records: Vec<Record>,
    rejected: BTreeMap<String, u64>,
    /// The position of the last item taken.
    last: u64,
    items: u64,
    bad: u64,
    logged: usize,
    /// Why the read stopped early, if it did.
    stop: Option<String>,
    /// The receiver went away (the pull was dropped).
    gone: bool,
}

impl Batcher<'_> {
    fn take(&mut self, item: FeedItem) -> ControlFlow<()> {
        let position = match &item {
            FeedItem::Record(p, _) => p.number(),
            FeedItem::Reject(r) => r.position.number(),
        };
        if position <= self.job.skip_through {
            return ControlFlow::Continue(());
        }
        // Cut between positions, never inside one: a STIX pattern with an OR gives several
        // records at one position, and a checkpoint must not split them.
        if self.records.len() >= self.job.batch && position != self.last {
            self.send(false)?;
        }
        self.last = position;
        self.items += 1;
        match item {
            FeedItem::Record(_, mut record) => {
                record.echo = record.echo
                    || record
                        .attributes
                        .comment
                        .as_deref()
                        .is_some_and(crate::is_echo)
                    || record
                        .attributes
                        .tags
                        .as_slice()
                        .iter()
                        .any(|t| crate::is_echo(t));
                self.records.push(record);
            }
            FeedItem::Reject(r) => {
                if !BENIGN_REASONS.contains(&r.reason) {
                    self.bad += 1;
                }
                *self.rejected.entry(r.reason.to_string()).or_default() += 1;
                if self.logged < LOGGED_REJECTS {
                    self.logged += 1;
                    self.warn(format!(
                        "{} {}: rejected ({}): {}",
                        self.job.shown, r.position, r.reason, r.message
                    ));
                }
            }
        }
        if self.items == SAMPLE && self.too_many_rejects() {
            self.stop = Some(self.garbage());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn too_many_rejects(&self) -> bool {
        self.items > 0 && self.bad * 100 > self.items * self.job.max_reject_percent
    }

    fn garbage(&self) -> String {
        let reasons: Vec<String> = self
            .rejected
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        format!(
            "{} does not look like a feed in this format: {} of its first {} items are not \
             indicators ({}); check the format and column settings (max_reject_percent is {})",
            self.job.shown,
            self.bad,
            self.items,
            reasons.join(", "),
            self.job.max_reject_percent
        )
    }

    fn warn(&mut self, message: String) {
        if self.tx.blocking_send(Msg::Warn(message)).is_err() {
            self.gone = true;
        }
    }

    fn send(&mut self, last: bool) -> ControlFlow<()> {
        let msg = Msg::Batch {
            records: std::mem::replace(
                &mut self.records,
                Vec::with_capacity(self.job.batch.min(BATCH)),
            ),
            rejected: std::mem::take(&mut self.rejected),
            position: self.last.max(self.job.skip_through),
            last,
        };
        if self.tx.blocking_send(msg).is_err() {
            self.gone = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Reads the content to its end (or its first failure), sending batches on `tx`. Runs on a
/// blocking thread; returns early when the receiver is dropped.
pub fn read(input: Box<dyn Read + Send>, job: &ReadJob, tx: &mpsc::Sender<Msg>) {
    let fail = |kind: ErrorKind, message: String| {
        let _ = tx.blocking_send(Msg::Failed(kind, message));
    };
    let failure = Failure::default();
    let io_failure = |e: &std::io::Error| {
        let (kind, why) = failure.get().unwrap_or((ErrorKind::Network, e.to_string()));
        (
            kind,
            format!("{}: reading the feed failed: {why}", job.shown),
        )
    };
    let mut input = match prepare(input, job, &failure) {
        Ok(i) => i,
        Err(e) => {
            let (kind, message) = io_failure(&e);
            return fail(kind, message);
        }
    };
    let head = match input.fill_buf() {
        Ok(h) => h,
        Err(e) => {
            let (kind, message) = io_failure(&e);
            return fail(kind, message);
        }
    };
    if let Some(why) = not_a_feed(head) {
        return fail(ErrorKind::Protocol, format!("{} returned {why}", job.shown));
    }
    let input = match job.mapping.apply(input, &job.options) {
        Ok(i) => i,
        Err(e) => {
            let (kind, message) = io_failure(&e);
            return fail(kind, message);
        }
    };
    let mut batcher = Batcher {
        job,
        tx,
        records: Vec::with_capacity(job.batch.min(BATCH)),
        rejected: BTreeMap::new(),
        last: 0,
        items: 0,
        bad: 0,
        logged: 0,
        stop: None,
        gone: false,
    };
    let result = job
        .mapping
        .read(input, &job.options, &mut |item| batcher.take(item));
    if batcher.gone {
        return;
    }
    if let Some(why) = batcher.stop.take() {
        return fail(ErrorKind::Protocol, why);
    }
    if let Err(e) = result {
        // Keep what was read before the failure: those positions are complete.
        if (!batcher.records.is_empty() || !batcher.rejected.is_empty())
            && batcher.send(false).is_break()
        {
            return;
        }
        let at = if batcher.last > 0 {
            format!(" after {}", position_name(&job.options, batcher.last))
        } else {
            String::new()
        };
        let (kind, message) = match (failure.get(), e) {
            (Some((kind, why)), _) => (
                kind,
                format!("{}: reading the feed failed{at}: {why}", job.shown),
            ),
            (None, FeedError::Syntax { position, message }) => (
                ErrorKind::Protocol,
                format!("{} is not a valid feed at {position}: {message}", job.shown),
            ),
            (None, FeedError::Io(e)) => (
                ErrorKind::Network,
                format!("{}: reading the feed failed{at}: {e}", job.shown),
            ),
        };
        return fail(kind, message);
    }
    // A short feed is judged on all of it.
    if batcher.items < SAMPLE && batcher.too_many_rejects() {
        let why = batcher.garbage();
        return fail(ErrorKind::Protocol, why);
    }
    let _ = batcher.send(true);
}

fn position_name(options: &FeedOptions, n: u64) -> String {
    match options.format {
        Some(Format::Stix) => Position::Item(n).to_string(),
        _ => format!("position {n}"),
    }
}

/// The start of some content, gunzipped when it starts with the gzip magic bytes (a cut gzip
/// stream decodes as far as it goes).
pub fn decode_head(head: &[u8]) -> Vec<u8> {
    if !head.starts_with(&[0x1f, 0x8b]) {
        return head.to_vec();
    }
    let mut out = Vec::new();
    let _ = flate2::bufread::MultiGzDecoder::new(head)
        .take(4 << 20)
        .read_to_end(&mut out);
    out
}

/// Reads up to `limit` items of the (decoded) start of some content, for "Test connection":
/// how many are indicators and how many rejected, and in which format it was read.
pub fn sample(
    head: &[u8],
    options: &FeedOptions,
    mapping: &Mapping,
    limit: u64,
) -> (u64, u64, Option<Format>) {
    let (mut records, mut rejects, mut seen) = (0u64, 0u64, 0u64);
    let input: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(cut_at_line(head.to_vec())));
    let Ok(input) = mapping.apply(input, options) else {
        return (0, 0, None);
    };
    let format = mapping.read(input, options, &mut |item| {
        seen += 1;
        match item {
            FeedItem::Record(..) => records += 1,
            FeedItem::Reject(r) if BENIGN_REASONS.contains(&r.reason) => {}
            FeedItem::Reject(_) => rejects += 1,
        }
        if seen >= limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    (records, rejects, format.ok())
}

/// `bytes` up to and including its last newline (all of it when it has none).
fn cut_at_line(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(i) = bytes.iter().rposition(|b| *b == b'\n') {
        bytes.truncate(i + 1);
    }
    bytes
}
