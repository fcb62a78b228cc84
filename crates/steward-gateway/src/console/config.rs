//! The `console:` section of steward.yaml.
//!
//! ```yaml
//! console:
//!   enabled: true                 # default; false switches /ui off
//!   admin_role: steward:admin     # may also review tool pins
//!   viewer_role: steward:viewer   # sees every approval (deciding one needs the roles it names)
//!   approver_role: steward:approver  # what the local operator of `auth: none` holds
//!   session_ttl: 8h               # a sign-in lasts this long
//!   denial_burst: 20              # alert when one principal is denied more than this in an hour
//!   oidc:                         # sign-in with the authorization-code flow and PKCE
//!     client_id: steward-console
//!     client_secret: { env: STEWARD_CONSOLE_SECRET }   # optional: public clients use PKCE alone
//!     issuer: https://keycloak.example/realms/acme     # default: the first auth.oidc issuer
//!     scopes: [openid, profile, email]
//!     redirect_url: https://gw.example/ui/auth/callback  # default: {public_url}/ui/auth/callback
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::config::SecretValue;

/// What the console does and who may do what in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Holders may approve drifted tool pins.
    #[serde(default = "default_admin_role")]
    pub admin_role: String,
    /// Holders see every approval (read-only unless they may also decide it).
    #[serde(default = "default_viewer_role")]
    pub viewer_role: String,
    /// The role the local operator (`auth: none`) approves with.
    #[serde(default = "default_approver_role")]
    pub approver_role: String,
    #[serde(default = "default_session_ttl", deserialize_with = "duration")]
    pub session_ttl: Duration,
    /// More denials than this for one principal within one hour is an alert.
    #[serde(default = "default_denial_burst")]
    pub denial_burst: u64,
    #[serde(default)]
    pub oidc: Option<ConsoleOidc>,
    /// Who the console opens as under `auth: none` (`steward serve --operator NAME`; default the
    /// OS user). Not a steward.yaml key.
    #[serde(skip)]
    pub operator: Option<String>,
}

/// The console's OAuth client at the OIDC issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleOidc {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<SecretValue>,
    /// Must be one of `auth.oidc`'s issuers (tokens are verified as API tokens are).
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// The client secret, read from `client_secret` at load.
    #[serde(skip)]
    pub secret: Option<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            admin_role: default_admin_role(),
            viewer_role: default_viewer_role(),
            approver_role: default_approver_role(),
            session_ttl: default_session_ttl(),
            denial_burst: default_denial_burst(),
            oidc: None,
            operator: None,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_admin_role() -> String {
    "steward:admin".into()
}

fn default_viewer_role() -> String {
    "steward:viewer".into()
}

fn default_approver_role() -> String {
    "steward:approver".into()
}

fn default_session_ttl() -> Duration {
    Duration::from_secs(8 * 3600)
}

fn default_denial_burst() -> u64 {
    20
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    let t = crate::config::parse_duration(&text).map_err(serde::de::Error::custom)?;
    if t < Duration::from_secs(60) || t > Duration::from_secs(30 * 86_400) {
        return Err(serde::de::Error::custom("session_ttl must be between 1m and 30d"));
    }
    Ok(t)
}

impl ConsoleConfig {
    /// Checks what can be checked without the network, against the `auth:` section.
    pub fn validate(&self, auth: &crate::auth::AuthConfig) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        for (what, role) in [
            ("admin_role", &self.admin_role),
            ("viewer_role", &self.viewer_role),
            ("approver_role", &self.approver_role),
        ] {
            if role.trim().is_empty() {
                return Err(format!("console.{what} must not be empty"));
            }
        }
        if let Some(o) = &self.oidc {
            if o.client_id.trim().is_empty() {
                return Err("console.oidc.client_id must not be empty".into());
            }
            if auth.oidc.is_empty() {
                return Err(
                    "console.oidc needs an auth.oidc issuer: the console verifies sign-ins like API tokens".into(),
                );
            }
            if let Some(issuer) = &o.issuer
                && !auth.oidc.iter().any(|i| &i.issuer == issuer)
            {
                return Err(format!(
                    "console.oidc.issuer {issuer} is not one of auth.oidc's issuers"
                ));
            }
            if !o.scopes.iter().any(|s| s == "openid") {
                return Err("console.oidc.scopes must include openid".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::GatewayConfig;

    fn load(yaml: &str) -> Result<GatewayConfig, String> {
        GatewayConfig::from_yaml(yaml, "steward.yaml", Path::new("/etc/steward")).map_err(|e| e.to_string())
    }

    #[test]
    fn on_by_default_and_switched_off_by_the_key() {
        assert!(GatewayConfig::embedded().console.enabled);
        let cfg = load("auth: {api_keys: true}\n").unwrap();
        assert!(cfg.console.enabled);
        assert_eq!(cfg.console.admin_role, "steward:admin");
        assert_eq!(cfg.console.session_ttl.as_secs(), 8 * 3600);
        assert!(!load("console: {enabled: false}\n").unwrap().console.enabled);
    }

    #[test]
    fn keys_are_checked() {
        let cfg = load("console: {session_ttl: 30m, denial_burst: 5, admin_role: sec}\n").unwrap();
        assert_eq!((cfg.console.session_ttl.as_secs(), cfg.console.denial_burst), (1800, 5));
        assert_eq!(cfg.console.admin_role, "sec");
        for (bad, says) in [
            ("console: {sesion_ttl: 1h}\n", "unknown field"),
            ("console: {session_ttl: 5s}\n", "between 1m and 30d"),
            ("console: {oidc: {client_id: c}}\n", "needs an auth.oidc issuer"),
            ("console: {admin_role: ''}\n", "must not be empty"),
        ] {
            let e = load(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let oidc = "auth: {oidc: {issuer: 'http://127.0.0.1:9/', audience: c}}\n";
        assert!(load(&format!("{oidc}console: {{oidc: {{client_id: c}}}}\n")).is_ok());
        let e = load(&format!(
            "{oidc}console: {{oidc: {{client_id: c, issuer: 'https://other'}}}}\n"
        ))
        .unwrap_err();
        assert!(e.contains("not one of auth.oidc's issuers"), "{e}");
        let e = load(&format!(
            "{oidc}console: {{oidc: {{client_id: c, scopes: [profile]}}}}\n"
        ))
        .unwrap_err();
        assert!(e.contains("openid"), "{e}");
    }
}
