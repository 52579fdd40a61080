//! Plain-text feeds: one indicator per line.

use std::io::BufRead;
use std::ops::ControlFlow;

use super::fields::RawFields;
use super::{FeedError, FeedItem, FeedOptions, Position, deliver, records_from};

/// Reads one indicator per line. Blank lines and lines starting with `#`, `;` or `//` are
/// comments, as is anything after whitespace followed by `#` (a URL fragment has no space
/// before its `#`). Undecodable bytes are replaced, so the line is rejected with its reason
/// rather than ending the read.
pub(super) fn read<R: BufRead>(
    mut reader: R,
    options: &FeedOptions,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> Result<(), FeedError> {
    let mut buf = Vec::with_capacity(256);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line_no += 1;
        let line = String::from_utf8_lossy(&buf);
        let Some(value) = strip_comment(&line) else {
            continue;
        };
        let raw = RawFields {
            value: Some(value.to_string()),
            ..RawFields::default()
        };
        let position = Position::Line(line_no);
        if deliver(position, records_from(position, &raw, options), sink).is_break() {
            return Ok(());
        }
    }
}

/// The value of a line, without comments and surrounding whitespace; `None` for a comment or
/// blank line.
pub(super) fn strip_comment(line: &str) -> Option<&str> {
    let line = line.trim_start_matches('\u{feff}').trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with(';') || line.starts_with("//") {
        return None;
    }
    let end = line
        .char_indices()
        .find(|&(i, c)| c == '#' && line[..i].ends_with(char::is_whitespace))
        .map_or(line.len(), |(i, _)| i);
    let value = line[..end].trim();
    (!value.is_empty()).then_some(value)
}
