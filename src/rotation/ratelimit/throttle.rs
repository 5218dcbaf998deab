//! The throttle port: rate-limit state shared by every server of a deployment.

use crate::persist::StoreError;

/// Rate-limit state every server of a deployment shares: one number per key (a GCRA
/// theoretical arrival time, in nanoseconds since the epoch; see `rotation::Rate`). Keys
/// are 16-byte digests: no account name or address is stored.
pub trait ThrottleStore: Send + Sync {
    /// In one transaction that no other update of these keys interleaves with: reads the
    /// values of `keys` (`None`: no row, or a value at or before `now`, which means the
    /// same), lets `update` change them, writes them back (`None` deletes the row), and
    /// deletes at most `sweep` rows of any key whose value is at or before `now`, so old
    /// keys leave the table a bounded amount per write.
    ///
    /// # Errors
    /// A backend failure: the caller refuses the attempt (a limiter fails closed).
    fn update_throttle(
        &self,
        keys: &[[u8; 16]],
        now: i64,
        sweep: usize,
        update: &mut dyn FnMut(&mut [Option<i64>]),
    ) -> Result<(), StoreError>;

    /// How many keys the table holds.
    ///
    /// # Errors
    /// A backend failure.
    fn throttle_rows(&self) -> Result<u64, StoreError>;

    /// Applies `adjustments` in one transaction, without handing the values out: what a
    /// successful login does (clear the account, give one attempt back to the source).
    /// The default runs [`update_throttle`](Self::update_throttle); a networked backend
    /// overrides it to save the round trip that reading takes.
    ///
    /// # Errors
    /// A backend failure.
    fn adjust_throttle(
        &self,
        adjustments: &[([u8; 16], ThrottleAdjust)],
        now: i64,
    ) -> Result<(), StoreError> {
        let keys: Vec<[u8; 16]> = adjustments.iter().map(|(k, _)| *k).collect();
        self.update_throttle(&keys, now, 0, &mut |values| {
            for (value, (_, adjust)) in values.iter_mut().zip(adjustments) {
                *value = adjust.apply(*value, now);
            }
        })
    }
}

/// A change to one throttle value that does not depend on reading it first
/// ([`ThrottleStore::adjust_throttle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleAdjust {
    /// Forget the key.
    Clear,
    /// Move the value back by this many nanoseconds (one attempt's interval); forget the
    /// key when that reaches `now`.
    GiveBack(i64),
}

impl ThrottleAdjust {
    /// The value after the change (`None`: no row).
    #[must_use]
    pub fn apply(self, value: Option<i64>, now: i64) -> Option<i64> {
        match self {
            Self::Clear => None,
            Self::GiveBack(ns) => value.map(|t| t.saturating_sub(ns)).filter(|&t| t > now),
        }
    }
}

impl<T: ThrottleStore + ?Sized> ThrottleStore for std::sync::Arc<T> {
    fn update_throttle(
        &self,
        keys: &[[u8; 16]],
        now: i64,
        sweep: usize,
        update: &mut dyn FnMut(&mut [Option<i64>]),
    ) -> Result<(), StoreError> {
        (**self).update_throttle(keys, now, sweep, update)
    }

    fn throttle_rows(&self) -> Result<u64, StoreError> {
        (**self).throttle_rows()
    }

    fn adjust_throttle(
        &self,
        adjustments: &[([u8; 16], ThrottleAdjust)],
        now: i64,
    ) -> Result<(), StoreError> {
        (**self).adjust_throttle(adjustments, now)
    }
}
