//! A validated `FindRepairCenter` request in domain terms.

use chrono::{DateTime, Months, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::country::CountryCode;
use crate::geodesy::LatLng;
use crate::model::{Brand, FaultCategory, Money, ServiceModeSet, match_key};

/// Who owns the terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Ownership {
    /// Bought by the merchant (also the default when unsaid).
    MerchantOwned,
    /// Deployed by this bank.
    BankDeployed {
        /// The deploying bank.
        bank_id: String,
    },
    /// Leased; with a bank id the lessor counts as the deploying bank.
    Leased {
        /// The lessor bank, when known.
        bank_id: Option<String>,
    },
}

impl Ownership {
    /// The bank whose service channel the terminal belongs to, if any.
    pub fn deploying_bank(&self) -> Option<&str> {
        match self {
            Ownership::MerchantOwned => None,
            Ownership::BankDeployed { bank_id } => Some(bank_id),
            Ownership::Leased { bank_id } => bank_id.as_deref(),
        }
    }
}

/// What the merchant says about the warranty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WarrantyStatus {
    /// Not known.
    Unknown,
    /// Under warranty.
    InWarranty,
    /// Out of warranty.
    OutOfWarranty,
}

/// The warranty facts of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WarrantyClaim {
    /// What the merchant says.
    pub status: WarrantyStatus,
    /// Purchase date, when given.
    pub purchase_date: Option<NaiveDate>,
}

impl WarrantyClaim {
    /// The status the service acts on: the merchant's word when given, else the
    /// purchase date against the brand's warranty length (still unknown without
    /// both).
    pub fn decide(&self, brand: Option<&Brand>, today: NaiveDate) -> WarrantyStatus {
        match (self.status, self.purchase_date, brand) {
            (WarrantyStatus::Unknown, Some(purchased), Some(brand)) => {
                match purchased.checked_add_months(Months::new(brand.warranty_months)) {
                    Some(expiry) if today < expiry => WarrantyStatus::InWarranty,
                    _ => WarrantyStatus::OutOfWarranty,
                }
            }
            (status, _, _) => status,
        }
    }
}

/// A validated find request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindQuery {
    /// Where the merchant is.
    pub location: LatLng,
    /// The terminal's brand as given.
    pub brand: String,
    /// The model, when given.
    pub model: Option<String>,
    /// The fault; `None` = any.
    pub fault: Option<FaultCategory>,
    /// Who owns the terminal.
    pub ownership: Ownership,
    /// Warranty facts.
    pub warranty: WarrantyClaim,
    /// Wanted modes; empty = any.
    pub service_modes: ServiceModeSet,
    /// Trip cap, km; `None` = the profile's.
    pub max_distance_km: Option<f64>,
    /// Price cap.
    pub max_price: Option<Money>,
    /// Minimum published average.
    pub min_rating: Option<f64>,
    /// Only centers open then.
    pub open_at: Option<DateTime<Utc>>,
    /// Only centers that guarantee their repair at least this many days.
    pub min_repair_warranty_days: Option<u32>,
    /// The merchant's country as the caller knows it; `None` = where
    /// `location` is, by the offline reverse geocoder.
    pub country_code: Option<CountryCode>,
    /// The ranking profile's name (resolved by the caller).
    pub profile_name: String,
    /// Page size; `None` = the profile's default.
    #[serde(skip)]
    pub page_size: Option<u32>,
    /// Opaque token of the previous page.
    #[serde(skip)]
    pub page_token: Option<String>,
    /// Centers to explain when they are not matched.
    #[serde(skip)]
    pub explain_center_ids: Vec<String>,
}

impl FindQuery {
    /// A query with only the required parts and defaults for the rest.
    pub fn new(location: LatLng, brand: impl Into<String>) -> Self {
        Self {
            location,
            brand: brand.into(),
            model: None,
            fault: None,
            ownership: Ownership::MerchantOwned,
            warranty: WarrantyClaim { status: WarrantyStatus::Unknown, purchase_date: None },
            service_modes: ServiceModeSet::EMPTY,
            max_distance_km: None,
            max_price: None,
            min_rating: None,
            open_at: None,
            min_repair_warranty_days: None,
            country_code: None,
            profile_name: "default".to_owned(),
            page_size: None,
            page_token: None,
            explain_center_ids: Vec::new(),
        }
    }

    /// The lower-cased brand.
    pub fn brand_key(&self) -> String {
        match_key(&self.brand)
    }

    /// A digest of everything that decides the ranking (not paging, not
    /// explanations): page tokens carry it so a token replayed with another
    /// query is refused.
    pub fn fingerprint(&self) -> [u8; 16] {
        let mut normalized = self.clone();
        normalized.brand = self.brand_key();
        normalized.model = self.model.as_deref().map(match_key);
        let canonical = serde_json::to_vec(&normalized).expect("a query always serializes");
        let digest = Sha256::digest(canonical);
        let mut fingerprint = [0; 16];
        fingerprint.copy_from_slice(&digest[..16]);
        fingerprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand(months: u32) -> Brand {
        Brand {
            name: "PAX".into(),
            warranty_months: months,
            hotline: String::new(),
            online_support_url: String::new(),
            support_email: String::new(),
            models: vec![],
            owner: String::new(),
        }
    }

    #[test]
    fn warranty_is_decided_from_purchase_date_and_brand_length() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let claim = |date| WarrantyClaim {
            status: WarrantyStatus::Unknown,
            purchase_date: NaiveDate::from_ymd_opt(2025, date, 26),
        };
        assert_eq!(claim(11).decide(Some(&brand(12)), today), WarrantyStatus::InWarranty);
        assert_eq!(claim(10).decide(Some(&brand(12)), today), WarrantyStatus::OutOfWarranty);
        assert_eq!(claim(10).decide(Some(&brand(24)), today), WarrantyStatus::InWarranty);
        assert_eq!(claim(10).decide(None, today), WarrantyStatus::Unknown);
        let stated = WarrantyClaim {
            status: WarrantyStatus::OutOfWarranty,
            purchase_date: NaiveDate::from_ymd_opt(2026, 11, 1),
        };
        assert_eq!(stated.decide(Some(&brand(12)), today), WarrantyStatus::OutOfWarranty);
    }

    #[test]
    fn fingerprint_ignores_paging_and_case_but_not_filters() {
        let query = FindQuery::new(LatLng::new(31.2, 121.5), "PAX");
        let mut paged = query.clone();
        paged.page_size = Some(5);
        paged.page_token = Some("x".into());
        paged.brand = "pax".into();
        assert_eq!(query.fingerprint(), paged.fingerprint());
        let mut filtered = query.clone();
        filtered.min_rating = Some(4.0);
        assert_ne!(query.fingerprint(), filtered.fingerprint());
    }
}
