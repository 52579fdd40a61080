//! Table schemas, ServiceNow's value formats, and how a record is rendered (raw values, display
//! values, reference links, dot-walked fields).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use serde_json::{Map, Value, json};

/// ServiceNow's date-time format (UTC in API output): `2024-05-01 13:45:00`.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Formats a time as ServiceNow does.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format(TIME_FORMAT).to_string()
}

/// Parses `YYYY-MM-DD HH:MM:SS` (or a bare date, as midnight) as UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = NaiveDateTime::parse_from_str(text, TIME_FORMAT) {
        return Some(Utc.from_utc_datetime(&t));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

/// What a field holds. Every value is stored and sent as a string, as ServiceNow does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// An integer.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A date-time in [`TIME_FORMAT`].
    DateTime,
    /// A `sys_id` of a record in the named table.
    Reference(&'static str),
    /// One of the listed `(value, label)` choices.
    Choice(&'static [(&'static str, &'static str)]),
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Column name.
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
}

const fn f(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

/// One table.
#[derive(Debug)]
pub struct Table {
    /// Table name.
    pub name: &'static str,
    /// The column whose value is the record's display value.
    pub display_field: &'static str,
    /// The prefix of auto-numbered `number` values (task tables).
    pub number_prefix: Option<&'static str>,
    /// Columns besides the system ones.
    pub fields: &'static [Field],
    /// Values a new record starts with (before the client's).
    pub defaults: &'static [(&'static str, &'static str)],
}

/// Columns every table has.
pub const SYSTEM_FIELDS: &[Field] = &[
    f("sys_id", Kind::Text),
    f("sys_created_on", Kind::DateTime),
    f("sys_created_by", Kind::Text),
    f("sys_updated_on", Kind::DateTime),
    f("sys_updated_by", Kind::Text),
    f("sys_mod_count", Kind::Integer),
    f("sys_tags", Kind::Text),
];

const SIR_STATES: &[(&str, &str)] = &[
    ("10", "Draft"),
    ("16", "Analysis"),
    ("18", "Contain"),
    ("19", "Eradicate"),
    ("20", "Recover"),
    ("100", "Review"),
    ("3", "Closed"),
    ("7", "Cancelled"),
];
const INCIDENT_STATES: &[(&str, &str)] = &[
    ("1", "New"),
    ("2", "In Progress"),
    ("3", "On Hold"),
    ("6", "Resolved"),
    ("7", "Closed"),
    ("8", "Canceled"),
];
const PRIORITIES: &[(&str, &str)] = &[
    ("1", "1 - Critical"),
    ("2", "2 - High"),
    ("3", "3 - Moderate"),
    ("4", "4 - Low"),
    ("5", "5 - Planning"),
];
const THREE_LEVELS: &[(&str, &str)] = &[("1", "1 - High"), ("2", "2 - Medium"), ("3", "3 - Low")];
const FINDINGS: &[(&str, &str)] = &[
    ("Malicious", "Malicious"),
    ("Suspicious", "Suspicious"),
    ("Unknown", "Unknown"),
    ("Clean", "Clean"),
];

/// The tables the emulator knows.
pub const TABLES: &[Table] = &[
    Table {
        name: "sn_ti_observable",
        display_field: "value",
        number_prefix: None,
        fields: &[
            f("value", Kind::Text),
            f("type", Kind::Reference("sn_ti_observable_type")),
            f("notes", Kind::Text),
            f("finding", Kind::Choice(FINDINGS)),
            f("source", Kind::Text),
        ],
        defaults: &[],
    },
    Table {
        name: "sn_ti_observable_type",
        display_field: "name",
        number_prefix: None,
        fields: &[
            f("name", Kind::Text),
            f("value", Kind::Text),
            f("description", Kind::Text),
        ],
        defaults: &[],
    },
    Table {
        name: "sn_si_incident",
        display_field: "number",
        number_prefix: Some("SIR"),
        fields: &[
            f("number", Kind::Text),
            f("short_description", Kind::Text),
            f("description", Kind::Text),
            f("state", Kind::Choice(SIR_STATES)),
            f("priority", Kind::Choice(PRIORITIES)),
            f("severity", Kind::Choice(THREE_LEVELS)),
            f("risk_score", Kind::Integer),
            f("category", Kind::Text),
            f("subcategory", Kind::Text),
            f("assigned_to", Kind::Reference("sys_user")),
            f("assignment_group", Kind::Text),
            f("opened_by", Kind::Reference("sys_user")),
            f("opened_at", Kind::DateTime),
            f("closed_at", Kind::DateTime),
            f("active", Kind::Boolean),
            f("contact_type", Kind::Text),
            f("work_notes", Kind::Text),
            f("comments", Kind::Text),
            f("sys_class_name", Kind::Text),
        ],
        defaults: &[
            ("state", "10"),
            ("priority", "4"),
            ("severity", "3"),
            ("risk_score", "0"),
            ("active", "true"),
            ("sys_class_name", "sn_si_incident"),
        ],
    },
    Table {
        name: "incident",
        display_field: "number",
        number_prefix: Some("INC"),
        fields: &[
            f("number", Kind::Text),
            f("short_description", Kind::Text),
            f("description", Kind::Text),
            f("state", Kind::Choice(INCIDENT_STATES)),
            f("impact", Kind::Choice(THREE_LEVELS)),
            f("urgency", Kind::Choice(THREE_LEVELS)),
            f("priority", Kind::Choice(PRIORITIES)),
            f("category", Kind::Text),
            f("caller_id", Kind::Reference("sys_user")),
            f("assigned_to", Kind::Reference("sys_user")),
            f("assignment_group", Kind::Text),
            f("opened_by", Kind::Reference("sys_user")),
            f("opened_at", Kind::DateTime),
            f("closed_at", Kind::DateTime),
            f("active", Kind::Boolean),
            f("contact_type", Kind::Text),
            f("work_notes", Kind::Text),
            f("comments", Kind::Text),
            f("sys_class_name", Kind::Text),
        ],
        defaults: &[
            ("state", "1"),
            ("impact", "3"),
            ("urgency", "3"),
            ("priority", "5"),
            ("active", "true"),
            ("sys_class_name", "incident"),
        ],
    },
    Table {
        name: "sys_user",
        display_field: "name",
        number_prefix: None,
        fields: &[
            f("user_name", Kind::Text),
            f("first_name", Kind::Text),
            f("last_name", Kind::Text),
            f("name", Kind::Text),
            f("email", Kind::Text),
            f("title", Kind::Text),
            f("active", Kind::Boolean),
        ],
        defaults: &[("active", "true")],
    },
];

/// The tables whose records `DELETE /_sim/state` forgets (the reference tables stay).
pub const DATA_TABLES: &[&str] = &["sn_ti_observable", "sn_si_incident", "incident"];

/// The schema of `name`.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

impl Table {
    /// The column `name` (system columns included).
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        SYSTEM_FIELDS
            .iter()
            .chain(self.fields.iter())
            .find(|f| f.name == name)
    }

    /// Every column, system ones first.
    pub fn all_fields(&self) -> impl Iterator<Item = &'static Field> {
        SYSTEM_FIELDS.iter().chain(self.fields.iter())
    }
}

/// A record: every column's value as a string.
pub type Record = BTreeMap<String, String>;

/// Looks up records by table and `sys_id` (what rendering and dot-walking need).
pub trait Lookup {
    /// The record `sys_id` of `table`.
    fn record(&self, table: &str, sys_id: &str) -> Option<&Record>;
}

/// A value reached through a (possibly dot-walked) field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The stored value (a `sys_id` for references).
    pub raw: String,
    /// The display value.
    pub display: String,
    /// For a non-empty reference: the table it points into.
    pub reference: Option<&'static str>,
    /// The field's kind.
    pub kind: Kind,
}

/// Whether `path` (`type`, `type.value`, `assigned_to.email`) names a field of `table`.
pub fn path_exists(table: &'static Table, path: &str) -> bool {
    path_kind(table, path).is_some()
}

/// The kind of the field `path` reaches, when it exists.
pub fn path_kind(mut table: &'static Table, path: &str) -> Option<Kind> {
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = table.field(part)?;
        if parts.peek().is_none() {
            return Some(field.kind);
        }
        match field.kind {
            Kind::Reference(t) => table = self::table(t)?,
            _ => return None,
        }
    }
    None
}

/// The display value of `field` holding `raw` in a record of `table`.
pub fn display_of(db: &dyn Lookup, field: &Field, raw: &str) -> String {
    match field.kind {
        Kind::Reference(t) => match (table(t), db.record(t, raw)) {
            (Some(schema), Some(r)) => r.get(schema.display_field).cloned().unwrap_or_default(),
            _ => String::new(),
        },
        Kind::Choice(choices) => choices
            .iter()
            .find(|(v, _)| *v == raw)
            .map(|(_, l)| (*l).to_string())
            .unwrap_or_else(|| raw.to_string()),
        _ => raw.to_string(),
    }
}

/// Follows `path` from `record` of `table`. `None` when the path names no field; an empty value
/// when a reference on the way is empty or broken.
pub fn resolve(
    db: &dyn Lookup,
    mut table: &'static Table,
    record: &Record,
    path: &str,
) -> Option<Resolved> {
    let mut current: Option<&Record> = Some(record);
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = table.field(part)?;
        let raw = current
            .and_then(|r| r.get(part))
            .cloned()
            .unwrap_or_default();
        if parts.peek().is_none() {
            let reference = match field.kind {
                Kind::Reference(t) if !raw.is_empty() => Some(t),
                _ => None,
            };
            return Some(Resolved {
                display: if current.is_some() {
                    display_of(db, field, &raw)
                } else {
                    String::new()
                },
                raw,
                reference,
                kind: field.kind,
            });
        }
        let Kind::Reference(t) = field.kind else {
            return None;
        };
        table = self::table(t)?;
        current = if raw.is_empty() {
            None
        } else {
            db.record(t, &raw)
        };
    }
    None
}

/// `sysparm_display_value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Stored values (the default).
    Raw,
    /// Display values.
    Display,
    /// Both, as `{"display_value", "value"}` per field.
    All,
}

/// How records are rendered for one request.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// `sysparm_display_value`.
    pub display: Display,
    /// `sysparm_exclude_reference_link`.
    pub exclude_links: bool,
    /// `sysparm_fields` (every column when `None`).
    pub fields: Option<Vec<String>>,
    /// `scheme://host` for reference links.
    pub base_url: String,
}

fn render_value(r: &Resolved, opts: &RenderOptions) -> Value {
    let link = match (r.reference, opts.exclude_links) {
        (Some(t), false) => Some(format!("{}/api/now/table/{t}/{}", opts.base_url, r.raw)),
        _ => None,
    };
    match (opts.display, link) {
        (Display::Raw, None) => json!(r.raw),
        (Display::Raw, Some(link)) => json!({"link": link, "value": r.raw}),
        (Display::Display, None) => json!(r.display),
        (Display::Display, Some(link)) => json!({"display_value": r.display, "link": link}),
        (Display::All, None) => json!({"display_value": r.display, "value": r.raw}),
        (Display::All, Some(link)) => {
            json!({"display_value": r.display, "link": link, "value": r.raw})
        }
    }
}

/// Renders `record` of `table` as the Table API answers it. Dot-walked names in
/// `sysparm_fields` come back as literal keys (`"type.value"`); names that reach no field are
/// left out.
pub fn render(
    db: &dyn Lookup,
    table: &'static Table,
    record: &Record,
    opts: &RenderOptions,
) -> Value {
    let mut out = Map::new();
    match &opts.fields {
        Some(names) => {
            for name in names {
                if let Some(r) = resolve(db, table, record, name) {
                    out.insert(name.clone(), render_value(&r, opts));
                }
            }
        }
        None => {
            for field in table.all_fields() {
                if let Some(r) = resolve(db, table, record, field.name) {
                    out.insert(field.name.to_string(), render_value(&r, opts));
                }
            }
        }
    }
    Value::Object(out)
}

/// Whether `text` looks like a `sys_id` (32 lowercase hex digits).
pub fn is_sys_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
