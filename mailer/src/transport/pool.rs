//! The transport's pool: up to N SMTP sessions shared by parallel senders.
//!
//! A send leases a slot (a semaphore permit; when all N are out, senders queue in FIFO
//! order), takes the most recently returned idle session if any, or starts without one
//! (the send opens it). When the lease ends, the session goes back only if it is in a clean
//! state: the send loop holds a session in its [`Connection`] only between transactions,
//! and takes it out for the duration of each one, so a session whose transaction failed,
//! timed out or was interrupted by dropping the send future is never in the lease when it
//! ends. It is dropped (its socket closed) instead, and its slot opens a fresh one on the
//! next send. No NOOP before reuse: a session the server closed while idle fails its MAIL,
//! which the send loop answers with a reconnect and a resend.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Error;
use crate::mailer::{Connection, Mailer};
use crate::session::Session;

/// The idle sessions and the slots.
pub(crate) struct Pool {
    /// One permit per session that may exist at a time (idle or leased).
    slots: Arc<Semaphore>,
    /// Idle sessions, the most recently used last (most likely still alive).
    idle: Mutex<Vec<Session>>,
    /// The last send gave up reconnecting: the next tries once instead of a whole bounded
    /// loop (as a `Connection` does), until a session opens again.
    gave_up: AtomicBool,
}

impl Pool {
    pub(crate) fn new(size: usize) -> Pool {
        Pool {
            slots: Arc::new(Semaphore::new(size)),
            idle: Mutex::new(Vec::with_capacity(size)),
            gave_up: AtomicBool::new(false),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Session>> {
        // A panic while holding this lock cannot leave the Vec half-changed.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot, then hands out an idle session or none.
    pub(crate) async fn lease(self: &Arc<Pool>, mailer: &Mailer) -> Result<Lease, Error> {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| Error::Config("the transport was shut down".to_owned()))?;
        let session = self.idle().pop();
        Ok(Lease {
            pool: Arc::clone(self),
            conn: Connection::pooled(
                mailer.clone(),
                session,
                self.gave_up.load(Ordering::Relaxed),
            ),
            _permit: permit,
        })
    }

    /// Idle sessions right now.
    pub(crate) fn idle_count(&self) -> usize {
        self.idle().len()
    }

    /// Refuses new leases and hands back the idle sessions (to QUIT).
    pub(crate) fn close(&self) -> Vec<Session> {
        self.slots.close();
        std::mem::take(&mut *self.idle())
    }
}

/// One slot of the pool, for the length of one send.
pub(crate) struct Lease {
    pool: Arc<Pool>,
    pub(crate) conn: Connection,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool
            .gave_up
            .store(self.conn.gave_up(), Ordering::Relaxed);
        match self.conn.take_session() {
            // Shut down meanwhile: nobody will lease it again.
            Some(_) if self.pool.slots.is_closed() => {}
            Some(session) => self.pool.idle().push(session),
            // The send ended with no clean session: it failed for good, or the future was
            // dropped mid-transaction (the session went with it). Either way the slot
            // opens a fresh session next time.
            None => {}
        }
    }
}
