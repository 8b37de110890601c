//! Reading the [`Viewer`] of a request: a valid session cookie or admin
//! bearer token is the admin; a wrong bearer token is refused (and counted
//! against the address, like every admin attempt); no credentials at all
//! is anyone.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::PageError;
use super::session::COOKIE;
use super::state::DashboardState;
use super::viewer::Viewer;
use crate::clock::unix_secs;
use crate::coordinator::http::rate_limit::ClientAddr;

/// The session cookie's value among the request's cookies.
fn session_cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

impl FromRequestParts<DashboardState> for Viewer {
    type Rejection = PageError;

    /// A valid session cookie or admin bearer token is the admin; a wrong
    /// bearer token is refused (and counted against the address, like
    /// every admin attempt); no credentials at all is anyone.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, PageError> {
        if session_cookie(parts).is_some_and(|value| state.sessions.valid(value, unix_secs())) {
            return Ok(Viewer::Admin);
        }
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let client = ClientAddr::from_request_parts(parts, state)
                .await
                .unwrap_or(ClientAddr(None));
            state.admin.check(&parts.headers, client)?;
            return Ok(Viewer::Admin);
        }
        Ok(Viewer::Anyone)
    }
}
