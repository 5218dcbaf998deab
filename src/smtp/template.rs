//! The mails: the default templates, a brand's sender and templates ([`BrandMail`]), and
//! their rendering.

use lettre::message::Mailbox;

use super::error::Error;
use crate::kernel::Timestamp;

/// The breach notice's subject unless a brand says otherwise.
pub const NOTICE_SUBJECT: &str = "Important: reset your {brand} password";

/// The breach notice's plain text unless a brand says otherwise.
pub const NOTICE_TEXT: &str = "We are writing about a security incident at {brand}.\n\n{exposure}\n\nYour password has been expired. Choose a new one here (the link works once, until {expires}):\n{link}\n\n{advice}\n";

/// The breach notice's HTML unless a brand says otherwise (values are HTML-escaped).
pub const NOTICE_HTML: &str = "<p>We are writing about a security incident at {brand}.</p><p>{exposure}</p><p>Your password has been expired. <a href=\"{link}\">Choose a new one</a> (the link works once, until {expires}).</p><p>{advice}</p>";

/// The reset mail's subject unless a brand says otherwise.
pub const RESET_SUBJECT: &str = "Reset your {brand} password";

/// The reset mail's plain text unless a brand says otherwise.
pub const RESET_TEXT: &str = "Someone asked to reset the password of your {brand} account. If it was you, choose a new one here (the link works once, until {expires}):\n{link}\n\nIf it was not you, ignore this mail.\n";

/// One brand's sender and templates. Placeholders: `{brand}`, `{link}`, `{expires}`
/// (UTC), `{exposure}` (the exposure report's text, when the campaign has one) and
/// `{advice}` ([`REUSE_ADVICE`](crate::rotation::REUSE_ADVICE)); in HTML every value is
/// escaped.
///
/// # Examples
/// ```
/// use shopsafe::smtp::BrandMail;
///
/// let mail = BrandMail::new("Shoes <no-reply@shoes.example>", "Shoes")?
///     .notice_subject("Action needed: your Shoes password");
/// assert!(BrandMail::new("not an address", "Shoes").is_err());
/// # Ok::<(), shopsafe::smtp::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BrandMail {
    pub(super) from: Mailbox,
    pub(super) name: String,
    pub(super) notice_subject: String,
    pub(super) notice_text: String,
    pub(super) notice_html: Option<String>,
    pub(super) reset_subject: String,
    pub(super) reset_text: String,
}

impl BrandMail {
    /// A brand writing as `from` (`Name <address>` or an address), called `name` in the
    /// text, with the default templates.
    ///
    /// # Errors
    /// [`Error::InvalidSender`].
    pub fn new(from: &str, name: &str) -> Result<Self, Error> {
        Ok(Self {
            from: from.parse().map_err(|_| Error::InvalidSender)?,
            name: name.to_owned(),
            notice_subject: NOTICE_SUBJECT.to_owned(),
            notice_text: NOTICE_TEXT.to_owned(),
            notice_html: Some(NOTICE_HTML.to_owned()),
            reset_subject: RESET_SUBJECT.to_owned(),
            reset_text: RESET_TEXT.to_owned(),
        })
    }

    /// The breach notice's subject.
    #[must_use]
    pub fn notice_subject(mut self, template: &str) -> Self {
        template.clone_into(&mut self.notice_subject);
        self
    }

    /// The breach notice's plain text.
    #[must_use]
    pub fn notice_text(mut self, template: &str) -> Self {
        template.clone_into(&mut self.notice_text);
        self
    }

    /// The breach notice's HTML part (`None`: plain text only).
    #[must_use]
    pub fn notice_html(mut self, template: Option<&str>) -> Self {
        self.notice_html = template.map(str::to_owned);
        self
    }

    /// The reset mail's subject and plain text.
    #[must_use]
    pub fn reset(mut self, subject: &str, text: &str) -> Self {
        subject.clone_into(&mut self.reset_subject);
        text.clone_into(&mut self.reset_text);
        self
    }

    pub(super) fn domain(&self) -> &str {
        self.from.email.domain()
    }
}

/// Fills `{name}` placeholders; `escape` each value for HTML.
pub(super) fn render(template: &str, values: &[(&str, &str)], escape: bool) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| {
            values
                .iter()
                .find(|(k, _)| *k == &after[..close])
                .map(|v| (close, v.1))
        }) {
            Some((close, value)) => {
                if escape {
                    html_escape(value, &mut out);
                } else {
                    out.push_str(value);
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub(super) fn html_escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A timestamp as `YYYY-MM-DD HH:MM UTC`.
pub(super) fn utc(at: Timestamp) -> String {
    let secs = at.as_millis().div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}
