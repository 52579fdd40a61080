//! The queries of share runs, for both backends.

use iocx_model::{Indicator, Timestamp};

use crate::db::{Db, Val};
use crate::error::{Result, StoreError};
use crate::rows::{self, RowAccess};
use crate::types::*;

fn candidate(r: &dyn RowAccess, sharing_id: i64, now: Timestamp) -> Result<Candidate> {
    let expires = r.opt_int(7)?.map(Timestamp);
    let aged_at = Timestamp(r.int(11)?);
    let delivery = match r.opt_text(13)? {
        None => None,
        Some(state) => Some(Delivery {
            sharing_id,
            indicator_id: r.int(0)?,
            state: DeliveryState::from_name(&state).ok_or_else(|| StoreError::Corrupt {
                table: "delivery",
                detail: format!("unknown state {state:?}"),
            })?,
            version: r.int(14)?,
            reason: r.opt_text(15)?,
            attempts: r.int(16)?,
            next_attempt_at: r.opt_int(17)?.map(Timestamp),
            updated_at: Timestamp(r.int(18)?),
        }),
    };
    Ok(Candidate {
        id: r.int(0)?,
        indicator: Indicator::new(rows::kind(r.int(1)?)?, r.text(2)?),
        severity: rows::severity(r.int(3)?)?,
        reputation: u8::try_from(r.int(4)?).unwrap_or(5),
        safe: r.int(5)? != 0,
        tagset: r.int(6)?,
        expires,
        last_seen: Timestamp(r.int(8)?),
        hits: u64::try_from(r.int(9)?).unwrap_or(0),
        active: aged_at > now && expires.is_none_or(|e| e > now),
        from_destination: r.int(10)? != 0,
        delivery,
    })
}

/// Streams the candidates of a share run, in no particular order (so that the planner may
/// read them through an index without sorting); `each` returns false to stop.
pub(crate) fn share_candidates(
    db: &mut impl Db,
    q: &CandidateQuery,
    each: &mut dyn FnMut(Candidate) -> Result<bool>,
) -> Result<()> {
    // Integers of our own go in as literals, so the rule's placeholders keep their numbers.
    let now = q.now.0;
    let mut clauses = vec![format!("({})", q.filter_sql)];
    if !q.include_inactive {
        clauses.push(format!(
            "i.aged_at > {now} AND (i.expires IS NULL OR i.expires > {now})"
        ));
    }
    if !q.source_ids.is_empty() {
        let ids: Vec<String> = q.source_ids.iter().map(i64::to_string).collect();
        clauses.push(format!(
            "EXISTS (SELECT 1 FROM observation so WHERE so.indicator_id = i.id AND so.echo = 0 AND so.source_id IN ({}))",
            ids.join(",")
        ));
    }
    if let Some(since) = q.since {
        clauses.push(format!(
            "i.seen_day >= {} AND i.last_seen >= {}",
            since.0.div_euclid(86_400),
            since.0
        ));
    }
    let from_dest = match q.destination_source_id {
        Some(src) => format!(
            "EXISTS (SELECT 1 FROM observation eo WHERE eo.indicator_id = i.id AND eo.source_id = {src} AND eo.echo = 0)"
        ),
        None => "0 = 1".to_string(),
    };
    let sql = format!(
        "SELECT i.id, i.kind, i.value, i.severity, i.reputation, i.safe, i.tagset, i.expires, i.last_seen, i.hits, \
         CASE WHEN {from_dest} THEN 1 ELSE 0 END, i.aged_at, i.first_seen, \
         d.state, d.version, d.reason, d.attempts, d.next_attempt_at, d.updated_at \
         FROM indicator i LEFT JOIN delivery d ON d.sharing_id = {sid} AND d.indicator_id = i.id \
         WHERE {}",
        clauses.join(" AND "),
        sid = q.sharing_id
    );
    let params = vals(&q.filter_params);
    let mut stop = false;
    db.each(&sql, &params, &mut |r| {
        if !stop && !each(candidate(r, q.sharing_id, q.now)?)? {
            stop = true;
        }
        Ok(())
    })
}

fn vals(params: &[SqlValue]) -> Vec<Val<'_>> {
    params
        .iter()
        .map(|p| match p {
            SqlValue::Int(i) => Val::I(*i),
            SqlValue::Text(t) => Val::T(t),
        })
        .collect()
}

/// Ids selected by a filter, after `after`, at most `limit`.
pub(crate) fn select_ids(
    db: &mut impl Db,
    filter: &str,
    params: &[SqlValue],
    after: i64,
    limit: i64,
) -> Result<Vec<i64>> {
    db.all(
        &format!("SELECT i.id FROM indicator i WHERE i.id > {after} AND ({filter}) ORDER BY i.id LIMIT {}", limit.max(0)),
        &vals(params),
        |r| r.int(0),
    )
}

/// How many indicators a filter selects.
pub(crate) fn count_matching(db: &mut impl Db, filter: &str, params: &[SqlValue]) -> Result<u64> {
    Ok(db
        .one(
            &format!("SELECT count(*) FROM indicator i WHERE {filter}"),
            &vals(params),
            |r| r.int(0),
        )?
        .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// `(id, changed)` of indicators selected by a filter, in order of `(changed, id)` after
/// `after`, at most `limit`: the pages of a TAXII collection or a change feed.
///
/// Two queries, each an index seek: the rest of the `changed` second the position is in (a
/// bulk import writes millions of indicators in one second), then the later seconds. (Neither
/// database seeks a composite index on a row-value comparison when the first column is equal.)
pub(crate) fn select_changed(
    db: &mut impl Db,
    filter: &str,
    params: &[SqlValue],
    after: (i64, i64),
    limit: i64,
) -> Result<Vec<(i64, i64)>> {
    let (changed, id) = after;
    let limit = limit.max(0);
    let row = |r: &dyn RowAccess| Ok((r.int(0)?, r.int(1)?));
    let mut out = db.all(
        &format!(
            "SELECT i.id, i.changed FROM indicator i WHERE i.changed = {changed} AND i.id > {id} \
             AND ({filter}) ORDER BY i.id LIMIT {limit}"
        ),
        &vals(params),
        row,
    )?;
    let rest = limit - out.len() as i64;
    if rest > 0 {
        out.extend(db.all(
            &format!(
                "SELECT i.id, i.changed FROM indicator i WHERE i.changed > {changed} \
                 AND ({filter}) ORDER BY i.changed, i.id LIMIT {rest}"
            ),
            &vals(params),
            row,
        )?);
    }
    Ok(out)
}

/// The latest material change in the store (0 when empty): cheap with the `changed` index.
pub(crate) fn last_change(db: &mut impl Db) -> Result<i64> {
    Ok(db
        .one("SELECT max(changed) FROM indicator", &[], |r| r.opt_int(0))?
        .flatten()
        .unwrap_or(0))
}
