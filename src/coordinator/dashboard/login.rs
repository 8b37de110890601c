//! Signing the admin in and out of the dashboard: a form that takes the
//! admin token (checked and throttled like every admin request) and sets
//! the session cookie, then returns to the page the admin came from (only
//! a path on this site: no open redirect).

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::PageError;
use super::layout;
use super::session;
use super::state::DashboardState;
use crate::clock::unix_secs;
use crate::coordinator::http::admin::AdminError;
use crate::coordinator::http::rate_limit::ClientAddr;

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    pub next: String,
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

impl std::fmt::Debug for SignIn {
    // By hand: the token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// `next` if it is a path on this site, else the overview.
pub fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local {
        next
    } else {
        "/"
    }
}

fn form(next: &str, problem: Option<&str>) -> Markup {
    layout::bare(
        "Admin sign-in",
        html! {
            h1 { "Admin sign-in" }
            p.muted { "The admin token is in the coordinator's state directory (admin-token) or its GARAGE_ADMIN_TOKEN." }
            @if let Some(problem) = problem { p.error #login-error { (problem) } }
            form.login method="post" action="/login" {
                input type="hidden" name="next" value=(safe_next(next));
                label { "Admin token " input #token type="password" name="token" autocomplete="current-password" required; }
                button.primary type="submit" { "Sign in" }
            }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

pub async fn show(Query(query): Query<NextQuery>) -> Response {
    layout::respond(form(&query.next, None))
}

pub async fn sign_in(
    State(state): State<DashboardState>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(sign_in): Form<SignIn>,
) -> Result<Response, PageError> {
    match state.admin.check_token(Some(&sign_in.token), client) {
        Ok(()) => {
            let secure = headers
                .get("x-forwarded-proto")
                .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
            let cookie = session::sign_in_cookie(&state.sessions.issue(unix_secs()), secure);
            let location = HeaderValue::from_str(safe_next(&sign_in.next))
                .unwrap_or(HeaderValue::from_static("/"));
            tracing::info!("the admin signed in to the dashboard");
            Ok((
                StatusCode::SEE_OTHER,
                [
                    (
                        header::SET_COOKIE,
                        HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("")),
                    ),
                    (header::LOCATION, location),
                ],
            )
                .into_response())
        }
        Err(AdminError::BadToken) => {
            let mut response =
                layout::respond(form(&sign_in.next, Some("That is not the admin token.")));
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(response)
        }
        Err(throttled) => Err(throttled.into()),
    }
}

pub async fn sign_out() -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                HeaderValue::from_str(&session::sign_out_cookie())
                    .unwrap_or(HeaderValue::from_static("")),
            ),
            (header::LOCATION, HeaderValue::from_static("/")),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_returned_to() {
        assert_eq!(safe_next("/nodes/abc?x=1"), "/nodes/abc?x=1");
        for outside in [
            "",
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "nodes",
            "/a\nb",
        ] {
            assert_eq!(safe_next(outside), "/", "{outside:?}");
        }
    }
}
