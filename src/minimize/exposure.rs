//! The breach exposure report: from the data map and the stores an incident reached, what
//! each customer lost, in what form, and what they did not lose.

use std::collections::{BTreeMap, BTreeSet};
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
    /// Sealed under the customer's own data key (`shopsafe::seal`), whose keys live in
    /// other stores ([`DataMap::sealed_with`]). Reported as such only while one of those
    /// stores was not reached; otherwise the report counts it as [`Form::Plain`].
    Sealed,
    /// Replaced by a token; the value lives in another store.
    Tokenized,
}

impl Form {
    /// Whether the whole value is there (as entered, or encrypted): a token, a mask or a
    /// hash is not.
    fn is_whole(self) -> bool {
        matches!(self, Self::Plain | Self::EncryptedElsewhere | Self::Sealed)
    }

    /// How the notice says it, in plain words (no nested brackets: this goes to
    /// customers). A masked card number is its last four digits (PCI DSS 3.4.1 display).
    fn phrase(self, field: &str) -> &'static str {
        match self {
            Self::Plain => "as entered",
            Self::Masked if field.contains("card") => "only the last four digits",
            Self::Masked => "only in part",
            Self::HashedArgon2id => "as an argon2id hash, not the password itself",
            Self::EncryptedElsewhere => "encrypted, with the key kept elsewhere",
            Self::Sealed => "sealed: unreadable without keys that were not in the copied database",
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
    /// For a store holding sealed values: the stores that together open them.
    sealed_keys: BTreeMap<String, Vec<String>>,
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

    /// Declares that the values `store` holds in [`Form::Sealed`] open only with keys from
    /// all of `key_stores` (the key store, and where the KEK lives: `"key_store"`,
    /// `"kek_file"` or `"hsm"`). An incident that reached every one of them, or a map that
    /// never declared where a store's keys live, reports the sealed values as
    /// [`Form::Plain`]: the report does not claim what it cannot know.
    pub fn sealed_with(mut self, store: &str, key_stores: &[&str]) -> Self {
        self.sealed_keys.insert(
            store.to_owned(),
            key_stores.iter().map(|k| (*k).to_owned()).collect(),
        );
        self
    }

    /// The fields the map holds, each once, in the order first declared.
    #[must_use]
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for h in &self.holdings {
            if !out.contains(&h.field.as_str()) {
                out.push(&h.field);
            }
        }
        out
    }

    /// Checks that `covered` names every field of the map: how an export or an erasure
    /// (`by`) proves at start that it leaves out nothing the map says is held, so that a
    /// field added to the map and not to them is an error, not a silent gap.
    ///
    /// # Errors
    /// [`Error::Uncovered`](super::Error::Uncovered) naming the first field left out.
    ///
    /// # Examples
    /// ```
    /// use shopsafe::minimize::{DataMap, Form};
    ///
    /// let map = DataMap::new()
    ///     .holds("customer_db", "email address", Form::Sealed)
    ///     .holds("customer_db", "date of birth", Form::Sealed);
    /// assert!(map.check_covered("export", &["email address", "date of birth"]).is_ok());
    /// let err = map.check_covered("export", &["email address"]).unwrap_err();
    /// assert_eq!(err.to_string(), r#"the export does not cover "date of birth", which the data map says is held"#);
    /// ```
    pub fn check_covered(&self, by: &str, covered: &[&str]) -> Result<(), super::Error> {
        match self.fields().into_iter().find(|f| !covered.contains(f)) {
            Some(field) => Err(super::Error::Uncovered {
                by: by.to_owned(),
                field: field.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// The exposure of an incident that reached `stores`.
    pub fn incident(&self, stores: &[&str]) -> ExposureReport {
        let mut exposed: BTreeMap<String, Vec<Form>> = BTreeMap::new();
        let mut elsewhere = BTreeSet::new();
        for h in &self.holdings {
            if stores.contains(&h.store.as_str()) {
                let keys_reached = self
                    .sealed_keys
                    .get(&h.store)
                    .is_none_or(|keys| keys.iter().all(|k| stores.contains(&k.as_str())));
                let form = if h.form == Form::Sealed && keys_reached {
                    Form::Plain
                } else {
                    h.form
                };
                exposed.entry(h.field.clone()).or_default().push(form);
            } else if h.form.is_whole() {
                elsewhere.insert(h.field.clone());
            }
        }
        for forms in exposed.values_mut() {
            forms.sort();
            forms.dedup();
            // As entered says it all; a token says nothing beside any other form. Other
            // forms each add something (the last four digits, and the whole number
            // encrypted), so each is told.
            if forms[0] == Form::Plain {
                forms.truncate(1);
            } else if forms.len() > 1 {
                forms.retain(|f| *f != Form::Tokenized);
            }
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
    /// The forms of each field among the stores reached, most revealing first, without
    /// the ones another form makes moot.
    exposed: BTreeMap<String, Vec<Form>>,
    /// Fields that a store not reached holds whole (as entered or encrypted).
    elsewhere: BTreeSet<String>,
    reached: Vec<String>,
}

/// One customer's exposure.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CustomerExposure {
    /// Fields the customer has that were in a reached store, with the form they were in,
    /// most revealing first.
    pub exposed: Vec<(String, Form)>,
    /// Fields the customer has that are held whole (as entered, or encrypted) only in
    /// stores not reached: the card number, when the customer database held only its
    /// token or its last four digits.
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
            let lost = self.exposed.get(*f).map_or(&[][..], Vec::as_slice);
            for form in lost {
                exposed.push(((*f).to_owned(), *form));
            }
            // Held whole only where the intruder did not reach: a token, a mask or a hash
            // of it was taken, or nothing.
            let kept_fuller = self.elsewhere.contains(*f) && !lost.iter().any(|l| l.is_whole());
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
            // One part per field, with each of its forms.
            let mut parts: Vec<(&str, Vec<&str>)> = Vec::new();
            for (f, form) in &c.exposed {
                match parts.iter_mut().find(|(g, _)| g == f) {
                    Some((_, phrases)) => phrases.push(form.phrase(f)),
                    None => parts.push((f, vec![form.phrase(f)])),
                }
            }
            let parts: Vec<String> = parts
                .iter()
                .map(|(f, phrases)| format!("your {f} ({})", phrases.join("; and ")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_four_taken_full_number_not() {
        // The 2012 shape: last four digits in the customer database, the number elsewhere.
        let map = DataMap::new()
            .holds("customer_db", "card number", Form::Masked)
            .holds("customer_db", "password", Form::HashedArgon2id)
            .holds("vault", "card number", Form::EncryptedElsewhere)
            .holds("backup", "password", Form::HashedArgon2id);
        let c = map
            .incident(&["customer_db"])
            .customer(&["card number", "password"]);
        assert_eq!(c.not_exposed, ["card number"]);
        // With the vault reached too, the whole number was in the copy (encrypted).
        let c = map
            .incident(&["customer_db", "vault"])
            .customer(&["card number"]);
        assert!(c.not_exposed.is_empty());
        assert_eq!(
            c.exposed,
            [
                ("card number".to_owned(), Form::Masked),
                ("card number".to_owned(), Form::EncryptedElsewhere)
            ]
        );
        let text = map
            .incident(&["customer_db", "vault"])
            .notice(&["card number"]);
        assert_eq!(
            text,
            "The copied data included your card number (only the last four digits; and \
             encrypted, with the key kept elsewhere)."
        );
    }

    #[test]
    fn every_form_reads_plainly_without_nested_brackets() {
        let fields = [
            "card number",
            "phone number",
            "password",
            "name",
            "email address",
        ];
        for form in [
            Form::Plain,
            Form::Masked,
            Form::HashedArgon2id,
            Form::EncryptedElsewhere,
            Form::Sealed,
            Form::Tokenized,
        ] {
            for f in fields {
                let p = form.phrase(f);
                assert!(!p.contains('(') && !p.contains(')'), "{p}");
            }
        }
        assert_eq!(
            Form::Masked.phrase("card number"),
            "only the last four digits"
        );
        assert_eq!(Form::Masked.phrase("phone number"), "only in part");
    }

    #[test]
    fn sealed_values_are_sealed_only_while_their_keys_were_out_of_reach() {
        let map = DataMap::new()
            .holds("customer_db", "email address", Form::Sealed)
            .holds("customer_db", "name", Form::Sealed)
            .sealed_with("customer_db", &["key_store", "kek_file"]);
        let fields = ["email address", "name"];
        let c = map.incident(&["customer_db"]).customer(&fields);
        assert_eq!(
            c.exposed,
            [
                ("email address".to_owned(), Form::Sealed),
                ("name".to_owned(), Form::Sealed)
            ]
        );
        assert_eq!(
            map.incident(&["customer_db"]).notice(&["name"]),
            "The copied data included your name (sealed: unreadable without keys that were \
             not in the copied database)."
        );
        // The key store alone is not enough: the KEK was elsewhere.
        let c = map
            .incident(&["customer_db", "key_store"])
            .customer(&fields);
        assert!(c.exposed.iter().all(|(_, f)| *f == Form::Sealed));
        // Both: as good as plain.
        let c = map
            .incident(&["customer_db", "key_store", "kek_file"])
            .customer(&fields);
        assert!(c.exposed.iter().all(|(_, f)| *f == Form::Plain));
        // Undeclared keys: the report cannot say they were out of reach.
        let bare = DataMap::new().holds("customer_db", "name", Form::Sealed);
        let c = bare.incident(&["customer_db"]).customer(&["name"]);
        assert_eq!(c.exposed, [("name".to_owned(), Form::Plain)]);
    }
}
