//! Feed formats: reading plain-text, CSV, JSON and STIX 2.1 feeds into [`Record`]s, and writing
//! indicators back out in the same formats.
//!
//! Reading is push-based and streaming: [`read_feed`] hands each record (or rejected line) to a
//! callback as soon as it is parsed, so a feed of any size is read in constant memory, including
//! one JSON array or STIX bundle of millions of objects.
//!
//! Every item carries its [`Position`] (line, or item of a JSON array or bundle), which is how
//! rejections are reported and how an interrupted import resumes: positions are stable across
//! reads of the same input.

mod csv;
mod fields;
mod json;
pub mod stix;
mod txt;
mod write;

use std::fmt;
use std::io::BufRead;
use std::ops::ControlFlow;
use std::str::FromStr;

use crate::parse::{ParseOptions, parse};
use crate::{Attributes, Kind, Record};

pub use fields::Field;
pub use write::{ExportFormat, ExportRow, ExportWriter};

/// A feed format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One indicator per line; `#` and `//` start comments.
    Txt,
    /// Comma- (or tab-, semicolon-) separated values with a header, or a chosen column.
    Csv,
    /// A JSON array of objects or strings, or JSON Lines.
    Json,
    /// A STIX 2.1 bundle of indicators (simple comparison patterns) and cyber-observables.
    Stix,
}

impl Format {
    /// The format's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Stix => "stix",
        }
    }

    /// The format a file name suggests, by extension.
    pub fn from_file_name(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        let lower = lower.strip_suffix(".gz").unwrap_or(&lower);
        let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
        Some(match ext {
            "txt" | "list" | "lst" => Format::Txt,
            "csv" | "tsv" => Format::Csv,
            "json" | "jsonl" | "ndjson" => Format::Json,
            "stix" | "stix2" => Format::Stix,
            _ => return None,
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "txt" | "text" | "plain" => Format::Txt,
            "csv" | "tsv" => Format::Csv,
            "json" | "jsonl" | "ndjson" => Format::Json,
            "stix" | "stix2" | "stix21" => Format::Stix,
            other => {
                return Err(format!(
                    "unknown feed format {other:?}; use auto, txt, csv, json or stix"
                ));
            }
        })
    }
}

/// Which CSV column holds the indicator, when the header does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// A header name.
    Name(String),
    /// A 1-based column number.
    Number(usize),
}

impl FromStr for Column {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the column is empty; give a header name or a number from 1".into());
        }
        match s.parse::<usize>() {
            Ok(0) => Err("columns are numbered from 1".into()),
            Ok(n) => Ok(Column::Number(n)),
            Err(_) => Ok(Column::Name(s.to_string())),
        }
    }
}

/// How to read a feed.
#[derive(Debug, Clone, Default)]
pub struct FeedOptions {
    /// The format; `None` detects it from the content (and [`FeedOptions::file_name`]).
    pub format: Option<Format>,
    /// A file name, used as a hint when detecting the format.
    pub file_name: Option<String>,
    /// Every value is of this kind (values of other kinds are rejected).
    pub kind: Option<Kind>,
    /// Attributes for records that do not give their own; tags are added to a record's own.
    pub defaults: Attributes,
    /// The CSV column holding the indicator.
    pub column: Option<Column>,
    /// Parser options (scheme-less URL handling).
    pub parse: ParseOptions,
}

/// Where in a feed an item was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Position {
    /// A 1-based line of a line-oriented feed.
    Line(u64),
    /// A 1-based element of a JSON array or STIX bundle.
    Item(u64),
}

impl Position {
    /// The number, line or item.
    pub fn number(self) -> u64 {
        match self {
            Position::Line(n) | Position::Item(n) => n,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Item(n) => write!(f, "item {n}"),
        }
    }
}

/// A part of a feed that did not become a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Where.
    pub position: Position,
    /// The offending text (cut to 300 bytes).
    pub raw: String,
    /// A short, stable reason code (`bad_ipv4`, `public_suffix`, `bad_severity`, …).
    pub reason: &'static str,
    /// What was wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.position, self.message)
    }
}

/// One parsed item of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedItem {
    /// A record.
    Record(Position, Record),
    /// A rejected line or element.
    Reject(Reject),
}

/// A feed that cannot be read on: broken syntax or an I/O error.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Reading failed.
    #[error("reading the feed: {0}")]
    Io(#[from] std::io::Error),
    /// The content is not of the expected format.
    #[error("{position}: {message}")]
    Syntax {
        /// Where reading stopped.
        position: Position,
        /// What was wrong.
        message: String,
    },
}

/// Reads a feed, handing every item to `sink` until the input ends or `sink` breaks.
///
/// # Errors
/// [`FeedError`] when the input cannot be read on; items before the error have been delivered.
pub fn read_feed<R: BufRead>(
    mut reader: R,
    options: &FeedOptions,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> Result<Format, FeedError> {
    let format = match options.format {
        Some(f) => f,
        None => detect(&mut reader, options.file_name.as_deref())?,
    };
    match format {
        Format::Txt => txt::read(reader, options, sink)?,
        Format::Csv => csv::read(reader, options, sink)?,
        Format::Json => json::read(reader, options, sink)?,
        Format::Stix => stix::read(reader, options, sink)?,
    }
    Ok(format)
}

/// Reads one JSON element the way the elements of a JSON feed are read: a string is a value; an
/// object carries fields under any name [`Field::from_name`] knows. For programs and APIs that
/// hand over records one at a time.
pub fn read_value(
    position: Position,
    value: &serde_json::Value,
    options: &FeedOptions,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> ControlFlow<()> {
    json::deliver_value(position, value, options, sink)
}

/// Looks at the first bytes (without consuming them) to choose a format.
fn detect<R: BufRead>(reader: &mut R, file_name: Option<&str>) -> Result<Format, FeedError> {
    let hint = file_name.and_then(Format::from_file_name);
    let head = reader.fill_buf()?;
    let text = String::from_utf8_lossy(&head[..head.len().min(16 * 1024)]);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.contains("\"type\":\"bundle\"") || (hint == Some(Format::Stix)) {
            return Ok(Format::Stix);
        }
        return Ok(Format::Json);
    }
    if let Some(rest) = trimmed.strip_prefix('[') {
        // "[" opens a JSON array, unless it starts a defanged value such as "[.]"-style text.
        if rest.trim_start().starts_with(['{', '"', ']'])
            || serde_json::from_str::<serde_json::Value>(trimmed).is_ok()
        {
            return Ok(Format::Json);
        }
    }
    if let Some(hint) = hint {
        return Ok(hint);
    }
    if csv::looks_like_csv(trimmed) {
        return Ok(Format::Csv);
    }
    Ok(Format::Txt)
}

/// Turns one value and its fields into records, or a rejection.
pub(crate) fn records_from(
    position: Position,
    raw: &fields::RawFields,
    options: &FeedOptions,
) -> Result<Vec<Record>, Reject> {
    let reject = |reason: &'static str, message: String| Reject {
        position,
        raw: clip(raw.value.as_deref().unwrap_or("")),
        reason,
        message,
    };
    let Some(value) = raw.value.as_deref().filter(|v| !v.trim().is_empty()) else {
        return Err(reject("no_value", "no indicator value on this line".into()));
    };
    let mut kind = options.kind.or(raw.kind_hint);
    if let Some(k) = raw.kind.as_deref().filter(|k| !k.trim().is_empty()) {
        match fields::kind_from_vendor(k) {
            Some(parsed) => kind = Some(parsed),
            None => {
                return Err(reject(
                    "unknown_kind",
                    format!("unknown indicator type {k:?}"),
                ));
            }
        }
    }
    let mut attributes = options.defaults.clone();
    raw.apply(&mut attributes)
        .map_err(|(reason, message)| reject(reason, message))?;
    let (first_seen, last_seen) = raw
        .times()
        .map_err(|(reason, message)| reject(reason, message))?;
    let parsed =
        parse(value, kind, &options.parse).map_err(|e| reject(e.reason(), e.to_string()))?;
    Ok(parsed
        .iter()
        .map(|indicator| Record {
            indicator: indicator.clone(),
            attributes: attributes.clone(),
            first_seen,
            last_seen,
            hits: 1,
            echo: false,
        })
        .collect())
}

/// Delivers the outcome of [`records_from`].
pub(crate) fn deliver(
    position: Position,
    result: Result<Vec<Record>, Reject>,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> ControlFlow<()> {
    match result {
        Ok(records) => {
            for record in records {
                sink(FeedItem::Record(position, record))?;
            }
            ControlFlow::Continue(())
        }
        Err(reject) => sink(FeedItem::Reject(reject)),
    }
}

pub(crate) fn clip(text: &str) -> String {
    if text.len() <= 300 {
        return text.to_string();
    }
    let mut cut = 300;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

#[cfg(test)]
mod tests;
