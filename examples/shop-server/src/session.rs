//! Sessions: server-side, from the library's kit (`shopsafe::web`) over the customer
//! database. The client holds an opaque `sess_…` token (a bearer header, or the kit's
//! cookie); a session ends when the customer ends it, on a reset (the stamp changes), on
//! an erasure, and on an incident, on every server at once.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shopsafe::card::VaultStore;
use shopsafe::kernel::AccountId;
use shopsafe::rotation::SessionId;
use shopsafe::web::{Answer, CurrentSession};

use crate::answers::auth_error;
use crate::app::{App, CustomerStores, Shared};

/// A customer with a live session (401 otherwise; 403 for a cookie request from another
/// site), as a handler argument.
pub(crate) struct Customer(pub(crate) AccountId, pub(crate) SessionId);

impl<S: CustomerStores, V: Send + Sync + 'static> FromRequestParts<Arc<App<S, V>>> for Customer {
    type Rejection = Answer;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S, V>>) -> Result<Self, Answer> {
        let s = CurrentSession::from_headers(&app.kit, &parts.method, &parts.headers).await?;
        Ok(Customer(s.record.account, s.record.id))
    }
}

/// `GET /me/sessions`: where the customer is signed in (ids, never tokens).
pub(crate) async fn my_sessions<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, current): Customer,
) -> Response {
    match app.kit.sessions().list(&account).await {
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
        Err(e) => auth_error(e),
    }
}

/// `DELETE /me/sessions/{id}`: ends one of the customer's sessions (204; 404 for an id
/// that is not one of theirs).
pub(crate) async fn end_my_session<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, _): Customer,
    Path(id): Path<String>,
) -> Response {
    let none = Answer::NotFound("no_such_session");
    let Some(id) = SessionId::parse(&id) else {
        return none.into_response();
    };
    match app.kit.sessions().end(&account, &id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => none.into_response(),
        Err(e) => auth_error(e),
    }
}

/// `POST /me/sessions/end-all`: signs the customer out everywhere, this session too.
pub(crate) async fn end_all_my_sessions<S: CustomerStores, V: VaultStore + 'static>(
    State(app): Shared<S, V>,
    Customer(account, _): Customer,
) -> Response {
    match app.kit.sessions().end_all_of(&account).await {
        Ok(n) => Json(json!({ "ended": n })).into_response(),
        Err(e) => auth_error(e),
    }
}
