//! Job files: parsing, validation with locations, the committed schema and
//! the examples.

use std::path::Path;

use crate::jobs::parse;

fn err(text: &str) -> String {
    parse(text, Path::new("job.yaml"))
        .expect_err("invalid job")
        .to_string()
}

const MINIMAL: &str = "version: \"0.1\"\ntype: container\nops:\n  - type: container/run\n    id: hello\n    args:\n      image: garage-test/busybox:1\n      cmd: echo hi\n";

#[test]
fn minimal_job_takes_defaults() {
    let job = parse(MINIMAL, Path::new("Hello_World.yaml")).expect("valid");
    assert_eq!(job.name, "hello-world");
    assert_eq!(job.timeout, std::time::Duration::from_secs(600));
    assert_eq!(
        job.ops[0].cmd.as_deref(),
        Some(&["/bin/sh".to_string(), "-c".into(), "echo hi".into()][..])
    );
    assert!(!job.wants_gpu());
}

#[test]
fn json_is_accepted() {
    let text = r#"{"version": "0.1", "type": "container", "timeout": "30s",
      "ops": [{"type": "container/run", "id": "a", "args": {"image": "busybox", "cmd": ["true"], "expose": 8080}}]}"#;
    let job = parse(text, Path::new("job.json")).expect("valid");
    assert_eq!(job.ops[0].expose, vec![8080]);
}

#[test]
fn unknown_field_points_at_the_key() {
    let text = MINIMAL.replace(
        "      cmd: echo hi\n",
        "      cmd: echo hi\n      gpus: true\n",
    );
    assert_eq!(
        err(&text),
        "job.yaml:9:7: ops[0].args.gpus: unknown field `gpus`, expected one of `image`, `cmd`, `entrypoint`, `env`, `work_dir`, `gpu`, `required_vram`, `volumes`, `expose`, `resources`, `output` (fix: check the spelling; manifests/job.schema.json lists every field)"
    );
}

#[test]
fn bad_values_name_their_field() {
    let text = MINIMAL.replace("type: container/run", "type: container/exec");
    assert!(
        err(&text).starts_with("job.yaml:4:11: ops[0].type: unknown variant `container/exec`"),
        "{}",
        err(&text)
    );
    let text = MINIMAL.replace("ops:", "timeout: soon\nops:");
    assert!(err(&text).starts_with("job.yaml:3:10: timeout: invalid duration `soon`"));
    let text = MINIMAL.replace(
        "      cmd: echo hi\n",
        "      cmd: echo hi\n      resources: {memory: lots}\n",
    );
    assert!(
        err(&text).starts_with("job.yaml:9:27: ops[0].args.resources.memory: invalid size `lots`"),
        "{}",
        err(&text)
    );
    let text = MINIMAL.replace(
        "    args:",
        "    results:\n      loss: \"([0-9\"\n    args:",
    );
    assert!(
        err(&text).starts_with("job.yaml:7:13: ops[0].results.loss: invalid regular expression"),
        "{}",
        err(&text)
    );
    let text = MINIMAL.replace(
        "      cmd: echo hi\n",
        "      cmd: echo hi\n      required_vram: 4\n",
    );
    assert!(err(&text).contains("ops[0].args.required_vram: `required_vram` needs `gpu: true`"));
}

#[test]
fn duplicate_op_ids_are_rejected() {
    let text =
        format!("{MINIMAL}  - type: container/run\n    id: hello\n    args: {{image: busybox}}\n");
    assert!(
        err(&text)
            .starts_with("job.yaml:10:9: ops[1].id: the id `hello` is already used by ops[0]"),
        "{}",
        err(&text)
    );
}

#[test]
fn committed_schema_is_current() {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests/job.schema.json");
    let generated =
        serde_json::to_string_pretty(&crate::jobs::schema()).expect("schema is JSON") + "\n";
    if std::env::var_os("GARAGE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write manifests/job.schema.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "manifests/job.schema.json is out of date with src/jobs; regenerate it with \
         `garage job schema > manifests/job.schema.json` or `GARAGE_BLESS=1 cargo test --lib jobs`"
    );
}

#[test]
fn every_example_job_validates() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/jobs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/jobs exists") {
        let path = entry.expect("readable entry").path();
        crate::jobs::load(&path).unwrap_or_else(|err| panic!("{err}"));
        seen += 1;
    }
    assert!(
        seen >= 2,
        "expected at least two example jobs, found {seen}"
    );
}
