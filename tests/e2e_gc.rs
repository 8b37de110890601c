//! Disk hygiene (issue 18, `spec.gc`) on the real engine: the agent
//! removes the images its containers stopped using, past the disk
//! watermark, and keeps an image another container still uses, an image
//! it never used, and the images of its running components; in its podman
//! host it removes the job images no container uses and keeps one in use.

mod support;

use std::time::Duration;

use support::*;

/// Images built for this test, removed when dropped (by the run label).
struct TestImages;

impl TestImages {
    /// A distinct image (its own id) named `garage-test/gc-<run>-<name>:1`.
    fn build(name: &str) -> String {
        let tag = format!("garage-test/gc-{}-{name}:1", run_id());
        let dockerfile = format!(
            "FROM {IMAGE}\nLABEL {RUN_LABEL}={run} gc.image={name}\n",
            run = run_id()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
        docker_ok(&["build", "-q", "-t", &tag, dir.path().to_str().unwrap()]);
        tag
    }
}

impl Drop for TestImages {
    fn drop(&mut self) {
        let listed = docker(&[
            "images",
            "-q",
            "--filter",
            &format!("label={RUN_LABEL}={}", run_id()),
        ]);
        for id in String::from_utf8_lossy(&listed.stdout).lines() {
            let _ = docker(&["rmi", "-f", id]);
        }
    }
}

/// A container this test started, removed when dropped.
struct RemoveContainer(String);

impl Drop for RemoveContainer {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

fn image_exists(reference: &str) -> bool {
    docker(&["image", "inspect", reference]).status.success()
}

/// The node's spec with `components` on the given images, collecting every
/// second with a watermark any disk is above.
fn spec(node: &Node, components: &[(&str, &str)]) -> String {
    let comps: Vec<Component> = components
        .iter()
        .map(|(name, _)| Component::sleeper(name))
        .collect();
    let mut yaml = node.yaml(&comps);
    for (name, image) in components {
        yaml = yaml.replace(
            &format!("- name: {name}\n      image: {IMAGE}\n"),
            &format!("- name: {name}\n      image: {image}\n"),
        );
    }
    yaml.replacen(
        "spec:\n",
        "spec:\n  gc:\n    interval: 1s\n    minAge: 0s\n    highPercent: 1\n    lowPercent: 0\n",
        1,
    )
}

#[test]
fn unused_owned_images_go_and_images_in_use_or_not_ours_stay() {
    let node = Node::new("gc");
    let _images = TestImages;
    let old = TestImages::build("old");
    let shared = TestImages::build("shared");
    let kept = TestImages::build("kept");
    let unrelated = TestImages::build("unrelated");

    node.write_atomic(&spec(&node, &[("a", &old), ("b", &kept), ("c", &shared)]));
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    node.wait_running(&["a", "b", "c"], CONVERGE_TIMEOUT);
    let records = node.dir.path().join(".garage/gc/images.json");
    wait_until(
        "the images recorded as the node's",
        CONVERGE_TIMEOUT,
        POLL,
        || {
            let text = std::fs::read_to_string(&records).ok()?;
            (text.contains(&old) && text.contains(&shared)).then_some(())
        },
    );

    // Someone else's container takes `shared` into use.
    let foreign = format!("t{}-foreign-gc", run_id());
    docker_ok(&["run", "-d", "--name", &foreign, &shared, "sleep", "3600"]);
    let foreign = RemoveContainer(foreign);

    node.write_atomic(&spec(&node, &[("b", &kept)]));
    wait_until("the unused image removed", CONVERGE_TIMEOUT, POLL, || {
        (!image_exists(&old)).then_some(())
    });
    // Two more passes: nothing else goes.
    std::thread::sleep(Duration::from_millis(2_500));
    assert!(
        image_exists(&kept),
        "the image of a running component was removed"
    );
    assert!(
        image_exists(&shared),
        "an image another container uses was removed"
    );
    assert!(
        image_exists(&unrelated),
        "an image the node never used was removed"
    );
    let metrics = agent.metrics();
    assert_eq!(
        metric(
            &metrics,
            "garage_gc_removed_images_total",
            &[("reason", "disk-pressure")]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "garage_gc_reclaimed_bytes_total",
            &[("store", "docker")]
        )
        .is_some_and(|b| b > 0.0),
        "{metrics}"
    );
    let log = agent.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("removed an image the node no longer uses")
                && l.contains(&old)
                && l.contains("disk-pressure")),
        "the removal is logged with its reason:\n{log}"
    );

    // Once the other container is gone, `shared` is the node's unused image.
    drop(foreign);
    wait_until(
        "the image no longer in use removed",
        CONVERGE_TIMEOUT,
        POLL,
        || (!image_exists(&shared)).then_some(()),
    );
    assert!(image_exists(&kept) && image_exists(&unrelated));
}

#[test]
fn unused_job_images_in_the_podman_host_go_and_one_in_use_stays() {
    if !podman_prerequisites() {
        return;
    }
    let mut node = PodmanNode::new("gc-podman");
    let spec = std::fs::read_to_string(&node.spec).expect("read node.yaml");
    let spec = spec.replacen(
        "spec:\n",
        "spec:\n  gc:\n    interval: 1s\n    minAge: 0s\n    highPercent: 1\n    lowPercent: 0\n",
        1,
    );
    std::fs::write(&node.spec, spec).expect("write node.yaml");
    node.apply();
    // Two job images of the node's own, each with its own id: one a job
    // left behind, one a job still running.
    let job = node.write_job(
        "load.json",
        &serde_json::json!({"version": "0.1", "type": "container", "meta": {"name": "gc-load"}, "timeout": "1m",
            "ops": [{"type": "container/run", "id": "main", "args": {"image": IMAGE, "cmd": "true"}}]})
        .to_string(),
    );
    let (ok, report, stderr) = node.run_job(&job);
    assert!(ok, "the job that loads the image ran: {report} {stderr}");
    for name in ["gc-old", "gc-busy"] {
        node.podman(&[
            "run",
            "--name",
            name,
            IMAGE,
            "sh",
            "-c",
            &format!("echo {name} > /made-by"),
        ]);
        node.podman(&["commit", name, &format!("localhost/{name}:1")]);
        node.podman(&["rm", name]);
    }
    node.podman(&[
        "run",
        "-d",
        "--name",
        "busy",
        "localhost/gc-busy:1",
        "sleep",
        "3600",
    ]);
    let images = node.podman(&["images", "--format", "{{.Repository}}"]);
    assert!(
        images.contains("gc-old") && images.contains("gc-busy"),
        "{images}"
    );

    node.start_agent();
    wait_until(
        "the unused job image removed",
        CONVERGE_TIMEOUT,
        POLL,
        || {
            let images = node.podman(&["images", "--format", "{{.Repository}}"]);
            (!images.contains("gc-old")).then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(2_500));
    let images = node.podman(&["images", "--format", "{{.Repository}}"]);
    assert!(
        images.contains("gc-busy"),
        "the image a podman container uses was removed: {images}"
    );
}

#[test]
fn unused_model_files_go_and_files_in_use_or_never_used_stay() {
    let node = Node::new("gc-models");
    let volume = format!("t{}-gc-models", run_id());
    struct Volume(String);
    impl Drop for Volume {
        fn drop(&mut self) {
            let _ = docker(&["volume", "rm", "-f", &self.0]);
        }
    }
    docker_ok(&[
        "volume",
        "create",
        "--label",
        &format!("{RUN_LABEL}={}", run_id()),
        &volume,
    ]);
    let _volume = Volume(volume.clone());
    let mount = format!("{volume}:/models");
    docker_ok(&[
        "run",
        "--rm",
        "-v",
        &mount,
        IMAGE,
        "sh",
        "-c",
        "for m in old shared kept unrelated; do echo $m > /models/$m.gguf; done",
    ]);
    let files = || {
        let out = docker(&["run", "--rm", "-v", &mount, IMAGE, "ls", "/models"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Components shaped like the worker: `--model /models/…` with the
    // volume at /models.
    let uses = |models: &[(&str, &str)]| {
        let mut yaml = node
            .yaml(&[])
            .replace("  containers: []\n", "  containers:\n");
        yaml = yaml.replacen(
            "spec:\n",
            "spec:\n  gc:\n    interval: 1s\n    minAge: 0s\n    highPercent: 1\n    lowPercent: 0\n",
            1,
        );
        for (name, model) in models {
            yaml.push_str(&format!(
                "    - name: {name}\n      image: {IMAGE}\n      command: [sh, -c, \"sleep 3600\", --model, /models/{model}.gguf]\n      mounts:\n        - volume: {volume}\n          mountPath: /models\n"
            ));
        }
        yaml
    };
    node.write_atomic(&uses(&[("a", "old"), ("b", "shared"), ("c", "kept")]));
    let mut agent = Agent::start(&node);
    agent.wait_serving();
    node.wait_running(&["a", "b", "c"], CONVERGE_TIMEOUT);
    let records = node.dir.path().join(".garage/gc/models.json");
    wait_until(
        "the model files recorded as the node's",
        CONVERGE_TIMEOUT,
        POLL,
        || {
            let text = std::fs::read_to_string(&records).ok()?;
            (text.contains("old.gguf") && text.contains("shared.gguf")).then_some(())
        },
    );
    // Someone else's worker names `shared`.
    let foreign = format!("t{}-foreign-gc-models", run_id());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &foreign,
        "-v",
        &mount,
        IMAGE,
        "sh",
        "-c",
        "sleep 3600",
        "--model",
        "/models/shared.gguf",
    ]);
    let _foreign = RemoveContainer(foreign);

    node.write_atomic(&uses(&[("c", "kept")]));
    wait_until(
        "the unused model file removed",
        CONVERGE_TIMEOUT,
        POLL,
        || (!files().contains("old.gguf")).then_some(()),
    );
    std::thread::sleep(Duration::from_millis(2_500));
    let left = files();
    assert!(
        left.contains("kept.gguf"),
        "the running component's model was removed: {left}"
    );
    assert!(
        left.contains("shared.gguf"),
        "a model another container names was removed: {left}"
    );
    assert!(
        left.contains("unrelated.gguf"),
        "a model the node never used was removed: {left}"
    );
    let metrics = agent.metrics();
    assert_eq!(
        metric(
            &metrics,
            "garage_gc_removed_images_total",
            &[("store", "models"), ("reason", "disk-pressure")]
        ),
        Some(1.0),
        "{metrics}"
    );
}
