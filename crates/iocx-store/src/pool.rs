//! A small blocking connection pool, used for SQLite readers and PostgreSQL clients.
//!
//! The store runs its database work on blocking threads (see the crate docs), so a pool needs
//! nothing more than a mutex and a condition variable.

use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::error::{Result, StoreError};

type Factory<C> = Box<dyn Fn() -> Result<C> + Send + Sync>;
type Check<C> = Box<dyn Fn(&mut C) -> bool + Send + Sync>;

/// Connections of type `C`, at most `max` open at once.
pub(crate) struct Pool<C: Send + 'static> {
    factory: Factory<C>,
    healthy: Check<C>,
    state: Mutex<PoolState<C>>,
    available: Condvar,
    max: usize,
}

struct PoolState<C> {
    idle: Vec<C>,
    open: usize,
}

impl<C: Send + 'static> Pool<C> {
    /// A pool that opens connections with `factory`.
    pub fn new(max: usize, factory: impl Fn() -> Result<C> + Send + Sync + 'static) -> Pool<C> {
        Pool {
            factory: Box::new(factory),
            healthy: Box::new(|_| true),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            available: Condvar::new(),
            max: max.max(1),
        }
    }

    /// Checks idle connections with `healthy` before handing them out; broken ones are closed.
    pub fn with_check(
        mut self,
        healthy: impl Fn(&mut C) -> bool + Send + Sync + 'static,
    ) -> Pool<C> {
        self.healthy = Box::new(healthy);
        self
    }

    /// A connection, waiting up to 60 s for one to come free.
    pub fn get(&self) -> Result<Pooled<'_, C>> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| StoreError::Task("connection pool poisoned".into()))?;
        loop {
            if let Some(mut conn) = state.idle.pop() {
                if (self.healthy)(&mut conn) {
                    return Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                    });
                }
                state.open -= 1;
                continue;
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match (self.factory)() {
                    Ok(conn) => Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        if let Ok(mut state) = self.state.lock() {
                            state.open -= 1;
                        }
                        self.available.notify_one();
                        Err(e)
                    }
                };
            }
            let (next, timeout) = self
                .available
                .wait_timeout(state, Duration::from_secs(60))
                .map_err(|_| StoreError::Task("connection pool poisoned".into()))?;
            if timeout.timed_out() {
                return Err(StoreError::Task(
                    "no database connection came free within 60 s".into(),
                ));
            }
            state = next;
        }
    }
}

/// A connection borrowed from a [`Pool`]; returned when dropped.
pub(crate) struct Pooled<'a, C: Send + 'static> {
    pool: &'a Pool<C>,
    conn: Option<C>,
}

impl<C: Send + 'static> Deref for Pooled<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        // Present from construction until drop or discard, which consume the guard.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("pooled connection used after release"))
    }
}

impl<C: Send + 'static> DerefMut for Pooled<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("pooled connection used after release"))
    }
}

impl<C: Send + 'static> Drop for Pooled<'_, C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && let Ok(mut state) = self.pool.state.lock()
        {
            state.idle.push(conn);
        }
        self.pool.available.notify_one();
    }
}

impl<C: Send + 'static> Drop for Pool<C> {
    fn drop(&mut self) {
        // Some clients (the synchronous PostgreSQL client) block on a runtime of their own when
        // closed, which panics on a thread that drives async tasks: close them on a plain thread.
        let idle = match self.state.get_mut() {
            Ok(state) => std::mem::take(&mut state.idle),
            Err(_) => return,
        };
        if idle.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        } else {
            drop(idle);
        }
    }
}
