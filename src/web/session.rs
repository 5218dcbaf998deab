//! The session a request carries (a bearer header or a cookie, with the cross-site check
//! for cookies), the answer that hands a new one out, and the one that clears it.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use super::answer::Answer;
use super::kit::{CSRF_HEADER, Kit};
use super::source::client_source;
use crate::kernel::{AccountId, hmac_sha256};
use crate::rotation::{SessionId, SessionRecord, SessionToken, coarse_agent};

/// How the request carried its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Carrier {
    /// `Authorization: Bearer sess_…` (a browser never adds it by itself: no cross-site
    /// check needed).
    Bearer,
    /// The session cookie (passed the cross-site check if the method changes state).
    Cookie,
}

/// The live session of a request, as a handler argument: 401 `no_session` without one,
/// 401 `session_expired` for one that is not live, 403 `cross_site` for a cookie request
/// that changes state from another site. The token is kept for a sign-out or a rotation
/// and never printed; `Debug` shows the session's id and carrier only (the record holds
/// the customer's source and device).
pub struct CurrentSession {
    /// The session's record (its id, account, source, agent and times).
    pub record: SessionRecord,
    /// The token it came with.
    pub token: SessionToken,
    /// How it came.
    pub carrier: Carrier,
}

impl core::fmt::Debug for CurrentSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CurrentSession")
            .field("id", &self.record.id)
            .field("carrier", &self.carrier)
            .finish_non_exhaustive()
    }
}

impl CurrentSession {
    /// The session's account.
    #[must_use]
    pub fn account(&self) -> &AccountId {
        &self.record.account
    }

    /// The session's id (the one the customer's list shows).
    #[must_use]
    pub fn id(&self) -> &SessionId {
        &self.record.id
    }
}

/// The CSRF token of a session: HMAC-SHA-256 of a fixed label under the session's token,
/// in base64url. A page of the shop gets it with the session ([`SessionIssued`]) and
/// sends it in `X-CSRF-Token`; a page of another site cannot know it.
#[must_use]
pub fn csrf_token(session: &SessionToken) -> String {
    let mac = hmac_sha256(
        session.expose_secret().as_bytes(),
        &[b"shopsafe web csrf v1"],
    );
    Base64UrlUnpadded::encode_string(&mac)
}

/// Whether a state-changing request carried by cookie comes from the shop: its CSRF
/// token, or else `Sec-Fetch-Site` (`same-origin`, or `none` for what the user did
/// themselves) and `Origin` (exactly the kit's origin) where the browser sent them; a
/// request with neither and no token is refused.
fn same_site(headers: &HeaderMap, origin: &str, token: &SessionToken) -> bool {
    if let Some(given) = headers.get(CSRF_HEADER) {
        return bool::from(given.as_bytes().ct_eq(csrf_token(token).as_bytes()));
    }
    let site = headers.get("sec-fetch-site").map(HeaderValue::as_bytes);
    let from = headers.get(header::ORIGIN).map(HeaderValue::as_bytes);
    if site.is_none() && from.is_none() {
        return false;
    }
    site.is_none_or(|s| s == b"same-origin" || s == b"none")
        && from.is_none_or(|o| o == origin.as_bytes())
}

/// The value of cookie `name` in the request's `Cookie` headers; none when the name comes
/// twice (a cookie planted beside ours by a sibling domain is not chosen between: the
/// request has no session). Other cookies' bytes do not matter.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            (&pair[..eq] == name.as_bytes()).then(|| &pair[eq + 1..])
        });
    let value = found.next()?;
    if found.next().is_some() {
        return None;
    }
    std::str::from_utf8(value).ok().map(|v| v.trim_matches('"'))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl CurrentSession {
    /// The session of a request's method and headers, checked as the extractor checks it.
    ///
    /// # Errors
    /// [`Answer::NoSession`], [`Answer::SessionExpired`], [`Answer::CrossSite`], or the
    /// store's row of the answer table.
    pub async fn from_headers(
        kit: &Kit,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Self, Answer> {
        let (text, carrier) = match bearer(headers) {
            Some(t) => (t, Carrier::Bearer),
            None => match cookie(headers, kit.cookie_name()) {
                Some(t) => (t, Carrier::Cookie),
                None => return Err(Answer::NoSession),
            },
        };
        let token = SessionToken::parse(text).map_err(|_| Answer::NoSession)?;
        if carrier == Carrier::Cookie
            && changes_state(method)
            && !same_site(headers, kit.origin(), &token)
        {
            return Err(Answer::CrossSite);
        }
        match kit.sessions().validate(&token).await? {
            Some(record) => Ok(Self {
                record,
                token,
                carrier,
            }),
            None => Err(Answer::SessionExpired),
        }
    }
}

impl<St: Send + Sync> FromRequestParts<St> for CurrentSession
where
    Kit: FromRef<St>,
{
    type Rejection = Answer;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Answer> {
        let kit = Kit::from_ref(state);
        Self::from_headers(&kit, &parts.method, &parts.headers).await
    }
}

/// The client's source: its address, or behind a trusted proxy the address the proxy
/// saw ([`client_source`]). Needs the peer address (`ConnectInfo<SocketAddr>`, as
/// `into_make_service_with_connect_info` adds it); without it the answer is 500.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSource(pub String);

impl<St: Send + Sync> FromRequestParts<St> for ClientSource
where
    Kit: FromRef<St>,
{
    type Rejection = Answer;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Answer> {
        Self::of(&Kit::from_ref(state), parts)
    }
}

impl ClientSource {
    /// The source of a request's parts, as the extractor finds it (for a service whose
    /// state cannot give a `FromRef` to its kit).
    ///
    /// # Errors
    /// [`Answer::Internal`] without the peer address.
    pub fn of(kit: &Kit, parts: &Parts) -> Result<Self, Answer> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(Answer::internal("client source", &"no peer address"));
        };
        Ok(Self(client_source(
            *peer,
            &parts.headers,
            kit.trusted_proxies(),
        )))
    }
}

/// The client's user agent, coarse ("Firefox on Linux", [`coarse_agent`]): what a
/// session keeps for the customer's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAgent(pub String);

impl<St: Send + Sync> FromRequestParts<St> for ClientAgent {
    type Rejection = core::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(Self(coarse_agent(ua)))
    }
}

/// A new session for the client: 200 and, for a bearer client, `{"session": token}`;
/// for a browser, the cookie (`Secure; HttpOnly; SameSite=Lax; Path=/`, for the policy's
/// absolute lifetime) and `{"csrf": …}` in the body (the token itself never reaches
/// script).
#[derive(Debug)]
pub struct SessionIssued {
    token: SessionToken,
    cookie: Option<(String, u64)>,
}

impl SessionIssued {
    /// For a client that sends `Authorization: Bearer`.
    #[must_use]
    pub fn bearer(token: SessionToken) -> Self {
        Self {
            token,
            cookie: None,
        }
    }

    /// For a browser: the kit's cookie.
    #[must_use]
    pub fn cookie(kit: &Kit, token: SessionToken) -> Self {
        let max_age = kit.sessions().sync().policy().absolute.as_secs();
        Self {
            token,
            cookie: Some((kit.cookie_name().to_owned(), max_age)),
        }
    }
}

#[derive(Serialize)]
struct Issued<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf: Option<String>,
}

impl IntoResponse for SessionIssued {
    fn into_response(self) -> Response {
        let Some((name, max_age)) = &self.cookie else {
            let body = Issued {
                session: Some(self.token.expose_secret()),
                csrf: None,
            };
            return no_store((StatusCode::OK, Json(body)).into_response());
        };
        let body = Issued {
            session: None,
            csrf: Some(csrf_token(&self.token)),
        };
        let mut response = (StatusCode::OK, Json(body)).into_response();
        let set = format!(
            "{name}={}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax",
            self.token.expose_secret()
        );
        match HeaderValue::from_str(&set) {
            Ok(v) => {
                response.headers_mut().insert(header::SET_COOKIE, v);
                no_store(response)
            }
            Err(_) => Answer::Internal.into_response(),
        }
    }
}

/// An answer that carries a secret (a token, a cookie) is kept by no cache.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A sign-out: 204 and, for a cookie client, the cookie cleared.
#[derive(Debug)]
pub struct SignedOut {
    cookie: Option<String>,
}

impl SignedOut {
    /// The answer for `session`'s sign-out.
    #[must_use]
    pub fn of(kit: &Kit, session: &CurrentSession) -> Self {
        Self {
            cookie: (session.carrier == Carrier::Cookie).then(|| kit.cookie_name().to_owned()),
        }
    }
}

impl IntoResponse for SignedOut {
    fn into_response(self) -> Response {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Some(name) = self.cookie {
            let clear = format!("{name}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax");
            if let Ok(v) = HeaderValue::from_str(&clear) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    const ORIGIN: &str = "https://shop.example";

    fn token() -> SessionToken {
        SessionToken::generate().unwrap()
    }

    #[test]
    fn a_cookie_request_from_another_site_is_refused() {
        let t = token();
        let ok = |pairs: &[(&'static str, &str)]| same_site(&headers(pairs), ORIGIN, &t);
        assert!(ok(&[("origin", ORIGIN)]));
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        assert!(ok(&[("sec-fetch-site", "same-origin"), ("origin", ORIGIN)]));
        assert!(ok(&[("sec-fetch-site", "none")]));
        assert!(!ok(&[("origin", "https://evil.example")]));
        assert!(!ok(&[("origin", "https://shop.example.evil.example")]));
        assert!(!ok(&[("origin", "null")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[("sec-fetch-site", "same-site")]));
        // A browser that says same-origin but an origin that is not the shop's.
        assert!(!ok(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://evil.example")
        ]));
        // Neither header: only the CSRF token lets it through.
        assert!(!ok(&[]));
        assert!(ok(&[("x-csrf-token", &csrf_token(&t))]));
        assert!(!ok(&[("x-csrf-token", &csrf_token(&token()))]));
        // A wrong token is refused even with a good origin: the token, when sent, decides.
        assert!(!ok(&[("x-csrf-token", "x"), ("origin", ORIGIN)]));
    }

    #[test]
    fn the_cookie_is_found_by_its_exact_name() {
        let h = headers(&[("cookie", "a=1; __Host-session=sess_x; b=2")]);
        assert_eq!(cookie(&h, "__Host-session"), Some("sess_x"));
        assert_eq!(cookie(&h, "session"), None);
        let h = headers(&[("cookie", "x-session=evil"), ("cookie", "session=\"v\"")]);
        assert_eq!(cookie(&h, "session"), Some("v"));
        // Twice (one planted beside ours): neither.
        let h = headers(&[("cookie", "session=mine; session=planted")]);
        assert_eq!(cookie(&h, "session"), None);
        // Another cookie's bytes that are not text do not hide ours.
        let mut h = HeaderMap::new();
        h.append(
            "cookie",
            HeaderValue::from_bytes(b"junk=\xff; session=v").unwrap(),
        );
        assert_eq!(cookie(&h, "session"), Some("v"));
    }

    #[test]
    fn only_state_changing_methods_are_checked() {
        assert!(!changes_state(&Method::GET));
        assert!(!changes_state(&Method::HEAD));
        assert!(changes_state(&Method::POST));
        assert!(changes_state(&Method::DELETE));
        assert!(changes_state(&Method::PATCH));
    }
}
