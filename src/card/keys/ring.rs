//! The vault's keys in memory: each vault key split into its sealing and fingerprint keys.

use zeroize::Zeroizing;

use super::id::{VaultKey, VaultKeyId};
use crate::card::Error;

/// The keys derived from one vault key.
pub(crate) struct KeyPair {
    pub(crate) id: VaultKeyId,
    pub(crate) seal: Zeroizing<[u8; 32]>,
    pub(crate) fingerprint: Zeroizing<[u8; 32]>,
}

/// The vault's keys in memory: every key still readable, the last one current.
pub(crate) struct Keyring {
    keys: Vec<KeyPair>,
}

impl Keyring {
    pub(crate) fn new(keys: Vec<(VaultKeyId, VaultKey)>) -> Result<Self, Error> {
        if keys.is_empty() {
            return Err(Error::NoKeys);
        }
        let mut ring = Self {
            keys: Vec::with_capacity(keys.len()),
        };
        for (id, key) in keys {
            ring.push(id, &key)?;
        }
        Ok(ring)
    }

    pub(crate) fn push(&mut self, id: VaultKeyId, key: &VaultKey) -> Result<(), Error> {
        if self.get(&id).is_some() {
            return Err(Error::DuplicateKeyId { id });
        }
        self.keys.push(KeyPair {
            seal: key.derive(b"shopsafe/vault/seal/v1"),
            fingerprint: key.derive(b"shopsafe/vault/fingerprint/v1"),
            id,
        });
        Ok(())
    }

    pub(crate) fn remove(&mut self, id: &VaultKeyId) -> Result<(), Error> {
        if self.current().id == *id {
            return Err(Error::ShredCurrentKey);
        }
        let before = self.keys.len();
        self.keys.retain(|k| k.id != *id);
        if self.keys.len() == before {
            Err(Error::UnknownKeyId { id: id.clone() })
        } else {
            Ok(())
        }
    }

    pub(crate) fn current(&self) -> &KeyPair {
        // `new` refuses an empty ring and `remove` never removes the current (last) key.
        &self.keys[self.keys.len() - 1]
    }

    pub(crate) fn get(&self, id: &VaultKeyId) -> Option<&KeyPair> {
        self.keys.iter().find(|k| k.id == *id)
    }

    /// Newest first: the order fingerprints are looked up in.
    pub(crate) fn newest_first(&self) -> impl Iterator<Item = &KeyPair> {
        self.keys.iter().rev()
    }
}
