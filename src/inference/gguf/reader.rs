//! GGUF container parsing (version 2 and 3): header, metadata key/values and
//! tensor descriptors, every read bounds-checked so a truncated or corrupt
//! file is an error naming what was being read, never a panic.

use std::collections::HashMap;

use super::quant::GgmlType;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Value>),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Where one tensor's bytes are.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: `dims[0]` varies fastest.
    pub dims: Vec<usize>,
    pub kind: GgmlType,
    /// Absolute byte range in the file.
    pub start: usize,
    pub end: usize,
}

/// A parsed GGUF file header.
#[derive(Debug)]
pub struct Header {
    pub metadata: HashMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
}

/// A parse failure; `what` names the field or tensor being read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a GGUF file (magic {0:?})")]
    Magic([u8; 4]),
    #[error("GGUF version {0} is not supported (2 or 3)")]
    Version(u32),
    #[error("truncated while reading {what} at byte {at}")]
    Truncated { what: String, at: usize },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| ParseError::Truncated {
            what: what.to_string(),
            at: self.pos,
        })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ParseError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
    fn u32(&mut self, what: &str) -> Result<u32, ParseError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, ParseError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn len(&mut self, what: &str) -> Result<usize, ParseError> {
        self.count(what, 1)
    }
    /// A count of items that take at least `min_size` bytes each: `count ×
    /// min_size` (checked) must fit in the bytes left, so an absurd count is
    /// refused before anything is allocated for it (issue 9, C14).
    fn count(&mut self, what: &str, min_size: usize) -> Result<usize, ParseError> {
        let n = self.u64(what)?;
        let left = self.buf.len() - self.pos;
        usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(min_size))
            .filter(|&bytes| bytes <= left)
            .map(|bytes| bytes / min_size)
            .ok_or_else(|| ParseError::Invalid {
                what: what.to_string(),
                reason: format!(
                    "{n} items of at least {min_size} bytes each do not fit in the {left} \
                     bytes left in the file"
                ),
            })
    }
    fn string(&mut self, what: &str) -> Result<String, ParseError> {
        let n = self.len(what)?;
        let bytes = self.take(n, what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
    fn value(&mut self, kind: u32, what: &str, depth: u32) -> Result<Value, ParseError> {
        Ok(match kind {
            0 => Value::Int(i64::from(self.array::<1>(what)?[0])),
            1 => Value::Int(i64::from(i8::from_le_bytes(self.array(what)?))),
            2 => Value::Int(i64::from(u16::from_le_bytes(self.array(what)?))),
            3 => Value::Int(i64::from(i16::from_le_bytes(self.array(what)?))),
            4 => Value::Int(i64::from(self.u32(what)?)),
            5 => Value::Int(i64::from(i32::from_le_bytes(self.array(what)?))),
            6 => Value::Float(f64::from(f32::from_le_bytes(self.array(what)?))),
            7 => Value::Bool(self.array::<1>(what)?[0] != 0),
            8 => Value::Str(self.string(what)?),
            9 if depth < 2 => {
                let inner = self.u32(what)?;
                let n = self.count(what, min_value_size(inner))?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(inner, what, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::Int(self.u64(what)? as i64),
            11 => Value::Int(i64::from_le_bytes(self.array(what)?)),
            12 => Value::Float(f64::from_le_bytes(self.array(what)?)),
            other => {
                return Err(ParseError::Invalid {
                    what: what.to_string(),
                    reason: format!("unknown value type {other}"),
                })
            }
        })
    }
}

/// The smallest tensor descriptor: name length, dimension count, one
/// dimension, type and offset.
const MIN_TENSOR_INFO: usize = 8 + 4 + 8 + 4 + 8;
/// The smallest metadata entry: key length, value type, a one-byte value.
const MIN_KEY_VALUE: usize = 8 + 4 + 1;

/// The fewest bytes a value of type `kind` takes (a string: its length; an
/// array: its type and count; an unknown type: 1, for the reader to refuse).
fn min_value_size(kind: u32) -> usize {
    match kind {
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        _ => 1,
    }
}

/// Parses the header of a whole GGUF file held in memory.
pub fn parse(buf: &[u8]) -> Result<Header, ParseError> {
    let mut c = Cursor { buf, pos: 0 };
    let magic = c.array::<4>("magic")?;
    if &magic != b"GGUF" {
        return Err(ParseError::Magic(magic));
    }
    let version = c.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(ParseError::Version(version));
    }
    let n_tensors = c.count("tensor count", MIN_TENSOR_INFO)?;
    let n_kv = c.count("metadata count", MIN_KEY_VALUE)?;
    let mut metadata = HashMap::new();
    for i in 0..n_kv {
        let key = c.string(&format!("metadata key #{i}"))?;
        let kind = c.u32(&key)?;
        let value = c.value(kind, &key, 0)?;
        metadata.insert(key, value);
    }
    let mut raw = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let name = c.string(&format!("tensor name #{i}"))?;
        let n_dims = c.u32(&name)? as usize;
        if n_dims == 0 || n_dims > 4 {
            return Err(ParseError::Invalid {
                what: name,
                reason: format!("{n_dims} dimensions"),
            });
        }
        let mut dims = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            dims.push(c.len(&name)?);
        }
        let kind_id = c.u32(&name)?;
        let offset = c.u64(&name)?;
        raw.push((name, dims, kind_id, offset));
    }
    let alignment = metadata
        .get("general.alignment")
        .and_then(Value::as_u64)
        .unwrap_or(32)
        .max(1) as usize;
    let data_start = c.pos.div_ceil(alignment) * alignment;
    let mut tensors = Vec::with_capacity(raw.len());
    for (name, dims, kind_id, offset) in raw {
        let invalid = |reason: String| ParseError::Invalid {
            what: format!("tensor {name}"),
            reason,
        };
        let kind = GgmlType::from_id(kind_id)
            .ok_or_else(|| invalid(format!("ggml type {kind_id} is not supported")))?;
        let count = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| invalid("element count overflows".into()))?;
        let bytes = kind
            .byte_len(count)
            .ok_or_else(|| invalid(format!("{count} elements do not fill {kind:?} blocks")))?;
        let start = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(data_start))
            .ok_or_else(|| invalid("offset overflows".into()))?;
        let end = start
            .checked_add(bytes)
            .filter(|&e| e <= buf.len())
            .ok_or_else(|| ParseError::Truncated {
                what: format!("tensor {name} data"),
                at: start,
            })?;
        tensors.push(TensorInfo {
            name,
            dims,
            kind,
            start,
            end,
        });
    }
    Ok(Header { metadata, tensors })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(n_tensors.to_le_bytes());
        b.extend(n_kv.to_le_bytes());
        b
    }

    fn parse_err(bytes: &[u8]) -> String {
        parse(bytes).expect_err("must fail").to_string()
    }

    #[test]
    fn counts_are_checked_against_the_bytes_left_times_their_size() {
        // 4 KB: room for 4 KB of one-byte items, not for 4 KB of descriptors.
        let mut b = header(4000, 0);
        b.resize(4096, 0);
        let e = parse_err(&b);
        assert!(
            e.contains("tensor count") && e.contains("4000 items of at least 32 bytes"),
            "{e}"
        );
        let mut b = header(0, 1 << 40);
        b.resize(4096, 0);
        let e = parse_err(&b);
        assert!(
            e.contains("metadata count") && e.contains("1099511627776 items"),
            "{e}"
        );
        let mut b = header(u64::MAX, 0);
        b.resize(4096, 0);
        assert!(parse_err(&b).contains("18446744073709551615 items"));
    }

    #[test]
    fn array_lengths_count_their_element_size() {
        let mut b = header(0, 1);
        b.extend(3u64.to_le_bytes());
        b.extend(b"arr");
        b.extend(9u32.to_le_bytes());
        b.extend(12u32.to_le_bytes());
        b.extend(1000u64.to_le_bytes());
        b.resize(4096, 0);
        let e = parse_err(&b);
        assert!(e.contains("arr: 1000 items of at least 8 bytes"), "{e}");
    }

    #[test]
    fn a_tensor_must_lie_inside_the_file() {
        let mut b = header(1, 0);
        b.extend(1u64.to_le_bytes());
        b.extend(b"t");
        b.extend(2u32.to_le_bytes());
        b.extend(1000u64.to_le_bytes());
        b.extend(1000u64.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.resize(4096, 0);
        let e = parse_err(&b);
        assert!(e.contains("tensor t data"), "{e}");
    }
}
