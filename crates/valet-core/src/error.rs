//! The one error type of the authorization server's endpoints. It carries the RFC
//! error code, a description safe to show the client, and a source for the logs
//! only. Turning it into an HTTP response happens in exactly one place, in
//! `valet-server`.

use std::borrow::Cow;
use std::fmt;

use valet_protocol::ErrorCode;
use valet_protocol::token::RequestError;

use crate::store::StoreError;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub struct OAuthError {
    code: ErrorCode,
    description: Option<Cow<'static, str>>,
    /// Log-only detail: never sent to the client.
    source: Option<BoxError>,
    /// Set when the caller is throttled: seconds until it may try again.
    retry_after: Option<i64>,
    /// A fresh DPoP nonce for the `DPoP-Nonce` header (RFC 9449 §8).
    dpop_nonce: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: Some(description.into()),
            source: None,
            retry_after: None,
            dpop_nonce: None,
        }
    }

    /// A 5xx: the client sees only `server_error`; the cause goes to the log.
    pub fn server(source: impl Into<BoxError>) -> Self {
        Self {
            code: ErrorCode::ServerError,
            description: None,
            source: Some(source.into()),
            retry_after: None,
            dpop_nonce: None,
        }
    }

    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self {
            code: ErrorCode::TemporarilyUnavailable,
            description: None,
            source: Some(source.into()),
            retry_after: None,
            dpop_nonce: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// Too many failed client authentications from the caller's address: sent as
    /// 429 with `Retry-After` (RFC 6585 §4), keeping the `invalid_client` code.
    pub fn client_throttled(retry_after_seconds: i64) -> Self {
        Self {
            retry_after: Some(retry_after_seconds),
            ..Self::invalid_client(format!(
                "too many failed client authentications from this address; try again in {retry_after_seconds} seconds"
            ))
        }
    }

    /// Marks the caller as throttled: answered 429 with `Retry-After` (RFC 6585 §4).
    pub fn with_retry_after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Seconds the caller must wait, when it is throttled.
    pub fn retry_after(&self) -> Option<i64> {
        self.retry_after
    }

    /// Sends `nonce` in a `DPoP-Nonce` header with the error (RFC 9449 §8).
    pub fn with_dpop_nonce(mut self, nonce: String) -> Self {
        self.dpop_nonce = Some(nonce);
        self
    }

    /// The nonce for the `DPoP-Nonce` header, if one goes with this error.
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
    }

    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The client-visible description; `None` for server-side failures.
    pub fn description(&self) -> Option<&str> {
        match self.code {
            ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => None,
            _ => self.description.as_deref(),
        }
    }

    pub fn log_source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthError")
            .field("code", &self.code)
            .field("description", &self.description)
            .field("source", &self.source.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl From<RequestError> for OAuthError {
    fn from(error: RequestError) -> Self {
        Self::new(error.code, error.description)
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Backend(_) => Self::unavailable(error),
            StoreError::Conflict | StoreError::Corrupt(_) => Self::server(error),
        }
    }
}

impl std::error::Error for OAuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}
