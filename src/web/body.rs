//! A JSON body whose rejection never quotes the request.

use axum::Json;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::answer::Answer;

/// A JSON body. One that does not parse gets [`Answer::InvalidBody`] with the rejection's
/// status (400, 413, 415 or 422) and nothing of the request in it: axum's own rejection
/// text quotes the offending value back ("invalid type: integer 12345678901"), which may
/// be a password, into the answer and whatever logs it.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<St: Send + Sync, T: DeserializeOwned> FromRequest<St> for Body<T> {
    type Rejection = Answer;

    async fn from_request(request: Request, state: &St) -> Result<Self, Answer> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(Answer::InvalidBody(rejection.status())),
        }
    }
}
