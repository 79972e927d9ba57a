//! Countries: ISO 3166-1 alpha-2 codes, and the offline reverse geocoder that
//! says which one a point is in, for coverage by country (a national mail-in
//! or exchange depot).
//!
//! The boundaries are OpenStreetMap's, as the `country-boundaries` crate
//! bundles them (a 360 × 180 raster with exact geometry in the cells that a
//! border crosses; data © OpenStreetMap contributors, ODbL). A point at sea
//! or in Antarctica is in no country.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use country_boundaries::{BOUNDARIES_ODBL_360X180, CountryBoundaries, LatLon};

use crate::geodesy::LatLng;

/// An ISO 3166-1 alpha-2 code: two upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// The code as written.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII letters")
    }
}

impl serde::Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a country code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an ISO 3166-1 alpha-2 code: two upper-case letters, like CN")]
pub struct NotACountryCode;

impl FromStr for CountryCode {
    type Err = NotACountryCode;

    fn from_str(code: &str) -> Result<Self, NotACountryCode> {
        match code.as_bytes() {
            &[a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([a, b])),
            _ => Err(NotACountryCode),
        }
    }
}

static BOUNDARIES: LazyLock<CountryBoundaries> =
    LazyLock::new(|| CountryBoundaries::from_reader(BOUNDARIES_ODBL_360X180).expect("the bundled boundaries load"));

/// Loads the bundled boundaries now, as a server does before it serves:
/// otherwise the first Find without a country code pays for it (some 30
/// million instructions, about 10 ms).
pub fn load_boundaries() {
    LazyLock::force(&BOUNDARIES);
}

/// The country `point` is in, if any. The geocoder names subdivisions too
/// (`US-TX`); only the country's own code counts here.
pub fn country_at(point: LatLng) -> Option<CountryCode> {
    let position = LatLon::new(point.latitude, point.longitude).ok()?;
    BOUNDARIES.ids(position).into_iter().find_map(|id| id.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_two_upper_case_letters() {
        assert_eq!("CN".parse::<CountryCode>().unwrap().as_str(), "CN");
        for bad in ["", "C", "cn", "CHN", "C1", "中国"] {
            assert_eq!(bad.parse::<CountryCode>(), Err(NotACountryCode), "{bad:?}");
        }
    }

    #[test]
    fn points_fall_in_their_countries_and_the_sea_in_none() {
        let at = |latitude, longitude| country_at(LatLng::new(latitude, longitude)).map(|c| c.to_string());
        assert_eq!(at(31.2304, 121.4737).as_deref(), Some("CN"), "Shanghai");
        assert_eq!(at(22.2793, 114.1628).as_deref(), Some("HK"), "Hong Kong is its own code");
        assert_eq!(at(33.0, -97.0).as_deref(), Some("US"), "Dallas: US, not US-TX");
        assert_eq!(at(47.6973, 8.6910).as_deref(), Some("DE"), "Büsingen, a German exclave in Switzerland");
        assert_eq!(at(47.5596, 7.5886).as_deref(), Some("CH"), "Basel");
        assert_eq!(at(0.0, -140.0), None, "the Pacific");
    }
}
