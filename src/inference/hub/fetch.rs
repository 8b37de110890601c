//! Fetching a hub repository into hf-hub's cache layout: a complete cached
//! snapshot first, else the files the loaders need (Hugging Face layout or
//! one GGUF file), with errors that say how to go on offline.

use std::path::{Path, PathBuf};

use hf_hub::api::tokio::{ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};

use super::progress::LogProgress;
use super::{HubModel, HubOptions};
use crate::inference::shard_name::{self, ShardNameError};

const CONFIG: &str = "config.json";
const TOKENIZER: &str = "tokenizer.json";
const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
const SAFETENSORS: &str = "model.safetensors";
const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";

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
    #[error("{file} of {model} lists a shard that is refused, before any download")]
    ShardName {
        model: String,
        file: PathBuf,
        #[source]
        source: ShardNameError,
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
        for shard in shards(model, &index).map_err(|_| SAFETENSORS_INDEX.to_string())? {
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

/// The shard files a `model.safetensors.index.json` names, sorted, unique,
/// each a plain file name ([`shard_name::check`]).
fn shards(model: &HubModel, index: &Path) -> Result<Vec<String>, HubError> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index).unwrap_or_default();
    let parsed: Index = serde_json::from_str(&text).map_err(|source| HubError::Index {
        model: model.to_string(),
        file: index.to_path_buf(),
        source,
    })?;
    let mut files: Vec<String> = parsed.weight_map.into_values().collect();
    files.sort();
    files.dedup();
    for file in &files {
        shard_name::check(file).map_err(|source| HubError::ShardName {
            model: model.to_string(),
            file: index.to_path_buf(),
            source,
        })?;
    }
    Ok(files)
}

pub(super) async fn fetch(model: &HubModel, options: &HubOptions) -> Result<PathBuf, HubError> {
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
        for shard in &shards(model, &index)? {
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::hub::{resolve, DEFAULT_ENDPOINT};

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
