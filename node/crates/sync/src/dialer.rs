//! Keeping the configured neighbours connected, sans IO: when to dial each
//! `[[peers]]` entry, with exponential backoff and jitter, and what a connection, a
//! failed dial or a disconnect means for it. The caller dials (each address of a
//! [`Dial`] at once) and reports back with the dial's id; randomness (jitter) and the
//! time are inputs.

use std::time::{Duration, Instant};

use wlnode_crypto::model::AgencyCode;

use crate::peer::Backoff;

/// One dial to make: every address of one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dial<A> {
    /// The dial's id, to report its outcome with.
    pub id: u64,
    /// The target's agency.
    pub agency: AgencyCode,
    /// The addresses to dial.
    pub addrs: Vec<A>,
}

#[derive(Debug)]
struct Target<A> {
    agency: AgencyCode,
    addrs: Vec<A>,
    backoff: Backoff,
    /// When the next dial is due; `None` while dialing or connected.
    next_at: Option<Instant>,
    /// Addresses of the current dial whose outcome is not known yet.
    dialing: usize,
}

/// The dial state of every configured neighbour.
#[derive(Debug)]
pub struct Dialer<A> {
    targets: Vec<Target<A>>,
}

impl<A: Clone> Dialer<A> {
    /// Targets (agency, addresses), first dialled at `now`; delays between `min` and
    /// `max`.
    pub fn new(
        targets: impl IntoIterator<Item = (AgencyCode, Vec<A>)>,
        min: Duration,
        max: Duration,
        now: Instant,
    ) -> Self {
        Self {
            targets: targets
                .into_iter()
                .map(|(agency, addrs)| Target {
                    agency,
                    addrs,
                    backoff: Backoff::new(min, max),
                    next_at: Some(now),
                    dialing: 0,
                })
                .collect(),
        }
    }

    fn target(&mut self, dial: u64) -> Option<&mut Target<A>> {
        usize::try_from(dial)
            .ok()
            .and_then(|i| self.targets.get_mut(i))
    }

    /// The dials due at `now`, except to agencies `skip` says to leave alone (banned or
    /// blocked; they stay due). `jitter` in `[0, 1)` spreads a target without addresses.
    pub fn due(
        &mut self,
        now: Instant,
        skip: impl Fn(&AgencyCode) -> bool,
        jitter: f64,
    ) -> Vec<Dial<A>> {
        let mut out = Vec::new();
        for (i, t) in self.targets.iter_mut().enumerate() {
            let due = t.next_at.is_some_and(|at| now >= at) && t.dialing == 0;
            if !due || skip(&t.agency) {
                continue;
            }
            t.next_at = None;
            t.dialing = t.addrs.len();
            if t.addrs.is_empty() {
                t.next_at = Some(now + t.backoff.next_delay(jitter));
                continue;
            }
            out.push(Dial {
                id: u64::try_from(i).unwrap_or(u64::MAX),
                agency: t.agency.clone(),
                addrs: t.addrs.clone(),
            });
        }
        out
    }

    /// A connection was established: to `agency` (`None`: a node the roster does not
    /// list), answering `dial` if we dialled. `connected` says whether an agency has a
    /// connection now.
    pub fn on_connected(
        &mut self,
        dial: Option<u64>,
        agency: Option<&AgencyCode>,
        connected: impl Fn(&AgencyCode) -> bool,
        now: Instant,
        jitter: f64,
    ) {
        if let Some(t) = dial.and_then(|d| self.target(d)) {
            t.dialing = t.dialing.saturating_sub(1);
            // The address answered with another agency's node (or none we know): this
            // target is still unconnected and must be dialled again.
            if agency != Some(&t.agency)
                && t.dialing == 0
                && t.next_at.is_none()
                && !connected(&t.agency)
            {
                t.next_at = Some(now + t.backoff.next_delay(jitter));
            }
        }
        let Some(agency) = agency else {
            return;
        };
        for t in self.targets.iter_mut().filter(|t| t.agency == *agency) {
            t.backoff.reset();
            t.next_at = None;
        }
    }

    /// One address of `dial` failed; once none is left and the agency is not
    /// connected, the next dial waits for the backoff.
    pub fn on_dial_failed(
        &mut self,
        dial: u64,
        connected: impl Fn(&AgencyCode) -> bool,
        now: Instant,
        jitter: f64,
    ) {
        let Some(t) = self.target(dial) else {
            return;
        };
        t.dialing = t.dialing.saturating_sub(1);
        if t.dialing == 0 && t.next_at.is_none() && !connected(&t.agency) {
            t.next_at = Some(now + t.backoff.next_delay(jitter));
        }
    }

    /// The last connection to `agency` closed: dial it again after the backoff.
    pub fn on_disconnected(&mut self, agency: &AgencyCode, now: Instant, jitter: f64) {
        for t in self.targets.iter_mut().filter(|t| t.agency == *agency) {
            t.next_at = Some(now + t.backoff.next_delay(jitter));
        }
    }

    /// The operator unblocked `agency`: dial it again at once.
    pub fn on_unblocked(&mut self, agency: &AgencyCode, now: Instant) {
        for t in self.targets.iter_mut().filter(|t| t.agency == *agency) {
            t.backoff.reset();
            t.next_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(10);

    fn ag(s: &str) -> AgencyCode {
        s.parse().unwrap()
    }

    fn dialer(t: Instant) -> Dialer<&'static str> {
        Dialer::new(
            [
                (ag("BB-CUSTOMS"), vec!["/b1", "/b2"]),
                (ag("CC-TRADE"), vec!["/c"]),
            ],
            MIN,
            MAX,
            t,
        )
    }

    fn ids(d: &[Dial<&str>]) -> Vec<u64> {
        d.iter().map(|d| d.id).collect()
    }

    #[test]
    fn every_target_is_dialled_at_start_and_again_after_backoff_when_all_addresses_fail() {
        let t = Instant::now();
        let mut d = dialer(t);
        let first = d.due(t, |_| false, 0.0);
        assert_eq!(ids(&first), [0, 1]);
        assert_eq!(first[0].addrs, ["/b1", "/b2"]);
        // In flight: nothing is due again.
        assert!(d.due(t + MAX, |_| false, 0.0).is_empty());
        // One of two addresses failed: still dialling.
        d.on_dial_failed(0, |_| false, t, 0.0);
        assert!(d.due(t + MAX, |_| false, 0.0).is_empty());
        // Both failed: due after the backoff (half the first delay with jitter 0).
        d.on_dial_failed(0, |_| false, t, 0.0);
        assert!(d.due(t + MIN / 4, |_| false, 0.0).is_empty());
        assert_eq!(ids(&d.due(t + MIN, |_| false, 0.0)), [0]);
        // The delay doubles with each failed round.
        d.on_dial_failed(0, |_| false, t + MIN, 0.0);
        d.on_dial_failed(0, |_| false, t + MIN, 0.0);
        assert!(d.due(t + MIN + MIN / 2, |_| false, 0.0).is_empty());
        assert_eq!(ids(&d.due(t + MIN * 2, |_| false, 0.0)), [0]);
    }

    #[test]
    fn a_connection_resets_the_backoff_and_a_disconnect_schedules_the_next_dial() {
        let t = Instant::now();
        let mut d = dialer(t);
        let _ = d.due(t, |_| false, 0.0);
        for _ in 0..2 {
            d.on_dial_failed(0, |_| false, t, 0.0);
        }
        let _ = d.due(t + MAX, |_| false, 0.0);
        d.on_connected(Some(0), Some(&ag("BB-CUSTOMS")), |_| true, t + MAX, 0.0);
        // The dial's other address fails, but the agency is connected: nothing is due.
        d.on_dial_failed(0, |_| true, t + MAX, 0.0);
        assert!(d.due(t + MAX * 10, |_| false, 0.0).is_empty(), "connected");
        d.on_disconnected(&ag("BB-CUSTOMS"), t + MAX * 10, 0.0);
        assert_eq!(
            ids(&d.due(t + MAX * 10 + MIN, |_| false, 0.0)),
            [0],
            "after the first delay again"
        );
    }

    #[test]
    fn banned_or_blocked_agencies_are_not_dialled_and_an_unblocked_one_is_dialled_at_once() {
        let t = Instant::now();
        let mut d = dialer(t);
        let blocked = ag("CC-TRADE");
        assert_eq!(ids(&d.due(t, |a| *a == blocked, 0.0)), [0]);
        assert!(d.due(t + MAX, |a| *a == blocked, 0.0).is_empty());
        d.on_unblocked(&blocked, t + MAX);
        assert_eq!(ids(&d.due(t + MAX, |_| false, 0.0)), [1]);
    }

    /// A dial whose address answers with another agency's node (a stale `[[peers]]`
    /// address, or an operator's mistake) used to leave its target neither dialling
    /// nor due, so it was never dialled again.
    #[test]
    fn a_dial_answered_by_another_agencys_node_is_retried() {
        let t = Instant::now();
        let mut d = dialer(t);
        let _ = d.due(t, |_| false, 0.0);
        // CC-TRADE's address leads to BB-CUSTOMS's node.
        d.on_connected(Some(1), Some(&ag("BB-CUSTOMS")), |_| false, t, 0.0);
        assert_eq!(
            ids(&d.due(t + MAX, |_| false, 0.0)),
            [1],
            "CC is dialled again"
        );
        // Likewise for a node the roster does not list.
        d.on_connected(Some(1), None, |_| false, t + MAX, 0.0);
        assert_eq!(ids(&d.due(t + MAX * 2, |_| false, 0.0)), [1]);
    }
}
