//! Decoding rows of either backend into model values, once.
//!
//! Both schemas use the same column names and order in the `SELECT` lists below, so one
//! decoder per row shape serves SQLite and PostgreSQL alike.

use iocx_model::{
    Aggregate, Attributes, Indicator, Kind, Observation, Reputation, Severity, TagSet, Timestamp,
};

use crate::error::{Result, StoreError};
use crate::types::IndicatorDetail;

/// The indicator columns read by [`indicator_detail`], in order.
pub(crate) const INDICATOR_COLUMNS: &str = "id, kind, value, severity, reputation, safe, hits, first_seen, last_seen, \
     sources, expires, aged_at, tagset, user_tagset, user_safe, changed";

/// The same columns qualified with the table alias `i`.
pub(crate) const INDICATOR_COLUMNS_I: &str = "i.id, i.kind, i.value, i.severity, i.reputation, i.safe, i.hits, \
     i.first_seen, i.last_seen, i.sources, i.expires, i.aged_at, i.tagset, i.user_tagset, i.user_safe, i.changed";

/// The observation columns read by [`observation`], in order.
pub(crate) const OBSERVATION_COLUMNS: &str = "indicator_id, source_id, severity, reputation, safe, echo, hits, \
     first_seen, last_seen, expires, tagset, comment, link";

/// Typed access to a row of either backend.
pub(crate) trait RowAccess {
    fn int(&self, idx: usize) -> Result<i64>;
    fn opt_int(&self, idx: usize) -> Result<Option<i64>>;
    fn text(&self, idx: usize) -> Result<String>;
    fn opt_text(&self, idx: usize) -> Result<Option<String>>;
}

impl RowAccess for rusqlite::Row<'_> {
    fn int(&self, idx: usize) -> Result<i64> {
        Ok(self.get(idx)?)
    }
    fn opt_int(&self, idx: usize) -> Result<Option<i64>> {
        Ok(self.get(idx)?)
    }
    fn text(&self, idx: usize) -> Result<String> {
        Ok(self.get(idx)?)
    }
    fn opt_text(&self, idx: usize) -> Result<Option<String>> {
        Ok(self.get(idx)?)
    }
}

impl RowAccess for postgres::Row {
    fn int(&self, idx: usize) -> Result<i64> {
        self.opt_int(idx)?.ok_or_else(|| StoreError::Corrupt {
            table: "row",
            detail: format!("column {idx} is NULL"),
        })
    }
    fn opt_int(&self, idx: usize) -> Result<Option<i64>> {
        use postgres::types::Type;
        let ty = self.columns().get(idx).map(|c| c.type_().clone());
        Ok(match ty {
            Some(Type::INT2) => self.try_get::<_, Option<i16>>(idx)?.map(i64::from),
            Some(Type::INT4) => self.try_get::<_, Option<i32>>(idx)?.map(i64::from),
            _ => self.try_get::<_, Option<i64>>(idx)?,
        })
    }
    fn text(&self, idx: usize) -> Result<String> {
        Ok(self.try_get(idx)?)
    }
    fn opt_text(&self, idx: usize) -> Result<Option<String>> {
        Ok(self.try_get(idx)?)
    }
}

fn corrupt(table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { table, detail }
}

pub(crate) fn kind(code: i64) -> Result<Kind> {
    u8::try_from(code)
        .ok()
        .and_then(Kind::from_code)
        .ok_or_else(|| corrupt("indicator", format!("unknown kind code {code}")))
}

pub(crate) fn severity(code: i64) -> Result<Severity> {
    u8::try_from(code)
        .ok()
        .and_then(Severity::from_code)
        .ok_or_else(|| corrupt("indicator", format!("unknown severity code {code}")))
}

fn reputation(value: i64) -> Result<Reputation> {
    u8::try_from(value)
        .ok()
        .and_then(Reputation::new)
        .ok_or_else(|| corrupt("indicator", format!("reputation {value} out of range")))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Decodes an observation row (columns [`OBSERVATION_COLUMNS`] starting at `at`) into
/// `(indicator id, source id, observation)`.
pub(crate) fn observation(
    row: &(impl RowAccess + ?Sized),
    at: usize,
    tagset: &mut dyn FnMut(i64) -> Result<TagSet>,
) -> Result<(i64, i64, Observation)> {
    let attributes = Attributes {
        severity: severity(row.int(at + 2)?)?,
        reputation: row.opt_int(at + 3)?.map(reputation).transpose()?,
        safe: row.int(at + 4)? != 0,
        expires: row.opt_int(at + 9)?.map(Timestamp),
        tags: tagset(row.int(at + 10)?)?,
        comment: row.opt_text(at + 11)?,
        link: row.opt_text(at + 12)?,
    };
    Ok((
        row.int(at)?,
        row.int(at + 1)?,
        Observation {
            attributes,
            echo: row.int(at + 5)? != 0,
            hits: count(row.int(at + 6)?),
            first_seen: Timestamp(row.int(at + 7)?),
            last_seen: Timestamp(row.int(at + 8)?),
        },
    ))
}

/// Decodes an indicator row (columns [`INDICATOR_COLUMNS`] starting at 0).
pub(crate) fn indicator_detail(
    row: &(impl RowAccess + ?Sized),
    now: Timestamp,
    tagset: &mut dyn FnMut(i64) -> Result<TagSet>,
) -> Result<IndicatorDetail> {
    let user_tags = tagset(row.int(13)?)?;
    let aggregate = Aggregate {
        severity: severity(row.int(3)?)?,
        reputation: reputation(row.int(4)?)?,
        safe: row.int(5)? != 0,
        hits: count(row.int(6)?),
        first_seen: Timestamp(row.int(7)?),
        last_seen: Timestamp(row.int(8)?),
        sources: u32::try_from(row.int(9)?).unwrap_or(0),
        expires: row.opt_int(10)?.map(Timestamp),
        aged_at: Timestamp(row.int(11)?),
        tags: tagset(row.int(12)?)?,
    };
    Ok(IndicatorDetail {
        id: row.int(0)?,
        indicator: Indicator::new(kind(row.int(1)?)?, row.text(2)?),
        active: aggregate.active_at(now),
        aggregate,
        user_tags: user_tags.into(),
        user_safe: row.opt_int(14)?.map(|v| v != 0),
        changed: Timestamp(row.int(15)?),
        observations: Vec::new(),
    })
}
