//! What the gateway asks the registry: may this server be served, and how is it started?

use chrono::NaiveDate;
use serde::Serialize;
use steward_policy::Risk;

use crate::model::{ApprovedServer, DataScope, Registry, ServerConfig};
use crate::status::Status;

/// Which list a server name is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    Approved(&'a crate::model::ApprovedServer),
    Pending(&'a crate::model::PendingServer),
    Denied(&'a crate::model::DeniedServer),
}

/// An approved, unexpired server: everything the gateway needs to start it and to tell policy
/// about it (`server.data_scope`, `server.risk`, `server.version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Servable<'a> {
    pub name: &'a str,
    pub version: Option<&'a str>,
    pub config: &'a ServerConfig,
    pub data_scope: DataScope,
    pub risk: Risk,
    pub entry: &'a ApprovedServer,
}

/// Why a server may not be served; `message` names the registry entry and is fit to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct NotServable {
    /// DENIED, PENDING, EXPIRED, or UNAPPROVED (not in the registry, or approved without a config).
    pub status: Status,
    pub message: String,
}

impl Registry {
    /// The entry for `name`; a denied entry wins over an approved one of the same name.
    pub fn lookup(&self, name: &str) -> Option<Entry<'_>> {
        if let Some(d) = self.denied(name) {
            return Some(Entry::Denied(d));
        }
        if let Some(a) = self.approved(name) {
            return Some(Entry::Approved(a));
        }
        self.pending(name).map(Entry::Pending)
    }

    /// Whether `name` may be served on `today`: approved, not denied, not expired, with a config.
    pub fn servable(&self, name: &str, today: NaiveDate) -> Result<Servable<'_>, NotServable> {
        let file = &self.source_name;
        let refuse = |status: Status, message: String| Err(NotServable { status, message });
        match self.lookup(name) {
            None => refuse(
                Status::Unapproved,
                format!("server '{name}' is not in the approved-server registry {file}"),
            ),
            Some(Entry::Denied(d)) => {
                let mut m = format!(
                    "server '{name}' is denied by registry {file} (denied entry '{}'",
                    d.name
                );
                if let Some(r) = &d.reason {
                    m.push_str(&format!(": {}", r.trim().trim_end_matches('.')));
                }
                m.push(')');
                if let Some(alt) = &d.alternative {
                    m.push_str(&format!("; use '{}' instead", alt.trim()));
                }
                refuse(Status::Denied, m)
            }
            Some(Entry::Pending(p)) => refuse(
                Status::Pending,
                format!(
                    "server '{name}' is pending review in registry {file} (pending_review entry '{}'); it cannot be used until approved",
                    p.name
                ),
            ),
            Some(Entry::Approved(a)) if a.is_expired(today) => refuse(
                Status::Expired,
                format!(
                    "the approval of server '{name}' in registry {file} expired on {} (approved entry '{}'); it must be re-reviewed",
                    a.expires.map(|e| e.to_string()).unwrap_or_default(),
                    a.name
                ),
            ),
            Some(Entry::Approved(a)) => match &a.config {
                None => refuse(
                    Status::Unapproved,
                    format!(
                        "server '{name}' is approved in registry {file} but its entry has no `config` (command, args, env), so it cannot be served"
                    ),
                ),
                Some(config) => Ok(Servable {
                    name: &a.name,
                    version: a.version.as_deref(),
                    config,
                    data_scope: a.data_scope,
                    risk: a.risk,
                    entry: a,
                }),
            },
        }
    }

    /// The registry status of `name` as policies read it (`server.status`): `approved`,
    /// `pending_review`, `denied`, `expired` or `unlisted`.
    pub fn policy_status(&self, name: &str, today: NaiveDate) -> &'static str {
        match self.lookup(name) {
            None => "unlisted",
            Some(Entry::Denied(_)) => "denied",
            Some(Entry::Pending(_)) => "pending_review",
            Some(Entry::Approved(a)) if a.is_expired(today) => "expired",
            Some(Entry::Approved(_)) => "approved",
        }
    }

    /// [`Registry::servable`] on today's local date.
    pub fn servable_today(&self, name: &str) -> Result<Servable<'_>, NotServable> {
        self.servable(name, today())
    }

    /// Every approved server that may be served on `today`, in registry order.
    pub fn servable_servers(&self, today: NaiveDate) -> Vec<Servable<'_>> {
        self.approved
            .iter()
            .filter_map(|a| self.servable(&a.name, today).ok())
            .collect()
    }
}

/// Today's date in the local time zone.
pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}
