//! The people's side of the coordinator API: a bearer-token HTTP client
//! (the admin token for `garage coordinator token …` and `garage account
//! …`, an API key for `garage job …`), and the flags that say where the
//! coordinator is and where the token comes from. Tokens come from a file
//! or the environment, never from a flag value (`/proc/*/cmdline` shows
//! those).

use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::api::ErrorBody;
use super::http::admin::{ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE};
use crate::identity::{self, IdentityError};

/// Per-request limit, connect included (a followed log stream has none).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The environment variable that may hold a client's API key.
pub const API_KEY_ENV: &str = "GARAGE_API_KEY";

/// Why a call to the coordinator failed.
#[derive(Debug, thiserror::Error)]
pub enum BearerClientError {
    #[error("coordinator URL {url:?} is not an http:// or https:// URL (fix: pass --url http://HOST:7070)")]
    BadUrl { url: String },
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
    #[error(
        "cannot read the admin token (fix: pass --admin-token-file FILE or set {ADMIN_TOKEN_ENV})"
    )]
    AdminToken(#[source] IdentityError),
    #[error("no API key (fix: set {API_KEY_ENV}, or pass --api-key-file FILE; an admin makes one with `garage account create NAME`)")]
    NoApiKey,
    #[error("cannot read the API key file")]
    ApiKeyFile(#[source] IdentityError),
    #[error("cannot reach the coordinator at {url} (is it running? check --url)")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the coordinator refused {what} with {status} {code}: {message}")]
    Refused {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("the coordinator's answer to {what} is not what this program understands")]
    Decode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Where the coordinator is and how to prove being its admin.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The coordinator's URL.
    #[arg(
        long,
        env = "GARAGE_COORDINATOR_URL",
        default_value = "http://127.0.0.1:7070"
    )]
    pub url: String,
    /// File holding the admin token; default: GARAGE_ADMIN_TOKEN, else
    /// coordinator-state/admin-token (a local coordinator's default).
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
}

impl AdminArgs {
    /// A client with the admin token.
    pub fn client(&self) -> Result<BearerClient, BearerClientError> {
        let token = match (&self.admin_token_file, std::env::var(ADMIN_TOKEN_ENV).ok()) {
            (Some(file), _) => {
                identity::read_private_file(file).map_err(BearerClientError::AdminToken)?
            }
            (None, Some(token)) => token,
            (None, None) => {
                let default = PathBuf::from("coordinator-state").join(ADMIN_TOKEN_FILE);
                identity::read_private_file(&default).map_err(BearerClientError::AdminToken)?
            }
        };
        BearerClient::new(&self.url, token.trim().to_string())
    }
}

/// Where the coordinator is and which API key to use.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiKeyArgs {
    /// The coordinator's URL.
    #[arg(
        long = "coordinator",
        env = "GARAGE_COORDINATOR_URL",
        default_value = "http://127.0.0.1:7070"
    )]
    pub url: String,
    /// File holding the API key (`gk_…`, mode 0600); default: GARAGE_API_KEY.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
}

impl ApiKeyArgs {
    /// The API key from the file or [`API_KEY_ENV`].
    pub fn key(&self) -> Result<String, BearerClientError> {
        let key = match &self.api_key_file {
            Some(file) => {
                identity::read_private_file(file).map_err(BearerClientError::ApiKeyFile)?
            }
            None => std::env::var(API_KEY_ENV)
                .ok()
                .filter(|key| !key.trim().is_empty())
                .ok_or(BearerClientError::NoApiKey)?,
        };
        Ok(key.trim().to_string())
    }

    /// A client with the API key from the file or [`API_KEY_ENV`].
    pub fn client(&self) -> Result<BearerClient, BearerClientError> {
        BearerClient::new(&self.url, self.key()?)
    }
}

/// The path of one page of a paginated list: `path`, filtered by `state`
/// when given, from `continue_token` when given.
pub fn page_path(path: &str, state: Option<&str>, continue_token: Option<&str>) -> String {
    let mut query = Vec::new();
    if let Some(state) = state {
        query.push(format!("state={state}"));
    }
    if let Some(token) = continue_token {
        query.push(format!("continue={token}"));
    }
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// A client for one coordinator with one bearer token.
pub struct BearerClient {
    http: reqwest::Client,
    base: String,
    /// `None`: public endpoints only.
    token: Option<String>,
}

impl std::fmt::Debug for BearerClient {
    // By hand: the token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl BearerClient {
    pub fn new(base_url: &str, token: String) -> Result<Self, BearerClientError> {
        Self::with_token(base_url, Some(token))
    }

    /// A client without credentials, for public endpoints.
    pub fn anonymous(base_url: &str) -> Result<Self, BearerClientError> {
        Self::with_token(base_url, None)
    }

    fn with_token(base_url: &str, token: Option<String>) -> Result<Self, BearerClientError> {
        let base = base_url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(BearerClientError::BadUrl {
                url: base_url.into(),
            });
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(BearerClientError::Build)?;
        Ok(BearerClient { http, base, token })
    }

    /// `GET path` (with its query), decoded.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, BearerClientError> {
        let builder = self.http.get(self.url(path)).timeout(REQUEST_TIMEOUT);
        let bytes = self.send(&format!("GET {path}"), builder).await?;
        decode(&format!("GET {path}"), &bytes)
    }

    /// `POST path` with a JSON body and extra headers, decoded.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        headers: &[(&str, &str)],
    ) -> Result<T, BearerClientError> {
        let mut builder = self
            .http
            .post(self.url(path))
            .timeout(REQUEST_TIMEOUT)
            .json(body);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let bytes = self.send(&format!("POST {path}"), builder).await?;
        decode(&format!("POST {path}"), &bytes)
    }

    /// `PUT path` with a JSON body, decoded.
    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, BearerClientError> {
        let builder = self
            .http
            .put(self.url(path))
            .timeout(REQUEST_TIMEOUT)
            .json(body);
        let bytes = self.send(&format!("PUT {path}"), builder).await?;
        decode(&format!("PUT {path}"), &bytes)
    }

    /// `DELETE path`; any 2xx is success.
    pub async fn delete(&self, path: &str) -> Result<(), BearerClientError> {
        let builder = self.http.delete(self.url(path)).timeout(REQUEST_TIMEOUT);
        self.send(&format!("DELETE {path}"), builder)
            .await
            .map(drop)
    }

    /// `GET path` as a stream (server-sent events) with extra headers: the
    /// response once its status is 2xx; no overall timeout.
    pub async fn stream(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, BearerClientError> {
        let what = format!("GET {path}");
        let mut builder = self.authorized(self.http.get(self.url(path)));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = builder
            .send()
            .await
            .map_err(|source| self.transport(source))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| self.transport(source))?;
        Err(refused(&what, status, &bytes))
    }

    fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn transport(&self, source: reqwest::Error) -> BearerClientError {
        BearerClientError::Transport {
            url: self.base.clone(),
            source,
        }
    }

    async fn send(
        &self,
        what: &str,
        builder: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, BearerClientError> {
        let response = self
            .authorized(builder)
            .send()
            .await
            .map_err(|source| self.transport(source))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| self.transport(source))?
            .to_vec();
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(refused(what, status.as_u16(), &bytes))
        }
    }
}

fn refused(what: &str, status: u16, bytes: &[u8]) -> BearerClientError {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => (
            "unknown".into(),
            String::from_utf8_lossy(bytes).chars().take(200).collect(),
        ),
    };
    BearerClientError::Refused {
        what: what.into(),
        status,
        code,
        message,
    }
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, BearerClientError> {
    // A 204 answer has no body; callers that expect one ask for `()`.
    let bytes = if bytes.is_empty() { b"null" } else { bytes };
    serde_json::from_slice(bytes).map_err(|source| BearerClientError::Decode {
        what: what.into(),
        source,
    })
}

/// What a command prints: `stdout` (the result, for scripts) and `stderr`
/// (notes for people).
#[derive(Debug, Default)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Prints both parts where they belong; the command succeeded.
    pub fn print(self) -> std::process::ExitCode {
        eprint!("{}", self.stderr);
        print!("{}", self.stdout);
        std::process::ExitCode::SUCCESS
    }
}
