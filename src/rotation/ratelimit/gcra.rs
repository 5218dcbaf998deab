//! The generic cell rate algorithm (GCRA), the throttle of every limiter here: one
//! number per key, the *theoretical arrival time* (TAT) of the next event.
//!
//! A rate of `limit` per `period` lets `limit` events through at once, then one every
//! `period / limit`: the long-run rate of a fixed window of `period`, without the
//! window's edge, where `limit` events just before it and `limit` just after all pass
//! (here the second burst waits one interval per event). Any span of one period sees
//! fewer than `2 × limit` events: the burst and what refills during the span.
//! A key whose TAT is in the past is the same as a key never seen, so state expires by
//! itself: a store may delete a row once its TAT has passed.

use std::time::Duration;

use super::throttle::ThrottleAdjust;

/// `limit` events per `period`, with a burst of `limit`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use shopsafe::rotation::Rate;
///
/// let ten_per_quarter_hour = Rate::new(10, Duration::from_secs(15 * 60));
/// assert_eq!(ten_per_quarter_hour.interval(), Duration::from_secs(90));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    limit: u32,
    period: Duration,
}

impl Rate {
    /// `limit` events per `period` (a limit of 0 is taken as 1, a period under a
    /// millisecond as 1 ms).
    #[must_use]
    pub fn new(limit: u32, period: Duration) -> Self {
        Self {
            limit: limit.max(1),
            period: period.max(Duration::from_millis(1)),
        }
    }

    /// The events let through at once.
    #[must_use]
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The period.
    #[must_use]
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The time one event takes back from the budget: `period / limit`.
    #[must_use]
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.interval_ns()).unwrap_or(u64::MAX))
    }

    fn period_ns(&self) -> i64 {
        i64::try_from(self.period.as_nanos()).unwrap_or(i64::MAX)
    }

    pub(crate) fn interval_ns(&self) -> i64 {
        (self.period_ns() / i64::from(self.limit)).max(1)
    }

    /// How far the TAT may run ahead of now: `period - interval`.
    fn tolerance_ns(&self) -> i64 {
        self.period_ns() - self.interval_ns()
    }

    /// One event at `now` (ns) against the stored TAT: the new TAT, or how long to wait.
    pub(crate) fn admit(&self, tat: Option<i64>, now: i64) -> Result<i64, Duration> {
        let tat = tat.map_or(now, |t| t.max(now));
        let ahead = tat.saturating_sub(now);
        if ahead > self.tolerance_ns() {
            let wait = ahead - self.tolerance_ns();
            return Err(Duration::from_nanos(
                u64::try_from(wait).unwrap_or(u64::MAX),
            ));
        }
        Ok(tat.saturating_add(self.interval_ns()))
    }

    /// The TAT with one event taken back (an attempt that was not tried, or that
    /// succeeded): never behind `now`, so nothing is banked for later.
    pub(crate) fn give_back(&self, tat: Option<i64>, now: i64) -> Option<i64> {
        ThrottleAdjust::GiveBack(self.interval_ns()).apply(tat, now)
    }
}

/// `Timestamp` milliseconds as the nanoseconds the TATs are kept in.
pub(crate) fn nanos(ms: i64) -> i64 {
    ms.saturating_mul(1_000_000)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const S: i64 = 1_000_000_000;

    /// Events at `times` (s), each admitted or not, TAT kept.
    fn run(rate: Rate, times: &[i64]) -> usize {
        let mut tat = None;
        times
            .iter()
            .filter(|&&t| match rate.admit(tat, t * S) {
                Ok(next) => {
                    tat = Some(next);
                    true
                }
                Err(_) => false,
            })
            .count()
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let rate = Rate::new(10, Duration::from_secs(900));
        assert_eq!(run(rate, &[0; 20]), 10, "the burst");
        // After the burst, one more every 90 s.
        let mut times = vec![0; 10];
        times.extend([89, 90, 91, 179, 180]);
        assert_eq!(run(rate, &times), 12);
        let mut tat = None;
        for _ in 0..10 {
            tat = rate.admit(tat, 0).ok();
        }
        assert_eq!(rate.admit(tat, 0), Err(Duration::from_secs(90)));
        assert_eq!(rate.admit(tat, 30 * S), Err(Duration::from_secs(60)));
    }

    #[test]
    fn no_double_burst_at_a_window_edge() {
        // A fixed window of 15 min lets 10 through at 14:59 and 10 more at 15:00.
        let rate = Rate::new(10, Duration::from_secs(900));
        let mut times = vec![899; 10];
        times.extend([900; 10]);
        assert_eq!(run(rate, &times), 10);
        // And a full period later the whole burst is back.
        times.extend([1799 + 900; 10]);
        assert_eq!(run(rate, &times), 20);
    }

    #[test]
    fn taking_back_never_banks_credit() {
        let rate = Rate::new(3, Duration::from_secs(60));
        let tat = rate.admit(None, 0).ok();
        assert_eq!(rate.give_back(tat, 0), None, "back to a key never seen");
        // Given back long after: nothing to carry forward either.
        let tat = rate.admit(None, 0).ok();
        assert_eq!(rate.give_back(tat, 3_600 * S), None);
    }

    proptest! {
        #[test]
        fn any_period_passes_at_most_a_burst_and_its_refill(
            limit in 1u32..50,
            period_s in 1u64..3_600,
            mut times in proptest::collection::vec(0i64..20_000, 1..300),
        ) {
            times.sort_unstable();
            let rate = Rate::new(limit, Duration::from_secs(period_s));
            let mut tat = None;
            let mut passed = Vec::new();
            for &t in &times {
                if let Ok(next) = rate.admit(tat, t * S) {
                    tat = Some(next);
                    passed.push(t);
                }
            }
            // In any span of one period: the burst, and what refilled during the span
            // (one per interval after its start): under 2 × limit. Over any span L: the
            // burst and L / interval more, so 3 × limit over two periods.
            let period = i64::try_from(period_s).unwrap_or(i64::MAX);
            for (i, &start) in passed.iter().enumerate() {
                let within = passed[i..].iter().take_while(|&&t| t < start + period).count();
                prop_assert!(within < 2 * limit as usize, "{within} in a period, limit {limit}");
            }
            if let Some(&first) = passed.first() {
                let two = passed.iter().take_while(|&&t| t < first + 2 * period).count();
                prop_assert!(two <= 3 * limit as usize, "{two} in two periods, limit {limit}");
            }
        }
    }
}
