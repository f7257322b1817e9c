//! Group commit: concurrent durable writes share one transaction, so one fsync.
//!
//! A store hands each write that must be durable before its caller answers (a
//! refresh rotation, a code redemption, the records of issued tokens) to its
//! [`GroupCommit`] instead of opening a transaction of its own. A committer task
//! (SQLite has one, for its one writer; PostgreSQL a few) takes the first queued
//! write, opens a transaction (waiting for the connection
//! if another write holds it), then takes every write queued meanwhile, up to
//! [`MAX_BATCH`], runs them one after another and commits them all at once.
//! Each caller gets its answer only after that commit: a result a client is shown
//! is as durable as before, and when nothing else is queued a write is committed
//! alone, at once: no timer, no added latency when idle.
//!
//! Each write decides on its own, as it would alone, against what the writes
//! before it in the batch left (a rotation after another of the same token in the
//! same batch sees it rotated). A write that fails answers its error and leaves
//! nothing behind; the others commit: the batch first runs its writes straight
//! in the transaction (two statements fewer per write than a savepoint each),
//! and only when one fails is the transaction rolled back and the batch run
//! again with each write in a savepoint of its own, which undoes the failed one
//! alone. Writes are therefore functions of their input that can run twice. If
//! the commit itself fails, every write of the batch answers an error and none
//! took effect. A caller that goes away after queueing its write (a closed
//! connection) does not withdraw it: the write commits like the others, as a
//! response lost on the way would have.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::{Connection, Database, Pool, Transaction};
use tokio::sync::{mpsc, oneshot};
use valet_core::store::StoreError;

/// A future borrowing the connection it runs on.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Writes per committed transaction, by database (a `/metrics` histogram).
pub const BATCH_SIZE_METRIC: &str = "valet_group_commit_batch_size";
/// Transactions of the group commit that failed as a whole, by database.
pub const FAILED_BATCHES_METRIC: &str = "valet_group_commit_failed_batches_total";

/// The most writes one transaction takes; more wait for the next.
pub const MAX_BATCH: usize = 256;
/// Writes queued at most; a caller beyond waits for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// One queued write and the way back to its caller.
trait Job<DB: Database>: Send {
    /// Runs the write on `conn` (again, if it ran before in a transaction that
    /// was rolled back); whether it succeeded (and is to be kept).
    fn run<'c>(&'c mut self, conn: &'c mut DB::Connection) -> BoxFuture<'c, bool>;
    /// Answers the caller once the batch is committed (or failed to).
    fn answer(self: Box<Self>, committed: Result<(), &str>);
}

struct Write<I, T, F> {
    input: I,
    work: F,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<DB, I, T, F> Job<DB> for Write<I, T, F>
where
    DB: Database,
    I: Send + Sync + 'static,
    T: Send + 'static,
    F: for<'c> Fn(&'c mut DB::Connection, &'c I) -> BoxFuture<'c, Result<T, StoreError>>
        + Send
        + Sync
        + 'static,
{
    fn run<'c>(&'c mut self, conn: &'c mut DB::Connection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let outcome = (self.work)(conn, &self.input).await;
            let ok = outcome.is_ok();
            self.outcome = Some(outcome);
            ok
        })
    }

    fn answer(self: Box<Self>, committed: Result<(), &str>) {
        let result = match (committed, self.outcome) {
            (Ok(()), Some(outcome)) | (Err(_), Some(outcome @ Err(_))) => outcome,
            (Ok(()), None) => Err(StoreError::Backend("a batched write did not run".into())),
            (Err(message), _) => Err(StoreError::Backend(
                format!("the batch's transaction failed: {message}").into(),
            )),
        };
        // The caller may have gone (a closed connection); the write stands.
        let _ = self.reply.send(result);
    }
}

type Queue<DB> = mpsc::Sender<Box<dyn Job<DB>>>;
type Jobs<DB> = Arc<tokio::sync::Mutex<mpsc::Receiver<Box<dyn Job<DB>>>>>;

/// How many transactions the committer committed, and how many writes they held.
#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    writes: AtomicU64,
}

/// The write queue of one store and its committer task (see the module docs).
pub struct GroupCommit<DB: Database> {
    pool: Pool<DB>,
    begin: Option<&'static str>,
    committers: usize,
    queue: Arc<Mutex<Queue<DB>>>,
    counters: Arc<Counters>,
}

impl<DB: Database> Clone for GroupCommit<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            begin: self.begin,
            committers: self.committers,
            queue: Arc::clone(&self.queue),
            counters: Arc::clone(&self.counters),
        }
    }
}

impl<DB: Database> fmt::Debug for GroupCommit<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit")
            .field("database", &DB::NAME)
            .field("begin", &self.begin)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<DB: Database> GroupCommit<DB> {
    /// Starts `committers` committer tasks (at least one) on the current Tokio
    /// runtime. Their transactions run on connections of `pool`, opened with
    /// `begin` (`BEGIN` when `None`). With more than one, a batch fills while
    /// the one before it commits on another connection: for a pool of several
    /// (PostgreSQL); SQLite has one writer, so one committer.
    pub fn start(pool: Pool<DB>, begin: Option<&'static str>, committers: usize) -> Self {
        let counters = Arc::new(Counters::default());
        let queue = spawn_committers(pool.clone(), begin, committers, Arc::clone(&counters));
        Self {
            pool,
            begin,
            committers,
            queue: Arc::new(Mutex::new(queue)),
            counters,
        }
    }

    /// Runs `work` on `input` in the next batch and answers its outcome once
    /// the batch is committed. `work` must only use the connection it is given,
    /// and may be run a second time (see the module docs).
    pub async fn write<I, T, F>(&self, input: I, work: F) -> Result<T, StoreError>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
        F: for<'c> Fn(&'c mut DB::Connection, &'c I) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + Sync
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let mut job: Box<dyn Job<DB>> = Box::new(Write {
            input,
            work,
            outcome: None,
            reply,
        });
        // The committer ends with the runtime it was started on (a store opened in
        // one runtime and used in another, as some tools and tests do): start a
        // new one on this runtime then.
        for _ in 0..2 {
            let queue = self.sender();
            match queue.send(job).await {
                Ok(()) => {
                    return answer.await.unwrap_or_else(|_| {
                        Err(StoreError::Backend("the committer stopped".into()))
                    });
                }
                Err(mpsc::error::SendError(returned)) => {
                    job = returned;
                    self.replace_if_closed(&queue);
                }
            }
        }
        Err(StoreError::Backend(
            "the committer could not be started".into(),
        ))
    }

    /// Transactions committed and writes they held, since the store opened.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counters.batches.load(Ordering::Relaxed),
            self.counters.writes.load(Ordering::Relaxed),
        )
    }

    /// Writes waiting for a transaction.
    pub fn queued(&self) -> usize {
        let queue = self.sender();
        queue.max_capacity() - queue.capacity()
    }

    fn sender(&self) -> Queue<DB> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace_if_closed(&self, closed: &Queue<DB>) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.same_channel(closed) && queue.is_closed() {
            *queue = spawn_committers(
                self.pool.clone(),
                self.begin,
                self.committers,
                Arc::clone(&self.counters),
            );
        }
    }
}

fn spawn_committers<DB: Database>(
    pool: Pool<DB>,
    begin: Option<&'static str>,
    committers: usize,
    counters: Arc<Counters>,
) -> Queue<DB> {
    let (queue, jobs) = mpsc::channel(QUEUE);
    // Outside a runtime the receiver is dropped here: the queue is closed, and the
    // first write starts the committers on its own runtime.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return queue;
    };
    let jobs: Jobs<DB> = Arc::new(tokio::sync::Mutex::new(jobs));
    for _ in 0..committers.max(1) {
        runtime.spawn(committer(
            pool.clone(),
            begin,
            Arc::clone(&jobs),
            Arc::clone(&counters),
        ));
    }
    queue
}

/// Until every handle on the queue is gone: waits for its turn at the queue and
/// for a write, opens a transaction, takes whatever queued meanwhile, leaves the
/// queue to the next committer, runs and commits the batch, answers each.
async fn committer<DB: Database>(
    pool: Pool<DB>,
    begin: Option<&'static str>,
    jobs: Jobs<DB>,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let mut queue = jobs.lock().await;
        let Some(first) = queue.recv().await else {
            return;
        };
        batch.push(first);
        // Writes that arrive while this waits for the connection join the batch.
        let tx = begin_transaction(&pool, begin).await;
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        drop(queue);
        let committed = match tx {
            Ok(tx) => run_batch(&pool, begin, tx, &mut batch).await,
            Err(err) => Err(err.to_string()),
        };
        // The batch size shows whether group commit is sharing transactions
        // under the current load (1 means each write paid its own commit).
        metrics::histogram!(BATCH_SIZE_METRIC, "database" => DB::NAME).record(batch.len() as f64);
        if let Err(message) = &committed {
            tracing::error!(error = %message, database = DB::NAME, writes = batch.len(), "a batch of writes failed");
            metrics::counter!(FAILED_BATCHES_METRIC, "database" => DB::NAME).increment(1);
        } else {
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters.writes.fetch_add(
                u64::try_from(batch.len()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        for job in batch.drain(..) {
            job.answer(committed.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}

/// A transaction on `pool`, opened with `begin` (`BEGIN` when `None`).
async fn begin_transaction<DB: Database>(
    pool: &Pool<DB>,
    begin: Option<&'static str>,
) -> Result<Transaction<'static, DB>, sqlx::Error> {
    match begin {
        Some(statement) => pool.begin_with(statement).await,
        None => pool.begin().await,
    }
}

/// Runs the writes of `batch` in `tx` and commits. Straight, first; if a write
/// fails, again from the start in a new transaction with each write in a
/// savepoint of its own, so that only the failed one is undone.
async fn run_batch<DB: Database>(
    pool: &Pool<DB>,
    begin: Option<&'static str>,
    mut tx: Transaction<'static, DB>,
    batch: &mut [Box<dyn Job<DB>>],
) -> Result<(), String> {
    let mut all_kept = true;
    for job in batch.iter_mut() {
        if !job.run(&mut *tx).await {
            all_kept = false;
            break;
        }
    }
    if all_kept {
        return tx.commit().await.map_err(|err| err.to_string());
    }
    tx.rollback().await.map_err(|err| err.to_string())?;
    if let [_only] = batch {
        // Nothing else to keep: its error is the answer.
        return Ok(());
    }
    let mut tx = begin_transaction(pool, begin)
        .await
        .map_err(|err| err.to_string())?;
    for job in batch.iter_mut() {
        let mut savepoint = Connection::begin(&mut *tx)
            .await
            .map_err(|err| err.to_string())?;
        let kept = job.run(&mut *savepoint).await;
        let ended = if kept {
            savepoint.commit().await
        } else {
            savepoint.rollback().await
        };
        ended.map_err(|err| err.to_string())?;
    }
    tx.commit().await.map_err(|err| err.to_string())
}
