//! Vault keys, the audit key and the pepper wrapped by a KEK in a real PKCS#11 token:
//! SoftHSM2, initialised by `.ci/softhsm-start` (its folder in `SHOPSAFE_SOFTHSM_DIR`,
//! its `softhsm2.conf` in `SOFTHSM2_CONF`). Without them these tests say SKIPPED; with
//! `SHOPSAFE_REQUIRE_HSM` set (this project's `.ci/run` sets it) they fail instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

#[path = "support/servers.rs"]
mod servers;

use std::path::PathBuf;
use std::sync::Arc;

use servers::{server_env, unique};

use shopsafe::card::{
    EnvelopeKeySource, Error as CardError, Expiry, KekRewrap, KeySource, Pan, Pkcs11Wrapper,
    Purpose, Vault, VaultKeyId,
};
use shopsafe::password::{Hasher, KeyId, Params, Password, Pepper, PepperKeyring, Verification};
use shopsafe::store::sqlite::SqliteVault;
use shopsafe::store::{AuditLog, AuditRecord, AuditSink, Timestamp};

const TOKEN: &str = "shopsafe-test";
const PIN: &str = "1234";

/// The module's path, when a token is there to test against (`SOFTHSM2_CONF` names its
/// configuration: the library reads it when loaded).
fn hsm(test: &str) -> Option<PathBuf> {
    let how = "export SHOPSAFE_SOFTHSM_DIR=$(bash .ci/softhsm-start) SOFTHSM2_CONF=$SHOPSAFE_SOFTHSM_DIR/softhsm2.conf";
    let dir = server_env(test, "SHOPSAFE_SOFTHSM_DIR", "SHOPSAFE_REQUIRE_HSM", how)?;
    server_env(test, "SOFTHSM2_CONF", "SHOPSAFE_REQUIRE_HSM", how)?;
    Some(PathBuf::from(
        std::fs::read_to_string(PathBuf::from(dir).join("module"))
            .expect("module file")
            .trim(),
    ))
}

/// One test at a time on the token: the KEK test opens a session of its own beside the
/// crate's, and SoftHSM2 answered a concurrent `C_GenerateKey` with CKR_GENERAL_ERROR
/// (once in a CI run).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A KEK label no other test (or run) uses.
fn label(prefix: &str) -> String {
    unique(&format!("{prefix}-"))
}

fn id(s: &str) -> VaultKeyId {
    VaultKeyId::new(s).expect("id")
}

#[test]
fn a_vault_on_hsm_wrapped_keys_survives_a_kek_rotation_without_touching_a_card() {
    let _serial = serial();
    let Some(module) =
        hsm("a_vault_on_hsm_wrapped_keys_survives_a_kek_rotation_without_touching_a_card")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let keys_path = dir.path().join("vault.keys.wrapped");
    let (kek1, kek2) = (label("kek"), label("kek"));
    let hsm1 = Pkcs11Wrapper::open(&module, TOKEN, PIN, &kek1).expect("open the token");
    hsm1.generate_kek(&kek1).expect("a KEK inside the token");
    assert!(hsm1.generate_kek(&kek1).is_err(), "one key per label");

    let store = Arc::new(SqliteVault::open(dir.path().join("vault.db")).expect("vault db"));
    let source = EnvelopeKeySource::open_or_create(&keys_path, hsm1, &id("k1")).expect("keys");
    let audit = AuditLog::open_keyed(
        dir.path().join("audit.log"),
        source.audit_key().expect("audit key"),
    )
    .expect("audit log");
    let vault = Vault::new(Arc::clone(&store), Box::new(source), Box::new(audit)).expect("vault");
    let pan = Pan::parse("4111 1111 1111 1111").expect("pan");
    let expiry = Expiry::new(12, 2030).expect("expiry");
    let old_card = vault.tokenize(&pan, expiry).expect("tokenize under k1");
    vault
        .rotate(id("k2"))
        .expect("a new vault key, wrapped in the HSM");
    let new_card = vault
        .tokenize(&Pan::parse("5555 5555 5555 4444").expect("pan"), expiry)
        .expect("tokenize under k2");
    let sealed_before = std::fs::read(dir.path().join("vault.db")).expect("read db");
    drop(vault);

    // The KEK rotates: a new KEK in the token, every wrapped key moved to it, the old
    // KEK destroyed. No sealed card changes.
    let hsm2 = Pkcs11Wrapper::open(&module, TOKEN, PIN, &kek2).expect("second session");
    hsm2.generate_kek(&kek2).expect("new KEK");
    let source = EnvelopeKeySource::open_or_create(&keys_path, hsm2, &id("k1")).expect("keys");
    let rewrap: KekRewrap = source.rewrap().expect("rewrap");
    assert_eq!(
        (rewrap.rewrapped, rewrap.already),
        (4, 0),
        "k1, k2, the audit key and the pepper"
    );
    source
        .wrapper()
        .destroy_kek(&kek1)
        .expect("the old KEK goes");
    assert_eq!(
        std::fs::read(dir.path().join("vault.db")).expect("read db"),
        sealed_before,
        "the vault database was not touched"
    );
    let text = std::fs::read_to_string(&keys_path).expect("read");
    assert!(!text.contains(&kek1) && text.contains(&kek2), "{text}");

    let audit_key = source
        .audit_key()
        .expect("audit key, now under the new KEK");
    let audit_path = dir.path().join("audit.log");
    let vault = Vault::new(
        Arc::clone(&store),
        Box::new(source),
        Box::new(AuditLog::open_keyed(&audit_path, audit_key).expect("the same trail")),
    )
    .expect("vault after the KEK rotation");
    let grant = vault.grant(Purpose::Charge, "test");
    for card in [&old_card, &new_card] {
        assert!(
            vault.detokenize(&card.token, &grant).is_ok(),
            "cards sealed before still open"
        );
    }
}

#[test]
fn the_pepper_and_the_audit_key_come_from_the_token_and_wrong_secrets_are_refused() {
    let _serial = serial();
    let Some(module) =
        hsm("the_pepper_and_the_audit_key_come_from_the_token_and_wrong_secrets_are_refused")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let keys_path = dir.path().join("vault.keys.wrapped");
    let kek = label("kek");
    let wrapper = Pkcs11Wrapper::open(&module, TOKEN, PIN, &kek).expect("open");
    wrapper.generate_kek(&kek).expect("KEK");
    let source = EnvelopeKeySource::open_or_create(&keys_path, wrapper, &id("k1")).expect("keys");

    // A pepper ring for `password`, from what the token unwrapped.
    let (pepper_id, bytes) = source.peppers().expect("peppers").remove(0);
    let ring = PepperKeyring::new(
        KeyId::new(&pepper_id).expect("id"),
        Pepper::new(bytes.to_vec()).expect("pepper"),
    );
    let hasher = Hasher::builder()
        .params(Params::insecure_for_tests(64, 1, 1).expect("params"))
        .pepper(ring)
        .build()
        .expect("hasher");
    let hash = hasher
        .hash(&Password::new("correct horse battery staple"))
        .expect("hash");
    assert!(matches!(
        hasher.verify(&Password::new("correct horse battery staple"), &hash),
        Ok(Verification::Match { .. })
    ));

    // The audit key unwraps to the same key every time, and keys a trail.
    let path = dir.path().join("audit.log");
    let log = AuditLog::open_keyed(&path, source.audit_key().expect("key")).expect("log");
    log.record(&AuditRecord::new(
        "card_x".into(),
        "charge".into(),
        "svc".into(),
        Timestamp::now(),
    ))
    .expect("record");
    assert_eq!(
        AuditLog::verify_keyed(&path, &source.audit_key().expect("again"), &[])
            .expect("verifies")
            .records,
        1
    );

    // Another KEK of the same token cannot open these keys (nor can a copy of the file
    // without the token).
    let other = label("other");
    let wrong = Pkcs11Wrapper::open(&module, TOKEN, PIN, &other).expect("open");
    wrong.generate_kek(&other).expect("KEK");
    let text = std::fs::read_to_string(&keys_path).expect("read");
    std::fs::write(&keys_path, text.replace(&kek, &other)).expect("write");
    let r = source.keys();
    assert!(
        matches!(r, Err(CardError::UnwrapFailed { .. })),
        "{:?}",
        r.map(|k| k.len())
    );

    // A wrong PIN, a token that is not there.
    assert!(matches!(
        Pkcs11Wrapper::open(&module, TOKEN, "0000", &kek),
        Err(CardError::KeyWrapper(_))
    ));
    assert!(matches!(
        Pkcs11Wrapper::open(&module, "no-such-token", PIN, &kek),
        Err(CardError::KeyWrapper(_))
    ));
}

/// The PKCS#11 library, initialized once for the rest of the process and never
/// finalized (finalizing it would cut the crate's own sessions).
fn library(module: &std::path::Path) -> &'static cryptoki::context::Pkcs11 {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::error::{Error as CkError, RvError};
    static LIB: std::sync::OnceLock<Pkcs11> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        let lib = Pkcs11::new(module).expect("load the module");
        match lib.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("initialize: {e}"),
        }
        lib
    })
}

#[test]
fn the_key_encryption_key_never_leaves_the_token() {
    let _serial = serial();
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass};

    let Some(module) = hsm("the_key_encryption_key_never_leaves_the_token") else {
        return;
    };
    let kek = label("kept");
    let wrapper = Pkcs11Wrapper::open(&module, TOKEN, PIN, &kek).expect("open");
    wrapper.generate_kek(&kek).expect("KEK");

    // A session of our own on the same token, to read the KEK's attributes back.
    let lib = library(&module);
    let slot = lib
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| {
            lib.get_token_info(*s)
                .is_ok_and(|i| i.label().trim() == TOKEN)
        })
        .expect("the test token");
    let session = lib.open_rw_session(slot).expect("session");
    // No login of our own: the wrapper's holds for every session of the process (a
    // second one would make the crate's own PIN check refuse the next wrapper).
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(kek.as_bytes().to_vec()),
        ])
        .expect("find");
    assert_eq!(found.len(), 1, "one KEK of that label");
    let handle = found[0];
    let flags = session
        .get_attributes(
            handle,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::AlwaysSensitive,
            ],
        )
        .expect("attributes");
    for want in [
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::NeverExtractable(true),
        Attribute::AlwaysSensitive(true),
    ] {
        assert!(flags.contains(&want), "{want:?} not in {flags:?}");
    }
    // Its value cannot be read...
    let info = session
        .get_attribute_info(handle, &[AttributeType::Value])
        .expect("attribute info");
    assert!(
        matches!(info[..], [AttributeInfo::Sensitive]),
        "the KEK's value is readable: {info:?}"
    );
    // ...nor wrapped out under a key of the caller's choosing.
    let out = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Wrap(true),
                Attribute::Encrypt(true),
            ],
        )
        .expect("a session key to wrap with");
    assert!(
        session
            .wrap_key(&Mechanism::AesKeyWrap, out, handle)
            .is_err(),
        "the KEK was wrapped out of the token"
    );
    wrapper.destroy_kek(&kek).expect("destroy");
}
