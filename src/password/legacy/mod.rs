//! Importing an old system's hashes by onion wrapping (OWASP "upgrade method two").
//!
//! A database of unsalted MD5 or SHA-1 hex digests cannot wait for every customer to log
//! in: the weak digests must become argon2id today. Wrapping stores
//! `argon2id(legacy_digest)`, computed offline from the digest alone. At the next
//! successful login, [`Hasher::verify`](crate::password::Hasher::verify) recomputes the legacy digest
//! from the typed password, verifies the wrapper, and returns a plain argon2id rehash.
//!
//! # Security
//! Store the rehash as soon as it is returned: while a record is still wrapped, anyone
//! holding an MD5 of the same password from another breach can test that digest directly
//! against the wrapper ("hash shucking"), skipping the password search.
//!
//! The files: [`LegacyHash`] (`hash.rs`), the scheme it wraps and its caps (`inner.rs`),
//! the crypt-family digests (`digest.rs`), and the stored forms old platforms export
//! (`parse.rs`).

mod digest;
mod hash;
mod inner;
mod parse;

pub use hash::LegacyHash;
pub use inner::SaltPosition;
pub(crate) use inner::{Inner, InnerParams};
pub use parse::LegacyLimits;

#[cfg(test)]
mod tests {
    use super::inner::{Prf, SaltPosition};
    use super::*;
    use crate::password::Error;

    #[test]
    fn digests_match_the_standard_vectors() {
        // RFC 1321 §A.5, FIPS 180 examples: "abc".
        assert_eq!(
            base16ct::lower::encode_string(&Inner::Md5.digest(b"abc")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            base16ct::lower::encode_string(&Inner::Sha1.digest(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let prefix = Inner::Sha256Salted {
            salt: b"a".to_vec(),
            position: SaltPosition::Prefix,
        };
        let suffix = Inner::Sha256Salted {
            salt: b"c".to_vec(),
            position: SaltPosition::Suffix,
        };
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(base16ct::lower::encode_string(&prefix.digest(b"bc")), abc);
        assert_eq!(base16ct::lower::encode_string(&suffix.digest(b"ab")), abc);
    }

    #[test]
    fn hex_input_is_validated() {
        assert!(LegacyHash::md5_hex("900150983CD24FB0D6963F7D28E17F72").is_ok());
        assert!(LegacyHash::md5_hex(" 900150983cd24fb0d6963f7d28e17f72\n").is_ok());
        for (bad, why) in [
            ("900150983cd24fb0d6963f7d28e17f7", "not hexadecimal"),
            ("900150983cd24fb0d6963f7d28e17f72aa", "wrong digest length"),
            ("zz0150983cd24fb0d6963f7d28e17f72", "not hexadecimal"),
        ] {
            assert!(
                matches!(LegacyHash::md5_hex(bad), Err(Error::LegacyDigest { reason, .. }) if reason == why),
                "{bad}"
            );
        }
        assert!(LegacyHash::sha1_hex("900150983cd24fb0d6963f7d28e17f72").is_err());
        assert!(LegacyHash::sha256_salted_hex(b"", SaltPosition::Prefix, &"0".repeat(64)).is_err());
        assert!(
            LegacyHash::sha256_salted_hex(&[0; 49], SaltPosition::Prefix, &"0".repeat(64)).is_err()
        );
    }

    fn params_of(inner: &Inner) -> InnerParams {
        InnerParams {
            rounds: inner.rounds(),
            len: inner.len(),
            salt: inner.salt().map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn phc_names_round_trip() {
        for inner in [
            Inner::Pbkdf2 {
                prf: Prf::Sha512,
                rounds: 5,
                len: 32,
                salt: vec![9; 16],
            },
            Inner::Phpass {
                log2: 8,
                salt: b"abcdefgh".to_vec(),
            },
            Inner::Md5,
            Inner::Sha1,
            Inner::Sha256Salted {
                salt: vec![1, 2],
                position: SaltPosition::Prefix,
            },
            Inner::Sha256Salted {
                salt: vec![3],
                position: SaltPosition::Suffix,
            },
        ] {
            let back = Inner::from_phc(inner.name(), params_of(&inner));
            assert!(back.is_ok_and(|b| b == inner));
        }
        let salted = |salt: Option<Vec<u8>>| InnerParams {
            salt,
            ..InnerParams::default()
        };
        assert!(Inner::from_phc("md4", salted(None)).is_err());
        assert!(Inner::from_phc("md5", salted(Some(vec![1]))).is_err());
        assert!(Inner::from_phc("sha256-salt-prefix", salted(None)).is_err());
        assert!(Inner::from_phc("phpass", salted(Some(vec![1; 8]))).is_err());
        let pbkdf2 = |rounds, len| InnerParams {
            rounds: Some(rounds),
            len: Some(len),
            salt: Some(vec![1; 8]),
        };
        assert!(Inner::from_phc("pbkdf2-sha256", pbkdf2(1000, 32)).is_ok());
        assert!(Inner::from_phc("pbkdf2-sha256", pbkdf2(0, 32)).is_err());
        assert!(Inner::from_phc("pbkdf2-sha256", pbkdf2(2_000_001, 32)).is_err());
        let costly = |name, rounds| InnerParams {
            rounds: Some(rounds),
            len: None,
            salt: Some(vec![b'a'; if name == "bcrypt" { 16 } else { 8 }]),
        };
        assert!(Inner::from_phc("phpass", costly("phpass", 22)).is_ok());
        assert!(
            Inner::from_phc("phpass", costly("phpass", 23)).is_err(),
            "2^23 MD5s in a stored string: refused"
        );
        assert!(Inner::from_phc("bcrypt", costly("bcrypt", 15)).is_err());
        assert!(Inner::from_phc("sha512-crypt", costly("sha512-crypt", 2_000_001)).is_err());
        assert!(Inner::from_phc("pbkdf2-sha256", pbkdf2(1000, 15)).is_err());
        assert!(Inner::from_phc("md5", pbkdf2(1000, 32)).is_err());
    }
}
