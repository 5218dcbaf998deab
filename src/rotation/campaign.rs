//! The breach-day notification campaign: one reset notice per affected account, resumable.
//!
//! Accounts are taken in account-id order, a batch at a time. Claiming a batch stores a
//! fresh reset token (its digest) for each account in one transaction: that is the
//! outbox record of the notices due. Each notice then goes to the application's
//! [`Notifier`]; progress is a cursor ("every account up to X was notified") written every
//! [`DEFAULT_CHECKPOINT_EVERY`] notices, at the end of each batch, on a notifier error
//! and while a panic unwinds. A run that was stopped resumes at the cursor: accounts past
//! it get a new token, accounts up to it are never sent again. A token claimed but never
//! sent is never known to anyone; one sent just before a crash keeps working.
//!
//! # Security
//! No store can be atomic with an external mail system. A process killed hard (power
//! loss, `SIGKILL`) after some `send`s returned and before their checkpoint was written
//! sends those notices again on resume: at most
//! [`checkpoint_every`](CampaignOptions::checkpoint_every) of them, 1 if you set it so.
//! Every [`Notice`] has a stable [`NoticeId`]: pass it to the mail provider as the
//! idempotency key / `Message-ID` and the repeats are dropped there. A `send` that
//! fails or panics is not counted as sent.

use core::fmt;
use std::time::{Duration, Instant};

use super::Error;
use super::authenticator::INCIDENT_TOKEN_TTL;
use super::clock::{Clock, SystemClock};
use super::error::NotifyError;
use super::notifier::{Delivery, Notice, NoticeId, Notifier, REUSE_ADVICE};
use super::reset_token::{BrandLinks, ResetToken};
use crate::kernel::AccountId;
use crate::persist::StoreError;
use crate::rotation::{
    CampaignId, CampaignState, CampaignStore, Incident, TokenPurpose, TokenRecord, Undelivered,
};

/// Notices between two progress writes by default (see
/// [`CampaignOptions::checkpoint_every`]).
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 64;

/// Progress, reported after each batch.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// Notices delivered, this run and earlier ones.
    pub done: u64,
    /// Accounts affected when the run started.
    pub total: u64,
    /// Notices per second in this run.
    pub rate: f64,
    /// Estimated time to finish at this rate.
    pub eta: Option<Duration>,
}

type ExposureFn<'a> = dyn Fn(&AccountId) -> Option<String> + 'a;
type ProgressFn<'a> = dyn FnMut(&Progress) + 'a;

/// How a campaign runs.
#[must_use]
pub struct CampaignOptions<'a> {
    batch_size: usize,
    max_per_second: Option<f64>,
    dry_run: bool,
    token_ttl: Duration,
    max_notices: Option<u64>,
    checkpoint_every: u64,
    exposure: Option<Box<ExposureFn<'a>>>,
    progress: Option<Box<ProgressFn<'a>>>,
}

impl fmt::Debug for CampaignOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CampaignOptions")
            .field("batch_size", &self.batch_size)
            .field("max_per_second", &self.max_per_second)
            .field("dry_run", &self.dry_run)
            .field("token_ttl", &self.token_ttl)
            .field("max_notices", &self.max_notices)
            .field("checkpoint_every", &self.checkpoint_every)
            .finish_non_exhaustive()
    }
}

impl Default for CampaignOptions<'_> {
    fn default() -> Self {
        Self {
            batch_size: 2_000,
            max_per_second: None,
            dry_run: false,
            token_ttl: INCIDENT_TOKEN_TTL,
            max_notices: None,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            exposure: None,
            progress: None,
        }
    }
}

impl<'a> CampaignOptions<'a> {
    /// Defaults: batches of 2,000, no throttle, 72 h tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts per batch (one transaction, one checkpoint). Clamped to 1..=100,000.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.clamp(1, 100_000);
        self
    }

    /// At most this many notices per second (a mail provider's rate). Rates below one
    /// notice in 1,000 s count as that; zero, negative, infinite or NaN rates mean no limit.
    pub fn max_per_second(mut self, rate: f64) -> Self {
        self.max_per_second = (rate.is_finite() && rate > 0.0).then_some(rate.max(0.001));
        self
    }

    /// Count what would be sent; issue no token, send nothing.
    pub fn dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }

    /// Lifetime of the tokens sent (default 72 h).
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Stop after this many notices in this run (a staged roll-out; resume later).
    pub fn max_notices(mut self, n: u64) -> Self {
        self.max_notices = Some(n);
        self
    }

    /// Write the progress cursor after every `n` notices (default
    /// [`DEFAULT_CHECKPOINT_EVERY`]; clamped to 1..=100,000), and always at the end of a
    /// batch, on a notifier error and while unwinding from a panic. Only a hard kill
    /// (power loss, `SIGKILL`) loses progress: up to `n` notices are then sent again on
    /// resume, with the same [`NoticeId`]s. `1` makes that window one notice, at about a
    /// third of the throughput on SQLite.
    pub fn checkpoint_every(mut self, n: u64) -> Self {
        self.checkpoint_every = n.clamp(1, 100_000);
        self
    }

    /// Fills each notice's exposure summary.
    pub fn exposure(mut self, f: impl Fn(&AccountId) -> Option<String> + 'a) -> Self {
        self.exposure = Some(Box::new(f));
        self
    }

    /// Called after each batch.
    pub fn progress(mut self, f: impl FnMut(&Progress) + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CampaignReport {
    /// The campaign.
    pub campaign: CampaignId,
    /// Accounts affected when the run started.
    pub affected: u64,
    /// Notices sent by this run (in a dry run: that would be sent).
    pub sent_this_run: u64,
    /// Notices sent by every run so far.
    pub sent_total: u64,
    /// Notices this run found undeliverable ([`Delivery::Undeliverable`]).
    pub undeliverable_this_run: u64,
    /// Notices every run so far found undeliverable (listed by
    /// [`CampaignStore::undeliverable`]).
    pub undeliverable_total: u64,
    /// Whether every affected account has been notified.
    pub finished: bool,
    /// How long the run took.
    pub elapsed: Duration,
}

/// Runs the notification campaign of an incident over a store.
pub struct Campaign<'a, S> {
    store: &'a S,
    links: &'a BrandLinks,
    clock: &'a dyn Clock,
}

impl<S> fmt::Debug for Campaign<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Campaign")
            .field("links", self.links)
            .finish_non_exhaustive()
    }
}

impl<'a, S: CampaignStore> Campaign<'a, S> {
    /// A campaign runner with the system clock.
    pub fn new(store: &'a S, links: &'a BrandLinks) -> Self {
        Self {
            store,
            links,
            clock: &SystemClock,
        }
    }

    /// The clock (tests, drills).
    #[must_use]
    pub fn with_clock(mut self, clock: &'a dyn Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sends (or resumes sending) one notice per affected account: every lane of the
    /// campaign in turn (one lane unless [`Campaign::split`] made more).
    ///
    /// # Errors
    /// [`Error::Notify`] (progress so far is saved; run again to resume),
    /// [`Error::NoTemplateForBrand`], [`Error::Store`], [`Error::Rng`].
    pub fn run(
        &self,
        incident: &Incident,
        notifier: &dyn Notifier,
        options: CampaignOptions<'_>,
    ) -> Result<CampaignReport, Error> {
        let lanes = self.store.open_lanes(incident, 1, self.clock.now())?;
        let affected = self.store.count_affected(incident, None, None)?;
        self.run_lanes(incident, &lanes, affected, notifier, options)
    }

    /// Splits the campaign into `lanes` ranges of accounts of about equal size, for as
    /// many workers (servers, threads), each running [`Campaign::run_lane`] on its own
    /// lane: every account is in exactly one lane. The first call fixes the split; later
    /// calls (a worker restarting, a resumed run) return it as it was.
    ///
    /// # Errors
    /// [`Error::Store`].
    ///
    /// # Examples
    /// ```
    /// # use std::sync::Arc;
    /// # use shopsafe::rotation::{BrandLinks, Campaign, CampaignOptions, Notice, NotifyError, ResetUrlTemplate};
    /// # use shopsafe::kernel::Timestamp;
    /// # use shopsafe::rotation::{Incident, IncidentScope};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = shopsafe::store::sqlite::SqliteStore::open(dir.path().join("c.db"))?;
    /// # let links = BrandLinks::new().default_template(ResetUrlTemplate::new("https://shop.example/r/{token}")?);
    /// let incident = Incident::declare(&store, IncidentScope::All, Timestamp::now(), "db copied")?;
    /// let campaign = Campaign::new(&store, &links);
    /// let lanes = campaign.split(&incident, 4)?;
    /// // Each worker (here in turn) runs its own lane.
    /// for lane in 0..lanes {
    ///     let send = |_: &Notice| -> Result<(), NotifyError> { Ok(()) };
    ///     campaign.run_lane(&incident, lane, &send, CampaignOptions::new())?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn split(&self, incident: &Incident, lanes: usize) -> Result<usize, Error> {
        Ok(self
            .store
            .open_lanes(incident, lanes, self.clock.now())?
            .len())
    }

    /// Sends (or resumes sending) the notices of one lane of a split campaign.
    ///
    /// # Errors
    /// [`Error::NoSuchLane`] for a lane the split does not have, and as
    /// [`Campaign::run`].
    pub fn run_lane(
        &self,
        incident: &Incident,
        lane: usize,
        notifier: &dyn Notifier,
        options: CampaignOptions<'_>,
    ) -> Result<CampaignReport, Error> {
        let lanes = self.store.open_lanes(incident, 1, self.clock.now())?;
        let Some(state) = lanes.into_iter().nth(lane) else {
            return Err(Error::NoSuchLane { lane });
        };
        let affected = self.store.count_affected(
            incident,
            state.range_after.as_ref(),
            state.range_until.as_ref(),
        )?;
        self.run_lanes(incident, &[state], affected, notifier, options)
    }

    fn run_lanes(
        &self,
        incident: &Incident,
        lanes: &[CampaignState],
        affected: u64,
        notifier: &dyn Notifier,
        mut options: CampaignOptions<'_>,
    ) -> Result<CampaignReport, Error> {
        let started = Instant::now();
        let mut report = CampaignReport {
            campaign: lanes.first().map_or(CampaignId(0), |l| l.id),
            affected,
            sent_this_run: 0,
            sent_total: lanes.iter().map(|l| l.sent).sum(),
            undeliverable_this_run: 0,
            undeliverable_total: lanes
                .iter()
                .map(|l| self.store.count_undeliverable(l.id))
                .sum::<Result<u64, _>>()?,
            finished: lanes.iter().all(|l| l.finished_at.is_some()),
            elapsed: Duration::ZERO,
        };
        if options.dry_run || report.finished {
            // Affected accounts not yet past a cursor: still compromised and unsent.
            if options.dry_run {
                for lane in lanes.iter().filter(|l| l.finished_at.is_none()) {
                    report.sent_this_run += self.store.count_affected(
                        incident,
                        lane.sent_cursor.as_ref().or(lane.range_after.as_ref()),
                        lane.range_until.as_ref(),
                    )?;
                }
            }
            report.elapsed = started.elapsed();
            return Ok(report);
        }
        // Every lane not finished before is run to its end, unless the budget runs out.
        report.finished = true;
        for lane in lanes.iter().filter(|l| l.finished_at.is_none()) {
            if !self.run_one(incident, lane, notifier, &mut options, &mut report, started)? {
                report.finished = false;
                break;
            }
        }
        report.elapsed = started.elapsed();
        crate::events::campaign(
            report.campaign.0,
            report.sent_total,
            report.undeliverable_total,
            if report.finished {
                "complete"
            } else {
                "stopped"
            },
        );
        Ok(report)
    }

    /// Runs one lane to its end, or until the notice budget is spent (then `false`).
    fn run_one(
        &self,
        incident: &Incident,
        lane: &CampaignState,
        notifier: &dyn Notifier,
        options: &mut CampaignOptions<'_>,
        report: &mut CampaignReport,
        started: Instant,
    ) -> Result<bool, Error> {
        let mut checkpoint = Checkpoint {
            store: self.store,
            campaign: lane.id,
            cursor: lane.sent_cursor.clone(),
            sent: lane.sent,
            pending: 0,
        };
        let base = report.sent_total - lane.sent;
        let mut pacer = options
            .max_per_second
            .map(|r| (Instant::now(), Duration::from_secs_f64(1.0 / r)));
        let budget = options.max_notices.unwrap_or(u64::MAX);
        // Without an idempotency key downstream, every accepted notice is written at once.
        let checkpoint_every = if notifier.deduplicates() {
            options.checkpoint_every
        } else {
            1
        };
        loop {
            let now = self.clock.now();
            let mut tokens = Vec::with_capacity(options.batch_size);
            let ttl = options.token_ttl;
            let limit = usize::try_from(budget - report.sent_this_run)
                .unwrap_or(usize::MAX)
                .min(options.batch_size);
            if limit == 0 {
                return Ok(false);
            }
            let claimed = self.store.claim_batch(
                incident,
                checkpoint.cursor.as_ref().or(lane.range_after.as_ref()),
                lane.range_until.as_ref(),
                limit,
                &mut |account, generation| {
                    let (token, digest) = ResetToken::generate(account)?;
                    tokens.push(token);
                    Ok(TokenRecord::new(
                        digest,
                        account.clone(),
                        generation,
                        TokenPurpose::Incident,
                        now,
                        ttl,
                    ))
                },
            )?;
            if claimed.is_empty() {
                self.store.finish_campaign(lane.id, self.clock.now())?;
                return Ok(true);
            }
            let width = notifier.parallelism().max(1);
            let mut pairs = claimed.into_iter().zip(tokens).peekable();
            while pairs.peek().is_some() {
                let mut chunk = Vec::with_capacity(width);
                for (claim, token) in pairs.by_ref().take(width) {
                    let link = self.links.link(claim.brand.as_ref(), &token)?;
                    drop(token);
                    if let Some((next, step)) = pacer.as_mut() {
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                        *next = (*next).max(Instant::now()) + *step;
                    }
                    chunk.push(Notice {
                        id: NoticeId {
                            incident: incident.id,
                            account: claim.account.clone(),
                        },
                        exposure: options.exposure.as_ref().and_then(|f| f(&claim.account)),
                        brand: claim.brand,
                        account: claim.account,
                        link,
                        link_expires_at: now.plus(ttl),
                        advice: REUSE_ADVICE,
                    });
                }
                let mut outcomes = if let [one] = &chunk[..] {
                    vec![notifier.deliver(one)]
                } else {
                    notifier.deliver_all(&chunk)
                }
                .into_iter();
                for notice in chunk {
                    // A notice without an outcome was not delivered: stop before it.
                    let outcome = outcomes.next().unwrap_or_else(|| {
                        Err(NotifyError(
                            "the notifier gave no outcome for a notice".into(),
                        ))
                    });
                    // On an error (or a panic) the checkpoint's drop writes the progress
                    // so far.
                    match outcome.map_err(Error::Notify)? {
                        Delivery::Accepted => {
                            checkpoint.advance(notice.account, 1);
                            report.sent_this_run += 1;
                        }
                        Delivery::Undeliverable(why) => {
                            self.store.record_undeliverable(
                                lane.id,
                                &Undelivered::new(
                                    notice.account.clone(),
                                    why.to_string(),
                                    self.clock.now(),
                                ),
                            )?;
                            checkpoint.advance(notice.account, 0);
                            report.undeliverable_this_run += 1;
                            report.undeliverable_total += 1;
                        }
                    }
                }
                if checkpoint.pending >= checkpoint_every {
                    checkpoint.flush()?;
                }
            }
            checkpoint.flush()?;
            report.sent_total = base + checkpoint.sent;
            crate::events::campaign(
                report.campaign.0,
                report.sent_total,
                report.undeliverable_total,
                "running",
            );
            if let Some(progress) = options.progress.as_mut() {
                let secs = started.elapsed().as_secs_f64();
                let rate = if secs > 0.0 {
                    report.sent_this_run as f64 / secs
                } else {
                    0.0
                };
                let left = report.affected.saturating_sub(report.sent_total);
                let eta = (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate));
                progress(&Progress {
                    done: report.sent_total,
                    total: report.affected,
                    rate,
                    eta,
                });
            }
        }
    }
}

/// Progress not yet written. Written by `flush`, and on drop while a panic unwinds through
/// the notifier, so only a hard kill can lose it (and then at most `checkpoint_every`).
struct Checkpoint<'s, S: CampaignStore> {
    store: &'s S,
    campaign: CampaignId,
    cursor: Option<AccountId>,
    sent: u64,
    pending: u64,
}

impl<S: CampaignStore> Checkpoint<'_, S> {
    /// Moves the cursor past `account`, `sent` more notices sent (0 for one recorded as
    /// undeliverable).
    fn advance(&mut self, account: AccountId, sent: u64) {
        self.cursor = Some(account);
        self.sent += sent;
        self.pending += 1;
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if let (true, Some(cursor)) = (self.pending > 0, self.cursor.as_ref()) {
            self.store.checkpoint(self.campaign, cursor, self.sent)?;
        }
        self.pending = 0;
        Ok(())
    }
}

impl<S: CampaignStore> Drop for Checkpoint<'_, S> {
    fn drop(&mut self) {
        // Unwinding (a panicking notifier) or an early return: best effort. If this write
        // fails too, the notices since the last checkpoint are sent again on resume.
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotation::IncidentId;

    #[test]
    fn absurd_rates_and_sizes_are_clamped_not_fatal() {
        for (rate, expected) in [
            (0.0, None),
            (-1.0, None),
            (f64::NAN, None),
            (f64::INFINITY, None),
            (1e-300, Some(0.001)),
            (50.0, Some(50.0)),
        ] {
            let o = CampaignOptions::new().max_per_second(rate);
            assert_eq!(o.max_per_second, expected, "{rate}");
            if let Some(r) = o.max_per_second {
                let _ = Duration::from_secs_f64(1.0 / r); // would panic on overflow
            }
        }
        assert_eq!(CampaignOptions::new().batch_size(0).batch_size, 1);
        assert_eq!(
            CampaignOptions::new().checkpoint_every(0).checkpoint_every,
            1
        );
        assert_eq!(
            CampaignOptions::new()
                .checkpoint_every(u64::MAX)
                .checkpoint_every,
            100_000
        );
    }

    #[test]
    fn notice_ids_are_stable_text() {
        let id = NoticeId {
            incident: IncidentId(7),
            account: AccountId::new("cust-1").expect("valid"),
        };
        assert_eq!(id.to_string(), "incident-7/cust-1");
    }
}
