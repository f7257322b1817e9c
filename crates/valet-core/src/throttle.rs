//! Throttling of guessing: passwords at the login form ([`LoginThrottle`]) and
//! client secrets at the token, introspection and revocation endpoints
//! ([`ClientAuthThrottle`]).
//!
//! Login:
//!
//! - **Per account and address** (the login name as typed, trimmed and
//!   lower-cased; the client's address, IPv6 per /64): after
//!   `login_max_failures` failures (default 5) within `login_failure_window`
//!   (default 15 minutes), further attempts for that account *from that address*
//!   are refused until the oldest of those failures leaves the window (a sliding
//!   window). A successful login clears that pair's failures.
//! - **Per address**: after `login_address_max_failures` failures (default 20)
//!   within the window from one address, its attempts are refused the same way,
//!   whatever account they name. IPv6 addresses count per /64 (what one
//!   subscriber gets, and can change at will); IPv4-mapped IPv6 addresses count
//!   as the IPv4 address.
//! - **Unlock**: `valet user unlock` stamps the user's row in the store; failures
//!   from before the stamp no longer count. A node consults the stamp only when
//!   it is about to refuse an attempt for an account, so the unlock reaches every
//!   node at once without a per-request read.
//!
//! Why lock-out cannot keep a real user out: the lock is keyed by the address the
//! failures come from, so an attacker failing from other addresses never locks
//! the user's own address; they lock only themselves. Someone sharing the user's
//! address (the same NAT or /64) can, and then the lock lasts at most the window
//! after their last failure, or until an operator runs `valet user unlock`. The
//! price: guessing spread over many addresses is slowed per address (at most the
//! per-address limit per window from each), not stopped per account; strong
//! passwords, argon2, and `login.failed` audit records (per account, with the
//! address) are the answer to that, not a lock anyone could trigger. An account
//! reached by username and by email has a counter for each.
//!
//! State is **in memory, per node**: behind a load balancer each node counts on
//! its own, so the effective limit is multiplied by the number of nodes, and a
//! restart forgets the counts. Shared limits (through Redis) are future work.
//! Memory is bounded: each map holds at most [`ThrottleConfig::max_entries`]
//! keys (expired ones are dropped first, then the least recently failed); at the
//! defaults that is some 10 MB for accounts and 20 MB for addresses at worst.
//!
//! An attempt is counted as a failure when [`LoginThrottle::admit`] admits it,
//! before the password is verified, so a burst of concurrent guesses cannot slip
//! past the limit while their verifications wait for the hasher; a success takes
//! the count back:
//!
//! ```text
//! admit(login, address, now) ──Err(Throttled)──▶ refuse (429, Retry-After)
//!        │ Ok(Admitted)   (already counted as a failure)
//!        ▼
//! users::authenticate ──fails──▶ drop the Admitted: nothing more to count
//!        │            ──overloaded (never checked)──▶ not_checked(admitted):
//!        │ succeeds                                   taken back from both
//!        ▼
//! succeeded(admitted)   (account cleared, address failure taken back)
//! ```
//!
//! Client secrets: after 20 failed client authentications within 5 minutes
//! from one address, every client authentication from it is refused (even a
//! right secret, or guesses could go on and only successes would be told apart)
//! until the oldest failure leaves the window. There is no per-client lock:
//! secrets carry 256 bits, so guessing across many addresses is hopeless, and a
//! per-client lock would let anyone stop a service by failing in its name.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};

use valet_jose::sha256;

use crate::store::UserStore;

/// Limits, with OWASP-style defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures per account and address within the window before that account
    /// is refused from that address.
    pub account_failures: usize,
    /// Failures per client address within the window before it is refused.
    pub address_failures: usize,
    /// The sliding window, in seconds.
    pub window_seconds: i64,
    /// Keys kept per map (accounts, addresses).
    pub max_entries: usize,
    /// Failed client authentications per address within `client_window_seconds`
    /// before the address is refused.
    pub client_failures: usize,
    pub client_window_seconds: i64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            account_failures: 5,
            address_failures: 20,
            window_seconds: 15 * 60,
            max_entries: 100_000,
            client_failures: 20,
            client_window_seconds: 5 * 60,
        }
    }
}

/// Refused: too many recent failures for this account or from this address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed attempts; try again in {retry_after_seconds} seconds")]
pub struct Throttled {
    /// For the `Retry-After` header (RFC 9110 §10.2.3); at least 1.
    pub retry_after_seconds: i64,
}

/// Proof that an attempt was admitted, and already counted as a failure. Hand it
/// back to [`LoginThrottle::succeeded`] when the password was right; after a
/// failure just drop it.
#[derive(Debug)]
#[must_use = "pass it to LoginThrottle::succeeded after a successful login"]
pub struct Admitted {
    account: AccountKey,
    address: IpAddr,
    at: i64,
}

/// Which limits refused an attempt.
#[derive(Debug, Clone, Copy)]
struct Refusal {
    retry_after_seconds: i64,
    /// The account-and-address limit was reached (an unlock may lift it).
    account: bool,
    /// The per-address limit was reached (an unlock does not lift it).
    address: bool,
}

/// SHA-256 of the normalized login: fixed size whatever is typed, and no login
/// names (or passwords typed into the login field) kept in memory.
type AccountKey = [u8; 32];

/// The login throttle of one node. Share one per process.
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    // Locked in this order, always.
    accounts: Mutex<Failures<(AccountKey, IpAddr)>>,
    addresses: Mutex<Failures<IpAddr>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(ThrottleConfig::default())
    }
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            accounts: Mutex::new(Failures::new(
                config.account_failures,
                config.window_seconds,
                config.max_entries,
            )),
            addresses: Mutex::new(Failures::new(
                config.address_failures,
                config.window_seconds,
                config.max_entries,
            )),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Admits a login attempt for `login` from `address` at `now` (Unix seconds),
    /// counting it as a failure until [`Self::succeeded`] says otherwise; or
    /// refuses it, with how long to wait (the longer of the two limits). A refused
    /// attempt is not counted. Does not consult unlocks: see [`Self::admit_login`].
    pub fn admit(
        &self,
        login: &str,
        address: impl Into<Option<IpAddr>>,
        now: i64,
    ) -> Result<Admitted, Throttled> {
        self.try_admit(account_key(login), source_network(address.into()), now)
            .map_err(|refusal| Throttled {
                retry_after_seconds: refusal.retry_after_seconds,
            })
    }

    /// [`Self::admit`], honouring `valet user unlock`: when the account's limit
    /// from this address is what refuses the attempt, the user's unlock time is
    /// read from the store and failures from before it are dropped. A store error
    /// keeps the refusal (it fails closed).
    pub async fn admit_login(
        &self,
        users: &dyn UserStore,
        login: &str,
        address: impl Into<Option<IpAddr>>,
        now: i64,
    ) -> Result<Admitted, Throttled> {
        let account = account_key(login);
        let address = source_network(address.into());
        let refusal = match self.try_admit(account, address, now) {
            Ok(admitted) => return Ok(admitted),
            Err(refusal) => refusal,
        };
        let refused = Throttled {
            retry_after_seconds: refusal.retry_after_seconds,
        };
        if !refusal.account || refusal.address {
            return Err(refused);
        }
        let unlocked_at = match users.login_unlocked_at(login).await {
            Ok(Some(at)) => at,
            Ok(None) => return Err(refused),
            Err(error) => {
                tracing::warn!(%error, "cannot read the account's unlock time; the lock stays");
                return Err(refused);
            }
        };
        if !lock(&self.accounts).forget_up_to(&(account, address), unlocked_at) {
            return Err(refused);
        }
        self.try_admit(account, address, now)
            .map_err(|refusal| Throttled {
                retry_after_seconds: refusal.retry_after_seconds,
            })
    }

    fn try_admit(
        &self,
        account: AccountKey,
        address: IpAddr,
        now: i64,
    ) -> Result<Admitted, Refusal> {
        let mut accounts = lock(&self.accounts);
        let mut addresses = lock(&self.addresses);
        let account_wait = accounts.retry_after(&(account, address), now);
        let address_wait = addresses.retry_after(&address, now);
        if let Some(retry_after_seconds) = account_wait.max(address_wait) {
            return Err(Refusal {
                retry_after_seconds,
                account: account_wait.is_some(),
                address: address_wait.is_some(),
            });
        }
        accounts.record((account, address), now);
        addresses.record(address, now);
        Ok(Admitted {
            account,
            address,
            at: now,
        })
    }

    /// The password was right: the account's failures from this address are
    /// cleared and this attempt no longer counts against the address.
    pub fn succeeded(&self, attempt: Admitted) {
        let mut accounts = lock(&self.accounts);
        let mut addresses = lock(&self.addresses);
        accounts.forget(&(attempt.account, attempt.address));
        addresses.take_back(&attempt.address, attempt.at);
    }

    /// The password was never checked (the hasher was overloaded): the attempt
    /// is neither a failure nor a success, so what [`Self::admit`] recorded for
    /// it is taken back, for the account and address and for the address.
    /// Otherwise anyone keeping the hasher busy (with correct sign-ins of an
    /// account of their own, which never count) would turn other users' "busy"
    /// pages into failures until they, or their whole address, were locked out.
    pub fn not_checked(&self, attempt: Admitted) {
        let mut accounts = lock(&self.accounts);
        let mut addresses = lock(&self.addresses);
        accounts.take_back(&(attempt.account, attempt.address), attempt.at);
        addresses.take_back(&attempt.address, attempt.at);
    }
}

/// The client-secret throttle of one node. Share one per process.
#[derive(Debug)]
pub struct ClientAuthThrottle {
    addresses: Mutex<Failures<IpAddr>>,
}

impl Default for ClientAuthThrottle {
    fn default() -> Self {
        Self::new(&ThrottleConfig::default())
    }
}

impl ClientAuthThrottle {
    pub fn new(config: &ThrottleConfig) -> Self {
        Self {
            addresses: Mutex::new(Failures::new(
                config.client_failures,
                config.client_window_seconds,
                config.max_entries,
            )),
        }
    }

    /// Whether `address` may try to authenticate a client at `now`. Checked
    /// before the credentials are, so a throttled address learns nothing.
    pub fn check(&self, address: impl Into<Option<IpAddr>>, now: i64) -> Result<(), Throttled> {
        match lock(&self.addresses).retry_after(&source_network(address.into()), now) {
            Some(retry_after_seconds) => Err(Throttled {
                retry_after_seconds,
            }),
            None => Ok(()),
        }
    }

    /// Counts a wrong secret, or a secret for an unknown client.
    pub fn failed(&self, address: impl Into<Option<IpAddr>>, now: i64) {
        lock(&self.addresses).record(source_network(address.into()), now);
    }
}

/// Open client registration (RFC 7591): at most so many registration requests
/// per client address (IPv6 per /64) within an hour, on this node. Every
/// request counts, good or bad, so an address cannot probe the policy
/// endlessly either.
#[derive(Debug)]
pub struct RegistrationThrottle {
    addresses: Mutex<Failures<IpAddr>>,
}

impl RegistrationThrottle {
    pub const WINDOW_SECONDS: i64 = 3600;

    pub fn new(per_hour: usize) -> Self {
        Self {
            addresses: Mutex::new(Failures::new(per_hour, Self::WINDOW_SECONDS, 100_000)),
        }
    }

    /// Counts a request from `address` at `now`, unless it is over the limit.
    pub fn admit(&self, address: Option<IpAddr>, now: i64) -> Result<(), Throttled> {
        let key = source_network(address);
        let mut addresses = lock(&self.addresses);
        if let Some(retry_after_seconds) = addresses.retry_after(&key, now) {
            return Err(Throttled {
                retry_after_seconds,
            });
        }
        addresses.record(key, now);
        Ok(())
    }
}

/// The maps hold plain data and every update leaves them consistent, so a panic
/// elsewhere while a lock was held does not make them unusable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn account_key(login: &str) -> AccountKey {
    sha256(login.trim().to_lowercase().as_bytes())
}

/// Without a known peer address (a server with no connection info), all such
/// attempts share one bucket.
pub(crate) fn source_network(address: Option<IpAddr>) -> IpAddr {
    let address = address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Recent failure times per key: at most `limit` per key (older ones cannot
/// matter), at most `max_entries` keys.
#[derive(Debug)]
struct Failures<K> {
    limit: usize,
    window: i64,
    max_entries: usize,
    entries: HashMap<K, VecDeque<i64>>,
}

impl<K: Hash + Eq + Copy> Failures<K> {
    fn new(limit: usize, window: i64, max_entries: usize) -> Self {
        Self {
            limit: limit.max(1),
            window: window.max(1),
            max_entries: max_entries.max(1),
            entries: HashMap::new(),
        }
    }

    /// Seconds until `key` may try again, if it has reached the limit.
    fn retry_after(&mut self, key: &K, now: i64) -> Option<i64> {
        let times = self.entries.get_mut(key)?;
        let cutoff = now.saturating_sub(self.window);
        while times.front().is_some_and(|&t| t <= cutoff) {
            times.pop_front();
        }
        if times.is_empty() {
            self.entries.remove(key);
            return None;
        }
        if times.len() < self.limit {
            return None;
        }
        // The oldest of the last `limit` failures leaves the window then.
        let oldest = times.front()?;
        Some(
            oldest
                .saturating_add(self.window)
                .saturating_sub(now)
                .clamp(1, self.window),
        )
    }

    fn record(&mut self, key: K, now: i64) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            self.make_room(now);
        }
        let limit = self.limit;
        let times = self
            .entries
            .entry(key)
            .or_insert_with(|| VecDeque::with_capacity(limit));
        times.push_back(now);
        while times.len() > self.limit {
            times.pop_front();
        }
    }

    fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Drops the failures of `key` recorded at or before `at`; returns whether
    /// there were any.
    fn forget_up_to(&mut self, key: &K, at: i64) -> bool {
        let Some(times) = self.entries.get_mut(key) else {
            return false;
        };
        let before = times.len();
        times.retain(|&t| t > at);
        let dropped = times.len() < before;
        if times.is_empty() {
            self.entries.remove(key);
        }
        dropped
    }

    /// Removes one failure recorded at `at`, if it is still there.
    fn take_back(&mut self, key: &K, at: i64) {
        let Some(times) = self.entries.get_mut(key) else {
            return;
        };
        if let Some(index) = times.iter().rposition(|&t| t == at) {
            times.remove(index);
        }
        if times.is_empty() {
            self.entries.remove(key);
        }
    }

    /// Drops keys whose failures have all left the window; if that frees nothing,
    /// drops the tenth that failed least recently (so a flood costs one pass per
    /// `max_entries / 10` new keys, and the keys under attack right now stay).
    fn make_room(&mut self, now: i64) {
        let cutoff = now.saturating_sub(self.window);
        self.entries
            .retain(|_, times| times.back().is_some_and(|&t| t > cutoff));
        if self.entries.len() < self.max_entries {
            return;
        }
        let mut by_age: Vec<(i64, K)> = self
            .entries
            .iter()
            .map(|(key, times)| (times.back().copied().unwrap_or(i64::MIN), *key))
            .collect();
        let evict = (self.max_entries / 10).max(1).min(by_age.len());
        if evict < by_age.len() {
            by_age.select_nth_unstable_by_key(evict, |(last, _)| *last);
        }
        for (_, key) in by_age.iter().take(evict) {
            self.entries.remove(key);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const T0: i64 = 1_800_000_000;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn fail(throttle: &LoginThrottle, login: &str, address: IpAddr, now: i64) {
        let attempt = throttle.admit(login, address, now);
        assert!(
            attempt.is_ok(),
            "{login} from {address} at {now}: {attempt:?}"
        );
    }

    fn refused(throttle: &LoginThrottle, login: &str, address: IpAddr, now: i64) -> i64 {
        match throttle.admit(login, address, now) {
            Err(Throttled {
                retry_after_seconds,
            }) => retry_after_seconds,
            Ok(_) => unreachable!("{login} from {address} at {now} was admitted"),
        }
    }

    #[test]
    fn twenty_bad_client_secrets_lock_the_address_only() {
        let throttle = ClientAuthThrottle::default();
        for i in 0..20 {
            assert!(throttle.check(ip(1), T0 + i).is_ok());
            throttle.failed(ip(1), T0 + i);
        }
        assert_eq!(
            throttle
                .check(ip(1), T0 + 20)
                .unwrap_err()
                .retry_after_seconds,
            280
        );
        // Another address, the honest service's, is untouched.
        assert!(throttle.check(ip(2), T0 + 20).is_ok());
        // The window slides: the first failure has left it.
        assert!(throttle.check(ip(1), T0 + 300).is_ok());
    }

    #[test]
    fn five_failures_lock_the_account_from_that_address_until_the_window_slides() {
        let throttle = LoginThrottle::default();
        for i in 0..5 {
            fail(&throttle, "alice", ip(9), T0 + i64::from(i) * 100);
        }
        assert_eq!(refused(&throttle, "alice", ip(9), T0 + 500), 400);
        // Alice's own address is not locked by the failures from another.
        let own = throttle.admit("alice", ip(1), T0 + 500).unwrap();
        throttle.succeeded(own);
        assert_eq!(refused(&throttle, "alice", ip(9), T0 + 899), 1);
        // The failure at T0 has left the window: one more attempt.
        fail(&throttle, "alice", ip(9), T0 + 900);
        assert_eq!(refused(&throttle, "alice", ip(9), T0 + 901), 99);
        // Refused attempts are not counted: the window keeps sliding.
        fail(&throttle, "alice", ip(9), T0 + 1000);
    }

    #[test]
    fn the_account_key_ignores_case_and_surrounding_space() {
        let throttle = LoginThrottle::default();
        for login in ["Alice", "alice ", " ALICE", "alice", "aLiCe"] {
            fail(&throttle, login, ip(1), T0);
        }
        refused(&throttle, "alice", ip(1), T0);
    }

    #[test]
    fn a_success_clears_the_account() {
        let throttle = LoginThrottle::default();
        for _ in 0..4 {
            fail(&throttle, "alice", ip(1), T0);
        }
        let attempt = throttle.admit("alice", ip(1), T0 + 1).unwrap();
        throttle.succeeded(attempt);
        for _ in 0..5 {
            fail(&throttle, "alice", ip(1), T0 + 2);
        }
        refused(&throttle, "alice", ip(1), T0 + 2);
    }

    #[test]
    fn admitted_attempts_count_before_their_outcome() {
        // Five guesses in flight at once: the sixth is refused before any of
        // them has finished.
        let throttle = LoginThrottle::default();
        let in_flight: Vec<Admitted> = (0..5)
            .map(|_| throttle.admit("alice", ip(7), T0).unwrap())
            .collect();
        refused(&throttle, "alice", ip(7), T0);
        drop(in_flight);
        refused(&throttle, "alice", ip(7), T0);
    }

    #[test]
    fn twenty_failures_lock_the_address() {
        let throttle = LoginThrottle::default();
        for i in 0..20 {
            fail(&throttle, &format!("user{i}"), ip(1), T0 + i64::from(i));
        }
        // Even for an account it never tried, until the first failure is 15 min old.
        assert_eq!(refused(&throttle, "fresh", ip(1), T0 + 20), 880);
        fail(&throttle, "fresh", ip(1), T0 + 900);
        // The same account from another address is fine.
        fail(&throttle, "user0", ip(2), T0 + 20);
    }

    #[test]
    fn successes_do_not_use_up_the_address() {
        // A shared address (office NAT) where many people sign in correctly.
        let throttle = LoginThrottle::default();
        for i in 0..100 {
            let attempt = throttle.admit(&format!("user{i}"), ip(1), T0).unwrap();
            throttle.succeeded(attempt);
        }
        fail(&throttle, "late", ip(1), T0);
    }

    #[test]
    fn a_success_does_not_reset_the_address() {
        // An attacker with one real account cannot wipe its address's record.
        let throttle = LoginThrottle::default();
        for i in 0..19 {
            fail(&throttle, &format!("victim{i}"), ip(1), T0);
        }
        let own = throttle.admit("attacker", ip(1), T0).unwrap();
        throttle.succeeded(own);
        fail(&throttle, "victim19", ip(1), T0);
        refused(&throttle, "victim20", ip(1), T0);
    }

    #[test]
    fn others_are_never_affected() {
        let throttle = LoginThrottle::default();
        // One account locked from one address, one address locked.
        for _ in 0..5 {
            fail(&throttle, "alice", ip(65), T0);
        }
        for i in 0..20 {
            fail(&throttle, &format!("guess{i}"), ip(66), T0);
        }
        refused(&throttle, "alice", ip(65), T0);
        refused(&throttle, "bob", ip(66), T0);
        // Alice from her own address.
        let alice = throttle.admit("alice", ip(100), T0).unwrap();
        throttle.succeeded(alice);
        // Bob from his own address, and Carol anywhere else.
        for i in 0..4 {
            fail(&throttle, "bob", ip(100), T0);
            fail(&throttle, "carol", ip(101 + i), T0);
        }
        let bob = throttle.admit("bob", ip(100), T0).unwrap();
        throttle.succeeded(bob);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let throttle = LoginThrottle::default();
        for i in 0..20u16 {
            let address = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, i, i, i, i));
            fail(&throttle, &format!("user{i}"), address, T0);
        }
        let same_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0xffff, 0, 0, 1));
        let next_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        refused(&throttle, "other", same_64, T0);
        fail(&throttle, "other", next_64, T0);

        for i in 0..20 {
            fail(&throttle, &format!("v4user{i}"), ip(5), T0);
        }
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 5).to_ipv6_mapped());
        refused(&throttle, "other", mapped, T0);
    }

    #[test]
    fn memory_is_bounded_and_recent_keys_survive() {
        let throttle = LoginThrottle::new(ThrottleConfig {
            max_entries: 50,
            ..ThrottleConfig::default()
        });
        for _ in 0..5 {
            fail(&throttle, "victim", ip(1), T0);
        }
        // A flood of distinct accounts from many addresses, all after the victim's
        // failures but within the window.
        for i in 0..10_000u32 {
            let address = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            fail(
                &throttle,
                &format!("flood{i}"),
                address,
                T0 + 1 + i64::from(i / 100),
            );
        }
        assert!(lock(&throttle.accounts).entries.len() <= 50);
        assert!(lock(&throttle.addresses).entries.len() <= 50);
        // The victim's failures are the oldest, so they went first: the cost of a
        // bounded map. A recent lock survives the same flood.
        for _ in 0..5 {
            fail(&throttle, "recent", ip(1), T0 + 200);
        }
        for i in 0..40u32 {
            let address = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
            fail(&throttle, &format!("more{i}"), address, T0 + 201);
        }
        refused(&throttle, "recent", ip(1), T0 + 202);
    }

    /// A store that knows one unlock time, for every login.
    struct Unlocked(Option<i64>);

    #[async_trait::async_trait]
    impl UserStore for Unlocked {
        async fn insert_user(
            &self,
            _: &crate::store::User,
        ) -> Result<(), crate::store::StoreError> {
            Ok(())
        }
        async fn get_user(
            &self,
            _: &str,
        ) -> Result<Option<crate::store::User>, crate::store::StoreError> {
            Ok(None)
        }
        async fn find_user_by_login(
            &self,
            _: &str,
        ) -> Result<Option<crate::store::User>, crate::store::StoreError> {
            Ok(None)
        }
        async fn list_users(&self) -> Result<Vec<crate::store::User>, crate::store::StoreError> {
            Ok(Vec::new())
        }
        async fn set_user_password(
            &self,
            _: &str,
            _: &str,
            _: i64,
        ) -> Result<bool, crate::store::StoreError> {
            Ok(false)
        }
        async fn upgrade_password_hash(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<bool, crate::store::StoreError> {
            Ok(false)
        }
        async fn set_user_disabled(
            &self,
            _: &str,
            _: bool,
            _: i64,
        ) -> Result<bool, crate::store::StoreError> {
            Ok(false)
        }
        async fn delete_user(&self, _: &str) -> Result<bool, crate::store::StoreError> {
            Ok(false)
        }
        async fn update_user(
            &self,
            _: &crate::store::User,
        ) -> Result<bool, crate::store::StoreError> {
            Ok(false)
        }
        async fn set_user_unlocked(
            &self,
            _: &str,
            _: i64,
        ) -> Result<bool, crate::store::StoreError> {
            Ok(false)
        }
        async fn login_unlocked_at(
            &self,
            _: &str,
        ) -> Result<Option<i64>, crate::store::StoreError> {
            Ok(self.0)
        }
    }

    #[tokio::test]
    async fn an_unlock_drops_the_failures_before_it() {
        let throttle = LoginThrottle::default();
        for _ in 0..5 {
            fail(&throttle, "alice", ip(1), T0);
        }
        let admit = |store: Unlocked, now: i64| {
            let throttle = &throttle;
            async move { throttle.admit_login(&store, "alice", ip(1), now).await }
        };
        // No unlock, or one from before the failures: still locked.
        assert!(admit(Unlocked(None), T0 + 10).await.is_err());
        assert!(admit(Unlocked(Some(T0 - 1)), T0 + 10).await.is_err());
        // Unlocked after them: admitted, and the new failures count afresh.
        drop(admit(Unlocked(Some(T0 + 5)), T0 + 10).await.unwrap());
        for _ in 0..4 {
            drop(admit(Unlocked(Some(T0 + 5)), T0 + 11).await.unwrap());
        }
        assert!(admit(Unlocked(Some(T0 + 5)), T0 + 12).await.is_err());
        // An unlock does not lift the per-address limit.
        for i in 0..20 {
            fail(&throttle, &format!("guess{i}"), ip(2), T0);
        }
        assert!(
            throttle
                .admit_login(&Unlocked(Some(T0 + 5)), "bob", ip(2), T0 + 10)
                .await
                .is_err()
        );
    }

    #[test]
    fn expired_keys_are_dropped_before_recent_ones() {
        let mut failures = Failures::<u32>::new(5, 900, 3);
        failures.record(1, T0);
        failures.record(2, T0 + 1000);
        failures.record(3, T0 + 1000);
        failures.record(4, T0 + 1001);
        assert_eq!(failures.entries.len(), 3);
        assert!(!failures.entries.contains_key(&1));
    }

    #[test]
    fn a_clock_going_backwards_is_bounded() {
        let throttle = LoginThrottle::default();
        for _ in 0..5 {
            fail(&throttle, "alice", ip(1), T0);
        }
        assert_eq!(refused(&throttle, "alice", ip(1), T0 - 5_000), 900);
    }
}
