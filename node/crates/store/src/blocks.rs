//! Operator blocks of peers (`wlnode peer block AGENCY`): the set of agencies the node
//! refuses to connect to, kept in `meta/blocked_peers` so that a block survives a
//! restart. Changing it appends the audit event in the same transaction, so the log
//! never disagrees with what was enforced.

use std::collections::BTreeSet;

use wlnode_crypto::model::AgencyCode;

use super::audit::append_tx;
use super::schema::{meta, trees};
use super::{Store, StoreError};
use crate::Engine as _;
use wlnode_audit::event::{Event, EventKind};

/// `meta/blocked_peers` value: agency codes, sorted, one per line (UTF-8).
fn encode(set: &BTreeSet<AgencyCode>) -> Vec<u8> {
    set.iter()
        .map(AgencyCode::as_str)
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

fn decode(b: &[u8]) -> Result<BTreeSet<AgencyCode>, StoreError> {
    let s = std::str::from_utf8(b).map_err(|e| StoreError::corrupt(trees::META, e))?;
    s.lines()
        .filter(|l| !l.is_empty())
        .map(|l| AgencyCode::new(l).map_err(|e| StoreError::corrupt(trees::META, e)))
        .collect()
}

impl Store {
    /// The agencies an operator has blocked.
    pub fn blocked_peers(&self) -> Result<BTreeSet<AgencyCode>, StoreError> {
        match self.t.meta.get(meta::BLOCKED_PEERS).io()? {
            Some(v) => decode(&v),
            None => Ok(BTreeSet::new()),
        }
    }

    /// Blocks (or unblocks) `agency`, durably, with a `peer_blocked` /
    /// `peer_unblocked` audit event at `at_ms` in the same transaction. Returns whether
    /// anything changed (blocking a blocked peer is a no-op and logs nothing).
    pub fn set_peer_blocked(
        &self,
        agency: &AgencyCode,
        blocked: bool,
        at_ms: u64,
    ) -> Result<bool, StoreError> {
        self.before_write()?;
        let mut set = self.blocked_peers()?;
        let changed = if blocked {
            set.insert(agency.clone())
        } else {
            set.remove(agency)
        };
        if !changed {
            return Ok(false);
        }
        let kind = if blocked {
            EventKind::PeerBlocked {
                agency: agency.clone(),
            }
        } else {
            EventKind::PeerUnblocked {
                agency: agency.clone(),
            }
        };
        let events = if self.audit_enabled() {
            vec![Event::new(at_ms, kind)]
        } else {
            Vec::new()
        };
        let value = encode(&set);
        let t = &self.t;
        self.transaction(&[&t.meta, &t.audit_events, &t.audit_nodes], |tx| {
            let [m, e, n] = tx else {
                return Err(StoreError::Closed);
            };
            m.insert(meta::BLOCKED_PEERS, value.as_slice())?;
            append_tx(m, e, n, &events)
        })?;
        if !events.is_empty() {
            self.audit_maybe_checkpoint(at_ms)?;
        }
        self.write_result(self.db.flush())?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_persist_and_are_audited_once() {
        let dir = tempfile::tempdir().unwrap();
        let a: AgencyCode = "AA-EXPORT".parse().unwrap();
        let b: AgencyCode = "BB-CUSTOMS".parse().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            let before = s.audit_size().unwrap();
            assert!(s.set_peer_blocked(&a, true, 1).unwrap());
            assert!(!s.set_peer_blocked(&a, true, 2).unwrap(), "already blocked");
            assert!(s.set_peer_blocked(&b, true, 3).unwrap());
            assert!(s.set_peer_blocked(&b, false, 4).unwrap());
            assert_eq!(s.audit_size().unwrap(), before + 3);
            let events: Vec<Event> = s
                .audit_events(before, before + 3)
                .unwrap()
                .iter()
                .map(|b| Event::decode(b).unwrap())
                .collect();
            assert_eq!(
                events.first().map(|e| &e.kind),
                Some(&EventKind::PeerBlocked { agency: a.clone() })
            );
            assert_eq!(
                events.last().map(|e| &e.kind),
                Some(&EventKind::PeerUnblocked { agency: b.clone() })
            );
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.blocked_peers().unwrap(), BTreeSet::from([a]));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(decode(b"\xff\xfe").is_err());
        assert!(decode(b"not an agency code!").is_err());
        assert_eq!(decode(b"").unwrap(), BTreeSet::new());
    }
}
