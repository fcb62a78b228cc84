/// Why a request was not authenticated. No variant ever carries the presented credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, and anonymous callers are not allowed.
    #[error("authentication required: send `Authorization: Bearer <API key or token>`")]
    Missing,
    /// The header is there but is not `Bearer <credential>`.
    #[error("malformed Authorization header: {0}")]
    Malformed(String),
    /// The credential was checked and refused (bad signature, expired, revoked, ...).
    #[error("{0}")]
    Invalid(String),
    /// The credential could not be checked: the issuer's keys or the key store are unreachable.
    #[error("cannot check credentials right now: {0}")]
    Unavailable(String),
    /// The auth configuration is wrong (start-up only).
    #[error("{0}")]
    Config(String),
}

impl AuthError {
    /// The HTTP status to answer with: 401 for anything the caller can fix by sending other
    /// credentials, 503 when the gateway cannot check them, 500 for configuration errors.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing | AuthError::Malformed(_) | AuthError::Invalid(_) => 401,
            AuthError::Unavailable(_) => 503,
            AuthError::Config(_) => 500,
        }
    }

    /// The RFC 6750 `error` code for `WWW-Authenticate`, if any.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            AuthError::Malformed(_) => Some("invalid_request"),
            AuthError::Invalid(_) => Some("invalid_token"),
            AuthError::Missing | AuthError::Unavailable(_) | AuthError::Config(_) => None,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> AuthError {
        AuthError::Invalid(msg.into())
    }
}
