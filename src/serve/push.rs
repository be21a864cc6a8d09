//! `POST /-/sync/<mirror>`: a push from an upstream mirror (see [`crate::push`]).
//!
//! `/-/` is the namespace of operations that change something; it is the only place a `POST`
//! gets past the guard, and `-` can't be a mirror name. The steps:
//!
//! 1. no [`SyncPush`] (plain `debsync serve`: it has no scheduler) or no token configured:
//!    `404`, as if the endpoint did not exist;
//! 2. no `Authorization: Bearer …`: `401`; a token that is not ours: `403`;
//! 3. no such mirror: `404`;
//! 4. the scheduler's answer: `202` (a sync starts now) or `409` (one is running; it will
//!    run once more when it ends).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{App, HttpError};
use crate::push::Token;

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// No run was going on: one starts now.
    Started,
    /// A run is going on: it will loop once more when it ends (pushes merge).
    Queued,
}

/// The receiving end of pushes: `debsync daemon`'s scheduler.
pub trait SyncPush: Send + Sync {
    /// The token a push must carry; `None`: pushes are off.
    fn token(&self) -> Option<Token>;
    /// Triggers a sync of `mirror`; `None` when there is no such mirror.
    fn push(&self, mirror: &str) -> Option<Pushed>;
}

/// The handler (steps 1–4 of the module doc).
pub(super) async fn sync(
    State(app): State<Arc<App>>,
    Path(mirror): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(target) = app.push.as_ref() else {
        return HttpError::NotFound.into_response();
    };
    let Some(token) = target.token() else {
        return HttpError::NotFound.into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()));
    let Some(presented) = presented else {
        return HttpError::Unauthorized.into_response();
    };
    if !token.matches(presented) {
        tracing::warn!("push for {mirror:?} refused: wrong token");
        return HttpError::Forbidden.into_response();
    }
    match target.push(&mirror) {
        None => HttpError::NotFound.into_response(),
        Some(Pushed::Started) => {
            tracing::info!("{mirror}: push received: syncing now");
            (StatusCode::ACCEPTED, "sync started\n").into_response()
        }
        Some(Pushed::Queued) => {
            tracing::info!("{mirror}: push received during a run: it will run once more");
            (
                StatusCode::CONFLICT,
                "a sync is running; it will run once more when it ends\n",
            )
                .into_response()
        }
    }
}

/// The credentials of `Bearer <token>` (scheme case-insensitive, RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_credentials() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        for bad in [&b"Basic abc"[..], b"Bearer", b"Bearer ", b"abc", b""] {
            assert_eq!(bearer(bad), None, "{bad:?}");
        }
    }
}
