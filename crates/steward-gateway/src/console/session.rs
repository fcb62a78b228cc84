//! Console sign-ins: a session per browser, named by a signed cookie, and the CSRF token bound
//! to it.
//!
//! The cookie is `{sid}.{expiry}.{mac}`: a random session id, the expiry in Unix seconds, and
//! HMAC-SHA256 over both with a secret drawn at start-up (so a restart signs everyone out). The
//! MAC is checked in constant time before the id is looked up; the session itself (who, which
//! roles) stays in memory, so signing out ends it for good. The CSRF token is HMAC(secret,
//! "csrf" + sid): forms carry it, and a POST without the right one is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use steward_policy::Principal;

/// The session cookie's name.
pub const COOKIE: &str = "steward_console";
/// At most this many sessions at once; the oldest is dropped for a new one.
const MAX_SESSIONS: usize = 10_000;

/// How someone signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    ApiKey,
    Oidc,
    /// `auth: none` on loopback: the local operator.
    Operator,
}

impl SignIn {
    pub fn as_str(self) -> &'static str {
        match self {
            SignIn::ApiKey => "API key",
            SignIn::Oidc => "OIDC",
            SignIn::Operator => "local operator",
        }
    }
}

/// One signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub sid: String,
    pub principal: Principal,
    pub how: SignIn,
    /// Unix seconds.
    pub expires: u64,
    pub csrf: String,
}

/// Every console session of this gateway process.
pub struct Sessions {
    key: hmac::Key,
    ttl: Duration,
    map: Mutex<HashMap<String, Arc<Session>>>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Sessions {
    /// Sessions signed with a fresh random secret.
    pub fn new(ttl: Duration) -> Sessions {
        let secret: [u8; 32] = rand::random();
        Sessions {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, parts: &[&str]) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, parts.join("|").as_bytes()).as_ref())
    }

    fn verify(&self, parts: &[&str], mac: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(mac) {
            Ok(tag) => hmac::verify(&self.key, parts.join("|").as_bytes(), &tag).is_ok(),
            Err(_) => false,
        }
    }

    /// Starts a session for `principal`; returns it and the cookie value.
    pub fn create(&self, principal: Principal, how: SignIn) -> (Arc<Session>, String) {
        let sid = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let expires = now_secs() + self.ttl.as_secs();
        let session = Arc::new(Session {
            csrf: self.mac(&["csrf", &sid]),
            sid: sid.clone(),
            principal,
            how,
            expires,
        });
        let exp = expires.to_string();
        let cookie = format!("{sid}.{exp}.{}", self.mac(&["session", &sid, &exp]));
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_secs();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.values().min_by_key(|s| s.expires).map(|s| s.sid.clone())
        {
            map.remove(&oldest);
        }
        map.insert(sid, session.clone());
        (session, cookie)
    }

    /// The session a cookie value names, if its MAC holds, it has not expired and it was not
    /// ended.
    pub fn get(&self, cookie: &str) -> Option<Arc<Session>> {
        let mut parts = cookie.splitn(3, '.');
        let (sid, exp, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if sid.len() > 64 || exp.len() > 20 || !self.verify(&["session", sid, exp], mac) {
            return None;
        }
        let expires: u64 = exp.parse().ok()?;
        if expires <= now_secs() {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(sid).filter(|s| s.expires > now_secs()).cloned()
    }

    /// Whether `token` is the CSRF token of `session` (constant time).
    pub fn csrf_ok(&self, session: &Session, token: &str) -> bool {
        self.verify(&["csrf", &session.sid], token)
    }

    pub fn end(&self, sid: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(sid);
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_signed_and_end() {
        let s = Sessions::new(Duration::from_secs(60));
        let (session, cookie) = s.create(Principal::new("alice", "api-key"), SignIn::ApiKey);
        assert_eq!(s.get(&cookie).unwrap().principal.id, "alice");
        assert!(s.csrf_ok(&session, &session.csrf));
        assert!(!s.csrf_ok(&session, "nope"));
        assert!(!s.csrf_ok(&session, &s.mac(&["csrf", "other"])));
        // Any change to the id, the expiry or the MAC is refused.
        let (sid, rest) = cookie.split_once('.').unwrap();
        let (exp, mac) = rest.split_once('.').unwrap();
        let later = (exp.parse::<u64>().unwrap() + 3600).to_string();
        for forged in [
            format!("{sid}.{later}.{mac}"),
            format!("x{sid}.{exp}.{mac}"),
            format!("{sid}.{exp}.{}", &mac[1..]),
            format!("{sid}.{exp}"),
            String::new(),
        ] {
            assert!(s.get(&forged).is_none(), "{forged}");
        }
        // Another gateway's secret signs other cookies.
        assert!(Sessions::new(Duration::from_secs(60)).get(&cookie).is_none());
        s.end(&session.sid);
        assert!(s.get(&cookie).is_none());
    }

    #[test]
    fn cookie_header_parsing() {
        assert_eq!(cookie_value("a=1; steward_console=x.y.z; b=2", COOKIE), Some("x.y.z"));
        assert_eq!(cookie_value("steward_console_login=q", COOKIE), None);
        assert_eq!(cookie_value("", COOKIE), None);
    }
}
