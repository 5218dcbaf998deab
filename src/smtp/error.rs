//! What can go wrong: building the notifier ([`Error`]) and sending one mail
//! ([`SendError`]).

/// Building an [`SmtpNotifier`](super::SmtpNotifier) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The relay URL does not parse, or has a scheme other than `smtp` and `smtps`.
    #[error("invalid SMTP relay URL")]
    InvalidUrl,
    /// Plain SMTP to a relay that is not on a loopback address.
    #[error("plain SMTP to {host} refused: use smtps:// or smtp://...?tls=required")]
    PlaintextToRemote {
        /// The relay's host.
        host: String,
    },
    /// `tls=opportunistic`, which a man-in-the-middle turns into plain text.
    #[error("opportunistic STARTTLS refused: use tls=required")]
    OpportunisticTls,
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A sender address that does not parse.
    #[error("invalid sender address")]
    InvalidSender,
    /// The mail library refused the settings.
    #[error("SMTP settings refused")]
    Settings(#[source] lettre::transport::smtp::Error),
}

/// Where a notice or a reset mail could not go, as the campaign sees it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The relay answered with a transient (4xx) code on every attempt.
    #[error("SMTP relay deferred the mail {attempts} times (last reply {code})")]
    Deferred {
        /// The last reply code.
        code: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// The relay could not be reached or the connection failed, on every attempt.
    #[error("SMTP relay unreachable after {attempts} attempts")]
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// The last failure (no message text of the relay: it may name the recipient).
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The TLS handshake with the relay failed (a wrong certificate or name).
    #[error("TLS with the SMTP relay failed")]
    Tls(#[source] lettre::transport::smtp::Error),
    /// The mail could not be built.
    #[error("mail could not be built")]
    Build,
    /// The application's address book failed.
    #[error("address book failed")]
    AddressBook(#[source] Box<dyn std::error::Error + Send + Sync>),
}
