//! A memory budget for concurrent hashing, with a pool of reusable argon2 block buffers.
//!
//! Each hash or verify holds a [`Permit`] sized by its memory cost. The sum of every
//! buffer the limiter owns (in use or idle in the pool) never exceeds the budget, so a
//! login flood cannot exhaust memory: past the budget, callers wait up to a timeout and
//! then get [`Error::Overloaded`]. The number of waiters is capped too, so the queue is
//! bounded in length as well as in time.
//!
//! Reusing buffers is also faster: allocating and faulting in a fresh 46 MiB block array
//! per hash roughly doubles its cost on the project machine. Every buffer is wiped
//! before it goes back to the pool or is freed, so no password-derived state outlives
//! the call that produced it.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use argon2::Block;
use zeroize::Zeroize;

use super::Error;
use super::params::BLOCK_BYTES;

/// Default wait for a permit before [`Error::Overloaded`].
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default cap on callers waiting at once.
pub(super) const DEFAULT_MAX_WAITERS: usize = 256;

/// Counters for monitoring (export them as metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimiterStats {
    /// Permits held right now.
    pub in_flight: usize,
    /// Most permits ever held at once.
    pub peak_in_flight: usize,
    /// Bytes of buffers in use right now.
    pub in_use_bytes: usize,
    /// Bytes of idle buffers kept in the pool.
    pub pooled_bytes: usize,
    /// Largest `in_use + pooled` ever reached (never above the budget).
    pub peak_bytes: usize,
    /// Permits granted so far.
    pub granted: u64,
    /// Requests refused with `Overloaded`.
    pub overloaded: u64,
    /// Buffers allocated (a pool hit allocates nothing).
    pub allocations: u64,
}

/// The memory budget and its buffer pool. Shared by every thread of a [`Hasher`](super::Hasher).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use shopsafe::password::Limiter;
///
/// // Room for two OWASP-size (19 MiB) hashes at once, wait at most 100 ms for a slot.
/// let limiter = Limiter::new(2 * 19_456 * 1024, Duration::from_millis(100));
/// assert_eq!(limiter.budget_bytes(), 39_845_888);
/// ```
#[derive(Debug)]
pub struct Limiter {
    budget: usize,
    timeout: Duration,
    max_waiters: usize,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    in_use: usize,
    idle: Vec<Vec<Block>>,
    idle_bytes: usize,
    waiters: usize,
    stats: LimiterStats,
}

impl State {
    fn record_peak(&mut self) {
        let total = self.in_use + self.idle_bytes;
        self.stats.peak_bytes = self.stats.peak_bytes.max(total);
        self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.stats.in_flight);
    }
}

impl Limiter {
    /// A limiter with `budget_bytes` of buffers at most and `timeout` of waiting at most.
    #[must_use]
    pub fn new(budget_bytes: usize, timeout: Duration) -> Self {
        Self {
            budget: budget_bytes,
            timeout,
            max_waiters: DEFAULT_MAX_WAITERS,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    /// Caps how many callers may wait at once; one more is refused at once with
    /// [`Error::Overloaded`].
    #[must_use]
    pub fn with_max_waiters(mut self, max_waiters: usize) -> Self {
        self.max_waiters = max_waiters;
        self
    }

    /// The budget in bytes.
    #[must_use]
    pub fn budget_bytes(&self) -> usize {
        self.budget
    }

    /// The longest a caller waits for a permit.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> LimiterStats {
        let s = self.lock();
        LimiterStats {
            in_use_bytes: s.in_use,
            pooled_bytes: s.idle_bytes,
            ..s.stats
        }
    }

    /// Drops every idle buffer (wiped first), returning their memory to the allocator.
    pub fn shrink(&self) {
        let drained: Vec<Vec<Block>> = {
            let mut s = self.lock();
            s.idle_bytes = 0;
            core::mem::take(&mut s.idle)
        };
        // Idle buffers were wiped when released; free them outside the lock.
        drop(drained);
    }

    /// Allocates up to `count` idle buffers of `blocks` blocks now, as far as the budget
    /// allows, and returns how many the pool holds afterwards. Called at start-up, so it
    /// allocates under the lock (no request is waiting yet).
    pub(crate) fn preallocate(&self, blocks: usize, count: usize) -> usize {
        let bytes = blocks.saturating_mul(BLOCK_BYTES);
        let mut s = self.lock();
        while s.idle.iter().filter(|b| b.len() == blocks).count() < count
            && s.in_use + s.idle_bytes + bytes <= self.budget
        {
            s.idle.push(vec![Block::new(); blocks]);
            s.idle_bytes += bytes;
            s.stats.allocations += 1;
            s.record_peak();
        }
        s.idle.iter().filter(|b| b.len() == blocks).count()
    }

    /// Waits for room for `blocks` argon2 blocks and hands out a wiped buffer of that size.
    pub(crate) fn acquire(&self, blocks: usize) -> Result<Permit<'_>, Error> {
        let bytes = blocks.saturating_mul(BLOCK_BYTES);
        if bytes > self.budget {
            return Err(Error::TooExpensive {
                needed_bytes: bytes,
                budget_bytes: self.budget,
            });
        }
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut s = self.lock();
        while s.in_use + bytes > self.budget {
            let now = Instant::now();
            if now >= deadline || s.waiters >= self.max_waiters {
                s.stats.overloaded += 1;
                return Err(Error::Overloaded {
                    waited: start.elapsed(),
                });
            }
            s.waiters += 1;
            let (guard, _) = self
                .freed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner);
            s = guard;
            s.waiters -= 1;
        }
        s.in_use += bytes;
        s.stats.in_flight += 1;
        s.stats.granted += 1;

        // Prefer an idle buffer of the same size; else evict idle ones until the new
        // allocation fits beside everything else.
        if let Some(i) = s.idle.iter().position(|b| b.len() == blocks) {
            let buf = s.idle.swap_remove(i);
            s.idle_bytes -= bytes;
            s.record_peak();
            return Ok(Permit {
                limiter: self,
                buf,
                bytes,
            });
        }
        let mut evicted = Vec::new();
        while s.in_use + s.idle_bytes > self.budget {
            let Some(old) = s.idle.pop() else { break };
            s.idle_bytes -= old.len() * BLOCK_BYTES;
            evicted.push(old);
        }
        s.stats.allocations += 1;
        s.record_peak();
        drop(s);
        drop(evicted);
        // Allocate outside the lock: faulting in tens of MiB takes milliseconds.
        Ok(Permit {
            limiter: self,
            buf: vec![Block::new(); blocks],
            bytes,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counters half-updated (every
        // update is a few integer stores), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, mut buf: Vec<Block>, bytes: usize) {
        buf.iter_mut().for_each(Zeroize::zeroize);
        let mut s = self.lock();
        s.in_use -= bytes;
        s.stats.in_flight -= 1;
        s.idle_bytes += bytes;
        s.idle.push(buf);
        drop(s);
        self.freed.notify_all();
    }
}

/// The right to run one hash, holding its block buffer. Returned to the pool (wiped) on drop.
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
    buf: Vec<Block>,
    bytes: usize,
}

impl Permit<'_> {
    pub(crate) fn blocks(&mut self) -> &mut [Block] {
        &mut self.buf
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limiter
            .release(core::mem::take(&mut self.buf), self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const BLOCKS: usize = 64;
    const PERMIT: usize = BLOCKS * BLOCK_BYTES;

    #[test]
    fn never_more_than_the_budget_at_once() {
        let limiter = Arc::new(Limiter::new(2 * PERMIT, Duration::from_secs(30)));
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (limiter, now, peak) = (limiter.clone(), now.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let mut permit = limiter.acquire(BLOCKS).expect("30 s is ample");
                        let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(running, Ordering::SeqCst);
                        permit.blocks()[0] = Block::new();
                        std::thread::sleep(Duration::from_micros(300));
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("worker thread");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        let stats = limiter.stats();
        assert_eq!(stats.peak_in_flight, 2);
        assert_eq!(stats.granted, 160);
        assert!(stats.peak_bytes <= 2 * PERMIT);
        assert_eq!(stats.allocations, 2, "the pool serves every later request");
    }

    #[test]
    fn a_request_past_the_timeout_is_overloaded() {
        let limiter = Limiter::new(PERMIT, Duration::from_millis(50));
        let _held = limiter.acquire(BLOCKS).expect("budget is free");
        let start = Instant::now();
        let err = limiter.acquire(BLOCKS).err();
        assert!(matches!(err, Some(Error::Overloaded { .. })), "{err:?}");
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(limiter.stats().overloaded, 1);
    }

    #[test]
    fn waiter_cap_refuses_at_once() {
        let limiter = Limiter::new(PERMIT, Duration::from_secs(60)).with_max_waiters(0);
        let _held = limiter.acquire(BLOCKS).expect("budget is free");
        let start = Instant::now();
        assert!(matches!(
            limiter.acquire(BLOCKS),
            Err(Error::Overloaded { .. })
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn preallocation_fills_the_pool_within_the_budget() {
        let limiter = Limiter::new(3 * PERMIT, Duration::from_secs(1));
        assert_eq!(limiter.preallocate(BLOCKS, 5), 3, "the budget holds three");
        assert_eq!(limiter.stats().pooled_bytes, 3 * PERMIT);
        for _ in 0..3 {
            drop(limiter.acquire(BLOCKS).expect("pooled"));
        }
        assert_eq!(
            limiter.stats().allocations,
            3,
            "requests were served from the pool"
        );
    }

    #[test]
    fn larger_than_budget_is_refused_without_waiting() {
        let limiter = Limiter::new(PERMIT, Duration::from_secs(60));
        assert!(matches!(
            limiter.acquire(BLOCKS + 1),
            Err(Error::TooExpensive { needed_bytes, budget_bytes }) if needed_bytes == PERMIT + BLOCK_BYTES && budget_bytes == PERMIT
        ));
    }

    #[test]
    fn buffers_are_wiped_and_pool_respects_the_budget_across_sizes() {
        let limiter = Limiter::new(PERMIT, Duration::from_secs(1));
        let first = {
            let mut p = limiter.acquire(BLOCKS).expect("free");
            p.blocks().iter_mut().for_each(|b| b.as_mut().fill(0xABAB));
            p.blocks().as_ptr()
        };
        {
            let mut p = limiter.acquire(BLOCKS).expect("free");
            // The very buffer that held the 0xABAB words: a fresh (zeroed) allocation
            // would pass the wipe check below without anything being wiped.
            assert_eq!(p.blocks().as_ptr(), first, "the pooled buffer was reused");
            assert_eq!(limiter.stats().allocations, 1);
            assert!(
                p.blocks()
                    .iter()
                    .all(|b| b.as_ref().iter().all(|&w| w == 0)),
                "reused buffer not wiped"
            );
        }
        // A different size must evict the idle buffer rather than exceed the budget.
        let _p = limiter.acquire(BLOCKS / 2).expect("fits after eviction");
        let s = limiter.stats();
        assert!(s.peak_bytes <= PERMIT, "{s:?}");
        assert_eq!(s.pooled_bytes, 0);
    }
}
