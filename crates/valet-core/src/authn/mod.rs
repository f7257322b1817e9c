//! Sign-in as a pipeline of steps, behind the authorization endpoint and its
//! login and consent forms (RFC 6749 §4.1, OAuth 2.1 §4.1, OpenID Connect Core
//! §3.1.2):
//!
//! ```text
//!  GET/POST /authorize
//!        │
//!     identify ──client or redirect_uri bad──▶ error page (never redirected)
//!        │     ──request bad──▶ error to redirect_uri (state, iss)
//!        ▼
//!  ┌─▶ policy::second_factor ──Verify──▶ [AwaitingSecondFactor(Proved)] ─┐
//!  │     │ NotNeeded           ──Enrol───▶ [AwaitingEnrolment(Proved)]    │
//!  │     ▼                                 POST /second-factor: verify::{totp,
//!  │   policy::next ──Refuse (prompt=none)──▶ error    recovery_code} ─────┘
//!  │     │ Verify(method)     │ Consent               │ Issue          (Proved + method)
//!  │     ▼                    ▼                       ▼
//!  │  [AwaitingLogin]      [AwaitingConsent(SignedIn)] issue ──▶ code to redirect_uri
//!  │     │ POST /login        │ POST /consent                (query or form_post)
//!  │     ▼                    ├─allow──▶ issue
//!  └── verify::{method}       └─deny───▶ access_denied to redirect_uri
//!      → Proved → (no second factor needed) sign_in → SignedIn
//! ```
//!
//! Second factors: a sign-in proved by one method ([`Proved`]: the user and
//! the `amr` so far; no session yet) goes to `AwaitingSecondFactor` when the
//! user has a factor enrolled, or to `AwaitingEnrolment` when the `mfa`
//! setting, the client's `require_mfa` or `acr_values` require two factors
//! and the user has none; a signed-in session with one factor is stepped up
//! the same way. Both stages are stored only (never carried by the browser),
//! so a form cannot claim a proved first factor. The session starts once the
//! factors are complete, with every method in its `amr`.
//!
//! Each step is a file: `identify` (which request, from which client),
//! [`verify`] (one file per method: who the user is), `consent`, `issue`.
//! [`policy`] alone decides which steps a request needs (`prompt`, `max_age`,
//! remembered consent, first-party clients), so a new requirement is a rule
//! there and a new method a file under `verify/`, not a branch in the flow.
//! [`pending::Stage`] is the state an interaction holds between the browser's
//! requests; a step's handler consumes it and yields the next one. The entry
//! points the HTTP layer calls are a file each under `entry/` (the request,
//! the login form, the second factor, consent, the account page); each hands
//! over to `step::Step`, which takes the steps.
//!
//! Until the user signs in, the pending request is carried by the browser,
//! sealed in the login form (an anonymous request writes nothing to the store);
//! from the sign-in on it lives in the store as an interaction. Either way any
//! node can serve the next step, and each form completes once. Each form is
//! bound to the browser by a CSRF value that is both a cookie and a form field,
//! and whose hash the request keeps.
//!
//! A form's steps write nothing as they go: what they would store (the
//! interaction's change, the session a sign-in starts, the next form's
//! interaction, the consent, the grant and its code) is one
//! [`crate::store::FormWrite`], made in one transaction at the step that ends
//! the form and refused as a whole if the form was completed meanwhile.
//!
//! The account page's sign-in ([`account`]) runs these same steps for a
//! built-in first-party client, from `GET /account` ([`sign_in_to_account`]);
//! where the issue step would send a code, it sends the browser back to the page.
//!
//! This lives apart from [`crate::authorize`] (the endpoint's parameters and
//! responses) because the steps are not the endpoint's own: the device grant
//! and federation will run the same steps from other entry points.

pub mod account;
pub(crate) mod consent;
mod device;
mod entry;
pub(crate) mod identify;
pub(crate) mod issue;
pub(crate) mod pending;
pub mod policy;
mod pushed;
mod step;
pub mod verify;

pub use crate::session::Cookies;
pub use entry::account::{sign_in_to_account, sign_in_to_console};
pub use entry::authorize::{Authorized, authorize};
pub use entry::consent::submit_consent;
pub use entry::device::{device_page, submit_device_code};
pub use entry::login::{passkey_options, submit_login, submit_passkey_login};
pub use entry::second_factor::{second_factor_passkey_options, submit_second_factor};
pub use entry::upstream::{UnknownIdentityPage, UpstreamOutcome, finish_upstream, start_upstream};
pub use entry::upstream_account::{create_upstream_account, keep_for_linking};
pub use pending::{
    CARRIED_KEY_PURPOSE, DeviceLink, PendingAuthorization, Stage, carried_key_period,
};
pub(crate) use step::issuer_label;
pub use verify::{Method, Proved, SignedIn};
