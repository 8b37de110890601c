//! The page shell every dashboard page shares (head, navigation, the
//! sign-in state, the live-update source) and the headers every page is
//! sent with: a Content-Security-Policy that allows only the dashboard's
//! own embedded script and style, no framing, no caching.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::assets;
use super::viewer::Viewer;

/// The sections of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Nodes,
    Markets,
    Jobs,
    Regions,
    Ledger,
    Governance,
}

const SECTIONS: [(Section, &str, &str); 7] = [
    (Section::Overview, "/", "Overview"),
    (Section::Nodes, "/nodes", "Nodes"),
    (Section::Markets, "/markets", "Markets"),
    (Section::Jobs, "/jobs", "Jobs"),
    (Section::Regions, "/regions", "Regions"),
    (Section::Ledger, "/ledger", "Ledger"),
    (Section::Governance, "/governance", "Governance"),
];

/// What a page is: its title, section, who looks, where its live updates
/// come from (none: a static page) and the path to come back to after
/// signing in.
#[derive(Debug, Clone, Copy)]
pub struct PageInfo<'a> {
    pub title: &'a str,
    pub section: Section,
    pub viewer: Viewer,
    pub live: Option<&'a str>,
    pub path: &'a str,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Garage AI" }
            link rel="icon" href=(assets::FAVICON_PATH) type="image/svg+xml";
            link rel="stylesheet" href=(assets::CSS_PATH);
            script src=(assets::JS_PATH) defer {}
        }
    }
}

/// A full page: navigation, then `body`.
pub fn page(info: PageInfo<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(info.title))
            body data-live=[info.live] {
                header.top {
                    a.brand href="/" { "Garage AI" }
                    nav {
                        @for (section, href, label) in SECTIONS {
                            a href=(href) class=[(section == info.section).then_some("active")] { (label) }
                        }
                    }
                    @if info.viewer.is_admin() {
                        form.session method="post" action="/logout" {
                            span.badge { "admin" }
                            button type="submit" { "Sign out" }
                        }
                    } @else {
                        a.session href={ "/login?next=" (info.path) } { "Admin sign-in" }
                    }
                }
                main { (body) }
                @if info.live.is_some() {
                    footer { span #live-state { "Live updates need JavaScript; reload to refresh." } }
                }
            }
        }
    }
}

/// A page without navigation (errors, sign-in).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main.narrow { (body) } }
        }
    }
}

/// A note in place of data only the admin may see.
pub fn admin_only(path: &str, what: &str) -> Markup {
    html! {
        p.note {
            (what) " is shown to the admin only: "
            a href={ "/login?next=" (path) } { "sign in" } "."
        }
    }
}

/// The headers every dashboard answer carries.
pub fn security_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                 connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// A rendered page as a response, with [`security_headers`].
pub fn respond(markup: Markup) -> Response {
    let PreEscaped(text) = markup;
    (
        security_headers(),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
