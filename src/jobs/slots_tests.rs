//! Job locks against other real processes: a killed holder frees its slot,
//! another local user cannot squat one, and a lock directory others may
//! enter is refused.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{JobLocks, SlotError};

fn state() -> tempfile::TempDir {
    tempfile::tempdir().expect("state dir")
}

/// A process that locks `file` the way the node does (flock(2), through
/// util-linux's flock(1) on an inherited descriptor) and then is nothing but
/// `sleep 60` holding it: killing that one pid is the holder dying.
fn flock_holder(file: &std::path::Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec 9>"$1" && flock --nonblock 9 && exec sleep 60"#)
        .arg("holder")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn missing_state_dir_is_made_private() {
    let state = state();
    let dir = state.path().join("new-state");
    let locks = JobLocks::open(&dir, "n1").expect("locks");
    for made in [dir.as_path(), locks.dir()] {
        let mode = std::fs::metadata(made).expect("made").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", made.display());
    }
}

#[test]
fn a_killed_holder_frees_its_slot() {
    let state = state();
    let locks = JobLocks::open(state.path(), "n2").expect("locks");
    let file = locks.dir().join("n2.slot-0.lock");
    let mut holder = flock_holder(&file).spawn().expect("run flock(1)");
    let started = Instant::now();
    while locks.try_slot(1).expect("lock").is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the other process never took the slot"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.kill().expect("SIGKILL the holder");
    holder.wait().expect("reap the holder");
    let slot = locks.try_slot(1).expect("lock");
    assert_eq!(slot.as_ref().map(|s| s.name.as_str()), Some("slot-0"));
}

#[test]
fn another_user_cannot_squat_a_slot() {
    if rustix::process::geteuid().as_raw() != 0 {
        // Running as another user needs root; CI runs as root.
        eprintln!("skipping: needs root to start a process as another user");
        return;
    }
    let state = state();
    let locks = JobLocks::open(state.path(), "n3").expect("locks");
    let file = locks.dir().join("n3.slot-0.lock");
    let squatter = flock_holder(&file)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run flock(1) as nobody");
    assert!(
        !squatter.status.success(),
        "the squatter ran: {}",
        String::from_utf8_lossy(&squatter.stderr)
    );
    assert!(
        String::from_utf8_lossy(&squatter.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&squatter.stderr)
    );
    let slot = locks.try_slot(1).expect("lock");
    assert_eq!(slot.as_ref().map(|s| s.name.as_str()), Some("slot-0"));
}

#[test]
fn a_lock_directory_others_may_enter_is_refused_not_re_moded() {
    let state = state();
    let dir = state.path().join("job-locks");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = JobLocks::open(state.path(), "n4").expect_err("refused");
    assert!(
        matches!(err, SlotError::Unsafe { mode: 0o755, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("chmod 0700 {}", dir.display())),
        "{err}"
    );
    let mode = std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "left as it was");
}
