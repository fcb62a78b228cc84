use std::fmt;

use serde::Serialize;

/// How a server found in a client config stands against the registry. The words are the
/// interface (`--format json`, SARIF rule ids): never rename them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Approved,
    Unapproved,
    Denied,
    Expired,
    Pending,
    Drift,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Approved,
        Status::Unapproved,
        Status::Denied,
        Status::Expired,
        Status::Pending,
        Status::Drift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Approved => "APPROVED",
            Status::Unapproved => "UNAPPROVED",
            Status::Denied => "DENIED",
            Status::Expired => "EXPIRED",
            Status::Pending => "PENDING",
            Status::Drift => "DRIFT",
        }
    }

    /// Everything but APPROVED fails a check.
    pub fn is_violation(self) -> bool {
        self != Status::Approved
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
