//! [`EnvKeySource`]: the keys in environment variables.

use zeroize::Zeroizing;

use super::file::{audit_key_from_base64, parse_key_lines};
use super::id::{VaultKey, VaultKeyId};
use super::source::KeySource;
use crate::audit::AuditKey;
use crate::card::Error;

/// Keys from an environment variable holding `id base64` pairs separated by `;` or new
/// lines, oldest first. Read-only: rotate and shred by changing the variable.
#[derive(Debug)]
pub struct EnvKeySource {
    var: String,
}

impl EnvKeySource {
    /// Reads the variable `var` (e.g. `SHOPSAFE_VAULT_KEYS`) on each `keys()` call.
    #[must_use]
    pub fn new(var: &str) -> Self {
        Self {
            var: var.to_owned(),
        }
    }
}

impl KeySource for EnvKeySource {
    fn keys(&self) -> Result<Vec<(VaultKeyId, VaultKey)>, Error> {
        let text = Zeroizing::new(
            std::env::var(&self.var)
                .map_err(|_| Error::NoKeys)?
                .replace(';', "\n"),
        );
        parse_key_lines(&text)
    }

    fn add(&self, _: &VaultKeyId, _: &VaultKey) -> Result<(), Error> {
        Err(Error::KeySourceReadOnly)
    }

    fn destroy(&self, _: &VaultKeyId) -> Result<(), Error> {
        Err(Error::KeySourceReadOnly)
    }

    /// The variable named `<var>_AUDIT` (e.g. `SHOPSAFE_VAULT_KEYS_AUDIT`): 32 bytes,
    /// base64.
    fn audit_key(&self) -> Result<AuditKey, Error> {
        let text = Zeroizing::new(
            std::env::var(format!("{}_AUDIT", self.var)).map_err(|_| Error::NoAuditKey)?,
        );
        audit_key_from_base64(&text)
    }
}
