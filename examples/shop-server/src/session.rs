//! Sessions: `v1.<account hex>.<stamp hex>.<issued ms>.<HMAC-SHA-256 hex>` under a key in
//! the data folder. Stateless, so any server with the key checks it; it lasts
//! [`SESSION_TTL_MS`], and `validate_session` ends it sooner once the password changes
//! or an incident expires the credential.

use std::io::Write as _;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use shopsafe::kernel::{AccountId, Timestamp};
use shopsafe::rotation::SecurityStamp;
use subtle::ConstantTimeEq as _;

use crate::answers::{auth_error, error};
use crate::app::{App, CustomerStores};

pub(crate) const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

pub(crate) fn session_mac(key: &[u8; 32], account: &str, stamp: &str, issued: &str) -> [u8; 32] {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key size");
    for part in [
        b"shop_server session v1".as_slice(),
        account.as_bytes(),
        stamp.as_bytes(),
        issued.as_bytes(),
    ] {
        mac.update(part);
        mac.update(b"\0");
    }
    mac.finalize().into_bytes().into()
}

pub(crate) fn new_session(key: &[u8; 32], account: &AccountId, stamp: &SecurityStamp) -> String {
    let account = base16ct::lower::encode_string(account.as_str().as_bytes());
    let stamp = base16ct::lower::encode_string(stamp.as_bytes());
    let issued = Timestamp::now().as_millis().to_string();
    let mac = base16ct::lower::encode_string(&session_mac(key, &account, &stamp, &issued));
    format!("v1.{account}.{stamp}.{issued}.{mac}")
}

pub(crate) fn parse_session(
    key: &[u8; 32],
    headers: &HeaderMap,
) -> Option<(AccountId, SecurityStamp)> {
    let text = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let parts: Vec<&str> = text.split('.').collect();
    let [v, account, stamp, issued, mac] = parts[..] else {
        return None;
    };
    // One session, one string: the MAC is compared as the lower-case hex it was issued
    // in, so an upper-cased copy is not a second token for the same session.
    let expected = base16ct::lower::encode_string(&session_mac(key, account, stamp, issued));
    if v != "v1" || !bool::from(mac.as_bytes().ct_eq(expected.as_bytes())) {
        return None;
    }
    let age = Timestamp::now().as_millis() - issued.parse::<i64>().ok()?;
    if !(0..SESSION_TTL_MS).contains(&age) {
        return None;
    }
    let account = String::from_utf8(base16ct::lower::decode_vec(account).ok()?).ok()?;
    let stamp: [u8; 16] = base16ct::lower::decode_vec(stamp).ok()?.try_into().ok()?;
    Some((
        AccountId::new(&account).ok()?,
        SecurityStamp::from_bytes(stamp),
    ))
}

pub(crate) fn session_key(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    if let Ok(bytes) = std::fs::read(path) {
        return bytes
            .try_into()
            .map_err(|_| std::io::Error::other("session key file is not 32 bytes"));
    }
    // 32 random bytes from the OS generator (two security stamps' worth).
    let mut key = [0u8; 32];
    for half in key.chunks_mut(16) {
        let stamp = SecurityStamp::generate().map_err(std::io::Error::other)?;
        half.copy_from_slice(stamp.as_bytes());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(&key)?;
    Ok(key)
}

/// The account of a request's session, if the session is valid now.
pub(crate) async fn session<S: CustomerStores, V>(
    app: &App<S, V>,
    headers: &HeaderMap,
) -> Result<AccountId, Response> {
    let Some((account, stamp)) = parse_session(&app.session_key, headers) else {
        return Err(error(StatusCode::UNAUTHORIZED, "no_session"));
    };
    match app.auth.validate_session(account.clone(), stamp).await {
        Ok(true) => Ok(account),
        Ok(false) => Err(error(StatusCode::UNAUTHORIZED, "session_expired")),
        Err(e) => Err(auth_error(&e)),
    }
}

/// A customer with a valid session (401 otherwise), as a handler argument.
pub(crate) struct Customer(pub(crate) AccountId);

impl<S: CustomerStores, V: Send + Sync + 'static> FromRequestParts<Arc<App<S, V>>> for Customer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S, V>>) -> Result<Self, Response> {
        session(app, &parts.headers).await.map(Customer)
    }
}
