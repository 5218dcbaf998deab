//! Sessions: server-side, from `shopsafe::rotation::Sessions` in the customer database.
//! The client holds an opaque `sess_…` token (only its digest is stored); a session ends
//! when the customer ends it, on a reset (the stamp changes), on an erasure, and on an
//! incident, on every server at once.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shopsafe::aio::blocking;
use shopsafe::card::VaultStore;
use shopsafe::kernel::AccountId;
use shopsafe::rotation::{SessionId, SessionRecord, SessionToken};

use crate::answers::{auth_error, error};
use crate::app::{App, CustomerStores, Shared};

/// The session a request carries (`Authorization: Bearer sess_…`), if it is live now.
pub(crate) async fn session<S: CustomerStores, V>(
    app: &App<S, V>,
    headers: &HeaderMap,
) -> Result<SessionRecord, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| SessionToken::parse(t).ok());
    let Some(token) = token else {
        return Err(error(StatusCode::UNAUTHORIZED, "no_session"));
    };
    let sessions = Arc::clone(&app.sessions);
    match blocking(move || sessions.validate(&token)).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(error(StatusCode::UNAUTHORIZED, "session_expired")),
        Err(e) => Err(auth_error(&e)),
    }
}

/// A customer with a valid session (401 otherwise), as a handler argument.
pub(crate) struct Customer(pub(crate) AccountId, pub(crate) SessionId);

impl<S: CustomerStores, V: Send + Sync + 'static> FromRequestParts<Arc<App<S, V>>> for Customer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S, V>>) -> Result<Self, Response> {
        session(app, &parts.headers)
            .await
            .map(|r| Customer(r.account, r.id))
    }
}

/// `GET /me/sessions`: where the customer is signed in (ids, never tokens).
pub(crate) async fn my_sessions<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, current): Customer,
) -> Response {
    let sessions = Arc::clone(&app.sessions);
    match blocking(move || sessions.list(&account)).await {
        Ok(list) => {
            let list: Vec<_> = list
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id.to_string(),
                        "created_at": r.created_at.as_millis(),
                        "last_seen": r.last_seen.as_millis(),
                        "expires_at": r.expires_at.as_millis(),
                        "source": r.source,
                        "agent": r.agent,
                        "current": r.id == current,
                    })
                })
                .collect();
            Json(json!({ "sessions": list })).into_response()
        }
        Err(e) => auth_error(&e),
    }
}

/// `DELETE /me/sessions/{id}`: ends one of the customer's sessions (204; 404 for an id
/// that is not one of theirs).
pub(crate) async fn end_my_session<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, _): Customer,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = SessionId::parse(&id) else {
        return error(StatusCode::NOT_FOUND, "no_such_session");
    };
    let sessions = Arc::clone(&app.sessions);
    match blocking(move || sessions.end(&account, &id)).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "no_such_session"),
        Err(e) => auth_error(&e),
    }
}

/// `POST /me/sessions/end-all`: signs the customer out everywhere, this session too.
pub(crate) async fn end_all_my_sessions<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, _): Customer,
) -> Response {
    let sessions = Arc::clone(&app.sessions);
    match blocking(move || sessions.end_all_of(&account)).await {
        Ok(n) => Json(json!({ "ended": n })).into_response(),
        Err(e) => auth_error(&e),
    }
}
