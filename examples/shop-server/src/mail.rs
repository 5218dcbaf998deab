//! Mail as RFC 5322 `.eml` files in an outbox folder (a real deployment hands them to an
//! SMTP relay). A notice's file is named after its `Notice` id, so a notice sent again
//! by a resumed campaign replaces its own file instead of adding a second mail.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shopsafe::kernel::{AccountId, Timestamp};
use shopsafe::rotation::{
    Delivery, Notice, Notifier, NotifyError, REUSE_ADVICE, ResetLink, Undeliverable,
};
use shopsafe::smtp::{AddressBook, SmtpNotifier};

use crate::profiles::{AppError, Profiles};

/// The outbox folder.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    dir: PathBuf,
    delay: std::time::Duration,
}

impl Outbox {
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            delay: std::time::Duration::ZERO,
        })
    }

    /// Waits `delay` after each notice (a slow relay).
    pub(crate) fn with_delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Writes one mail: to a temporary name, then renamed, so a reader never sees half.
    fn write(
        &self,
        file: &str,
        message_id: &str,
        to: &str,
        subject: &str,
        body: &str,
    ) -> std::io::Result<()> {
        let date = httpdate(std::time::SystemTime::now());
        let text = format!(
            "Message-ID: <{message_id}>\r\nDate: {date}\r\nFrom: Shop <no-reply@shop.example>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
            body.replace('\n', "\r\n")
        );
        let tmp = self.dir.join(format!(".{file}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(file))
    }

    /// A breach notice with its reset link.
    pub(crate) fn notice(&self, notice: &Notice, to: &str) -> std::io::Result<()> {
        let id = notice.id.to_string();
        let file = format!("{}.eml", id.replace(['/', '\\'], "_"));
        let mut body = format!(
            "We are writing about a security incident at our shop.\n\n{}\n\nYour password has been expired. Choose a new one here (the link works once):\n{}\n\n{}\n",
            notice.exposure.as_deref().unwrap_or(""),
            notice.link.expose_secret(),
            REUSE_ADVICE,
        );
        body.push_str("\nWe are sorry.\n");
        let host = notice.brand.as_ref().map_or("shop.example", |b| b.as_str());
        self.write(
            &file,
            &format!("{id}@{host}"),
            to,
            "Important: reset your password",
            &body,
        )?;
        // A line per notice handed over: what a resumed campaign must not repeat.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("sent.log"))?
            .write_all(format!("{id}\n").as_bytes())?;
        std::thread::sleep(self.delay);
        Ok(())
    }

    /// A reset mail ("forgot password", or a login on an expired password).
    pub(crate) fn reset(&self, account: &str, link: &ResetLink, to: &str) -> std::io::Result<()> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tag = format!(
            "{}-{}",
            Timestamp::now().as_millis(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let safe: String = account
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        self.write(
            &format!("reset-{safe}-{tag}.eml"),
            &format!("reset-{tag}@shop.example"),
            to,
            "Reset your password",
            &format!(
                "Someone (we hope you) asked to reset the password of your account.\n\nChoose a new one here (the link works once, for an hour):\n{}\n\nIf it was not you, ignore this mail.\n",
                link.expose_secret()
            ),
        )
    }
}

/// The shop's profiles as the SMTP notifier's address book.
pub(crate) struct ProfileBook(pub(crate) Arc<dyn Profiles>);

impl AddressBook for ProfileBook {
    fn address(&self, account: &AccountId) -> Result<Option<String>, AppError> {
        self.0.email(account.as_str())
    }

    /// A batch's addresses in one read of the sealed rows and one of the key store.
    fn addresses(&self, accounts: &[AccountId]) -> Result<Vec<Option<String>>, AppError> {
        self.0.emails(accounts)
    }
}

/// Where mail goes: the `.eml` outbox, or an SMTP relay (`--smtp URL`).
#[derive(Clone)]
pub(crate) enum Mailer {
    /// `.eml` files.
    Outbox(Outbox),
    /// A relay.
    Smtp(Arc<SmtpNotifier<ProfileBook>>),
}

impl Mailer {
    /// Mails a reset link (blocking: run it off the runtime).
    pub(crate) fn reset(
        &self,
        profiles: &dyn Profiles,
        account: &AccountId,
        link: &ResetLink,
    ) -> Result<Delivery, AppError> {
        match self {
            Self::Outbox(outbox) => match profiles.email(account.as_str())? {
                Some(to) => {
                    outbox.reset(account.as_str(), link, &to)?;
                    Ok(Delivery::Accepted)
                }
                None => Ok(Delivery::Undeliverable(Undeliverable::NoAddress)),
            },
            Self::Smtp(smtp) => Ok(smtp.send_reset(
                account,
                None,
                link,
                Timestamp::now().plus(std::time::Duration::from_secs(3600)),
            )?),
        }
    }

    /// The campaign's notifier. Runs on the campaign's blocking thread.
    pub(crate) fn notifier(&self, profiles: Arc<dyn Profiles>) -> MailNotifier {
        MailNotifier {
            mailer: self.clone(),
            profiles,
        }
    }
}

/// The campaign's notifier: the address from the shop's profiles, the mail to the outbox
/// or the relay. An account without an address is undeliverable, never counted as sent.
pub(crate) struct MailNotifier {
    mailer: Mailer,
    profiles: Arc<dyn Profiles>,
}

impl Notifier for MailNotifier {
    fn send(&self, notice: &Notice) -> Result<(), NotifyError> {
        match self.deliver(notice)? {
            Delivery::Accepted => Ok(()),
            other => Err(NotifyError(format!("{other:?}").into())),
        }
    }

    fn deliver(&self, notice: &Notice) -> Result<Delivery, NotifyError> {
        match &self.mailer {
            Mailer::Outbox(outbox) => {
                let to = self
                    .profiles
                    .email(notice.account.as_str())
                    .map_err(NotifyError)?;
                let Some(to) = to else {
                    return Ok(Delivery::Undeliverable(Undeliverable::NoAddress));
                };
                outbox
                    .notice(notice, &to)
                    .map_err(|e| NotifyError(Box::new(e) as AppError))?;
                Ok(Delivery::Accepted)
            }
            Mailer::Smtp(smtp) => smtp.deliver(notice),
        }
    }

    fn deduplicates(&self) -> bool {
        // A notice's file is named after its id: sent again, it replaces itself.
        matches!(self.mailer, Mailer::Outbox(_))
    }

    /// The outbox takes a batch at once: its addresses are opened with one read of the
    /// sealed rows and one of the key store (a notice's file is named by its id, so a
    /// batch cut off and sent again replaces itself).
    fn parallelism(&self) -> usize {
        match &self.mailer {
            Mailer::Outbox(_) => 16,
            Mailer::Smtp(smtp) => smtp.parallelism(),
        }
    }

    fn deliver_all(&self, notices: &[Notice]) -> Vec<Result<Delivery, NotifyError>> {
        match &self.mailer {
            Mailer::Outbox(outbox) => {
                let accounts: Vec<AccountId> = notices.iter().map(|n| n.account.clone()).collect();
                let addresses = match self.profiles.emails(&accounts) {
                    Ok(a) => a,
                    Err(e) => return vec![Err(NotifyError(e))],
                };
                let mut out = Vec::with_capacity(notices.len());
                for (notice, to) in notices.iter().zip(addresses) {
                    let outcome = match to {
                        None => Ok(Delivery::Undeliverable(Undeliverable::NoAddress)),
                        Some(to) => outbox
                            .notice(notice, &to)
                            .map(|()| Delivery::Accepted)
                            .map_err(|e| NotifyError(Box::new(e) as AppError)),
                    };
                    let failed = outcome.is_err();
                    out.push(outcome);
                    if failed {
                        break;
                    }
                }
                out
            }
            Mailer::Smtp(smtp) => smtp.deliver_all(notices),
        }
    }
}

/// RFC 7231 date (the `Date:` header of a mail takes the same form with a zone).
fn httpdate(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday =
        ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][usize::try_from(days % 7).unwrap_or(0)];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][usize::try_from(month - 1).unwrap_or(0)];
    format!("{weekday}, {d:02} {mon} {year} {h:02}:{m:02}:{s:02} +0000")
}
