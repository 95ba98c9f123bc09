//! Serialization of image documents with sorted object keys.
//!
//! A config or manifest is content-addressed, so its bytes must not change between runs.
//! oci-spec keeps `ExposedPorts`, labels and annotations in `HashMap`s, whose iteration order is
//! random per process; serializing through a recursively key-sorted `serde_json::Value` makes
//! the output depend only on the content.

use serde::Serialize;
use serde_json::{Map, Value};

/// Serializes `value` as compact JSON with every object's keys in byte order.
pub(crate) fn to_vec<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let value = sort_keys(serde_json::to_value(value)?);
    serde_json::to_vec(&value)
}

/// Rebuilds `value` with sorted keys, whatever map type serde_json was built with.
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut sorted = Map::new();
            for (k, v) in entries {
                sorted.insert(k, sort_keys(v));
            }
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let mut inner = HashMap::new();
        for k in ["zeta", "alpha", "mid", "Beta", "10/tcp", "9/tcp"] {
            inner.insert(k.to_string(), vec![HashMap::from([("y", 1), ("x", 2)])]);
        }
        let outer = HashMap::from([("b", inner.clone()), ("a", inner)]);
        let text = String::from_utf8(to_vec(&outer).unwrap()).unwrap();
        let row = r#"[{"x":2,"y":1}]"#;
        let obj = format!(
            r#"{{"10/tcp":{row},"9/tcp":{row},"Beta":{row},"alpha":{row},"mid":{row},"zeta":{row}}}"#
        );
        assert_eq!(text, format!(r#"{{"a":{obj},"b":{obj}}}"#));
    }
}
