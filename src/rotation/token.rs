//! Reset tokens and reset links.
//!
//! A token is 32 random bytes (256 bits) written as 43 characters of unpadded base64url,
//! so it travels in a URL untouched. Only its SHA-256 digest is stored: a copied token
//! table opens no account. Links are built from a configured per-brand template, never
//! from a request's `Host` header.

use core::fmt;
use std::collections::HashMap;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};
use url::Url;

use super::Error;
use crate::secret::{SecretString, fill_random};
use crate::store::BrandId;

const TOKEN_BYTES: usize = 32;
/// Length of a token's text: 32 bytes in unpadded base64url.
pub const TOKEN_CHARS: usize = 43;
const PLACEHOLDER: &str = "{token}";

/// A reset token as sent to the customer. Wiped on drop; `Debug` does not print it.
///
/// # Examples
/// ```
/// use shopsafe::rotation::ResetToken;
///
/// let t = ResetToken::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")?;
/// assert_eq!(format!("{t:?}"), "ResetToken([REDACTED])");
/// assert!(ResetToken::parse("too-short").is_err());
/// # Ok::<(), shopsafe::rotation::Error>(())
/// ```
pub struct ResetToken(SecretString);

impl ResetToken {
    /// A fresh token and the digest to store.
    pub(crate) fn generate() -> Result<(Self, [u8; 32]), crate::secret::RngError> {
        let mut bytes = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
        fill_random(bytes.as_mut())?;
        let text = Base64UrlUnpadded::encode_string(bytes.as_ref());
        Ok((
            Self(SecretString::new(text)),
            Sha256::digest(bytes.as_ref()).into(),
        ))
    }

    /// Parses a token typed or pasted by the customer (surrounding white space ignored).
    ///
    /// # Errors
    /// [`Error::TokenMalformed`] unless it is 43 characters of canonical base64url.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.len() != TOKEN_CHARS {
            return Err(Error::TokenMalformed);
        }
        let mut buf = [0u8; TOKEN_BYTES];
        let decoded =
            Base64UrlUnpadded::decode(text, &mut buf).map_err(|_| Error::TokenMalformed)?;
        if decoded.len() != TOKEN_BYTES {
            return Err(Error::TokenMalformed);
        }
        Ok(Self(SecretString::new(text.to_owned())))
    }

    /// Finds the token in a reset link (a query value or a path segment).
    ///
    /// # Errors
    /// [`Error::TokenMalformed`] when the link is not a URL or holds no token.
    pub fn from_link(link: &str) -> Result<Self, Error> {
        let url = Url::parse(link.trim()).map_err(|_| Error::TokenMalformed)?;
        let from_query = url.query_pairs().find_map(|(_, v)| Self::parse(&v).ok());
        let from_path = || {
            url.path_segments()
                .and_then(|mut segs| segs.find_map(|s| Self::parse(s).ok()))
        };
        from_query.or_else(from_path).ok_or(Error::TokenMalformed)
    }

    /// The token's text (for the link). Keep call sites few.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// SHA-256 of the token's bytes: what the store keeps and looks up.
    pub(crate) fn digest(&self) -> [u8; 32] {
        let mut buf = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
        // Parsed or generated, so it always decodes to 32 bytes.
        let bytes =
            Base64UrlUnpadded::decode(self.expose_secret(), buf.as_mut()).unwrap_or_default();
        Sha256::digest(bytes).into()
    }
}

impl fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetToken([REDACTED])")
    }
}

/// A reset link holding a token: secret until it is in the customer's inbox.
pub struct ResetLink(SecretString);

impl ResetLink {
    /// The link's text, for the email body.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ResetLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetLink([REDACTED])")
    }
}

/// A brand's reset URL with a `{token}` placeholder, e.g.
/// `https://shoes.example/account/reset?token={token}`.
///
/// # Examples
/// ```
/// use shopsafe::rotation::ResetUrlTemplate;
///
/// assert!(ResetUrlTemplate::new("https://shoes.example/reset?token={token}").is_ok());
/// assert!(ResetUrlTemplate::new("http://shoes.example/reset?token={token}").is_err()); // not https
/// assert!(ResetUrlTemplate::new("https://shoes.example/reset").is_err()); // no placeholder
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetUrlTemplate(String);

impl ResetUrlTemplate {
    /// Validates a template: exactly one `{token}`, an absolute `https` URL with a host and
    /// no user name or password (plain `http` only for `localhost`, for development).
    ///
    /// # Errors
    /// [`Error::InvalidTemplate`] with the reason.
    pub fn new(template: &str) -> Result<Self, Error> {
        let invalid = |reason| Err(Error::InvalidTemplate { reason });
        if template.matches(PLACEHOLDER).count() != 1 {
            return invalid("must contain {token} exactly once");
        }
        let sample = template.replace(PLACEHOLDER, &"A".repeat(TOKEN_CHARS));
        let Ok(url) = Url::parse(&sample) else {
            return invalid("not an absolute URL");
        };
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            _ => return invalid("must be https (http only for localhost)"),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return invalid("must name a host");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return invalid("must not carry a user name or password");
        }
        if ResetToken::from_link(&sample).is_err() {
            return invalid("the token must be a query value or a whole path segment");
        }
        Ok(Self(template.to_owned()))
    }

    pub(crate) fn link(&self, token: &ResetToken) -> ResetLink {
        ResetLink(SecretString::new(
            self.0.replace(PLACEHOLDER, token.expose_secret()),
        ))
    }
}

/// Reset URL templates by brand, with an optional default for accounts without a brand.
///
/// # Examples
/// ```
/// use shopsafe::rotation::{BrandLinks, ResetUrlTemplate};
/// use shopsafe::store::BrandId;
///
/// let links = BrandLinks::new()
///     .brand(BrandId::new("shoes")?, ResetUrlTemplate::new("https://shoes.example/reset?token={token}")?)
///     .brand(BrandId::new("boots")?, ResetUrlTemplate::new("https://boots.example/r/{token}")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct BrandLinks {
    by_brand: HashMap<BrandId, ResetUrlTemplate>,
    default: Option<ResetUrlTemplate>,
}

impl BrandLinks {
    /// No templates.
    pub fn new() -> Self {
        Self::default()
    }

    /// The template for `brand`.
    pub fn brand(mut self, brand: BrandId, template: ResetUrlTemplate) -> Self {
        self.by_brand.insert(brand, template);
        self
    }

    /// The template for accounts without a brand, or of a brand without a template.
    pub fn default_template(mut self, template: ResetUrlTemplate) -> Self {
        self.default = Some(template);
        self
    }

    pub(crate) fn link(
        &self,
        brand: Option<&BrandId>,
        token: &ResetToken,
    ) -> Result<ResetLink, Error> {
        brand
            .and_then(|b| self.by_brand.get(b))
            .or(self.default.as_ref())
            .map(|t| t.link(token))
            .ok_or_else(|| Error::NoTemplateForBrand {
                brand: brand.map(|b| b.as_str().to_owned()),
            })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn generated_tokens_are_43_chars_and_parse_back_to_the_same_digest() {
        let (token, digest) = ResetToken::generate().expect("rng");
        assert_eq!(token.expose_secret().len(), TOKEN_CHARS);
        let parsed = ResetToken::parse(token.expose_secret()).expect("own output parses");
        assert_eq!(parsed.digest(), digest);
        let (other, other_digest) = ResetToken::generate().expect("rng");
        assert_ne!(other.expose_secret(), token.expose_secret());
        assert_ne!(other_digest, digest);
    }

    #[test]
    fn links_round_trip_through_query_and_path_templates() {
        let (token, digest) = ResetToken::generate().expect("rng");
        for t in [
            "https://shoes.example/reset?token={token}",
            "https://boots.example/r/{token}/go",
            "http://localhost:8080/?t={token}&x=1",
        ] {
            let link = ResetUrlTemplate::new(t)
                .expect("valid template")
                .link(&token);
            assert_eq!(
                ResetToken::from_link(link.expose_secret())
                    .expect("link holds the token")
                    .digest(),
                digest,
                "{t}"
            );
            assert!(!format!("{link:?}").contains(token.expose_secret()));
        }
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        for t in [
            "https://shoes.example/reset",
            "https://shoes.example/{token}/{token}",
            "http://shoes.example/?t={token}",
            "ftp://shoes.example/?t={token}",
            "https://user:pw@shoes.example/?t={token}",
            "/relative?t={token}",
            "https://shoes.example/x{token}y",
        ] {
            assert!(
                matches!(ResetUrlTemplate::new(t), Err(Error::InvalidTemplate { .. })),
                "{t}"
            );
        }
    }

    #[test]
    fn non_canonical_or_wrong_alphabet_tokens_are_refused() {
        assert!(ResetToken::parse(&"A".repeat(43)).is_ok());
        assert!(ResetToken::parse(&"A".repeat(42)).is_err());
        assert!(
            ResetToken::parse(&format!("{}+", "A".repeat(42))).is_err(),
            "standard alphabet"
        );
        assert!(
            ResetToken::parse(&format!("{}B", "A".repeat(42))).is_err(),
            "non-canonical last char"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_token_strings_never_panic(s in any::<String>()) {
            let _ = ResetToken::parse(&s);
        }

        #[test]
        fn arbitrary_links_never_panic(s in any::<String>()) {
            let _ = ResetToken::from_link(&s);
            let _ = ResetUrlTemplate::new(&s);
        }

        #[test]
        fn url_like_links_never_panic(s in "https?://[a-z.:@\\[\\]0-9]{0,20}/[A-Za-z0-9_?&=/%.{}-]{0,80}") {
            let _ = ResetToken::from_link(&s);
            let _ = ResetUrlTemplate::new(&s);
        }

        #[test]
        fn every_base64url_token_round_trips(bytes in prop::array::uniform32(any::<u8>())) {
            let text = Base64UrlUnpadded::encode_string(&bytes);
            let t = ResetToken::parse(&text).expect("canonical 32-byte token");
            let expected: [u8; 32] = Sha256::digest(bytes).into();
            prop_assert_eq!(t.digest(), expected);
        }
    }
}
