//! A value written either as one string or as a list (`cmd: echo hi` or
//! `cmd: [echo, hi]`, `gpu: all` or `gpu: [0, 1]`): one serde visitor that
//! the types taking both shapes deserialize through.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// What was written: the string, or the list's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringOrList<T> {
    String(String),
    List(Vec<T>),
}

impl<T> StringOrList<T> {
    /// Reads either shape; `expecting` completes "invalid type: …, expected"
    /// in the error for anything else.
    pub fn deserialize<'de, D>(d: D, expecting: &'static str) -> Result<Self, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        d.deserialize_any(StringOrListVisitor {
            expecting,
            item: PhantomData,
        })
    }
}

struct StringOrListVisitor<T> {
    expecting: &'static str,
    item: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for StringOrListVisitor<T> {
    type Value = StringOrList<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(StringOrList::String(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<T>()? {
            items.push(item);
        }
        Ok(StringOrList::List(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: de::DeserializeOwned>(json: &str) -> Result<StringOrList<T>, String> {
        let mut d = serde_json::Deserializer::from_str(json);
        StringOrList::deserialize(&mut d, "a string or a list").map_err(|e| e.to_string())
    }

    #[test]
    fn both_shapes_and_the_expectation() {
        assert_eq!(
            read::<u32>("\"all\""),
            Ok(StringOrList::String("all".into()))
        );
        assert_eq!(read::<u32>("[0, 1]"), Ok(StringOrList::List(vec![0, 1])));
        let err = read::<String>("7").expect_err("a number is neither");
        assert!(
            err.starts_with("invalid type: integer `7`, expected a string or a list"),
            "{err}"
        );
    }
}
