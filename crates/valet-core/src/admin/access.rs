//! Who may use the admin API: the scopes and the audience its access tokens
//! must carry (checked in `endpoint::admin_api`).

/// The scope that lets a token read through the admin API.
pub const ADMIN_READ_SCOPE: &str = "admin:read";
/// The scope that lets a token change things through the admin API (it does
/// not imply `admin:read`).
pub const ADMIN_WRITE_SCOPE: &str = "admin:write";
/// Both admin scopes.
pub const ADMIN_SCOPES: [&str; 2] = [ADMIN_READ_SCOPE, ADMIN_WRITE_SCOPE];

/// The audience an admin API token must be issued for: the issuer followed
/// by `/admin`, so a token for any other resource server is never accepted.
pub fn admin_audience(issuer: &str) -> String {
    format!("{}/admin", issuer.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_audience_hangs_off_the_issuer() {
        assert_eq!(
            admin_audience("https://id.example.com"),
            "https://id.example.com/admin"
        );
        assert_eq!(
            admin_audience("https://id.example.com/tenant/"),
            "https://id.example.com/tenant/admin"
        );
    }
}
