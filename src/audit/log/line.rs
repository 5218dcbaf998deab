//! The line format: one record a line, its fields tab-separated, its link last (the
//! SHA-256 of the previous line in 0.1, `k1:<seq>:<mac>` keyed).

use sha2::{Digest, Sha256};

use crate::audit::chain::{AuditKey, hex32};
use crate::audit::error::AuditError;
use crate::audit::record::AuditRecord;
use crate::kernel::Timestamp;

pub(super) fn clean(field: &str) -> String {
    field
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

pub(super) fn hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

/// A line's link field.
pub(super) enum LineLink {
    /// 0.1: the SHA-256 of the previous line.
    Plain([u8; 32]),
    /// Keyed: the record's sequence number and MAC.
    Keyed { seq: u64, mac: [u8; 32] },
}

pub(super) fn malformed() -> AuditError {
    AuditError::Corrupt {
        what: "audit log: malformed line",
    }
}

/// One complete line (its new line included), parsed.
pub(super) fn parse_line(line: &[u8]) -> Result<(AuditRecord, LineLink), AuditError> {
    let body = line.strip_suffix(b"\n").ok_or_else(malformed)?;
    let body = core::str::from_utf8(body).map_err(|_| AuditError::Corrupt {
        what: "audit log: not UTF-8",
    })?;
    let fields: Vec<&str> = body.split('\t').collect();
    let [at, token, purpose, caller, link] = fields[..] else {
        return Err(malformed());
    };
    let at = at.parse().map_err(|_| AuditError::Corrupt {
        what: "audit log: bad time",
    })?;
    let link = match link.strip_prefix("k1:") {
        Some(keyed) => {
            let (seq, mac) = keyed.split_once(':').ok_or_else(malformed)?;
            if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            LineLink::Keyed {
                seq: seq.parse().map_err(|_| malformed())?,
                mac: hex32(mac).ok_or_else(malformed)?,
            }
        }
        None => LineLink::Plain(hex32(link).ok_or(AuditError::Corrupt {
            what: "audit log: broken hash chain",
        })?),
    };
    let record = AuditRecord::from_stored(
        token.into(),
        purpose,
        caller.into(),
        Timestamp::from_millis(at),
    );
    Ok((record, link))
}

/// The line for record number `seq` after head `prev`, and the chain's head after it:
/// keyed when `key` is given.
pub(super) fn line_for(
    key: Option<&AuditKey>,
    entry: &AuditRecord,
    prev: &[u8; 32],
    seq: u64,
) -> (String, [u8; 32]) {
    let entry = AuditRecord::new(
        clean(&entry.token),
        clean(&entry.purpose),
        clean(&entry.caller),
        entry.at,
    )
    .with_outcome(entry.outcome)
    .with_kind(entry.kind.clone());
    let fields = format!(
        "{}\t{}\t{}\t{}",
        entry.at.as_millis(),
        entry.token,
        entry.stored_purpose(),
        entry.caller,
    );
    match key {
        Some(key) => {
            let mac = key.record_mac(prev, seq, &entry);
            let line = format!(
                "{fields}\tk1:{seq}:{}\n",
                base16ct::lower::encode_string(&mac)
            );
            (line, mac)
        }
        None => {
            let line = format!("{fields}\t{}\n", base16ct::lower::encode_string(prev));
            let head = hash(line.as_bytes());
            (line, head)
        }
    }
}
