//! Bearer tokens handed to a client: the session token and the remember-device token.
//!
//! Each is a prefix and 32 random bytes (256 bits) in unpadded base64url: `sess_…` or
//! `rdev_…`, 48 characters. Only the SHA-256 digest of the 32 bytes is stored, so a
//! copied session table opens no session. A token has one string: the base64url must be
//! canonical (the encoding of its own bytes), so no second spelling of a token reaches
//! the store as the same session.

use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Error;
use crate::secret::{RngError, SecretString, fill_random};

const BYTES: usize = 32;
const SECRET_CHARS: usize = 43;

/// The shared shape: a prefix and a canonical base64url secret.
struct Bearer(SecretString);

impl Bearer {
    fn generate(prefix: &str) -> Result<(Self, [u8; 32]), RngError> {
        let mut bytes = Zeroizing::new([0u8; BYTES]);
        fill_random(bytes.as_mut())?;
        let mut text = String::with_capacity(prefix.len() + SECRET_CHARS);
        text.push_str(prefix);
        text.push_str(&Base64UrlUnpadded::encode_string(bytes.as_ref()));
        Ok((
            Self(SecretString::new(text)),
            Sha256::digest(bytes.as_ref()).into(),
        ))
    }

    fn parse(prefix: &str, text: &str) -> Result<(Self, [u8; 32]), Error> {
        let secret = text.strip_prefix(prefix).ok_or(Error::SessionMalformed)?;
        if secret.len() != SECRET_CHARS {
            return Err(Error::SessionMalformed);
        }
        let mut bytes = Zeroizing::new([0u8; BYTES]);
        let decoded = Base64UrlUnpadded::decode(secret, bytes.as_mut())
            .map_err(|_| Error::SessionMalformed)?;
        if decoded.len() != BYTES {
            return Err(Error::SessionMalformed);
        }
        // One string per token: the spelling must be the encoding of its bytes.
        let mut again = Zeroizing::new([0u8; SECRET_CHARS]);
        let canonical = Base64UrlUnpadded::encode(bytes.as_ref(), again.as_mut())
            .map_err(|_| Error::SessionMalformed)?;
        if canonical != secret {
            return Err(Error::SessionMalformed);
        }
        Ok((
            Self(SecretString::new(text.to_owned())),
            Sha256::digest(bytes.as_ref()).into(),
        ))
    }
}

macro_rules! bearer_token {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        pub struct $name {
            text: Bearer,
            digest: [u8; 32],
        }

        impl $name {
            /// The prefix every token of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            pub(crate) fn generate() -> Result<Self, RngError> {
                let (text, digest) = Bearer::generate(Self::PREFIX)?;
                Ok(Self { text, digest })
            }

            /// Parses a token as the client sent it (no white space, no other case).
            ///
            /// # Errors
            /// [`Error::SessionMalformed`] unless it is the prefix and 43 characters of
            /// canonical base64url.
            pub fn parse(text: &str) -> Result<Self, Error> {
                let (text, digest) = Bearer::parse(Self::PREFIX, text)?;
                Ok(Self { text, digest })
            }

            /// The token's text, for the client (a header, a cookie). Keep call sites few.
            #[must_use]
            pub fn expose_secret(&self) -> &str {
                self.text.0.expose_secret()
            }

            /// A second copy, for a call that moves it to another thread (the async
            /// layer); not `Clone`, so that copies stay few and inside the crate.
            #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
            pub(crate) fn duplicate(&self) -> Self {
                Self {
                    text: Bearer(SecretString::new(self.expose_secret().to_owned())),
                    digest: self.digest,
                }
            }

            /// SHA-256 of the secret's bytes: what the store keeps and looks up.
            pub(crate) fn digest(&self) -> &[u8; 32] {
                &self.digest
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }
    };
}

bearer_token!(
    /// A session token: what a client presents on every request. Wiped on drop; `Debug`
    /// prints a mask; neither `Clone` nor `Serialize`.
    ///
    /// # Examples
    /// ```
    /// use shopsafe::rotation::SessionToken;
    ///
    /// let t = SessionToken::parse("sess_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")?;
    /// assert_eq!(format!("{t:?}"), "SessionToken([REDACTED])");
    /// // One string per token: a non-canonical last character is another string.
    /// assert!(SessionToken::parse("sess_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB").is_err());
    /// assert!(SessionToken::parse("SESS_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_err());
    /// # Ok::<(), shopsafe::rotation::Error>(())
    /// ```
    SessionToken,
    "sess_"
);

bearer_token!(
    /// A remember-device token: long-lived, used once (each use hands out the next one of
    /// its family), and a second use of an old one ends the family. Wiped on drop;
    /// `Debug` prints a mask.
    DeviceToken,
    "rdev_"
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn generated_tokens_parse_back_to_their_digest() {
        let t = SessionToken::generate().expect("rng");
        let back = SessionToken::parse(t.expose_secret()).expect("parses");
        assert_eq!(back.digest(), t.digest());
        assert_eq!(t.expose_secret().len(), 48);
        assert!(
            DeviceToken::parse(t.expose_secret()).is_err(),
            "kinds do not mix"
        );
    }

    #[test]
    fn debug_masks() {
        let t = DeviceToken::generate().expect("rng");
        assert_eq!(format!("{t:?}"), "DeviceToken([REDACTED])");
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_canonical(text in "\\PC{0,80}") {
            if let Ok(t) = SessionToken::parse(&text) {
                prop_assert_eq!(t.expose_secret(), text.as_str());
            }
        }

        #[test]
        fn one_string_per_token(bytes in proptest::array::uniform32(any::<u8>()), at in 5usize..48, c in any::<char>()) {
            let text = format!("sess_{}", Base64UrlUnpadded::encode_string(&bytes));
            let t = SessionToken::parse(&text).expect("canonical");
            let digest = *t.digest();
            let mut other: Vec<char> = text.chars().collect();
            other[at] = c;
            let other: String = other.into_iter().collect();
            if other != text && let Ok(o) = SessionToken::parse(&other) {
                prop_assert_ne!(o.digest(), &digest, "two strings, one session");
            }
        }
    }
}
