//! Numbers in the proto3 JSON mapping, read without building errors.
//!
//! proto3 JSON writes a number either as a JSON number or as a string
//! (64-bit integers are strings; `"NaN"` and `"Infinity"` are too). pbjson
//! reads both through an untagged enum that first tries the value as a
//! string: for every plain number serde builds, formats and drops an
//! "invalid type" error before it tries the number. That error was a seventh
//! of `repairmatch import`'s CPU. The build script points the generated
//! code at [`NumberDeserialize`] here instead, which asks the parser what it
//! found and reads that, with the same results, and for strings that are not
//! numbers the same reasons (with their place in the line, which pbjson's
//! lose). A value of the wrong kind (`true`, `1.5` for
//! an integer) is refused either way; where pbjson's message named its
//! internal enum, this one names what it found and what it expected.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::value::{F64Deserializer, I64Deserializer, U64Deserializer};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A number written as a JSON number or as a string holding one.
// The derives of pbjson's own type, which a map field's generated code keys on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NumberDeserialize<T>(pub T);

impl<'de, T> Deserialize<'de> for NumberDeserialize<T>
where
    T: FromStr + Deserialize<'de>,
    <T as FromStr>::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumberVisitor(PhantomData)).map(NumberDeserialize)
    }
}

struct NumberVisitor<T>(PhantomData<T>);

impl<'de, T> Visitor<'de> for NumberVisitor<T>
where
    T: FromStr + Deserialize<'de>,
    <T as FromStr>::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a number, or a string holding one")
    }

    // A JSON number goes to the target type's own reading, which checks its
    // range and kind (a fraction is no integer) exactly as pbjson's does.
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        T::deserialize(U64Deserializer::new(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        T::deserialize(I64Deserializer::new(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        T::deserialize(F64Deserializer::new(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        value.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::NumberDeserialize;

    /// The same JSON through pbjson's reader and this one.
    fn both<T>(json: &str) -> (Result<T, String>, Result<T, String>)
    where
        T: for<'de> Deserialize<'de> + std::str::FromStr,
        <T as std::str::FromStr>::Err: std::fmt::Display + std::error::Error,
    {
        let ours = serde_json::from_str::<NumberDeserialize<T>>(json).map(|n| n.0).map_err(|e| e.to_string());
        let pbjson =
            serde_json::from_str::<pbjson::private::NumberDeserialize<T>>(json).map(|n| n.0).map_err(|e| e.to_string());
        (ours, pbjson)
    }

    const INPUTS: &[&str] = &[
        "0",
        "7",
        "-7",
        "4294967295",
        "4294967296",
        "-2147483648",
        "-2147483649",
        "9223372036854775807",
        "18446744073709551615",
        "1.5",
        "-0.0",
        "1e3",
        "1.0",
        "\"12\"",
        "\"-12\"",
        "\"1.5\"",
        "\"NaN\"",
        "\"Infinity\"",
        "\"-Infinity\"",
        "\"abc\"",
        "\"\"",
        "\" 1\"",
        "true",
        "null",
        "[1]",
        "{}",
        "\"9223372036854775808\"",
        "1e400",
    ];

    fn agree<T>(name: &str)
    where
        T: for<'de> Deserialize<'de> + std::str::FromStr + std::fmt::Debug,
        <T as std::str::FromStr>::Err: std::fmt::Display + std::error::Error,
    {
        for json in INPUTS {
            match both::<T>(json) {
                // Debug text: NaN is not equal to itself, and -0.0 equals 0.0.
                (Ok(ours), Ok(pbjson)) => assert_eq!(format!("{ours:?}"), format!("{pbjson:?}"), "{name} from {json}"),
                // A string that is no number: the number parser's reason both
                // ways, ours with where in the line it stands.
                (Err(ours), Err(pbjson)) if json.starts_with('"') => {
                    assert!(
                        ours.starts_with(&pbjson) && ours.contains(" at line 1 column "),
                        "{name} from {json}: {ours}"
                    )
                }
                // Where pbjson's message names its internal enum, ours names what was expected.
                (Err(_), Err(_)) => {}
                (ours, pbjson) => panic!("{name} from {json}: ours {ours:?}, pbjson {pbjson:?}"),
            }
        }
    }

    #[test]
    fn every_numeric_type_reads_what_pbjson_reads_and_refuses_what_it_refuses() {
        agree::<u32>("u32");
        agree::<i32>("i32");
        agree::<u64>("u64");
        agree::<i64>("i64");
        agree::<f32>("f32");
        agree::<f64>("f64");
    }

    #[test]
    fn a_string_that_is_no_number_is_refused_with_the_parsers_reason() {
        let error = serde_json::from_str::<NumberDeserialize<u32>>("\"12a\"").unwrap_err().to_string();
        assert!(error.contains("invalid digit"), "{error}");
        let error = serde_json::from_str::<NumberDeserialize<u32>>("true").unwrap_err().to_string();
        assert!(error.contains("a number, or a string holding one"), "{error}");
    }
}
