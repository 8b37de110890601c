//! Submissions: defaults, the container document through the job file's
//! validation (field paths), inference fields, placement and durations.

use serde_json::json;

use super::*;

fn container(document: serde_json::Value) -> JobSubmission {
    serde_json::from_value(json!({"job": document})).expect("submission")
}

fn hello() -> serde_json::Value {
    json!({
        "version": "0.1",
        "type": "container",
        "timeout": "1m",
        "ops": [{"type": "container/run", "id": "hello", "args": {"image": "busybox:1", "cmd": "echo hi"}}]
    })
}

#[test]
fn a_container_job_takes_its_own_timeout_and_two_attempts() {
    let job = check(container(hello())).expect("valid");
    assert_eq!(job.kind, JobType::Container);
    assert_eq!(job.timeout, Duration::from_secs(60));
    assert_eq!(job.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(job.expires_after, None);
    assert_eq!(job.spec, hello());
}

#[test]
fn a_malformed_container_job_names_the_field() {
    let mut document = hello();
    document["ops"][0]["args"]["imagee"] = json!("x");
    let err = check(container(document)).expect_err("unknown field");
    assert_eq!((err.status.as_u16(), err.code), (400, "invalid_job"));
    assert!(err.message.contains("`job.ops[0].args"), "{}", err.message);
    let mut document = hello();
    document["ops"][0]["id"] = json!("Not A Label");
    let err = check(container(document)).expect_err("bad id");
    assert!(err.message.contains("job.ops[0].id"), "{}", err.message);
}

#[test]
fn inference_jobs_need_a_model_and_messages_or_a_prompt() {
    let ok: JobSubmission = serde_json::from_value(json!({
        "type": "inference",
        "inference": {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
        "placement": {"market": "rtx-4090"},
        "timeout": "30s",
        "expiresAfter": "1h",
        "maxAttempts": 3
    }))
    .expect("submission");
    let job = check(ok.clone()).expect("valid");
    assert_eq!(
        (job.timeout, job.expires_after, job.max_attempts),
        (Duration::from_secs(30), Some(Duration::from_secs(3600)), 3)
    );
    for (patch, field) in [
        (json!({"model": ""}), "inference.model"),
        (json!({"prompt": "both"}), "`inference`"),
        (json!({"max_tokens": 0}), "inference.max_tokens"),
        (json!({"temperature": 9.0}), "inference.temperature"),
        (
            json!({"messages": [{"role": "robot", "content": "x"}]}),
            "inference.messages[0].role",
        ),
    ] {
        let mut bad = serde_json::to_value(&ok).expect("json");
        for (key, value) in patch.as_object().expect("object") {
            bad["inference"][key] = value.clone();
        }
        let bad: JobSubmission = serde_json::from_value(bad).expect("shape");
        let err = check(bad).expect_err(field);
        assert!(err.message.contains(field), "{field}: {}", err.message);
    }
}

#[test]
fn residency_and_green_placement_are_accepted_when_well_formed() {
    let submission: JobSubmission = serde_json::from_value(json!({
        "job": hello(),
        "placement": {
            "constraints": {"residency": {"countries": ["SE"], "eu": true, "priceAreas": ["SE3", "SE4"]}},
            "energy": "prefer-green",
            "greenWait": "30m"
        }
    }))
    .expect("shape");
    let job = check(submission).expect("valid");
    assert_eq!(
        super::green_wait(&job.placement),
        Some(std::time::Duration::from_secs(1800))
    );
    let unknown = serde_json::from_value::<JobSubmission>(
        json!({"job": hello(), "placement": {"constraints": {"country": "SE"}}}),
    );
    assert!(unknown.is_err(), "unknown constraints are refused");
}

#[test]
fn placement_durations_and_attempts_are_bounded() {
    for (patch, field) in [
        (
            json!({"placement": {"constraints": {"residency": {}}}}),
            "placement.constraints.residency",
        ),
        (
            json!({"placement": {"constraints": {"residency": {"countries": ["SE", "XX"]}}}}),
            "placement.constraints.residency.countries[1]",
        ),
        (
            json!({"placement": {"constraints": {"residency": {"priceAreas": ["SE5"]}}}}),
            "placement.constraints.residency.priceAreas[0]",
        ),
        (
            json!({"placement": {"constraints": {"residency": {"countries": ["DE"], "priceAreas": ["SE3"]}}}}),
            "placement.constraints.residency",
        ),
        (
            json!({"placement": {"greenWait": "5m"}}),
            "placement.greenWait",
        ),
        (
            json!({"placement": {"energy": "prefer-green", "greenWait": "9999h"}}),
            "placement.greenWait",
        ),
        (json!({"timeout": "0s"}), "timeout"),
        (json!({"expiresAfter": "soon"}), "expiresAfter"),
        (json!({"maxAttempts": 0}), "maxAttempts"),
        (json!({"maxAttempts": 11}), "maxAttempts"),
        (json!({"type": "inference"}), "job"),
    ] {
        let mut value = json!({"job": hello()});
        for (key, v) in patch.as_object().expect("object") {
            value[key] = v.clone();
        }
        let submission: JobSubmission = serde_json::from_value(value).expect("shape");
        let err = check(submission).expect_err(field);
        assert!(err.message.contains(field), "{field}: {}", err.message);
    }
}

#[test]
fn a_job_asking_for_vram_sets_the_placement_minimum() {
    let mut document = hello();
    document["meta"] = json!({"system_requirements": {"required_vram": 8}});
    let job = check(container(document)).expect("valid");
    assert_eq!(job.placement.min_vram_mib, Some(7630));
}
