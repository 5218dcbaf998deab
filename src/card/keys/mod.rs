//! Vault keys: ids, the in-memory keyring, and where keys come from (`KeySource`).
//!
//! Each 256-bit vault key is split, with HMAC-SHA-256 as the PRF of a NIST SP 800-108
//! counter-mode KDF (one block, a label per purpose), into a sealing key for
//! XChaCha20-Poly1305 and a fingerprint key for HMAC-SHA-256. One key id names both, so
//! rotating a key rotates both, and shredding it makes its rows unreadable and its
//! fingerprints unmatchable.
//!
//! Key custody, one idea a file: the key and its id (`id.rs`), the ring in memory
//! (`ring.rs`), the [`KeySource`] port (`source.rs`), the sources: a key file
//! (`file.rs`, over the secret-file helpers of `files.rs`), the environment (`env.rs`),
//! keys wrapped by a key-encryption key (`envelope.rs`) that stays in an HSM
//! (`pkcs11.rs`). The sources also give the pepper and the audit key.

mod env;
mod envelope;
mod file;
mod files;
mod id;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod ring;
mod source;

pub use env::EnvKeySource;
pub use envelope::{EnvelopeKeySource, KekRewrap, KeyWrapper, UnwrappedPepper};
pub use file::FileKeySource;
pub use id::{VaultKey, VaultKeyId};
#[cfg(feature = "pkcs11")]
pub use pkcs11::Pkcs11Wrapper;
pub(crate) use ring::{KeyPair, Keyring};
pub use source::KeySource;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::file::parse_key_lines;
    use super::*;

    use crate::card::Error;

    fn id(s: &str) -> VaultKeyId {
        VaultKeyId::new(s).expect("valid id")
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_temp_file_cannot_open_the_key_file_up() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vault.keys");
        let source = FileKeySource::open_or_create(&path, &id("k1")).expect("create");
        assert_eq!(mode(&path), 0o600);
        // A stale or planted `vault.tmp`, world-readable: the old temp name.
        let planted = dir.path().join("vault.tmp");
        std::fs::write(&planted, "").expect("plant");
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        source
            .add(&id("k2"), &VaultKey::generate().expect("key"))
            .expect("add");
        assert_eq!(mode(&path), 0o600, "the key file stays private");
        assert_eq!(
            std::fs::read(&planted).expect("read"),
            b"",
            "and the planted file untouched"
        );
        assert_eq!(source.keys().expect("keys").len(), 2);
        // A key file named like a temporary works too.
        let odd = FileKeySource::open_or_create(dir.path().join("keys.tmp"), &id("k1"))
            .expect("odd name");
        odd.add(&id("k2"), &VaultKey::generate().expect("key"))
            .expect("add");
        assert_eq!(odd.keys().expect("keys").len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_fix_in_the_message() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vault.keys");
        let source = FileKeySource::open_or_create(&path, &id("k1")).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = source.keys().expect_err("refused");
        assert!(
            matches!(err, Error::KeyFileTooOpen { mode: 0o644 }),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(FileKeySource::open_or_create(&path, &id("k1")).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(source.keys().expect("keys").len(), 1);
    }

    #[test]
    fn two_processes_rotating_at_once_keep_every_key() {
        // `add` read, changed and wrote the file without a lock: two rotations at once
        // lost a key, and every card sealed under it.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vault.keys");
        drop(FileKeySource::open_or_create(&path, &id("k0")).expect("create"));
        std::thread::scope(|scope| {
            for p in 0..2 {
                let path = &path;
                scope.spawn(move || {
                    // Each "process" has its own source over the same file.
                    let source = FileKeySource::open_or_create(path, &id("k0")).expect("open");
                    for i in 0..20 {
                        source
                            .add(
                                &id(&format!("p{p}-{i}")),
                                &VaultKey::generate().expect("key"),
                            )
                            .expect("add");
                    }
                });
            }
        });
        let keys = FileKeySource::open_or_create(&path, &id("k0"))
            .and_then(|s| s.keys())
            .expect("keys");
        assert_eq!(keys.len(), 41);
        let leftovers = std::fs::read_dir(dir.path())
            .expect("list")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            })
            .count();
        assert_eq!(leftovers, 0, "no temporary file left behind");
    }

    #[test]
    fn two_processes_starting_at_once_create_one_first_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vault.keys");
        let firsts: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let path = &path;
                    scope.spawn(move || {
                        let source = FileKeySource::open_or_create(path, &id("k1")).expect("open");
                        let keys = source.keys().expect("keys");
                        assert_eq!(keys.len(), 1);
                        *keys[0].1.0
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert!(
            firsts.windows(2).all(|w| w[0] == w[1]),
            "one key for everyone"
        );
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_by_key() {
        let a = VaultKey::from_bytes(&[1; 32]).expect("32 bytes");
        let b = VaultKey::from_bytes(&[2; 32]).expect("32 bytes");
        let ring = Keyring::new(vec![(id("a"), a), (id("b"), b)]).expect("ring");
        let (ka, kb) = (
            ring.get(&id("a")).expect("a"),
            ring.get(&id("b")).expect("b"),
        );
        assert_ne!(*ka.seal, *ka.fingerprint);
        assert_ne!(*ka.seal, *kb.seal);
        assert_eq!(ring.current().id, id("b"), "the last key is current");
        assert_eq!(
            format!("{:?}", VaultKey::from_bytes(&[1; 32]).expect("key")),
            "VaultKey([REDACTED])"
        );
    }

    #[test]
    fn subkey_derivation_matches_an_independent_hmac() {
        // Python: hmac.new(bytes([1]*32), b"\0\0\0\x01shopsafe/vault/seal/v1\0\0\0\x01\0", sha256)
        let key = VaultKey::from_bytes(&[1; 32]).expect("32 bytes");
        let seal = key.derive(b"shopsafe/vault/seal/v1");
        assert_eq!(
            base16ct::lower::encode_string(seal.as_ref()),
            "348c35ee71cdbadee9c4bd76dbfcf196848f17d0d828ff73994058e7ebae705c"
        );
    }

    #[test]
    fn the_current_key_cannot_be_removed_and_ids_are_unique() {
        let mut ring = Keyring::new(vec![(
            id("a"),
            VaultKey::from_bytes(&[1; 32]).expect("key"),
        )])
        .expect("ring");
        assert!(matches!(ring.remove(&id("a")), Err(Error::ShredCurrentKey)));
        assert!(matches!(
            ring.push(id("a"), &VaultKey::from_bytes(&[3; 32]).expect("key")),
            Err(Error::DuplicateKeyId { .. })
        ));
        assert!(matches!(Keyring::new(vec![]), Err(Error::NoKeys)));
    }

    #[test]
    fn file_source_adds_and_destroys_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("vault.keys");
        let source = FileKeySource::open_or_create(&path, &id("k1")).expect("create");
        source
            .add(&id("k2"), &VaultKey::generate().expect("rng"))
            .expect("add");
        let ids: Vec<_> = source
            .keys()
            .expect("read")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(ids, [id("k1"), id("k2")]);
        source.destroy(&id("k1")).expect("destroy");
        assert_eq!(source.keys().expect("read").len(), 1);
        assert!(matches!(
            source.destroy(&id("k1")),
            Err(Error::UnknownKeyId { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn malformed_key_lines_are_typed_errors() {
        assert!(
            matches!(parse_key_lines("k1 AAAA"), Err(Error::InvalidKey)),
            "3 bytes"
        );
        assert!(matches!(parse_key_lines("k1"), Err(Error::InvalidKey)));
        assert!(matches!(
            parse_key_lines("K1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(Error::InvalidKeyId)
        ));
        assert_eq!(
            parse_key_lines("# comment\n\nk1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
                .expect("ok")
                .len(),
            1
        );
    }

    #[test]
    fn the_file_source_keeps_one_audit_key_through_rotations_and_shreds() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("vault.keys");
        let a = FileKeySource::open_or_create(&path, &id("k1")).expect("open");
        let b = FileKeySource::open_or_create(&path, &id("k1")).expect("second process");
        let first = a.audit_key().expect("created");
        assert_eq!(
            b.audit_key().expect("read").expose_secret(),
            first.expose_secret()
        );
        a.add(&id("k2"), &VaultKey::generate().expect("key"))
            .expect("rotate");
        a.destroy(&id("k1")).expect("shred");
        assert_eq!(
            a.audit_key().expect("read").expose_secret(),
            first.expose_secret()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let audit = dir.path().join("vault.keys.audit-key");
            let mode = std::fs::metadata(&audit)
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
            assert!(matches!(a.audit_key(), Err(Error::KeyFileTooOpen { .. })));
            std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
            std::fs::write(&audit, "not base64!").expect("write");
            assert!(matches!(a.audit_key(), Err(Error::InvalidKey)));
        }
        assert!(matches!(
            EnvKeySource::new("SHOPSAFE_TEST_NO_SUCH_VAR").audit_key(),
            Err(Error::NoAuditKey)
        ));
    }
}
