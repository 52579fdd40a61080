//! Rules, allow-lists, sharings, the delivery ledger and the outbox: written once, for both
//! backends (see [`crate::db`]).

use std::collections::BTreeMap;

use iocx_model::Timestamp;

use crate::db::{Db, Val};
use crate::error::{Result, StoreError};
use crate::rows::RowAccess;
use crate::types::*;

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Task(format!("encoding JSON: {e}")))
}

fn parse_json<T: serde::de::DeserializeOwned>(table: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

// ----- rules -----

const RULE_COLUMNS: &str =
    "id, name, expression, description, exclusions, muted, created_at, updated_at";

fn rule_row(r: &dyn RowAccess) -> Result<RuleRow> {
    Ok(RuleRow {
        id: r.int(0)?,
        name: r.text(1)?,
        expression: r.text(2)?,
        description: r.text(3)?,
        exclusions: parse_json("rule", &r.text(4)?)?,
        muted: r.int(5)? != 0,
        created_at: Timestamp(r.int(6)?),
        updated_at: Timestamp(r.int(7)?),
    })
}

/// The rule called `name`.
pub(crate) fn rule(db: &mut impl Db, name: &str) -> Result<Option<RuleRow>> {
    db.one(
        &format!("SELECT {RULE_COLUMNS} FROM rule WHERE name = $1"),
        &[Val::T(name)],
        rule_row,
    )
}

/// Every rule.
pub(crate) fn rules(db: &mut impl Db) -> Result<Vec<RuleRow>> {
    db.all(
        &format!("SELECT {RULE_COLUMNS} FROM rule ORDER BY name"),
        &[],
        rule_row,
    )
}

/// Creates or replaces a rule (by name).
pub(crate) fn save_rule(
    db: &mut impl Db,
    name: &str,
    expression: &str,
    description: &str,
    exclusions: &[String],
    muted: bool,
) -> Result<RuleRow> {
    let now = Timestamp::now().0;
    let ex = json(&exclusions)?;
    let changed = db.exec(
        "UPDATE rule SET expression = $2, description = $3, exclusions = $4, muted = $5, updated_at = $6 WHERE name = $1",
        &[Val::T(name), Val::T(expression), Val::T(description), Val::T(&ex), Val::I(i64::from(muted)), Val::I(now)],
    )?;
    if changed == 0 {
        db.exec(
            "INSERT INTO rule (name, expression, description, exclusions, muted, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
            &[Val::T(name), Val::T(expression), Val::T(description), Val::T(&ex), Val::I(i64::from(muted)), Val::I(now)],
        )?;
    }
    rule(db, name)?.ok_or_else(|| StoreError::NotFound {
        what: "rule",
        name: name.into(),
    })
}

/// Deletes a rule unless a sharing uses it.
pub(crate) fn delete_rule(db: &mut impl Db, name: &str) -> Result<bool> {
    let users = db.all(
        "SELECT s.name FROM sharing s JOIN rule r ON r.id = s.rule_id WHERE r.name = $1 ORDER BY s.name",
        &[Val::T(name)],
        |r| r.text(0),
    )?;
    if !users.is_empty() {
        return Err(StoreError::Conflict(format!(
            "rule {name:?} is used by the sharing(s) {}; change them first",
            users.join(", ")
        )));
    }
    Ok(db.exec("DELETE FROM rule WHERE name = $1", &[Val::T(name)])? == 1)
}

// ----- allow-lists -----

const LIST_COLUMNS: &str = "id, name, description, builtin, created_at, updated_at";

fn list_row(r: &dyn RowAccess) -> Result<AllowListRow> {
    Ok(AllowListRow {
        id: r.int(0)?,
        name: r.text(1)?,
        description: r.text(2)?,
        builtin: r.int(3)? != 0,
        entries: Vec::new(),
        created_at: Timestamp(r.int(4)?),
        updated_at: Timestamp(r.int(5)?),
    })
}

fn entries(db: &mut impl Db, list_id: i64) -> Result<Vec<AllowEntry>> {
    db.all(
        "SELECT entry, comment FROM allowlist_entry WHERE allowlist_id = $1 ORDER BY entry",
        &[Val::I(list_id)],
        |r| {
            Ok(AllowEntry {
                entry: r.text(0)?,
                comment: r.text(1)?,
            })
        },
    )
}

/// The allow-list called `name`, with its entries.
pub(crate) fn allowlist(db: &mut impl Db, name: &str) -> Result<Option<AllowListRow>> {
    let Some(mut list) = db.one(
        &format!("SELECT {LIST_COLUMNS} FROM allowlist WHERE name = $1"),
        &[Val::T(name)],
        list_row,
    )?
    else {
        return Ok(None);
    };
    list.entries = entries(db, list.id)?;
    Ok(Some(list))
}

/// Every allow-list (entries only when asked).
pub(crate) fn allowlists(db: &mut impl Db, with_entries: bool) -> Result<Vec<AllowListRow>> {
    let mut lists = db.all(
        &format!("SELECT {LIST_COLUMNS} FROM allowlist ORDER BY name"),
        &[],
        list_row,
    )?;
    if with_entries {
        for l in &mut lists {
            l.entries = entries(db, l.id)?;
        }
    }
    Ok(lists)
}

/// Creates an allow-list (or updates its description).
pub(crate) fn save_allowlist(
    db: &mut impl Db,
    name: &str,
    description: &str,
    builtin: bool,
) -> Result<AllowListRow> {
    let now = Timestamp::now().0;
    let changed = db.exec(
        "UPDATE allowlist SET description = $2, updated_at = $3 WHERE name = $1",
        &[Val::T(name), Val::T(description), Val::I(now)],
    )?;
    if changed == 0 {
        db.exec(
            "INSERT INTO allowlist (name, description, builtin, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
            &[Val::T(name), Val::T(description), Val::I(i64::from(builtin)), Val::I(now)],
        )?;
    }
    allowlist(db, name)?.ok_or_else(|| StoreError::NotFound {
        what: "allow-list",
        name: name.into(),
    })
}

/// Adds entries (existing ones keep their comment); returns how many were new.
pub(crate) fn add_allow_entries(db: &mut impl Db, name: &str, add: &[AllowEntry]) -> Result<u64> {
    let list = allowlist(db, name)?.ok_or_else(|| StoreError::NotFound {
        what: "allow-list",
        name: name.into(),
    })?;
    let mut n = 0;
    for e in add {
        n += db.exec(
            "INSERT INTO allowlist_entry (allowlist_id, entry, comment) VALUES ($1, $2, $3) ON CONFLICT (allowlist_id, entry) DO NOTHING",
            &[Val::I(list.id), Val::T(&e.entry), Val::T(&e.comment)],
        )?;
    }
    db.exec(
        "UPDATE allowlist SET updated_at = $2 WHERE id = $1",
        &[Val::I(list.id), Val::I(Timestamp::now().0)],
    )?;
    Ok(n)
}

/// Removes entries; returns how many existed.
pub(crate) fn remove_allow_entries(db: &mut impl Db, name: &str, remove: &[String]) -> Result<u64> {
    let list = allowlist(db, name)?.ok_or_else(|| StoreError::NotFound {
        what: "allow-list",
        name: name.into(),
    })?;
    let mut n = 0;
    for e in remove {
        n += db.exec(
            "DELETE FROM allowlist_entry WHERE allowlist_id = $1 AND entry = $2",
            &[Val::I(list.id), Val::T(e)],
        )?;
    }
    db.exec(
        "UPDATE allowlist SET updated_at = $2 WHERE id = $1",
        &[Val::I(list.id), Val::I(Timestamp::now().0)],
    )?;
    Ok(n)
}

/// Deletes an allow-list unless a rule excludes with it.
pub(crate) fn delete_allowlist(db: &mut impl Db, name: &str) -> Result<bool> {
    let users: Vec<String> = rules(db)?
        .into_iter()
        .filter(|r| r.exclusions.iter().any(|e| e == name))
        .map(|r| r.name)
        .collect();
    if !users.is_empty() {
        return Err(StoreError::Conflict(format!(
            "allow-list {name:?} is used by the rule(s) {}; change them first",
            users.join(", ")
        )));
    }
    let Some(list) = allowlist(db, name)? else {
        return Ok(false);
    };
    db.exec(
        "DELETE FROM allowlist_entry WHERE allowlist_id = $1",
        &[Val::I(list.id)],
    )?;
    Ok(db.exec("DELETE FROM allowlist WHERE id = $1", &[Val::I(list.id)])? == 1)
}

// ----- sharings -----

const SHARING_SELECT: &str = "SELECT s.id, s.name, s.description, s.enabled, s.sources, r.name, c.name, s.target, s.params, \
     s.interval_secs, s.after_pull, s.created_at, s.updated_at FROM sharing s \
     JOIN rule r ON r.id = s.rule_id JOIN configuration c ON c.id = s.destination_id";

fn sharing_row(r: &dyn RowAccess) -> Result<SharingRow> {
    Ok(SharingRow {
        id: r.int(0)?,
        name: r.text(1)?,
        description: r.text(2)?,
        enabled: r.int(3)? != 0,
        sources: parse_json("sharing", &r.text(4)?)?,
        rule: r.text(5)?,
        destination: r.text(6)?,
        target: r.text(7)?,
        params: parse_json("sharing", &r.text(8)?)?,
        interval_secs: r.int(9)?,
        after_pull: r.int(10)? != 0,
        created_at: Timestamp(r.int(11)?),
        updated_at: Timestamp(r.int(12)?),
    })
}

/// The sharing called `name`.
pub(crate) fn sharing(db: &mut impl Db, name: &str) -> Result<Option<SharingRow>> {
    db.one(
        &format!("{SHARING_SELECT} WHERE s.name = $1"),
        &[Val::T(name)],
        sharing_row,
    )
}

/// Every sharing.
pub(crate) fn sharings(db: &mut impl Db) -> Result<Vec<SharingRow>> {
    db.all(
        &format!("{SHARING_SELECT} ORDER BY s.name"),
        &[],
        sharing_row,
    )
}

fn id_of(db: &mut impl Db, table: &'static str, what: &'static str, name: &str) -> Result<i64> {
    db.one(
        &format!("SELECT id FROM {table} WHERE name = $1"),
        &[Val::T(name)],
        |r| r.int(0),
    )?
    .ok_or_else(|| StoreError::NotFound {
        what,
        name: name.into(),
    })
}

/// Creates a sharing, or replaces the one called `existing`.
pub(crate) fn save_sharing(
    db: &mut impl Db,
    existing: Option<&str>,
    spec: &SharingSpec,
) -> Result<SharingRow> {
    let now = Timestamp::now().0;
    let rule_id = id_of(db, "rule", "rule", &spec.rule)?;
    let destination_id = id_of(db, "configuration", "configuration", &spec.destination)?;
    let sources = json(&spec.sources)?;
    let params = json(&spec.params)?;
    let vals = [
        Val::T(&spec.name),
        Val::T(&spec.description),
        Val::I(i64::from(spec.enabled)),
        Val::T(&sources),
        Val::I(rule_id),
        Val::I(destination_id),
        Val::T(&spec.target),
        Val::T(&params),
        Val::I(spec.interval_secs),
        Val::I(i64::from(spec.after_pull)),
        Val::I(now),
    ];
    match existing {
        Some(old) => {
            let mut v = vals.to_vec();
            v.push(Val::T(old));
            let n = db.exec(
                "UPDATE sharing SET name = $1, description = $2, enabled = $3, sources = $4, rule_id = $5, destination_id = $6, \
                 target = $7, params = $8, interval_secs = $9, after_pull = $10, updated_at = $11 WHERE name = $12",
                &v,
            )?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "sharing",
                    name: old.into(),
                });
            }
        }
        None => {
            if sharing(db, &spec.name)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a sharing named {:?} exists already",
                    spec.name
                )));
            }
            db.exec(
                "INSERT INTO sharing (name, description, enabled, sources, rule_id, destination_id, target, params, \
                 interval_secs, after_pull, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                &vals,
            )?;
        }
    }
    sharing(db, &spec.name)?.ok_or_else(|| StoreError::NotFound {
        what: "sharing",
        name: spec.name.clone(),
    })
}

/// Deletes a sharing with its ledger, outbox and job.
pub(crate) fn delete_sharing(db: &mut impl Db, name: &str) -> Result<bool> {
    let Some(s) = sharing(db, name)? else {
        return Ok(false);
    };
    db.exec(
        "DELETE FROM delivery WHERE sharing_id = $1",
        &[Val::I(s.id)],
    )?;
    db.exec("DELETE FROM outbox WHERE sharing_id = $1", &[Val::I(s.id)])?;
    db.exec(
        "DELETE FROM job WHERE name = $1",
        &[Val::T(&format!("share:{name}"))],
    )?;
    Ok(db.exec("DELETE FROM sharing WHERE id = $1", &[Val::I(s.id)])? == 1)
}

// ----- ledger -----

fn delivery_row(r: &dyn RowAccess) -> Result<Delivery> {
    let state = r.text(2)?;
    Ok(Delivery {
        sharing_id: r.int(0)?,
        indicator_id: r.int(1)?,
        state: DeliveryState::from_name(&state).ok_or_else(|| StoreError::Corrupt {
            table: "delivery",
            detail: format!("unknown state {state:?}"),
        })?,
        version: r.int(3)?,
        reason: r.opt_text(4)?,
        attempts: r.int(5)?,
        next_attempt_at: r.opt_int(6)?.map(Timestamp),
        updated_at: Timestamp(r.int(7)?),
    })
}

const DELIVERY_COLUMNS: &str =
    "sharing_id, indicator_id, state, version, reason, attempts, next_attempt_at, updated_at";

/// The ledger rows of `sharing_id` for these indicators.
pub(crate) fn deliveries_of(
    db: &mut impl Db,
    sharing_id: i64,
    ids: &[i64],
) -> Result<BTreeMap<i64, Delivery>> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let rows = db.all(
            &format!("SELECT {DELIVERY_COLUMNS} FROM delivery WHERE sharing_id = $1 AND indicator_id IN ({})", list.join(",")),
            &[Val::I(sharing_id)],
            delivery_row,
        )?;
        out.extend(rows.into_iter().map(|d| (d.indicator_id, d)));
    }
    Ok(out)
}

/// Every ledger row of an indicator (for explain and the API).
pub(crate) fn deliveries_for_indicator(
    db: &mut impl Db,
    indicator_id: i64,
) -> Result<Vec<Delivery>> {
    db.all(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM delivery WHERE indicator_id = $1 ORDER BY sharing_id"
        ),
        &[Val::I(indicator_id)],
        delivery_row,
    )
}

/// Writes ledger rows.
pub(crate) fn record_deliveries(
    db: &mut impl Db,
    destination_id: i64,
    rows: &[Delivery],
) -> Result<()> {
    for d in rows {
        db.exec(
            "INSERT INTO delivery (sharing_id, indicator_id, destination_id, state, version, reason, attempts, next_attempt_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (sharing_id, indicator_id) DO UPDATE SET state = excluded.state, version = excluded.version, \
             reason = excluded.reason, attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at, \
             updated_at = excluded.updated_at",
            &[
                Val::I(d.sharing_id),
                Val::I(d.indicator_id),
                Val::I(destination_id),
                Val::T(d.state.as_str()),
                Val::I(d.version),
                Val::OptT(d.reason.as_deref()),
                Val::I(d.attempts),
                Val::OptI(d.next_attempt_at.map(|t| t.0)),
                Val::I(d.updated_at.0),
            ],
        )?;
    }
    Ok(())
}

/// Every ledger row of a sharing in the given states, in indicator order, handed to `each`.
pub(crate) fn deliveries_in_states(
    db: &mut impl Db,
    sharing_id: i64,
    states: &[DeliveryState],
    each: &mut dyn FnMut(Delivery) -> Result<()>,
) -> Result<()> {
    let list: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    db.each(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM delivery WHERE sharing_id = $1 AND state IN ({}) ORDER BY indicator_id",
            list.join(",")
        ),
        &[Val::I(sharing_id)],
        &mut |r| each(delivery_row(r)?),
    )
}

/// Ledger counts of a sharing: by state, and by state and reason.
pub(crate) fn delivery_counts(
    db: &mut impl Db,
    sharing_id: i64,
) -> Result<Vec<(DeliveryState, Option<String>, u64)>> {
    db.all(
        "SELECT state, reason, count(*) FROM delivery WHERE sharing_id = $1 GROUP BY state, reason ORDER BY state, reason",
        &[Val::I(sharing_id)],
        |r| {
            let s = r.text(0)?;
            Ok((
                DeliveryState::from_name(&s).ok_or_else(|| StoreError::Corrupt { table: "delivery", detail: s.clone() })?,
                r.opt_text(1)?,
                u64::try_from(r.int(2)?).unwrap_or(0),
            ))
        },
    )
}

// ----- outbox -----

/// Writes a batch to the outbox.
pub(crate) fn outbox_put(db: &mut impl Db, sharing_id: i64, batch: &OutboxBatch) -> Result<()> {
    db.exec(
        "INSERT INTO outbox (sharing_id, batch, action, items, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[Val::I(sharing_id), Val::T(&batch.batch), Val::T(&batch.action), Val::T(&json(&batch.items)?), Val::I(batch.created_at.0)],
    )?;
    Ok(())
}

/// The outbox of a sharing, oldest first.
pub(crate) fn outbox(db: &mut impl Db, sharing_id: i64) -> Result<Vec<OutboxBatch>> {
    db.all(
        "SELECT batch, action, items, created_at FROM outbox WHERE sharing_id = $1 ORDER BY created_at, batch",
        &[Val::I(sharing_id)],
        |r| {
            Ok(OutboxBatch {
                batch: r.text(0)?,
                action: r.text(1)?,
                items: parse_json("outbox", &r.text(2)?)?,
                created_at: Timestamp(r.int(3)?),
            })
        },
    )
}

/// Removes a recorded batch from the outbox.
pub(crate) fn outbox_delete(db: &mut impl Db, sharing_id: i64, batch: &str) -> Result<()> {
    db.exec(
        "DELETE FROM outbox WHERE sharing_id = $1 AND batch = $2",
        &[Val::I(sharing_id), Val::T(batch)],
    )?;
    Ok(())
}
