//! Reset tokens and reset links.
//!
//! A token is the account it belongs to and a secret of 32 random bytes (256 bits),
//! written `<account id in base64url>.<secret: 43 characters of base64url>`, so it travels
//! in a URL untouched (Django's reset links carry the user id the same way). Only the
//! secret's SHA-256 digest is stored, beside the account: a copied token table opens no
//! account. Keying the digests by account keeps a breach-day campaign's millions of
//! inserts in account order, appends rather than random writes into a digest index (on
//! SQLite, 1M random 32-byte keys took 6× as long to insert as 1M keys in order). Links
//! are built from a configured per-brand template, never from a request's `Host` header.

use core::fmt;
use std::collections::HashMap;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};
use url::Url;

use super::Error;
use crate::kernel::{AccountId, BrandId};
use crate::secret::{SecretString, fill_random};

const TOKEN_BYTES: usize = 32;
/// Length of a token's secret part: 32 bytes in unpadded base64url.
pub const SECRET_CHARS: usize = 43;
/// The longest account part: an [`AccountId`]'s 128 bytes in unpadded base64url.
const MAX_ACCOUNT_CHARS: usize = 171;
const PLACEHOLDER: &str = "{token}";

/// A reset token as sent to the customer: whose it is, and a 256-bit secret. The secret
/// is wiped on drop; `Debug` prints neither part.
///
/// # Examples
/// ```
/// use shopsafe::rotation::ResetToken;
///
/// // "YzQy" is base64url for the account id "c42".
/// let t = ResetToken::parse("YzQy.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")?;
/// assert_eq!(t.account().as_str(), "c42");
/// assert_eq!(format!("{t:?}"), "ResetToken([REDACTED])");
/// assert!(ResetToken::parse("YzQy.too-short").is_err());
/// # Ok::<(), shopsafe::rotation::Error>(())
/// ```
///
/// # Security
/// The account id travels in the link. It is not secret, but it is an identifier: use an
/// opaque id, never the email address (see [`AccountId`]).
pub struct ResetToken {
    account: AccountId,
    secret: SecretString,
}

impl ResetToken {
    /// A fresh token for `account`, and the digest to store.
    pub(crate) fn generate(
        account: &AccountId,
    ) -> Result<(Self, [u8; 32]), crate::secret::RngError> {
        let mut bytes = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
        fill_random(bytes.as_mut())?;
        let secret = SecretString::new(Base64UrlUnpadded::encode_string(bytes.as_ref()));
        let token = Self {
            account: account.clone(),
            secret,
        };
        Ok((token, Sha256::digest(bytes.as_ref()).into()))
    }

    /// Parses a token typed or pasted by the customer (surrounding white space ignored).
    ///
    /// # Errors
    /// [`Error::TokenMalformed`] unless it is a base64url [`AccountId`], a `.`, and 43
    /// characters of canonical base64url.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let (account, secret) = text.trim().split_once('.').ok_or(Error::TokenMalformed)?;
        if secret.len() != SECRET_CHARS || account.is_empty() || account.len() > MAX_ACCOUNT_CHARS {
            return Err(Error::TokenMalformed);
        }
        let mut buf = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
        let decoded =
            Base64UrlUnpadded::decode(secret, buf.as_mut()).map_err(|_| Error::TokenMalformed)?;
        if decoded.len() != TOKEN_BYTES {
            return Err(Error::TokenMalformed);
        }
        let id = Base64UrlUnpadded::decode_vec(account).map_err(|_| Error::TokenMalformed)?;
        let id = String::from_utf8(id).map_err(|_| Error::TokenMalformed)?;
        let account = AccountId::new(id).map_err(|_| Error::TokenMalformed)?;
        Ok(Self {
            account,
            secret: SecretString::new(secret.to_owned()),
        })
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

    /// Whose token this is.
    #[must_use]
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The token's text, for the link: account part, `.`, secret. Keep call sites few.
    #[must_use]
    pub fn expose_secret(&self) -> String {
        let account = Base64UrlUnpadded::encode_string(self.account.as_str().as_bytes());
        format!("{account}.{}", self.secret.expose_secret())
    }

    /// SHA-256 of the secret's bytes: what the store keeps and compares.
    pub(crate) fn digest(&self) -> [u8; 32] {
        let mut buf = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
        // Parsed or generated, so it always decodes to 32 bytes.
        let bytes = Base64UrlUnpadded::decode(self.secret.expose_secret(), buf.as_mut())
            .unwrap_or_default();
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
        let sample = template.replace(PLACEHOLDER, &format!("YzQy.{}", "A".repeat(SECRET_CHARS)));
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
        let text = zeroize::Zeroizing::new(token.expose_secret());
        ResetLink(SecretString::new(self.0.replace(PLACEHOLDER, &text)))
    }
}

/// Reset URL templates by brand, with an optional default for accounts without a brand.
///
/// # Examples
/// ```
/// use shopsafe::rotation::{BrandLinks, ResetUrlTemplate};
/// use shopsafe::kernel::BrandId;
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

    fn acct(s: &str) -> AccountId {
        AccountId::new(s).expect("valid account id")
    }

    #[test]
    fn generated_tokens_parse_back_to_the_same_account_and_digest() {
        let (token, digest) = ResetToken::generate(&acct("cust-42")).expect("rng");
        let text = token.expose_secret();
        assert_eq!(
            text.len(),
            "cust-42".len().div_ceil(3) * 4 - 2 + 1 + SECRET_CHARS,
            "{text}"
        );
        let parsed = ResetToken::parse(&text).expect("own output parses");
        assert_eq!(parsed.digest(), digest);
        assert_eq!(parsed.account(), &acct("cust-42"));
        let (other, other_digest) = ResetToken::generate(&acct("cust-42")).expect("rng");
        assert_ne!(other.expose_secret(), text);
        assert_ne!(other_digest, digest);
    }

    #[test]
    fn links_round_trip_through_query_and_path_templates() {
        let (token, digest) = ResetToken::generate(&acct("ünï cøde/id?&=")).expect("rng");
        for t in [
            "https://shoes.example/reset?token={token}",
            "https://boots.example/r/{token}/go",
            "http://localhost:8080/?t={token}&x=1",
        ] {
            let link = ResetUrlTemplate::new(t)
                .expect("valid template")
                .link(&token);
            let back = ResetToken::from_link(link.expose_secret()).expect("link holds the token");
            assert_eq!(
                (back.digest(), back.account()),
                (digest, token.account()),
                "{t}"
            );
            assert!(!format!("{link:?}").contains(&token.expose_secret()));
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
    fn malformed_tokens_are_refused() {
        let secret = "A".repeat(43);
        assert!(ResetToken::parse(&format!("YzQy.{secret}")).is_ok());
        for bad in [
            secret.clone(),                            // no account part
            format!(".{secret}"),                      // empty account
            format!("YzQy.{}", "A".repeat(42)),        // short secret
            format!("YzQy.{}+", "A".repeat(42)),       // standard alphabet
            format!("YzQy.{}B", "A".repeat(42)),       // non-canonical last char
            format!("YzQy=.{secret}"),                 // padded account
            format!("_w.{secret}"),                    // account bytes not UTF-8
            format!("AA.{secret}"),                    // account "\0": a control character
            format!("{}.{secret}", "QUFB".repeat(43)), // account over 128 bytes
        ] {
            assert!(
                matches!(ResetToken::parse(&bad), Err(Error::TokenMalformed)),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_token_strings_never_panic(s in any::<String>()) {
            let _ = ResetToken::parse(&s);
        }

        #[test]
        fn token_shaped_strings_never_panic(s in "[A-Za-z0-9_=+-]{0,60}\\.[A-Za-z0-9_=+-]{40,46}") {
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
        fn every_token_round_trips(id in "[^\\p{Cc}]{1,40}", bytes in prop::array::uniform32(any::<u8>())) {
            let account = AccountId::new(id).expect("generated ids are valid");
            let text = format!(
                "{}.{}",
                Base64UrlUnpadded::encode_string(account.as_str().as_bytes()),
                Base64UrlUnpadded::encode_string(&bytes)
            );
            let t = ResetToken::parse(&text).expect("canonical token");
            let expected: [u8; 32] = Sha256::digest(bytes).into();
            prop_assert_eq!(t.digest(), expected);
            prop_assert_eq!(t.account(), &account);
            prop_assert_eq!(t.expose_secret(), text);
        }
    }
}
