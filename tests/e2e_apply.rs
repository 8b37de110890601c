//! One-shot commands against the real engine: `apply`, `plan`, `down`,
//! `validate`, `schema`.

mod support;

use support::*;

/// Acceptance: apply on an empty engine creates everything; a second apply
/// changes nothing (container IDs unchanged, plan empty).
#[test]
fn apply_creates_everything_and_second_apply_changes_nothing() {
    let node = Node::new("apply-idem");
    let comps = [
        Component::sleeper("alpha"),
        Component::sleeper("beta").env("GREETING", "hello world"),
        Component::sleeper("gamma"),
    ];
    node.write(&comps);
    let path = node.path.to_str().unwrap();

    apply_ok(&node);
    let first = node.wait_running(&["alpha", "beta", "gamma"], CONVERGE_TIMEOUT);
    for (comp, c) in &first {
        assert_eq!(
            c.name,
            format!("garage-{}-{comp}", node.name),
            "container name"
        );
        assert_eq!(c.labels.get(MANAGED_BY).map(String::as_str), Some("garage"));
        assert_eq!(c.labels.get(NODE_LABEL), Some(&node.name));
        assert_eq!(c.labels.get(COMPONENT_LABEL), Some(comp));
        let hash = c.labels.get(HASH_LABEL).expect("config-hash label");
        assert!(
            !hash.is_empty() && hash.chars().all(|ch| ch.is_ascii_hexdigit()),
            "config-hash label is not hex: {hash:?}"
        );
        assert_eq!(
            c.labels.get(RUN_LABEL).map(String::as_str),
            Some(run_id()),
            "metadata.labels are put on the container"
        );
    }
    let env = docker_ok(&[
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        &first["beta"].id,
    ]);
    assert!(env.contains("GREETING=hello world"), "env of beta: {env}");

    let out = garage(&["plan", "-f", path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan after apply must be empty: {}",
        show(&out)
    );

    apply_ok(&node);
    let second = node.owned();
    assert_eq!(
        describe(&first),
        describe(&second),
        "second apply must change nothing"
    );
    for (comp, c) in &first {
        assert_eq!(
            c.started_at, second[comp].started_at,
            "{comp} was restarted"
        );
    }
}

/// `garage plan` on a node with nothing created yet: exit 2, one step per
/// component with a cause; nothing is created by a plan.
#[test]
fn plan_lists_pending_creates_and_changes_nothing() {
    let node = Node::new("plan-pending");
    node.write(&[Component::sleeper("one"), Component::sleeper("two")]);
    let out = garage(&["plan", "-f", node.path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "plan with pending creates: {}",
        show(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for comp in ["one", "two"] {
        assert!(
            text.contains(comp),
            "plan does not mention {comp}: {}",
            show(&out)
        );
    }
    assert!(
        text.to_lowercase().contains("create"),
        "plan does not say it will create: {}",
        show(&out)
    );
    assert!(
        node.owned().is_empty(),
        "plan created containers: {}",
        describe(&node.owned())
    );
}

/// `garage down` removes every container the node owns and nothing else:
/// not an unlabelled container from the same image, not another node's.
#[test]
fn down_removes_owned_containers_only() {
    let node = Node::new("down");
    let other = Node::new("down-other");
    let foreign = ForeignContainer::start("down");
    node.write(&[Component::sleeper("a"), Component::sleeper("b")]);
    other.write(&[Component::sleeper("a")]);
    apply_ok(&node);
    apply_ok(&other);
    node.wait_running(&["a", "b"], CONVERGE_TIMEOUT);
    let other_before = other.wait_running(&["a"], CONVERGE_TIMEOUT);
    let foreign_before = foreign.inspect().expect("foreign container exists");

    let out = garage(&["down", "-f", node.path.to_str().unwrap()]);
    assert!(out.status.success(), "garage down failed: {}", show(&out));

    let left = containers_with_labels(&[(NODE_LABEL, &node.name)]);
    assert!(left.is_empty(), "down left containers: {left:?}");
    assert_eq!(
        describe(&other.owned()),
        describe(&other_before),
        "down touched another node's containers"
    );
    assert_eq!(
        foreign.inspect(),
        Some(foreign_before),
        "down touched an unlabelled container"
    );
}

/// `garage validate`: exit 0 on a good file; exit 1 with file:line:col on
/// stderr for an unknown field and for broken YAML.
#[test]
fn validate_reports_file_line_column() {
    let node = Node::new("validate");
    let good = node.yaml(&[Component::sleeper("a")]);
    node.write_atomic(&good);
    let path = node.path.to_str().unwrap();
    let out = garage(&["validate", path]);
    assert_eq!(out.status.code(), Some(0), "valid file: {}", show(&out));

    // Unknown field inside the first container.
    let bad = good.replace("    - name: a\n", "    - name: a\n      bogusField: 1\n");
    node.write_atomic(&bad);
    let line = node.line_of(&bad, "bogusField");
    let out = garage(&["validate", path]);
    assert_eq!(out.status.code(), Some(1), "unknown field: {}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        has_location(&err, "node.yaml", line),
        "stderr lacks node.yaml:{line}:COL: {}",
        show(&out)
    );
    assert!(
        err.contains("bogusField"),
        "stderr does not name the field: {err}"
    );

    // Broken YAML (an unclosed flow sequence).
    let broken = good.replace("command: [sleep, \"3600\"]", "command: [sleep, \"3600\"");
    assert_ne!(broken, good);
    node.write_atomic(&broken);
    let out = garage(&["validate", path]);
    assert_eq!(out.status.code(), Some(1), "broken YAML: {}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node.yaml:") && err.chars().any(|c| c.is_ascii_digit()),
        "stderr lacks a location: {}",
        show(&out)
    );
}

/// `garage schema` prints the JSON Schema of node.yaml.
#[test]
fn schema_prints_json_schema() {
    let out = garage(&["schema"]);
    assert!(out.status.success(), "garage schema: {}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(&out)));
    assert!(
        v.get("properties").is_some() || v.get("$defs").is_some(),
        "no schema: {v}"
    );
}
