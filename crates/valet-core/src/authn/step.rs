//! A request between steps ([`Step`]): it asks [`policy`] where to go next and
//! takes that step, each transition consuming the stage it leaves. The entry
//! points (under [`super::entry`]) open a request or a form's interaction, run
//! the step its stage waits for, and hand over to a `Step`.

use valet_protocol::{ErrorCode, Form};

use super::account;
use super::consent;
use super::pending::{self, PendingAuthorization, Stage, Whereabouts};
use super::policy::{self, Next, SecondFactor};
use super::verify::{self, Method, Proved, Retry, SignedIn, SigningIn, passkey};
use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::authorize::{
    AuthorizationResponse, AuthorizeOutcome, EnrolPage, LoginPage, PageError, SecondFactorPage,
};
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::mfa::{self, Enrolment};
use crate::session::NewSession;
use crate::store::{Client, FormWrite, FormWritten};

/// A request between steps: its client, where its interaction lives, and what
/// the next page shows.
pub(super) struct Step<'a> {
    pub(super) client: &'a Client,
    pub(super) at: Whereabouts,
    pub(super) csrf: String,
    /// The username to fill in on a login page.
    pub(super) login: Option<String>,
    /// A sign-in on this form whose session is not stored yet: the step's
    /// write stores it ([`Step::write`]).
    pub(super) signing_in: Option<SigningIn>,
    /// The signed-in user's username, when this form has read the user: the
    /// consent page shows it without reading the user again.
    pub(super) username: Option<String>,
}

/// What a step's write did, and whether it stored the session of a sign-in
/// on its form (the handler sets the cookie only then).
struct Written {
    outcome: FormWritten,
    session_stored: bool,
}

impl Step<'_> {
    /// Asks the policy for the next step and takes it: the transition from the
    /// stage just left (`AwaitingLogin`, signed in or not) to the next one.
    pub(super) async fn advance(
        self,
        server: &AuthorizationServer,
        request: PendingAuthorization,
        signed_in: Option<&SignedIn>,
        context: &RequestContext,
    ) -> Result<AuthorizeOutcome, OAuthError> {
        if let Some(user) = signed_in {
            let proved = Proved::from(user);
            match self.second_factor_needed(server, &request, &proved).await? {
                SecondFactor::NotNeeded => {}
                // OIDC Core §3.1.2.1: prompt=none never shows a page.
                _ if request.prompt.none => {
                    return Ok(self.refuse(
                        server,
                        &request,
                        ErrorCode::InteractionRequired,
                        "the user must confirm the sign-in with a second factor",
                    ));
                }
                SecondFactor::Verify => {
                    return self
                        .into_second_factor(server, request, proved, context.now)
                        .await;
                }
                SecondFactor::Enrol => {
                    return self
                        .into_enrolment(server, request, proved, context.now)
                        .await;
                }
            }
        }
        let (outcome, _) = self
            .past_second_factor(server, request, signed_in, context)
            .await?;
        Ok(outcome)
    }

    /// Makes the step's writes together with the session of a sign-in on its
    /// form: one transaction, refused if the form was completed meanwhile. The
    /// sign-in is audited once its session is stored.
    async fn write(
        &mut self,
        server: &AuthorizationServer,
        mut write: FormWrite,
    ) -> Result<Written, OAuthError> {
        let signing_in = self.signing_in.take();
        write.session = signing_in.as_ref().map(|s| s.start.clone());
        let outcome = if write.is_empty() {
            FormWritten::Written
        } else {
            server.store.write_form(&write).await?
        };
        let session_stored = match signing_in {
            Some(signing_in) if outcome != FormWritten::Refused => {
                server.audit(signing_in.audit);
                true
            }
            _ => false,
        };
        Ok(Written {
            outcome,
            session_stored,
        })
    }

    /// Stores the session of a sign-in on this form when the next step writes
    /// nothing else; whether there was one.
    async fn write_session_alone(
        &mut self,
        server: &AuthorizationServer,
    ) -> Result<bool, OAuthError> {
        if self.signing_in.is_none() {
            return Ok(false);
        }
        let written = self.write(server, FormWrite::default()).await?;
        Ok(written.session_stored)
    }

    /// [`Step::advance`] once the user's second factor, if one is needed, is
    /// proved: consent, the code, or the login page; and whether the session
    /// of a sign-in on this form was stored.
    async fn past_second_factor(
        mut self,
        server: &AuthorizationServer,
        request: PendingAuthorization,
        signed_in: Option<&SignedIn>,
        context: &RequestContext,
    ) -> Result<(AuthorizeOutcome, bool), OAuthError> {
        let skip_consent = self.client.skip_consent;
        let mut next = policy::next(&request, skip_consent, signed_in, None);
        if let (Next::LookUpConsent, Some(user)) = (next, signed_in) {
            let covered = consent::remembered(server, self.client, &request, &user.user_id).await?;
            next = policy::next(&request, skip_consent, signed_in, Some(covered));
        }
        let outcome = match (next, signed_in) {
            (Next::Consent, Some(user)) => {
                return self.into_consent(server, request, user, context.now).await;
            }
            (Next::Issue, Some(user)) => {
                return self.into_issue(server, &request, user, context.now).await;
            }
            (Next::Refuse(code, description), _) => {
                self.refuse(server, &request, code, description)
            }
            (Next::Verify(_), _) => {
                let session_stored = self.write_session_alone(server).await?;
                return Ok((
                    self.into_login(server, &request, context.now)?,
                    session_stored,
                ));
            }
            // The policy asks for consent or a code only for a signed-in user.
            (Next::Consent | Next::Issue | Next::LookUpConsent, _) => {
                AuthorizeOutcome::ErrorPage(PageError::expired())
            }
        };
        let session_stored = self.write_session_alone(server).await?;
        Ok((outcome, session_stored))
    }

    /// The error `code` back to the client.
    fn refuse(
        &self,
        server: &AuthorizationServer,
        request: &PendingAuthorization,
        code: ErrorCode,
        description: &str,
    ) -> AuthorizeOutcome {
        // A device's request has no redirect URI: the browser is told.
        if request.device.is_some() {
            return AuthorizeOutcome::ErrorPage(PageError::new(
                400,
                "Request refused",
                description,
            ));
        }
        AuthorizeOutcome::Redirect(AuthorizationResponse::error(
            &request.redirect_uri,
            request.response_mode,
            code,
            description,
            request.state.as_deref(),
            &server.settings.issuer,
        ))
    }

    /// Whether `proved` is enough, or a second factor (or its enrolment) must
    /// follow; the rule is [`policy::second_factor`].
    async fn second_factor_needed(
        &self,
        server: &AuthorizationServer,
        request: &PendingAuthorization,
        proved: &Proved,
    ) -> Result<SecondFactor, OAuthError> {
        if mfa::is_multi_factor(&proved.amr) {
            return Ok(SecondFactor::NotNeeded);
        }
        let enrolled = mfa::enrolled(server.store.as_ref(), &proved.user_id)
            .await?
            .any()
            || passkey::enrolled(server, &proved.user_id).await?;
        let required = policy::mfa_required(server.settings.mfa, self.client, request);
        Ok(policy::second_factor(&proved.amr, enrolled, required))
    }

    /// The user proved `proved`: a second factor (or its enrolment) follows,
    /// or the session starts and the request goes on.
    pub(super) async fn proved(
        self,
        server: &AuthorizationServer,
        request: PendingAuthorization,
        proved: Proved,
        old_cookie: Option<&str>,
        context: &RequestContext,
    ) -> Result<(AuthorizeOutcome, Option<NewSession>), OAuthError> {
        let now = context.now;
        match self.second_factor_needed(server, &request, &proved).await? {
            SecondFactor::Verify => Ok((
                self.into_second_factor(server, request, proved, now)
                    .await?,
                None,
            )),
            SecondFactor::Enrol => Ok((
                self.into_enrolment(server, request, proved, now).await?,
                None,
            )),
            SecondFactor::NotNeeded => {
                let client_id = &self.client.client_id;
                let (new_session, signing_in) =
                    verify::start_session(server, &proved, old_cookie, client_id, context)?;
                let signed_in = SignedIn::from(&new_session.session);
                let step = Step {
                    signing_in: Some(signing_in),
                    ..self
                };
                // Checked just above for what the session now holds: not asked again.
                let (outcome, session_stored) = step
                    .past_second_factor(server, request, Some(&signed_in), context)
                    .await?;
                Ok((outcome, session_stored.then_some(new_session)))
            }
        }
    }

    /// `AwaitingSecondFactor`: the interaction is stored in that stage, with
    /// what the user proved so far; the page offers the enrolled factors.
    async fn into_second_factor(
        self,
        server: &AuthorizationServer,
        request: PendingAuthorization,
        proved: Proved,
        now: i64,
    ) -> Result<AuthorizeOutcome, OAuthError> {
        let methods = verify::second_factors(server, &proved.user_id).await?;
        let request = PendingAuthorization {
            stage: Stage::AwaitingSecondFactor(proved),
            ..request
        };
        let Some((step, _)) = self.advance_to(server, &request, now).await? else {
            return Ok(AuthorizeOutcome::ErrorPage(PageError::expired()));
        };
        Ok(AuthorizeOutcome::SecondFactor(
            step.second_factor_page(&methods, None),
        ))
    }

    /// `AwaitingEnrolment`: a second factor is required and none is enrolled;
    /// a TOTP enrolment starts (its secret and recovery codes kept pending).
    async fn into_enrolment(
        self,
        server: &AuthorizationServer,
        request: PendingAuthorization,
        proved: Proved,
        now: i64,
    ) -> Result<AuthorizeOutcome, OAuthError> {
        let store = server.store.as_ref();
        let account = enrolment_label(server, &proved.user_id).await?;
        let issuer = issuer_label(&server.settings.issuer);
        let Some(enrolment) = mfa::begin_totp(
            store,
            &server.master,
            &proved.user_id,
            &account,
            issuer,
            now,
        )
        .await?
        else {
            // Enrolled meanwhile (elsewhere): ask for it.
            return self.into_second_factor(server, request, proved, now).await;
        };
        let request = PendingAuthorization {
            stage: Stage::AwaitingEnrolment(proved),
            ..request
        };
        let Some((step, _)) = self.advance_to(server, &request, now).await? else {
            return Ok(AuthorizeOutcome::ErrorPage(PageError::expired()));
        };
        Ok(AuthorizeOutcome::Enrol(step.enrol_page(enrolment, None)))
    }

    /// Checks the second-factor form: on success the sign-in goes on with the
    /// method added to what was proved, otherwise the page again.
    pub(super) async fn second_factor(
        self,
        server: &AuthorizationServer,
        form: &Form,
        request: PendingAuthorization,
        proved: Proved,
        old_cookie: Option<&str>,
        context: &RequestContext,
    ) -> Result<(AuthorizeOutcome, Option<NewSession>), OAuthError> {
        let methods = verify::second_factors(server, &proved.user_id).await?;
        let chosen = form
            .optional("method")
            .ok()
            .flatten()
            .and_then(Method::from_name)
            .filter(|method| methods.contains(method));
        let client_id = &self.client.client_id;
        let result = match chosen {
            Some(method) => {
                verify::check_second_factor(
                    server,
                    method,
                    form,
                    &proved.user_id,
                    client_id,
                    context,
                )
                .await?
            }
            None => Err(Retry::new(400, "Choose how to confirm it is you.")),
        };
        match result {
            Ok(method) => {
                self.proved(server, request, proved.and(method), old_cookie, context)
                    .await
            }
            Err(retry) => Ok((
                AuthorizeOutcome::SecondFactor(self.second_factor_page(&methods, Some(retry))),
                None,
            )),
        }
    }

    /// Checks the enrolment form's code: on success the credential is the
    /// user's and the sign-in goes on with it proved, otherwise the page again.
    pub(super) async fn enrolment(
        self,
        server: &AuthorizationServer,
        form: &Form,
        request: PendingAuthorization,
        proved: Proved,
        old_cookie: Option<&str>,
        context: &RequestContext,
    ) -> Result<(AuthorizeOutcome, Option<NewSession>), OAuthError> {
        let client_id = &self.client.client_id;
        let user_id = &proved.user_id;
        match verify::totp::confirm(server, form, user_id, client_id, context).await? {
            Ok(()) => {
                server.audit(
                    AuditEvent::new(AuditKind::MfaEnrolled, context.now)
                        .user(user_id)
                        .client(client_id)
                        .address(context.address)
                        .request(&context.id)
                        .detail("method", Method::Totp.name()),
                );
                let proved = proved.and(Method::Totp);
                self.proved(server, request, proved, old_cookie, context)
                    .await
            }
            Err(retry) => {
                let account = enrolment_label(server, user_id).await?;
                let issuer = issuer_label(&server.settings.issuer);
                let store = server.store.as_ref();
                let pending = mfa::pending_totp(store, &server.master, user_id, &account, issuer);
                let Some(enrolment) = pending.await? else {
                    return Ok((AuthorizeOutcome::ErrorPage(PageError::expired()), None));
                };
                Ok((
                    AuthorizeOutcome::Enrol(self.enrol_page(enrolment, Some(retry))),
                    None,
                ))
            }
        }
    }

    fn second_factor_page(self, methods: &[Method], retry: Option<Retry>) -> SecondFactorPage {
        let (status, error, retry_after) = split_retry(retry);
        SecondFactorPage {
            status,
            interaction_id: self.interaction_value(),
            client_name: self.client.name.clone(),
            methods: methods.iter().map(|method| method.name()).collect(),
            error,
            csrf: self.csrf,
            retry_after,
        }
    }

    fn enrol_page(self, enrolment: Enrolment, retry: Option<Retry>) -> EnrolPage {
        let (status, error, retry_after) = split_retry(retry);
        EnrolPage {
            status,
            interaction_id: self.interaction_value(),
            client_name: self.client.name.clone(),
            enrolment,
            error,
            csrf: self.csrf,
            retry_after,
        }
    }

    fn interaction_value(&self) -> String {
        match &self.at {
            Whereabouts::Carried(value) | Whereabouts::Stored(value) => value.clone(),
            Whereabouts::Fresh => String::new(),
        }
    }

    /// `AwaitingLogin`: nothing is stored for an anonymous request; the login
    /// form carries it, sealed.
    fn into_login(
        self,
        server: &AuthorizationServer,
        request: &PendingAuthorization,
        now: i64,
    ) -> Result<AuthorizeOutcome, OAuthError> {
        let expires_at = now.saturating_add(server.settings.interaction_ttl);
        let Some(carried) = pending::carry(&server.request_keys, request, now, expires_at)? else {
            // RFC 6749 §4.1.2.1: the request is malformed for this server.
            return Ok(AuthorizeOutcome::Redirect(AuthorizationResponse::error(
                &request.redirect_uri,
                request.response_mode,
                ErrorCode::InvalidRequest,
                "the authorization request is too large to carry through the sign-in; shorten state, nonce, login_hint, scope or resource",
                request.state.as_deref(),
                &server.settings.issuer,
            )));
        };
        let step = Step {
            at: Whereabouts::Carried(carried),
            ..self
        };
        Ok(AuthorizeOutcome::Login(step.login_page(200, None, None)))
    }

    /// Stores the interaction in `request`'s stage (or moves it on to it), with
    /// the session of a sign-in on this form: the step at the interaction the
    /// next form names and whether that session was stored, or `None` if the
    /// form was completed meanwhile.
    async fn advance_to(
        mut self,
        server: &AuthorizationServer,
        request: &PendingAuthorization,
        now: i64,
    ) -> Result<Option<(Self, bool)>, OAuthError> {
        let ttl = server.settings.interaction_ttl;
        let (write, id) = pending::advancing(&self.at, request, ttl, now)?;
        let written = self.write(server, write).await?;
        if written.outcome == FormWritten::Refused {
            return Ok(None);
        }
        let step = Step {
            at: Whereabouts::Stored(id),
            ..self
        };
        Ok(Some((step, written.session_stored)))
    }

    /// `AwaitingConsent`: the interaction is stored (or moved on) in that stage,
    /// with the session of a sign-in on this form.
    async fn into_consent(
        self,
        server: &AuthorizationServer,
        request: PendingAuthorization,
        user: &SignedIn,
        now: i64,
    ) -> Result<(AuthorizeOutcome, bool), OAuthError> {
        let request = PendingAuthorization {
            stage: Stage::AwaitingConsent(user.clone()),
            ..request
        };
        let Some((step, session_stored)) = self.advance_to(server, &request, now).await? else {
            return Ok((AuthorizeOutcome::ErrorPage(PageError::expired()), false));
        };
        let id = step.interaction_value();
        let page = consent::page(
            server,
            step.client,
            &request,
            id,
            &user.user_id,
            step.username,
            step.csrf,
        );
        Ok((AuthorizeOutcome::Consent(page.await?), session_stored))
    }

    /// Completes the interaction (once) and issues the code: one write, with
    /// the session of a sign-in on this form.
    async fn into_issue(
        mut self,
        server: &AuthorizationServer,
        request: &PendingAuthorization,
        user: &SignedIn,
        now: i64,
    ) -> Result<(AuthorizeOutcome, bool), OAuthError> {
        let ttl = server.settings.interaction_ttl;
        let mut write = pending::completing(&self.at, request, ttl, now)?;
        // The account page's own client signs in with nothing to issue; a
        // device's request issues its grant where the device learns of it.
        let issuing = if account::is_account(&self.client.client_id) || request.device.is_some() {
            None
        } else {
            Some(super::issue::prepare(server, self.client, request, user, now).await?)
        };
        let response = issuing.map(|issuing| issuing.add_to(&mut write));
        let written = self.write(server, write).await?;
        let outcome = match (written.outcome, response) {
            (FormWritten::Refused, _) => AuthorizeOutcome::ErrorPage(PageError::expired()),
            (FormWritten::UserDisabled, _) => {
                AuthorizeOutcome::Redirect(super::issue::refused(server, request))
            }
            (FormWritten::Written, Some(response)) => AuthorizeOutcome::Redirect(response),
            (FormWritten::Written, None) => match &request.device {
                // A device's request: the decision is the device's to learn.
                Some(link) => {
                    super::device::approve(server, self.client, request, link, user, now).await?
                }
                None => AuthorizeOutcome::Redirect(account::back_to_account(server, request)),
            },
        };
        Ok((outcome, written.session_stored))
    }

    pub(super) fn login_page(
        self,
        status: u16,
        error: Option<String>,
        retry_after: Option<i64>,
    ) -> LoginPage {
        let interaction_id = match self.at {
            Whereabouts::Carried(value) | Whereabouts::Stored(value) => value,
            Whereabouts::Fresh => String::new(),
        };
        LoginPage {
            status,
            interaction_id,
            client_name: self.client.name.clone(),
            login: self.login,
            error,
            csrf: self.csrf,
            retry_after,
        }
    }
}

/// A page's status, words and wait from a retry (none: 200).
fn split_retry(retry: Option<Retry>) -> (u16, Option<String>, Option<i64>) {
    match retry {
        Some(retry) => (retry.status, Some(retry.error), retry.retry_after),
        None => (200, None, None),
    }
}

/// The account name an authenticator app shows: the username.
async fn enrolment_label(
    server: &AuthorizationServer,
    user_id: &str,
) -> Result<String, OAuthError> {
    Ok(server
        .store
        .get_user(user_id)
        .await?
        .map_or_else(|| user_id.to_owned(), |user| user.username))
}

/// The issuer as an authenticator app names it: its host (and path).
pub(crate) fn issuer_label(issuer: &str) -> &str {
    issuer.split_once("://").map_or(issuer, |(_, rest)| rest)
}
