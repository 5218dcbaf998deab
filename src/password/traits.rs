//! RustCrypto's `password-hash` traits for [`Hasher`] (feature `password-hash`), so a
//! `Hasher` can stand where code expects `PasswordHasher` / `PasswordVerifier`.
//!
//! What the traits cannot carry, and what to use instead:
//! - **The upgrade.** `verify_password` answers only yes or no, so a match that should be
//!   rehashed (weaker parameters, an old pepper, a legacy onion) cannot hand the new hash
//!   back. Login code should call [`Hasher::verify`] and store `rehash`; the traits suit
//!   code that only needs a yes or no (an admin re-authentication, a library boundary).
//! - **Bytes that are not UTF-8.** shopsafe normalizes passwords (NFKC, NIST SP 800-63B),
//!   which needs text: such bytes are `Error::EncodingInvalid`.
//! - **Errors.** Overload ([`Error::Overloaded`](super::Error::Overloaded)) and stored
//!   parameters over the limits become `Error::Internal` / `Error::ParamsInvalid`: the
//!   caller learns that nothing was checked, not that the password was wrong.

use password_hash::{Error as PhError, PasswordHasher, PasswordVerifier, phc};

use super::{Error, Hasher, Password, PasswordHash, Verification};

fn password_of(bytes: &[u8]) -> Result<Password, PhError> {
    core::str::from_utf8(bytes)
        .map(Password::new)
        .map_err(|_| PhError::EncodingInvalid)
}

fn mapped(e: &Error) -> PhError {
    match e {
        Error::UnsupportedAlgorithm { .. } => PhError::Algorithm,
        Error::UnsupportedVersion { .. } => PhError::Version,
        Error::PasswordTooLong { .. } => PhError::PasswordInvalid,
        Error::TooExpensive { .. }
        | Error::MemoryTooMuch { .. }
        | Error::TimeCostTooHigh { .. }
        | Error::ParallelismTooHigh { .. } => PhError::ParamsInvalid,
        Error::PhcMalformed { .. } | Error::UnknownParam { .. } => PhError::EncodingInvalid,
        _ => PhError::Internal,
    }
}

/// Hashes with this hasher's policy and pepper and the caller's salt (8 to 64 bytes).
impl PasswordHasher<phc::PasswordHash> for Hasher {
    fn hash_password_with_salt(
        &self,
        password: &[u8],
        salt: &[u8],
    ) -> Result<phc::PasswordHash, PhError> {
        if !(8..=64).contains(&salt.len()) {
            return Err(PhError::SaltInvalid);
        }
        let ours = self
            .hash_with_salt(&password_of(password)?, salt.to_vec())
            .map_err(|e| mapped(&e))?;
        phc::PasswordHash::new(&ours.to_phc_string()).map_err(|_| PhError::EncodingInvalid)
    }
}

/// Verifies any hash shopsafe reads (argon2id PHC strings, with or without a pepper key
/// id, and legacy onions); a match that wants a rehash is still `Ok(())`.
impl PasswordVerifier<phc::PasswordHash> for Hasher {
    fn verify_password(&self, password: &[u8], hash: &phc::PasswordHash) -> Result<(), PhError> {
        self.verify_password(password, hash.to_string().as_str())
    }
}

/// The same from the stored text.
impl PasswordVerifier<str> for Hasher {
    fn verify_password(&self, password: &[u8], hash: &str) -> Result<(), PhError> {
        let stored = PasswordHash::parse(hash).map_err(|e| mapped(&e))?;
        match self.verify(&password_of(password)?, &stored) {
            Ok(Verification::Match { .. }) => Ok(()),
            Ok(Verification::Mismatch) => Err(PhError::PasswordInvalid),
            Err(e) => Err(mapped(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::{LegacyHash, Params};

    /// Code written against the traits only.
    fn generic_round_trip<H>(h: &H, password: &[u8]) -> Result<(), PhError>
    where
        H: PasswordHasher<phc::PasswordHash> + PasswordVerifier<phc::PasswordHash>,
    {
        let hash = h.hash_password_with_salt(password, b"0123456789abcdef")?;
        h.verify_password(password, &hash)?;
        match h.verify_password(b"something else", &hash) {
            Err(PhError::PasswordInvalid) => Ok(()),
            other => panic!("a wrong password: {other:?}"),
        }
    }

    #[test]
    fn a_hasher_works_where_the_traits_are_expected() {
        let hasher = Hasher::new(Params::insecure_for_tests(64, 1, 1).unwrap());
        generic_round_trip(&hasher, "correct horse battery staple".as_bytes()).unwrap();
        assert_eq!(
            hasher.hash_password_with_salt(b"pw", b"short"),
            Err(PhError::SaltInvalid)
        );
        assert_eq!(
            hasher.hash_password_with_salt(&[0xff, 0xfe], b"0123456789abcdef"),
            Err(PhError::EncodingInvalid)
        );
    }

    #[test]
    fn onions_and_hashes_from_argon2_verify_through_the_trait() {
        let hasher = Hasher::new(Params::insecure_for_tests(64, 1, 1).unwrap());
        let onion = hasher
            .wrap_legacy(&LegacyHash::parse("$P$62pKikNhGackJ8fKRohKZq2C2dEQWn.").unwrap())
            .unwrap()
            .to_phc_string();
        let parsed = phc::PasswordHash::new(&onion).expect("an onion is a valid PHC string");
        // The vector's password (tests/data/legacy/vectors.tsv, first phpass row).
        assert_eq!(
            hasher.verify_password(b"correct horse battery staple", &parsed),
            Ok(())
        );
        assert_eq!(
            hasher.verify_password(b"wrong", onion.as_str()),
            Err(PhError::PasswordInvalid)
        );
        assert_eq!(
            hasher.verify_password(
                b"x",
                "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
            ),
            Err(PhError::Algorithm)
        );
    }
}
