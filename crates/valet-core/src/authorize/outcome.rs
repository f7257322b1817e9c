//! What the browser sees after a step of the sign-in (the `authn` pipeline): a
//! page, or the redirect back to the client.

use super::response::AuthorizationResponse;
use crate::mfa::Enrolment;

/// What the browser gets next.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// The client or redirect URI cannot be trusted: tell the user, redirect nowhere.
    ErrorPage(PageError),
    /// Back to the client.
    Redirect(AuthorizationResponse),
    Login(LoginPage),
    /// The first factor is proved: the user's second factors, to choose one.
    SecondFactor(SecondFactorPage),
    /// A second factor is required and none is enrolled: TOTP enrolment.
    Enrol(EnrolPage),
    Consent(ConsentPage),
    /// The device page (RFC 8628 §3.3): enter a user code, or the decision
    /// the device will learn.
    Device(DevicePage),
}

/// What `/device` shows.
#[derive(Clone)]
pub enum DevicePage {
    /// The form to enter the user code shown on the device.
    Enter {
        status: u16,
        /// Filled in from `verification_uri_complete`.
        user_code: Option<String>,
        error: Option<String>,
        csrf: String,
        retry_after: Option<i64>,
    },
    /// Allowed: the device will get its tokens.
    Approved { client_name: String },
    /// Denied: the device is told so.
    Denied { client_name: String },
}

/// The CSRF value is not printed.
impl std::fmt::Debug for DevicePage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Enter { status, error, .. } => f
                .debug_struct("DevicePage::Enter")
                .field("status", status)
                .field("error", error)
                .finish_non_exhaustive(),
            Self::Approved { client_name } => f
                .debug_struct("DevicePage::Approved")
                .field("client_name", client_name)
                .finish(),
            Self::Denied { client_name } => f
                .debug_struct("DevicePage::Denied")
                .field("client_name", client_name)
                .finish(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PageError {
    pub status: u16,
    pub title: &'static str,
    pub message: String,
}

impl PageError {
    pub(crate) fn new(status: u16, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
        }
    }

    /// The interaction is unknown, expired, or its form was completed before.
    pub(crate) fn expired() -> Self {
        Self::new(
            400,
            "Request expired",
            "This sign-in request has expired or was already completed. Go back to the app and start again.",
        )
    }
}

#[derive(Clone)]
pub struct LoginPage {
    pub status: u16,
    pub interaction_id: String,
    pub client_name: String,
    pub login: Option<String>,
    pub error: Option<String>,
    /// The browser's CSRF value: set as a cookie and embedded in the form.
    pub csrf: String,
    /// Seconds to wait, when the attempt was throttled (sent as `Retry-After`).
    pub retry_after: Option<i64>,
}

#[derive(Clone)]
pub struct ConsentPage {
    pub interaction_id: String,
    pub client_name: String,
    /// For a client known by its metadata document: the host that published
    /// it, which the page shows since the name is the client's own claim.
    pub client_site: Option<String>,
    pub username: String,
    /// (scope, plain-words description)
    pub scopes: Vec<(String, String)>,
    pub csrf: String,
}

/// The second-factor page: one form per method the user has, each posting
/// its `method` name (see `authn::verify::second_factors`).
#[derive(Clone)]
pub struct SecondFactorPage {
    pub status: u16,
    pub interaction_id: String,
    pub client_name: String,
    /// Names of the methods offered (`totp`, `recovery_code`), in order.
    pub methods: Vec<&'static str>,
    pub error: Option<String>,
    pub csrf: String,
    pub retry_after: Option<i64>,
}

/// The TOTP enrolment page: the secret and recovery codes, shown while the
/// enrolment is pending, and the form that confirms it with a code.
pub struct EnrolPage {
    pub status: u16,
    pub interaction_id: String,
    pub client_name: String,
    pub enrolment: Enrolment,
    pub error: Option<String>,
    pub csrf: String,
    pub retry_after: Option<i64>,
}

/// The CSRF value is not printed.
impl std::fmt::Debug for SecondFactorPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorPage")
            .field("status", &self.status)
            .field("methods", &self.methods)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// Neither the secret, the recovery codes nor the CSRF value is printed.
impl std::fmt::Debug for EnrolPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolPage")
            .field("status", &self.status)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The CSRF value is not printed.
impl std::fmt::Debug for LoginPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginPage")
            .field("status", &self.status)
            .field("client_name", &self.client_name)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The CSRF value is not printed.
impl std::fmt::Debug for ConsentPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentPage")
            .field("client_name", &self.client_name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}
