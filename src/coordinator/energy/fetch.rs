//! One bounded GET for the grid sources: a client with a total timeout and
//! no redirects (the carbon API's token must not follow one), a body cap
//! read chunk by chunk, and failures sorted into the fixed reasons the
//! fallback metric counts.

use std::time::Duration;

/// Why a source's answer was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the request failed: {0}")]
    Transport(String),
    #[error("it answered HTTP {0}")]
    Status(u16),
    #[error("its answer was over {0} bytes")]
    TooLarge(usize),
    #[error("its answer is not what the API documents: {0}")]
    Garbage(String),
}

/// `reason` label values of `garage_coordinator_grid_source_fallbacks_total`.
pub const FALLBACK_REASONS: [&str; 5] = ["timeout", "transport", "status", "too_large", "garbage"];

impl FetchError {
    /// Its label, one of [`FALLBACK_REASONS`].
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "timeout",
            FetchError::Transport(_) => "transport",
            FetchError::Status(_) => "status",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Garbage(_) => "garbage",
        }
    }
}

/// The client every source uses: `timeout` for the whole exchange.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// GETs `url` with `headers`; the body of a 2xx answer, at most `limit` bytes.
pub async fn get(
    client: &reqwest::Client,
    timeout: Duration,
    url: &str,
    headers: &[(&str, &str)],
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let failed = |err: reqwest::Error| {
        if err.is_timeout() {
            FetchError::Timeout(timeout)
        } else {
            // Without the URL: it may carry a configured secret in a query.
            FetchError::Transport(err.without_url().to_string())
        }
    };
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.send().await.map_err(failed)?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
