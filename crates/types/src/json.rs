//! The strict JSON layer: parsing text into a `serde_json::Value` (rejecting duplicate keys), and
//! walking values into typed structs with errors that name the field's JSON path.
//!
//! Every wire type implements [`FromJson`]; its serde `Deserialize` goes through the same code,
//! so `serde_json::from_str`, axum's `Json` extractor and the header codecs all enforce the same
//! rules.

use std::fmt;

use alloy_primitives::{Address, B256, Bytes};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::DecodeError;
use crate::amount::Amount;
use crate::primitives::{self, MAX_SIGNATURE_BYTES};

/// Types decoded strictly from a JSON value; `path` is the value's JSON path (empty at the root).
pub trait FromJson: Sized {
    /// Decodes `value`, naming fields relative to `path` in errors.
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError>;
}

/// Implements `serde::Deserialize` for a [`FromJson`] type (via `serde_json::Value`). The
/// crate using it needs `serde` and `serde_json` as dependencies.
#[doc(hidden)]
#[macro_export]
macro_rules! deserialize_via_from_json {
    ($ty:ty) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
                <$ty as $crate::json::FromJson>::from_json(&value, "")
                    .map_err(<D::Error as serde::de::Error>::custom)
            }
        }
    };
}
pub use crate::deserialize_via_from_json;

/// Parses JSON text into a value, rejecting duplicate object keys (which different parsers
/// resolve differently) and trailing data. `what` names the input in errors.
pub fn parse_strict(text: &str, what: &'static str) -> Result<Value, DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = StrictValue
        .deserialize(&mut deserializer)
        .and_then(|v| deserializer.end().map(|()| v))
        .map_err(|e| DecodeError::Json {
            what,
            reason: e.to_string(),
        })?;
    Ok(value)
}

/// A `serde_json::Value` seed that refuses duplicate keys.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // Non-finite values cannot come out of JSON text; map them to null defensively.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        StrictValue.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    truncate(&key)
                )));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// `path.key` (or `key` at the root).
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[index]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The JSON type name of a value, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// At most 64 characters of `s`, for echoing a hostile value in an error.
pub fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn wrong_type(value: &Value, path: &str, expected: &'static str) -> DecodeError {
    DecodeError::WrongType {
        field: path.to_owned(),
        expected,
        found: type_name(value),
    }
}

/// The value as an object.
pub fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, DecodeError> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(value, path, "an object"))
}

/// The value as an array.
pub fn array<'v>(value: &'v Value, path: &str) -> Result<&'v Vec<Value>, DecodeError> {
    value
        .as_array()
        .ok_or_else(|| wrong_type(value, path, "an array"))
}

/// The value as a string.
pub fn string<'v>(value: &'v Value, path: &str) -> Result<&'v str, DecodeError> {
    value
        .as_str()
        .ok_or_else(|| wrong_type(value, path, "a string"))
}

/// The value as a non-empty string.
pub fn non_empty_string(value: &Value, path: &str) -> Result<String, DecodeError> {
    let s = string(value, path)?;
    if s.is_empty() {
        return Err(DecodeError::InvalidValue {
            field: path.to_owned(),
            value: String::new(),
            expected: "expected a non-empty string",
        });
    }
    Ok(s.to_owned())
}

/// The value as a boolean.
pub fn boolean(value: &Value, path: &str) -> Result<bool, DecodeError> {
    value
        .as_bool()
        .ok_or_else(|| wrong_type(value, path, "a boolean"))
}

/// The value as an integer in `min..=max` (JSON numbers only; no strings, fractions or
/// exponents).
pub fn integer(value: &Value, path: &str, min: u64, max: u64) -> Result<u64, DecodeError> {
    let Value::Number(n) = value else {
        return Err(wrong_type(value, path, "a non-negative integer"));
    };
    let out_of_range = || DecodeError::OutOfRange {
        field: path.to_owned(),
        value: n.to_string(),
        min,
        max,
    };
    match n.as_u64() {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(_) => Err(out_of_range()),
        // Negative integers, and integers too large for u64 (parsed as floats), are out of
        // range; fractions and exponents are not integers.
        None if n.is_i64() => Err(out_of_range()),
        None if n
            .as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f > u64::MAX as f64) =>
        {
            Err(out_of_range())
        }
        None => Err(DecodeError::WrongType {
            field: path.to_owned(),
            expected: "a non-negative integer",
            found: "a number with a fraction or an exponent",
        }),
    }
}

/// The value as a string of type `expected`, parsed with `parse`; `invalid(path, reason)` is the
/// error when it does not parse.
fn parsed<T, R>(
    value: &Value,
    path: &str,
    expected: &'static str,
    parse: impl FnOnce(&str) -> Result<T, R>,
    invalid: impl FnOnce(String, R) -> DecodeError,
) -> Result<T, DecodeError> {
    let s = value
        .as_str()
        .ok_or_else(|| wrong_type(value, path, expected))?;
    parse(s).map_err(|reason| invalid(path.to_owned(), reason))
}

/// The value as a strict decimal-string amount.
pub fn amount(value: &Value, path: &str) -> Result<Amount, DecodeError> {
    parsed(
        value,
        path,
        "a decimal string",
        Amount::parse,
        |field, reason| DecodeError::InvalidAmount { field, reason },
    )
}

/// The value as an address (checksum verified when mixed case).
pub fn address(value: &Value, path: &str) -> Result<Address, DecodeError> {
    parsed(
        value,
        path,
        "an address string",
        primitives::parse_address,
        |field, reason| DecodeError::InvalidAddress { field, reason },
    )
}

/// The value as a 32-byte hex word.
pub fn b256(value: &Value, path: &str) -> Result<B256, DecodeError> {
    let expected = "a 0x-prefixed 32-byte hex string";
    parsed(value, path, expected, primitives::parse_b256, invalid_hex)
}

/// The value as a signature byte string.
pub fn signature(value: &Value, path: &str) -> Result<Bytes, DecodeError> {
    let parse = |s: &str| primitives::parse_bytes(s, MAX_SIGNATURE_BYTES);
    parsed(value, path, "a 0x-prefixed hex string", parse, invalid_hex)
}

/// [`DecodeError::InvalidHex`] at `field`.
fn invalid_hex(field: String, reason: primitives::HexError) -> DecodeError {
    DecodeError::InvalidHex { field, reason }
}

/// One of a fixed set of string values.
pub fn one_of<T: Copy>(
    value: &Value,
    path: &str,
    allowed: &[(&str, T)],
    expected: &'static str,
) -> Result<T, DecodeError> {
    let s = string(value, path)?;
    allowed
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| DecodeError::InvalidValue {
            field: path.to_owned(),
            value: truncate(s),
            expected,
        })
}

/// Implements [`FromJson`] for a fieldless enum written as one of a fixed set of strings
/// (`"spelling" => Variant`); any other string is refused with `$expected` (see [`one_of`]).
macro_rules! from_json_one_of {
    ($ty:ident, $expected:literal, { $($text:literal => $variant:ident),+ $(,)? }) => {
        impl $crate::json::FromJson for $ty {
            fn from_json(
                value: &serde_json::Value,
                path: &str,
            ) -> Result<Self, $crate::DecodeError> {
                $crate::json::one_of(value, path, &[$(($text, $ty::$variant)),+], $expected)
            }
        }
    };
}
pub(crate) use from_json_one_of;

/// A JSON object being decoded, with its path.
pub struct Obj<'v> {
    map: &'v Map<String, Value>,
    path: String,
}

impl<'v> Obj<'v> {
    /// Requires `value` to be an object.
    pub fn new(value: &'v Value, path: &str) -> Result<Self, DecodeError> {
        Ok(Self {
            map: object(value, path)?,
            path: path.to_owned(),
        })
    }

    /// The object's own path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path of one of its fields.
    pub fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The underlying map.
    pub fn map(&self) -> &'v Map<String, Value> {
        self.map
    }

    /// Whether `key` is present and not `null`.
    pub fn has(&self, key: &str) -> bool {
        self.opt_value(key).is_some()
    }

    /// The field's value; `null` counts as absent.
    pub fn opt_value(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The field's value, required.
    pub fn value(&self, key: &str) -> Result<&'v Value, DecodeError> {
        self.opt_value(key)
            .ok_or_else(|| DecodeError::MissingField {
                field: self.field(key),
            })
    }

    /// A required field decoded with `f(value, path)`.
    pub fn req<T>(
        &self,
        key: &str,
        f: impl FnOnce(&'v Value, &str) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        let value = self.value(key)?;
        f(value, &self.field(key))
    }

    /// An optional field decoded with `f(value, path)`.
    pub fn opt<T>(
        &self,
        key: &str,
        f: impl FnOnce(&'v Value, &str) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.opt_value(key) {
            Some(value) => f(value, &self.field(key)).map(Some),
            None => Ok(None),
        }
    }

    /// A required field of a [`FromJson`] type.
    pub fn req_t<T: FromJson>(&self, key: &str) -> Result<T, DecodeError> {
        self.req(key, T::from_json)
    }

    /// An optional field of a [`FromJson`] type.
    pub fn opt_t<T: FromJson>(&self, key: &str) -> Result<Option<T>, DecodeError> {
        self.opt(key, T::from_json)
    }

    /// A required string.
    pub fn req_str(&self, key: &str) -> Result<String, DecodeError> {
        self.req(key, |v, p| string(v, p).map(str::to_owned))
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, DecodeError> {
        self.opt(key, |v, p| string(v, p).map(str::to_owned))
    }

    /// An optional object, kept as a map.
    pub fn opt_map(&self, key: &str) -> Result<Option<Map<String, Value>>, DecodeError> {
        self.opt(key, |v, p| object(v, p).cloned())
    }

    /// The fields not in `known`, for types that keep unknown keys.
    pub fn rest(&self, known: &[&str]) -> Map<String, Value> {
        self.map
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// `x402Version` must be present and equal to `expected`.
pub fn expect_version(obj: &Obj<'_>, expected: u8) -> Result<u8, DecodeError> {
    let field = obj.field("x402Version");
    let value = obj.value("x402Version")?;
    match value.as_u64() {
        Some(v) if v == u64::from(expected) => Ok(expected),
        Some(_) => Err(DecodeError::VersionMismatch {
            field,
            expected,
            found: value.to_string(),
        }),
        None if value.is_number() => Err(DecodeError::VersionMismatch {
            field,
            expected,
            found: value.to_string(),
        }),
        None => Err(wrong_type(value, &field, "an integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_and_trailing_data_are_rejected() {
        let err = parse_strict(r#"{"a":1,"a":2}"#, "test").unwrap_err();
        assert!(err.to_string().contains("duplicate key `a`"), "{err}");
        assert!(parse_strict(r#"{"a":{"b":1,"b":1}}"#, "test").is_err());
        assert!(parse_strict(r#"{"a":1} x"#, "test").is_err());
        assert!(parse_strict(r#"{"a":[1,{"b":null}]}"#, "test").is_ok());
        // Deep nesting is refused by serde_json's recursion limit, not a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(parse_strict(&deep, "test").is_err());
    }

    #[test]
    fn integers() {
        let v: Value = serde_json::from_str("[5, -1, 1.5, 1e3, 99999999999999999999]").unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(integer(&a[0], "x", 0, 10), Ok(5));
        // (index of the value, max, the refusal's DecodeError::code)
        let refused = [
            (0, 4, "out_of_range"),
            (1, 10, "out_of_range"),
            (2, 10, "wrong_type"),
            (3, 10_000, "wrong_type"),
            (4, 10, "out_of_range"),
        ];
        for (i, max, code) in refused {
            let result = integer(&a[i], "x", 0, max);
            assert_eq!(result.map_err(|e| e.code()), Err(code), "{i}");
        }
    }
}
