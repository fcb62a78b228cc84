//! `steward registry check`: each server found in a client config, classified against the registry.

use chrono::NaiveDate;
use serde::Serialize;

use crate::discover::{Discovery, FoundServer};
use crate::model::{ApprovedServer, Registry};
use crate::pin::{PackageRef, package_of};
use crate::status::Status;
use crate::wrap::{gateway_server, unwrap_steward_proxy};

/// How one server (or one unreadable config file) stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub client: &'static str,
    pub scope: &'static str,
    pub config_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The server's key in the config (`*` for a config file that could not be read).
    pub server: String,
    pub status: Status,
    pub detail: String,
    /// `server` for a server entry, `config-error` for a file whose servers could not be read.
    pub kind: &'static str,
    /// The registry entry the server was matched to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_entry: Option<String>,
    /// The command line or URL as configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `steward proxy` or `steward gateway` when the server is reached through Steward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// What a check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub results: Vec<CheckResult>,
    /// Configured but switched-off servers, not checked.
    pub skipped: Vec<String>,
    pub files: Vec<String>,
}

impl CheckReport {
    pub fn violations(&self) -> usize {
        self.results.iter().filter(|r| r.status.is_violation()).count()
    }

    /// `N APPROVED, M UNAPPROVED, ...` for the statuses present.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for s in Status::ALL {
            let n = self.results.iter().filter(|r| r.status == s).count();
            if n > 0 {
                parts.push(format!("{n} {s}"));
            }
        }
        let servers = self.results.iter().filter(|r| r.kind == "server").count();
        let errors = self.results.len() - servers;
        let mut out = format!("{servers} server(s) in {} config file(s)", self.files.len());
        if errors > 0 {
            out.push_str(&format!(", {errors} unreadable config(s)"));
        }
        if !parts.is_empty() {
            out.push_str(&format!(": {}", parts.join(", ")));
        }
        out
    }
}

/// Options that change how servers are recognised.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The Steward gateway's base URL: `GATEWAY/mcp/NAME` is registry server NAME.
    pub gateway: Option<String>,
}

/// Classifies every server discovery found (and reports every unreadable config).
pub fn check(registry: &Registry, discovery: &Discovery, today: NaiveDate, opts: &CheckOptions) -> CheckReport {
    let gateway = opts
        .gateway
        .clone()
        .or_else(|| registry.metadata_str("gateway").map(str::to_string));
    let mut results: Vec<CheckResult> = discovery
        .servers
        .iter()
        .map(|s| classify(registry, s, today, gateway.as_deref()))
        .collect();
    for p in &discovery.problems {
        results.push(CheckResult {
            client: p.client,
            scope: p.scope,
            config_path: p.config_path.display().to_string(),
            line: p.line,
            server: "*".into(),
            status: Status::Unapproved,
            detail: format!("cannot check this config: {}", p.message),
            kind: "config-error",
            registry_entry: None,
            command: None,
            via: None,
            context: None,
        });
    }
    CheckReport {
        results,
        skipped: discovery.skipped.clone(),
        files: discovery.files.iter().map(|f| f.display().to_string()).collect(),
    }
}

/// What a server really runs, after looking through `steward proxy`.
struct Effective<'a> {
    names: Vec<&'a str>,
    command: Option<&'a str>,
    args: &'a [String],
    url: Option<&'a str>,
    via: Option<&'static str>,
    pkg: Option<PackageRef>,
    /// `steward proxy --sandbox PROFILE`.
    sandbox: Option<&'a str>,
}

impl Effective<'_> {
    fn argv_equals(&self, a: &ApprovedServer) -> bool {
        match (&a.config, self.command) {
            (Some(c), Some(cmd)) => c.command.as_deref() == Some(cmd) && c.args == self.args,
            _ => false,
        }
    }

    fn line(&self) -> String {
        match (self.command, self.url) {
            (Some(c), _) => std::iter::once(c)
                .chain(self.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            (None, Some(u)) => u.to_string(),
            _ => String::new(),
        }
    }
}

fn classify(reg: &Registry, s: &FoundServer, today: NaiveDate, gateway: Option<&str>) -> CheckResult {
    let mut result = CheckResult {
        client: s.client,
        scope: s.scope,
        config_path: s.config_path.display().to_string(),
        line: s.line,
        server: s.name.clone(),
        status: Status::Unapproved,
        detail: String::new(),
        kind: "server",
        registry_entry: None,
        command: match (&s.command, &s.url) {
            (Some(c), _) => Some(
                std::iter::once(c.as_str())
                    .chain(s.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            (None, Some(u)) => Some(u.clone()),
            _ => None,
        },
        via: None,
        context: s.context.clone(),
    };

    // Through the gateway: the gateway serves the registry's own config, so only the entry's
    // standing matters.
    if let (Some(url), Some(gw)) = (s.url.as_deref(), gateway)
        && let Some(name) = gateway_server(url, gw)
    {
        result.via = Some("steward gateway");
        match reg.servable(name, today) {
            Ok(sv) if sv.entry.sandbox_required && sv.config.sandbox.is_none() && sv.config.command.is_some() => set(
                &mut result,
                Status::Drift,
                Some(sv.name),
                format!(
                    "approved entry '{}' requires a sandbox (sandbox: required) but its config declares none, so the gateway does not serve it; add `sandbox:` to its config",
                    sv.name
                ),
            ),
            Ok(sv) => set(
                &mut result,
                Status::Approved,
                Some(sv.name),
                format!("served by the Steward gateway from approved entry '{}'", sv.name),
            ),
            Err(e) => set(&mut result, e.status, reg.lookup(name).map(|_| name), e.message),
        }
        return result;
    }

    let wrapped = s.command.as_deref().and_then(|c| unwrap_steward_proxy(c, &s.args));
    let mut eff = Effective {
        names: Vec::new(),
        command: s.command.as_deref(),
        args: &s.args,
        url: s.url.as_deref(),
        via: None,
        pkg: None,
        sandbox: None,
    };
    if let Some(w) = &wrapped {
        eff.command = Some(w.command.as_str());
        eff.args = &w.args;
        eff.via = Some("steward proxy");
        eff.sandbox = w.sandbox.as_deref();
        if let Some(n) = &w.server_name {
            eff.names.push(n.as_str());
        }
    }
    eff.names.push(s.name.as_str());
    eff.pkg = eff.command.and_then(|c| package_of(c, eff.args));
    result.via = eff.via;

    // Denied wins: by name, by package, or by exact command.
    let denied = reg.denied.iter().find(|d| {
        eff.names.contains(&d.name.as_str())
            || d.npm_package
                .as_deref()
                .is_some_and(|p| eff.pkg.as_ref().is_some_and(|k| k.name == p))
            || d.config.as_ref().is_some_and(|c| {
                c.command.is_some() && c.command.as_deref() == eff.command && c.args == eff.args
                    || c.url.is_some() && c.url.as_deref() == eff.url
            })
    });
    if let Some(d) = denied {
        let mut detail = format!("denied by registry entry '{}'", d.name);
        if let Some(r) = &d.reason {
            detail.push_str(&format!(": {}", r.trim().trim_end_matches('.')));
        }
        if let Some(a) = &d.alternative {
            detail.push_str(&format!("; use '{}' instead", a.trim()));
        }
        set(&mut result, Status::Denied, Some(&d.name), detail);
        return result;
    }

    let by_name = eff.names.iter().find_map(|n| reg.approved(n));
    let by_config = || {
        reg.approved.iter().find(|a| {
            eff.argv_equals(a) || (eff.url.is_some() && a.config.as_ref().and_then(|c| c.url.as_deref()) == eff.url)
        })
    };
    let by_package = || {
        let pkg = eff.pkg.as_ref()?;
        reg.approved.iter().find(|a| {
            a.npm_package.as_deref() == Some(pkg.name.as_str())
                || a.config
                    .as_ref()
                    .and_then(|c| package_of(c.command.as_deref()?, &c.args))
                    .is_some_and(|p| p.name == pkg.name)
        })
    };
    if let Some(a) = by_name.or_else(by_config).or_else(by_package) {
        let (status, detail) = match evaluate(a, &eff, s, today) {
            (Status::Approved, _) if a.sandbox_required && eff.command.is_some() && eff.sandbox.is_none() => (
                Status::Drift,
                format!(
                    "approved entry '{}' requires a sandbox (sandbox: required) but this server runs without one; start it with `steward proxy --sandbox PROFILE ... -- {}` (docs/sandbox.md) or through the gateway",
                    a.name,
                    eff.line()
                ),
            ),
            other => other,
        };
        set(&mut result, status, Some(&a.name), detail);
        return result;
    }

    let pending = reg.pending_review.iter().find(|p| {
        eff.names.contains(&p.name.as_str())
            || p.npm_package
                .as_deref()
                .is_some_and(|n| eff.pkg.as_ref().is_some_and(|k| k.name == n))
    });
    if let Some(p) = pending {
        set(
            &mut result,
            Status::Pending,
            Some(&p.name),
            format!("pending review in the registry (entry '{}'); not approved yet", p.name),
        );
        return result;
    }

    let what = match &eff.pkg {
        Some(p) => format!("'{}' (package {}) is not in the registry", s.name, p.name),
        None => format!("'{}' is not in the registry", s.name),
    };
    set(&mut result, Status::Unapproved, None, what);
    result
}

fn set(r: &mut CheckResult, status: Status, entry: Option<&str>, detail: String) {
    r.status = status;
    r.registry_entry = entry.map(str::to_string);
    r.detail = detail;
}

/// An approved entry against what is configured: EXPIRED, DRIFT or APPROVED.
fn evaluate(a: &ApprovedServer, eff: &Effective<'_>, s: &FoundServer, today: NaiveDate) -> (Status, String) {
    if a.is_expired(today) {
        let on = a.expires.map(|e| e.to_string()).unwrap_or_default();
        return (Status::Expired, format!("the approval of '{}' expired on {on}", a.name));
    }
    let approved_line = a.config.as_ref().map(|c| c.command_line()).unwrap_or_default();
    if let Some(url) = eff.url.filter(|_| eff.command.is_none()) {
        return match a.config.as_ref().and_then(|c| c.url.as_deref()) {
            Some(approved) if approved != url => (
                Status::Drift,
                format!("url differs: approved {approved}, configured {url}"),
            ),
            Some(_) => (Status::Approved, approved_detail(a, s, eff)),
            None if a.config.as_ref().is_some_and(|c| c.command.is_some()) => (
                Status::Drift,
                format!("approved as a stdio server (`{approved_line}`), configured as remote {url}"),
            ),
            None => (Status::Approved, approved_detail(a, s, eff)),
        };
    }
    if let Some(config) = &a.config
        && config.command.is_some()
        && !eff.argv_equals(a)
    {
        let approved_pkg = config.command.as_deref().and_then(|c| package_of(c, &config.args));
        let detail = match (&eff.pkg, &approved_pkg) {
            (Some(p), Some(ap)) if p.name == ap.name && !p.is_pinned() => format!(
                "runs {}{} without a pinned version; the approved version is {} (approved: `{approved_line}`, configured: `{}`)",
                p.name,
                p.version.as_deref().map(|v| format!("@{v}")).unwrap_or_default(),
                ap.version.as_deref().or(a.version.as_deref()).unwrap_or("?"),
                eff.line()
            ),
            (Some(p), Some(ap)) if p.name == ap.name && p.version != ap.version => format!(
                "runs {}@{} but the approved version is {} (approved: `{approved_line}`, configured: `{}`)",
                p.name,
                p.version.as_deref().unwrap_or("<unpinned>"),
                ap.version.as_deref().or(a.version.as_deref()).unwrap_or("?"),
                eff.line()
            ),
            _ => format!(
                "command differs from the approved config: approved `{approved_line}`, configured `{}`",
                eff.line()
            ),
        };
        return (Status::Drift, detail);
    }
    if let Some(config) = &a.config
        && config.url.is_some()
        && eff.command.is_some()
    {
        return (
            Status::Drift,
            format!(
                "approved as remote {}, configured as stdio `{}`",
                config.url.as_deref().unwrap_or(""),
                eff.line()
            ),
        );
    }
    if let Some(p) = &eff.pkg {
        if !p.is_pinned() {
            return (
                Status::Drift,
                format!(
                    "runs {}{} without a pinned version (approved version {})",
                    p.name,
                    p.version.as_deref().map(|v| format!("@{v}")).unwrap_or_default(),
                    a.version.as_deref().unwrap_or("?")
                ),
            );
        }
        if let (Some(v), Some(av)) = (&p.version, &a.version)
            && v.trim_start_matches('v') != av.trim_start_matches('v')
        {
            return (
                Status::Drift,
                format!("runs {}@{v} but the approved version is {av}", p.name),
            );
        }
        if let Some(npm) = &a.npm_package
            && p.ecosystem == crate::pin::Ecosystem::Npm
            && &p.name != npm
        {
            return (
                Status::Drift,
                format!("runs package {} but the approved package is {npm}", p.name),
            );
        }
    }
    (Status::Approved, approved_detail(a, s, eff))
}

fn approved_detail(a: &ApprovedServer, s: &FoundServer, eff: &Effective<'_>) -> String {
    let mut d = format!("approved entry '{}'", a.name);
    if a.name != s.name {
        d.push_str(&format!(" (configured as '{}')", s.name));
    }
    if let Some(v) = &a.version {
        d.push_str(&format!(", version {v}"));
    }
    d.push_str(&format!(", data scope {}, risk {}", a.data_scope, a.risk));
    if let Some(e) = a.expires {
        d.push_str(&format!(", expires {e}"));
    }
    if let Some(via) = eff.via {
        d.push_str(&format!(", via {via}"));
    }
    if let Some(profile) = eff.sandbox {
        d.push_str(&format!(", sandbox {profile}"));
    }
    d
}
