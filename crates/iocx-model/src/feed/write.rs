//! Writing indicators out: plain text, CSV, a JSON array, or a STIX 2.1 bundle, streamed row by
//! row so an export of any size holds one row in memory.

use std::io::{self, Write};
use std::str::FromStr;

use serde_json::json;

use crate::{Indicator, Severity, Timestamp};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One value per line.
    Txt,
    /// CSV with a header; reads back with `iocx import --format csv`.
    Csv,
    /// A JSON array of objects; reads back with `iocx import --format json`.
    Json,
    /// A STIX 2.1 bundle of indicator objects.
    Stix,
}

impl FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "txt" | "text" => ExportFormat::Txt,
            "csv" => ExportFormat::Csv,
            "json" => ExportFormat::Json,
            "stix" | "stix2" => ExportFormat::Stix,
            other => {
                return Err(format!(
                    "unknown export format {other:?}; use txt, csv, json or stix"
                ));
            }
        })
    }
}

/// What an export writes about one indicator.
#[derive(Debug, Clone)]
pub struct ExportRow<'a> {
    /// The indicator.
    pub indicator: &'a Indicator,
    /// Aggregate severity.
    pub severity: Severity,
    /// Aggregate reputation.
    pub reputation: u8,
    /// Tags.
    pub tags: &'a [String],
    /// First seen.
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// Last material change.
    pub modified: Timestamp,
    /// Expiry.
    pub expires: Option<Timestamp>,
    /// Total hits.
    pub hits: u64,
    /// Reporting sources.
    pub sources: Vec<&'a str>,
    /// Whether active now.
    pub active: bool,
    /// Whether safe.
    pub safe: bool,
    /// A comment (the first source's that has one).
    pub comment: Option<&'a str>,
}

/// Writes rows in one [`ExportFormat`].
pub struct ExportWriter<W: Write> {
    out: W,
    format: ExportFormat,
    rows: u64,
}

const CSV_HEADER: [&str; 13] = [
    "kind",
    "value",
    "severity",
    "reputation",
    "tags",
    "first_seen",
    "last_seen",
    "expires",
    "hits",
    "sources",
    "active",
    "safe",
    "comment",
];

impl<W: Write> ExportWriter<W> {
    /// Starts an export: writes the CSV header, or opens the JSON array or STIX bundle.
    ///
    /// # Errors
    /// On write errors.
    pub fn new(mut out: W, format: ExportFormat) -> io::Result<Self> {
        match format {
            ExportFormat::Csv => writeln!(out, "{}", CSV_HEADER.join(","))?,
            ExportFormat::Json => out.write_all(b"[")?,
            ExportFormat::Stix => write!(
                out,
                "{{\"type\":\"bundle\",\"id\":\"bundle--{}\",\"objects\":[",
                uuid::Uuid::new_v4()
            )?,
            ExportFormat::Txt => {}
        }
        Ok(ExportWriter {
            out,
            format,
            rows: 0,
        })
    }

    /// Writes one row.
    ///
    /// # Errors
    /// On write errors.
    pub fn row(&mut self, row: &ExportRow<'_>) -> io::Result<()> {
        let sep = if self.rows == 0 { "\n" } else { ",\n" };
        match self.format {
            ExportFormat::Txt => writeln!(self.out, "{}", row.indicator.value)?,
            ExportFormat::Csv => {
                let fields = [
                    row.indicator.kind.to_string(),
                    row.indicator.value.clone(),
                    row.severity.to_string(),
                    row.reputation.to_string(),
                    row.tags.join(";"),
                    row.first_seen.to_rfc3339(),
                    row.last_seen.to_rfc3339(),
                    row.expires.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    row.hits.to_string(),
                    row.sources.join(";"),
                    row.active.to_string(),
                    row.safe.to_string(),
                    row.comment.unwrap_or("").to_string(),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                writeln!(self.out, "{}", line.join(","))?;
            }
            ExportFormat::Json => {
                let mut object = json!({
                    "kind": row.indicator.kind,
                    "value": row.indicator.value,
                    "severity": row.severity,
                    "reputation": row.reputation,
                    "tags": row.tags,
                    "first_seen": row.first_seen,
                    "last_seen": row.last_seen,
                    "hits": row.hits,
                    "sources": row.sources,
                    "active": row.active,
                    "safe": row.safe,
                });
                if let Some(map) = object.as_object_mut() {
                    if let Some(e) = row.expires {
                        map.insert("expires".into(), json!(e));
                    }
                    if let Some(c) = row.comment {
                        map.insert("comment".into(), json!(c));
                    }
                }
                write!(self.out, "{sep}{object}")?;
            }
            ExportFormat::Stix => {
                let object = super::stix::indicator_object(row, !row.active);
                write!(self.out, "{sep}{object}")?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Closes the JSON array or STIX bundle and flushes; returns the number of rows.
    ///
    /// # Errors
    /// On write errors.
    pub fn finish(mut self) -> io::Result<u64> {
        match self.format {
            ExportFormat::Json => {
                self.out
                    .write_all(if self.rows == 0 { b"]\n" } else { b"\n]\n" })?
            }
            ExportFormat::Stix => {
                self.out
                    .write_all(if self.rows == 0 { b"]}\n" } else { b"\n]}\n" })?
            }
            _ => {}
        }
        self.out.flush()?;
        Ok(self.rows)
    }
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) || f.starts_with(' ') || f.ends_with(' ') {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}
