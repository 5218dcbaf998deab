//! The answer table, row by row: each row's status, code and headers, and the rows that
//! must look alike compared byte for byte.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::{Answer, accept_login};
use crate::password::{Error as PasswordError, Rejection};
use crate::persist::StoreError;
use crate::rotation::{Error, IncidentId, LoginDecision, ResetReason, SecurityStamp};

/// Status, every header, and the body of an answer.
type Rendered = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

fn render(answer: impl IntoResponse) -> Rendered {
    let response = answer.into_response();
    let status = response.status().as_u16();
    let mut headers: Vec<(String, Vec<u8>)> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    headers.sort();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = rt
        .block_on(axum::body::to_bytes(response.into_body(), 1 << 16))
        .unwrap()
        .to_vec();
    (status, headers, body)
}

fn login(result: Result<LoginDecision, Error>) -> Answer {
    accept_login(result).unwrap_err()
}

fn backend() -> StoreError {
    StoreError::Backend {
        operation: "test",
        source: "down".into(),
    }
}

#[test]
fn refused_logins_answer_alike_whatever_the_reason() {
    let stamp = SecurityStamp::generate().unwrap();
    let rows = [
        login(Ok(LoginDecision::Rejected)),
        login(Ok(LoginDecision::ResetRequired {
            reason: ResetReason::Incident(IncidentId(3)),
        })),
        login(Ok(LoginDecision::ResetRequired {
            reason: ResetReason::Flagged,
        })),
        login(Ok(LoginDecision::SecondSignalRequired {
            session_stamp: stamp.clone(),
        })),
        login(Err(Error::Password(PasswordError::PasswordTooLong {
            max_bytes: 1024,
        }))),
    ];
    let first = render(rows[0].clone());
    assert_eq!(first.0, 401);
    assert_eq!(first.2, br#"{"error":"invalid_credentials"}"#);
    for row in &rows {
        assert_eq!(render(row.clone()), first, "{row:?}");
    }
    // Only the ones whose customer must hear from us ask for the mail.
    let mails: Vec<bool> = rows
        .iter()
        .map(|r| matches!(r, Answer::Refused(why) if why.mail_reset()))
        .collect();
    assert_eq!(mails, [false, true, true, true, false]);
    // And an accepted login is the stamp, not an answer.
    let accepted = accept_login(Ok(LoginDecision::Accepted {
        session_stamp: stamp.clone(),
        rehashed: false,
    }));
    assert_eq!(accepted.ok(), Some(stamp));
}

fn header<'a>(rendered: &'a Rendered, name: &str) -> Option<&'a [u8]> {
    rendered
        .1
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

#[test]
fn every_row_of_the_table() {
    let overloaded = Error::Password(PasswordError::Overloaded {
        waited: Duration::from_secs(2),
    });
    // (answer, status, body, Retry-After)
    let rows: Vec<(Answer, u16, &str, Option<&str>)> = vec![
        (
            login(Ok(LoginDecision::Throttled {
                retry_after: Duration::from_millis(59_001),
            })),
            429,
            r#"{"error":"throttled"}"#,
            Some("60"),
        ),
        (
            Error::ResetThrottled {
                retry_after: Duration::from_millis(10),
            }
            .into(),
            429,
            r#"{"error":"throttled"}"#,
            Some("1"),
        ),
        (
            overloaded.into(),
            503,
            r#"{"error":"overloaded"}"#,
            Some("1"),
        ),
        (
            Error::RateLimiterUnavailable(backend()).into(),
            503,
            r#"{"error":"overloaded"}"#,
            Some("1"),
        ),
        (
            Error::Store(backend()).into(),
            503,
            r#"{"error":"overloaded"}"#,
            Some("1"),
        ),
        (
            Error::PasswordRejected(Rejection::BreachCheckUnavailable).into(),
            503,
            r#"{"error":"breach_check_unavailable"}"#,
            Some("5"),
        ),
        (
            Error::PasswordRejected(Rejection::Blocklisted).into(),
            400,
            "",
            None,
        ),
        (
            Error::Password(PasswordError::PasswordTooLong { max_bytes: 1 }).into(),
            400,
            r#"{"error":"password_too_long"}"#,
            None,
        ),
        (
            Error::TokenMalformed.into(),
            400,
            r#"{"error":"token_unknown"}"#,
            None,
        ),
        (
            Error::TokenUnknown.into(),
            400,
            r#"{"error":"token_unknown"}"#,
            None,
        ),
        (
            Error::TokenAlreadyUsed.into(),
            400,
            r#"{"error":"token_used"}"#,
            None,
        ),
        (
            Error::TokenExpired.into(),
            400,
            r#"{"error":"token_expired"}"#,
            None,
        ),
        (
            Error::TokenSuperseded.into(),
            400,
            r#"{"error":"token_superseded"}"#,
            None,
        ),
        (
            Error::Store(StoreError::AlreadyExists).into(),
            409,
            r#"{"error":"account_exists"}"#,
            None,
        ),
        (Answer::NoSession, 401, r#"{"error":"no_session"}"#, None),
        (
            Error::SessionMalformed.into(),
            401,
            r#"{"error":"no_session"}"#,
            None,
        ),
        (
            Answer::SessionExpired,
            401,
            r#"{"error":"session_expired"}"#,
            None,
        ),
        (Answer::CrossSite, 403, r#"{"error":"cross_site"}"#, None),
        (
            Answer::InvalidBody(StatusCode::UNPROCESSABLE_ENTITY),
            422,
            r#"{"error":"invalid_body"}"#,
            None,
        ),
        (
            crate::card::Error::LuhnMismatch.into(),
            400,
            r#"{"error":"card_invalid"}"#,
            None,
        ),
        (
            crate::card::Error::RevealRateExceeded.into(),
            429,
            r#"{"error":"throttled"}"#,
            Some("60"),
        ),
        (
            Error::ScopeNeedsList.into(),
            500,
            r#"{"error":"internal"}"#,
            None,
        ),
    ];
    for (answer, status, body, retry) in rows {
        let label = format!("{answer:?}");
        let r = render(answer);
        assert_eq!(r.0, status, "{label}");
        if !body.is_empty() {
            assert_eq!(String::from_utf8_lossy(&r.2), body, "{label}");
        }
        assert_eq!(
            header(&r, "retry-after"),
            retry.map(str::as_bytes),
            "{label}"
        );
        assert_eq!(
            header(&r, "content-type"),
            Some(&b"application/json"[..]),
            "{label}"
        );
    }
    // The policy's reason is text for the form, never the password.
    let r = render(Answer::from(Error::PasswordRejected(
        Rejection::Blocklisted,
    )));
    let v: serde_json::Value = serde_json::from_slice(&r.2).unwrap();
    assert_eq!(v["error"], "password_rejected");
    assert_eq!(v["reason"], Rejection::Blocklisted.to_string());
}

#[test]
fn an_internal_answer_carries_nothing_of_its_cause() {
    let e = Error::InvalidTemplate {
        reason: "secret-looking detail",
    };
    let r = render(Answer::from(e));
    assert_eq!(r.0, 500);
    assert!(!String::from_utf8_lossy(&r.2).contains("secret"));
}
