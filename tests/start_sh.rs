//! `start.sh` before it changes anything: where the node is
//! (`scripts/node-location.sh`: flags, the host's time zone, bad values) and
//! the Debian packages it installs itself (issue 9, A1–A2). The package tests
//! run start.sh `--prerequisites-only` on the real engine with a PATH whose
//! `apt-get` only records what it was asked, so nothing is installed, and a
//! base image that is not there, so debootstrap is needed.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{ensure_engine_and_image, output_with_timeout, run_id, show};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn location(args: &[&str], tz: &str) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/node-location.sh"))
        .args(args)
        .env("TZ", tz);
    output_with_timeout(&mut cmd, SCRIPT_TIMEOUT)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_flags_become_the_location_block_of_node_yaml() {
    let out = location(
        &["--price-area", "se3", "--coordinates", "59.33,18.07"],
        "UTC",
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        stdout(&out),
        "  location:\n    country: SE\n    priceArea: SE3\n    coordinates:\n      latitude: 59.33\n      longitude: 18.07\n"
    );
}

#[test]
fn without_flags_the_country_comes_from_the_time_zone_and_is_said() {
    let out = location(&[], "Europe/Stockholm");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(stdout(&out), "  location:\n    country: SE\n");
    assert!(
        stderr(&out).contains("country SE, from the time zone Europe/Stockholm"),
        "{}",
        show(&out)
    );
    let oslo = location(&[], ":Europe/Oslo");
    assert_eq!(stdout(&oslo), "  location:\n    country: NO\n");
}

#[test]
fn a_time_zone_without_a_country_leaves_the_location_out_and_says_how_to_set_it() {
    let out = location(&[], "Etc/UTC");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("--country"), "{}", show(&out));
}

#[test]
fn bad_location_values_are_refused_with_the_reason_and_a_fix() {
    for (args, reason) in [
        (
            &["--country", "Sweden"][..],
            "not an ISO 3166-1 alpha-2 code",
        ),
        (
            &["--country", "XX"][..],
            "not an assigned ISO 3166-1 alpha-2 code",
        ),
        (
            &["--price-area", "SE5"][..],
            "not one of SE1, SE2, SE3, SE4",
        ),
        (
            &["--country", "NO", "--price-area", "SE3"][..],
            "price area SE3 is Swedish, but the country is NO",
        ),
        (
            &["--country", "SE", "--coordinates", "91,18"][..],
            "out of range",
        ),
        (
            &["--country", "SE", "--coordinates", "north"][..],
            "are not LAT,LON",
        ),
    ] {
        let out = location(args, "Europe/Stockholm");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        assert!(stderr(&out).contains(reason), "{args:?}: {}", show(&out));
        assert!(stderr(&out).contains("fix:"), "{args:?}: {}", show(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
    }
}

#[test]
fn start_sh_refuses_a_bad_location_flag_before_it_starts() {
    let state = tempfile::tempdir().expect("state dir");
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("start.sh"))
        .args(["--yes", "--price-area", "SE7", "--state-dir"])
        .arg(state.path().join("node"));
    let out = output_with_timeout(&mut cmd, SCRIPT_TIMEOUT);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("SE7"), "{}", show(&out));
    assert!(!stdout(&out).contains("[1/5]"), "{}", show(&out));
}

#[test]
fn start_sh_refuses_a_state_dir_others_can_read_and_leaves_its_mode() {
    let state = tempfile::tempdir().expect("state dir");
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("start.sh"))
        .args(["--yes", "--prerequisites-only", "--state-dir"])
        .arg(state.path());
    let out = output_with_timeout(&mut cmd, SCRIPT_TIMEOUT);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(stderr(&out).contains("has mode 755"), "{}", show(&out));
    assert!(
        stderr(&out).contains(&format!("chmod 700 {}", state.path().display())),
        "{}",
        show(&out)
    );
    let mode = std::fs::metadata(state.path())
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "start.sh changed the mode");
}

/// A PATH like this machine's without debootstrap, and with recording
/// stand-ins for `apt-get` (fails `install`, so nothing changes) and `id`
/// (answers `-u` with `uid`).
struct FakeHost {
    dir: tempfile::TempDir,
}

impl FakeHost {
    fn new(uid: u32) -> FakeHost {
        let dir = tempfile::tempdir().expect("fake host dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        let path = std::env::var("PATH").unwrap_or_default();
        for folder in path.split(':').filter(|f| !f.is_empty()) {
            let Ok(entries) = std::fs::read_dir(folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let link = bin.join(&name);
                if ["debootstrap", "apt-get", "id"].contains(&name.to_string_lossy().as_ref())
                    || link.exists()
                {
                    continue;
                }
                let _ = std::os::unix::fs::symlink(entry.path(), link);
            }
        }
        let calls = dir.path().join("apt-get.calls");
        write_script(
            &bin.join("apt-get"),
            &format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\n[ \"$1\" = update ] && exit 0\necho 'E: recorded, not installed' >&2\nexit 100\n",
                calls.display()
            ),
        );
        let real_id = which("id");
        write_script(
            &bin.join("id"),
            &format!(
                "#!/bin/sh\n[ \"$1\" = -u ] && {{ echo {uid}; exit 0; }}\nexec '{}' \"$@\"\n",
                real_id.display()
            ),
        );
        FakeHost { dir }
    }

    fn start_sh(&self, flags: &[&str]) -> Output {
        let mut cmd = Command::new(self.dir.path().join("bin/bash"));
        cmd.arg(repo().join("start.sh"))
            .args(flags)
            .args(["--prerequisites-only", "--state-dir"])
            .arg(self.dir.path().join("state"))
            .env("PATH", self.dir.path().join("bin"))
            .env(
                "BASE_IMAGE",
                format!("garage-test/absent-base:{}", run_id()),
            );
        output_with_timeout(&mut cmd, SCRIPT_TIMEOUT)
    }

    fn apt_calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apt-get.calls")).unwrap_or_default()
    }
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn which(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(|folder| Path::new(folder).join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}

#[test]
fn as_root_with_yes_it_installs_debootstrap_when_the_base_image_cannot_be_made_otherwise() {
    ensure_engine_and_image();
    let host = FakeHost::new(0);
    let out = host.start_sh(&["--yes"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("missing: debootstrap"), "{}", show(&out));
    assert!(
        text.contains("apt-get install -y debootstrap"),
        "{}",
        show(&out)
    );
    assert!(
        host.apt_calls()
            .contains("install -y -q --no-install-recommends debootstrap"),
        "apt-get calls: {}\n{}",
        host.apt_calls(),
        show(&out)
    );
    // The stand-in refuses to install: start.sh stops and says why.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("installing debootstrap failed: E: recorded, not installed"),
        "{}",
        show(&out)
    );
}

#[test]
fn not_root_it_names_the_command_and_installs_nothing() {
    ensure_engine_and_image();
    let host = FakeHost::new(1000);
    let out = host.start_sh(&["--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("sudo apt-get install -y debootstrap"),
        "{}",
        show(&out)
    );
    assert_eq!(host.apt_calls(), "", "apt-get was called");
}

#[test]
fn without_yes_and_without_a_terminal_it_asks_for_yes_and_installs_nothing() {
    ensure_engine_and_image();
    let host = FakeHost::new(0);
    let out = host.start_sh(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("start.sh --yes to let it install them"),
        "{}",
        show(&out)
    );
    assert_eq!(host.apt_calls(), "", "apt-get was called");
}
