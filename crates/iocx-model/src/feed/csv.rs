//! CSV feeds: a header naming the fields, or a chosen column.

use std::io::BufRead;
use std::ops::ControlFlow;

use super::fields::{Field, RawFields};
use super::{Column, FeedError, FeedItem, FeedOptions, Position, deliver, records_from};

/// Whether text looks like CSV rather than one value per line: its first content line has a
/// separator and a field name iocx knows.
pub(super) fn looks_like_csv(head: &str) -> bool {
    let Some(line) = head
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("# ") && *l != "#")
    else {
        return false;
    };
    let sep = separator(line);
    line.contains(sep as char) && header_fields(&split_simple(line, sep)).is_some()
}

fn separator(line: &str) -> u8 {
    let count = |c| line.matches(c).count();
    let (tabs, semis, commas) = (count('\t'), count(';'), count(','));
    if tabs > commas && tabs >= semis {
        b'\t'
    } else if semis > commas {
        b';'
    } else {
        b','
    }
}

fn split_simple(line: &str, sep: u8) -> Vec<String> {
    line.split(sep as char)
        .map(|f| f.trim().trim_matches('"').to_string())
        .collect()
}

/// The field of each column, when `names` is a header (it names the value, or at least two
/// fields iocx knows).
fn header_fields(names: &[String]) -> Option<Vec<Option<Field>>> {
    let fields: Vec<Option<Field>> = names.iter().map(|n| Field::from_name(n)).collect();
    let known = fields.iter().flatten().count();
    let has_value = fields.iter().any(|f| matches!(f, Some(Field::Value(_))));
    (has_value || known >= 2).then_some(fields)
}

pub(super) fn read<R: BufRead>(
    mut reader: R,
    options: &FeedOptions,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> Result<(), FeedError> {
    // A header may hide in the last comment line before the data (abuse.ch style:
    // "# id,dateadded,url,…"); look for one without consuming input.
    let (commented_header, sep) = {
        let head = reader.fill_buf()?;
        let text = String::from_utf8_lossy(&head[..head.len().min(64 * 1024)]);
        let mut header = None;
        let mut first_data = None;
        for line in text
            .lines()
            .map(|l| l.trim_start_matches('\u{feff}').trim())
        {
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                let rest = rest.trim();
                let sep = separator(rest);
                if rest.contains(sep as char) {
                    let names = split_simple(rest, sep);
                    if header_fields(&names).is_some() {
                        header = Some(names);
                    }
                }
                continue;
            }
            first_data = Some(line.to_string());
            break;
        }
        let sep = first_data.as_deref().map_or(b',', separator);
        (header, sep)
    };

    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .delimiter(sep)
        .trim(csv::Trim::All)
        .from_reader(reader);

    let mut fields: Option<Vec<Option<Field>>> =
        commented_header.as_deref().and_then(header_fields);
    let mut header_names: Option<Vec<String>> = commented_header;
    let mut first = true;
    let mut record = csv::ByteRecord::new();
    loop {
        let more = csv
            .read_byte_record(&mut record)
            .map_err(|e| FeedError::Syntax {
                position: Position::Line(e.position().map_or(0, |p| p.line())),
                message: format!("unreadable CSV: {e}"),
            })?;
        if !more {
            return Ok(());
        }
        let line = record.position().map_or(0, |p| p.line());
        let cells: Vec<String> = record
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        if first {
            first = false;
            if fields.is_none()
                && let Some(f) = header_fields(&cells)
            {
                fields = Some(f);
                header_names = Some(cells);
                continue;
            }
        }
        let mut raw = RawFields::default();
        let value_col = value_column(options.column.as_ref(), header_names.as_deref());
        match (&fields, value_col) {
            (Some(fields), None) => {
                for (cell, field) in cells.iter().zip(fields) {
                    if let Some(field) = field {
                        raw.set(*field, cell);
                    }
                }
            }
            (Some(fields), Some(col)) => {
                if let Some(cell) = cells.get(col) {
                    raw.set(
                        Field::Value(fields.get(col).copied().flatten().and_then(value_kind)),
                        cell,
                    );
                }
                for (i, (cell, field)) in cells.iter().zip(fields).enumerate() {
                    if let Some(field) = field.filter(|f| i != col && !matches!(f, Field::Value(_)))
                    {
                        raw.set(field, cell);
                    }
                }
            }
            (None, col) => {
                if let Some(cell) = cells.get(col.unwrap_or(0)) {
                    raw.set(Field::Value(None), cell);
                }
            }
        }
        if raw.value.is_none() && cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let position = Position::Line(line);
        if deliver(position, records_from(position, &raw, options), sink).is_break() {
            return Ok(());
        }
    }
}

fn value_kind(field: Field) -> Option<crate::Kind> {
    match field {
        Field::Value(k) => k,
        _ => None,
    }
}

/// The 0-based column chosen by `--column`, if one was.
fn value_column(column: Option<&Column>, header: Option<&[String]>) -> Option<usize> {
    match column? {
        Column::Number(n) => Some(n - 1),
        Column::Name(name) => header?
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name.trim())),
    }
}
