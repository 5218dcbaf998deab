//! Feature `tracing`: a `MakeWriter` for tracing-subscriber that redacts card numbers.

use tracing_subscriber::fmt::MakeWriter;

use super::redact::{RedactStyle, Redactor};
use super::writer::RedactingWriter;

/// Wraps a tracing-subscriber writer so that every event is written through a
/// [`RedactingWriter`]: a card number in a message or a field never reaches the log.
///
/// # Examples
/// ```
/// use shopsafe::minimize::RedactingMakeWriter;
///
/// let subscriber = tracing_subscriber::fmt()
///     .with_writer(RedactingMakeWriter::new(std::io::stderr))
///     .finish();
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(card = "4111 1111 1111 1111", "payment declined"); // logs [PAN:…1111]
/// });
/// ```
#[derive(Clone, Debug)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    redactor: Redactor,
}

impl<M> RedactingMakeWriter<M> {
    /// Redacts to `[PAN:…1234]`.
    pub fn new(inner: M) -> Self {
        Self::with_redactor(inner, Redactor::new())
    }

    /// Redacts with another style.
    pub fn with_style(inner: M, style: RedactStyle) -> Self {
        Self::with_redactor(inner, Redactor::new().style(style))
    }

    /// Redacts with other settings (e.g. [`crate::minimize::Detect::AnyLuhn`]).
    pub fn with_redactor(inner: M, redactor: Redactor) -> Self {
        Self { inner, redactor }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        // One writer per event: dropping it at the end of the event writes what it held.
        self.redactor.clone().writer(self.inner.make_writer())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_never_carry_a_card_number() {
        let sink = Sink::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(RedactingMakeWriter::new(move || sink.clone()))
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                card = "4111 1111 1111 1111",
                "payment declined for 5555555555554444"
            );
            tracing::warn!("order 1732530721123 shipped");
        });
        let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf8");
        assert!(text.contains("payment declined for [PAN:…4444]"), "{text}");
        assert!(text.contains("card=\"[PAN:…1111]\""), "{text}");
        assert!(text.contains("order 1732530721123 shipped"), "{text}");
        assert!(
            !text.contains("4111 1111") && !text.contains("5555555555554444"),
            "{text}"
        );
    }
}
