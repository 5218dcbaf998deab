//! Which new passwords to accept: NIST SP 800-63B §3.1.1.2 (rev. 4).
//!
//! Length, a blocklist, a strength estimate, context words and, when the application
//! gives one, a breached-password corpus; no composition rules ("one digit, one symbol")
//! and no periodic expiry, which NIST forbids because they push people to predictable
//! variations. Every rejection is a [`Rejection`] a sign-up or reset form can explain.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Error;
use super::breached::{BreachedPasswords, OnLookupFailure, PwnedDigest};
use super::input::{MAX_PASSWORD_BYTES, Password};

/// NIST SP 800-63B-4 §3.1.1.2: at least 15 characters when the password is the only factor.
pub const MIN_CHARS_SINGLE_FACTOR: usize = 15;
/// NIST SP 800-63B-4 §3.1.1.2: at least 8 characters when it is part of multi-factor login.
pub const MIN_CHARS_MULTI_FACTOR: usize = 8;
/// Context words shorter than this are ignored (a two-letter surname would forbid half
/// the dictionary).
pub(super) const MIN_CONTEXT_WORD_CHARS: usize = 4;

/// The bundled blocklist: sorted, distinct 6-byte prefixes of SHA-256 over each folded
/// entry of 8 or more characters (`data/make-blocklist.py` builds it; `data/README.md`
/// names the sources).
static BLOCKLIST: &[u8] = include_bytes!("data/common-passwords.bin");
/// Bytes per blocklist key. 475,794 keys of 48 bits: a password outside the list is
/// refused by a key collision with probability 475,794 / 2^48 ≈ 1.7 × 10^-9.
const BLOCKLIST_KEY_BYTES: usize = 6;

/// A password the strength estimate (zxcvbn) guesses in fewer tries than this is refused
/// as [`Rejection::Guessable`]. 10^6 is zxcvbn's boundary between its scores 1 and 2
/// ("very guessable" / "somewhat guessable"): what an online attacker tries first.
pub const MIN_GUESSES: u64 = 1_000_000;
/// The strength estimate reads at most this many characters (its cost grows faster than
/// the length); a password whose first 64 characters are guessable is refused.
const STRENGTH_MAX_CHARS: usize = 64;

/// Why a new password was refused. The `Display` text is written for the customer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Fewer characters (Unicode code points, after normalization) than the minimum.
    #[error("use at least {min_chars} characters (this one has {actual_chars})")]
    TooShort {
        /// The minimum.
        min_chars: usize,
        /// The length found.
        actual_chars: usize,
    },
    /// Longer than the crate's cap.
    #[error("use at most {max_bytes} bytes")]
    TooLong {
        /// The cap in bytes (after normalization).
        max_bytes: usize,
    },
    /// In the list of common and breached passwords.
    #[error("this password is too common: it appears in lists of breached passwords")]
    Blocklisted,
    /// The strength estimate guesses it in fewer than [`MIN_GUESSES`] tries (a common
    /// word with a digit, a keyboard walk, a date, a name with a year).
    #[error("this password is too easy to guess; add words that are not about you or this site")]
    Guessable,
    /// In the breached-password corpus the application configured, this many times.
    #[error("this password has appeared in a data breach {}; choose another", times_text(*times))]
    Breached {
        /// How many times the corpus has seen it.
        times: u64,
    },
    /// The breached-password corpus could not be asked, and the policy refuses in that
    /// case ([`OnLookupFailure::Refuse`]).
    #[error(
        "we could not check this password against known data breaches just now; try again in a minute"
    )]
    BreachCheckUnavailable,
    /// A unit of up to 8 characters repeated, or a run like `abcdef…`/`987654…`.
    #[error("this password is a repeated or sequential pattern")]
    Repetitive,
    /// Contains the shop's name, the email's local part or the customer's name.
    #[error("do not use {kind} in your password")]
    ContainsContextWord {
        /// Which kind of word was found (the word itself is not repeated).
        kind: ContextKind,
    },
    /// The password the credential had when it was declared compromised.
    #[error("this password was exposed; choose a new one")]
    Compromised,
    /// One of the account's recent passwords.
    #[error("choose a password you have not used recently")]
    RecentlyUsed,
}

/// What the breach check did for an accepted password ([`AcceptancePolicy::assess`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreachCheck {
    /// No corpus is configured.
    NotConfigured,
    /// The corpus was asked and does not hold the password.
    NotFound,
    /// The corpus could not answer, and the policy accepts in that case
    /// ([`OnLookupFailure::Accept`]): the password was not checked against it.
    Unavailable,
}

/// A kind of context word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextKind {
    /// The shop's, brand's or site's name.
    Brand,
    /// The part of the customer's email before the `@`.
    Email,
    /// The customer's own name.
    Name,
    /// Another word the application supplied.
    Other,
}

impl core::fmt::Display for ContextKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Brand => "the shop's name",
            Self::Email => "your email address",
            Self::Name => "your name",
            Self::Other => "words from this site or your account",
        })
    }
}

/// Words a password must not contain: the site's and the customer's.
///
/// Matching ignores case and compatibility forms (NFKC, then lowercase); a word shorter
/// than four characters is ignored.
///
/// # Examples
/// ```
/// use shopsafe::password::PasswordContext;
///
/// let ctx = PasswordContext::new()
///     .brand("Shoebox")
///     .email("jane.doe@example.com")
///     .name("Jane Doe");
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct PasswordContext {
    words: Vec<(String, ContextKind)>,
}

/// Shows how many words of each kind, never the words: they are pieces of the customer's
/// email and name.
impl core::fmt::Debug for PasswordContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let count = |kind| self.words.iter().filter(|(_, k)| *k == kind).count();
        f.debug_struct("PasswordContext")
            .field("brand_words", &count(ContextKind::Brand))
            .field("email_words", &count(ContextKind::Email))
            .field("name_words", &count(ContextKind::Name))
            .field("other_words", &count(ContextKind::Other))
            .finish()
    }
}

impl PasswordContext {
    /// No context words.
    pub fn new() -> Self {
        Self::default()
    }

    /// A brand, shop or site name.
    pub fn brand(self, name: &str) -> Self {
        self.add(name, ContextKind::Brand)
    }

    /// The customer's email: its local part, whole and split on `. _ - +`.
    pub fn email(self, email: &str) -> Self {
        let local = email.rsplit_once('@').map_or(email, |(local, _)| local);
        let mut this = self.add(local, ContextKind::Email);
        for part in local.split(['.', '_', '-', '+']) {
            this = this.add(part, ContextKind::Email);
        }
        this
    }

    /// The customer's name: each space-separated part.
    pub fn name(self, name: &str) -> Self {
        name.split_whitespace()
            .fold(self, |this, part| this.add(part, ContextKind::Name))
    }

    /// Any other word.
    pub fn word(self, word: &str) -> Self {
        self.add(word, ContextKind::Other)
    }

    fn add(mut self, word: &str, kind: ContextKind) -> Self {
        let folded = fold(word.trim());
        if folded.chars().count() >= MIN_CONTEXT_WORD_CHARS {
            self.words.push((folded.to_string(), kind));
        }
        self
    }
}

/// The acceptance rules for new passwords.
///
/// # Examples
/// ```
/// use shopsafe::password::{AcceptancePolicy, Password, PasswordContext, Rejection};
///
/// let policy = AcceptancePolicy::single_factor();
/// let ctx = PasswordContext::new().brand("Shoebox").email("jane.doe@example.com");
/// assert!(policy.check(&Password::new("walnut cobbler lantern river"), &ctx).is_ok());
/// assert!(matches!(policy.check(&Password::new("short"), &ctx), Err(Rejection::TooShort { .. })));
/// assert!(matches!(
///     policy.check(&Password::new("my shoebox password!"), &ctx),
///     Err(Rejection::ContainsContextWord { .. })
/// ));
/// let mfa = AcceptancePolicy::multi_factor();
/// assert_eq!(mfa.check(&Password::new("iloveyou"), &ctx), Err(Rejection::Blocklisted));
/// ```
#[derive(Clone)]
pub struct AcceptancePolicy {
    min_chars: usize,
    breached: Option<(Arc<dyn BreachedPasswords>, OnLookupFailure)>,
}

impl core::fmt::Debug for AcceptancePolicy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AcceptancePolicy")
            .field("min_chars", &self.min_chars)
            .field("breach_check", &self.breached.as_ref().map(|(_, on)| on))
            .finish()
    }
}

impl AcceptancePolicy {
    /// For accounts where the password is the only factor: at least 15 characters.
    #[must_use]
    pub const fn single_factor() -> Self {
        Self {
            min_chars: MIN_CHARS_SINGLE_FACTOR,
            breached: None,
        }
    }

    /// For accounts with a second factor: at least 8 characters.
    #[must_use]
    pub const fn multi_factor() -> Self {
        Self {
            min_chars: MIN_CHARS_MULTI_FACTOR,
            breached: None,
        }
    }

    /// A stricter minimum. Values below 8 are raised to 8 (NIST's floor for any password).
    #[must_use]
    pub fn with_min_chars(self, min_chars: usize) -> Self {
        Self {
            min_chars: min_chars.max(MIN_CHARS_MULTI_FACTOR),
            ..self
        }
    }

    /// Also refuses passwords found in a breached-password corpus
    /// ([`crate::pwned::PwnedIndex`], or `crate::pwned::RangeClient` with the `pwned-api`
    /// feature), and says what to do when the corpus cannot be asked.
    ///
    /// The corpus is asked last, only for a password every other rule accepts, with the
    /// SHA-1 of the password as typed.
    ///
    /// # Security
    /// [`check`](Self::check) then does I/O whose time depends on the password: call it at
    /// sign-up and reset, never on the login path (the crate's
    /// [`Authenticator`](crate::rotation::Authenticator) does so). In an async service run
    /// it off the runtime, as `shopsafe::aio` does.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use shopsafe::password::{
    ///     AcceptancePolicy, BreachLookupError, BreachedPasswords, OnLookupFailure, Password,
    ///     PasswordContext, PwnedDigest, Rejection,
    /// };
    ///
    /// struct Down;
    /// impl BreachedPasswords for Down {
    ///     fn times_seen(&self, _: &PwnedDigest) -> Result<u64, BreachLookupError> {
    ///         Err(BreachLookupError::Service("503".into()))
    ///     }
    /// }
    /// let strict = AcceptancePolicy::single_factor()
    ///     .with_breached_passwords(Arc::new(Down), OnLookupFailure::Refuse);
    /// let pw = Password::new("walnut cobbler lantern river");
    /// assert_eq!(strict.check(&pw, &PasswordContext::new()), Err(Rejection::BreachCheckUnavailable));
    /// let lenient = AcceptancePolicy::single_factor()
    ///     .with_breached_passwords(Arc::new(Down), OnLookupFailure::Accept);
    /// assert!(lenient.check(&pw, &PasswordContext::new()).is_ok());
    /// ```
    #[must_use]
    pub fn with_breached_passwords(
        self,
        corpus: Arc<dyn BreachedPasswords>,
        on_failure: OnLookupFailure,
    ) -> Self {
        Self {
            breached: Some((corpus, on_failure)),
            ..self
        }
    }

    /// The minimum length in characters.
    #[must_use]
    pub const fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// Checks a candidate new password. Cost: one NFKC pass, one SHA-256 and a binary
    /// search of the blocklist, a substring search per context word, the zxcvbn estimate
    /// (tens of microseconds; BENCHMARKS.md) and, when configured, one breach lookup.
    ///
    /// # Errors
    /// The first [`Rejection`] found, in this order: too long, too short, blocklisted,
    /// repetitive, context word, guessable, breached (or breach check unavailable).
    ///
    /// # Security
    /// The zxcvbn estimate copies pieces of the password into its own buffers, which are
    /// freed but not zeroized; this runs at sign-up and reset only, never at login.
    pub fn check(&self, password: &Password, context: &PasswordContext) -> Result<(), Rejection> {
        self.assess(password, context).map(|_| ())
    }

    /// As [`check`](Self::check), and on acceptance says what the breach check did: an
    /// application that accepts when the corpus cannot answer
    /// ([`OnLookupFailure::Accept`]) learns here that it did so, to count or log it.
    ///
    /// # Errors
    /// As [`check`](Self::check).
    ///
    /// # Examples
    /// ```
    /// use shopsafe::password::{AcceptancePolicy, BreachCheck, Password, PasswordContext};
    ///
    /// let policy = AcceptancePolicy::single_factor();
    /// let pw = Password::new("walnut cobbler lantern river");
    /// assert_eq!(policy.assess(&pw, &PasswordContext::new()), Ok(BreachCheck::NotConfigured));
    /// ```
    pub fn assess(
        &self,
        password: &Password,
        context: &PasswordContext,
    ) -> Result<BreachCheck, Rejection> {
        let normalized = match password.normalized() {
            Ok(n) => n,
            Err(Error::PasswordTooLong { max_bytes }) => {
                return Err(Rejection::TooLong { max_bytes });
            }
            Err(_) => {
                return Err(Rejection::TooLong {
                    max_bytes: MAX_PASSWORD_BYTES,
                });
            }
        };
        let chars = normalized.chars().count();
        if chars < self.min_chars {
            return Err(Rejection::TooShort {
                min_chars: self.min_chars,
                actual_chars: chars,
            });
        }
        let folded = Zeroizing::new(normalized.to_lowercase());
        if is_blocklisted(&folded) {
            return Err(Rejection::Blocklisted);
        }
        if is_repetitive(&folded) {
            return Err(Rejection::Repetitive);
        }
        if let Some((_, kind)) = context
            .words
            .iter()
            .find(|(w, _)| folded.contains(w.as_str()))
        {
            return Err(Rejection::ContainsContextWord { kind: *kind });
        }
        if guesses(&normalized, context) < MIN_GUESSES {
            return Err(Rejection::Guessable);
        }
        let Some((corpus, on_failure)) = &self.breached else {
            return Ok(BreachCheck::NotConfigured);
        };
        match corpus.times_seen(&PwnedDigest::of(password.expose_secret().as_bytes())) {
            Ok(0) => Ok(BreachCheck::NotFound),
            Ok(times) => Err(Rejection::Breached { times }),
            Err(_) if *on_failure == OnLookupFailure::Accept => Ok(BreachCheck::Unavailable),
            Err(_) => Err(Rejection::BreachCheckUnavailable),
        }
    }
}

/// zxcvbn's guess count for the first [`STRENGTH_MAX_CHARS`] characters, with the
/// context words as its "user inputs".
fn guesses(normalized: &str, context: &PasswordContext) -> u64 {
    let end = normalized
        .char_indices()
        .nth(STRENGTH_MAX_CHARS)
        .map_or(normalized.len(), |(i, _)| i);
    let inputs: Vec<&str> = context.words.iter().map(|(w, _)| w.as_str()).collect();
    zxcvbn::zxcvbn(&normalized[..end], &inputs).guesses()
}

fn times_text(times: u64) -> String {
    if times == 1 {
        "once".to_owned()
    } else {
        format!("{times} times")
    }
}

fn is_blocklisted(folded: &str) -> bool {
    let digest = Sha256::digest(folded.as_bytes());
    let key = &digest[..BLOCKLIST_KEY_BYTES];
    let (keys, _) = BLOCKLIST.as_chunks::<BLOCKLIST_KEY_BYTES>();
    keys.binary_search_by(|k| k.as_slice().cmp(key)).is_ok()
}

/// The number of entries in the bundled blocklist.
#[must_use]
pub fn blocklist_len() -> usize {
    BLOCKLIST.len() / BLOCKLIST_KEY_BYTES
}

fn fold(s: &str) -> Zeroizing<String> {
    use unicode_normalization::UnicodeNormalization;
    Zeroizing::new(s.nfkc().collect::<String>().to_lowercase())
}

/// A unit of at most 8 characters repeated over the whole password, at least twice
/// ("aaaa…", "abab…", "1234 1234 …" with the space), or a run where each character is the previous plus or
/// minus one ("abcdefghijklmno", "987654321…").
fn is_repetitive(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let periodic = (1..=8).any(|period| {
        chars.len() >= 2 * period && chars.iter().skip(period).zip(&chars).all(|(a, b)| a == b)
    });
    let sequential = |step: i64| {
        chars.len() >= 3
            && chars
                .windows(2)
                .all(|w| i64::from(u32::from(w[1])) - i64::from(u32::from(w[0])) == step)
    };
    periodic || sequential(1) || sequential(-1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn context_debug_prints_no_email_or_name_word() {
        let ctx = PasswordContext::new()
            .brand("Shoebox")
            .email("jane.doe+shoes@example.com")
            .name("Janette Quimby");
        let shown = format!("{ctx:?} {ctx:#?}").to_lowercase();
        for word in ["shoebox", "jane", "doe", "shoes", "janette", "quimby"] {
            assert!(!shown.contains(word), "{word} in {shown}");
        }
        assert!(shown.contains("name_words: 2"), "{shown}");
    }

    fn check(policy: &AcceptancePolicy, pw: &str) -> Result<(), Rejection> {
        policy.check(&Password::new(pw), &PasswordContext::new())
    }

    #[test]
    fn bundled_blocklist_has_at_least_ten_thousand_entries() {
        assert!(blocklist_len() >= 10_000, "{}", blocklist_len());
    }

    #[test]
    fn length_counts_code_points_after_normalization() {
        let single = AcceptancePolicy::single_factor();
        assert!(matches!(
            check(&single, "fourteen chars"),
            Err(Rejection::TooShort {
                min_chars: 15,
                actual_chars: 14
            })
        ));
        assert!(check(&single, "fifteen chars!!").is_ok());
        // 15 four-byte characters: 15 code points, 60 bytes.
        assert!(check(&single, "𝄞🎹🎻🎸🥁🎷🎺🪕🪗🎤🎧🎼🎵🎶🔔").is_ok());
        // Decomposed "é" is two code points before NFKC, one after.
        assert!(check(&single, "cafe\u{301}cafe\u{301}cafe\u{301}xy").is_err());
    }

    #[test]
    fn at_least_64_characters_are_accepted_and_huge_input_is_refused() {
        let policy = AcceptancePolicy::single_factor();
        assert!(check(&policy, &"river stone lantern ".repeat(5)).is_ok());
        assert!(matches!(
            check(&policy, &"river stone lantern ".repeat(60)),
            Err(Rejection::TooLong { max_bytes: 1024 })
        ));
    }

    #[test]
    fn multi_factor_allows_eight_but_not_common_passwords() {
        let mfa = AcceptancePolicy::multi_factor();
        // Eight random characters pass; a leet word with a suffix no longer does (zxcvbn).
        assert!(check(&mfa, "q7#vLp2x").is_ok());
        assert_eq!(check(&mfa, "w4lnut-k"), Err(Rejection::Guessable));
        for common in [
            "password",
            "PASSWORD1",
            "iloveyou",
            "qwertyuiop",
            "1q2w3e4r5t6y7u8i",
        ] {
            assert_eq!(check(&mfa, common), Err(Rejection::Blocklisted), "{common}");
        }
        assert_eq!(
            AcceptancePolicy::multi_factor()
                .with_min_chars(3)
                .min_chars(),
            8
        );
    }

    #[test]
    fn no_composition_rules() {
        let policy = AcceptancePolicy::single_factor();
        for ok in [
            "all lower case words",
            "ALLUPPERCASEWORDS",
            "🙂🙃😉😊😇🥰😍🤩😘😗😚😙🥲😋😛",
        ] {
            assert!(check(&policy, ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn repetitive_and_sequential_patterns_are_refused() {
        let policy = AcceptancePolicy::single_factor();
        // Common ones are in the bundled list, which is checked first.
        for bad in ["aaaaaaaaaaaaaaaa", "abababababababab", "abcdefghijklmnop"] {
            assert!(
                matches!(
                    check(&policy, bad),
                    Err(Rejection::Repetitive | Rejection::Blocklisted)
                ),
                "{bad}"
            );
        }
        for bad in [
            "xqjwxqjwxqjwxqjwxqjw",
            "1234 1234 1234 1234",
            "🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂",
        ] {
            assert_eq!(check(&policy, bad), Err(Rejection::Repetitive), "{bad}");
        }
        assert_eq!(
            check(&AcceptancePolicy::multi_factor(), "zyxwvutsrqpo"),
            Err(Rejection::Repetitive)
        );
    }

    #[test]
    fn context_words_are_refused_case_insensitively() {
        let policy = AcceptancePolicy::single_factor();
        let ctx = PasswordContext::new()
            .brand("Shoebox")
            .email("jane.doe+shop@example.com")
            .name("Jane Q Doeling");
        let cases = [
            ("my SHOEBOX is the best", ContextKind::Brand),
            ("Ｓｈｏｅｂｏｘ forever and ever", ContextKind::Brand),
            ("hello jane.doe+shop friend", ContextKind::Email),
            ("doeling family holiday 1999", ContextKind::Name),
        ];
        for (pw, kind) in cases {
            assert_eq!(
                policy.check(&Password::new(pw), &ctx),
                Err(Rejection::ContainsContextWord { kind }),
                "{pw}"
            );
        }
        // "Doe" and "Q" are shorter than four characters: ignored.
        assert!(
            policy
                .check(&Password::new("a doe and a q in the woods"), &ctx)
                .is_ok()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_unicode_never_panics(s in any::<String>(), word in any::<String>()) {
            let ctx = PasswordContext::new().brand(&word).email(&word).name(&word);
            let _ = AcceptancePolicy::single_factor().check(&Password::new(s), &ctx);
        }
    }
}
