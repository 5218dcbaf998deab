//! The breach exposure report: from the data map and the stores an incident reached, what
//! each customer lost, in what form, and what they did not lose.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How a field is held in a store, from most to least revealing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Form {
    /// As entered.
    Plain,
    /// Partly (last four digits, initials, city only).
    Masked,
    /// Hashed with argon2id (passwords).
    HashedArgon2id,
    /// Encrypted with a key held elsewhere.
    EncryptedElsewhere,
    /// Replaced by a token; the value lives in another store.
    Tokenized,
}

impl Form {
    fn phrase(self) -> &'static str {
        match self {
            Self::Plain => "as entered",
            Self::Masked => "in part only (masked)",
            Self::HashedArgon2id => "as an argon2id hash, not the password itself",
            Self::EncryptedElsewhere => "encrypted, with the key kept elsewhere",
            Self::Tokenized => "as a token that is worthless without our separate vault",
        }
    }
}

/// One row of the data map: `store` holds `field` in `form`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    /// The store (a database, a log archive, a backup).
    pub store: String,
    /// The field, named as the notice names it (`email address`, `card number`).
    pub field: String,
    /// In what form.
    pub form: Form,
}

/// Where the application keeps each field of a customer.
///
/// # Examples
/// ```
/// use shopsafe::minimize::{DataMap, Form};
///
/// let map = DataMap::new()
///     .holds("customer_db", "email address", Form::Plain)
///     .holds("customer_db", "password", Form::HashedArgon2id)
///     .holds("customer_db", "card number", Form::Tokenized)
///     .holds("vault", "card number", Form::EncryptedElsewhere);
/// let report = map.incident(&["customer_db"]);
/// let text = report.notice(&["email address", "password", "card number"]);
/// assert!(text.contains("your password (as an argon2id hash, not the password itself)"));
/// assert!(text.contains("Not included: your full card number, which is kept in a separate system"));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct DataMap {
    holdings: Vec<Holding>,
}

impl DataMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `store` holds `field` in `form`.
    pub fn holds(mut self, store: &str, field: &str, form: Form) -> Self {
        self.holdings.push(Holding {
            store: store.to_owned(),
            field: field.to_owned(),
            form,
        });
        self
    }

    /// The exposure of an incident that reached `stores`.
    pub fn incident(&self, stores: &[&str]) -> ExposureReport {
        let mut exposed: BTreeMap<String, Form> = BTreeMap::new();
        let mut elsewhere: BTreeMap<String, Form> = BTreeMap::new();
        for h in &self.holdings {
            let side = if stores.contains(&h.store.as_str()) {
                &mut exposed
            } else {
                &mut elsewhere
            };
            // Per field, the most revealing form counts.
            let form = side.entry(h.field.clone()).or_insert(h.form);
            *form = (*form).min(h.form);
        }
        let reached = stores.iter().map(|s| (*s).to_owned()).collect();
        ExposureReport {
            exposed,
            elsewhere,
            reached,
        }
    }
}

/// What an incident exposed, field by field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExposureReport {
    /// The most revealing form of each field among the stores reached.
    exposed: BTreeMap<String, Form>,
    /// The most revealing form of each field among the stores not reached.
    elsewhere: BTreeMap<String, Form>,
    reached: Vec<String>,
}

/// One customer's exposure.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CustomerExposure {
    /// Fields the customer has that were in a reached store, with the form they were in,
    /// most revealing first.
    pub exposed: Vec<(String, Form)>,
    /// Fields the customer has whose fuller form is held only in stores not reached (the
    /// card number, when the customer database held only its token).
    pub not_exposed: Vec<String>,
}

impl ExposureReport {
    /// The stores reached.
    #[must_use]
    pub fn reached(&self) -> &[String] {
        &self.reached
    }

    /// The exposure of a customer who has `fields` (a customer without a phone number
    /// did not lose one). Fields the map does not know are left out of both lists.
    #[must_use]
    pub fn customer(&self, fields: &[&str]) -> CustomerExposure {
        let mut exposed = Vec::new();
        let mut not_exposed = Vec::new();
        for f in fields {
            let lost = self.exposed.get(*f).copied();
            if let Some(form) = lost {
                exposed.push(((*f).to_owned(), form));
            }
            let kept_fuller = self
                .elsewhere
                .get(*f)
                .is_some_and(|kept| lost.is_none_or(|lost| *kept < lost));
            if kept_fuller {
                not_exposed.push((*f).to_owned());
            }
        }
        exposed.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        exposed.dedup();
        not_exposed.sort();
        not_exposed.dedup();
        CustomerExposure {
            exposed,
            not_exposed,
        }
    }

    /// The paragraph for a customer's notice: what was taken, in what form, and what was
    /// not, claiming no more and no less than the data map says.
    #[must_use]
    pub fn notice(&self, fields: &[&str]) -> String {
        let c = self.customer(fields);
        let mut text = String::new();
        if c.exposed.is_empty() {
            return "None of your information was in the data that was copied.".to_owned();
        } else {
            let parts: Vec<String> = c
                .exposed
                .iter()
                .map(|(f, form)| format!("your {f} ({})", form.phrase()))
                .collect();
            let _ = write!(text, "The copied data included {}.", join(&parts));
        }
        if !c.not_exposed.is_empty() {
            let parts: Vec<String> = c
                .not_exposed
                .iter()
                .map(|f| {
                    if self.exposed.contains_key(f) {
                        format!("your full {f}")
                    } else {
                        format!("your {f}")
                    }
                })
                .collect();
            let verb = if parts.len() == 1 { "is" } else { "are" };
            let _ = write!(
                text,
                " Not included: {}, which {verb} kept in a separate system that was not reached.",
                join(&parts)
            );
        }
        text
    }

    /// Counts for the public statement: customers per exposed field and form.
    pub fn aggregate<'a>(
        &self,
        customers: impl IntoIterator<Item = &'a [&'a str]>,
    ) -> BTreeMap<(String, Form), u64> {
        let mut counts = BTreeMap::new();
        for fields in customers {
            for (field, form) in self.customer(fields).exposed {
                *counts.entry((field, form)).or_insert(0) += 1;
            }
        }
        counts
    }
}

fn join(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}
