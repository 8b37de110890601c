//! A page that failed: the API's error (status, message, Retry-After)
//! rendered as an HTML page instead of JSON; ids in paths that name nothing.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::html;

use uuid::Uuid;

use super::layout;
use crate::coordinator::http::error::ApiError;

/// Why a page could not be shown.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl<E> From<E> for PageError
where
    ApiError: From<E>,
{
    fn from(err: E) -> Self {
        PageError(ApiError::from(err))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let ApiError {
            status,
            message,
            retry_after_secs,
            ..
        } = self.0;
        let title = status.canonical_reason().unwrap_or("Error");
        let body = html! {
            h1 { (status.as_u16()) " " (title) }
            p.error { (message) }
            p { a href="/" { "Back to the overview" } }
        };
        let mut response = layout::respond(layout::bare(title, body));
        *response.status_mut() = status;
        if let Some(secs) = retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The id in a page's path; a malformed one names nothing (404).
pub fn path_id(text: &str, what: &str) -> Result<Uuid, PageError> {
    text.parse()
        .map_err(|_| PageError(ApiError::not_found(format!("there is no {what} {text:?}"))))
}
