//! The per-peer "recently sent" cache of the responding side.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Copies recently sent to one peer, so that overlapping paths (a Pull batch and a
/// reconciliation, or two sessions) never send the same copy twice in a short time.
/// Keyed by record id and the number of disclosures, so a more complete copy of a
/// record still goes out.
#[derive(Debug)]
pub struct SentCache {
    ttl: Duration,
    cap: usize,
    entries: HashMap<(wlnode_crypto::model::RecordId, usize), Instant>,
}

impl SentCache {
    /// Remembers up to `cap` copies for `ttl`.
    pub fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            ttl,
            cap,
            entries: HashMap::new(),
        }
    }

    /// Whether this copy was sent within the TTL; if not, records it as sent now.
    pub fn check_and_insert(
        &mut self,
        id: wlnode_crypto::model::RecordId,
        disclosed: usize,
        now: Instant,
    ) -> bool {
        if let Some(t) = self.entries.get(&(id, disclosed))
            && now.duration_since(*t) < self.ttl
        {
            return true;
        }
        if self.entries.len() >= self.cap {
            let ttl = self.ttl;
            self.entries.retain(|_, t| now.duration_since(*t) < ttl);
            if self.entries.len() >= self.cap {
                self.entries.clear();
            }
        }
        self.entries.insert((id, disclosed), now);
        false
    }

    /// Forgets a copy (its send failed).
    pub fn forget(&mut self, id: wlnode_crypto::model::RecordId, disclosed: usize) {
        self.entries.remove(&(id, disclosed));
    }
}

#[cfg(test)]
mod sent_cache_tests {
    use super::*;

    #[test]
    fn remembers_within_ttl_and_lets_more_complete_copies_through() {
        let t = Instant::now();
        let mut c = SentCache::new(Duration::from_secs(60), 10);
        let id = wlnode_crypto::model::RecordId([1; 32]);
        assert!(!c.check_and_insert(id, 3, t));
        assert!(c.check_and_insert(id, 3, t + Duration::from_secs(1)));
        assert!(
            !c.check_and_insert(id, 5, t + Duration::from_secs(1)),
            "more fields now"
        );
        assert!(
            !c.check_and_insert(id, 3, t + Duration::from_secs(61)),
            "expired"
        );
        for k in 0..20u8 {
            c.check_and_insert(wlnode_crypto::model::RecordId([k; 32]), 1, t);
        }
        assert!(c.entries.len() <= 10);
    }
}
