//! The retention planner: which records to purge, strip of personal data, or keep, and why.
//!
//! Sans-IO: the application streams the metadata of its records in ([`RecordMeta`]) and
//! gets a decision per record out ([`Planned`]), with a [`Summary`] of counts per category
//! and action. Nothing is deleted here.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Error;
use crate::kernel::Timestamp;
use crate::kernel::is_slug;

/// A category of data with its own retention rule (`account_profile`, `order_records`,
/// ...): 1–32 characters of `a-z 0-9 _`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Category(String);

impl Category {
    /// Validates a category name.
    ///
    /// # Errors
    /// [`Error::InvalidCategory`].
    pub fn new(name: &str) -> Result<Self, Error> {
        if is_slug(name, 32, false) {
            Ok(Self(name.to_owned()))
        } else {
            Err(Error::InvalidCategory)
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What happens to a record whose time is up.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnExpiry {
    /// Delete the record.
    Purge,
    /// Keep the record (for accounting) but clear these personal-data fields.
    StripPii {
        /// The fields to clear.
        fields: Vec<String>,
    },
}

/// The rule for one category.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct CategoryRule {
    max_age: Option<Duration>,
    dormancy: Option<Duration>,
    keep_at_least: Duration,
    expiry: OnExpiry,
}

impl CategoryRule {
    /// Purge records older than `max_age`.
    pub fn purge_after(max_age: Duration) -> Self {
        Self {
            max_age: Some(max_age),
            dormancy: None,
            keep_at_least: Duration::ZERO,
            expiry: OnExpiry::Purge,
        }
    }

    /// Strip `fields` from records older than `max_age` (order records kept for the
    /// statutory period without saying whose they were).
    pub fn strip_after(max_age: Duration, fields: &[&str]) -> Self {
        let fields = fields.iter().map(|f| (*f).to_owned()).collect();
        Self {
            max_age: Some(max_age),
            dormancy: None,
            keep_at_least: Duration::ZERO,
            expiry: OnExpiry::StripPii { fields },
        }
    }

    /// Purge records whose subject has been inactive (no login, no order) for `dormancy`.
    pub fn purge_when_dormant(dormancy: Duration) -> Self {
        Self {
            max_age: None,
            dormancy: Some(dormancy),
            keep_at_least: Duration::ZERO,
            expiry: OnExpiry::Purge,
        }
    }

    /// Also expire records whose subject has been inactive for `dormancy`.
    pub fn or_when_dormant(mut self, dormancy: Duration) -> Self {
        self.dormancy = Some(dormancy);
        self
    }

    /// A minimum the law (or the business) requires: a rule that would expire records
    /// sooner is refused when the policy is built.
    pub fn keep_at_least(mut self, minimum: Duration) -> Self {
        self.keep_at_least = minimum;
        self
    }
}

/// The rules of every category. Records of a category without a rule are kept
/// ([`KeepReason::NoRule`]) and counted, so a missing rule shows in the summary.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct RetentionPolicy {
    rules: BTreeMap<Category, CategoryRule>,
}

impl RetentionPolicy {
    /// No rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the rule of a category.
    ///
    /// # Errors
    /// [`Error::BelowStatutoryMinimum`] when the rule's age or dormancy is shorter than
    /// its own `keep_at_least`; [`Error::EmptyRule`] when it has neither;
    /// [`Error::EmptyStrip`] when it strips personal data but names no field.
    pub fn rule(mut self, category: Category, rule: CategoryRule) -> Result<Self, Error> {
        if matches!(&rule.expiry, OnExpiry::StripPii { fields } if fields.is_empty()) {
            return Err(Error::EmptyStrip);
        }
        let shortest = [rule.max_age, rule.dormancy]
            .into_iter()
            .flatten()
            .min()
            .ok_or(Error::EmptyRule)?;
        if shortest < rule.keep_at_least {
            return Err(Error::BelowStatutoryMinimum {
                category: category.0,
            });
        }
        self.rules.insert(category, rule);
        Ok(self)
    }

    /// Decides one record.
    pub fn decide(&self, record: &RecordMeta, now: Timestamp) -> Action {
        let Some(rule) = self.rules.get(&record.category) else {
            return Action::Keep {
                reason: KeepReason::NoRule,
            };
        };
        let older = |d: Duration, since: Timestamp| since.plus(d) <= now;
        let aged = rule.max_age.is_some_and(|d| older(d, record.created));
        let dormant = rule
            .dormancy
            .is_some_and(|d| older(d, record.last_activity.unwrap_or(record.created)));
        if !(aged || dormant) {
            return Action::Keep {
                reason: KeepReason::WithinRetention,
            };
        }
        // The statutory minimum counts from creation, whatever made the record expire.
        if !older(rule.keep_at_least, record.created) {
            return Action::Keep {
                reason: KeepReason::StatutoryMinimum,
            };
        }
        if record.legal_hold {
            return Action::Keep {
                reason: KeepReason::LegalHold,
            };
        }
        if record.in_flight {
            return Action::Keep {
                reason: KeepReason::InFlight,
            };
        }
        match &rule.expiry {
            OnExpiry::Purge => Action::Purge,
            OnExpiry::StripPii { fields } => Action::StripPii {
                fields: fields.clone(),
            },
        }
    }

    /// Plans a stream of records: one [`Planned`] each, in input order, and the running
    /// [`Summary`] in `summary`.
    pub fn plan<'a, I>(
        &'a self,
        records: I,
        now: Timestamp,
        summary: &'a mut Summary,
    ) -> impl Iterator<Item = Planned> + 'a
    where
        I: IntoIterator<Item = RecordMeta>,
        I::IntoIter: 'a,
    {
        records.into_iter().map(move |record| {
            let action = self.decide(&record, now);
            summary.count(&record.category, &action);
            Planned { record, action }
        })
    }
}

/// What the application knows of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordMeta {
    /// The record's key in its table.
    pub id: String,
    /// Its category.
    pub category: Category,
    /// When it was created.
    pub created: Timestamp,
    /// The subject's last activity (login, order), if known.
    pub last_activity: Option<Timestamp>,
    /// Under a legal hold: never purged or stripped while it lasts.
    pub legal_hold: bool,
    /// Part of something unfinished (an order not yet delivered or refunded).
    pub in_flight: bool,
}

impl RecordMeta {
    /// A record with no hold, nothing in flight and no activity known.
    #[must_use]
    pub fn new(id: impl Into<String>, category: Category, created: Timestamp) -> Self {
        Self {
            id: id.into(),
            category,
            created,
            last_activity: None,
            legal_hold: false,
            in_flight: false,
        }
    }

    /// The subject's last activity.
    #[must_use]
    pub fn last_activity(mut self, at: Timestamp) -> Self {
        self.last_activity = Some(at);
        self
    }

    /// Under a legal hold.
    #[must_use]
    pub fn legal_hold(mut self, hold: bool) -> Self {
        self.legal_hold = hold;
        self
    }

    /// Part of something unfinished.
    #[must_use]
    pub fn in_flight(mut self, in_flight: bool) -> Self {
        self.in_flight = in_flight;
        self
    }
}

/// The decision for a record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Action {
    /// Delete it.
    Purge,
    /// Clear these fields, keep the rest.
    StripPii {
        /// The fields.
        fields: Vec<String>,
    },
    /// Keep it.
    Keep {
        /// Why.
        reason: KeepReason,
    },
}

/// Why a record is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum KeepReason {
    /// Its time is not up.
    WithinRetention,
    /// Its time is up, but the statutory minimum is not.
    StatutoryMinimum,
    /// A legal hold.
    LegalHold,
    /// Part of something unfinished.
    InFlight,
    /// Its category has no rule.
    NoRule,
}

/// One planned decision.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Planned {
    /// The record.
    pub record: RecordMeta,
    /// What to do with it.
    pub action: Action,
}

impl Planned {
    /// A decision made elsewhere (by hand, or by another planner), to apply.
    #[must_use]
    pub fn new(record: RecordMeta, action: Action) -> Self {
        Self { record, action }
    }
}

/// Counts per category and action: the dry run's answer, and the run's record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// `(category, action)` → count; actions are `purge`, `strip_pii` and
    /// `keep:<reason>`.
    pub counts: BTreeMap<(String, String), u64>,
}

impl Summary {
    fn count(&mut self, category: &Category, action: &Action) {
        let label = match action {
            Action::Purge => "purge".to_owned(),
            Action::StripPii { .. } => "strip_pii".to_owned(),
            Action::Keep { reason } => format!("keep:{reason:?}"),
        };
        *self.counts.entry((category.0.clone(), label)).or_default() += 1;
    }

    /// The count of one category and action label.
    #[must_use]
    pub fn get(&self, category: &str, action: &str) -> u64 {
        self.counts
            .get(&(category.to_owned(), action.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    fn cat(s: &str) -> Category {
        Category::new(s).expect("valid category")
    }

    fn at_years(y: f64) -> Timestamp {
        // Test inputs are 0–40 years: far inside i64 milliseconds.
        #[allow(clippy::cast_possible_truncation)]
        let ms = (y * 365.0 * 86_400_000.0) as i64;
        Timestamp::from_millis(ms)
    }

    fn shop_policy() -> RetentionPolicy {
        RetentionPolicy::new()
            .rule(
                cat("account_profile"),
                CategoryRule::purge_when_dormant(3 * YEAR),
            )
            .and_then(|p| {
                p.rule(
                    cat("order_records"),
                    CategoryRule::strip_after(2 * YEAR, &["name", "address", "email"])
                        .keep_at_least(2 * YEAR),
                )
            })
            .and_then(|p| p.rule(cat("logs"), CategoryRule::purge_after(90 * DAY)))
            .expect("valid policy")
    }

    #[test]
    fn a_dormant_one_time_buyer_is_purged_and_the_order_is_stripped_not_deleted() {
        let policy = shop_policy();
        let now = at_years(30.0);
        let buyer = RecordMeta::new("c1", cat("account_profile"), at_years(20.0))
            .last_activity(at_years(20.1));
        assert_eq!(policy.decide(&buyer, now), Action::Purge);
        let active = RecordMeta::new("c2", cat("account_profile"), at_years(20.0))
            .last_activity(at_years(29.5));
        assert_eq!(
            policy.decide(&active, now),
            Action::Keep {
                reason: KeepReason::WithinRetention
            }
        );
        let order = RecordMeta::new("o1", cat("order_records"), at_years(20.1));
        assert_eq!(
            policy.decide(&order, now),
            Action::StripPii {
                fields: vec!["name".into(), "address".into(), "email".into()]
            },
            "the order stays for its totals; who bought it goes"
        );
        let unknown = RecordMeta::new("x", cat("marketing"), at_years(1.0));
        assert_eq!(
            policy.decide(&unknown, now),
            Action::Keep {
                reason: KeepReason::NoRule
            }
        );
    }

    #[test]
    fn policies_that_would_cut_the_statutory_minimum_are_refused() {
        let short = CategoryRule::strip_after(DAY, &["name"]).keep_at_least(6 * YEAR);
        assert!(matches!(
            RetentionPolicy::new().rule(cat("order_records"), short),
            Err(Error::BelowStatutoryMinimum { .. })
        ));
        // Dormancy cannot sneak under it either.
        let sneaky = CategoryRule::purge_after(7 * YEAR)
            .or_when_dormant(DAY)
            .keep_at_least(6 * YEAR);
        assert!(
            RetentionPolicy::new()
                .rule(cat("order_records"), sneaky)
                .is_err()
        );
        assert!(Category::new("Orders!").is_err());
    }

    #[test]
    fn the_summary_counts_every_decision() {
        let policy = shop_policy();
        let mut summary = Summary::default();
        let records = (0..100).map(|i| {
            RecordMeta::new(
                format!("l{i}"),
                cat("logs"),
                at_years(if i < 30 { 1.0 } else { 9.9 }),
            )
        });
        let planned: Vec<Planned> = policy.plan(records, at_years(10.0), &mut summary).collect();
        assert_eq!(planned.len(), 100);
        assert_eq!(summary.get("logs", "purge"), 30);
        assert_eq!(summary.get("logs", "keep:WithinRetention"), 70);
    }

    proptest! {
        #[test]
        fn a_legal_hold_beats_every_purge(created in 0.0f64..30.0, activity in 0.0f64..30.0, now in 0.0f64..40.0, in_flight in any::<bool>()) {
            let policy = shop_policy();
            for category in ["account_profile", "order_records", "logs"] {
                let r = RecordMeta::new("r", cat(category), at_years(created))
                    .last_activity(at_years(activity))
                    .legal_hold(true)
                    .in_flight(in_flight);
                let action = policy.decide(&r, at_years(now));
                prop_assert!(matches!(action, Action::Keep { .. }), "{:?}", action);
            }
        }

        #[test]
        fn nothing_expires_before_its_statutory_minimum(created in 0.0f64..30.0, now in 0.0f64..40.0) {
            let policy = shop_policy();
            let r = RecordMeta::new("o", cat("order_records"), at_years(created));
            if at_years(created).plus(2 * YEAR) > at_years(now) {
                let kept = matches!(policy.decide(&r, at_years(now)), Action::Keep { .. });
                prop_assert!(kept);
            }
        }
    }
}
