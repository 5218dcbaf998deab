//! Breach notices and reset mails over SMTP (feature `smtp`), on `lettre` with rustls.
//!
//! [`SmtpNotifier`] is a campaign [`Notifier`]: it looks the account's address up in the
//! application's [`AddressBook`] (this crate holds no email address), renders the
//! brand's templates (plain text and HTML, the exposure text, the reset link, the advice
//! to change a reused password elsewhere) and hands the mail to the relay over a pool of
//! connections, with the [`Notice`] id as `Message-ID`. What comes back decides the
//! notice's fate:
//!
//! | relay's answer | outcome |
//! |---|---|
//! | 2xx | [`Delivery::Accepted`] |
//! | 4xx, a dropped connection, a timeout | retried with exponential backoff; when the attempts run out, an error that stops the campaign (it resumes at this notice) |
//! | 5xx | [`Delivery::Undeliverable`] (`Rejected { code }`): recorded, counted, never counted as sent |
//! | no address, or one that does not parse | [`Delivery::Undeliverable`] (`NoAddress`, `InvalidAddress`) |
//! | a TLS failure | an error at once (no retry: a certificate does not fix itself) |
//!
//! SMTP has no idempotency key, so the notifier says so
//! ([`Notifier::deduplicates`] is `false`) and the campaign records its progress after
//! every accepted notice: a resumed campaign repeats at most the one notice that a crash
//! cut off between the relay's 250 and that write, and that one carries the same
//! `Message-ID`.
//!
//! # Security
//! `smtps://` (implicit TLS) and `smtp://…?tls=required` (STARTTLS) verify the relay's
//! certificate against the platform's roots, or the CA file given. Plain `smtp://` is
//! accepted only for a relay on a loopback address (a local MTA); anything else is
//! refused when the notifier is built, as is `tls=opportunistic`, which a
//! man-in-the-middle downgrades. Reset links are secrets: they go into the mail body and
//! nowhere else (not into errors, not into logs).
//!
//! [`Notifier`]: crate::rotation::Notifier
//! [`Notifier::deduplicates`]: crate::rotation::Notifier::deduplicates
//! [`Notice`]: crate::rotation::Notice
//! [`Delivery::Accepted`]: crate::rotation::Delivery::Accepted
//! [`Delivery::Undeliverable`]: crate::rotation::Delivery::Undeliverable

mod builder;
mod error;
mod notifier;
mod template;

pub use builder::SmtpNotifierBuilder;
pub use error::{Error, SendError};
pub use notifier::{AddressBook, SmtpNotifier};
pub use template::{
    BrandMail, NOTICE_HTML, NOTICE_SUBJECT, NOTICE_TEXT, RESET_SUBJECT, RESET_TEXT,
};

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::builder::percent_decode;
    use super::template::{render, utc};
    use super::*;
    use crate::kernel::{AccountId, Timestamp};

    #[test]
    fn templates_fill_known_placeholders_and_escape_html() {
        let values = [
            ("link", "https://x.example/r?a=1&b=<2>"),
            ("brand", "Shoes"),
        ];
        assert_eq!(
            render("{brand}: {link} {unknown} {", &values, false),
            "Shoes: https://x.example/r?a=1&b=<2> {unknown} {"
        );
        assert_eq!(
            render("<a href=\"{link}\">{brand}</a>", &values, true),
            "<a href=\"https://x.example/r?a=1&amp;b=&lt;2&gt;\">Shoes</a>"
        );
    }

    #[test]
    fn url_credentials_decode_percent_escapes_only() {
        assert_eq!(percent_decode("a%2Bb+c%40d%zz%4"), "a+b+c@d%zz%4");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
    }

    #[test]
    fn utc_dates_are_civil() {
        assert_eq!(utc(Timestamp::from_millis(0)), "1970-01-01 00:00 UTC");
        assert_eq!(
            utc(Timestamp::from_millis(1_709_210_096_000)),
            "2024-02-29 12:34 UTC"
        );
    }

    #[test]
    fn only_tls_or_loopback_relays_are_accepted() {
        let build = |url: &str| {
            SmtpNotifier::builder(url)
                .default_brand(BrandMail::new("no-reply@shop.example", "Shop").expect("from"))
                .build(|_: &AccountId| -> Result<Option<String>, Box<dyn std::error::Error + Send + Sync>> { Ok(None) })
                .map(drop)
        };
        assert!(build("smtp://127.0.0.1:2525").is_ok());
        assert!(build("smtp://[::1]:2525").is_ok());
        assert!(build("smtp://localhost").is_ok());
        assert!(build("smtps://smtp.example.com").is_ok());
        assert!(build("smtp://smtp.example.com?tls=required").is_ok());
        assert!(matches!(
            build("smtp://smtp.example.com"),
            Err(Error::PlaintextToRemote { .. })
        ));
        assert!(matches!(
            build("smtp://10.0.0.5:25"),
            Err(Error::PlaintextToRemote { .. })
        ));
        assert!(matches!(
            build("smtp://smtp.example.com?tls=opportunistic"),
            Err(Error::OpportunisticTls)
        ));
        assert!(matches!(
            build("http://smtp.example.com"),
            Err(Error::InvalidUrl)
        ));
        assert!(matches!(build("not a url"), Err(Error::InvalidUrl)));
    }

    proptest! {
        #[test]
        fn percent_decoding_never_panics(s in "\\PC{0,40}") {
            let _ = percent_decode(&s);
        }

        #[test]
        fn rendering_never_panics_and_html_never_carries_raw_markup(
            template in "\\PC{0,80}",
            value in "\\PC{0,40}",
        ) {
            let out = render(&template, &[("link", &value)], true);
            if template == "{link}" {
                prop_assert!(!out.contains('<') && !out.contains('"'));
            }
        }
    }
}
