//! The console's server-side sessions and its log-in rate limit.
//!
//! A session is a random 256-bit id (the cookie) mapped to the token the user logged in
//! with and a random CSRF token. The token is kept, not the user: every request
//! authenticates it again through `Users::authenticate`, so disabling or rotating a
//! user ends their sessions at once. The table is bounded ([`MAX_SESSIONS`]; the least
//! recently used goes first), so is each user's share of it ([`MAX_PER_USER`]: a new
//! log-in drops that user's least recently used session past it, so one user cannot
//! push everyone else out), a session idle for [`IDLE_TIMEOUT`] or older than
//! [`MAX_AGE`] is gone, and logout removes it. Failed log-ins are limited to
//! [`MAX_FAILED_LOGINS`] per [`FAILED_WINDOW`] for the whole node; past it a log-in is
//! refused before its token is looked at.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Most sessions held at once.
pub const MAX_SESSIONS: usize = 1024;
/// Most sessions one user holds at once.
pub const MAX_PER_USER: usize = 8;
/// A session unused this long ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after log-in, used or not.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// Failed log-ins allowed per window, node-wide.
pub const MAX_FAILED_LOGINS: usize = 20;
/// The failed log-in window.
pub const FAILED_WINDOW: Duration = Duration::from_secs(60);

/// A fresh random token: 32 bytes, hex.
pub fn random_token() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(hex::encode(b))
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

struct Session {
    token: Zeroizing<String>,
    /// The user's id (pseudonymous), for [`MAX_PER_USER`].
    user: String,
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// What a live session gives a request.
#[derive(Clone)]
pub struct Live {
    /// The API token the user logged in with.
    pub token: Zeroizing<String>,
    /// The session's CSRF token.
    pub csrf: String,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live(..)")
    }
}

/// The session table and the log-in limiter.
#[derive(Default)]
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
    failed: Mutex<VecDeque<Instant>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.table.lock().map(|t| t.len()).unwrap_or(0);
        f.debug_struct("Sessions").field("live", &n).finish()
    }
}

impl Sessions {
    /// Opens a session for `token`, user `user`: `(session id, csrf token)`.
    pub fn open(&self, token: &str, user: &str) -> Option<(String, String)> {
        let id = random_token()?;
        let csrf = random_token()?;
        let now = Instant::now();
        let mut t = self.table.lock().ok()?;
        t.retain(|_, s| alive(s, now));
        loop {
            let mine = t.iter().filter(|(_, s)| s.user == user);
            if mine.clone().count() < MAX_PER_USER {
                break;
            }
            let oldest = mine
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())?;
            t.remove(&oldest);
        }
        while t.len() >= MAX_SESSIONS {
            let oldest = t
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())?;
            t.remove(&oldest);
        }
        t.insert(
            id.clone(),
            Session {
                token: Zeroizing::new(token.to_owned()),
                user: user.to_owned(),
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        Some((id, csrf))
    }

    /// The live session `id`, touched; an expired one is removed.
    pub fn get(&self, id: &str) -> Option<Live> {
        let now = Instant::now();
        let mut t = self.table.lock().ok()?;
        let s = t.get_mut(id)?;
        if !alive(s, now) {
            t.remove(id);
            return None;
        }
        s.last_seen = now;
        Some(Live {
            token: s.token.clone(),
            csrf: s.csrf.clone(),
        })
    }

    /// The live session `id`, not touched (an open event stream asks this: it must not
    /// keep an idle session alive).
    pub fn peek(&self, id: &str) -> Option<Live> {
        let now = Instant::now();
        let t = self.table.lock().ok()?;
        let s = t.get(id).filter(|s| alive(s, now))?;
        Some(Live {
            token: s.token.clone(),
            csrf: s.csrf.clone(),
        })
    }

    /// Ends session `id`.
    pub fn close(&self, id: &str) {
        if let Ok(mut t) = self.table.lock() {
            t.remove(id);
        }
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.table.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a log-in may be tried now.
    pub fn login_allowed(&self) -> bool {
        let now = Instant::now();
        let Ok(mut f) = self.failed.lock() else {
            return false;
        };
        while f
            .front()
            .is_some_and(|t| now.duration_since(*t) > FAILED_WINDOW)
        {
            f.pop_front();
        }
        f.len() < MAX_FAILED_LOGINS
    }

    /// Counts a failed log-in.
    pub fn login_failed(&self) {
        if let Ok(mut f) = self.failed.lock() {
            f.push_back(Instant::now());
            while f.len() > MAX_FAILED_LOGINS {
                f.pop_front();
            }
        }
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last_seen) < IDLE_TIMEOUT && now.duration_since(s.created) < MAX_AGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_and_closed() {
        let s = Sessions::default();
        let (id, csrf) = s.open("tok", "u").unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, csrf);
        assert_eq!(&*s.get(&id).unwrap().token, "tok");
        s.close(&id);
        assert!(s.get(&id).is_none());
        for i in 0..MAX_SESSIONS + 10 {
            s.open("t", &format!("user-{i}")).unwrap();
        }
        assert_eq!(s.len(), MAX_SESSIONS);
    }

    /// Review of issue 23: one user's log-ins could fill the table and push every
    /// other user out. Each user keeps at most `MAX_PER_USER`, the oldest dropped.
    #[test]
    fn one_user_holds_at_most_max_per_user_sessions_oldest_dropped() {
        let s = Sessions::default();
        let (other, _) = s.open("o", "other").unwrap();
        let first: Vec<String> = (0..MAX_PER_USER)
            .map(|_| s.open("t", "busy").unwrap().0)
            .collect();
        // Touch all but the first, so the first is the least recently used.
        for id in first.iter().skip(1) {
            s.get(id).unwrap();
        }
        for _ in 0..50 {
            s.open("t", "busy").unwrap();
        }
        assert_eq!(s.len(), MAX_PER_USER + 1);
        assert!(s.get(&other).is_some(), "another user's session stays");
        assert!(
            s.get(first.first().unwrap()).is_none(),
            "the oldest went first"
        );
    }

    #[test]
    fn failed_logins_are_limited() {
        let s = Sessions::default();
        for _ in 0..MAX_FAILED_LOGINS {
            assert!(s.login_allowed());
            s.login_failed();
        }
        assert!(!s.login_allowed());
    }

    #[test]
    fn token_comparison() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }
}
