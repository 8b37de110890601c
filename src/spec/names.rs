//! Syntax of the names a spec carries: DNS labels, label keys, image
//! references, volume names, environment keys, capabilities, devices. Each
//! check returns why a name is wrong, as text for the error message.

use std::collections::BTreeMap;

use super::label_keys;
use super::limits::{MAX_ENV_STRING_BYTES, MAX_ENV_TOTAL_BYTES};

/// RFC 1123 label: 1-63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("`{name}` must be 1-63 characters long"));
    }
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = !name.starts_with('-') && !name.ends_with('-');
    if ok_chars && ok_ends {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a DNS label (lowercase letters, digits and `-`, not at either end)"
        ))
    }
}

/// Kubernetes label key: `[prefix/]name`, prefix a DNS subdomain, name 1-63
/// of `[A-Za-z0-9-_.]` starting and ending alphanumeric.
pub fn label_key(key: &str) -> Result<(), String> {
    if key.starts_with(label_keys::PREFIX) {
        return Err(format!(
            "label key `{key}` uses the prefix `{}`, reserved for the agent's ownership labels",
            label_keys::PREFIX
        ));
    }
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty()
            || prefix.len() > 253
            || !prefix.split('.').all(|p| dns_label(p).is_ok())
        {
            return Err(format!(
                "label key `{key}` has a prefix that is not a DNS subdomain"
            ));
        }
        if prefix == "garage.ai" || prefix.ends_with(".garage.ai") {
            return Err(format!(
                "label key `{key}` uses the reserved prefix `garage.ai/`"
            ));
        }
    }
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    let ok_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.len() <= 63 && ok_chars && ok_ends {
        Ok(())
    } else {
        Err(format!(
            "label key `{key}` must be `[prefix/]name`, name 1-63 letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit"
        ))
    }
}

/// Docker volume name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn volume_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    if first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a volume name (letters, digits, `_`, `.`, `-`, starting with a letter or digit)"
        ))
    }
}

/// Environment variable name: not empty, no `=`, no NUL.
pub fn env_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.contains(['=', '\0']) {
        Err(format!("`{key}` is not an environment variable name"))
    } else {
        Ok(())
    }
}

/// Sizes of an environment as execve takes it: each `KEY=VALUE` string
/// within MAX_ARG_STRLEN and without NUL, and the whole within a sane
/// total; on failure the key to blame and why.
pub fn env_sizes(env: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    let mut total = 0usize;
    for (key, value) in env {
        if value.contains('\0') {
            return Err((key.clone(), "the value holds a NUL byte".into()));
        }
        let string = key.len() + 1 + value.len();
        if string > MAX_ENV_STRING_BYTES {
            return Err((
                key.clone(),
                format!(
                    "`{key}=…` is {string} bytes, over the kernel's limit of {MAX_ENV_STRING_BYTES} bytes for one environment string (128 KiB with its NUL)"
                ),
            ));
        }
        total += string + 1;
        if total > MAX_ENV_TOTAL_BYTES {
            return Err((
                key.clone(),
                format!(
                    "the environment up to `{key}` is {total} bytes, over the limit of {MAX_ENV_TOTAL_BYTES} bytes (1 MiB) for one container"
                ),
            ));
        }
    }
    Ok(())
}

/// Capability name as Docker takes it: `ALL` or upper-case letters and `_`,
/// with or without the `CAP_` prefix.
pub fn capability(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a capability name (like `NET_ADMIN` or `ALL`)"
        ))
    }
}

/// Absolute, non-root-escaping path.
pub fn absolute_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') && !path.split('/').any(|part| part == "..") {
        Ok(())
    } else {
        Err(format!("`{path}` must be an absolute path without `..`"))
    }
}

/// A device as `--device` takes it: `host[:container[:permissions]]`;
/// returns (host, container, permissions).
pub fn device(text: &str) -> Result<(String, String, String), String> {
    let mut parts = text.split(':');
    let host = parts.next().unwrap_or_default();
    let container = parts.next().unwrap_or(host);
    let permissions = parts.next().unwrap_or("rwm");
    if parts.next().is_some() {
        return Err(format!("`{text}` has too many `:`"));
    }
    absolute_path(host)?;
    absolute_path(container)?;
    if permissions.is_empty() || !permissions.chars().all(|c| "rwm".contains(c)) {
        return Err(format!("`{permissions}` must be made of `r`, `w`, `m`"));
    }
    Ok((
        host.to_owned(),
        container.to_owned(),
        permissions.to_owned(),
    ))
}

/// Docker image reference: `[host[:port]/]path[:tag][@algo:hex]`, path
/// components lower case.
pub fn image_reference(image: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`{image}` is not an image reference: {why}"));
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let Some((algo, hex)) = digest.split_once(':') else {
            return bad("the digest must be `algorithm:hex`");
        };
        let algo_ok = !algo.is_empty() && algo.bytes().all(|b| b.is_ascii_alphanumeric());
        if !algo_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad("the digest must be `algorithm:hex`");
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok {
            return bad("the tag must be letters, digits, `_`, `.`, `-` (at most 128)");
        }
    }
    if name.is_empty() {
        return bad("the name is empty");
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    let is_host = components.len() > 1
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.bytes().any(|b| b.is_ascii_uppercase()));
    if is_host {
        let (host, port) = first.split_once(':').unwrap_or((first, "1"));
        let host_ok = !host.is_empty()
            && host.split('.').all(|p| {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !host_ok || port.parse::<u16>().is_err() {
            return bad("the registry host is malformed");
        }
        components.remove(0);
    }
    for component in components {
        if !path_component(component) {
            return bad("path components are lowercase letters and digits separated by `.`, `_`, `__` or `-`");
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images() {
        for good in [
            "busybox",
            "garage/podman:0.1",
            "garage-test/busybox:1",
            "localhost:5000/a/b:latest",
            "ghcr.io/org/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "docker.io/library/debian:bookworm-slim",
        ] {
            assert_eq!(image_reference(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Busybox",
            "a//b",
            "img:",
            "img:ta g",
            "-img",
            "img@sha256:xyz",
            "a/b:c:d",
        ] {
            assert!(image_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_and_names() {
        assert!(dns_label("garage-node-1").is_ok());
        assert!(dns_label("Garage").is_err());
        assert!(dns_label("-a").is_err());
        assert!(label_key("fleet").is_ok());
        assert!(label_key("example.com/fleet").is_ok());
        assert!(label_key("garage.ai/owned").is_err());
        assert!(label_key("ai.garage.node").is_err());
        assert!(label_key("bad key").is_err());
        assert_eq!(
            device("/dev/fuse"),
            Ok(("/dev/fuse".into(), "/dev/fuse".into(), "rwm".into()))
        );
        assert!(device("/dev/a:/dev/b:rx").is_err());
    }

    #[test]
    fn environment_sizes() {
        let env = |value: String| BTreeMap::from([("K".to_owned(), value)]);
        // `K=` plus the value is exactly MAX_ARG_STRLEN less its NUL.
        assert!(env_sizes(&env("v".repeat(MAX_ENV_STRING_BYTES - 2))).is_ok());
        let (key, why) = env_sizes(&env("v".repeat(MAX_ENV_STRING_BYTES - 1))).unwrap_err();
        assert_eq!(key, "K");
        assert!(why.contains("131072"), "{why}");
        assert!(env_sizes(&env("a\0b".into())).is_err());
        let many: BTreeMap<String, String> = (0..9)
            .map(|i| (format!("K{i}"), "v".repeat(120 << 10)))
            .collect();
        let (key, why) = env_sizes(&many).unwrap_err();
        assert_eq!(key, "K8");
        assert!(why.contains("1 MiB"), "{why}");
    }
}
