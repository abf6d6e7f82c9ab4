//! Range-based set reconciliation (negentropy) over `(issued_at, record_id)`.
//!
//! The initiator drives a session: negentropy rounds reveal which records each side
//! lacks, and the same request/response exchange then carries the records the
//! responder lacks (`have`) and asks for those the initiator lacks (`need`), so both
//! directions converge in one session. The responder is stateless between rounds
//! apart from a cached, sealed item set.
//!
//! Both sides build their set from the records that the distribution admits for both
//! of them (`policy::shared_between`), so a record neither may exchange never shows
//! up as a difference.

use std::collections::VecDeque;

use negentropy::{Id, Negentropy, NegentropyStorageVector};
use wlnode_crypto::model::RecordId;

/// Largest negentropy message; keeps every frame well below the transport limits.
pub const FRAME_LIMIT: u64 = 60_000;

/// A reconciliation step failed (bad input from the peer, or a local bug).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reconciliation: {0}")]
pub struct ReconcileError(pub String);

fn e(x: negentropy::Error) -> ReconcileError {
    ReconcileError(x.to_string())
}

/// Builds a sealed item set.
pub fn storage(items: &[(u64, RecordId)]) -> Result<NegentropyStorageVector, ReconcileError> {
    let mut s = NegentropyStorageVector::with_capacity(items.len());
    for (t, id) in items {
        s.insert(*t, Id::from_byte_array(id.0)).map_err(e)?;
    }
    s.seal().map_err(e)?;
    Ok(s)
}

/// `base` with `more` added (each item once), sealed: a set kept up to date without
/// reading the store again.
pub fn extend(
    base: &NegentropyStorageVector,
    more: &[(u64, RecordId)],
) -> Result<NegentropyStorageVector, ReconcileError> {
    let mut s = base.clone();
    s.unseal().map_err(e)?;
    for (t, id) in more {
        s.insert(*t, Id::from_byte_array(id.0)).map_err(e)?;
    }
    s.seal().map_err(e)?;
    Ok(s)
}

/// The responder's answer to one negentropy message.
pub fn respond(
    storage: &NegentropyStorageVector,
    message: &[u8],
) -> Result<Vec<u8>, ReconcileError> {
    let mut neg = Negentropy::borrowed(storage, FRAME_LIMIT).map_err(e)?;
    neg.reconcile(message).map_err(e)
}

/// One initiator session.
#[derive(Debug)]
pub struct Initiator {
    neg: Negentropy<'static, NegentropyStorageVector>,
    next_msg: Option<Vec<u8>>,
    neg_done: bool,
    have: VecDeque<RecordId>,
    need: VecDeque<RecordId>,
    /// Session id.
    pub session: [u8; 16],
    /// Round trips so far.
    pub rounds: u32,
    /// Records the responder lacked (found so far).
    pub found_have: usize,
    /// Records we lacked (found so far).
    pub found_need: usize,
}

/// The next request of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Negentropy message, if the set difference is still being computed.
    pub message: Option<Vec<u8>>,
    /// Records to push.
    pub have: Vec<RecordId>,
    /// Records to ask for.
    pub need: Vec<RecordId>,
}

impl Initiator {
    /// Starts a session over `storage`; returns the session and its first step.
    pub fn start(
        storage: NegentropyStorageVector,
        session: [u8; 16],
    ) -> Result<(Self, Step), ReconcileError> {
        let mut neg = Negentropy::owned(storage, FRAME_LIMIT).map_err(e)?;
        let first = neg.initiate().map_err(e)?;
        let s = Self {
            neg,
            next_msg: None,
            neg_done: false,
            have: VecDeque::new(),
            need: VecDeque::new(),
            session,
            rounds: 1,
            found_have: 0,
            found_need: 0,
        };
        Ok((
            s,
            Step {
                message: Some(first),
                have: Vec::new(),
                need: Vec::new(),
            },
        ))
    }

    /// Feeds the responder's negentropy reply (empty when the previous request carried
    /// no negentropy message).
    pub fn on_reply(&mut self, message: &[u8]) -> Result<(), ReconcileError> {
        if self.neg_done || message.is_empty() {
            return Ok(());
        }
        let mut have = Vec::new();
        let mut need = Vec::new();
        let next = self
            .neg
            .reconcile_with_ids(message, &mut have, &mut need)
            .map_err(e)?;
        self.found_have += have.len();
        self.found_need += need.len();
        self.have.extend(have.into_iter().map(|id| RecordId(*id)));
        self.need.extend(need.into_iter().map(|id| RecordId(*id)));
        match next {
            Some(m) => self.next_msg = Some(m),
            None => self.neg_done = true,
        }
        Ok(())
    }

    /// The next request, or `None` when the session is complete. Takes at most
    /// `max_have` records to push and `max_need` ids to ask for.
    pub fn next_step(&mut self, max_have: usize, max_need: usize) -> Option<Step> {
        let message = self.next_msg.take();
        let have: Vec<RecordId> = (0..max_have).map_while(|_| self.have.pop_front()).collect();
        let need: Vec<RecordId> = (0..max_need).map_while(|_| self.need.pop_front()).collect();
        // After each reply either a next negentropy message is pending or the
        // difference is known, so an empty step means the session is over.
        if message.is_none() && have.is_empty() && need.is_empty() {
            return None;
        }
        self.rounds += 1;
        Some(Step {
            message,
            have,
            need,
        })
    }

    /// Re-queues records that did not fit in the last request.
    pub fn requeue_have(&mut self, ids: impl IntoIterator<Item = RecordId>) {
        for id in ids {
            self.have.push_front(id);
        }
    }

    /// Re-queues ids the responder did not return (e.g. a byte limit cut its reply).
    pub fn requeue_need(&mut self, ids: impl IntoIterator<Item = RecordId>) {
        self.need.extend(ids);
    }

    /// Whether the set difference is fully known.
    pub fn difference_known(&self) -> bool {
        self.neg_done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extended_set_equals_the_set_built_at_once() {
        use negentropy::NegentropyStorageBase;
        let id = |b: u8| RecordId([b; 32]);
        let all = [(5, id(1)), (1, id(2)), (9, id(3)), (5, id(4))];
        let base = storage(&all[..2]).unwrap();
        // An item already held (a merged record's new arrival) counts once.
        let grown = extend(&base, &[all[2], all[3], all[0]]).unwrap();
        let whole = storage(&all).unwrap();
        assert_eq!(grown.size().unwrap(), 4);
        assert_eq!(grown, whole);
        assert_eq!(base.size().unwrap(), 2, "the base is left as it was");
    }

    fn id(n: u32) -> RecordId {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        RecordId(b)
    }

    /// Runs a whole session between two in-memory sets; returns (pushed, pulled, rounds).
    fn run(a: &[(u64, RecordId)], b: &[(u64, RecordId)]) -> (Vec<RecordId>, Vec<RecordId>, u32) {
        let sb = storage(b).unwrap();
        let (mut init, mut step) = Initiator::start(storage(a).unwrap(), [7; 16]).unwrap();
        let (mut pushed, mut pulled) = (Vec::new(), Vec::new());
        loop {
            pushed.extend(step.have.iter().copied());
            pulled.extend(step.need.iter().copied());
            let reply = match &step.message {
                Some(m) => respond(&sb, m).unwrap(),
                None => Vec::new(),
            };
            init.on_reply(&reply).unwrap();
            match init.next_step(100, 100) {
                Some(s) => step = s,
                None => break,
            }
        }
        (pushed, pulled, init.rounds)
    }

    #[test]
    fn finds_both_directions() {
        let common: Vec<(u64, RecordId)> = (0..5000).map(|i| (1000 + i as u64, id(i))).collect();
        let mut a = common.clone();
        let mut b = common;
        a.extend((10_000..10_050).map(|i| (5000 + i as u64, id(i))));
        b.extend((20_000..20_030).map(|i| (7000 + i as u64, id(i))));
        let (mut pushed, mut pulled, rounds) = run(&a, &b);
        pushed.sort();
        pulled.sort();
        assert_eq!(pushed, (10_000..10_050).map(id).collect::<Vec<_>>());
        assert_eq!(pulled, (20_000..20_030).map(id).collect::<Vec<_>>());
        assert!(rounds < 12, "{rounds} rounds");
    }

    #[test]
    fn identical_and_empty_sets() {
        let s: Vec<(u64, RecordId)> = (0..100).map(|i| (i as u64, id(i))).collect();
        let (p, q, _) = run(&s, &s);
        assert!(p.is_empty() && q.is_empty());
        let (p, q, _) = run(&[], &s);
        assert_eq!((p.len(), q.len()), (0, 100));
        let (p, q, _) = run(&s, &[]);
        assert_eq!((p.len(), q.len()), (100, 0));
    }

    #[test]
    fn garbage_replies_are_errors_not_panics() {
        let (mut init, _) = Initiator::start(storage(&[(1, id(1))]).unwrap(), [0; 16]).unwrap();
        for junk in [&b"\x61\xff\xff\xff"[..], b"\x00", b"\x61", &[0x61; 300]] {
            let _ = init.on_reply(junk);
        }
        let s = storage(&[(1, id(1))]).unwrap();
        for junk in [&b""[..], b"\x61\x05", &[0xff; 100]] {
            let _ = respond(&s, junk);
        }
    }
}
