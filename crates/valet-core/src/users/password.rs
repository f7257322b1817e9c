//! Password hashing: argon2id (RFC 9106) at OWASP's minimum parameters
//! (m = 19 MiB, t = 2, p = 1), stored as PHC strings.
//!
//! A hash costs about 33 ms of CPU and 19 MiB of memory, so it never runs on the
//! async runtime's threads: every hash and verify goes to the blocking pool,
//! behind a semaphore with one permit per CPU, so a flood of logins queues
//! instead of exhausting memory. The queue itself is bounded
//! ([`DEFAULT_MAX_WAITING`], setting `password_hash_queue`): a hash asked for
//! while that many already wait is refused at once with
//! [`PasswordError::Overloaded`] (the login form answers 503 with
//! `Retry-After`), so a flood costs the attacker's requests their answer, not
//! every honest user a minute-long wait and the server its memory. The 19 MiB working memory is allocated once per
//! permit and reused (zeroed after each use): a fresh allocation per hash left the
//! allocator holding hundreds of MiB after a burst of logins.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use tokio::sync::Semaphore;
use valet_jose::random_bytes;
use zeroize::Zeroizing;

/// OWASP Password Storage Cheat Sheet, argon2id option 2: memory in KiB.
pub const ARGON2_M_COST_KIB: u32 = 19_456;
/// Iterations.
pub const ARGON2_T_COST: u32 = 2;
/// Lanes.
pub const ARGON2_P_COST: u32 = 1;
/// Benchmark mode only (`insecure_benchmark_password_hash`): argon2id at its
/// smallest useful cost (8 KiB, one pass, one lane), so a load test of the
/// sign-in flow measures the protocol, not the hash. Offers no protection against
/// offline guessing; the PHC string records these parameters.
pub const INSECURE_BENCHMARK_M_COST_KIB: u32 = 8;
pub const INSECURE_BENCHMARK_T_COST: u32 = 1;
pub const INSECURE_BENCHMARK_P_COST: u32 = 1;
/// RFC 9106 §3.1 recommends 128-bit salts.
const SALT_LEN: usize = 16;

const PARAMS: Params = match Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None) {
    Ok(params) => params,
    // Not taken: the constants above are valid (checked at compile time).
    Err(_) => Params::DEFAULT,
};
const INSECURE_BENCHMARK_PARAMS: Params = match Params::new(
    INSECURE_BENCHMARK_M_COST_KIB,
    INSECURE_BENCHMARK_T_COST,
    INSECURE_BENCHMARK_P_COST,
    None,
) {
    Ok(params) => params,
    // Not taken: the constants above are valid (checked at compile time).
    Err(_) => Params::DEFAULT,
};

/// The cost new hashes are made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashCost {
    /// OWASP's minimum (m = 19 MiB, t = 2, p = 1): every real deployment.
    #[default]
    Standard,
    /// m = 8 KiB, t = 1, p = 1: load tests on loopback only, never real users.
    InsecureBenchmark,
}

impl HashCost {
    fn params(self) -> Params {
        match self {
            Self::Standard => PARAMS,
            Self::InsecureBenchmark => INSECURE_BENCHMARK_PARAMS,
        }
    }
}

/// Verified against when there is no stored hash, so an unknown account costs the
/// same time as a known one. Its password need not be secret: `verify` never
/// reports a match against it. It is a constant (a test recomputes it from
/// `DUMMY_PASSWORD`, `DUMMY_SALT` and `PARAMS`), so starting costs no hash and
/// no 19 MiB of memory.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$dmFsZXQtZHVtbXktc2FsdA$+3xYQL7KX9ese3nbcP3FH9OQwtlxB88qDkzkyeYT5R0";
#[cfg(test)]
const DUMMY_PASSWORD: &[u8] = b"valet: no account, no password";
#[cfg(test)]
const DUMMY_SALT: &[u8] = b"valet-dummy-salt";

/// Hashes that may wait for a permit before more are refused: at 33 ms per hash,
/// 128 waiting are about 2 s of work on two CPUs.
pub const DEFAULT_MAX_WAITING: usize = 128;

/// NIST SP 800-63B §3.1.1.2: at least 8 characters for a user-chosen password.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// An upper bound, so nobody can make the server hash megabytes (SP 800-63B asks
/// to allow at least 64 characters).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password in transit: zeroed when dropped, redacted in `Debug`, and without
/// `Display`, so it cannot reach a log by accident.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(password: String) -> Self {
        Self(Zeroizing::new(password))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self::new(password)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A new password that breaks a rule; the message says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("the password must be at least 8 characters long")]
    TooShort,
    #[error("the password must be at most 1024 bytes long")]
    TooLong,
    #[error("the password must not consist only of whitespace")]
    Blank,
}

/// The rules every new password must meet. Deliberately few (NIST SP 800-63B
/// §3.1.1.2: length, not composition rules); throttling does the rest.
pub fn check_password_rules(password: &str) -> Result<(), WeakPassword> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort);
    }
    if password.chars().all(char::is_whitespace) {
        return Err(WeakPassword::Blank);
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(transparent)]
    Weak(#[from] WeakPassword),
    /// The RNG, argon2 or the blocking pool failed: a server-side problem.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// Too many hashes are already waiting; try again after `retry_after_seconds`.
    #[error("too many passwords are being checked; try again in {retry_after_seconds} s")]
    Overloaded { retry_after_seconds: i64 },
}

/// Hashes and verifies passwords off the async runtime. Cheap to clone: clones
/// share the semaphore and the working memory.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    permits: Arc<Semaphore>,
    permit_count: usize,
    /// Hashes waiting for a permit now, and how many may.
    waiting: AtomicUsize,
    max_waiting: usize,
    memory: MemoryPool,
    /// The parameters new hashes are made with.
    params: Params,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    /// One permit per available CPU.
    pub fn new() -> Self {
        let permits = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self::with_permits(permits)
    }

    /// One permit per available CPU, and at most `max_waiting` hashes waiting.
    pub fn with_max_waiting(max_waiting: usize) -> Self {
        let permits = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self::with_limits(permits, max_waiting)
    }

    /// At most `permits` hashes run at once (at least one).
    pub fn with_permits(permits: usize) -> Self {
        Self::with_limits(permits, DEFAULT_MAX_WAITING)
    }

    /// At most `permits` hashes run at once (at least one), and at most
    /// `max_waiting` wait for a permit; more are refused.
    pub fn with_limits(permits: usize, max_waiting: usize) -> Self {
        Self::with_cost(permits, max_waiting, HashCost::Standard)
    }

    /// As [`with_limits`](Self::with_limits), making new hashes at `cost`.
    /// Verification always uses the parameters in the stored PHC string.
    pub fn with_cost(permits: usize, max_waiting: usize, cost: HashCost) -> Self {
        let permit_count = permits.max(1);
        let params = cost.params();
        // Filled on the first sign-ins: an idle server holds no 19 MiB array.
        // The pool keeps arrays of the standard size (stored hashes and the
        // dummy hash use it even in benchmark mode).
        let memory = MemoryPool::new(permit_count, PARAMS.block_count());
        Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(permit_count)),
                permit_count,
                waiting: AtomicUsize::new(0),
                max_waiting,
                memory,
                params,
            }),
        }
    }

    /// Checks the password rules, then hashes with a fresh random salt. Returns
    /// the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        check_password_rules(password)?;
        let salt = random_bytes::<SALT_LEN>().map_err(hashing)?;
        let password = Zeroizing::new(password.as_bytes().to_vec());
        self.run(move |inner| hash_blocking(&inner.memory, &inner.params, &password, &salt))
            .await?
    }

    /// Whether `password` matches the stored PHC string. With no stored hash
    /// (unknown user, or a user without a password) it verifies against the dummy
    /// hash and returns `false`, taking the same time as a real check. Refused
    /// without checking ([`Overloaded`]) when the queue is full.
    pub async fn verify(&self, stored: Option<&str>, password: &str) -> Result<bool, Overloaded> {
        let (stored, password, real) = match stored {
            Some(stored) if password.len() <= MAX_PASSWORD_BYTES => (
                stored.to_owned(),
                Zeroizing::new(password.as_bytes().to_vec()),
                true,
            ),
            // An over-long password matches nothing; still spend the time.
            _ => (DUMMY_HASH.to_owned(), Zeroizing::new(Vec::new()), false),
        };
        match self
            .run(move |inner| verify_blocking(&inner.memory, &stored, &password))
            .await
        {
            Ok(matched) => Ok(matched && real),
            Err(PasswordError::Overloaded {
                retry_after_seconds,
            }) => Err(Overloaded {
                retry_after_seconds,
            }),
            Err(_) => Ok(false),
        }
    }

    /// Takes every permit, as that many hashes running would, until the
    /// returned guard is dropped: for tests of what a busy hasher answers.
    #[doc(hidden)]
    pub async fn occupy(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let count = u32::try_from(self.inner.permit_count).ok()?;
        Arc::clone(&self.inner.permits)
            .acquire_many_owned(count)
            .await
            .ok()
    }

    /// Whether a stored hash is weaker than today's parameters in some way and
    /// stronger in none: another algorithm or version, or each of m, t and p at
    /// most today's and one below. Such a hash is replaced after the next
    /// successful sign-in; a hash that is stronger in any parameter (or a server
    /// in benchmark mode, whose parameters are the weakest) never downgrades it.
    pub fn should_upgrade(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        if parsed.algorithm != Algorithm::Argon2id.ident()
            || parsed.version != Some(Version::V0x13.into())
        {
            return true;
        }
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let current = &self.inner.params;
        let stored = [params.m_cost(), params.t_cost(), params.p_cost()];
        let today = [current.m_cost(), current.t_cost(), current.p_cost()];
        stored.iter().zip(&today).all(|(s, t)| s <= t) && stored != today
    }

    /// Hashes a password that has just matched its stored hash, with today's
    /// parameters and a fresh salt. The password rules are not applied again: a
    /// password set under older rules keeps working.
    pub async fn rehash(&self, password: &str) -> Result<String, PasswordError> {
        let salt = random_bytes::<SALT_LEN>().map_err(hashing)?;
        let password = Zeroizing::new(password.as_bytes().to_vec());
        self.run(move |inner| hash_blocking(&inner.memory, &inner.params, &password, &salt))
            .await?
    }

    /// Whether a stored hash was made with other parameters than today's (so it
    /// should be replaced after the next successful login).
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        let current = &self.inner.params;
        parsed.algorithm != Algorithm::Argon2id.ident()
            || parsed.version != Some(Version::V0x13.into())
            || params.m_cost() != current.m_cost()
            || params.t_cost() != current.t_cost()
            || params.p_cost() != current.p_cost()
    }

    /// Runs `job` on the blocking pool once a permit is free. The permit moves into
    /// the job, so it is held until the hash finishes even if the caller gives up.
    /// Refused at once when `max_waiting` hashes already wait for a permit.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permits = Arc::clone(&self.inner.permits);
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _waiting = self.wait_in_line()?;
                permits.acquire_owned().await.map_err(hashing)?
            }
        };
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let result = job(&inner);
            drop(permit);
            result
        })
        .await
        .map_err(hashing)
    }
}

impl PasswordHasher {
    /// A place in the queue, given back when dropped (also when the caller gives
    /// up waiting).
    fn wait_in_line(&self) -> Result<WaitingTicket<'_>, PasswordError> {
        let inner = &self.inner;
        let admitted = inner
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < inner.max_waiting).then_some(waiting + 1)
            });
        match admitted {
            Ok(_) => Ok(WaitingTicket(&inner.waiting)),
            Err(waiting) => {
                tracing::debug!(waiting, "password hash refused: the queue is full");
                Err(PasswordError::Overloaded {
                    retry_after_seconds: retry_after(waiting, inner.permit_count),
                })
            }
        }
    }
}

/// Seconds until a full queue has likely drained: 50 ms per queued hash per
/// permit (a hash takes about 33 ms), at least one.
fn retry_after(waiting: usize, permits: usize) -> i64 {
    let millis = waiting.saturating_mul(50) / permits.max(1);
    i64::try_from(millis.div_ceil(1000))
        .unwrap_or(i64::MAX)
        .max(1)
}

struct WaitingTicket<'a>(&'a AtomicUsize);

impl Drop for WaitingTicket<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The hasher refused a check because too many wait (see [`PasswordHasher`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded {
    pub retry_after_seconds: i64,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost", &self.inner.params.m_cost())
            .field("t_cost", &self.inner.params.t_cost())
            .field("p_cost", &self.inner.params.p_cost())
            .field("permits", &self.inner.permit_count)
            .field("max_waiting", &self.inner.max_waiting)
            .finish_non_exhaustive()
    }
}

fn hashing(error: impl fmt::Display) -> PasswordError {
    PasswordError::Hashing(error.to_string())
}

/// Working memory for argon2, one block array per permit, kept between hashes.
struct MemoryPool {
    /// Arrays of the standard size that are not in use.
    free: Mutex<Vec<Vec<Block>>>,
    keep: usize,
    block_count: usize,
}

impl MemoryPool {
    fn new(keep: usize, block_count: usize) -> Self {
        Self {
            free: Mutex::new(Vec::with_capacity(keep)),
            keep,
            block_count,
        }
    }

    /// Runs `job` with `block_count` blocks of memory: a pooled array when it is
    /// the standard size, else (a hash with other parameters) a one-off one.
    fn with_blocks<T>(&self, block_count: usize, job: impl FnOnce(&mut [Block]) -> T) -> T {
        let pooled = if block_count == self.block_count {
            self.free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
        } else {
            None
        };
        let mut blocks = pooled.unwrap_or_else(|| vec![Block::new(); block_count]);
        let result = job(&mut blocks);
        // The blocks hold state derived from the password.
        blocks.fill(Block::new());
        if block_count == self.block_count {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            if free.len() < self.keep {
                free.push(blocks);
            }
        }
        result
    }
}

fn hash_blocking(
    memory: &MemoryPool,
    params: &Params,
    password: &[u8],
    salt: &[u8],
) -> Result<String, PasswordError> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut output = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
    memory
        .with_blocks(params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password, salt, output.as_mut_slice(), blocks)
        })
        .map_err(hashing)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(hashing)?,
        salt: Some(Salt::new(salt).map_err(hashing)?),
        hash: Some(Output::new(output.as_slice()).map_err(hashing)?),
    };
    Ok(phc.to_string())
}

/// Verifies with the algorithm, version and parameters recorded in the PHC string
/// (so hashes made with older parameters keep working); the comparison is in
/// constant time (`Output`'s equality).
fn verify_blocking(memory: &MemoryPool, stored: &str, password: &[u8]) -> bool {
    match recompute(memory, stored, password) {
        Ok((expected, computed)) => expected == computed,
        Err(error) => {
            tracing::warn!(%error, "a stored password hash cannot be checked");
            false
        }
    }
}

/// The stored output, and the output `password` gives with the stored algorithm,
/// version, parameters and salt.
fn recompute(
    memory: &MemoryPool,
    stored: &str,
    password: &[u8],
) -> Result<(Output, Output), String> {
    let parsed = PasswordHash::new(stored).map_err(|e| format!("not a PHC string: {e}"))?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| e.to_string())?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).map_err(|e| e.to_string())?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err("no salt or no hash".into());
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut output = Zeroizing::new(vec![0u8; expected.len()]);
    memory
        .with_blocks(params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password, salt, output.as_mut_slice(), blocks)
        })
        .map_err(|e| e.to_string())?;
    let computed = Output::new(output.as_slice()).map_err(|e| e.to_string())?;
    Ok((*expected, computed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::with_permits(2)
    }

    #[tokio::test]
    async fn hash_and_verify_round_trip() {
        let hasher = hasher();
        let stored = hasher.hash("correct horse battery").await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(!stored.contains("correct horse"));
        assert!(
            hasher
                .verify(Some(&stored), "correct horse battery")
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(Some(&stored), "correct horse battery ")
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(Some(&stored), "wrong password")
                .await
                .unwrap()
        );
        assert!(!hasher.verify(Some(&stored), "").await.unwrap());
        assert!(!hasher.needs_rehash(&stored));
    }

    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crates_own_phc_api() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = hasher();
        let standard = Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
            .hash_password_with_salt(b"interop password", b"0123456789abcdef")
            .unwrap()
            .to_string();
        let ours = hash_blocking(
            &hasher.inner.memory,
            &PARAMS,
            b"interop password",
            b"0123456789abcdef",
        )
        .unwrap();
        assert_eq!(ours, standard);
        let fresh = hasher.hash("interop password").await.unwrap();
        Argon2::default()
            .verify_password(b"interop password", &PasswordHash::new(&fresh).unwrap())
            .unwrap();
        assert!(
            hasher
                .verify(Some(&standard), "interop password")
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn working_memory_is_reused_not_reallocated() {
        let hasher = PasswordHasher::with_permits(2);
        let stored = hasher.hash("a fine password").await.unwrap();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let hasher = hasher.clone();
                let stored = stored.clone();
                tokio::spawn(async move {
                    hasher
                        .verify(Some(&stored), "a fine password")
                        .await
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap());
        }
        let free = hasher.inner.memory.free.lock().unwrap();
        assert!((1..=2).contains(&free.len()), "{} arrays kept", free.len());
        assert!(
            free.iter()
                .all(|blocks| blocks.len() == PARAMS.block_count())
        );
    }

    #[test]
    fn the_dummy_hash_is_of_todays_parameters() {
        // Recomputed: if PARAMS change, this fails and prints the new constant.
        let memory = MemoryPool::new(0, PARAMS.block_count());
        let computed = hash_blocking(&memory, &PARAMS, DUMMY_PASSWORD, DUMMY_SALT).unwrap();
        assert_eq!(DUMMY_HASH, computed);
    }

    #[tokio::test]
    async fn salts_differ() {
        let hasher = hasher();
        let a = hasher.hash("same password").await.unwrap();
        let b = hasher.hash("same password").await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn without_a_stored_hash_nothing_matches() {
        let hasher = hasher();
        assert!(!hasher.verify(None, "").await.unwrap());
        assert!(!hasher.verify(None, "anything at all").await.unwrap());
        // Not even the dummy's own hash with a guessed password.
        let dummy = DUMMY_HASH.to_owned();
        assert!(
            !hasher
                .verify(Some(&dummy), "anything at all")
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(None, "valet: no account, no password")
                .await
                .unwrap()
        );
        assert!(!hasher.needs_rehash(&dummy));
    }

    #[tokio::test]
    async fn over_long_and_malformed_never_match() {
        let hasher = hasher();
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(
            hasher.hash(&long).await,
            Err(PasswordError::Weak(WeakPassword::TooLong))
        ));
        let stored = hasher.hash("a fine password").await.unwrap();
        assert!(!hasher.verify(Some(&stored), &long).await.unwrap());
        assert!(
            !hasher
                .verify(Some("not a phc string"), "a fine password")
                .await
                .unwrap()
        );
        assert!(!hasher.verify(Some(""), "a fine password").await.unwrap());
        assert!(hasher.needs_rehash("not a phc string"));
    }

    #[tokio::test]
    async fn older_parameters_still_verify_and_ask_for_a_rehash() {
        let hasher = hasher();
        let Ok(weak) = Params::new(8 * 1024, 1, 1, None) else {
            unreachable!()
        };
        let memory = MemoryPool::new(1, weak.block_count());
        let old = hash_blocking(&memory, &weak, b"an old password", b"0123456789abcdef").unwrap();
        assert!(hasher.verify(Some(&old), "an old password").await.unwrap());
        assert!(hasher.needs_rehash(&old));
    }

    /// Benchmark mode makes argon2id hashes at m = 8 KiB, t = 1, p = 1, which a
    /// standard hasher verifies (the PHC string carries them) and flags for a
    /// rehash.
    #[tokio::test]
    async fn benchmark_hashes_are_cheap_recognisable_and_verify_anywhere() {
        let cheap = PasswordHasher::with_cost(1, 4, HashCost::InsecureBenchmark);
        let stored = cheap.hash("a benchmark password").await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
            "{stored}"
        );
        assert!(
            cheap
                .verify(Some(&stored), "a benchmark password")
                .await
                .unwrap()
        );
        assert!(
            !cheap
                .verify(Some(&stored), "another password")
                .await
                .unwrap()
        );
        assert!(!cheap.needs_rehash(&stored));
        let standard = hasher();
        assert!(
            standard
                .verify(Some(&stored), "a benchmark password")
                .await
                .unwrap()
        );
        assert!(standard.needs_rehash(&stored));
        let normal = standard.hash("a benchmark password").await.unwrap();
        assert!(
            cheap
                .verify(Some(&normal), "a benchmark password")
                .await
                .unwrap()
        );
        assert!(format!("{cheap:?}").contains("m_cost: 8,"));
    }

    /// Only weaker hashes are upgraded: a standard hasher upgrades a benchmark
    /// hash, never a stronger one; a benchmark hasher never touches a standard one.
    #[tokio::test]
    async fn only_weaker_hashes_are_upgraded() {
        let standard = hasher();
        let cheap = PasswordHasher::with_cost(1, 4, HashCost::InsecureBenchmark);
        let weak = cheap.hash("an upgraded password").await.unwrap();
        let today = standard.hash("an upgraded password").await.unwrap();
        assert!(standard.should_upgrade(&weak));
        assert!(!standard.should_upgrade(&today));
        assert!(!cheap.should_upgrade(&today), "never downgraded");
        let stronger = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$c2l4dGVlbiBieXRlIG91dA";
        assert!(PasswordHash::new(stronger).is_ok());
        assert!(!standard.should_upgrade(stronger));
        let older = "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$c2l4dGVlbiBieXRlIG91dA";
        assert!(PasswordHash::new(older).is_ok());
        let mixed = "$argon2id$v=19$m=65536,t=1,p=1$c2FsdHNhbHQ$c2l4dGVlbiBieXRlIG91dA";
        assert!(!standard.should_upgrade(mixed), "stronger in one parameter");
        assert!(standard.should_upgrade(older));
        assert!(!standard.should_upgrade("not a phc string"));

        let rehashed = standard.rehash("an upgraded password").await.unwrap();
        assert!(rehashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            standard
                .verify(Some(&rehashed), "an upgraded password")
                .await
                .unwrap()
        );
        // Older rules are not applied again to a password that has just matched.
        assert!(standard.rehash("short").await.is_ok());
    }

    #[test]
    fn password_rules() {
        assert_eq!(check_password_rules("short"), Err(WeakPassword::TooShort));
        assert_eq!(check_password_rules(""), Err(WeakPassword::TooShort));
        assert_eq!(check_password_rules("        "), Err(WeakPassword::Blank));
        assert_eq!(
            check_password_rules(" \t\n \u{a0}   "),
            Err(WeakPassword::Blank)
        );
        assert_eq!(
            check_password_rules(&"a".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(WeakPassword::TooLong)
        );
        // Characters, not bytes: eight non-ASCII characters are enough.
        assert_eq!(check_password_rules("ääääääää"), Ok(()));
        assert_eq!(check_password_rules("12345678"), Ok(()));
        assert_eq!(check_password_rules(" spaced out "), Ok(()));
        assert_eq!(
            check_password_rules(&"a".repeat(MAX_PASSWORD_BYTES)),
            Ok(())
        );
        for weak in [
            WeakPassword::TooShort,
            WeakPassword::TooLong,
            WeakPassword::Blank,
        ] {
            assert!(weak.to_string().starts_with("the password must"));
        }
    }

    #[test]
    fn passwords_are_redacted() {
        let password = Password::new("hunter2hunter2".to_owned());
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
        assert_eq!(password.expose(), "hunter2hunter2");
        let hasher = hasher();
        assert!(!format!("{hasher:?}").contains("argon2id$"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_queue_bound_checks_are_refused_at_once() {
        let hasher = PasswordHasher::with_limits(1, 2);
        let stored = hasher.hash("a fine password").await.unwrap();
        // One running and two waiting: the permit is held here, so nothing finishes.
        let held = Arc::clone(&hasher.inner.permits)
            .acquire_owned()
            .await
            .unwrap();
        let mut waiting = Vec::new();
        for _ in 0..2 {
            let hasher = hasher.clone();
            let stored = stored.clone();
            waiting.push(tokio::spawn(async move {
                hasher.verify(Some(&stored), "a fine password").await
            }));
        }
        while hasher.inner.waiting.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.verify(Some(&stored), "a fine password").await;
        assert_eq!(
            refused,
            Err(Overloaded {
                retry_after_seconds: 1
            })
        );
        assert!(matches!(
            hasher.hash("another fine password").await,
            Err(PasswordError::Overloaded { .. })
        ));
        // A caller that gives up waiting frees its place.
        waiting.pop().unwrap().abort();
        while hasher.inner.waiting.load(Ordering::Acquire) > 1 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for task in waiting {
            assert_eq!(task.await.unwrap(), Ok(true));
        }
        assert_eq!(
            hasher.verify(Some(&stored), "a fine password").await,
            Ok(true)
        );
        assert_eq!(hasher.inner.waiting.load(Ordering::Acquire), 0);
        assert_eq!(retry_after(128, 2), 4);
        assert_eq!(retry_after(0, 2), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_hashes_are_bounded_and_all_finish() {
        let hasher = PasswordHasher::with_permits(1);
        let stored = hasher.hash("a fine password").await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..4 {
            let hasher = hasher.clone();
            let stored = stored.clone();
            tasks.push(tokio::spawn(async move {
                let password = if i % 2 == 0 {
                    "a fine password"
                } else {
                    "wrong"
                };
                hasher.verify(Some(&stored), password).await.unwrap()
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        assert_eq!(results, [true, false, true, false]);
        assert_eq!(hasher.inner.permits.available_permits(), 1);
    }
}
