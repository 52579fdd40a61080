//! One SQL text for both backends, for statements that need nothing backend-specific.
//!
//! Statements are written once with PostgreSQL's `$1, $2, …` placeholders; on SQLite the `$`
//! becomes `?` (`?1` is SQLite's numbered parameter), so both bind by position. Values are
//! [`Val`]s, and rows are read through [`RowAccess`]. The schema makes this possible: every
//! integer column of the exchange tables is a 64-bit integer on both databases.

use crate::error::Result;
use crate::rows::RowAccess;

/// A parameter value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    I(i64),
    OptI(Option<i64>),
    T(&'a str),
    OptT(Option<&'a str>),
}

/// A connection or transaction of either backend.
pub(crate) trait Db {
    /// Runs a statement; returns the rows changed.
    fn exec(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64>;
    /// Runs a query, handing each row to `row`.
    fn each(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        row: &mut dyn FnMut(&dyn RowAccess) -> Result<()>,
    ) -> Result<()>;

    /// The first row's value of `f`, if any row.
    fn one<T>(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&dyn RowAccess) -> Result<T>,
    ) -> Result<Option<T>>
    where
        Self: Sized,
    {
        let mut out = None;
        self.each(sql, params, &mut |r| {
            if out.is_none() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every row's value of `f`.
    fn all<T>(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&dyn RowAccess) -> Result<T>,
    ) -> Result<Vec<T>>
    where
        Self: Sized,
    {
        let mut out = Vec::new();
        self.each(sql, params, &mut |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }
}

fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match *self {
            Val::I(v) => ToSqlOutput::Owned(Value::Integer(v)),
            Val::OptI(v) => ToSqlOutput::Owned(v.map_or(Value::Null, Value::Integer)),
            Val::T(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Val::OptT(v) => v.map_or(ToSqlOutput::Owned(Value::Null), |t| {
                ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes()))
            }),
        })
    }
}

impl Db for rusqlite::Connection {
    fn exec(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64> {
        let mut stmt = self.prepare_cached(&sqlite_sql(sql))?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn each(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        row: &mut dyn FnMut(&dyn RowAccess) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.prepare_cached(&sqlite_sql(sql))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        while let Some(r) = rows.next()? {
            row(r)?;
        }
        Ok(())
    }
}

impl Db for rusqlite::Transaction<'_> {
    fn exec(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64> {
        let mut stmt = self.prepare_cached(&sqlite_sql(sql))?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn each(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        row: &mut dyn FnMut(&dyn RowAccess) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.prepare_cached(&sqlite_sql(sql))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        while let Some(r) = rows.next()? {
            row(r)?;
        }
        Ok(())
    }
}

fn pg_params<'a>(params: &'a [Val<'a>]) -> Vec<Box<dyn postgres::types::ToSql + Sync + 'a>> {
    params
        .iter()
        .map(|v| -> Box<dyn postgres::types::ToSql + Sync + 'a> {
            match *v {
                Val::I(x) => Box::new(x),
                Val::OptI(x) => Box::new(x),
                Val::T(x) => Box::new(x),
                Val::OptT(x) => Box::new(x),
            }
        })
        .collect()
}

macro_rules! pg_db {
    ($t:ty) => {
        impl Db for $t {
            fn exec(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64> {
                let boxed = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                Ok(self.execute(sql, &refs)?)
            }

            fn each(
                &mut self,
                sql: &str,
                params: &[Val<'_>],
                row: &mut dyn FnMut(&dyn RowAccess) -> Result<()>,
            ) -> Result<()> {
                let boxed = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                for r in self.query(sql, &refs)? {
                    row(&r)?;
                }
                Ok(())
            }
        }
    };
}

pg_db!(postgres::Client);
pg_db!(postgres::Transaction<'_>);
