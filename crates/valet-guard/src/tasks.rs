//! The guard's background tasks (JWKS refresh, status list refreshers, the event stream),
//! all aborted when the last [`Guard`](crate::Guard) clone is dropped.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::task::JoinSet;

#[derive(Default)]
pub(crate) struct Tasks {
    set: Mutex<JoinSet<()>>,
    closed: AtomicBool,
}

impl Tasks {
    /// Runs `task` until it ends or the guard goes away; nothing once shut down.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        // Forget tasks that ended (evicted status lists), so the set does not grow.
        while set.try_join_next().is_some() {}
        set.spawn(task);
    }

    /// Aborts every task. Tasks hold `Arc`s of the guard's parts; aborting them is what
    /// lets those parts be freed.
    pub(crate) fn shutdown(&self) {
        let mut set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        self.closed.store(true, Ordering::Release);
        set.abort_all();
        // Dropping the set detaches the handles; the tasks are already cancelled.
        drop(std::mem::take(&mut *set));
    }
}
