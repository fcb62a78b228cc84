//! What every page shares: the frame (navigation, who is signed in, the sign-out form), error
//! pages, and small formatting helpers for templates.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::session::Session;
use crate::serve::AppState;

/// The frame around a page.
pub struct Layout {
    pub title: String,
    /// `overview`, `approvals`, `activity`, `servers`, `policy`: which tab is lit, and
    /// `data-page` for the script.
    pub page: &'static str,
    pub user: Option<String>,
    pub how: String,
    pub roles: String,
    pub csrf: String,
    pub policy_version: String,
}

impl Layout {
    pub fn new(st: &AppState, session: Option<&Session>, page: &'static str, title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            page,
            user: session.map(|s| s.principal.id.clone()),
            how: session.map(|s| s.how.as_str().to_string()).unwrap_or_default(),
            roles: session
                .map(|s| {
                    let roles = crate::serve::approvals_api::actor(st, &s.principal).roles;
                    if roles.is_empty() {
                        "no roles".to_string()
                    } else {
                        roles.join(", ")
                    }
                })
                .unwrap_or_default(),
            csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
            policy_version: st.relay.policy().version().to_string(),
        }
    }

    /// For the template: whether `tab` is the current page.
    pub fn on(&self, tab: &str) -> bool {
        self.page == tab
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    message: &'a str,
}

/// Renders a template, or a plain 500 when it cannot be (never the template error itself).
pub fn render(t: &impl Template) -> Response {
    render_status(t, StatusCode::OK)
}

pub fn render_status(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: a page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "the page could not be rendered (see the gateway log)",
            )
                .into_response()
        }
    }
}

/// A page that says what went wrong, with the given status.
pub fn error_page(st: &AppState, session: Option<&Session>, status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        layout: Layout::new(st, session, "error", status.canonical_reason().unwrap_or("Error")),
        status: status.as_u16(),
        message,
    };
    render_status(&page, status)
}

/// `2026-01-31T14:05:09.123Z` → `2026-01-31 14:05:09 UTC`.
pub fn when(ts: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        Err(_) => ts.to_string(),
    }
}

/// Seconds from now until `ts` (negative when past); `None` when `ts` is not a time.
pub fn seconds_until(ts: &str) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
    Some((t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds())
}

/// `3h 04m`, `12m 30s`, `45s`.
pub fn span(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// JSON as people read it: indented, cut at `max` characters.
pub fn pretty(v: &serde_json::Value, max: usize) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    if text.chars().count() > max {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}\n… (cut at {max} characters)")
    } else {
        text
    }
}

/// Text from a server or a client shown safely: control and bidirectional characters escaped
/// (askama escapes HTML; this keeps invisible characters visible).
pub fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let hidden = (c.is_control() && c != '\n' && c != '\t')
            || matches!(c,
                '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
                | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}');
        if hidden {
            out.push_str(&format!("\\u{{{:04X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_times() {
        assert_eq!(span(5), "5s");
        assert_eq!(span(750), "12m 30s");
        assert_eq!(span(3 * 3600 + 240), "3h 04m");
        assert_eq!(span(-4), "0s");
        assert_eq!(when("2026-01-31T14:05:09.123Z"), "2026-01-31 14:05:09 UTC");
        assert_eq!(when("not a time"), "not a time");
        assert!(seconds_until("2000-01-01T00:00:00Z").unwrap() < 0);
        assert_eq!(safe("a\u{202E}b\nc"), "a\\u{202E}b\nc");
    }
}
