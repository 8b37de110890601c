//! What podman's side says when jobs cannot run: the limits verdict the
//! podman image writes next to its socket, and the host engine's view of
//! the podman container when its API goes silent.

use bollard::Docker;

use super::status_code;
use crate::jobs::limits::Enforcement;

/// The limits verdict in `file`; a missing one means not enforced.
pub(super) async fn verdict(file: &std::path::Path) -> Enforcement {
    match tokio::fs::read_to_string(file).await {
        Ok(verdict) => Enforcement::parse(&verdict),
        Err(err) => Enforcement::NotEnforced(format!(
            "the podman host recorded no limits verdict in {} ({err}; fix: rebuild the podman \
             image with `docker/build.sh podman` and restart the podman component)",
            file.display()
        )),
    }
}

/// What the host engine says about the podman container.
pub(super) enum Verdict {
    Known(String),
    /// Running as before, yet the API does not answer.
    Silent,
}

/// What the host engine says about the podman container `name`, seen as
/// `seen` (id, start time) when the engine connected; `None` when all is well
/// or the host engine cannot tell.
pub(super) async fn podman_verdict(
    host: &Docker,
    podman: &Docker,
    name: &str,
    seen: Option<&(String, Option<String>)>,
) -> Option<Verdict> {
    let inspect = match host.inspect_container(name, None).await {
        Ok(inspect) => inspect,
        Err(err) if status_code(&err) == Some(404) => {
            return Some(Verdict::Known(format!(
                "the podman container {name} was removed"
            )));
        }
        Err(_) => return None,
    };
    let (seen_id, seen_start) = seen.cloned().unzip();
    if inspect.id.is_some() && seen_id.is_some() && inspect.id != seen_id {
        return Some(Verdict::Known(format!(
            "the podman container {name} was replaced by a new one"
        )));
    }
    let state = inspect.state?;
    if state.running != Some(true) {
        let status = state
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "not running".into());
        return Some(Verdict::Known(format!(
            "the podman container {name} stopped: {status}, exit code {}{}",
            state.exit_code.unwrap_or(-1),
            if state.oom_killed == Some(true) {
                ", killed for memory"
            } else {
                ""
            }
        )));
    }
    if seen_start.flatten() != state.started_at {
        return Some(Verdict::Known(format!(
            "the podman container {name} stopped and was restarted at {}",
            state.started_at.unwrap_or_default()
        )));
    }
    match podman.ping().await {
        Ok(_) => None,
        Err(_) => Some(Verdict::Silent),
    }
}

#[cfg(test)]
mod tests {
    use super::verdict;
    use crate::jobs::limits::Enforcement;

    #[tokio::test]
    async fn verdict_file_next_to_the_socket_decides_enforcement() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("limits");
        let missing = verdict(&file).await;
        assert!(
            matches!(&missing, Enforcement::NotEnforced(why) if why.contains("docker/build.sh podman")),
            "{missing:?}"
        );
        std::fs::write(&file, "not enforced: cgroup v1 read-only on this host\n").expect("write");
        assert_eq!(
            verdict(&file).await.describe(),
            "not enforced: cgroup v1 read-only on this host"
        );
        std::fs::write(&file, "enforced: cgroup v2, podman manages job cgroups\n").expect("write");
        assert!(verdict(&file).await.is_enforced());
    }
}
