//! A plain HTTP/1.1 GET for `/status` and `/metrics`, and parsers for
//! what they return.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

// --------------------------------------------------------------------- http

/// Minimal HTTP/1.1 GET (Connection: close); returns (status code, body).
/// Handles `Content-Length`, chunked and read-to-close bodies.
pub fn http_get(base: &str, path: &str) -> Result<(u16, String), String> {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let sock: SocketAddr = addr
        .parse()
        .map_err(|e| format!("bad address {addr}: {e}"))?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.set_write_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Ok((code, String::from_utf8_lossy(&body).to_string()))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line")?;
        let size_txt = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_txt.split(';').next().unwrap().trim(), 16)
            .map_err(|e| format!("chunk size {size_txt:?}: {e}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
}

// ------------------------------------------------------------ status, metrics

/// The entry of `components` named `name` in a `/status` document.
pub fn component<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["components"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

/// The condition of type `ty` in a `/status` document.
pub fn condition<'a>(status: &'a Value, ty: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

/// `status` of condition `ty` ("True"/"False"/"Unknown"), or "" if absent.
pub fn condition_status(status: &Value, ty: &str) -> String {
    condition(status, ty)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The value of one sample `name{labels...}` in Prometheus text; `labels`
/// must all match (others may be present). `None` when absent.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_samples(text, name)
        .into_iter()
        .find(|(ls, _)| {
            labels
                .iter()
                .all(|(k, v)| ls.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
}

/// Sum of every sample of `name` (any labels); `None` when there is none.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let s = metric_samples(text, name);
    (!s.is_empty()).then(|| s.iter().map(|(_, v)| v).sum())
}

/// Every sample of exactly `name`, with its labels.
pub fn metric_samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
            let Some(end) = r.find('}') else { continue };
            (parse_labels(&r[..end]), r[end + 1..].trim())
        } else if rest.starts_with(' ') {
            (BTreeMap::new(), rest.trim())
        } else {
            continue; // another metric sharing the prefix
        };
        let value = value.split_whitespace().next().unwrap_or_default();
        if let Ok(v) = value.parse::<f64>() {
            found.push((labels, v));
        }
    }
    found
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        let Some(after) = after.strip_prefix('"') else {
            break;
        };
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        m.insert(key, val);
        rest = &after[end..];
    }
    m
}

/// True when `msg` holds `FILE:LINE:COL` for this file name and line
/// (any column), e.g. `/tmp/x/node.yaml:12:7`.
pub fn has_location(msg: &str, file_name: &str, line: usize) -> bool {
    let needle = format!("{file_name}:{line}:");
    msg.match_indices(&needle).any(|(i, _)| {
        msg[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}
