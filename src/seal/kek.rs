//! The customer-data key-encryption keys (KEKs) in memory, and the local wrap of data
//! keys and index keys under them.
//!
//! Each KEK comes from a [`KeySource`] (a key file, the environment, or wrapped by a
//! `KeyWrapper` in an HSM), read once when the sealer starts: the HSM is asked once, not
//! once per customer. Its id is its epoch; the source's last key is the current one. A
//! wrapping key is derived from each KEK (SP 800-108, label
//! `shopsafe/customer-data/wrap/v1`), and keys are wrapped with XChaCha20-Poly1305, bound
//! to what they are (a customer's data key and its version, or a column's index key) and
//! to the key store's id.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::error::Error;
use crate::card::{KeySource, VaultKeyId};
use crate::secret::fill_random;

/// The KEKs, oldest first; the last is current.
pub(super) struct Keks {
    keys: Vec<(VaultKeyId, Zeroizing<[u8; 32]>)>,
}

impl Keks {
    pub(super) fn load(source: &dyn KeySource) -> Result<Self, Error> {
        let keys: Vec<_> = source
            .keys()?
            .into_iter()
            .map(|(id, key)| (id, key.derive(b"shopsafe/customer-data/wrap/v1")))
            .collect();
        if keys.is_empty() {
            return Err(Error::NoKek);
        }
        Ok(Self { keys })
    }

    pub(super) fn current(&self) -> &VaultKeyId {
        // `load` refuses an empty source.
        &self.keys[self.keys.len() - 1].0
    }

    pub(super) fn ids(&self) -> impl Iterator<Item = &VaultKeyId> {
        self.keys.iter().map(|(id, _)| id)
    }

    /// Wraps 32 key bytes under the current KEK: nonce and ciphertext.
    pub(super) fn wrap(
        &self,
        context: &[u8],
        key: &[u8; 32],
    ) -> Result<(VaultKeyId, Vec<u8>), Error> {
        let (id, kek) = &self.keys[self.keys.len() - 1];
        let mut nonce = [0u8; 24];
        fill_random(&mut nonce)?;
        let ad = ad(id, context);
        let ct = XChaCha20Poly1305::new((&**kek).into())
            .encrypt(&XNonce::from(nonce), Payload { msg: key, aad: &ad })
            .map_err(|_| Error::UnwrapFailed { kek: id.clone() })?;
        let mut out = Vec::with_capacity(24 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok((id.clone(), out))
    }

    /// Unwraps what [`Keks::wrap`] made under epoch `kek` for `context`.
    pub(super) fn unwrap(
        &self,
        kek: &VaultKeyId,
        context: &[u8],
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, Error> {
        let (_, key) = self
            .keys
            .iter()
            .find(|(id, _)| id == kek)
            .ok_or_else(|| Error::UnknownKek { kek: kek.clone() })?;
        let failed = || Error::UnwrapFailed { kek: kek.clone() };
        if wrapped.len() != 24 + 32 + 16 {
            return Err(failed());
        }
        let nonce: [u8; 24] = wrapped[..24].try_into().map_err(|_| failed())?;
        let ad = ad(kek, context);
        let plain = Zeroizing::new(
            XChaCha20Poly1305::new((&**key).into())
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &wrapped[24..],
                        aad: &ad,
                    },
                )
                .map_err(|_| failed())?,
        );
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&plain);
        Ok(out)
    }
}

fn ad(kek: &VaultKeyId, context: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(48 + context.len());
    ad.extend_from_slice(b"shopsafe/customer-data/kek/v1\0");
    ad.extend_from_slice(kek.as_str().as_bytes());
    ad.push(0);
    ad.extend_from_slice(context);
    ad
}

/// What a customer's data key is bound to.
pub(super) fn data_key_context(store_id: &[u8; 16], customer: &str, version: u32) -> Vec<u8> {
    let mut c = Vec::with_capacity(40 + customer.len());
    c.extend_from_slice(b"data-key\0");
    c.extend_from_slice(store_id);
    c.extend_from_slice(&version.to_be_bytes());
    c.extend_from_slice(customer.as_bytes());
    c
}

/// What a column's index key is bound to.
pub(super) fn index_key_context(store_id: &[u8; 16], column: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(32 + column.len());
    c.extend_from_slice(b"index-key\0");
    c.extend_from_slice(store_id);
    c.extend_from_slice(column.as_bytes());
    c
}
