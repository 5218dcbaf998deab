//! The crypt-family digests, each by its format's own algorithm: MD5-crypt, SHA-crypt
//! and bcrypt (plain and WordPress's pre-hashed form).

use md5::Md5;
use sha2::Digest;
use zeroize::Zeroizing;

/// MD5-crypt (Poul-Henning Kamp's, FreeBSD 1994; `$1$`), as its 22-character hash text.
pub(super) fn md5_crypt(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let alt = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(b"$1$")
        .chain_update(salt);
    for chunk in password.chunks(16) {
        ctx.update(&alt[..chunk.len()]);
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize();
    }
    // The output's byte order (as `(fin[0] << 16) | (fin[6] << 8) | fin[12]`, … in the
    // C code), then crypt's little-endian base64, the one SHA-crypt uses.
    const ORDER: [usize; 16] = [12, 6, 0, 13, 7, 1, 14, 8, 2, 15, 9, 3, 5, 10, 4, 11];
    let ordered: Zeroizing<Vec<u8>> = Zeroizing::new(ORDER.iter().map(|&i| fin[i]).collect());
    <base64ct::Base64ShaCrypt as base64ct::Encoding>::encode_string(&ordered).into_bytes()
}

/// SHA-crypt (Ulrich Drepper's; `$5$`, `$6$`) via RustCrypto's `sha-crypt`, as its hash
/// text: the output bytes in the specification's order, in crypt's base64.
pub(super) fn sha_crypt(password: &[u8], sha512: bool, rounds: u32, salt: &[u8]) -> Vec<u8> {
    use base64ct::{Base64ShaCrypt, Encoding as _};
    // The specification's byte orders (as `sha-crypt` applies them in its MCF encoder).
    const ORDER_256: [usize; 32] = [
        20, 10, 0, 11, 1, 21, 2, 22, 12, 23, 13, 3, 14, 4, 24, 5, 25, 15, 26, 16, 6, 17, 7, 27, 8,
        28, 18, 29, 19, 9, 30, 31,
    ];
    const ORDER_512: [usize; 64] = [
        42, 21, 0, 1, 43, 22, 23, 2, 44, 45, 24, 3, 4, 46, 25, 26, 5, 47, 48, 27, 6, 7, 49, 28, 29,
        8, 50, 51, 30, 9, 10, 52, 31, 32, 11, 53, 54, 33, 12, 13, 55, 34, 35, 14, 56, 57, 36, 15,
        16, 58, 37, 38, 17, 59, 60, 39, 18, 19, 61, 40, 41, 20, 62, 63,
    ];
    // Rounds were checked when the scheme was built; if they were refused here, an empty
    // digest never matches a stored one.
    let Ok(params) = sha_crypt::Params::new(rounds) else {
        return Vec::new();
    };
    let ordered: Zeroizing<Vec<u8>> = Zeroizing::new(if sha512 {
        let raw = Zeroizing::new(sha_crypt::sha512_crypt(password, salt, params));
        ORDER_512.iter().map(|&i| raw[i]).collect()
    } else {
        let raw = Zeroizing::new(sha_crypt::sha256_crypt(password, salt, params));
        ORDER_256.iter().map(|&i| raw[i]).collect()
    });
    Base64ShaCrypt::encode_string(&ordered).into_bytes()
}

/// The 31 characters bcrypt encodes its hash as, for these inputs. WordPress 6.8 first
/// replaces the password by base64(HMAC-SHA-384(key "wp-sha384", password)).
pub(super) fn bcrypt_digest(password: &[u8], cost: u8, salt: &[u8], wordpress: bool) -> Vec<u8> {
    use base64ct::{Base64, Encoding as _};
    use hmac::{KeyInit, Mac as _};
    let pre;
    let input = if wordpress {
        #[allow(clippy::expect_used, reason = "an invariant of HMAC, not of the input")]
        let mut mac = <hmac::Hmac<sha2::Sha384> as KeyInit>::new_from_slice(b"wp-sha384")
            .expect("HMAC accepts keys of every length");
        mac.update(password);
        pre = Zeroizing::new(Base64::encode_string(&mac.finalize().into_bytes()));
        pre.as_bytes()
    } else {
        password
    };
    let mut salt16 = [0u8; 16];
    salt16.copy_from_slice(salt);
    // Cost and salt were checked when the scheme was built, so this does not fail; if it
    // did, an empty digest never matches a stored one.
    bcrypt::hash_with_salt(input, u32::from(cost), salt16).map_or_else(
        |_| Vec::new(),
        |parts| {
            let text = Zeroizing::new(parts.format_for_version(bcrypt::Version::TwoY));
            text.as_bytes()[29..].to_vec()
        },
    )
}
