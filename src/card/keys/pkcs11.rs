//! A [`KeyWrapper`] over a PKCS#11 token (an HSM; SoftHSM2 in tests), via `cryptoki`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::envelope::KeyWrapper;
use crate::card::Error;
use crate::secret::fill_random;

/// The PKCS#11 libraries this process has initialized: a module is initialized once per
/// process, and finalizing it (when its last context drops) would cut every other
/// user's sessions, so contexts are shared and kept.
fn context(module: &Path) -> Result<Pkcs11, Error> {
    static CONTEXTS: OnceLock<Mutex<Vec<(PathBuf, Pkcs11)>>> = OnceLock::new();
    let mut open = CONTEXTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some((_, ctx)) = open.iter().find(|(p, _)| p == module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(hsm)?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(hsm(e)),
    }
    open.push((module.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

/// The PINs this process logged in with, per module and token, as salted digests: in
/// PKCS#11 a login holds for every session of the process, so the token answers "already
/// logged in" to a second login whatever its PIN, and only this check refuses a wrong
/// one.
fn check_login(
    module: &Path,
    token: &str,
    pin: &str,
    login: impl FnOnce() -> Result<(), CkError>,
) -> Result<(), Error> {
    type Logins = Vec<(PathBuf, String, [u8; 32])>;
    static SALT: OnceLock<[u8; 32]> = OnceLock::new();
    static LOGINS: OnceLock<Mutex<Logins>> = OnceLock::new();
    let salt = SALT.get_or_init(|| {
        let mut s = [0u8; 32];
        // A zero salt if the OS generator fails: the digest still never leaves memory.
        let _ = fill_random(&mut s);
        s
    });
    let digest = crate::kernel::hmac_sha256(salt, &[pin.as_bytes()]);
    let mut logins = LOGINS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let known = logins
        .iter()
        .find(|(m, t, _)| m == module && t == token)
        .map(|(_, _, d)| *d);
    // Under the lock: two first logins at once must not see each other's half.
    match (login(), known) {
        (Ok(()), _) => {
            logins.retain(|(m, t, _)| !(m == module && t == token));
            logins.push((module.to_path_buf(), token.to_owned(), digest));
            Ok(())
        }
        (Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)), Some(d))
            if bool::from(subtle::ConstantTimeEq::ct_eq(&d[..], &digest[..])) =>
        {
            Ok(())
        }
        (Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)), _) => Err(Error::KeyWrapper(
            "the token is logged in with another PIN in this process".into(),
        )),
        (Err(e), _) => Err(hsm(e)),
    }
}

fn hsm(e: CkError) -> Error {
    Error::KeyWrapper(Box::new(e))
}

/// The format tag of a wrapped value: AES-256-GCM, 12-byte IV, 16-byte tag.
const TAG: &[u8] = b"g1";

/// Key-encryption keys in a PKCS#11 token: AES-256 keys, generated inside the token as
/// sensitive and never extractable, found by label; wrapping is AES-256-GCM done by the
/// token (`C_Encrypt`/`C_Decrypt`) with a random 96-bit IV and the context as additional
/// authenticated data. The KEK never leaves the token; the wrapped value is
/// `g1 ‖ IV ‖ ciphertext ‖ tag`.
///
/// One logged-in session, used under a lock: unwraps happen when a vault opens or
/// reloads its keys, not per card.
///
/// # Examples
/// ```no_run
/// use shopsafe::card::{EnvelopeKeySource, KeyWrapper, Pkcs11Wrapper, VaultKeyId};
///
/// let hsm = Pkcs11Wrapper::open("/usr/lib/softhsm/libsofthsm2.so", "shop", "1234", "kek-2026")?;
/// hsm.generate_kek("kek-2026")?; // once, when the token is set up
/// let keys = EnvelopeKeySource::open_or_create("vault.keys.wrapped", hsm, &VaultKeyId::new("k1")?)?;
/// # Ok::<(), shopsafe::card::Error>(())
/// ```
pub struct Pkcs11Wrapper {
    session: Mutex<Session>,
    current: String,
}

impl std::fmt::Debug for Pkcs11Wrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Wrapper")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Wrapper {
    /// Opens a session on the token labelled `token` of the PKCS#11 `module` (a shared
    /// library path), logs in as the user with `pin`, and wraps new keys under the KEK
    /// labelled `current_kek` (which must exist when the first wrap happens).
    ///
    /// # Errors
    /// [`Error::KeyWrapper`]: the module does not load, no token has that label, the
    /// PIN is refused.
    pub fn open(
        module: impl AsRef<Path>,
        token: &str,
        pin: &str,
        current_kek: &str,
    ) -> Result<Self, Error> {
        let ctx = context(module.as_ref())?;
        let slot = ctx
            .get_slots_with_token()
            .map_err(hsm)?
            .into_iter()
            .find(|s| ctx.get_token_info(*s).is_ok_and(|i| i.label() == token))
            .ok_or_else(|| {
                Error::KeyWrapper(format!("no PKCS#11 token labelled {token}").into())
            })?;
        let session = ctx.open_rw_session(slot).map_err(hsm)?;
        check_login(module.as_ref(), token, pin, || {
            session.login(UserType::User, Some(&AuthPin::from(pin)))
        })?;
        Ok(Self {
            session: Mutex::new(session),
            current: current_kek.to_owned(),
        })
    }

    /// The same session, wrapping new keys under `kek` from now on (after
    /// [`Pkcs11Wrapper::generate_kek`], for a KEK rotation).
    #[must_use]
    pub fn with_current(mut self, kek: &str) -> Self {
        kek.clone_into(&mut self.current);
        self
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn find(session: &Session, label: &str) -> Result<ObjectHandle, Error> {
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(hsm)?;
        match found[..] {
            [one] => Ok(one),
            [] => Err(Error::KeyWrapper(
                format!("no key labelled {label} in the token").into(),
            )),
            _ => Err(Error::KeyWrapper(
                format!("several keys labelled {label} in the token").into(),
            )),
        }
    }

    /// Generates an AES-256 KEK labelled `label` inside the token: a token object,
    /// sensitive, never extractable, for encrypt and decrypt only.
    ///
    /// # Errors
    /// [`Error::KeyWrapper`], also when a key with that label exists.
    pub fn generate_kek(&self, label: &str) -> Result<(), Error> {
        let session = self.session();
        if Self::find(&session, label).is_ok() {
            return Err(Error::KeyWrapper(
                format!("a key labelled {label} exists").into(),
            ));
        }
        session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Label(label.as_bytes().to_vec()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Wrap(false),
                    Attribute::Unwrap(false),
                ],
            )
            .map(drop)
            .map_err(hsm)
    }

    /// Destroys the KEK labelled `label` in the token (after
    /// [`EnvelopeKeySource::rewrap`](crate::card::EnvelopeKeySource::rewrap) moved every key
    /// off it): whatever it wrapped, backups included, can no longer be opened.
    ///
    /// # Errors
    /// [`Error::KeyWrapper`].
    pub fn destroy_kek(&self, label: &str) -> Result<(), Error> {
        let session = self.session();
        let key = Self::find(&session, label)?;
        session.destroy_object(key).map_err(hsm)
    }
}

impl KeyWrapper for Pkcs11Wrapper {
    fn current_kek(&self) -> String {
        self.current.clone()
    }

    fn wrap(&self, kek: &str, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let session = self.session();
        let key = Self::find(&session, kek)?;
        let mut iv = [0u8; 12];
        fill_random(&mut iv)?;
        let mut iv_param = iv;
        let params = GcmParams::new(&mut iv_param, context, 128.into()).map_err(hsm)?;
        let sealed = session
            .encrypt(&Mechanism::AesGcm(params), key, plaintext)
            .map_err(hsm)?;
        Ok([TAG, &iv[..], &sealed].concat())
    }

    fn unwrap(
        &self,
        kek: &str,
        context: &[u8],
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let failed = || Error::UnwrapFailed {
            kek: kek.to_owned(),
        };
        let rest = wrapped.strip_prefix(TAG).ok_or_else(failed)?;
        let (iv, sealed) = rest.split_at_checked(12).ok_or_else(failed)?;
        if sealed.len() < 16 {
            return Err(failed());
        }
        let mut iv: [u8; 12] = iv.try_into().map_err(|_| failed())?;
        let session = self.session();
        let key = Self::find(&session, kek)?;
        let params = GcmParams::new(&mut iv, context, 128.into()).map_err(hsm)?;
        match session.decrypt(&Mechanism::AesGcm(params), key, sealed) {
            Ok(plain) => Ok(Zeroizing::new(plain)),
            // SoftHSM2 answers a GCM tag that does not match with CKR_GENERAL_ERROR.
            Err(CkError::Pkcs11(
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::GeneralError,
                _,
            )) => Err(failed()),
            Err(e) => Err(hsm(e)),
        }
    }
}
