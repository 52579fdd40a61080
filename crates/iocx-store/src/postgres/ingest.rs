//! [`WriteTx`] on a PostgreSQL transaction.

use iocx_model::{IndicatorKey, TagSet};
use postgres::Transaction;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use crate::cache::TagCache;
use crate::error::Result;
use crate::ingest::{
    AggRow, NewIndicator, ObsMeta, ObsRow, ObsState, RecomputeInput, Touch, WriteTx,
};
use crate::rows::{self, OBSERVATION_COLUMNS, RowAccess};
use crate::types::BatchOutcome;

pub(crate) struct PgTx<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    tags: &'t TagCache,
    learned: Vec<(i64, String)>,
}

impl<'t, 'c> PgTx<'t, 'c> {
    pub fn new(tx: &'t mut Transaction<'c>, tags: &'t TagCache) -> Self {
        PgTx {
            tx,
            tags,
            learned: Vec::new(),
        }
    }

    /// The transaction, for statements outside the ingest primitives.
    pub fn tx(&mut self) -> &mut Transaction<'c> {
        self.tx
    }

    pub fn into_learned(self) -> Vec<(i64, String)> {
        self.learned
    }

    fn tagset(&mut self, id: i64) -> Result<TagSet> {
        if let Some(t) = self.tags.set_of(id) {
            return Ok(t);
        }
        if let Some((_, joined)) = self.learned.iter().find(|(i, _)| *i == id) {
            return Ok(TagSet::from_joined(joined));
        }
        let joined: String = self
            .tx
            .query_one("SELECT tags FROM tagset WHERE id = $1", &[&id])?
            .get(0);
        Ok(TagSet::from_joined(&joined))
    }
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn small(v: i64) -> i16 {
    i16::try_from(v).unwrap_or(i16::MAX)
}

impl WriteTx for PgTx<'_, '_> {
    fn resolve(&mut self, keys: &[IndicatorKey]) -> Result<Vec<Option<i64>>> {
        let params: Vec<&[u8]> = keys.iter().map(|k| &k.0[..]).collect();
        let rows = self.tx.query(
            "SELECT key, id FROM indicator WHERE key = ANY($1)",
            &[&params],
        )?;
        let mut found: hashbrown::HashMap<Vec<u8>, i64> =
            hashbrown::HashMap::with_capacity(rows.len());
        for row in rows {
            found.insert(row.get::<_, Vec<u8>>(0), row.get(1));
        }
        Ok(keys.iter().map(|k| found.get(&k.0[..]).copied()).collect())
    }

    fn resolve_existing(&mut self, keys: &[IndicatorKey]) -> Result<Vec<Option<i64>>> {
        self.resolve(keys)
    }

    fn tagset_id(&mut self, tags: &TagSet) -> Result<i64> {
        let joined = tags.joined();
        if let Some(id) = self.tags.id_of(&joined) {
            return Ok(id);
        }
        if let Some((id, _)) = self.learned.iter().find(|(_, j)| *j == joined) {
            return Ok(*id);
        }
        let inserted = self.tx.query_opt(
            "INSERT INTO tagset (tags) VALUES ($1) ON CONFLICT (tags) DO NOTHING RETURNING id",
            &[&joined],
        )?;
        let id: i64 = match inserted {
            Some(row) => {
                let id: i64 = row.get(0);
                for tag in tags.as_slice() {
                    self.tx.execute(
                        "INSERT INTO tagset_member (tag, tagset_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[tag, &id],
                    )?;
                }
                id
            }
            None => self
                .tx
                .query_one("SELECT id FROM tagset WHERE tags = $1", &[&joined])?
                .get(0),
        };
        self.learned.push((id, joined));
        Ok(id)
    }

    fn insert_indicators(&mut self, rows: &[NewIndicator<'_>]) -> Result<Vec<Option<i64>>> {
        let count = rows.len() as i64;
        let mut ids: Vec<i64> = self
            .tx
            .query(
                "SELECT nextval('indicator_id_seq') FROM generate_series(1::bigint, $1::bigint)",
                &[&count],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        ids.sort_unstable();
        let sink = self.tx.copy_in(
            "COPY indicator (id, key, kind, value, severity, reputation, safe, hits, first_seen, last_seen, seen_day, \
             sources, nobs, expires, aged_at, tagset, changed) FROM STDIN BINARY",
        )?;
        let types = [
            Type::INT8,
            Type::BYTEA,
            Type::INT2,
            Type::TEXT,
            Type::INT2,
            Type::INT2,
            Type::INT2,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT4,
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for (r, id) in rows.iter().zip(&ids) {
            let a = &r.agg;
            let values: [&(dyn ToSql + Sync); 17] = [
                id,
                &&r.key.0[..],
                &i16::from(r.indicator.kind.code()),
                &r.indicator.value,
                &small(a.severity),
                &small(a.reputation),
                &i16::from(a.safe),
                &n(a.hits),
                &a.first_seen,
                &a.last_seen,
                &a.seen_day(),
                &(a.sources as i32),
                &(a.nobs as i32),
                &a.expires,
                &a.aged_at,
                &a.tagset,
                &a.changed,
            ];
            writer.write(&values)?;
        }
        writer.finish()?;
        // COPY has no ON CONFLICT: a key another node inserted meanwhile fails the whole batch
        // with a unique violation, and the store retries it.
        Ok(ids.into_iter().map(Some).collect())
    }

    fn observation_states(&mut self, source_id: i64, ids: &[i64]) -> Result<Vec<ObsState>> {
        let rows = self.tx.query(
            "SELECT indicator_id, source_id, fp, first_seen FROM observation WHERE indicator_id = ANY($1)",
            &[&ids],
        )?;
        let mut found: hashbrown::HashMap<i64, ObsState> =
            hashbrown::HashMap::with_capacity(rows.len());
        for row in rows {
            let state = found.entry(row.get(0)).or_default();
            if row.get::<_, i64>(1) == source_id {
                state.mine = Some(ObsMeta {
                    fp: row.get(2),
                    first_seen: row.get(3),
                });
            } else {
                state.others = true;
            }
        }
        Ok(ids
            .iter()
            .map(|id| found.get(id).copied().unwrap_or_default())
            .collect())
    }

    fn insert_observations(&mut self, rows: &[ObsRow<'_>]) -> Result<()> {
        let sink = self.tx.copy_in(
            "COPY observation (indicator_id, source_id, fp, severity, reputation, safe, echo, hits, first_seen, last_seen, \
             expires, tagset, comment, link) FROM STDIN BINARY",
        )?;
        let types = [
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT2,
            Type::INT2,
            Type::INT2,
            Type::INT2,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for r in rows {
            let a = r.attributes;
            let values: [&(dyn ToSql + Sync); 14] = [
                &r.indicator_id,
                &r.source_id,
                &r.fp,
                &i16::from(a.severity.code()),
                &a.reputation.map(|v| i16::from(v.get())),
                &i16::from(a.safe),
                &i16::from(r.echo),
                &n(r.hits),
                &r.first_seen,
                &r.last_seen,
                &a.expires.map(|t| t.0),
                &r.tagset,
                &a.comment,
                &a.link,
            ];
            writer.write(&values)?;
        }
        writer.finish()?;
        Ok(())
    }

    fn update_observations(&mut self, rows: &[ObsRow<'_>]) -> Result<()> {
        let col = |f: &dyn Fn(&ObsRow<'_>) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        let ids = col(&|r| r.indicator_id);
        let sources = col(&|r| r.source_id);
        let fps = col(&|r| r.fp);
        let sev = col(&|r| i64::from(r.attributes.severity.code()));
        let rep: Vec<Option<i64>> = rows
            .iter()
            .map(|r| r.attributes.reputation.map(|v| i64::from(v.get())))
            .collect();
        let safe = col(&|r| i64::from(r.attributes.safe));
        let echo = col(&|r| i64::from(r.echo));
        let hits = col(&|r| n(r.hits));
        let first = col(&|r| r.first_seen);
        let last = col(&|r| r.last_seen);
        let expires: Vec<Option<i64>> = rows
            .iter()
            .map(|r| r.attributes.expires.map(|t| t.0))
            .collect();
        let tagset = col(&|r| r.tagset);
        let comment: Vec<Option<&str>> = rows
            .iter()
            .map(|r| r.attributes.comment.as_deref())
            .collect();
        let link: Vec<Option<&str>> = rows.iter().map(|r| r.attributes.link.as_deref()).collect();
        self.tx.execute(
            "UPDATE observation o SET fp = u.fp, severity = u.severity, reputation = u.reputation, safe = u.safe, \
             echo = u.echo, hits = o.hits + u.hits, first_seen = LEAST(o.first_seen, u.first_seen), \
             last_seen = GREATEST(o.last_seen, u.last_seen), expires = u.expires, tagset = u.tagset, \
             comment = u.comment, link = u.link \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], \
                         $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[], $14::text[]) \
                  AS u(indicator_id, source_id, fp, severity, reputation, safe, echo, hits, first_seen, last_seen, expires, \
                       tagset, comment, link) \
             WHERE o.indicator_id = u.indicator_id AND o.source_id = u.source_id",
            &[&ids, &sources, &fps, &sev, &rep, &safe, &echo, &hits, &first, &last, &expires, &tagset, &comment, &link],
        )?;
        Ok(())
    }

    fn touch_observations(&mut self, source_id: i64, touch: &Touch) -> Result<()> {
        self.tx.execute(
            "UPDATE observation SET last_seen = GREATEST(last_seen, $1), hits = hits + $2 \
             WHERE source_id = $3 AND indicator_id = ANY($4)",
            &[&touch.seen, &n(touch.hits), &source_id, &touch.ids],
        )?;
        Ok(())
    }

    fn touch_indicators(&mut self, touch: &Touch) -> Result<()> {
        let day = touch.seen.div_euclid(iocx_model::DAY);
        // Updating only unindexed columns in the common case keeps the update HOT.
        self.tx.execute(
            "UPDATE indicator SET last_seen = GREATEST(last_seen, $2), hits = hits + $3, aged_at = GREATEST(aged_at, $4) \
             WHERE id = ANY($1) AND nobs = 1 AND seen_day >= $5",
            &[&touch.ids, &touch.seen, &n(touch.hits), &touch.aged_at, &day],
        )?;
        self.tx.execute(
            "UPDATE indicator SET last_seen = GREATEST(last_seen, $2), hits = hits + $3, aged_at = GREATEST(aged_at, $4), \
             seen_day = $5 WHERE id = ANY($1) AND nobs = 1 AND seen_day < $5",
            &[&touch.ids, &touch.seen, &n(touch.hits), &touch.aged_at, &day],
        )?;
        Ok(())
    }

    fn load_for_recompute(&mut self, ids: &[i64]) -> Result<Vec<RecomputeInput>> {
        let heads = self.tx.query(
            "SELECT id, user_tagset, user_safe FROM indicator WHERE id = ANY($1) ORDER BY id",
            &[&ids],
        )?;
        let obs = self.tx.query(
            &format!("SELECT {OBSERVATION_COLUMNS} FROM observation WHERE indicator_id = ANY($1) ORDER BY indicator_id, source_id"),
            &[&ids],
        )?;
        let mut out = Vec::with_capacity(heads.len());
        for head in &heads {
            let user_tags = self.tagset(head.int(1)?)?;
            out.push(RecomputeInput {
                id: head.int(0)?,
                overrides: iocx_model::Overrides {
                    tags: user_tags,
                    safe: head.opt_int(2)?.map(|v| v != 0),
                },
                observations: Vec::new(),
            });
        }
        let mut at = 0;
        for row in &obs {
            let tags = self.tagset(row.int(10)?)?;
            let (iid, sid, o) = rows::observation(row, 0, &mut |_| Ok(tags.clone()))?;
            while at < out.len() && out[at].id < iid {
                at += 1;
            }
            if let Some(input) = out.get_mut(at).filter(|i| i.id == iid) {
                input.observations.push((sid, o));
            }
        }
        Ok(out)
    }

    fn set_user_marks(&mut self, rows: &[(i64, i64, Option<bool>)]) -> Result<()> {
        let stmt = self
            .tx
            .prepare("UPDATE indicator SET user_tagset = $2, user_safe = $3 WHERE id = $1")?;
        for (id, tagset, safe) in rows {
            let safe: Option<i16> = safe.map(i16::from);
            self.tx.execute(&stmt, &[id, tagset, &safe])?;
        }
        Ok(())
    }

    fn update_aggregates(&mut self, rows: &[(i64, AggRow)]) -> Result<()> {
        let col = |f: &dyn Fn(&(i64, AggRow)) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        let ids = col(&|r| r.0);
        let sev = col(&|r| r.1.severity);
        let rep = col(&|r| r.1.reputation);
        let safe = col(&|r| i64::from(r.1.safe));
        let hits = col(&|r| n(r.1.hits));
        let first = col(&|r| r.1.first_seen);
        let last = col(&|r| r.1.last_seen);
        let day = col(&|r| r.1.seen_day());
        let sources = col(&|r| r.1.sources);
        let nobs = col(&|r| r.1.nobs);
        let expires: Vec<Option<i64>> = rows.iter().map(|r| r.1.expires).collect();
        let aged = col(&|r| r.1.aged_at);
        let tagset = col(&|r| r.1.tagset);
        let changed = col(&|r| r.1.changed);
        self.tx.execute(
            "UPDATE indicator i SET severity = u.severity, reputation = u.reputation, safe = u.safe, hits = u.hits, \
             first_seen = u.first_seen, last_seen = u.last_seen, seen_day = u.seen_day, sources = u.sources, nobs = u.nobs, \
             expires = u.expires, aged_at = u.aged_at, tagset = u.tagset, changed = u.changed \
             FROM unnest($1::bigint[], $2::smallint[], $3::smallint[], $4::smallint[], $5::bigint[], $6::bigint[], $7::bigint[], \
                         $8::bigint[], $9::integer[], $10::integer[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[]) \
                  AS u(id, severity, reputation, safe, hits, first_seen, last_seen, seen_day, sources, nobs, expires, aged_at, \
                       tagset, changed) \
             WHERE i.id = u.id",
            &[
                &ids,
                &sev.iter().map(|v| small(*v)).collect::<Vec<i16>>(),
                &rep.iter().map(|v| small(*v)).collect::<Vec<i16>>(),
                &safe.iter().map(|v| small(*v)).collect::<Vec<i16>>(),
                &hits,
                &first,
                &last,
                &day,
                &sources.iter().map(|v| *v as i32).collect::<Vec<i32>>(),
                &nobs.iter().map(|v| *v as i32).collect::<Vec<i32>>(),
                &expires,
                &aged,
                &tagset,
                &changed,
            ],
        )?;
        Ok(())
    }

    fn add_ingest_counts(&mut self, hour: i64, source_id: i64, o: &BatchOutcome) -> Result<()> {
        self.tx.execute(
            "INSERT INTO ingest_hour (hour, source_id, new, updated, unchanged) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (hour, source_id) DO UPDATE SET new = ingest_hour.new + excluded.new, \
             updated = ingest_hour.updated + excluded.updated, unchanged = ingest_hour.unchanged + excluded.unchanged",
            &[&hour, &source_id, &n(o.new), &n(o.updated), &n(o.unchanged)],
        )?;
        Ok(())
    }
}
