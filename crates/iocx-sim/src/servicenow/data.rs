//! What the instance holds: one map of records per table, writes with ServiceNow's value
//! coercions, and the seed data behind `--records` and `--incidents`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Map, Value, json};

use super::model::{self, Kind, Lookup, Record, TABLES, Table, format_time, is_sys_id};

/// One table's records, by `sys_id`.
#[derive(Debug, Default)]
struct Rows {
    rows: BTreeMap<String, Record>,
    next_number: u64,
}

/// Every table. Reads and writes go through [`State::read`] and [`State::write`].
#[derive(Debug)]
pub struct Db {
    tables: HashMap<&'static str, Rows>,
    rng: StdRng,
}

impl Lookup for Db {
    fn record(&self, table: &str, sys_id: &str) -> Option<&Record> {
        self.tables.get(table)?.rows.get(sys_id)
    }
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// No record with that `sys_id`.
    NotFound,
    /// The body is not usable (message, detail).
    Invalid(String, String),
}

impl Db {
    fn new(seed: u64) -> Db {
        Db {
            tables: TABLES.iter().map(|t| (t.name, Rows::default())).collect(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A fresh `sys_id`.
    pub fn new_sys_id(&mut self) -> String {
        const DIGITS: &[u8] = b"0123456789abcdef";
        (0..32)
            .map(|_| char::from(DIGITS[self.rng.gen_range(0..16)]))
            .collect()
    }

    /// The records of `table`, in `sys_id` order.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = &Record> {
        self.tables
            .get(table)
            .into_iter()
            .flat_map(|t| t.rows.values())
    }

    /// How many records `table` holds.
    pub fn count(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, |t| t.rows.len())
    }

    /// Resolves what a client wrote into a reference field: a `sys_id` of the target table, else
    /// a record whose display value (or `value`, or `user_name`) equals it, else the text as
    /// given (a broken reference, as ServiceNow keeps it).
    fn resolve_reference(&self, target: &str, given: &str) -> String {
        if given.is_empty() || self.record(target, given).is_some() {
            return given.to_string();
        }
        let Some(schema) = model::table(target) else {
            return given.to_string();
        };
        let wanted = given.to_lowercase();
        for key in [schema.display_field, "value", "user_name"] {
            if schema.field(key).is_none() {
                continue;
            }
            if let Some(r) = self
                .rows(target)
                .find(|r| r.get(key).is_some_and(|v| v.to_lowercase() == wanted))
                && let Some(id) = r.get("sys_id")
            {
                return id.clone();
            }
        }
        given.to_string()
    }

    /// Coerces a JSON value into the stored text of `field`.
    fn coerce(&self, field: &model::Field, value: &Value) -> String {
        let text = match value {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            // Clients echo reference objects back as they read them: take their value.
            Value::Object(o) => match o.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(other) if !other.is_null() => other.to_string(),
                _ => String::new(),
            },
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        };
        match field.kind {
            Kind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => "true".to_string(),
                "false" | "0" | "" => "false".to_string(),
                _ => text,
            },
            Kind::DateTime => model::parse_time(&text)
                .map(format_time)
                .unwrap_or_default(),
            Kind::Integer => text
                .trim()
                .parse::<i64>()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Kind::Reference(t) => self.resolve_reference(t, text.trim()),
            Kind::Text | Kind::Choice(_) => text,
        }
    }

    fn apply(&self, table: &'static Table, record: &mut Record, body: &Map<String, Value>) {
        for (key, value) in body {
            if key.starts_with("sys_") && key != "sys_tags" {
                continue;
            }
            // Columns the table does not have are ignored, as ServiceNow does.
            if let Some(field) = table.field(key) {
                record.insert(key.clone(), self.coerce(field, value));
            }
        }
    }

    /// Inserts a record. A valid unused `sys_id` in the body is kept; task tables get a
    /// `number`, `opened_at` and `opened_by` unless given.
    ///
    /// # Errors
    /// [`WriteError::Invalid`] when the body's `sys_id` is taken.
    pub fn insert(
        &mut self,
        table: &'static Table,
        body: &Map<String, Value>,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Record, WriteError> {
        let sys_id = match body.get("sys_id").and_then(Value::as_str) {
            Some(id) if is_sys_id(id) => {
                if self.record(table.name, id).is_some() {
                    return Err(WriteError::Invalid(
                        "Operation Failed".to_string(),
                        format!("Error during insert of {} ({id})", table.name),
                    ));
                }
                id.to_string()
            }
            _ => self.new_sys_id(),
        };
        let mut record: Record = table
            .all_fields()
            .map(|f| (f.name.to_string(), String::new()))
            .collect();
        for (k, v) in table.defaults {
            record.insert((*k).to_string(), (*v).to_string());
        }
        if let Some(prefix) = table.number_prefix {
            let rows = self.tables.entry(table.name).or_default();
            rows.next_number += 1;
            record.insert(
                "number".to_string(),
                format!("{prefix}{:07}", 10_000 + rows.next_number),
            );
            record.insert("opened_at".to_string(), format_time(now));
            let opener = self
                .rows("sys_user")
                .find(|u| u.get("user_name").is_some_and(|n| n == user))
                .and_then(|u| u.get("sys_id").cloned())
                .unwrap_or_default();
            record.insert("opened_by".to_string(), opener);
        }
        self.apply(table, &mut record, body);
        let stamp = format_time(now);
        record.insert("sys_id".to_string(), sys_id.clone());
        record.insert("sys_created_on".to_string(), stamp.clone());
        record.insert("sys_updated_on".to_string(), stamp);
        record.insert("sys_created_by".to_string(), user.to_string());
        record.insert("sys_updated_by".to_string(), user.to_string());
        record.insert("sys_mod_count".to_string(), "0".to_string());
        self.tables
            .entry(table.name)
            .or_default()
            .rows
            .insert(sys_id, record.clone());
        Ok(record)
    }

    /// Updates the columns the body names.
    ///
    /// # Errors
    /// [`WriteError::NotFound`].
    pub fn update(
        &mut self,
        table: &'static Table,
        sys_id: &str,
        body: &Map<String, Value>,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Record, WriteError> {
        let mut record = self
            .record(table.name, sys_id)
            .cloned()
            .ok_or(WriteError::NotFound)?;
        self.apply(table, &mut record, body);
        let count = record
            .get("sys_mod_count")
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0);
        record.insert("sys_mod_count".to_string(), (count + 1).to_string());
        record.insert("sys_updated_on".to_string(), format_time(now));
        record.insert("sys_updated_by".to_string(), user.to_string());
        if let Some(rows) = self.tables.get_mut(table.name) {
            rows.rows.insert(sys_id.to_string(), record.clone());
        }
        Ok(record)
    }

    /// Deletes a record.
    ///
    /// # Errors
    /// [`WriteError::NotFound`].
    pub fn delete(&mut self, table: &str, sys_id: &str) -> Result<(), WriteError> {
        self.tables
            .get_mut(table)
            .and_then(|t| t.rows.remove(sys_id))
            .map(|_| ())
            .ok_or(WriteError::NotFound)
    }

    /// Inserts a record with fixed system times (seed data).
    fn seed_record(
        &mut self,
        table: &'static Table,
        fields: Value,
        user: &str,
        created: DateTime<Utc>,
        updated: DateTime<Utc>,
    ) -> String {
        let body = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let Ok(mut record) = self.insert(table, &body, user, created) else {
            return String::new();
        };
        record.insert("sys_updated_on".to_string(), format_time(updated));
        let id = record.get("sys_id").cloned().unwrap_or_default();
        if let Some(rows) = self.tables.get_mut(table.name) {
            rows.rows.insert(id.clone(), record);
        }
        id
    }
}

/// The instance's data.
#[derive(Debug)]
pub struct State {
    db: Mutex<Db>,
}

impl State {
    /// An instance with its users and observable types (and nothing else).
    pub fn new(seed: u64, api_user: &str, now: DateTime<Utc>) -> State {
        let state = State {
            db: Mutex::new(Db::new(seed)),
        };
        state.write(|db| seed_reference(db, api_user, now));
        state
    }

    fn lock(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with read access to every table.
    pub fn read<R>(&self, f: impl FnOnce(&Db) -> R) -> R {
        f(&self.lock())
    }

    /// Runs `f` with write access to every table.
    pub fn write<R>(&self, f: impl FnOnce(&mut Db) -> R) -> R {
        f(&mut self.lock())
    }

    /// Every table's records (raw values).
    pub fn snapshot(&self) -> Value {
        self.read(|db| {
            let mut tables = Map::new();
            for t in TABLES {
                let rows: Vec<&Record> = db.rows(t.name).collect();
                tables.insert(t.name.to_string(), json!(rows));
            }
            json!({"tables": tables})
        })
    }

    /// Forgets the observables and incidents (users and observable types stay).
    pub fn clear(&self) {
        self.write(|db| {
            for name in model::DATA_TABLES {
                if let Some(t) = db.tables.get_mut(name) {
                    t.rows.clear();
                }
            }
        });
    }

    /// Pre-fills `records` observables and `incidents` records in each incident table, created
    /// over the last 30 days.
    pub fn seed(&self, records: usize, incidents: usize, now: DateTime<Utc>) {
        self.write(|db| seed_data(db, records, incidents, now));
    }
}

/// `(name, value, description)` of each observable type.
pub const OBSERVABLE_TYPES: &[(&str, &str, &str)] = &[
    ("MD5", "MD5", "MD5 file hash"),
    ("SHA1", "SHA1", "SHA-1 file hash"),
    ("SHA256", "SHA256", "SHA-256 file hash"),
    ("URL", "URL", "Uniform resource locator"),
    ("IPv4 address", "ipv4-addr", "IPv4 address"),
    ("IPv6 address", "ipv6-addr", "IPv6 address"),
    ("Domain name", "Domain name", "Domain name"),
    ("FQDN", "FQDN", "Fully qualified domain name"),
    ("Email address", "email-addr", "Email address"),
];

const USERS: &[(&str, &str, &str, &str)] = &[
    ("admin", "System", "Administrator", "System Administrator"),
    ("abel.tuter", "Abel", "Tuter", "Security Analyst"),
    ("beth.anglin", "Beth", "Anglin", "Incident Manager"),
    ("david.loo", "David", "Loo", "Security Engineer"),
    ("fred.luddy", "Fred", "Luddy", "Service Desk"),
];

fn schema(name: &str) -> &'static Table {
    model::table(name).unwrap_or(&TABLES[0])
}

fn seed_reference(db: &mut Db, api_user: &str, now: DateTime<Utc>) {
    let created = now - Duration::days(400);
    let users = schema("sys_user");
    let mut names: Vec<(String, String, String, String)> = USERS
        .iter()
        .map(|(u, f, l, t)| (u.to_string(), f.to_string(), l.to_string(), t.to_string()))
        .collect();
    if !names.iter().any(|(u, ..)| u == api_user) {
        names.push((
            api_user.to_string(),
            "iocx".to_string(),
            "Integration".to_string(),
            "Integration user".to_string(),
        ));
    }
    for (user, first, last, title) in names {
        db.seed_record(
            users,
            json!({
                "user_name": user,
                "first_name": first,
                "last_name": last,
                "name": format!("{first} {last}"),
                "email": format!("{user}@example.com"),
                "title": title,
            }),
            "admin",
            created,
            created,
        );
    }
    let types = schema("sn_ti_observable_type");
    for (name, value, description) in OBSERVABLE_TYPES {
        db.seed_record(
            types,
            json!({"name": name, "value": value, "description": description}),
            "admin",
            created,
            created,
        );
    }
}

const WORDS: &[&str] = &[
    "secure", "login", "update", "cdn", "mail", "portal", "files", "cloud", "verify", "account",
];
const NOTES: &[&str] = &[
    "Seen in a phishing campaign against finance",
    "Reported by the threat intelligence feed",
    "Observed in EDR telemetry on two hosts",
    "Shared by Netskope Cloud Exchange",
    "",
];
const SHORT_DESCRIPTIONS: &[&str] = &[
    "Malware detected on endpoint",
    "Phishing email reported by user",
    "Suspicious outbound connection to known C2",
    "Credential stuffing against VPN portal",
    "Ransomware note found on file share",
    "Unusual PowerShell execution",
];

fn pick(rng: &mut StdRng, items: &[&'static str]) -> &'static str {
    items[rng.gen_range(0..items.len())]
}

fn hex(rng: &mut StdRng, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdef";
    (0..len)
        .map(|_| char::from(DIGITS[rng.gen_range(0..16)]))
        .collect()
}

fn seed_data(db: &mut Db, records: usize, incidents: usize, now: DateTime<Utc>) {
    let type_ids: Vec<(String, String)> = db
        .rows("sn_ti_observable_type")
        .map(|r| {
            (
                r.get("value").cloned().unwrap_or_default(),
                r.get("sys_id").cloned().unwrap_or_default(),
            )
        })
        .collect();
    let type_id = |v: &str| {
        type_ids
            .iter()
            .find(|(value, _)| value == v)
            .map(|(_, id)| id.clone())
            .unwrap_or_default()
    };
    let observables = schema("sn_ti_observable");
    let span = Duration::days(30).num_seconds();
    for i in 0..records {
        let created = now - Duration::seconds(db.rng.gen_range(3600..span));
        let updated =
            created + Duration::seconds(db.rng.gen_range(0..(now - created).num_seconds().max(1)));
        let word = WORDS[db.rng.gen_range(0..WORDS.len())];
        let (kind, value) = match i % 8 {
            0 => ("MD5", hex(&mut db.rng, 32)),
            1 | 2 => ("SHA256", hex(&mut db.rng, 64)),
            3 => (
                "URL",
                format!("https://{word}-{i}.example.com/{}", hex(&mut db.rng, 6)),
            ),
            4 => ("ipv4-addr", format!("203.0.113.{}", i % 254 + 1)),
            5 => ("Domain name", format!("{word}-{i}.example.net")),
            6 => ("SHA1", hex(&mut db.rng, 40)),
            _ => ("ipv6-addr", format!("2001:db8::{:x}", i + 1)),
        };
        let finding = pick(
            &mut db.rng,
            &["Malicious", "Suspicious", "Unknown", "Clean"],
        );
        let note = NOTES[db.rng.gen_range(0..NOTES.len())];
        db.seed_record(
            observables,
            json!({
                "value": value,
                "type": type_id(kind),
                "notes": note,
                "finding": finding,
                "source": "Threat Intelligence",
            }),
            "abel.tuter",
            created,
            updated,
        );
    }
    let user_ids: Vec<String> = db
        .rows("sys_user")
        .filter_map(|r| r.get("sys_id").cloned())
        .collect();
    for name in ["sn_si_incident", "incident"] {
        let table = schema(name);
        for _ in 0..incidents {
            let created = now - Duration::seconds(db.rng.gen_range(3600..span));
            let updated = created + Duration::seconds(db.rng.gen_range(0..3600));
            let short = SHORT_DESCRIPTIONS[db.rng.gen_range(0..SHORT_DESCRIPTIONS.len())];
            let user = user_ids
                .get(db.rng.gen_range(0..user_ids.len().max(1)))
                .cloned()
                .unwrap_or_default();
            let fields = if name == "incident" {
                json!({
                    "short_description": short,
                    "description": format!("{short}. Raised from security tooling."),
                    "state": pick(&mut db.rng, &["1", "2", "6"]),
                    "impact": pick(&mut db.rng, &["1", "2", "3"]),
                    "urgency": pick(&mut db.rng, &["1", "2", "3"]),
                    "priority": pick(&mut db.rng, &["2", "3", "4"]),
                    "category": "network",
                    "caller_id": user,
                    "contact_type": "monitoring",
                })
            } else {
                json!({
                    "short_description": short,
                    "description": format!("{short}. Raised from security tooling."),
                    "state": pick(&mut db.rng, &["10", "16", "18"]),
                    "priority": pick(&mut db.rng, &["1", "2", "3", "4"]),
                    "severity": pick(&mut db.rng, &["1", "2", "3"]),
                    "risk_score": db.rng.gen_range(10..100),
                    "category": "malicious_code",
                    "assigned_to": user,
                    "contact_type": "siem",
                })
            };
            db.seed_record(table, fields, "beth.anglin", created, updated);
        }
    }
}
