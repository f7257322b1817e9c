//! The first admin API client: a confidential `client_credentials` client
//! with both admin scopes, for the admin audience, under a chosen id, so
//! automation can be pointed at a known client id. Created once: a second
//! bootstrap refuses rather than silently handing out a new secret.

use super::access::{ADMIN_SCOPES, admin_audience};
use super::clients::{Provenance, RegisteredClient};
use super::{Admin, AdminError, Field, NewClient};

/// The admin client's id unless another is chosen.
pub const DEFAULT_ADMIN_CLIENT_ID: &str = "valet-admin";

impl Admin<'_> {
    /// Registers the admin API client `client_id` for `issuer`'s admin
    /// audience; audited as `client.created`. A conflict on `client_id` when
    /// it exists (rotate its secret instead).
    pub async fn bootstrap_admin_client(
        &self,
        client_id: &str,
        issuer: &str,
    ) -> Result<RegisteredClient, AdminError> {
        if client_id.is_empty()
            || client_id.len() > 128
            || !client_id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
        {
            return Err(AdminError::invalid(
                Field::new("client_id"),
                Some(client_id.to_owned()),
                "use 1 to 128 letters, digits, '-', '.', '_' or '~'",
            ));
        }
        if self.store().get_client(client_id).await?.is_some() {
            return Err(AdminError::conflict(
                Field::new("client_id"),
                Some(client_id.to_owned()),
                "this client exists already; rotate its secret to get a new one",
            ));
        }
        let new = NewClient {
            name: "Valet admin API".to_owned(),
            grant_types: vec!["client_credentials".to_owned()],
            scopes: ADMIN_SCOPES.iter().map(|&scope| scope.to_owned()).collect(),
            audiences: vec![admin_audience(issuer)],
            ..NewClient::default()
        };
        self.register_client_as(
            new,
            Provenance {
                client_id: Some(client_id.to_owned()),
                ..Provenance::default()
            },
        )
        .await
    }
}
