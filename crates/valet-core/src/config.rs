//! Settings the authorization server's logic needs. The binary builds these from
//! its configuration file, environment and flags, and validates them there;
//! [`Settings::validate`] checks them again here, with messages that name the
//! settings (`access_token_max_ttl`), never a flag.

use std::sync::Arc;

use crate::branding::Branding;
use crate::i18n::Catalogues;
use crate::throttle::ThrottleConfig;
use valet_jose::Algorithm;

/// What the endpoints need to know about the deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer identifier (RFC 8414 §2): `https://…` with no query or fragment,
    /// and no trailing slash.
    pub issuer: String,
    /// Access token lifetime when the client has no override, in seconds.
    pub access_token_ttl: i64,
    /// No access token lives longer than this, whatever the client says.
    pub access_token_max_ttl: i64,
    /// How long a client record may be served from memory before it is read again:
    /// the bound on how late a deleted client or a rotated secret is noticed.
    pub client_cache_ttl: i64,
    pub keys: KeyPolicy,
    /// How long a sign-in lasts before the user must log in again.
    pub session_ttl: i64,
    /// A refresh token unused for this long expires.
    pub refresh_token_idle_ttl: i64,
    /// No refresh token of a grant outlives the grant by more than this.
    pub refresh_token_absolute_ttl: i64,
    /// Lifetime of ID tokens.
    pub id_token_ttl: i64,
    /// How long a user may take on the login and consent pages.
    pub interaction_ttl: i64,
    /// Audit records older than this many seconds are deleted.
    pub audit_retention: i64,
    /// Password checks that may wait for the hasher before more are refused
    /// (the sign-in form answers 503 with `Retry-After`).
    pub password_hash_queue: usize,
    /// Revocation push streams (`/statuslists/events`) open at once on this
    /// node; more are answered 503 with `Retry-After`.
    pub status_events_max_streams: usize,
    /// Seconds after which the server ends a push stream (its client reconnects).
    pub status_events_max_lifetime: i64,
    /// Who may open a push stream.
    pub status_events_auth: StatusEventsAuth,
    /// The login lock-out policy (see [`crate::throttle`]); password reset
    /// requests and second-factor codes are throttled by the same numbers.
    pub login_throttle: ThrottleConfig,
    /// Mail can go out (`smtp_url` is set): from whom. `None`: nothing that
    /// needs mail can be switched on. The transport is the server's.
    pub mail: Option<MailSettings>,
    /// Users may reset a forgotten password by mail (`/reset`).
    pub password_reset: bool,
    /// Who may create an account at `/register`.
    pub registration: Registration,
    /// Seconds a password reset link works.
    pub password_reset_ttl: i64,
    /// Seconds an email verification link works.
    pub email_verification_ttl: i64,
    /// Whether every sign-in needs a second factor.
    pub mfa: MfaPolicy,
    /// Seconds a device code and its user code work (RFC 8628 §3.2 `expires_in`).
    pub device_code_ttl: i64,
    /// The least seconds between a device's polls (RFC 8628 §3.2 `interval`);
    /// a device polling faster is told `slow_down` and waits 5 seconds more.
    pub device_poll_interval: i64,
    /// Every client must push its authorization requests to `/par` first
    /// (RFC 9126 §5); a client's own `require_pushed_authorization_requests`
    /// asks it of that client alone.
    pub require_pushed_authorization_requests: bool,
    /// DPoP proofs (RFC 9449) at the token endpoint and UserInfo.
    pub dpop: DpopPolicy,
    /// Clients that register themselves (RFC 7591) or are known by the URL of
    /// their metadata document.
    pub dynamic_clients: DynamicClients,
    /// The pages' product name, logo and accent colours (the `branding` module).
    pub branding: Arc<Branding>,
    /// The pages' languages and the default one (the `i18n` module).
    pub catalogues: Arc<Catalogues>,
    /// Benchmark mode: new password hashes are argon2id at m = 8 KiB, t = 1,
    /// p = 1 ([`crate::users::HashCost::InsecureBenchmark`]), so a load test of
    /// the sign-in flow measures the protocol. Never for real users.
    pub insecure_benchmark_password_hash: bool,
}

/// How DPoP proofs are checked (see the `dpop` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopPolicy {
    /// Proofs must carry a nonce this server issued (RFC 9449 §8); without one the
    /// answer is `use_dpop_nonce` with a fresh `DPoP-Nonce` header. Nonces are
    /// stateless (sealed under a key derived from the master key for the current
    /// period), so every node accepts every other node's.
    pub require_nonce: bool,
    /// Seconds a proof is accepted after its `iat` (§11.1); also how long its `jti`
    /// is remembered against replay.
    pub proof_max_age: i64,
}

/// Accepted values of `dpop_proof_max_age`, seconds.
pub const DPOP_PROOF_MAX_AGE_RANGE: std::ops::RangeInclusive<i64> = 5..=600;

impl Default for DpopPolicy {
    fn default() -> Self {
        Self {
            require_nonce: false,
            proof_max_age: 60,
        }
    }
}

/// Who may register a client at the registration endpoint (`client_registration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientRegistration {
    /// Nobody: the endpoint answers 404 and discovery does not list it.
    #[default]
    Closed,
    /// Whoever presents an initial access token an operator created
    /// (`valet client initial-token create`, RFC 7591 §3).
    InitialToken,
    /// Anyone, within the policy of [`DynamicClients`] and a rate per address.
    Open,
}

/// The policy for clients no operator registered: self-registered ones
/// (RFC 7591) and those known by their metadata document
/// (draft-ietf-oauth-client-id-metadata-document). Either may use
/// `authorization_code` and `refresh_token` only, never skips consent, and
/// gets only the scopes and audiences listed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicClients {
    pub registration: ClientRegistration,
    /// Scopes such a client may have (`client_registration_scopes`); one that
    /// asks for none gets all of them.
    pub scopes: Vec<String>,
    /// Audiences (RFC 8707 resources) such a client's tokens may be for
    /// (`client_registration_audiences`); without any, tokens are for Valet's
    /// UserInfo only.
    pub audiences: Vec<String>,
    /// Registrations per client address (IPv6 per /64) and hour while
    /// registration is open (`client_registration_rate`).
    pub open_rate_per_hour: usize,
    /// A `client_id` may be the https URL of the client's metadata document
    /// (`client_id_metadata_documents`).
    pub metadata_documents: bool,
    /// Metadata documents may also be at `http://` loopback URLs and on
    /// loopback addresses (`dangerous_client_metadata_allow_loopback`): for
    /// development and tests only; refused with an https issuer.
    pub dangerous_metadata_allow_loopback: bool,
    /// A fetched document is used for at least this many seconds, whatever its
    /// `Cache-Control` says (`client_metadata_min_ttl`)...
    pub metadata_min_ttl: i64,
    /// ...and at most this many (`client_metadata_max_ttl`).
    pub metadata_max_ttl: i64,
}

impl Default for DynamicClients {
    fn default() -> Self {
        Self {
            registration: ClientRegistration::Closed,
            scopes: ["openid", "profile", "email", "offline_access"]
                .map(str::to_owned)
                .to_vec(),
            audiences: Vec::new(),
            open_rate_per_hour: 10,
            metadata_documents: false,
            dangerous_metadata_allow_loopback: false,
            metadata_min_ttl: 60,
            metadata_max_ttl: 86_400,
        }
    }
}

/// When a sign-in needs a second factor (see `authn::policy::second_factor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MfaPolicy {
    /// Users who enrolled a factor prove it; clients (`require_mfa`) and
    /// requests (`acr_values`) may require one.
    #[default]
    Optional,
    /// Every user proves a second factor, enrolling one at the next sign-in
    /// if they have none.
    Required,
}

/// Who may create an account (`registration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Registration {
    /// Nobody: operators create users (`valet user create`).
    #[default]
    Closed,
    /// Anyone, at `/register`; the address is verified by mail.
    Open,
    /// Whoever holds an invitation (`valet user invite EMAIL`), for the
    /// address it was sent to.
    Invite,
}

/// How Valet's mail goes out, as far as the core needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// The sender (`mail_from`), e.g. `Valet <no-reply@example.com>`.
    pub from: String,
}

/// Bounds of `password_reset_ttl`: a minute to a day.
pub const PASSWORD_RESET_TTL_RANGE: std::ops::RangeInclusive<i64> = 60..=86_400;
/// Bounds of `email_verification_ttl`: a minute to a week.
pub const EMAIL_VERIFICATION_TTL_RANGE: std::ops::RangeInclusive<i64> = 60..=604_800;

/// Who may open the revocation push stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusEventsAuth {
    /// Anyone: the notices say only which list index changed, which the public
    /// status lists tell as well.
    #[default]
    None,
    /// A bearer access token of this server whose `aud` holds the issuer and
    /// whose `scope` holds [`STATUS_SCOPE`] (e.g. a guard's client_credentials
    /// token).
    Token,
}

/// The scope a token needs for the push stream when it requires a credential.
pub const STATUS_SCOPE: &str = "valet:status";

/// The signing key schedule.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// How long a key signs before its successor takes over.
    pub rotation_period: i64,
    /// How long a new key is published in the JWKS before it signs. Must be longer
    /// than the JWKS cache lifetime plus the key reload interval, so every cache
    /// holds the key before the first token it signs.
    pub publish_lead: i64,
    /// Extra time an old key stays published after the last token it signed has
    /// expired, for clock skew between Valet and resource servers.
    pub retention_margin: i64,
    /// The algorithm access tokens (and status list tokens) are signed with: ES256 by
    /// default, EdDSA (Ed25519) faster still. A signing key is kept for it, as for ES256
    /// and RS256.
    pub access_token_alg: Algorithm,
}

impl KeyPolicy {
    /// The JWKS `Cache-Control: max-age`: a quarter of the publication lead, at
    /// most an hour, so a cached JWKS always already holds the next key.
    pub fn jwks_max_age(&self) -> i64 {
        (self.publish_lead / 4).clamp(0, 3600)
    }
}

/// Access tokens are signed with ES256 unless `access_token_alg` says otherwise: a fraction
/// of RS256's signing cost, and understood by every JOSE library.
pub const DEFAULT_ACCESS_TOKEN_ALG: Algorithm = Algorithm::Es256;

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            rotation_period: 30 * 24 * 3600,
            publish_lead: 3600,
            retention_margin: 300,
            access_token_alg: DEFAULT_ACCESS_TOKEN_ALG,
        }
    }
}

/// Authorization codes live 60 seconds (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const CODE_TTL: i64 = 60;

impl Settings {
    /// The longest any token signed with a signing key lives (access tokens at
    /// their maximum, ID tokens): how long a superseded key must stay published.
    pub fn longest_token_ttl(&self) -> i64 {
        self.access_token_max_ttl.max(self.id_token_ttl)
    }

    /// Checks what the revocation design and the key schedule rely on; the binary
    /// checks the same with messages naming its settings, this is the last line.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=crate::store::MAX_ACCESS_TOKEN_TTL).contains(&self.access_token_max_ttl) {
            return Err(format!(
                "access_token_max_ttl must be between 1 and {} seconds, got {}",
                crate::store::MAX_ACCESS_TOKEN_TTL,
                self.access_token_max_ttl
            ));
        }
        if !(1..=self.access_token_max_ttl).contains(&self.access_token_ttl) {
            return Err(format!(
                "access_token_ttl must be between 1 and access_token_max_ttl ({}), got {}",
                self.access_token_max_ttl, self.access_token_ttl
            ));
        }
        if self.refresh_token_idle_ttl > self.refresh_token_absolute_ttl {
            return Err(format!(
                "refresh_token_idle_ttl ({}) exceeds refresh_token_absolute_ttl ({})",
                self.refresh_token_idle_ttl, self.refresh_token_absolute_ttl
            ));
        }
        if !(60..=86_400).contains(&self.device_code_ttl) {
            return Err(format!(
                "device_code_ttl must be between 60 and 86400 seconds, got {}",
                self.device_code_ttl
            ));
        }
        if !(1..=60).contains(&self.device_poll_interval) {
            return Err(format!(
                "device_poll_interval must be between 1 and 60 seconds, got {}",
                self.device_poll_interval
            ));
        }
        self.check_issuer_path()?;
        self.check_mail()?;
        if !DPOP_PROOF_MAX_AGE_RANGE.contains(&self.dpop.proof_max_age) {
            return Err(format!(
                "dpop_proof_max_age must be between {} and {} seconds, got {}",
                DPOP_PROOF_MAX_AGE_RANGE.start(),
                DPOP_PROOF_MAX_AGE_RANGE.end(),
                self.dpop.proof_max_age
            ));
        }
        self.check_dynamic_clients()?;
        if self.keys.publish_lead >= self.keys.rotation_period {
            return Err(format!(
                "key_publish_lead ({}) must be shorter than key_rotation_period ({})",
                self.keys.publish_lead, self.keys.rotation_period
            ));
        }
        Ok(())
    }

    /// The escape hatch for loopback metadata documents stays in development.
    fn check_dynamic_clients(&self) -> Result<(), String> {
        let dynamic = &self.dynamic_clients;
        if dynamic.dangerous_metadata_allow_loopback && self.is_https() {
            return Err(
                "dangerous_client_metadata_allow_loopback is for development only and is refused with an https issuer"
                    .to_owned(),
            );
        }
        if !(1..=dynamic.metadata_max_ttl).contains(&dynamic.metadata_min_ttl)
            || dynamic.metadata_max_ttl > 7 * 86_400
        {
            return Err(format!(
                "client_metadata_min_ttl ({}) must be at least 1 and at most client_metadata_max_ttl ({}), which must be at most a week",
                dynamic.metadata_min_ttl, dynamic.metadata_max_ttl
            ));
        }
        if dynamic.registration == ClientRegistration::Open && dynamic.open_rate_per_hour == 0 {
            return Err(
                "client_registration_rate must be at least 1 while client_registration is open"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// What needs mail has a mailer; link lifetimes are in range.
    fn check_mail(&self) -> Result<(), String> {
        if self.password_reset && self.mail.is_none() {
            return Err(
                "password_reset needs mail: set smtp_url (and mail_from), or leave password_reset off"
                    .to_owned(),
            );
        }
        if self.registration != Registration::Closed && self.mail.is_none() {
            return Err(
                "registration needs mail (to verify addresses): set smtp_url (and mail_from), or keep registration closed"
                    .to_owned(),
            );
        }
        for (name, value, range) in [
            (
                "password_reset_ttl",
                self.password_reset_ttl,
                PASSWORD_RESET_TTL_RANGE,
            ),
            (
                "email_verification_ttl",
                self.email_verification_ttl,
                EMAIL_VERIFICATION_TTL_RANGE,
            ),
        ] {
            if !range.contains(&value) {
                return Err(format!(
                    "{name} must be between {} and {} seconds, got {value}",
                    range.start(),
                    range.end()
                ));
            }
        }
        Ok(())
    }

    /// The issuer's path becomes the prefix of every route: only RFC 3986
    /// unreserved characters and `/` (no `{`, `}` or `*`, which a router reads as
    /// captures or wildcards, no percent-escapes, no `.`/`..` segments).
    fn check_issuer_path(&self) -> Result<(), String> {
        let after_scheme = self
            .issuer
            .split_once("://")
            .map_or(self.issuer.as_str(), |(_, rest)| rest);
        let path = after_scheme
            .find('/')
            .and_then(|at| after_scheme.get(at..))
            .unwrap_or_default();
        let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~/".contains(c);
        let dot_segment = path
            .split('/')
            .any(|segment| segment == "." || segment == "..");
        if !path.chars().all(unreserved) || dot_segment || path.contains("//") {
            return Err(format!(
                "issuer ({}): its path may hold only letters, digits, `-`, `.`, `_`, `~` and single `/` between segments other than `.` and `..`",
                self.issuer
            ));
        }
        Ok(())
    }

    /// The issuer, and so every URL Valet serves, is https.
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// Cookies get the `__Host-` prefix and `Secure` when the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.is_https()
    }

    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            access_token_ttl: 600,
            access_token_max_ttl: 3600,
            client_cache_ttl: 5,
            keys: KeyPolicy::default(),
            session_ttl: 12 * 3600,
            refresh_token_idle_ttl: 14 * 24 * 3600,
            refresh_token_absolute_ttl: 30 * 24 * 3600,
            id_token_ttl: 600,
            interaction_ttl: 900,
            audit_retention: 90 * 24 * 3600,
            password_hash_queue: crate::users::DEFAULT_MAX_WAITING,
            status_events_max_streams: 256,
            status_events_max_lifetime: 300,
            status_events_auth: StatusEventsAuth::None,
            login_throttle: ThrottleConfig::default(),
            mail: None,
            password_reset: false,
            registration: Registration::Closed,
            password_reset_ttl: 1800,
            email_verification_ttl: 86_400,
            mfa: MfaPolicy::Optional,
            device_code_ttl: 600,
            device_poll_interval: 5,
            require_pushed_authorization_requests: false,
            dpop: DpopPolicy::default(),
            dynamic_clients: DynamicClients::default(),
            branding: Arc::new(Branding::default()),
            catalogues: Arc::new(Catalogues::built_in()),
            insecure_benchmark_password_hash: false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_path_is_plain_segments() {
        for good in [
            "https://id.example",
            "https://id.example/",
            "https://id.example/valet",
            "https://id.example/a-b/c_d.e~f/",
        ] {
            assert_eq!(Settings::new(good).validate(), Ok(()), "{good}");
        }
        for bad in [
            "https://id.example/{tenant}",
            "https://id.example/a{",
            "https://id.example/*",
            "https://id.example/a%2Fb",
            "https://id.example/a//b",
            "https://id.example/../b",
            "https://id.example/./b",
        ] {
            let error = Settings::new(bad).validate().unwrap_err();
            assert!(error.starts_with("issuer ("), "{bad}: {error}");
        }
    }

    #[test]
    fn the_dpop_proof_window_is_bounded() {
        let mut settings = Settings::new("https://id.example");
        for (age, ok) in [(4, false), (5, true), (600, true), (601, false)] {
            settings.dpop.proof_max_age = age;
            let result = settings.validate();
            assert_eq!(result.is_ok(), ok, "{age}: {result:?}");
            if let Err(error) = result {
                assert!(error.starts_with("dpop_proof_max_age "), "{error}");
            }
        }
    }

    #[test]
    fn settings_enforce_what_revocation_relies_on() {
        let mut settings = Settings::new("https://id.example");
        assert_eq!(settings.validate(), Ok(()));
        settings.access_token_max_ttl = crate::store::MAX_ACCESS_TOKEN_TTL + 1;
        assert!(
            settings
                .validate()
                .is_err_and(|e| e.contains("access_token_max_ttl"))
        );
        settings.access_token_max_ttl = 300;
        settings.access_token_ttl = 301;
        assert!(
            settings
                .validate()
                .is_err_and(|e| e.contains("access_token_ttl"))
        );
    }

    /// Each refusal names the settings at fault as the configuration spells
    /// them, never a command-line flag: core serves the CLI and the admin API.
    #[test]
    fn refusals_name_settings_not_flags() {
        let base = Settings::new("https://id.example");
        let mut idle = base.clone();
        idle.refresh_token_idle_ttl = idle.refresh_token_absolute_ttl + 1;
        let mut lead = base.clone();
        lead.keys.publish_lead = lead.keys.rotation_period;
        let mut max = base.clone();
        max.access_token_max_ttl = 0;
        for (settings, names) in [
            (
                idle,
                ["refresh_token_idle_ttl", "refresh_token_absolute_ttl"],
            ),
            (lead, ["key_publish_lead", "key_rotation_period"]),
            (max, ["access_token_max_ttl", "access_token_max_ttl"]),
        ] {
            let Err(message) = settings.validate() else {
                panic!("{names:?} accepted");
            };
            assert!(names.iter().all(|n| message.contains(n)), "{message}");
            assert!(!message.contains("--"), "{message}");
        }
    }

    #[test]
    fn features_that_need_mail_refuse_to_start_without_it() {
        let mut settings = Settings::new("https://id.example");
        settings.password_reset = true;
        let error = settings.validate().unwrap_err();
        assert!(
            error.contains("password_reset") && error.contains("smtp_url"),
            "{error}"
        );
        settings.mail = Some(MailSettings {
            from: "valet@id.example".to_owned(),
        });
        assert_eq!(settings.validate(), Ok(()));
        settings.password_reset_ttl = 10;
        assert!(
            settings
                .validate()
                .is_err_and(|e| e.contains("password_reset_ttl"))
        );
    }

    #[test]
    fn superseded_keys_outlive_id_tokens_too() {
        // With access tokens shorter than ID tokens, a retired RS256 key must
        // still stay published as long as the ID tokens it signed.
        let mut settings = Settings::new("https://id.example");
        settings.access_token_max_ttl = 60;
        settings.access_token_ttl = 60;
        assert_eq!(settings.longest_token_ttl(), settings.id_token_ttl);
        settings.access_token_max_ttl = 7200;
        assert_eq!(settings.longest_token_ttl(), 7200);
    }
}
