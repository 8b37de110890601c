//! Where the worker's model comes from: a local path, or a Hugging Face
//! repository (`hf:owner/name[/file.gguf][@revision]`) fetched with hf-hub
//! into a cache directory (the node's model volume). A complete cached
//! snapshot is used without asking the hub, so a node restarts offline.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hf_hub::api::tokio::{ApiBuilder, ApiError, ApiRepo, Progress};
use hf_hub::{Cache, Repo, RepoType};

/// The public hub; `HF_ENDPOINT` replaces it (mirrors, tests).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
const PREFIX: &str = "hf:";
const CONFIG: &str = "config.json";
const TOKENIZER: &str = "tokenizer.json";
const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
const SAFETENSORS: &str = "model.safetensors";
const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";

/// A model as `garage worker --model` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A Hugging Face directory or a `.gguf` file on this host.
    Local(PathBuf),
    /// A repository on the hub.
    Hub(HubModel),
}

/// A Hugging Face repository, optionally one GGUF file in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubModel {
    /// `owner/name`.
    pub repo: String,
    /// Branch, tag or commit.
    pub revision: String,
    /// One `.gguf` file of the repository; `None` means the Hugging Face
    /// layout (config, tokenizer, safetensors), or the repository's only GGUF.
    pub file: Option<String>,
}

/// Why a `--model` value is not a model reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a model: {reason} (write a path, or hf:owner/name[/file.gguf][@revision])"
)]
pub struct ModelRefError {
    value: String,
    reason: &'static str,
}

impl FromStr for ModelRef {
    type Err = ModelRefError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let Some(rest) = value.strip_prefix(PREFIX) else {
            return Ok(ModelRef::Local(PathBuf::from(value)));
        };
        let err = |reason| ModelRefError {
            value: value.to_string(),
            reason,
        };
        let (path, revision) = match rest.split_once('@') {
            Some((path, revision)) if !revision.is_empty() => (path, revision.to_string()),
            Some(_) => return Err(err("the revision after `@` is empty")),
            None => (rest, "main".to_string()),
        };
        let mut parts = path.splitn(3, '/');
        let (Some(owner), Some(name)) = (parts.next(), parts.next()) else {
            return Err(err("the repository needs an owner and a name"));
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !valid(owner) || !valid(name) {
            return Err(err(
                "owner and name may hold letters, digits, `-`, `_` and `.`",
            ));
        }
        let file = match parts.next() {
            Some(f) if f.is_empty() || f.split('/').any(|s| s.is_empty() || s == "..") => {
                return Err(err("the file path inside the repository is not valid"))
            }
            Some(f) => Some(f.to_string()),
            None => None,
        };
        Ok(ModelRef::Hub(HubModel {
            repo: format!("{owner}/{name}"),
            revision,
            file,
        }))
    }
}

impl From<PathBuf> for ModelRef {
    fn from(path: PathBuf) -> Self {
        ModelRef::Local(path)
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Local(path) => write!(f, "{}", path.display()),
            ModelRef::Hub(m) => write!(f, "{m}"),
        }
    }
}

impl fmt::Display for HubModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.repo)?;
        if let Some(file) = &self.file {
            write!(f, "/{file}")?;
        }
        write!(f, "@{}", self.revision)
    }
}

/// How to reach the hub and where to keep what it sends.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// hf-hub's cache layout (`models--owner--name/{blobs,refs,snapshots}`).
    pub cache_dir: PathBuf,
    pub endpoint: String,
    /// Never ask the hub: only a complete cached snapshot will do.
    pub offline: bool,
    pub token: Option<String>,
}

impl HubOptions {
    /// `cache_dir` when given, else `$HF_HOME/hub` or `~/.cache/huggingface/hub`;
    /// `HF_ENDPOINT`, `HF_HUB_OFFLINE` and `HF_TOKEN` as Hugging Face's own
    /// tools read them.
    pub fn from_env(cache_dir: Option<PathBuf>) -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let cache_dir = cache_dir
            .or_else(|| env("HF_HOME").map(|h| Path::new(&h).join("hub")))
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache/huggingface/hub")))
            .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
        HubOptions {
            cache_dir,
            endpoint: env("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()),
            offline: env("HF_HUB_OFFLINE").is_some_and(|v| !matches!(v.as_str(), "0" | "false")),
            token: env("HF_TOKEN"),
        }
    }
}

/// Why a hub model could not be made local.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "{model} is not in the cache {cache} and HF_HUB_OFFLINE is set (missing: {missing}); \
         unset HF_HUB_OFFLINE on a host with internet access, or copy the model into the \
         model volume and set spec.worker.model.path"
    )]
    NotCached {
        model: String,
        cache: PathBuf,
        missing: String,
    },
    #[error(
        "cannot reach {endpoint} to fetch {model}; this host may have no internet access: \
         copy the model into the model volume and set spec.worker.model.path, or fill the \
         cache {cache} on another host"
    )]
    Unreachable {
        model: String,
        endpoint: String,
        cache: PathBuf,
        #[source]
        source: ApiError,
    },
    #[error("{endpoint} has no repository {model} (or it needs a token: set HF_TOKEN)")]
    NotFound { model: String, endpoint: String },
    #[error("{model} holds no Llama weights we can load (files: {files}); name a repository with config.json and model.safetensors, or a .gguf file")]
    NoWeights { model: String, files: String },
    #[error("{model} holds several GGUF files ({files}); name one: hf:owner/name/FILE.gguf")]
    WhichGguf { model: String, files: String },
    #[error("{model}: {file} is not in the repository")]
    NoSuchFile { model: String, file: String },
    #[error("downloading {file} of {model}")]
    Download {
        model: String,
        file: String,
        #[source]
        source: ApiError,
    },
    #[error("{file} of {model} is not valid JSON")]
    Index {
        model: String,
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("setting up the Hugging Face client")]
    Client(#[source] ApiError),
    #[error("creating the model cache {dir}")]
    CacheDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The local path of `model`: itself when local, else the cached snapshot
/// (downloading what is missing unless offline).
pub async fn resolve(model: &ModelRef, options: &HubOptions) -> Result<PathBuf, HubError> {
    match model {
        ModelRef::Local(path) => Ok(path.clone()),
        ModelRef::Hub(hub) => fetch(hub, options).await,
    }
}

fn repo(model: &HubModel) -> Repo {
    Repo::with_revision(model.repo.clone(), RepoType::Model, model.revision.clone())
}

/// What a complete snapshot of `model` holds, read from the cache alone.
fn cached(model: &HubModel, cache: &Cache) -> Result<PathBuf, String> {
    let repo = cache.repo(repo(model));
    if let Some(file) = &model.file {
        return repo.get(file).ok_or_else(|| file.clone());
    }
    let config = repo.get(CONFIG).ok_or(CONFIG)?;
    repo.get(TOKENIZER).ok_or(TOKENIZER)?;
    if let Some(index) = repo.get(SAFETENSORS_INDEX) {
        for shard in shards(&index).map_err(|_| SAFETENSORS_INDEX.to_string())? {
            repo.get(&shard).ok_or(shard)?;
        }
    } else {
        repo.get(SAFETENSORS).ok_or(SAFETENSORS)?;
    }
    Ok(snapshot_dir(&config))
}

fn snapshot_dir(file_in_snapshot: &Path) -> PathBuf {
    file_in_snapshot
        .parent()
        .map_or_else(|| file_in_snapshot.to_path_buf(), Path::to_path_buf)
}

/// The shard files a `model.safetensors.index.json` names, sorted, unique.
fn shards(index: &Path) -> Result<Vec<String>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index).unwrap_or_default();
    let index: Index = serde_json::from_str(&text)?;
    let mut files: Vec<String> = index.weight_map.into_values().collect();
    files.sort();
    files.dedup();
    Ok(files)
}

async fn fetch(model: &HubModel, options: &HubOptions) -> Result<PathBuf, HubError> {
    let name = model.to_string();
    let cache = Cache::new(options.cache_dir.clone());
    let missing = match cached(model, &cache) {
        Ok(path) => {
            tracing::info!(model = %name, path = %path.display(), "model found in the cache");
            return Ok(path);
        }
        Err(missing) => missing,
    };
    if options.offline {
        return Err(HubError::NotCached {
            model: name,
            cache: options.cache_dir.clone(),
            missing,
        });
    }
    std::fs::create_dir_all(&options.cache_dir).map_err(|source| HubError::CacheDir {
        dir: options.cache_dir.clone(),
        source,
    })?;
    let api = ApiBuilder::from_cache(cache.clone())
        .with_endpoint(options.endpoint.clone())
        .with_token(options.token.clone())
        .with_progress(false)
        .build()
        .map_err(HubError::Client)?;
    let remote = api.repo(repo(model));
    let files = list_files(model, options, &remote).await?;
    let plan = choose_files(model, &files)?;
    tracing::info!(model = %name, files = plan.len(), cache = %options.cache_dir.display(), "downloading the model");
    let mut first = None;
    for file in &plan {
        let path = download(&cache, model, &remote, file).await?;
        first.get_or_insert(path);
    }
    let first = first.ok_or_else(|| HubError::NoWeights {
        model: name.clone(),
        files: files.join(", "),
    })?;
    if let Some(file) = plan.iter().find(|f| *f == SAFETENSORS_INDEX) {
        let index = snapshot_dir(&first).join(file);
        let shard_files = shards(&index).map_err(|source| HubError::Index {
            model: name.clone(),
            file: index.clone(),
            source,
        })?;
        for shard in &shard_files {
            download(&cache, model, &remote, shard).await?;
        }
    }
    Ok(
        if model.file.is_some() || plan.iter().any(|f| f.ends_with(".gguf")) {
            first
        } else {
            snapshot_dir(&first)
        },
    )
}

fn unreachable(model: &HubModel, options: &HubOptions, source: ApiError) -> HubError {
    HubError::Unreachable {
        model: model.to_string(),
        endpoint: options.endpoint.clone(),
        cache: options.cache_dir.clone(),
        source,
    }
}

async fn list_files(
    model: &HubModel,
    options: &HubOptions,
    remote: &ApiRepo,
) -> Result<Vec<String>, HubError> {
    match remote.info().await {
        Ok(info) => Ok(info.siblings.into_iter().map(|s| s.rfilename).collect()),
        Err(ApiError::RequestError(e))
            if e.status()
                .is_some_and(|s| s.as_u16() == 404 || s.as_u16() == 401) =>
        {
            Err(HubError::NotFound {
                model: model.to_string(),
                endpoint: options.endpoint.clone(),
            })
        }
        Err(source) => Err(unreachable(model, options, source)),
    }
}

/// The files to fetch, config first; the index's shards come after it.
fn choose_files(model: &HubModel, files: &[String]) -> Result<Vec<String>, HubError> {
    let has = |f: &str| files.iter().any(|x| x == f);
    let listing = || files.join(", ");
    if let Some(file) = &model.file {
        return if has(file) {
            Ok(vec![file.clone()])
        } else {
            Err(HubError::NoSuchFile {
                model: model.to_string(),
                file: file.clone(),
            })
        };
    }
    if has(CONFIG) && has(TOKENIZER) && (has(SAFETENSORS) || has(SAFETENSORS_INDEX)) {
        let mut plan = vec![CONFIG.to_string(), TOKENIZER.to_string()];
        if has(TOKENIZER_CONFIG) {
            plan.push(TOKENIZER_CONFIG.into());
        }
        plan.push(
            if has(SAFETENSORS_INDEX) {
                SAFETENSORS_INDEX
            } else {
                SAFETENSORS
            }
            .into(),
        );
        return Ok(plan);
    }
    let ggufs: Vec<&String> = files.iter().filter(|f| f.ends_with(".gguf")).collect();
    match ggufs.as_slice() {
        [one] => Ok(vec![(*one).clone()]),
        [] => Err(HubError::NoWeights {
            model: model.to_string(),
            files: listing(),
        }),
        many => Err(HubError::WhichGguf {
            model: model.to_string(),
            files: many
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

async fn download(
    cache: &Cache,
    model: &HubModel,
    remote: &ApiRepo,
    file: &str,
) -> Result<PathBuf, HubError> {
    if let Some(path) = cache.repo(repo(model)).get(file) {
        return Ok(path);
    }
    remote
        .download_with_progress(file, LogProgress::default())
        .await
        .map_err(|source| HubError::Download {
            model: model.to_string(),
            file: file.to_string(),
            source,
        })
}

/// Download progress as log lines (a container's log has no terminal for a
/// bar): one at the start, one per 10 %, one at the end, with the rate.
#[derive(Debug, Clone, Default)]
struct LogProgress {
    file: String,
    total: usize,
    done: usize,
    reported_tenths: usize,
    started: Option<Instant>,
}

impl LogProgress {
    fn rate_mib_s(&self) -> f64 {
        let secs = self
            .started
            .map_or(Duration::ZERO, |s| s.elapsed())
            .as_secs_f64()
            .max(1e-3);
        self.done as f64 / secs / (1024.0 * 1024.0)
    }
}

impl Progress for LogProgress {
    async fn init(&mut self, size: usize, filename: &str) {
        self.file = filename.to_string();
        self.total = size;
        self.started = Some(Instant::now());
        tracing::info!(file = %self.file, bytes = size, "download started");
    }

    async fn update(&mut self, size: usize) {
        self.done += size;
        let tenths = (self.done * 10).checked_div(self.total).unwrap_or(10);
        if tenths > self.reported_tenths && tenths < 10 {
            self.reported_tenths = tenths;
            tracing::info!(
                file = %self.file,
                percent = tenths * 10,
                mib_per_s = format!("{:.1}", self.rate_mib_s()),
                "downloading"
            );
        }
    }

    async fn finish(&mut self) {
        tracing::info!(
            file = %self.file,
            bytes = self.total,
            mib_per_s = format!("{:.1}", self.rate_mib_s()),
            "download finished"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(repo: &str, revision: &str, file: Option<&str>) -> ModelRef {
        ModelRef::Hub(HubModel {
            repo: repo.into(),
            revision: revision.into(),
            file: file.map(Into::into),
        })
    }

    #[test]
    fn model_refs_parse_and_print_back() {
        let cases = [
            (
                "hf:HuggingFaceTB/SmolLM2-135M-Instruct",
                hub("HuggingFaceTB/SmolLM2-135M-Instruct", "main", None),
            ),
            ("hf:o/n@v1.0", hub("o/n", "v1.0", None)),
            (
                "hf:o/n/sub/m.Q4_1.gguf@abc123",
                hub("o/n", "abc123", Some("sub/m.Q4_1.gguf")),
            ),
        ];
        for (text, want) in cases {
            let got: ModelRef = text.parse().expect(text);
            assert_eq!(got, want, "{text}");
            let printed = got.to_string();
            assert_eq!(printed.parse::<ModelRef>().expect("reparse"), want);
        }
        assert_eq!(
            "/models/x.gguf".parse::<ModelRef>().expect("path"),
            ModelRef::Local("/models/x.gguf".into())
        );
    }

    #[test]
    fn bad_model_refs_say_why() {
        for (text, reason) in [
            ("hf:justone", "owner and a name"),
            ("hf:o/n@", "revision after `@` is empty"),
            ("hf:o w/n", "letters, digits"),
            ("hf:o/n/../x.gguf", "file path"),
            ("hf:o/n/", "file path"),
        ] {
            let e = text.parse::<ModelRef>().expect_err(text).to_string();
            assert!(
                e.contains(reason) && e.contains("hf:owner/name"),
                "{text}: {e}"
            );
        }
    }

    fn names(files: &[&str]) -> Vec<String> {
        files.iter().map(|s| s.to_string()).collect()
    }

    fn model(file: Option<&str>) -> HubModel {
        HubModel {
            repo: "o/n".into(),
            revision: "main".into(),
            file: file.map(Into::into),
        }
    }

    #[test]
    fn file_choice_prefers_the_hugging_face_layout() {
        let hf = names(&[
            ".gitattributes",
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model.safetensors",
            "x.gguf",
        ]);
        assert_eq!(
            choose_files(&model(None), &hf).expect("hf"),
            names(&[
                "config.json",
                "tokenizer.json",
                "tokenizer_config.json",
                "model.safetensors"
            ])
        );
        let sharded = names(&[
            "config.json",
            "tokenizer.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
        ]);
        assert_eq!(
            choose_files(&model(None), &sharded).expect("sharded"),
            names(&[
                "config.json",
                "tokenizer.json",
                "model.safetensors.index.json"
            ])
        );
        let one_gguf = names(&["README.md", "m.Q4_1.gguf"]);
        assert_eq!(
            choose_files(&model(None), &one_gguf).expect("gguf"),
            names(&["m.Q4_1.gguf"])
        );
    }

    #[test]
    fn file_choice_errors_name_the_files() {
        let two = names(&["a.Q4_0.gguf", "a.Q8_0.gguf"]);
        let e = choose_files(&model(None), &two)
            .expect_err("two")
            .to_string();
        assert!(
            e.contains("a.Q4_0.gguf, a.Q8_0.gguf") && e.contains("name one"),
            "{e}"
        );
        assert_eq!(
            choose_files(&model(Some("a.Q8_0.gguf")), &two).expect("named"),
            names(&["a.Q8_0.gguf"])
        );
        let e = choose_files(&model(Some("b.gguf")), &two)
            .expect_err("absent")
            .to_string();
        assert!(e.contains("b.gguf is not in the repository"), "{e}");
        let e = choose_files(&model(None), &names(&["README.md"]))
            .expect_err("none")
            .to_string();
        assert!(
            e.contains("no Llama weights") && e.contains("README.md"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn offline_without_a_cache_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = HubOptions {
            cache_dir: dir.path().to_path_buf(),
            endpoint: DEFAULT_ENDPOINT.into(),
            offline: true,
            token: None,
        };
        let e = resolve(&"hf:o/n".parse().expect("ref"), &options)
            .await
            .expect_err("offline")
            .to_string();
        assert!(
            e.contains("HF_HUB_OFFLINE") && e.contains("missing: config.json"),
            "{e}"
        );
        assert!(e.contains("spec.worker.model.path"), "{e}");
    }
}
