//! Live updates over server-sent events: a page's event source sends
//! `replace` (an element id and server-rendered HTML for it), `append` (an
//! element id and plain text) and `end`. Streams are bounded in number
//! ([`super::state::MAX_LIVE_STREAMS`]) and in time ([`LIFETIME`], after
//! which the browser reconnects), and poll the store at a fixed period, so
//! every replica serves them the same way.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use maud::Markup;

use super::error::PageError;
use super::state::DashboardState;
use crate::coordinator::http::error::ApiError;

/// How long one stream stays open; the browser's EventSource reconnects.
pub const LIFETIME: Duration = Duration::from_secs(600);

/// One change to an open page.
#[derive(Debug)]
pub enum Update {
    /// Replace the element `target`'s content with `html` (rendered and
    /// escaped by the server).
    Replace { target: &'static str, html: Markup },
    /// Add `text` to the element `target`, as text; `id` is where a
    /// reconnecting browser continues (its `Last-Event-ID`).
    Append {
        target: &'static str,
        text: String,
        id: String,
    },
    /// Nothing more will change.
    End,
}

impl Update {
    fn event(self) -> Event {
        match self {
            Update::Replace { target, html } => Event::default().event("replace").data(
                serde_json::json!({ "target": target, "html": html.into_string() }).to_string(),
            ),
            Update::Append { target, text, id } => Event::default()
                .event("append")
                .id(id)
                .data(serde_json::json!({ "target": target, "text": text }).to_string()),
            Update::End => Event::default().event("end").data("{}"),
        }
    }
}

/// `updates` as an event stream, if another stream may open (503 if not).
pub fn respond(
    state: &DashboardState,
    updates: impl Stream<Item = Update> + Send + 'static,
) -> Response {
    let Ok(permit) = state.live_streams.clone().try_acquire_owned() else {
        return PageError(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_live_streams",
            "too many pages are following live updates; the page still works, reload it to refresh",
        ))
        .into_response();
    };
    let events = updates
        .take_until(tokio::time::sleep(LIFETIME))
        .map(move |update| {
            let _held = &permit;
            Ok::<_, Infallible>(update.event())
        });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// What a page's parts look like now: `(element id, its HTML)`; empty when
/// the store could not be read this time.
pub type Render = Box<dyn FnMut() -> BoxFuture<'static, Vec<(&'static str, Markup)>> + Send>;

/// Renders every `period` and sends a `replace` for each part whose HTML
/// changed (every part the first time).
pub fn replacements(period: Duration, render: Render) -> impl Stream<Item = Update> + Send {
    struct Poll {
        render: Render,
        shown: HashMap<&'static str, String>,
        pending: Vec<Update>,
        first: bool,
    }
    let start = Poll {
        render,
        shown: HashMap::new(),
        pending: Vec::new(),
        first: true,
    };
    futures::stream::unfold(start, move |mut poll| async move {
        loop {
            if let Some(update) = poll.pending.pop() {
                return Some((update, poll));
            }
            if !poll.first {
                tokio::time::sleep(period).await;
            }
            poll.first = false;
            for (target, html) in (poll.render)().await {
                let text = html.into_string();
                if poll.shown.get(target) != Some(&text) {
                    poll.shown.insert(target, text.clone());
                    poll.pending.push(Update::Replace {
                        target,
                        html: maud::PreEscaped(text),
                    });
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use maud::html;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn only_changed_parts_are_sent_again() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let render: Render = Box::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { vec![("fixed", html! { "same" }), ("count", html! { (n / 2) })] })
        });
        let sent: Vec<String> = replacements(Duration::from_secs(1), render)
            .take(3)
            .map(|update| match update {
                Update::Replace { target, html } => format!("{target}={}", html.into_string()),
                other => format!("{other:?}"),
            })
            .collect()
            .await;
        assert_eq!(sent.len(), 3);
        assert!(sent.contains(&"fixed=same".to_string()), "{sent:?}");
        assert!(sent.contains(&"count=0".to_string()), "{sent:?}");
        assert_eq!(sent[2], "count=1", "{sent:?}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "the unchanged second poll sent nothing"
        );
    }
}
