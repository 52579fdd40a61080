//! JSON feeds: an array of objects (or strings), or JSON Lines.

use std::io::BufRead;
use std::ops::ControlFlow;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

use super::fields::{Field, RawFields};
use super::{FeedError, FeedItem, FeedOptions, Position, Reject, clip, deliver, records_from};

pub(super) fn read<R: BufRead>(
    mut reader: R,
    options: &FeedOptions,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> Result<(), FeedError> {
    let starts_with_bracket = {
        let head = reader.fill_buf()?;
        let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
        text.trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('[')
    };
    if starts_with_bracket {
        read_array(reader, options, sink)
    } else {
        read_lines(reader, options, sink)
    }
}

/// One JSON value per line; a line that is not JSON is rejected, the read goes on.
fn read_lines<R: BufRead>(
    mut reader: R,
    options: &FeedOptions,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> Result<(), FeedError> {
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
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
            Ok(value) => deliver_value(position, &value, options, sink),
            Err(e) => sink(FeedItem::Reject(Reject {
                position,
                raw: clip(text),
                reason: "bad_json",
                message: format!("not JSON: {e}"),
            })),
        };
        if flow.is_break() {
            return Ok(());
        }
    }
}

/// A JSON array, read element by element: only one element is in memory at a time.
fn read_array<R: BufRead>(
    reader: R,
    options: &FeedOptions,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> Result<(), FeedError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut count = 0u64;
    let result = ElementsSeed {
        options,
        sink,
        count: &mut count,
    }
    .deserialize(&mut de);
    match result {
        Ok(()) => de.end().map_err(|e| syntax(count, &e)),
        Err(e) => Err(syntax(count, &e)),
    }
}

fn syntax(count: u64, e: &serde_json::Error) -> FeedError {
    if e.is_io() {
        return FeedError::Io(std::io::Error::other(e.to_string()));
    }
    FeedError::Syntax {
        position: Position::Item(count + 1),
        message: format!("broken JSON array: {e}"),
    }
}

/// Delivers the elements of a JSON array as they are parsed.
pub(super) struct ElementsSeed<'a, 'b> {
    pub options: &'a FeedOptions,
    pub sink: &'a mut dyn FnMut(FeedItem) -> ControlFlow<()>,
    pub count: &'b mut u64,
}

impl<'de> DeserializeSeed<'de> for ElementsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ElementsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of indicators")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut stopped = false;
        while let Some(value) = seq.next_element::<Value>()? {
            *self.count += 1;
            if stopped {
                continue;
            }
            if deliver_value(Position::Item(*self.count), &value, self.options, self.sink)
                .is_break()
            {
                stopped = true;
            }
        }
        Ok(())
    }
}

/// One JSON element: a string is a value; an object has fields under any known name.
pub(super) fn deliver_value(
    position: Position,
    value: &Value,
    options: &FeedOptions,
    sink: &mut dyn FnMut(FeedItem) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut raw = RawFields::default();
    match value {
        Value::String(s) => raw.set(Field::Value(None), s),
        Value::Object(map) => {
            for (key, v) in map {
                let Some(field) = Field::from_name(key) else {
                    continue;
                };
                match (field, v) {
                    (Field::Tags, Value::Array(items)) => {
                        for item in items {
                            if let Some(t) = scalar_text(item) {
                                raw.tags.push(t);
                            }
                        }
                    }
                    (field, v) => {
                        if let Some(text) = scalar_text(v) {
                            raw.set(field, &text);
                        }
                    }
                }
            }
        }
        other => {
            return sink(FeedItem::Reject(Reject {
                position,
                raw: clip(&other.to_string()),
                reason: "bad_json",
                message: "expected an object or a string".into(),
            }));
        }
    }
    deliver(position, records_from(position, &raw, options), sink)
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
