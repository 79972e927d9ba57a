//! Conversion between `repairmatch.v1` messages and domain types.
//!
//! Inbound conversions validate every field and report each problem as a
//! field violation with the field's path (`coverage.polygon.exterior`), so a
//! caller learns everything wrong with a message at once. Generated types end
//! here; the core never sees them.
//!
//! - [`enums`]: the enum pairs, declared once each.
//! - [`center`]: repair centers, brands and banks.
//! - [`find`]: the Find request and answer.
//! - [`catalog`]: catalog write results and listing filters.

pub mod catalog;
pub mod center;
pub mod enums;
pub mod find;

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use repairmatch_core::geodesy::LatLng;
use repairmatch_core::i18n::{Arg, Text};
use repairmatch_core::model::{CurrencyCode, Money};
use repairmatch_proto::v1 as pb;
use tonic_types::FieldViolation;

use crate::error::Violation;

pub use center::{
    bank_from_proto, bank_to_proto, brand_from_proto, brand_to_proto, center_from_proto, center_to_proto,
};
pub use enums::{ProtoEnum, UnknownValue};

/// Longest id of a center or bank.
pub const MAX_ID_CHARS: usize = 64;
/// Longest brand or model name.
pub const MAX_NAME_KEY_CHARS: usize = 64;
/// Most points over all rings of one polygon.
pub const MAX_POLYGON_POINTS: usize = 10_000;
/// Largest coverage radius.
pub const MAX_RADIUS_KM: f64 = 500.0;
/// Most ids a caller may ask to have explained.
pub const MAX_EXPLAIN_IDS: usize = 100;
/// Most countries one center may cover nationwide.
pub const MAX_COUNTRIES: usize = 250;
/// Longest warranty on a repair a center may publish or a caller ask for.
pub const MAX_REPAIR_WARRANTY_DAYS: u32 = 3_650;

/// Which checks an inbound conversion makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// Everything, the API's size limits included: for what callers send.
    Api,
    /// Only that the record is a well-formed domain value: for what a store
    /// already holds, which an older release may have accepted under other
    /// limits.
    Stored,
}

/// Where a field sits in a message (`centers[3].prices[0].min`), built
/// without allocating: nearly every field is valid, so a path is rendered
/// only when a violation names it (rendering each one up front was some fifty
/// strings a center, a third of decoding a stored one).
#[derive(Debug, Clone, Copy)]
pub struct FieldPath<'a> {
    parent: Option<&'a FieldPath<'a>>,
    name: &'a str,
    index: Option<usize>,
}

impl<'a> FieldPath<'a> {
    /// A message's own place in its request (`centers[3]`), empty at the top
    /// level; or a field given whole (`terminal.brand`).
    pub fn root(name: &'a str) -> Self {
        Self { parent: None, name, index: None }
    }

    /// A field of this message.
    pub fn field(&'a self, name: &'a str) -> Self {
        Self { parent: Some(self), name, index: None }
    }

    /// An element of one of this message's repeated fields.
    pub fn item(&'a self, name: &'a str, index: usize) -> Self {
        Self { parent: Some(self), name, index: Some(index) }
    }

    fn is_empty(&self) -> bool {
        self.parent.is_none() && self.name.is_empty() && self.index.is_none()
    }
}

impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent.filter(|parent| !parent.is_empty()) {
            write!(f, "{parent}.")?;
        }
        f.write_str(self.name)?;
        match self.index {
            Some(index) => write!(f, "[{index}]"),
            None => Ok(()),
        }
    }
}

impl From<FieldPath<'_>> for String {
    fn from(path: FieldPath<'_>) -> Self {
        path.to_string()
    }
}

/// Collects violations under a path prefix.
#[derive(Debug)]
pub struct Violations {
    list: Vec<Violation>,
    limits: Limits,
}

impl Default for Violations {
    fn default() -> Self {
        Self::new(Limits::Api)
    }
}

impl Violations {
    /// A collector making the checks of `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { list: Vec::new(), limits }
    }

    /// Records a bad field of a catalog message, in English (catalog calls
    /// name no language).
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.list.push(FieldViolation::new(field, description).into());
    }

    /// Records a bad field of a message whose caller may read another
    /// language (a Find request; the checks both share).
    pub fn add_text(&mut self, field: impl Into<String>, text: Text) {
        self.list.push(Violation::new(field, text));
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The recorded violations, as a `BadRequest` lists them.
    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.list.iter().map(Violation::to_field_violation).collect()
    }

    /// The recorded violations, with what to say in any language.
    pub fn into_violations(self) -> Vec<Violation> {
        self.list
    }

    /// Records a size limit broken, when API limits apply.
    fn limit(&mut self, exceeded: bool, field: impl Into<String>, description: impl Into<String>) {
        if exceeded && self.limits == Limits::Api {
            self.add(field, description);
        }
    }

    fn text(&mut self, field: FieldPath<'_>, value: &str, max_chars: usize, required: bool) {
        if required && value.trim().is_empty() {
            self.add_text(field, Text::new("violation-required"));
        } else if self.limits == Limits::Api && value.chars().count() > max_chars {
            self.add_text(field, Text::new("violation-too-long").with("max", Arg::Count(max_chars as u64)));
        }
    }

    fn location(&mut self, field: FieldPath<'_>, location: Option<&pb::LatLng>) -> Option<LatLng> {
        let Some(location) = location else {
            self.add_text(field, Text::new("violation-required"));
            return None;
        };
        let mut ok = true;
        if !(location.latitude.is_finite() && (-90.0..=90.0).contains(&location.latitude)) {
            self.add_text(field.field("latitude"), Text::new("violation-latitude"));
            ok = false;
        }
        if !(location.longitude.is_finite() && (-180.0..=180.0).contains(&location.longitude)) {
            self.add_text(field.field("longitude"), Text::new("violation-longitude"));
            ok = false;
        }
        ok.then(|| LatLng::new(location.latitude, location.longitude))
    }

    fn money(&mut self, field: FieldPath<'_>, money: Option<&pb::Money>) -> Option<Money> {
        let Some(money) = money else {
            self.add_text(field, Text::new("violation-required"));
            return None;
        };
        let currency_code = CurrencyCode::parse(&money.currency_code);
        if currency_code.is_none() {
            self.add_text(field.field("currency_code"), Text::new("violation-currency-code"));
        }
        if money.amount_minor_units < 0 {
            self.add_text(field.field("amount_minor_units"), Text::new("violation-negative"));
            return None;
        }
        Some(Money { currency_code: currency_code?, amount_minor_units: money.amount_minor_units })
    }
}

/// Violations as one line: `field: why; field: why`.
pub fn describe(violations: &[FieldViolation]) -> String {
    violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
}

fn money_to_proto(money: &Money) -> pb::Money {
    pb::Money { currency_code: money.currency_code.to_string(), amount_minor_units: money.amount_minor_units }
}

/// Whether `id` is a valid center or bank id.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn timestamp(value: &pbjson_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(value.nanos).ok().filter(|n| *n < 1_000_000_000)?;
    DateTime::from_timestamp(value.seconds, nanos)
}

fn timestamp_to_proto(time: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp { seconds: time.timestamp(), nanos: time.timestamp_subsec_nanos() as i32 }
}

/// A `YYYY-MM-DD` date (read for every dated exception of every center at
/// start, so without chrono's format-string parser).
fn parse_date(value: &str) -> Option<NaiveDate> {
    let bytes = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0, |number, &b| b.is_ascii_digit().then(|| number * 10 + u32::from(b - b'0')))
    };
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(i32::try_from(digits(0..4)?).ok()?, digits(5..7)?, digits(8..10)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_render_as_a_bad_request_names_fields() {
        let top = FieldPath::root("");
        assert_eq!(top.field("name").to_string(), "name");
        let item = FieldPath::root("centers[3]");
        let price = item.item("prices", 0);
        assert_eq!(price.field("min").field("currency_code").to_string(), "centers[3].prices[0].min.currency_code");
        let hours = top.field("opening_hours");
        assert_eq!(
            hours.item("exceptions", 2).item("periods", 1).to_string(),
            "opening_hours.exceptions[2].periods[1]"
        );
        assert_eq!(String::from(FieldPath::root("terminal.brand")), "terminal.brand");
    }

    #[test]
    fn dates_are_read_as_iso_8601_calendar_dates_only() {
        assert_eq!(parse_date("2026-12-25"), NaiveDate::from_ymd_opt(2026, 12, 25));
        assert_eq!(parse_date("2028-02-29"), NaiveDate::from_ymd_opt(2028, 2, 29));
        for refused in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "2026-01-1",
            "+2026-01-01",
            "2026/01/01",
            "2026-01-01T00:00",
            "",
            "２０２６-01-01",
            "2026-0a-01",
        ] {
            assert_eq!(parse_date(refused), None, "{refused:?}");
        }
    }
}
