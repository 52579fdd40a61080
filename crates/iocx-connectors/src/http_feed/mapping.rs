//! Field mapping for feeds whose columns or keys the feed readers do not know by name.
//!
//! The feed readers of `iocx_model::feed` recognise the usual names (`url`, `ioc`, `sha256`,
//! `type`, `severity`, …). A feed that calls its indicator `observable_text` or its kind
//! `what` is mapped here, without holding the feed in memory:
//!
//! - **CSV**: the header line (a plain first line, or the commented `# a,b,c` line abuse.ch
//!   feeds use) is rewritten before the reader sees it — the value column becomes `value`, the
//!   kind column `type`, and other columns that would compete for those roles are renamed
//!   `_NAME`, so they are ignored. A value column given by number needs no header.
//! - **JSON** (an array of objects, or JSON Lines): each element is parsed on its own and its
//!   keys are renamed the same way before it is read. A key may be a dotted path into nested
//!   objects (`indicator.value`).

use std::io::{BufRead, BufReader, Cursor, Read};
use std::ops::ControlFlow;

use iocx_model::feed::{
    Column, FeedError, FeedItem, FeedOptions, Field, Format, Position, Reject, read_feed,
    read_value,
};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

/// The longest stretch of comment lines searched for a CSV header.
const HEAD_LIMIT: usize = 64 * 1024;

/// Which column or key holds the value and the kind, when the names are not ones the feed
/// readers know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// The value's CSV column (header name, or number from 1) or JSON key.
    pub value: Option<Column>,
    /// The kind's CSV column (header name) or JSON key.
    pub kind: Option<String>,
}

/// How a read goes, once the start of the content is known.
enum Plan {
    /// The feed readers as they are.
    Plain,
    /// CSV with a rewritten header.
    Csv,
    /// JSON elements with renamed keys.
    Json,
}

impl Mapping {
    /// Whether anything is mapped.
    pub fn is_empty(&self) -> bool {
        self.value.is_none() && self.kind.is_none()
    }

    fn plan(&self, head: &[u8], options: &FeedOptions) -> Plan {
        if self.is_empty() {
            return Plan::Plain;
        }
        match options.format {
            Some(Format::Json) => Plan::Json,
            Some(Format::Csv) => Plan::Csv,
            Some(Format::Txt | Format::Stix) => Plan::Plain,
            None => {
                let text = String::from_utf8_lossy(&head[..head.len().min(16 * 1024)]);
                let t = text.trim_start_matches('\u{feff}').trim_start();
                let compact: String = t
                    .chars()
                    .take(4096)
                    .filter(|c| !c.is_whitespace())
                    .collect();
                if t.starts_with('{') && compact.contains("\"type\":\"bundle\"") {
                    Plan::Plain
                } else if t.starts_with('[') || t.starts_with('{') {
                    Plan::Json
                } else {
                    Plan::Csv
                }
            }
        }
    }

    /// Prepares `input` for [`Mapping::read`]: rewrites a CSV header when one is mapped.
    ///
    /// # Errors
    /// When the start of the input cannot be read.
    pub fn apply(
        &self,
        mut input: Box<dyn BufRead + Send>,
        options: &FeedOptions,
    ) -> std::io::Result<Box<dyn BufRead + Send>> {
        let plan = self.plan(input.fill_buf()?, options);
        if !matches!(plan, Plan::Csv) {
            return Ok(input);
        }
        let value_name = match &self.value {
            Some(Column::Name(n)) => Some(n.as_str()),
            _ => None,
        };
        if value_name.is_none() && self.kind.is_none() {
            return Ok(input);
        }
        // Read the comment lines and the first data line: the header is among them.
        let mut head = Vec::new();
        loop {
            let start = head.len();
            if input.read_until(b'\n', &mut head)? == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&head[start..]).into_owned();
            let trimmed = line.trim_start_matches('\u{feff}').trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                if head.len() > HEAD_LIMIT {
                    break;
                }
                continue;
            }
            break;
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut out = String::with_capacity(text.len() + 16);
        let mut done = false;
        for line in text.split_inclusive('\n') {
            match (done, rename_header(line, value_name, self.kind.as_deref())) {
                (false, Some(renamed)) => {
                    out.push_str(&renamed);
                    done = true;
                }
                _ => out.push_str(line),
            }
        }
        Ok(Box::new(BufReader::new(
            Cursor::new(out.into_bytes()).chain(input),
        )))
    }

    /// Reads the (prepared) input, handing every item to `sink`.
    ///
    /// # Errors
    /// As [`read_feed`].
    pub fn read(
        &self,
        mut input: Box<dyn BufRead + Send>,
        options: &FeedOptions,
        sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
    ) -> Result<Format, FeedError> {
        let head = input.fill_buf()?;
        match self.plan(head, options) {
            Plan::Plain => read_feed(input, options, sink),
            Plan::Csv => {
                let mut options = options.clone();
                if let Some(Column::Number(n)) = &self.value {
                    options.column = Some(Column::Number(*n));
                }
                if self.value.is_some() || self.kind.is_some() {
                    options.format = Some(Format::Csv);
                }
                read_feed(input, &options, sink)
            }
            Plan::Json => {
                let starts_array = {
                    let head = input.fill_buf()?;
                    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
                    text.trim_start_matches('\u{feff}')
                        .trim_start()
                        .starts_with('[')
                };
                if starts_array {
                    self.read_json_array(input, options, sink)?;
                } else {
                    self.read_json_lines(input, options, sink)?;
                }
                Ok(Format::Json)
            }
        }
    }

    /// The element with its mapped keys renamed to the names the feed readers know.
    pub fn rename(&self, mut element: Value) -> Value {
        let Value::Object(map) = &mut element else {
            return element;
        };
        let value_key = match &self.value {
            Some(Column::Name(n)) => Some(n.as_str()),
            Some(Column::Number(_)) | None => None,
        };
        let taken_value = value_key.and_then(|k| take_path(map, k));
        let taken_kind = self.kind.as_deref().and_then(|k| take_path(map, k));
        // Keys that would compete with the mapped ones are set aside.
        let competing: Vec<String> = map
            .keys()
            .filter(|k| match Field::from_name(k) {
                Some(Field::Value(_)) => value_key.is_some(),
                Some(Field::Kind) => self.kind.is_some(),
                _ => false,
            })
            .cloned()
            .collect();
        for k in competing {
            if let Some(v) = map.remove(&k) {
                map.insert(format!("_{k}"), v);
            }
        }
        if let Some(v) = taken_value {
            map.insert("value".into(), v);
        }
        if let Some(v) = taken_kind {
            map.insert("type".into(), v);
        }
        element
    }

    fn deliver(
        &self,
        position: Position,
        element: Value,
        options: &FeedOptions,
        sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        read_value(position, &self.rename(element), options, sink)
    }

    fn read_json_lines(
        &self,
        mut input: Box<dyn BufRead + Send>,
        options: &FeedOptions,
        sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
    ) -> Result<(), FeedError> {
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            if input.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            line_no += 1;
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_start_matches('\u{feff}').trim();
            if text.is_empty() {
                continue;
            }
            let position = Position::Line(line_no);
            let flow = match serde_json::from_str::<Value>(text) {
                Ok(element) => self.deliver(position, element, options, sink),
                Err(e) => sink(FeedItem::Reject(Reject {
                    position,
                    raw: text.chars().take(300).collect(),
                    reason: "bad_json",
                    message: format!("not JSON: {e}"),
                })),
            };
            if flow.is_break() {
                return Ok(());
            }
        }
    }

    fn read_json_array(
        &self,
        input: Box<dyn BufRead + Send>,
        options: &FeedOptions,
        sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
    ) -> Result<(), FeedError> {
        let mut de = serde_json::Deserializer::from_reader(input);
        let mut count = 0u64;
        let seed = Elements {
            mapping: self,
            options,
            sink,
            count: &mut count,
        };
        let result = seed.deserialize(&mut de).and_then(|()| de.end());
        result.map_err(|e| {
            if e.is_io() {
                FeedError::Io(std::io::Error::other(e.to_string()))
            } else {
                FeedError::Syntax {
                    position: Position::Item(count + 1),
                    message: format!("broken JSON array: {e}"),
                }
            }
        })
    }
}

/// Removes the value at a dotted `path` (`a.b.c`) from `map`: the whole key when it exists as
/// written, else the nested one.
fn take_path(map: &mut serde_json::Map<String, Value>, path: &str) -> Option<Value> {
    if let Some(v) = map.remove(path) {
        return Some(v);
    }
    let (first, rest) = path.split_once('.')?;
    match map.get_mut(first)? {
        Value::Object(inner) => take_path(inner, rest),
        _ => None,
    }
}

/// Delivers the elements of a JSON array as they are parsed: one element in memory at a time.
struct Elements<'a, 'b> {
    mapping: &'a Mapping,
    options: &'a FeedOptions,
    sink: &'a mut dyn FnMut(FeedItem) -> ControlFlow<()>,
    count: &'b mut u64,
}

impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of indicators")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut stopped = false;
        while let Some(element) = seq.next_element::<Value>()? {
            *self.count += 1;
            if stopped {
                continue;
            }
            let position = Position::Item(*self.count);
            if self
                .mapping
                .deliver(position, element, self.options, self.sink)
                .is_break()
            {
                stopped = true;
            }
        }
        Ok(())
    }
}

/// `line` with the value column renamed `value`, the kind column `type`, and competitors set
/// aside, if the line is a header naming one of them; `None` otherwise.
fn rename_header(line: &str, value: Option<&str>, kind: Option<&str>) -> Option<String> {
    let (body, newline) = match line.strip_suffix("\r\n") {
        Some(b) => (b, "\r\n"),
        None => match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        },
    };
    let (prefix, rest) = match body.trim_start().strip_prefix('#') {
        Some(rest) => ("# ", rest),
        None => ("", body),
    };
    let sep = separator(rest);
    let cells: Vec<&str> = rest.split(sep).collect();
    let clean = |c: &str| c.trim().trim_matches('"').trim().to_ascii_lowercase();
    let matches = |c: &str, want: Option<&str>| {
        want.is_some_and(|w| clean(c) == w.trim().to_ascii_lowercase())
    };
    if !cells.iter().any(|c| matches(c, value) || matches(c, kind)) {
        return None;
    }
    let renamed: Vec<String> = cells
        .iter()
        .map(|c| {
            if matches(c, value) {
                "value".to_string()
            } else if matches(c, kind) {
                "type".to_string()
            } else {
                match Field::from_name(c) {
                    Some(Field::Value(_)) if value.is_some() => format!("_{}", clean(c)),
                    Some(Field::Kind) if kind.is_some() => format!("_{}", clean(c)),
                    _ => c.trim().to_string(),
                }
            }
        })
        .collect();
    Some(format!(
        "{prefix}{}{newline}",
        renamed.join(&sep.to_string())
    ))
}

/// The separator a CSV line uses: tab, semicolon or comma, whichever dominates.
fn separator(line: &str) -> char {
    let count = |c| line.matches(c).count();
    let (tabs, semis, commas) = (count('\t'), count(';'), count(','));
    if tabs > commas && tabs >= semis {
        '\t'
    } else if semis > commas {
        ';'
    } else {
        ','
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mapping: &Mapping, text: &str, format: Option<Format>) -> Vec<String> {
        let options = FeedOptions {
            format,
            ..FeedOptions::default()
        };
        let input: Box<dyn BufRead + Send> = Box::new(Cursor::new(text.as_bytes().to_vec()));
        let input = mapping.apply(input, &options).unwrap();
        let mut out = Vec::new();
        mapping
            .read(input, &options, &mut |item| {
                out.push(match item {
                    FeedItem::Record(p, r) => {
                        format!("{p} {} {}", r.indicator.kind, r.indicator.value)
                    }
                    FeedItem::Reject(r) => format!("{} rejected {}", r.position, r.reason),
                });
                ControlFlow::Continue(())
            })
            .unwrap();
        out
    }

    #[test]
    fn csv_headers_are_renamed_even_in_comments() {
        let mapping = Mapping {
            value: Some(Column::Name("observable_text".into())),
            kind: Some("What".into()),
        };
        let feed =
            "# generated today\n# url,observable_text,what\nhttp://x.example/,1.2.3.4,ipv4\n";
        // (The CSV reader numbers lines without the comment lines.)
        assert_eq!(read_all(&mapping, feed, None), ["line 1 ipv4 1.2.3.4"]);
        let feed = "url;observable_text;What\r\nhttp://x.example/;e.example;domain\r\n";
        assert_eq!(
            read_all(&mapping, feed, Some(Format::Csv)),
            ["line 1 domain e.example"]
        );
        // A column by number needs no header.
        let mapping = Mapping {
            value: Some(Column::Number(2)),
            kind: None,
        };
        assert_eq!(
            read_all(&mapping, "x,a.example\ny,b.example\n", Some(Format::Csv)).len(),
            2
        );
    }

    #[test]
    fn json_keys_are_renamed_and_may_be_nested() {
        let mapping = Mapping {
            value: Some(Column::Name("ioc.text".into())),
            kind: Some("ioc.what".into()),
        };
        let feed = r#"[{"url": "http://ignored.example/", "ioc": {"text": "5.6.7.8", "what": "ipv4"}}, {"ioc": {"text": "nope", "what": "ipv4"}}]"#;
        assert_eq!(
            read_all(&mapping, feed, None),
            ["item 1 ipv4 5.6.7.8", "item 2 rejected bad_ipv4"]
        );
        let lines = "{\"ioc\": {\"text\": \"a.example\", \"what\": \"domain\"}}\n\nnot json\n";
        let out = read_all(&mapping, lines, Some(Format::Json));
        assert_eq!(out[0], "line 1 domain a.example");
        assert_eq!(out[1], "line 3 rejected bad_json");
    }
}
