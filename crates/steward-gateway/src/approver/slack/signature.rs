//! Slack's request signatures (version `v0`): `X-Slack-Signature: v0=<hex>` is HMAC-SHA256,
//! keyed with the app's signing secret, over `v0:{X-Slack-Request-Timestamp}:{raw body}`.
//! Compared in constant time; a timestamp more than five minutes from now is refused (a
//! replay), and so is a signature already seen within that window.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::{constant_time, hmac};

/// How far a request's timestamp may be from now, either way.
pub const MAX_SKEW_SECS: i64 = 5 * 60;
/// Signatures remembered for replay detection, at most (older ones are forgotten first).
const MAX_SEEN: usize = 50_000;

/// Why a request is not Slack's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forgery {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    #[error(
        "the request timestamp is {age}s from the gateway's clock (more than 5 minutes): a replay, or a clock out of step"
    )]
    Stale { age: i64 },
    #[error("the signature does not match the body (wrong signing secret, or the request was altered)")]
    Mismatch,
    #[error("the same signed request was already received: a replay")]
    Replayed,
}

impl Forgery {
    /// A short name for audit details.
    pub fn code(&self) -> &'static str {
        match self {
            Forgery::Missing(_) => "signature_missing",
            Forgery::Malformed(_) => "signature_malformed",
            Forgery::Stale { .. } => "stale_timestamp",
            Forgery::Mismatch => "bad_signature",
            Forgery::Replayed => "replayed",
        }
    }
}

pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
pub const SIGNATURE_HEADER: &str = "x-slack-signature";

/// Reads the timestamp header and checks it is within five minutes of `now` (Unix seconds).
/// Done before the body is read.
pub fn fresh(timestamp: Option<&str>, now: i64) -> Result<i64, Forgery> {
    let raw = timestamp.ok_or(Forgery::Missing("X-Slack-Request-Timestamp"))?;
    let ts: i64 = raw
        .trim()
        .parse()
        .map_err(|_| Forgery::Malformed("X-Slack-Request-Timestamp"))?;
    let age = now.saturating_sub(ts);
    if age.unsigned_abs() > MAX_SKEW_SECS.unsigned_abs() {
        return Err(Forgery::Stale { age });
    }
    Ok(ts)
}

/// Verifies `v0=<hex>` over `v0:{timestamp}:{body}` with `secret`.
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], signature: Option<&str>) -> Result<Vec<u8>, Forgery> {
    let sig = signature.ok_or(Forgery::Missing("X-Slack-Signature"))?;
    let hex_part = sig
        .trim()
        .strip_prefix("v0=")
        .ok_or(Forgery::Malformed("X-Slack-Signature"))?;
    let given = hex::decode(hex_part).map_err(|_| Forgery::Malformed("X-Slack-Signature"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(b"v0:");
    ctx.update(timestamp.trim().as_bytes());
    ctx.update(b":");
    ctx.update(body);
    let expected = ctx.sign();
    constant_time::verify_slices_are_equal(expected.as_ref(), &given).map_err(|_| Forgery::Mismatch)?;
    Ok(given)
}

/// The signatures of requests accepted within the freshness window.
#[derive(Default)]
pub struct Seen {
    entries: Mutex<HashMap<Vec<u8>, i64>>,
}

impl Seen {
    /// Records a verified signature; `Err` when it was seen before (a replay).
    pub fn first_time(&self, signature: Vec<u8>, timestamp: i64, now: i64) -> Result<(), Forgery> {
        let mut seen = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= 1_000 {
            // Beyond the window a replay is refused as stale anyway.
            seen.retain(|_, ts| now.saturating_sub(*ts) <= MAX_SKEW_SECS);
        }
        if seen.len() >= MAX_SEEN
            && let Some(oldest) = seen.iter().min_by_key(|(_, ts)| **ts).map(|(k, _)| k.clone())
        {
            seen.remove(&oldest);
        }
        match seen.insert(signature, timestamp) {
            Some(_) => Err(Forgery::Replayed),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Slack's documentation ("Verifying requests from Slack").
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_documented_example_verifies() {
        assert!(verify(SECRET.as_bytes(), TS, BODY.as_bytes(), Some(SIG)).is_ok());
    }

    #[test]
    fn anything_else_is_refused() {
        let s = SECRET.as_bytes();
        assert_eq!(
            verify(b"another secret", TS, BODY.as_bytes(), Some(SIG)),
            Err(Forgery::Mismatch)
        );
        assert_eq!(
            verify(s, TS, format!("{BODY}&x=1").as_bytes(), Some(SIG)),
            Err(Forgery::Mismatch)
        );
        assert_eq!(
            verify(s, "1531420619", BODY.as_bytes(), Some(SIG)),
            Err(Forgery::Mismatch)
        );
        assert_eq!(verify(s, TS, BODY.as_bytes(), Some(&SIG[..21])), Err(Forgery::Mismatch));
        assert_eq!(
            verify(s, TS, BODY.as_bytes(), Some(&SIG[3..])),
            Err(Forgery::Malformed("X-Slack-Signature"))
        );
        assert_eq!(
            verify(s, TS, BODY.as_bytes(), Some("v0=zz")),
            Err(Forgery::Malformed("X-Slack-Signature"))
        );
        assert_eq!(
            verify(s, TS, BODY.as_bytes(), None),
            Err(Forgery::Missing("X-Slack-Signature"))
        );
    }

    #[test]
    fn timestamps_more_than_five_minutes_away_are_refused() {
        let now = 1_531_420_618;
        assert_eq!(fresh(Some(TS), now), Ok(now));
        assert!(fresh(Some(TS), now + 300).is_ok());
        assert_eq!(fresh(Some(TS), now + 301), Err(Forgery::Stale { age: 301 }));
        assert_eq!(fresh(Some(TS), now - 301), Err(Forgery::Stale { age: -301 }));
        assert_eq!(
            fresh(Some("soon"), now),
            Err(Forgery::Malformed("X-Slack-Request-Timestamp"))
        );
        assert_eq!(fresh(None, now), Err(Forgery::Missing("X-Slack-Request-Timestamp")));
        assert!(fresh(Some("-9223372036854775808"), now).is_err());
    }

    #[test]
    fn a_signature_is_accepted_once() {
        let seen = Seen::default();
        assert!(seen.first_time(vec![1], 10, 10).is_ok());
        assert!(seen.first_time(vec![2], 10, 10).is_ok());
        assert_eq!(seen.first_time(vec![1], 10, 20), Err(Forgery::Replayed));
    }
}
