//! Conversion between `repairmatch.v1` messages and domain types.
//!
//! Inbound conversions validate every field and report each problem as a
//! field violation with the field's path (`coverage.polygon.exterior`), so a
//! caller learns everything wrong with a message at once. Generated types end
//! here; the core never sees them.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use repairmatch_core::eligibility::{Exclusion, ExclusionRule};
use repairmatch_core::find::{FindOutcome, RankedMatch, SupportChannel, SupportProvider};
use repairmatch_core::geodesy::{LatLng, ServiceArea};
use repairmatch_core::model::{
    Bank, Brand, BrandSupport, CenterKind, Contact, Coverage, CurrencyCode, DatedException, FaultCategory, Money,
    OpeningHours, PriceRange, Rating, RepairCenter, ServiceMode, ServiceModeSet, WeeklyPeriod,
};
use repairmatch_core::query::{FindQuery, Ownership, WarrantyClaim, WarrantyStatus};
use repairmatch_proto::v1 as pb;
use tonic_types::FieldViolation;

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
/// Half the Earth's circumference: no cap needs to be larger.
const MAX_DISTANCE_CAP_KM: f64 = 20_038.0;

/// Collects violations under a path prefix.
#[derive(Debug, Default)]
pub struct Violations {
    list: Vec<FieldViolation>,
}

impl Violations {
    /// Records a bad field.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.list.push(FieldViolation::new(field, description));
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The recorded violations.
    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.list
    }

    fn text(&mut self, field: String, value: &str, max_chars: usize, required: bool) {
        if required && value.trim().is_empty() {
            self.add(field, "is required");
        } else if value.chars().count() > max_chars {
            self.add(field, format!("must be at most {max_chars} characters"));
        }
    }

    fn location(&mut self, field: &str, location: Option<&pb::LatLng>) -> Option<LatLng> {
        let Some(location) = location else {
            self.add(field, "is required");
            return None;
        };
        let mut ok = true;
        if !(location.latitude.is_finite() && (-90.0..=90.0).contains(&location.latitude)) {
            self.add(format!("{field}.latitude"), "must be a number from -90 to 90");
            ok = false;
        }
        if !(location.longitude.is_finite() && (-180.0..=180.0).contains(&location.longitude)) {
            self.add(format!("{field}.longitude"), "must be a number from -180 to 180");
            ok = false;
        }
        ok.then(|| LatLng::new(location.latitude, location.longitude))
    }

    fn money(&mut self, field: &str, money: Option<&pb::Money>) -> Option<Money> {
        let Some(money) = money else {
            self.add(field, "is required");
            return None;
        };
        let currency_code = CurrencyCode::parse(&money.currency_code);
        if currency_code.is_none() {
            self.add(format!("{field}.currency_code"), "must be an ISO 4217 currency code, such as CNY or USD");
        }
        if money.amount_minor_units < 0 {
            self.add(format!("{field}.amount_minor_units"), "must not be negative");
            return None;
        }
        Some(Money { currency_code: currency_code?, amount_minor_units: money.amount_minor_units })
    }
}

fn money_to_proto(money: &Money) -> pb::Money {
    pb::Money { currency_code: money.currency_code.to_string(), amount_minor_units: money.amount_minor_units }
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() { field.to_owned() } else { format!("{prefix}.{field}") }
}

// === enums ===

fn service_mode(value: i32) -> Option<ServiceMode> {
    match pb::ServiceMode::try_from(value).ok()? {
        pb::ServiceMode::Unspecified => None,
        pb::ServiceMode::WalkIn => Some(ServiceMode::WalkIn),
        pb::ServiceMode::Onsite => Some(ServiceMode::Onsite),
        pb::ServiceMode::MailIn => Some(ServiceMode::MailIn),
        pb::ServiceMode::Exchange => Some(ServiceMode::Exchange),
        pb::ServiceMode::Remote => Some(ServiceMode::Remote),
    }
}

fn service_mode_to_proto(mode: ServiceMode) -> i32 {
    let mode = match mode {
        ServiceMode::WalkIn => pb::ServiceMode::WalkIn,
        ServiceMode::Onsite => pb::ServiceMode::Onsite,
        ServiceMode::MailIn => pb::ServiceMode::MailIn,
        ServiceMode::Exchange => pb::ServiceMode::Exchange,
        ServiceMode::Remote => pb::ServiceMode::Remote,
    };
    mode as i32
}

/// `Ok(None)` for unspecified, `Err(())` for values the proto does not know.
fn fault_category(value: i32) -> Result<Option<FaultCategory>, ()> {
    Ok(Some(match pb::FaultCategory::try_from(value).map_err(|_| ())? {
        pb::FaultCategory::Unspecified => return Ok(None),
        pb::FaultCategory::Screen => FaultCategory::Screen,
        pb::FaultCategory::Keypad => FaultCategory::Keypad,
        pb::FaultCategory::Printer => FaultCategory::Printer,
        pb::FaultCategory::CardReader => FaultCategory::CardReader,
        pb::FaultCategory::BatteryPower => FaultCategory::BatteryPower,
        pb::FaultCategory::Connectivity => FaultCategory::Connectivity,
        pb::FaultCategory::Software => FaultCategory::Software,
        pb::FaultCategory::Tamper => FaultCategory::Tamper,
        pb::FaultCategory::Other => FaultCategory::Other,
    }))
}

fn fault_category_to_proto(fault: FaultCategory) -> i32 {
    let fault = match fault {
        FaultCategory::Screen => pb::FaultCategory::Screen,
        FaultCategory::Keypad => pb::FaultCategory::Keypad,
        FaultCategory::Printer => pb::FaultCategory::Printer,
        FaultCategory::CardReader => pb::FaultCategory::CardReader,
        FaultCategory::BatteryPower => pb::FaultCategory::BatteryPower,
        FaultCategory::Connectivity => pb::FaultCategory::Connectivity,
        FaultCategory::Software => pb::FaultCategory::Software,
        FaultCategory::Tamper => pb::FaultCategory::Tamper,
        FaultCategory::Other => pb::FaultCategory::Other,
    };
    fault as i32
}

fn weekday(value: i32) -> Option<Weekday> {
    Some(match pb::DayOfWeek::try_from(value).ok()? {
        pb::DayOfWeek::Unspecified => return None,
        pb::DayOfWeek::Monday => Weekday::Mon,
        pb::DayOfWeek::Tuesday => Weekday::Tue,
        pb::DayOfWeek::Wednesday => Weekday::Wed,
        pb::DayOfWeek::Thursday => Weekday::Thu,
        pb::DayOfWeek::Friday => Weekday::Fri,
        pb::DayOfWeek::Saturday => Weekday::Sat,
        pb::DayOfWeek::Sunday => Weekday::Sun,
    })
}

fn weekday_to_proto(day: Weekday) -> i32 {
    // DayOfWeek numbers Monday = 1 … Sunday = 7, as ISO 8601 does.
    day.number_from_monday() as i32
}

fn kind_to_proto(kind: CenterKind) -> i32 {
    let kind = match kind {
        CenterKind::Authorized => pb::RepairCenterKind::Authorized,
        CenterKind::BankService => pb::RepairCenterKind::BankService,
        CenterKind::ThirdParty => pb::RepairCenterKind::ThirdParty,
    };
    kind as i32
}

fn exclusion_rule_to_proto(rule: ExclusionRule) -> i32 {
    let rule = match rule {
        ExclusionRule::NotFound => pb::ExclusionRule::NotFound,
        ExclusionRule::Inactive => pb::ExclusionRule::Inactive,
        ExclusionRule::Brand => pb::ExclusionRule::Brand,
        ExclusionRule::Model => pb::ExclusionRule::Model,
        ExclusionRule::Fault => pb::ExclusionRule::Fault,
        ExclusionRule::Coverage => pb::ExclusionRule::Coverage,
        ExclusionRule::DistanceCap => pb::ExclusionRule::DistanceCap,
        ExclusionRule::ServiceMode => pb::ExclusionRule::ServiceMode,
        ExclusionRule::Rating => pb::ExclusionRule::Rating,
        ExclusionRule::Price => pb::ExclusionRule::Price,
        ExclusionRule::Closed => pb::ExclusionRule::Closed,
        ExclusionRule::Policy => pb::ExclusionRule::Policy,
    };
    rule as i32
}

fn warranty_status_to_proto(status: WarrantyStatus) -> i32 {
    let status = match status {
        WarrantyStatus::Unknown => pb::WarrantyStatus::Unknown,
        WarrantyStatus::InWarranty => pb::WarrantyStatus::InWarranty,
        WarrantyStatus::OutOfWarranty => pb::WarrantyStatus::OutOfWarranty,
    };
    status as i32
}

fn timestamp(value: &pbjson_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(value.nanos).ok().filter(|n| *n < 1_000_000_000)?;
    DateTime::from_timestamp(value.seconds, nanos)
}

fn timestamp_to_proto(time: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp { seconds: time.timestamp(), nanos: time.timestamp_subsec_nanos() as i32 }
}

fn parse_date(value: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().filter(|_| value.len() == 10)
}

// === repair centers ===

/// Validates a center. `prefix` is the path of the message in its request
/// (`centers[3]`), empty at the top level.
pub fn center_from_proto(center: &pb::RepairCenter, prefix: &str) -> Result<RepairCenter, Vec<FieldViolation>> {
    let mut v = Violations::default();
    let field = |name: &str| join(prefix, name);

    if !is_valid_id(&center.id) {
        v.add(field("id"), format!("must be 1 to {MAX_ID_CHARS} characters of A-Z a-z 0-9 . _ : -"));
    }
    v.text(field("name"), &center.name, 200, true);
    let kind = match pb::RepairCenterKind::try_from(center.kind) {
        Ok(pb::RepairCenterKind::Authorized) => Some(CenterKind::Authorized),
        Ok(pb::RepairCenterKind::BankService) => Some(CenterKind::BankService),
        Ok(pb::RepairCenterKind::ThirdParty) => Some(CenterKind::ThirdParty),
        Ok(pb::RepairCenterKind::Unspecified) => {
            v.add(field("kind"), "is required");
            None
        }
        Err(_) => {
            v.add(field("kind"), format!("unknown value {}", center.kind));
            None
        }
    };
    v.text(field("owner"), &center.owner, 128, false);
    let location = v.location(&field("location"), center.location.as_ref());
    v.text(field("address"), &center.address, 500, false);
    v.text(field("city"), &center.city, 200, false);
    let is_country_code = |code: &str| code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase());
    if !center.country_code.is_empty() && !is_country_code(&center.country_code) {
        v.add(field("country_code"), "must be an ISO 3166-1 alpha-2 code of two upper-case letters");
    }

    let coverage = coverage_from_proto(center.coverage.as_ref(), &field("coverage"), &mut v);

    let mut service_modes = ServiceModeSet::EMPTY;
    for (i, &value) in center.service_modes.iter().enumerate() {
        match service_mode(value) {
            Some(mode) => service_modes.insert(mode),
            None => v.add(field(&format!("service_modes[{i}]")), format!("unknown or unspecified value {value}")),
        }
    }
    if center.service_modes.is_empty() {
        v.add(field("service_modes"), "at least one service mode is required");
    }

    if center.brands.is_empty() {
        v.add(field("brands"), "at least one brand is required");
    }
    if center.brands.len() > 50 {
        v.add(field("brands"), "at most 50 brands");
    }
    let mut brand_keys = HashSet::new();
    let brands = center
        .brands
        .iter()
        .take(50)
        .enumerate()
        .map(|(i, brand)| {
            let path = field(&format!("brands[{i}]"));
            v.text(format!("{path}.brand"), &brand.brand, MAX_NAME_KEY_CHARS, true);
            if !brand_keys.insert(repairmatch_core::model::match_key(&brand.brand)) {
                v.add(format!("{path}.brand"), "lists the same brand twice");
            }
            if brand.models.len() > 500 {
                v.add(format!("{path}.models"), "at most 500 models");
            }
            for (j, model) in brand.models.iter().enumerate().take(500) {
                v.text(format!("{path}.models[{j}]"), model, MAX_NAME_KEY_CHARS, true);
            }
            BrandSupport::new(
                brand.brand.trim(),
                brand.authorized,
                brand.models.iter().map(|m| m.trim().to_owned()).collect(),
            )
        })
        .collect::<Vec<_>>();

    let mut fault_categories = repairmatch_core::model::FaultSet::EMPTY;
    for (i, &value) in center.fault_categories.iter().enumerate() {
        match fault_category(value) {
            Ok(Some(fault)) => fault_categories.insert(fault),
            _ => v.add(field(&format!("fault_categories[{i}]")), format!("unknown or unspecified value {value}")),
        }
    }
    if center.fault_categories.is_empty() {
        v.add(field("fault_categories"), "at least one fault category is required");
    }

    let rating = match &center.rating {
        None => None,
        Some(rating) if rating.count == 0 => {
            if rating.average != 0.0 {
                v.add(field("rating.average"), "must be 0 when there are no reviews");
            }
            None
        }
        Some(rating) => {
            if !(rating.average.is_finite() && (1.0..=5.0).contains(&rating.average)) {
                v.add(field("rating.average"), "must be from 1 to 5");
            }
            Some(Rating { average: rating.average, count: rating.count })
        }
    };

    let mut priced = HashSet::new();
    let prices = center
        .prices
        .iter()
        .enumerate()
        .filter_map(|(i, price)| {
            let path = field(&format!("prices[{i}]"));
            let fault = match fault_category(price.fault_category) {
                Ok(Some(fault)) => Some(fault),
                _ => {
                    v.add(format!("{path}.fault_category"), "must be a known fault category");
                    None
                }
            };
            if let Some(fault) = fault
                && !priced.insert(fault)
            {
                v.add(format!("{path}.fault_category"), "prices the same fault twice");
            }
            let min = v.money(&format!("{path}.min"), price.min.as_ref());
            let max = v.money(&format!("{path}.max"), price.max.as_ref());
            let (min, max) = (min?, max?);
            if min.currency_code != max.currency_code {
                v.add(format!("{path}.max.currency_code"), "must be the currency of min");
            } else if min.amount_minor_units > max.amount_minor_units {
                v.add(format!("{path}.max.amount_minor_units"), "must not be below min");
            }
            Some(PriceRange { fault_category: fault?, min, max })
        })
        .collect();

    let opening_hours =
        center.opening_hours.as_ref().and_then(|hours| hours_from_proto(hours, &field("opening_hours"), &mut v));

    let contact = center.contact.as_ref().map_or_else(Contact::default, |contact| {
        v.text(field("contact.phone"), &contact.phone, 64, false);
        v.text(field("contact.email"), &contact.email, 254, false);
        v.text(field("contact.url"), &contact.url, 2048, false);
        Contact { phone: contact.phone.clone(), email: contact.email.clone(), url: contact.url.clone() }
    });

    if center.bank_ids.len() > 50 {
        v.add(field("bank_ids"), "at most 50 banks");
    }
    for (i, bank_id) in center.bank_ids.iter().enumerate().take(50) {
        if !is_valid_id(bank_id) {
            v.add(field(&format!("bank_ids[{i}]")), "must be a valid bank id");
        }
    }
    if kind == Some(CenterKind::BankService) && center.bank_ids.is_empty() {
        v.add(field("bank_ids"), "a BANK_SERVICE center must name the banks it serves");
    }

    let mut turnaround_modes = ServiceModeSet::EMPTY;
    let turnaround_hours = center
        .turnaround_hours
        .iter()
        .enumerate()
        .filter_map(|(i, turnaround)| {
            let path = field(&format!("turnaround_hours[{i}]"));
            if turnaround.hours > 24 * 365 {
                v.add(format!("{path}.hours"), "must be at most a year (8760 hours)");
            }
            let Some(mode) = service_mode(turnaround.service_mode) else {
                v.add(format!("{path}.service_mode"), "must be a known service mode");
                return None;
            };
            if turnaround_modes.contains(mode) {
                v.add(format!("{path}.service_mode"), "gives the same mode twice");
            }
            turnaround_modes.insert(mode);
            Some((mode, turnaround.hours))
        })
        .collect();

    v.text(field("etag"), &center.etag, 128, false);
    let update_time = center.update_time.as_ref().and_then(|time| {
        let parsed = timestamp(time);
        if parsed.is_none() {
            v.add(field("update_time"), "is not a valid timestamp");
        }
        parsed
    });

    if !v.is_empty() {
        return Err(v.into_vec());
    }
    Ok(RepairCenter {
        id: center.id.clone(),
        name: center.name.trim().to_owned(),
        kind: kind.expect("validated"),
        owner: center.owner.clone(),
        location: location.expect("validated"),
        address: center.address.clone(),
        city: center.city.clone(),
        country_code: center.country_code.clone(),
        coverage: coverage.expect("validated"),
        service_modes,
        brands,
        fault_categories,
        rating,
        prices,
        opening_hours,
        contact,
        bank_ids: center.bank_ids.clone(),
        turnaround_hours,
        key_injection: center.key_injection,
        active: center.active,
        etag: center.etag.clone(),
        update_time,
    })
}

fn coverage_from_proto(coverage: Option<&pb::Coverage>, path: &str, v: &mut Violations) -> Option<Coverage> {
    let Some(coverage) = coverage else {
        v.add(path, "is required: a radius, a polygon or both");
        return None;
    };
    let radius_km = coverage.radius_km;
    if !(radius_km.is_finite() && (0.0..=MAX_RADIUS_KM).contains(&radius_km)) {
        v.add(format!("{path}.radius_km"), format!("must be above 0 and at most {MAX_RADIUS_KM} km"));
        return None;
    }
    let area = match &coverage.polygon {
        None => None,
        Some(polygon) => {
            let to_points = |ring: Option<&pb::LinearRing>| -> Vec<LatLng> {
                ring.map(|r| r.points.iter().map(|p| LatLng::new(p.latitude, p.longitude)).collect())
                    .unwrap_or_default()
            };
            let points = polygon.exterior.as_ref().map_or(0, |r| r.points.len())
                + polygon.holes.iter().map(|h| h.points.len()).sum::<usize>();
            if points > MAX_POLYGON_POINTS {
                v.add(format!("{path}.polygon"), format!("has {points} points; at most {MAX_POLYGON_POINTS}"));
                return None;
            }
            let holes = polygon.holes.iter().map(|hole| to_points(Some(hole))).collect();
            match ServiceArea::new(to_points(polygon.exterior.as_ref()), holes) {
                Ok(area) => Some(area),
                Err(problem) => {
                    v.add(format!("{path}.polygon"), problem.to_string());
                    return None;
                }
            }
        }
    };
    let radius_km = (radius_km > 0.0).then_some(radius_km);
    if radius_km.is_none() && area.is_none() {
        v.add(format!("{path}.radius_km"), "a radius above 0 or a polygon is required");
        return None;
    }
    Some(Coverage { radius_km, area })
}

fn period_from_proto(
    period: &pb::WeeklyPeriod,
    day: Option<Weekday>,
    path: &str,
    v: &mut Violations,
) -> Option<WeeklyPeriod> {
    let day = match day.or_else(|| weekday(period.day)) {
        Some(day) => Some(day),
        None => {
            v.add(format!("{path}.day"), "must be a day of the week");
            None
        }
    };
    if period.open_minute_of_day >= 1440 {
        v.add(format!("{path}.open_minute_of_day"), "must be from 0 to 1439");
    }
    if !(1..=1440).contains(&period.close_minute_of_day) {
        v.add(format!("{path}.close_minute_of_day"), "must be from 1 to 1440");
    }
    Some(WeeklyPeriod {
        day: day?,
        open_minute_of_day: period.open_minute_of_day,
        close_minute_of_day: period.close_minute_of_day,
    })
}

fn hours_from_proto(hours: &pb::OpeningHours, path: &str, v: &mut Violations) -> Option<OpeningHours> {
    let time_zone: Option<chrono_tz::Tz> = hours.time_zone.parse().ok();
    if time_zone.is_none() {
        v.add(format!("{path}.time_zone"), "must be an IANA time zone such as Asia/Shanghai");
    }
    if hours.periods.len() > 100 {
        v.add(format!("{path}.periods"), "at most 100 periods");
    }
    let periods: Vec<_> = hours
        .periods
        .iter()
        .take(100)
        .enumerate()
        .filter_map(|(i, period)| period_from_proto(period, None, &format!("{path}.periods[{i}]"), v))
        .collect();
    if hours.exceptions.len() > 1000 {
        v.add(format!("{path}.exceptions"), "at most 1000 dated exceptions");
    }
    let mut dates = HashSet::new();
    let mut exceptions: Vec<DatedException> = hours
        .exceptions
        .iter()
        .take(1000)
        .enumerate()
        .filter_map(|(i, exception)| {
            let exception_path = format!("{path}.exceptions[{i}]");
            let Some(date) = parse_date(&exception.date) else {
                v.add(format!("{exception_path}.date"), "must be a date as YYYY-MM-DD");
                return None;
            };
            if !dates.insert(date) {
                v.add(format!("{exception_path}.date"), "gives the same date twice");
            }
            if exception.closed && !exception.periods.is_empty() {
                v.add(format!("{exception_path}.periods"), "must be empty when closed");
            }
            let periods = exception
                .periods
                .iter()
                .enumerate()
                .filter_map(|(j, p)| {
                    period_from_proto(
                        p,
                        Some(chrono::Datelike::weekday(&date)),
                        &format!("{exception_path}.periods[{j}]"),
                        v,
                    )
                })
                .collect();
            Some(DatedException { date, periods: if exception.closed { Vec::new() } else { periods } })
        })
        .collect();
    exceptions.sort_by_key(|e| e.date);
    Some(OpeningHours { time_zone: time_zone?, periods, exceptions })
}

/// A center as a message.
pub fn center_to_proto(center: &RepairCenter) -> pb::RepairCenter {
    let point = |p: &LatLng| pb::LatLng { latitude: p.latitude, longitude: p.longitude };
    let ring = |points: &[LatLng]| pb::LinearRing { points: points.iter().map(point).collect() };
    let period = |p: &WeeklyPeriod| pb::WeeklyPeriod {
        day: weekday_to_proto(p.day),
        open_minute_of_day: p.open_minute_of_day,
        close_minute_of_day: p.close_minute_of_day,
    };
    pb::RepairCenter {
        id: center.id.clone(),
        name: center.name.clone(),
        kind: kind_to_proto(center.kind),
        owner: center.owner.clone(),
        location: Some(point(&center.location)),
        address: center.address.clone(),
        city: center.city.clone(),
        country_code: center.country_code.clone(),
        coverage: Some(pb::Coverage {
            radius_km: center.coverage.radius_km.unwrap_or(0.0),
            polygon: center.coverage.area.as_ref().map(|area| pb::Polygon {
                exterior: Some(ring(&area.exterior)),
                holes: area.holes.iter().map(|hole| ring(hole)).collect(),
            }),
        }),
        service_modes: center.service_modes.iter().map(service_mode_to_proto).collect(),
        brands: center
            .brands
            .iter()
            .map(|b| pb::BrandSupport { brand: b.brand.clone(), authorized: b.authorized, models: b.models.clone() })
            .collect(),
        fault_categories: center.fault_categories.iter().map(fault_category_to_proto).collect(),
        rating: center.rating.map(|r| pb::Rating { average: r.average, count: r.count }),
        prices: center
            .prices
            .iter()
            .map(|p| pb::PriceRange {
                fault_category: fault_category_to_proto(p.fault_category),
                min: Some(money_to_proto(&p.min)),
                max: Some(money_to_proto(&p.max)),
            })
            .collect(),
        opening_hours: center.opening_hours.as_ref().map(|hours| pb::OpeningHours {
            time_zone: hours.time_zone.name().to_owned(),
            periods: hours.periods.iter().map(period).collect(),
            exceptions: hours
                .exceptions
                .iter()
                .map(|e| pb::DatedException {
                    date: e.date.format("%Y-%m-%d").to_string(),
                    closed: e.periods.is_empty(),
                    periods: e.periods.iter().map(period).collect(),
                })
                .collect(),
        }),
        contact: Some(pb::Contact {
            phone: center.contact.phone.clone(),
            email: center.contact.email.clone(),
            url: center.contact.url.clone(),
        }),
        bank_ids: center.bank_ids.clone(),
        turnaround_hours: center
            .turnaround_hours
            .iter()
            .map(|(mode, hours)| pb::Turnaround { service_mode: service_mode_to_proto(*mode), hours: *hours })
            .collect(),
        key_injection: center.key_injection,
        active: center.active,
        etag: center.etag.clone(),
        update_time: center.update_time.map(timestamp_to_proto),
    }
}

// === brands and banks ===

/// Validates a brand.
pub fn brand_from_proto(brand: &pb::Brand, prefix: &str) -> Result<Brand, Vec<FieldViolation>> {
    let mut v = Violations::default();
    let field = |name: &str| join(prefix, name);
    v.text(field("name"), &brand.name, MAX_NAME_KEY_CHARS, true);
    if brand.warranty_months > 120 {
        v.add(field("warranty_months"), "must be at most 120");
    }
    v.text(field("hotline"), &brand.hotline, 64, false);
    v.text(field("online_support_url"), &brand.online_support_url, 2048, false);
    v.text(field("support_email"), &brand.support_email, 254, false);
    if brand.models.len() > 1000 {
        v.add(field("models"), "at most 1000 models");
    }
    for (i, model) in brand.models.iter().enumerate().take(1000) {
        v.text(field(&format!("models[{i}]")), model, MAX_NAME_KEY_CHARS, true);
    }
    v.text(field("owner"), &brand.owner, 128, false);
    if !v.is_empty() {
        return Err(v.into_vec());
    }
    Ok(Brand {
        name: brand.name.trim().to_owned(),
        warranty_months: brand.warranty_months,
        hotline: brand.hotline.clone(),
        online_support_url: brand.online_support_url.clone(),
        support_email: brand.support_email.clone(),
        models: brand.models.clone(),
        owner: brand.owner.clone(),
    })
}

/// A brand as a message.
pub fn brand_to_proto(brand: &Brand) -> pb::Brand {
    pb::Brand {
        name: brand.name.clone(),
        warranty_months: brand.warranty_months,
        hotline: brand.hotline.clone(),
        online_support_url: brand.online_support_url.clone(),
        support_email: brand.support_email.clone(),
        models: brand.models.clone(),
        owner: brand.owner.clone(),
    }
}

/// Validates a bank.
pub fn bank_from_proto(bank: &pb::Bank, prefix: &str) -> Result<Bank, Vec<FieldViolation>> {
    let mut v = Violations::default();
    let field = |name: &str| join(prefix, name);
    if !is_valid_id(&bank.id) {
        v.add(field("id"), format!("must be 1 to {MAX_ID_CHARS} characters of A-Z a-z 0-9 . _ : -"));
    }
    v.text(field("name"), &bank.name, 200, true);
    v.text(field("hotline"), &bank.hotline, 64, false);
    v.text(field("online_support_url"), &bank.online_support_url, 2048, false);
    v.text(field("support_email"), &bank.support_email, 254, false);
    if !v.is_empty() {
        return Err(v.into_vec());
    }
    Ok(Bank {
        id: bank.id.clone(),
        name: bank.name.trim().to_owned(),
        hotline: bank.hotline.clone(),
        online_support_url: bank.online_support_url.clone(),
        support_email: bank.support_email.clone(),
    })
}

/// A bank as a message.
pub fn bank_to_proto(bank: &Bank) -> pb::Bank {
    pb::Bank {
        id: bank.id.clone(),
        name: bank.name.clone(),
        hotline: bank.hotline.clone(),
        online_support_url: bank.online_support_url.clone(),
        support_email: bank.support_email.clone(),
    }
}

// === find ===

/// Validates a find request. `profile_known` says whether a profile name
/// exists; `today` bounds purchase dates.
pub fn find_query_from_proto(
    request: &pb::FindRepairCenterRequest,
    default_profile: &str,
    profile_known: impl Fn(&str) -> bool,
    today: NaiveDate,
) -> Result<FindQuery, Vec<FieldViolation>> {
    let mut v = Violations::default();
    let location = v.location("location", request.location.as_ref());

    let terminal = request.terminal.clone().unwrap_or_default();
    v.text("terminal.brand".into(), &terminal.brand, MAX_NAME_KEY_CHARS, true);
    v.text("terminal.model".into(), &terminal.model, MAX_NAME_KEY_CHARS, false);
    v.text("terminal.serial_number".into(), &terminal.serial_number, 64, false);

    let fault_message = request.fault.clone().unwrap_or_default();
    let fault = fault_category(fault_message.category).unwrap_or_else(|()| {
        v.add("fault.category", format!("unknown value {}", fault_message.category));
        None
    });
    v.text("fault.description".into(), &fault_message.description, 2000, false);

    v.text("bank_id".into(), &request.bank_id, MAX_ID_CHARS, false);
    let bank_id = (!request.bank_id.trim().is_empty()).then(|| request.bank_id.trim().to_owned());
    let ownership = match pb::Ownership::try_from(request.ownership) {
        Ok(pb::Ownership::Unspecified | pb::Ownership::MerchantOwned) => Ownership::MerchantOwned,
        Ok(pb::Ownership::BankDeployed) => match bank_id {
            Some(bank_id) => Ownership::BankDeployed { bank_id },
            None => {
                v.add("bank_id", "is required for a bank-deployed terminal");
                Ownership::MerchantOwned
            }
        },
        Ok(pb::Ownership::Leased) => Ownership::Leased { bank_id },
        Err(_) => {
            v.add("ownership", format!("unknown value {}", request.ownership));
            Ownership::MerchantOwned
        }
    };

    let warranty_message = request.warranty.clone().unwrap_or_default();
    let status = match pb::WarrantyStatus::try_from(warranty_message.status) {
        Ok(pb::WarrantyStatus::Unknown) => WarrantyStatus::Unknown,
        Ok(pb::WarrantyStatus::InWarranty) => WarrantyStatus::InWarranty,
        Ok(pb::WarrantyStatus::OutOfWarranty) => WarrantyStatus::OutOfWarranty,
        Err(_) => {
            v.add("warranty.status", format!("unknown value {}", warranty_message.status));
            WarrantyStatus::Unknown
        }
    };
    let purchase_date = if warranty_message.purchase_date.is_empty() {
        None
    } else {
        match parse_date(&warranty_message.purchase_date) {
            Some(date) if date <= today + chrono::Days::new(1) => Some(date),
            Some(_) => {
                v.add("warranty.purchase_date", "must not be in the future");
                None
            }
            None => {
                v.add("warranty.purchase_date", "must be a date as YYYY-MM-DD");
                None
            }
        }
    };

    let mut service_modes = ServiceModeSet::EMPTY;
    for (i, &value) in request.service_modes.iter().enumerate() {
        match service_mode(value) {
            Some(mode) => service_modes.insert(mode),
            None => v.add(format!("service_modes[{i}]"), format!("unknown or unspecified value {value}")),
        }
    }

    let max_distance_km = request.max_distance_km;
    if !(max_distance_km.is_finite() && (0.0..=MAX_DISTANCE_CAP_KM).contains(&max_distance_km)) {
        v.add("max_distance_km", format!("must be from 0 (the profile's cap) to {MAX_DISTANCE_CAP_KM}"));
    }
    let max_price = request.max_price.as_ref().and_then(|price| v.money("max_price", Some(price)));
    let min_rating = request.min_rating;
    if !(min_rating == 0.0 || (min_rating.is_finite() && (1.0..=5.0).contains(&min_rating))) {
        v.add("min_rating", "must be 0 (none) or from 1 to 5");
    }
    let open_at = request.open_at.as_ref().and_then(|time| {
        let parsed = timestamp(time);
        if parsed.is_none() {
            v.add("open_at", "is not a valid timestamp");
        }
        parsed
    });

    let profile_name = if request.ranking_profile.is_empty() { default_profile } else { &request.ranking_profile };
    if !profile_known(profile_name) {
        v.add("ranking_profile", format!("unknown ranking profile {profile_name:?}"));
    }
    if request.page_size < 0 {
        v.add("page_size", "must not be negative");
    }
    v.text("page_token".into(), &request.page_token, 1024, false);
    if request.explain_center_ids.len() > MAX_EXPLAIN_IDS {
        v.add("explain_center_ids", format!("at most {MAX_EXPLAIN_IDS} ids"));
    }
    for (i, id) in request.explain_center_ids.iter().enumerate().take(MAX_EXPLAIN_IDS) {
        v.text(format!("explain_center_ids[{i}]"), id, MAX_ID_CHARS, true);
    }

    if !v.is_empty() {
        return Err(v.into_vec());
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
        profile_name: profile_name.to_owned(),
        page_size: (request.page_size > 0).then(|| request.page_size.unsigned_abs()),
        page_token: (!request.page_token.is_empty()).then(|| request.page_token.clone()),
        explain_center_ids: request.explain_center_ids.clone(),
    })
}

fn match_to_proto(ranked: &RankedMatch) -> pb::RepairCenterMatch {
    let scored = &ranked.scored;
    let eligible = &scored.eligible;
    pb::RepairCenterMatch {
        center: Some(center_to_proto(&ranked.center)),
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
        service_modes: eligible.usable_modes.iter().map(service_mode_to_proto).collect(),
        reasons: ranked.reasons.clone(),
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

fn exclusion_to_proto(exclusion: &Exclusion) -> pb::Exclusion {
    pb::Exclusion {
        center_id: exclusion.center_id.clone(),
        rule: exclusion_rule_to_proto(exclusion.rule),
        detail: exclusion.detail.clone(),
    }
}

/// A find outcome as a response.
pub fn find_response_to_proto(outcome: &FindOutcome, profile_name: &str) -> pb::FindRepairCenterResponse {
    pb::FindRepairCenterResponse {
        matches: outcome.matches.iter().map(match_to_proto).collect(),
        remote_support: Some(pb::RemoteSupport {
            channels: outcome.remote_support.iter().map(channel_to_proto).collect(),
        }),
        guidance: outcome.guidance.clone(),
        exclusions: outcome.exclusions.iter().map(exclusion_to_proto).collect(),
        total_size: i32::try_from(outcome.total_size).unwrap_or(i32::MAX),
        total_size_is_estimate: false,
        next_page_token: outcome.next_page_token.clone().unwrap_or_default(),
        ranking_profile: profile_name.to_owned(),
        catalog_version: outcome.catalog_version,
        warranty_status: warranty_status_to_proto(outcome.warranty),
        config_version: 0,
    }
}

#[cfg(test)]
mod tests {
    use repairmatch_datagen as datagen;

    use super::*;

    #[test]
    fn sample_centers_round_trip_through_proto() {
        for center in datagen::generate(300, 3).centers {
            let message = center_to_proto(&center);
            let back = center_from_proto(&message, "").unwrap_or_else(|v| panic!("{}: {v:?}", center.id));
            assert_eq!(back, center);
        }
    }

    #[test]
    fn every_bad_field_is_named_with_its_path() {
        let mut message = center_to_proto(&datagen::generate(1, 1).centers[0]);
        message.id = "bad id!".into();
        message.location = Some(pb::LatLng { latitude: f64::NAN, longitude: 200.0 });
        message.coverage = Some(pb::Coverage { radius_km: 900.0, polygon: None });
        message.service_modes.push(42);
        let fields: Vec<String> =
            center_from_proto(&message, "centers[3]").unwrap_err().into_iter().map(|v| v.field).collect();
        for expected in [
            "centers[3].id",
            "centers[3].location.latitude",
            "centers[3].location.longitude",
            "centers[3].coverage.radius_km",
        ] {
            assert!(fields.iter().any(|f| f == expected), "{expected} missing from {fields:?}");
        }
        assert!(fields.iter().any(|f| f.starts_with("centers[3].service_modes[")), "{fields:?}");
    }

    #[test]
    fn a_polygon_that_does_not_close_is_refused() {
        let mut message = center_to_proto(&datagen::generate(1, 1).centers[0]);
        let ring = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)]
            .map(|(latitude, longitude)| pb::LatLng { latitude, longitude });
        message.coverage = Some(pb::Coverage {
            radius_km: 0.0,
            polygon: Some(pb::Polygon { exterior: Some(pb::LinearRing { points: ring.to_vec() }), holes: vec![] }),
        });
        let violations = center_from_proto(&message, "").unwrap_err();
        assert_eq!(violations[0].field, "coverage.polygon");
        assert!(violations[0].description.contains("does not close"), "{violations:?}");
    }
}
