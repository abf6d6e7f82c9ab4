//! When a source refreshes next: a sans-IO state machine, so the timing rules are
//! tested with made-up instants and no test waits for real hours.
//!
//! Rules: a source with no remembered success runs at once; one that succeeded
//! before a restart runs `every` after that success (at once if that is past). After
//! a success the next run is `every` later. After a failure it is retried after
//! `retry`, doubling with each further failure, capped at half of `every` (never
//! below `retry`), so a failing source is retried well before its next regular run
//! and a down server is not hammered. An operator's "run now" makes it due at once.

use std::time::{Duration, Instant};

/// What the service should do with a source now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Refresh it now.
    Run,
    /// Nothing until then.
    WaitUntil(Instant),
}

/// How a refresh ended, as far as timing is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    /// Fetched (or not modified) and imported.
    Ok,
    /// Anything else: the next try is a retry.
    Failed,
}

/// The furthest ahead a run is put when `now + delay` does not fit in an
/// `Instant` (an absurd `every`; the config caps it at 30 days anyway).
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// `now + delay`, never overflowing: capped at [`FAR`], and at `now` when even that
/// does not fit.
pub(crate) fn later(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// One source's timing.
#[derive(Clone, Debug)]
pub struct Schedule {
    every: Duration,
    retry: Duration,
    next: Instant,
    failures: u32,
}

impl Schedule {
    /// A schedule at `now`; `since_success` is how long ago the last remembered
    /// success was (none: run at once).
    pub fn new(
        now: Instant,
        every: Duration,
        retry: Duration,
        since_success: Option<Duration>,
    ) -> Self {
        let next = match since_success {
            Some(ago) if ago < every => later(now, every - ago),
            _ => now,
        };
        Self {
            every,
            retry,
            next,
            failures: 0,
        }
    }

    /// What to do at `now`.
    pub fn poll(&self, now: Instant) -> Step {
        if now >= self.next {
            Step::Run
        } else {
            Step::WaitUntil(self.next)
        }
    }

    /// When it is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The operator asked for a refresh now.
    pub fn run_now(&mut self, now: Instant) {
        self.next = self.next.min(now);
    }

    /// A refresh ended at `now`; returns when the next one is due.
    pub fn finished(&mut self, now: Instant, ran: Ran) -> Instant {
        match ran {
            Ran::Ok => {
                self.failures = 0;
                self.next = later(now, self.every);
            }
            Ran::Failed => {
                self.failures = self.failures.saturating_add(1);
                self.next = later(now, self.backoff(self.failures));
            }
        }
        self.next
    }

    /// The delay after the `n`-th failure in a row (n ≥ 1).
    pub fn backoff(&self, n: u32) -> Duration {
        let cap = (self.every / 2).max(self.retry);
        let factor = 1u32
            .checked_shl(n.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.retry.saturating_mul(factor).min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_new_source_runs_at_once_and_then_every_period() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 6 * H, 30 * S, None);
        assert_eq!(s.poll(t0), Step::Run);
        let next = s.finished(t0 + 5 * S, Ran::Ok);
        assert_eq!(next, t0 + 5 * S + 6 * H);
        assert_eq!(s.poll(t0 + H), Step::WaitUntil(next));
        assert_eq!(s.poll(next), Step::Run);
    }

    #[test]
    fn a_restart_keeps_the_period_of_the_last_success() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 6 * H, 30 * S, Some(2 * H));
        assert_eq!(s.poll(t0), Step::WaitUntil(t0 + 4 * H));
        let overdue = Schedule::new(t0, 6 * H, 30 * S, Some(7 * H));
        assert_eq!(overdue.poll(t0), Step::Run);
    }

    #[test]
    fn failures_back_off_doubling_capped_at_half_the_period_and_a_success_resets() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 6 * H, 30 * S, None);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..12 {
            let next = s.finished(now, Ran::Failed);
            delays.push((next - now).as_secs());
            // Nothing happens before the retry is due: a timer, not a loop.
            assert_eq!(s.poll(next - S), Step::WaitUntil(next));
            assert_eq!(s.poll(next), Step::Run);
            now = next;
        }
        assert_eq!(
            delays,
            [
                30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 10800, 10800, 10800
            ]
        );
        assert!(delays.iter().all(|d| *d < 6 * 3600));
        assert_eq!(s.failures(), 12);
        s.finished(now, Ran::Ok);
        assert_eq!(s.failures(), 0);
        assert_eq!(s.finished(now, Ran::Failed), now + 30 * S);
    }

    #[test]
    fn a_retry_longer_than_half_the_period_is_kept_and_huge_counts_do_not_overflow() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 60 * S, 45 * S, None);
        assert_eq!(s.backoff(1), 45 * S);
        assert_eq!(s.backoff(5), 45 * S);
        let s = Schedule::new(t0, 6 * H, 30 * S, None);
        assert_eq!(s.backoff(u32::MAX), 3 * H);
    }

    #[test]
    fn an_absurd_period_does_not_overflow() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Duration::MAX, 30 * S, Some(S));
        assert!(s.next() > t0);
        assert!(s.finished(t0, Ran::Ok) > t0);
        assert!(s.finished(t0, Ran::Failed) > t0);
        assert!(s.finished(t0, Ran::Failed) > t0);
        let mut r = Schedule::new(t0, Duration::MAX, Duration::MAX, None);
        assert!(r.finished(t0, Ran::Failed) >= t0);
    }

    #[test]
    fn run_now_makes_it_due_and_never_later() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 6 * H, 30 * S, Some(H));
        let now = t0 + 10 * S;
        s.run_now(now);
        assert_eq!(s.poll(now), Step::Run);
        let mut due = Schedule::new(t0, 6 * H, 30 * S, None);
        due.run_now(t0 + H);
        assert_eq!(due.next(), t0);
    }
}
