//! `GET/POST /authorize`: a new authorization request enters the steps.

use valet_protocol::Form;

use crate::AuthorizationServer;
use crate::authorize::AuthorizeOutcome;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::session::{self, Cookies};

use crate::authn::identify::{self, Identified};
use crate::authn::pending::Whereabouts;
use crate::authn::policy;
use crate::authn::pushed::{self, Source};
use crate::authn::step::Step;
use crate::authn::verify::SignedIn;

/// What `/authorize` answers, and the language the request asked for.
pub struct Authorized {
    pub outcome: AuthorizeOutcome,
    /// The `ui_locales` of the request as served (OIDC Core §3.1.2.1): the
    /// pushed request's (RFC 9126 §4) or the request object's (RFC 9101
    /// §6.3) when it came that way, else the browser's; `None` when the
    /// request had none.
    pub ui_locales: Option<String>,
}

/// RFC 6749 §4.1.1: the authorization request, from the query (GET) or form (POST).
pub async fn authorize(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<Authorized, OAuthError> {
    let now = context.now;
    let pushed_form;
    let (form, pushed) = match pushed::resolve(server, form, now).await? {
        Ok(Source::Direct) => (form, false),
        Ok(Source::Pushed(pushed)) => {
            pushed_form = pushed;
            (&pushed_form, true)
        }
        Err(page) => {
            return Ok(Authorized {
                outcome: AuthorizeOutcome::ErrorPage(page),
                ui_locales: None,
            });
        }
    };
    let ui_locales = identify::ui_locales_of(form);
    let Identified {
        client,
        request,
        csrf,
        ui_locales,
    } = match identify::request(server, form, pushed, cookies.csrf, now).await? {
        Ok(identified) => identified,
        Err(outcome) => {
            return Ok(Authorized {
                outcome,
                ui_locales,
            });
        }
    };
    let session = session::lookup(server.store.as_ref(), cookies.session, now).await?;
    let signed_in = session
        .filter(|s| policy::session_counts(&request, s, now))
        .map(|s| SignedIn::from(&s));
    let step = Step {
        client: &client,
        at: Whereabouts::Fresh,
        csrf,
        login: request.login_hint.clone(),
        signing_in: None,
        username: None,
    };
    let outcome = step
        .advance(server, request, signed_in.as_ref(), context)
        .await?;
    Ok(Authorized {
        outcome,
        ui_locales,
    })
}
