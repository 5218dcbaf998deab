//! Envelope encryption: vault keys, the audit key and pepper keys kept wrapped by a
//! key-encryption key (KEK) that never leaves its HSM or KMS.

use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use super::files::{check_mode, lock_beside, write_secret_file};
use super::id::{VaultKey, VaultKeyId};
use super::source::KeySource;
use crate::audit::AuditKey;
use crate::card::Error;
use crate::secret::fill_random;

/// A service that holds key-encryption keys and encrypts and decrypts small secrets
/// under them without ever handing the KEK out: a PKCS#11 token
/// (`Pkcs11Wrapper`, feature `pkcs11`), or a cloud KMS.
///
/// The shape is a KMS's `Encrypt`/`Decrypt` with an encryption context, so an adapter
/// is a few lines over the provider's client, which this crate does not ship:
///
/// | service | `wrap` | `unwrap` | `context` |
/// |---|---|---|---|
/// | AWS KMS | `Encrypt(KeyId = kek, Plaintext)` | `Decrypt(KeyId = kek, CiphertextBlob)` | `EncryptionContext {"shopsafe": base64(context)}` |
/// | GCP Cloud KMS | `encrypt(name = kek, plaintext)` | `decrypt(name = kek, ciphertext)` | `additional_authenticated_data` |
/// | HashiCorp Vault Transit | `POST transit/encrypt/<kek>` | `POST transit/decrypt/<kek>` | `context` (derived keys) or `associated_data` |
///
/// The adapter must keep the context binding: a wrapped key moved to another key's
/// line must not unwrap. Its network calls are the application's (timeouts, retries,
/// credentials); [`EnvelopeKeySource`] calls `unwrap` when a vault opens or reloads its
/// keys, not per card.
pub trait KeyWrapper: Send + Sync {
    /// The KEK new wraps use (an HSM key label, a KMS key ARN or name).
    fn current_kek(&self) -> String;

    /// Encrypts `plaintext` under `kek`, bound to `context`.
    ///
    /// # Errors
    /// [`Error::KeyWrapper`] when the service fails or refuses.
    fn wrap(&self, kek: &str, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error>;

    /// Decrypts what [`KeyWrapper::wrap`] made under `kek` with the same `context`.
    ///
    /// # Errors
    /// [`Error::UnwrapFailed`] for a wrapped value that does not open (another KEK,
    /// another context, changed bytes), [`Error::KeyWrapper`] when the service fails.
    fn unwrap(
        &self,
        kek: &str,
        context: &[u8],
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error>;
}

impl<W: KeyWrapper + ?Sized> KeyWrapper for std::sync::Arc<W> {
    fn current_kek(&self) -> String {
        (**self).current_kek()
    }
    fn wrap(&self, kek: &str, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        (**self).wrap(kek, context, plaintext)
    }
    fn unwrap(
        &self,
        kek: &str,
        context: &[u8],
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        (**self).unwrap(kek, context, wrapped)
    }
}

/// One line of the wrapped-key file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Wrapped {
    /// `vault`, `audit` or `pepper`.
    kind: String,
    /// The key's id (`-` for the audit key).
    id: String,
    /// The KEK that wrapped it.
    kek: String,
    wrapped: Vec<u8>,
}

impl Wrapped {
    /// What the wrap is bound to: the key's kind and id, so a line moved to another
    /// key's place does not unwrap.
    fn context(&self) -> Vec<u8> {
        format!("shopsafe-envelope-v1:{}:{}", self.kind, self.id).into_bytes()
    }
}

/// A pepper key as [`EnvelopeKeySource::peppers`] unwraps it: its id and its bytes
/// (zeroized on drop).
pub type UnwrappedPepper = (String, Zeroizing<Vec<u8>>);

/// What [`EnvelopeKeySource::rewrap`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KekRewrap {
    /// Keys now wrapped under the current KEK that were under another.
    pub rewrapped: usize,
    /// Keys that already were.
    pub already: usize,
}

/// A [`KeySource`] whose vault keys (and audit key, and pepper keys) are stored only
/// wrapped by a KEK in an HSM or KMS ([`KeyWrapper`]): the file beside the vault holds
/// `kind id kek base64` lines, useless without the KEK. Keys are unwrapped in memory
/// when the vault opens or reloads its ring, and zeroized on drop.
///
/// - Rotating a vault key ([`Vault::rotate`](crate::card::Vault::rotate)) wraps the new key
///   under the current KEK.
/// - Rotating the KEK: make a new one in the HSM, point the wrapper at it, and call
///   [`EnvelopeKeySource::rewrap`]: every key is unwrapped under its old KEK and wrapped
///   under the new one, and no sealed card is touched.
/// - Every change holds the same `<file>.lock` as [`FileKeySource`](crate::card::FileKeySource)
///   and replaces the file through a synced temporary and a rename.
///
/// # Security
/// Shredding a vault key removes its wrapped copy from the file, but a backup of the
/// file still holds it, and the KEK still opens it: to make a shred final, rotate the
/// KEK ([`EnvelopeKeySource::rewrap`]) and destroy the old KEK in the HSM.
///
/// # Examples
/// A pepper ring for `password`, built from what the source unwraps (`password` itself
/// does no I/O):
/// ```no_run
/// # #[cfg(feature = "pkcs11")] fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use shopsafe::card::{EnvelopeKeySource, Pkcs11Wrapper, VaultKeyId};
/// use shopsafe::password::{KeyId, Pepper, PepperKeyring};
///
/// let hsm = Pkcs11Wrapper::open("/usr/lib/softhsm/libsofthsm2.so", "shop", "1234", "kek-2026")?;
/// let keys = EnvelopeKeySource::open_or_create("vault.keys.wrapped", hsm, &VaultKeyId::new("k1")?)?;
/// let mut peppers = keys.peppers()?.into_iter();
/// let (id, bytes) = peppers.next().ok_or("no pepper")?;
/// let ring = PepperKeyring::new(KeyId::new(&id)?, Pepper::new(bytes.to_vec())?);
/// # drop(ring); Ok(()) }
/// # #[cfg(not(feature = "pkcs11"))] fn main() {}
/// ```
#[derive(Debug)]
pub struct EnvelopeKeySource<W> {
    path: PathBuf,
    wrapper: W,
}

fn parse_lines(text: &str) -> Result<Vec<Wrapped>, Error> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [kind, id, kek, b64] = fields[..] else {
                return Err(Error::InvalidKey);
            };
            if !matches!(kind, "vault" | "audit" | "pepper") {
                return Err(Error::InvalidKey);
            }
            Ok(Wrapped {
                kind: kind.to_owned(),
                id: id.to_owned(),
                kek: kek.to_owned(),
                wrapped: Base64::decode_vec(b64).map_err(|_| Error::InvalidKey)?,
            })
        })
        .collect()
}

impl<W: KeyWrapper> EnvelopeKeySource<W> {
    /// Uses the wrapped-key file at `path`; creates it, with a first vault key named
    /// `initial_id`, an audit key and a pepper key `p1`, all fresh and wrapped under the
    /// wrapper's current KEK, if it does not exist.
    ///
    /// # Errors
    /// [`Error::KeyFile`], [`Error::KeyFileTooOpen`], [`Error::InvalidKey`] for a line
    /// that does not parse, [`Error::KeyWrapper`], [`Error::Rng`].
    pub fn open_or_create(
        path: impl AsRef<Path>,
        wrapper: W,
        initial_id: &VaultKeyId,
    ) -> Result<Self, Error> {
        let source = Self {
            path: path.as_ref().to_path_buf(),
            wrapper,
        };
        let _lock = lock_beside(&source.path, true)?;
        if source.path.exists() {
            source.read()?;
        } else {
            let lines = vec![
                source.wrap_new("vault", initial_id.as_str(), VaultKey::generate()?.bytes())?,
                source.wrap_new("audit", "-", random32()?.as_slice())?,
                source.wrap_new("pepper", "p1", random32()?.as_slice())?,
            ];
            source.write(&lines)?;
        }
        Ok(source)
    }

    /// The wrapper.
    pub fn wrapper(&self) -> &W {
        &self.wrapper
    }

    fn read(&self) -> Result<Vec<Wrapped>, Error> {
        check_mode(&self.path)?;
        let text = std::fs::read_to_string(&self.path).map_err(Error::KeyFile)?;
        parse_lines(&text)
    }

    fn write(&self, lines: &[Wrapped]) -> Result<(), Error> {
        let mut text = String::from("# shopsafe wrapped keys: kind id kek base64\n");
        for l in lines {
            text.push_str(&format!(
                "{} {} {} {}\n",
                l.kind,
                l.id,
                l.kek,
                Base64::encode_string(&l.wrapped)
            ));
        }
        write_secret_file(&self.path, &text)
    }

    fn wrap_new(&self, kind: &str, id: &str, secret: &[u8]) -> Result<Wrapped, Error> {
        let mut line = Wrapped {
            kind: kind.to_owned(),
            id: id.to_owned(),
            kek: self.wrapper.current_kek(),
            wrapped: Vec::new(),
        };
        line.wrapped = self.wrapper.wrap(&line.kek, &line.context(), secret)?;
        Ok(line)
    }

    fn open_line(&self, line: &Wrapped) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.wrapper
            .unwrap(&line.kek, &line.context(), &line.wrapped)
    }

    /// Re-wraps every key that is not under the wrapper's current KEK (after a KEK
    /// rotation), in one replacement of the file. Sealed cards are not touched.
    ///
    /// # Errors
    /// As [`EnvelopeKeySource::open_or_create`]; [`Error::UnwrapFailed`] when a key does
    /// not open under its old KEK (then nothing is written).
    pub fn rewrap(&self) -> Result<KekRewrap, Error> {
        let _lock = lock_beside(&self.path, true)?;
        let current = self.wrapper.current_kek();
        let mut report = KekRewrap {
            rewrapped: 0,
            already: 0,
        };
        let lines = self
            .read()?
            .into_iter()
            .map(|line| {
                if line.kek == current {
                    report.already += 1;
                    return Ok(line);
                }
                let secret = self.open_line(&line)?;
                report.rewrapped += 1;
                self.wrap_new(&line.kind, &line.id, &secret)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if report.rewrapped > 0 {
            self.write(&lines)?;
        }
        Ok(report)
    }

    /// The pepper keys, oldest first, unwrapped: `(id, bytes)`, for
    /// `password::PepperKeyring` (see the example above).
    ///
    /// # Errors
    /// As [`EnvelopeKeySource::rewrap`].
    pub fn peppers(&self) -> Result<Vec<UnwrappedPepper>, Error> {
        let _lock = lock_beside(&self.path, false)?;
        self.read()?
            .iter()
            .filter(|l| l.kind == "pepper")
            .map(|l| Ok((l.id.clone(), self.open_line(l)?)))
            .collect()
    }

    /// Adds a fresh pepper key named `id` (it becomes the newest).
    ///
    /// # Errors
    /// [`Error::DuplicateKeyId`] when `id` is taken, and as
    /// [`EnvelopeKeySource::rewrap`].
    pub fn add_pepper(&self, id: &VaultKeyId) -> Result<(), Error> {
        self.add_line("pepper", id, random32()?.as_slice())
    }

    /// Appends `secret` wrapped as key `id` of `kind`, under the file's lock.
    fn add_line(&self, kind: &str, id: &VaultKeyId, secret: &[u8]) -> Result<(), Error> {
        let _lock = lock_beside(&self.path, true)?;
        let mut lines = self.read()?;
        if lines.iter().any(|l| l.kind == kind && l.id == id.as_str()) {
            return Err(Error::DuplicateKeyId { id: id.clone() });
        }
        lines.push(self.wrap_new(kind, id.as_str(), secret)?);
        self.write(&lines)
    }
}

fn random32() -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(bytes.as_mut_slice())?;
    Ok(bytes)
}

impl<W: KeyWrapper> KeySource for EnvelopeKeySource<W> {
    fn keys(&self) -> Result<Vec<(VaultKeyId, VaultKey)>, Error> {
        let _lock = lock_beside(&self.path, false)?;
        self.read()?
            .iter()
            .filter(|l| l.kind == "vault")
            .map(|l| {
                let bytes = self.open_line(l)?;
                Ok((VaultKeyId::new(&l.id)?, VaultKey::from_bytes(&bytes)?))
            })
            .collect()
    }

    fn add(&self, id: &VaultKeyId, key: &VaultKey) -> Result<(), Error> {
        self.add_line("vault", id, key.bytes())
    }

    fn destroy(&self, id: &VaultKeyId) -> Result<(), Error> {
        let _lock = lock_beside(&self.path, true)?;
        let mut lines = self.read()?;
        let before = lines.len();
        lines.retain(|l| !(l.kind == "vault" && l.id == id.as_str()));
        if lines.len() == before {
            return Err(Error::UnknownKeyId { id: id.clone() });
        }
        self.write(&lines)
    }

    fn audit_key(&self) -> Result<AuditKey, Error> {
        let _lock = lock_beside(&self.path, false)?;
        let lines = self.read()?;
        let line = lines
            .iter()
            .find(|l| l.kind == "audit")
            .ok_or(Error::NoAuditKey)?;
        let bytes = self.open_line(line)?;
        let bytes: Zeroizing<[u8; 32]> =
            Zeroizing::new(bytes.as_slice().try_into().map_err(|_| Error::InvalidKey)?);
        Ok(AuditKey::from_bytes(*bytes))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A stand-in KMS: each KEK a random key in memory, wrapping with XChaCha20-Poly1305
    /// and the context as associated data (the real one is `Pkcs11Wrapper`, tested
    /// against SoftHSM2 in `tests/pkcs11.rs`).
    struct TestKms {
        keks: Mutex<HashMap<String, [u8; 32]>>,
        current: Mutex<String>,
    }

    impl TestKms {
        fn new(kek: &str) -> Self {
            let kms = Self {
                keks: Mutex::new(HashMap::new()),
                current: Mutex::new(kek.to_owned()),
            };
            kms.rotate(kek);
            kms
        }
        fn rotate(&self, kek: &str) {
            let mut k = [0u8; 32];
            fill_random(&mut k).expect("rng");
            self.keks.lock().expect("lock").insert(kek.to_owned(), k);
            kek.clone_into(&mut self.current.lock().expect("lock"));
        }
        fn destroy(&self, kek: &str) {
            self.keks.lock().expect("lock").remove(kek);
        }
        fn cipher(&self, kek: &str) -> Result<chacha20poly1305::XChaCha20Poly1305, Error> {
            use chacha20poly1305::KeyInit as _;
            let keks = self.keks.lock().expect("lock");
            let k = keks
                .get(kek)
                .ok_or_else(|| Error::KeyWrapper("no such KEK".into()))?;
            Ok(chacha20poly1305::XChaCha20Poly1305::new(k.into()))
        }
    }

    impl KeyWrapper for TestKms {
        fn current_kek(&self) -> String {
            self.current.lock().expect("lock").clone()
        }
        fn wrap(&self, kek: &str, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
            use chacha20poly1305::aead::{Aead, Payload};
            let mut nonce = [0u8; 24];
            fill_random(&mut nonce)?;
            let ct = self
                .cipher(kek)?
                .encrypt(
                    &nonce.into(),
                    Payload {
                        msg: plaintext,
                        aad: context,
                    },
                )
                .map_err(|_| Error::KeyWrapper("encrypt".into()))?;
            Ok([&nonce[..], &ct].concat())
        }
        fn unwrap(
            &self,
            kek: &str,
            context: &[u8],
            wrapped: &[u8],
        ) -> Result<Zeroizing<Vec<u8>>, Error> {
            use chacha20poly1305::aead::{Aead, Payload};
            let (nonce, ct) = wrapped
                .split_at_checked(24)
                .ok_or(Error::UnwrapFailed { kek: kek.into() })?;
            let nonce: [u8; 24] = nonce
                .try_into()
                .map_err(|_| Error::UnwrapFailed { kek: kek.into() })?;
            self.cipher(kek)?
                .decrypt(
                    &nonce.into(),
                    Payload {
                        msg: ct,
                        aad: context,
                    },
                )
                .map(Zeroizing::new)
                .map_err(|_| Error::UnwrapFailed { kek: kek.into() })
        }
    }

    fn id(s: &str) -> VaultKeyId {
        VaultKeyId::new(s).expect("id")
    }

    #[test]
    fn keys_stay_wrapped_on_disk_and_a_kek_rotation_rewraps_them_all() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("vault.keys.wrapped");
        let kms = std::sync::Arc::new(TestKms::new("kek-1"));
        let source =
            EnvelopeKeySource::open_or_create(&path, std::sync::Arc::clone(&kms), &id("k1"))
                .expect("create");
        let first = source.keys().expect("keys");
        let audit = source.audit_key().expect("audit key");
        source
            .add(&id("k2"), &VaultKey::generate().expect("key"))
            .expect("rotate");
        source.add_pepper(&id("p2")).expect("pepper");
        let text = std::fs::read_to_string(&path).expect("read");
        for (_, key) in &first {
            let b64 = Base64::encode_string(key.bytes());
            assert!(!text.contains(&b64), "no key in the clear");
        }
        // A new KEK: rewrap moves every key to it; the old KEK can then go.
        kms.rotate("kek-2");
        assert_eq!(
            source.rewrap().expect("rewrap"),
            KekRewrap {
                rewrapped: 5,
                already: 0
            }
        );
        assert_eq!(
            source.rewrap().expect("again"),
            KekRewrap {
                rewrapped: 0,
                already: 5
            }
        );
        kms.destroy("kek-1");
        let after = source.keys().expect("keys under kek-2");
        assert_eq!(after.len(), 2);
        assert_eq!(after[0].1.bytes(), first[0].1.bytes(), "the same vault key");
        assert_eq!(
            source.audit_key().expect("audit").expose_secret(),
            audit.expose_secret()
        );
        assert_eq!(
            source
                .peppers()
                .expect("peppers")
                .iter()
                .map(|(i, _)| i.as_str())
                .collect::<Vec<_>>(),
            ["p1", "p2"]
        );
        source.destroy(&id("k1")).expect("shred");
        assert_eq!(source.keys().expect("keys").len(), 1);
    }

    #[test]
    fn a_wrapped_key_moved_to_another_line_or_changed_does_not_unwrap() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("vault.keys.wrapped");
        let kms = TestKms::new("kek-1");
        let source = EnvelopeKeySource::open_or_create(&path, kms, &id("k1")).expect("create");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        let wrapped_of = |kind: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(kind))
                .and_then(|l| l.split_whitespace().nth(3))
                .expect("line")
                .to_owned()
        };
        // The audit key's wrap pasted into the vault key's line.
        let swapped = text.replacen(&wrapped_of("vault"), &wrapped_of("audit"), 1);
        std::fs::write(&path, swapped).expect("write");
        assert!(matches!(source.keys(), Err(Error::UnwrapFailed { .. })));
        std::fs::write(&path, "vault k1 kek-1 AAAA\n").expect("write");
        assert!(matches!(source.keys(), Err(Error::UnwrapFailed { .. })));
        std::fs::write(&path, "vault k1 kek-1\n").expect("write");
        assert!(matches!(source.keys(), Err(Error::InvalidKey)));
    }
}
