//! The Find request and its answer.

use std::sync::Arc;

use chrono::NaiveDate;
use prost::Message;
use prost::bytes::Bytes;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use repairmatch_core::country::CountryCode;
use repairmatch_core::eligibility::Exclusion;
use repairmatch_core::find::{FindOutcome, RankedMatch, SupportChannel, SupportProvider};
use repairmatch_core::i18n::{Arg, Language, Text};
use repairmatch_core::model::{FaultCategory, RepairCenter, ServiceMode, ServiceModeSet};
use repairmatch_core::query::{FindQuery, Ownership, WarrantyClaim, WarrantyStatus};
use repairmatch_proto::v1 as pb;

use super::enums::ProtoEnum;
use crate::error::Violation;

use super::{
    FieldPath, MAX_EXPLAIN_IDS, MAX_ID_CHARS, MAX_NAME_KEY_CHARS, MAX_REPAIR_WARRANTY_DAYS, Violations,
    center_to_proto, money_to_proto, parse_date, timestamp,
};

/// Half the Earth's circumference: no cap needs to be larger.
const MAX_DISTANCE_CAP_KM: f64 = 20_038.0;

/// Longest language tag: what BCP 47 asks every implementation to handle.
pub const MAX_LANGUAGE_CODE_CHARS: usize = 35;

/// Validates a find request. `profile_known` says whether a profile name
/// exists; `today` bounds purchase dates.
pub fn find_query_from_proto(
    request: &pb::FindRepairCenterRequest,
    default_profile: &str,
    profile_known: impl Fn(&str) -> bool,
    today: NaiveDate,
) -> Result<FindQuery, Vec<Violation>> {
    let mut v = Violations::default();
    let location = v.location(FieldPath::root("location"), request.location.as_ref());

    let terminal = request.terminal.clone().unwrap_or_default();
    v.text(FieldPath::root("terminal.brand"), &terminal.brand, MAX_NAME_KEY_CHARS, true);
    v.text(FieldPath::root("terminal.model"), &terminal.model, MAX_NAME_KEY_CHARS, false);
    v.text(FieldPath::root("terminal.serial_number"), &terminal.serial_number, 64, false);

    let fault_message = request.fault.clone().unwrap_or_default();
    let fault = FaultCategory::from_proto(fault_message.category).unwrap_or_else(|unknown| {
        v.add_text("fault.category", unknown_value(unknown.0));
        None
    });
    v.text(FieldPath::root("fault.description"), &fault_message.description, 2000, false);

    v.text(FieldPath::root("bank_id"), &request.bank_id, MAX_ID_CHARS, false);
    let bank_id = (!request.bank_id.trim().is_empty()).then(|| request.bank_id.trim().to_owned());
    let ownership = match pb::Ownership::try_from(request.ownership) {
        Ok(pb::Ownership::Unspecified | pb::Ownership::MerchantOwned) => Ownership::MerchantOwned,
        Ok(pb::Ownership::BankDeployed) => match bank_id {
            Some(bank_id) => Ownership::BankDeployed { bank_id },
            None => {
                v.add_text("bank_id", Text::new("violation-bank-id-required"));
                Ownership::MerchantOwned
            }
        },
        Ok(pb::Ownership::Leased) => Ownership::Leased { bank_id },
        Err(_) => {
            v.add_text("ownership", unknown_value(request.ownership));
            Ownership::MerchantOwned
        }
    };

    let warranty_message = request.warranty.clone().unwrap_or_default();
    let status = match pb::WarrantyStatus::try_from(warranty_message.status) {
        Ok(pb::WarrantyStatus::Unknown) => WarrantyStatus::Unknown,
        Ok(pb::WarrantyStatus::InWarranty) => WarrantyStatus::InWarranty,
        Ok(pb::WarrantyStatus::OutOfWarranty) => WarrantyStatus::OutOfWarranty,
        Err(_) => {
            v.add_text("warranty.status", unknown_value(warranty_message.status));
            WarrantyStatus::Unknown
        }
    };
    let purchase_date = if warranty_message.purchase_date.is_empty() {
        None
    } else {
        match parse_date(&warranty_message.purchase_date) {
            Some(date) if date <= today + chrono::Days::new(1) => Some(date),
            Some(_) => {
                v.add_text("warranty.purchase_date", Text::new("violation-future-date"));
                None
            }
            None => {
                v.add_text("warranty.purchase_date", Text::new("violation-date-format"));
                None
            }
        }
    };

    let mut service_modes = ServiceModeSet::EMPTY;
    for (i, &value) in request.service_modes.iter().enumerate() {
        match ServiceMode::from_proto_required(value) {
            Some(mode) => service_modes.insert(mode),
            None => v.add_text(
                format!("service_modes[{i}]"),
                Text::new("violation-unknown-or-unspecified").with("value", value.to_string()),
            ),
        }
    }

    let max_distance_km = request.max_distance_km;
    if !(max_distance_km.is_finite() && (0.0..=MAX_DISTANCE_CAP_KM).contains(&max_distance_km)) {
        v.add_text(
            "max_distance_km",
            Text::new("violation-distance-cap").with("max_km", Arg::decimal(MAX_DISTANCE_CAP_KM, 0)),
        );
    }
    let max_price = request.max_price.as_ref().and_then(|price| v.money(FieldPath::root("max_price"), Some(price)));
    let min_rating = request.min_rating;
    if !(min_rating == 0.0 || (min_rating.is_finite() && (1.0..=5.0).contains(&min_rating))) {
        v.add_text("min_rating", Text::new("violation-min-rating"));
    }
    let open_at = request.open_at.as_ref().and_then(|time| {
        let parsed = timestamp(time);
        if parsed.is_none() {
            v.add_text("open_at", Text::new("violation-timestamp"));
        }
        parsed
    });

    let profile_name = if request.ranking_profile.is_empty() { default_profile } else { &request.ranking_profile };
    if !profile_known(profile_name) {
        v.add_text(
            "ranking_profile",
            Text::new("violation-unknown-profile").with("profile", format!("{profile_name:?}")),
        );
    }
    if request.page_size < 0 {
        v.add_text("page_size", Text::new("violation-negative"));
    }
    let country_code = (!request.country_code.is_empty())
        .then(|| request.country_code.parse::<CountryCode>())
        .transpose()
        .unwrap_or_else(|_| {
            v.add_text("country_code", Text::new("violation-country-code"));
            None
        });
    if request.min_repair_warranty_days > MAX_REPAIR_WARRANTY_DAYS {
        v.add_text(
            "min_repair_warranty_days",
            Text::new("violation-repair-warranty-days")
                .with("max_days", Arg::Count(u64::from(MAX_REPAIR_WARRANTY_DAYS))),
        );
    }
    v.text(FieldPath::root("page_token"), &request.page_token, 1024, false);
    if request.explain_center_ids.len() > MAX_EXPLAIN_IDS {
        v.add_text(
            "explain_center_ids",
            Text::new("violation-too-many-ids").with("max", Arg::Count(MAX_EXPLAIN_IDS as u64)),
        );
    }
    let top = FieldPath::root("");
    for (i, id) in request.explain_center_ids.iter().enumerate().take(MAX_EXPLAIN_IDS) {
        v.text(top.item("explain_center_ids", i), id, MAX_ID_CHARS, true);
    }
    // Any tag is answered (in English when unsupported); only its size is checked.
    v.text(FieldPath::root("language_code"), &request.language_code, MAX_LANGUAGE_CODE_CHARS, false);

    if !v.is_empty() {
        return Err(v.into_violations());
    }
    Ok(FindQuery {
        location: location.expect("validated"),
        brand: terminal.brand.trim().to_owned(),
        model: (!terminal.model.trim().is_empty()).then(|| terminal.model.trim().to_owned()),
        fault,
        ownership,
        warranty: WarrantyClaim { status, purchase_date },
        service_modes,
        max_distance_km: (max_distance_km > 0.0).then_some(max_distance_km),
        max_price,
        min_rating: (min_rating > 0.0).then_some(min_rating),
        open_at,
        min_repair_warranty_days: (request.min_repair_warranty_days > 0).then_some(request.min_repair_warranty_days),
        country_code,
        profile_name: profile_name.to_owned(),
        page_size: (request.page_size > 0).then(|| request.page_size.unsigned_abs()),
        page_token: (!request.page_token.is_empty()).then(|| request.page_token.clone()),
        explain_center_ids: request.explain_center_ids.clone(),
    })
}

/// "unknown value N" for a wire number the proto does not define.
fn unknown_value(value: i32) -> Text {
    Text::new("violation-unknown-value").with("value", value.to_string())
}

fn render(texts: &[Text], language: Language) -> Vec<String> {
    texts.iter().map(|text| text.render(language)).collect()
}

fn match_to_proto(ranked: &RankedMatch, language: Language) -> pb::RepairCenterMatch {
    let scored = &ranked.scored;
    let eligible = &scored.eligible;
    pb::RepairCenterMatch {
        // Spliced in as bytes, or filled in: see `FindResponseParts`.
        center: None,
        rank: ranked.rank,
        score: scored.score,
        distance_km: eligible.distance_km,
        score_breakdown: ranked
            .breakdown
            .iter()
            .map(|c| pb::ScoreComponent {
                factor: c.factor.to_owned(),
                raw_value: c.raw_value,
                normalized_value: c.normalized_value,
                weight: c.weight,
                contribution: c.contribution,
            })
            .collect(),
        warranty_covered: eligible.warranty_covered,
        estimated_price: eligible
            .price
            .as_ref()
            .map(|(low, high)| pb::PriceEstimate { min: Some(money_to_proto(low)), max: Some(money_to_proto(high)) }),
        service_modes: eligible.usable_modes.iter().map(ServiceMode::to_proto).collect(),
        reasons: render(&ranked.reasons, language),
        tier: eligible.tier,
        downtime_hours: scored.downtime_hours(),
    }
}

fn channel_to_proto(channel: &SupportChannel) -> pb::SupportChannel {
    pb::SupportChannel {
        provider_type: match channel.provider {
            SupportProvider::Brand => "brand",
            SupportProvider::Bank => "bank",
        }
        .to_owned(),
        name: channel.name.clone(),
        hotline: channel.hotline.clone(),
        online_support_url: channel.online_support_url.clone(),
        email: channel.email.clone(),
    }
}

fn exclusion_to_proto(exclusion: &Exclusion, language: Language) -> pb::Exclusion {
    pb::Exclusion {
        center_id: exclusion.center_id.clone(),
        rule: exclusion.rule.to_proto(),
        detail: exclusion.detail.render(language),
    }
}

/// A Find answer as a message whose matches leave their centers out, and
/// those centers in match order.
///
/// Turning ten centers into messages and encoding them was about a sixth
/// of a cache-off Find, and a center near many merchants is in many
/// answers: the service encodes each center once (see
/// `cache::CenterEncodings`) and [`FindResponseParts::encode_into`] splices the
/// bytes in. [`FindResponseParts::into_message`] fills them in instead.
#[derive(Debug)]
pub struct FindResponseParts {
    /// The answer, every match's `center` unset.
    pub message: pb::FindRepairCenterResponse,
    /// The matches' centers, in order.
    pub centers: Vec<Arc<RepairCenter>>,
}

/// `center` of `RepairCenterMatch` and `matches` of `FindRepairCenterResponse`.
/// Both are field 1, so prost writes each first: splicing them first writes
/// exactly the bytes of the whole message.
const CENTER_FIELD: u32 = 1;
const MATCHES_FIELD: u32 = 1;

impl FindResponseParts {
    /// The whole message.
    pub fn into_message(mut self) -> pb::FindRepairCenterResponse {
        for (found, center) in self.message.matches.iter_mut().zip(&self.centers) {
            found.center = Some(center_to_proto(center));
        }
        self.message
    }

    /// Appends the whole message's encoding to `out`, with each center's
    /// bytes from `encoded_center` (which must be `center_to_proto(center)`
    /// encoded).
    pub fn encode_into(mut self, encoded_center: impl Fn(&Arc<RepairCenter>) -> Bytes, out: &mut Vec<u8>) {
        let matches = std::mem::take(&mut self.message.matches);
        let centers: Vec<Bytes> = self.centers.iter().map(encoded_center).collect();
        let field_len = |len: usize| key_len(CENTER_FIELD) + encoded_len_varint(len as u64) + len;
        let match_lens: Vec<usize> =
            matches.iter().zip(&centers).map(|(found, center)| field_len(center.len()) + found.encoded_len()).collect();
        let total = match_lens.iter().map(|&len| field_len(len)).sum::<usize>() + self.message.encoded_len();
        out.reserve(total);
        let start = out.len();
        for ((found, center), len) in matches.iter().zip(&centers).zip(match_lens) {
            encode_key(MATCHES_FIELD, WireType::LengthDelimited, out);
            encode_varint(len as u64, out);
            encode_key(CENTER_FIELD, WireType::LengthDelimited, out);
            encode_varint(center.len() as u64, out);
            out.extend_from_slice(center);
            found.encode_raw(out);
        }
        self.message.encode_raw(out);
        debug_assert_eq!(out.len() - start, total);
    }
}

/// A find outcome as a response, its human text in `language`.
/// `config_version` is the version of the config the request was answered under.
pub fn find_response_to_proto(
    outcome: &FindOutcome,
    profile_name: &str,
    config_version: u64,
    language: Language,
) -> FindResponseParts {
    let message = pb::FindRepairCenterResponse {
        matches: outcome.matches.iter().map(|ranked| match_to_proto(ranked, language)).collect(),
        remote_support: Some(pb::RemoteSupport {
            channels: outcome.remote_support.iter().map(channel_to_proto).collect(),
        }),
        guidance: render(&outcome.guidance, language),
        exclusions: outcome.exclusions.iter().map(|exclusion| exclusion_to_proto(exclusion, language)).collect(),
        total_size: i32::try_from(outcome.total_size).unwrap_or(i32::MAX),
        total_size_is_estimate: outcome.total_size_is_estimate,
        next_page_token: outcome.next_page_token.clone().unwrap_or_default(),
        ranking_profile: profile_name.to_owned(),
        catalog_version: outcome.catalog_version,
        warranty_status: warranty_status_to_proto(outcome.warranty),
        config_version,
        language_code: language.tag().to_owned(),
    };
    FindResponseParts { message, centers: outcome.matches.iter().map(|ranked| Arc::clone(&ranked.center)).collect() }
}

// WARRANTY_STATUS_UNKNOWN is the zero value, as the contract names it, so
// this pair has no unspecified member and is mapped by hand.
fn warranty_status_to_proto(status: WarrantyStatus) -> i32 {
    let status = match status {
        WarrantyStatus::Unknown => pb::WarrantyStatus::Unknown,
        WarrantyStatus::InWarranty => pb::WarrantyStatus::InWarranty,
        WarrantyStatus::OutOfWarranty => pb::WarrantyStatus::OutOfWarranty,
    };
    status as i32
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use repairmatch_core::Catalog;
    use repairmatch_core::find::{EXACT_TOTAL_LIMIT, find_pages};
    use repairmatch_core::profile::RankingProfile;
    use repairmatch_datagen as datagen;

    use super::*;

    #[test]
    fn spliced_centers_encode_to_exactly_the_whole_messages_bytes() {
        let sample = datagen::generate(3_000, 5);
        let catalog = Catalog::build(1, sample.centers, sample.brands, sample.banks);
        let mut answers = 0;
        for (latitude, longitude, brand) in
            [(31.23, 121.47, "PAX"), (51.51, -0.13, "Ingenico"), (19.07, 72.88, "Verifone")]
        {
            let request = pb::FindRepairCenterRequest {
                location: Some(pb::LatLng { latitude, longitude }),
                terminal: Some(pb::Terminal { brand: brand.into(), ..Default::default() }),
                page_size: 10,
                ..Default::default()
            };
            let today = Utc::now().date_naive();
            let query = find_query_from_proto(&request, "default", |_| true, today).unwrap();
            let outcomes =
                find_pages(&catalog, &query, &RankingProfile::default(), Utc::now(), 3, EXACT_TOTAL_LIMIT).unwrap();
            for outcome in &outcomes {
                let parts = || find_response_to_proto(outcome, "default", 1, Language::English);
                let mut spliced = Vec::new();
                parts().encode_into(|center| center_to_proto(center).encode_to_vec().into(), &mut spliced);
                let whole = parts().into_message();
                assert_eq!(spliced, whole.encode_to_vec());
                assert_eq!(pb::FindRepairCenterResponse::decode(spliced.as_slice()).unwrap(), whole);
                answers += usize::from(!whole.matches.is_empty());
            }
        }
        assert!(answers >= 6, "pages with matches: {answers}");
    }
}
