//! Repair centers, brands and banks: validated on the way in, complete on
//! the way out.

use std::collections::HashSet;

use chrono::Weekday;
use repairmatch_core::country::CountryCode;
use repairmatch_core::geodesy::{LatLng, ServiceArea};
use repairmatch_core::model::{
    Bank, Brand, BrandSupport, CenterKind, Coverage, DatedException, FaultCategory, FaultSet, OpeningHours, PriceRange,
    Rating, RepairCenter, ServiceMode, ServiceModeSet, Texts, WeeklyPeriod,
};
use repairmatch_proto::v1 as pb;
use tonic_types::FieldViolation;

use super::enums::ProtoEnum;
use super::{
    FieldPath, Limits, MAX_COUNTRIES, MAX_ID_CHARS, MAX_NAME_KEY_CHARS, MAX_POLYGON_POINTS, MAX_RADIUS_KM,
    MAX_REPAIR_WARRANTY_DAYS, Violations, is_valid_id, money_to_proto, parse_date, timestamp, timestamp_to_proto,
};

/// Validates a center. `prefix` is the path of the message in its request
/// (`centers[3]`), empty at the top level. Takes the message to move its
/// strings into the center rather than copy them (every stored center is
/// converted at start).
pub fn center_from_proto(
    mut center: pb::RepairCenter,
    prefix: &str,
    limits: Limits,
) -> Result<RepairCenter, Vec<FieldViolation>> {
    let mut v = Violations::new(limits);
    let cap = |api_max: usize| if limits == Limits::Api { api_max } else { usize::MAX };
    let root = FieldPath::root(prefix);
    let field = |name: &'static str| root.field(name);

    if !is_valid_id(&center.id) {
        v.add(field("id"), format!("must be 1 to {MAX_ID_CHARS} characters of A-Z a-z 0-9 . _ : -"));
    }
    v.text(field("name"), &center.name, 200, true);
    let kind = match CenterKind::from_proto(center.kind) {
        Ok(Some(kind)) => Some(kind),
        Ok(None) => {
            v.add(field("kind"), "is required");
            None
        }
        Err(unknown) => {
            v.add(field("kind"), unknown.to_string());
            None
        }
    };
    v.text(field("owner"), &center.owner, 128, false);
    let location = v.location(field("location"), center.location.as_ref());
    v.text(field("address"), &center.address, 500, false);
    v.text(field("city"), &center.city, 200, false);
    let country_code = match center.country_code.parse::<CountryCode>() {
        Ok(code) => Some(code),
        Err(_) if center.country_code.is_empty() => None,
        Err(_) => {
            v.add(field("country_code"), "must be an ISO 3166-1 alpha-2 code of two upper-case letters");
            None
        }
    };

    let coverage = coverage_from_proto(center.coverage.as_ref(), field("coverage"), &mut v);

    let mut service_modes = ServiceModeSet::EMPTY;
    for (i, &value) in center.service_modes.iter().enumerate() {
        match ServiceMode::from_proto_required(value) {
            Some(mode) => service_modes.insert(mode),
            None => v.add(root.item("service_modes", i), format!("unknown or unspecified value {value}")),
        }
    }
    if center.service_modes.is_empty() {
        v.add(field("service_modes"), "at least one service mode is required");
    }

    if center.brands.is_empty() {
        v.add(field("brands"), "at least one brand is required");
    }
    v.limit(center.brands.len() > 50, field("brands"), "at most 50 brands");
    let mut brands: Vec<BrandSupport> = Vec::with_capacity(center.brands.len().min(cap(50)));
    for (i, brand) in center.brands.iter().take(cap(50)).enumerate() {
        let path = root.item("brands", i);
        v.text(path.field("brand"), &brand.brand, MAX_NAME_KEY_CHARS, true);
        let support = BrandSupport::new(&brand.brand, brand.authorized, &brand.models);
        // A few (50 at most through the API): a scan is cheaper than hashing.
        if brands.iter().any(|earlier| earlier.brand_key() == support.brand_key()) {
            v.add(path.field("brand"), "lists the same brand twice");
        }
        v.limit(brand.models.len() > 500, path.field("models"), "at most 500 models");
        for (j, model) in brand.models.iter().enumerate().take(cap(500)) {
            v.text(path.item("models", j), model, MAX_NAME_KEY_CHARS, true);
        }
        brands.push(support);
    }

    let mut fault_categories = FaultSet::EMPTY;
    for (i, &value) in center.fault_categories.iter().enumerate() {
        match FaultCategory::from_proto(value) {
            Ok(Some(fault)) => fault_categories.insert(fault),
            _ => v.add(root.item("fault_categories", i), format!("unknown or unspecified value {value}")),
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

    let mut priced = FaultSet::EMPTY;
    let prices = center.prices.iter().enumerate().filter_map(|(i, price)| {
        let path = root.item("prices", i);
        let fault = match FaultCategory::from_proto(price.fault_category) {
            Ok(Some(fault)) => Some(fault),
            _ => {
                v.add(path.field("fault_category"), "must be a known fault category");
                None
            }
        };
        if let Some(fault) = fault {
            if priced.contains(fault) {
                v.add(path.field("fault_category"), "prices the same fault twice");
            }
            priced.insert(fault);
        }
        let min = v.money(path.field("min"), price.min.as_ref());
        let max = v.money(path.field("max"), price.max.as_ref());
        let (min, max) = (min?, max?);
        if min.currency_code != max.currency_code {
            v.add(format!("{path}.max.currency_code"), "must be the currency of min");
        } else if min.amount_minor_units > max.amount_minor_units {
            v.add(format!("{path}.max.amount_minor_units"), "must not be below min");
        }
        PriceRange::new(fault?, min, max)
    });
    let prices = boxed_at_most(center.prices.len(), prices);

    let opening_hours =
        center.opening_hours.as_ref().and_then(|hours| hours_from_proto(hours, field("opening_hours"), &mut v));

    let contact = center.contact.take().unwrap_or_default();
    v.text(field("contact.phone"), &contact.phone, 64, false);
    v.text(field("contact.email"), &contact.email, 254, false);
    v.text(field("contact.url"), &contact.url, 2048, false);

    v.limit(center.bank_ids.len() > 50, field("bank_ids"), "at most 50 banks");
    for (i, bank_id) in center.bank_ids.iter().enumerate().take(cap(50)) {
        if !is_valid_id(bank_id) {
            v.add(root.item("bank_ids", i), "must be a valid bank id");
        }
    }
    if kind == Some(CenterKind::BankService) && center.bank_ids.is_empty() {
        v.add(field("bank_ids"), "a BANK_SERVICE center must name the banks it serves");
    }

    if let Some(coverage) = &coverage
        && !coverage.has_area()
        && !service_modes.is_empty()
        && service_modes.without_trips().is_empty()
    {
        v.add(
            field("coverage"),
            "covering countries alone serves mail-in, exchange and remote; walk-in and onsite need a radius or a polygon",
        );
    }

    let mut turnaround_modes = ServiceModeSet::EMPTY;
    let turnaround_hours = center.turnaround_hours.iter().enumerate().filter_map(|(i, turnaround)| {
        let path = root.item("turnaround_hours", i);
        if turnaround.hours > 24 * 365 {
            v.add(format!("{path}.hours"), "must be at most a year (8760 hours)");
        }
        let Some(mode) = ServiceMode::from_proto_required(turnaround.service_mode) else {
            v.add(format!("{path}.service_mode"), "must be a known service mode");
            return None;
        };
        if turnaround_modes.contains(mode) {
            v.add(format!("{path}.service_mode"), "gives the same mode twice");
        }
        turnaround_modes.insert(mode);
        Some((mode, turnaround.hours))
    });
    let turnaround_hours = boxed_at_most(center.turnaround_hours.len(), turnaround_hours);

    if center.repair_warranty_days > MAX_REPAIR_WARRANTY_DAYS {
        v.add(field("repair_warranty_days"), "must be at most 3650 (ten years)");
    }
    v.text(field("terms_url"), &center.terms_url, 2048, false);
    if !center.terms_url.is_empty() && !center.terms_url.starts_with("https://") {
        v.add(field("terms_url"), "must be an https:// URL");
    }

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
    let name = match center.name.trim() {
        trimmed if trimmed.len() == center.name.len() => std::mem::take(&mut center.name),
        trimmed => trimmed.to_owned(),
    };
    Ok(RepairCenter {
        id: center.id,
        name,
        kind: kind.expect("validated"),
        owner: center.owner,
        location: location.expect("validated"),
        texts: Texts {
            address: &center.address,
            city: &center.city,
            terms_url: &center.terms_url,
            phone: &contact.phone,
            email: &contact.email,
            url: &contact.url,
        }
        .into(),
        country_code,
        coverage: coverage.expect("validated"),
        service_modes,
        brands,
        fault_categories,
        rating,
        prices,
        opening_hours,
        bank_ids: center.bank_ids.into(),
        turnaround_hours,
        key_injection: center.key_injection,
        repair_warranty_days: center.repair_warranty_days,
        active: center.active,
        etag: center.etag,
        update_time,
    })
}

fn coverage_from_proto(coverage: Option<&pb::Coverage>, path: FieldPath<'_>, v: &mut Violations) -> Option<Coverage> {
    let Some(coverage) = coverage else {
        v.add(path, "is required: a radius, a polygon or both");
        return None;
    };
    let radius_km = coverage.radius_km;
    let too_far = radius_km > MAX_RADIUS_KM && v.limits == Limits::Api;
    if !(radius_km.is_finite() && radius_km >= 0.0) || too_far {
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
            if points > MAX_POLYGON_POINTS && v.limits == Limits::Api {
                v.add(format!("{path}.polygon"), format!("has {points} points; at most {MAX_POLYGON_POINTS}"));
                return None;
            }
            let holes = polygon.holes.iter().map(|hole| to_points(Some(hole))).collect();
            match ServiceArea::new(to_points(polygon.exterior.as_ref()), holes) {
                Ok(area) => Some(Box::new(area)),
                Err(problem) => {
                    v.add(format!("{path}.polygon"), problem.to_string());
                    return None;
                }
            }
        }
    };
    let mut country_codes = Vec::with_capacity(coverage.country_codes.len());
    v.limit(coverage.country_codes.len() > MAX_COUNTRIES, path.field("country_codes"), "at most 250 countries");
    for (i, code) in coverage.country_codes.iter().enumerate().take(MAX_COUNTRIES) {
        match code.parse::<CountryCode>() {
            Ok(country) if country_codes.contains(&country) => {
                v.add(format!("{path}.country_codes[{i}]"), format!("{country} is listed twice"));
            }
            Ok(country) => country_codes.push(country),
            Err(problem) => v.add(format!("{path}.country_codes[{i}]"), problem.to_string()),
        }
    }
    country_codes.sort_unstable();
    let radius_km = (radius_km > 0.0).then_some(radius_km);
    if radius_km.is_none() && area.is_none() && country_codes.is_empty() {
        v.add(format!("{path}.radius_km"), "a radius above 0, a polygon or country codes are required");
        return None;
    }
    Some(Coverage { radius_km, area, country_codes })
}

fn period_from_proto(
    period: &pb::WeeklyPeriod,
    day: Option<Weekday>,
    path: FieldPath<'_>,
    v: &mut Violations,
) -> Option<WeeklyPeriod> {
    let day = match day.or_else(|| Weekday::from_proto_required(period.day)) {
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
        open_minute_of_day: u16::try_from(period.open_minute_of_day).ok()?,
        close_minute_of_day: u16::try_from(period.close_minute_of_day).ok()?,
    })
}

fn hours_from_proto(hours: &pb::OpeningHours, path: FieldPath<'_>, v: &mut Violations) -> Option<OpeningHours> {
    let time_zone: Option<chrono_tz::Tz> = hours.time_zone.parse().ok();
    if time_zone.is_none() {
        v.add(format!("{path}.time_zone"), "must be an IANA time zone such as Asia/Shanghai");
    }
    v.limit(hours.periods.len() > 100, path.field("periods"), "at most 100 periods");
    let limits = v.limits;
    let cap = |api_max: usize| if limits == Limits::Api { api_max } else { usize::MAX };
    let periods = boxed_at_most(
        hours.periods.len().min(cap(100)),
        (hours.periods.iter().take(cap(100)).enumerate())
            .filter_map(|(i, period)| period_from_proto(period, None, path.item("periods", i), v)),
    );
    v.limit(hours.exceptions.len() > 1000, path.field("exceptions"), "at most 1000 dated exceptions");
    let mut dates = HashSet::new();
    let exceptions = (hours.exceptions.iter().take(cap(1000)).enumerate()).filter_map(|(i, exception)| {
        let exception_path = path.item("exceptions", i);
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
        let periods = (exception.periods.iter().enumerate()).filter_map(|(j, p)| {
            period_from_proto(p, Some(chrono::Datelike::weekday(&date)), exception_path.item("periods", j), v)
        });
        let periods = boxed_at_most(exception.periods.len(), periods);
        Some(DatedException { date, periods: if exception.closed { Box::default() } else { periods } })
    });
    let mut exceptions = boxed_at_most(hours.exceptions.len().min(cap(1000)), exceptions);
    exceptions.sort_by_key(|e| e.date);
    Some(OpeningHours { time_zone: time_zone?, periods, exceptions })
}

/// `items`, of which there are at most `len`, in a slice: room for `len`
/// made first, as a filtered iterator cannot say how many it yields, and
/// growing then shrinking to fit moved every period of every center a start
/// decodes.
fn boxed_at_most<T>(len: usize, items: impl Iterator<Item = T>) -> Box<[T]> {
    let mut collected = Vec::with_capacity(len);
    collected.extend(items);
    collected.into_boxed_slice()
}

/// A center as a message.
pub fn center_to_proto(center: &RepairCenter) -> pb::RepairCenter {
    let point = |p: &LatLng| pb::LatLng { latitude: p.latitude, longitude: p.longitude };
    let ring = |points: &[LatLng]| pb::LinearRing { points: points.iter().map(point).collect() };
    let period = |p: &WeeklyPeriod| pb::WeeklyPeriod {
        day: p.day.to_proto(),
        open_minute_of_day: u32::from(p.open_minute_of_day),
        close_minute_of_day: u32::from(p.close_minute_of_day),
    };
    let texts = center.texts.parts();
    pb::RepairCenter {
        id: center.id.clone(),
        name: center.name.clone(),
        kind: center.kind.to_proto(),
        owner: center.owner.clone(),
        location: Some(point(&center.location)),
        address: texts.address.to_owned(),
        city: texts.city.to_owned(),
        country_code: center.country_code.map(|code| code.to_string()).unwrap_or_default(),
        coverage: Some(pb::Coverage {
            radius_km: center.coverage.radius_km.unwrap_or(0.0),
            country_codes: center.coverage.country_codes.iter().map(ToString::to_string).collect(),
            polygon: center.coverage.area.as_ref().map(|area| pb::Polygon {
                exterior: Some(ring(&area.exterior)),
                holes: area.holes.iter().map(|hole| ring(hole)).collect(),
            }),
        }),
        service_modes: center.service_modes.iter().map(ServiceMode::to_proto).collect(),
        brands: center
            .brands
            .iter()
            .map(|b| pb::BrandSupport {
                brand: b.brand().to_owned(),
                authorized: b.authorized,
                models: b.models().map(str::to_owned).collect(),
            })
            .collect(),
        fault_categories: center.fault_categories.iter().map(FaultCategory::to_proto).collect(),
        rating: center.rating.map(|r| pb::Rating { average: r.average, count: r.count }),
        prices: center
            .prices
            .iter()
            .map(|p| pb::PriceRange {
                fault_category: p.fault_category.to_proto(),
                min: Some(money_to_proto(&p.min())),
                max: Some(money_to_proto(&p.max())),
            })
            .collect(),
        opening_hours: center.opening_hours.as_ref().map(|hours| pb::OpeningHours {
            time_zone: hours.time_zone.name().to_owned(),
            periods: hours.periods.iter().map(period).collect(),
            exceptions: hours
                .exceptions
                .iter()
                .map(|e| pb::DatedException {
                    // NaiveDate displays as ISO 8601, %Y-%m-%d, without parsing a format string per date.
                    date: e.date.to_string(),
                    closed: e.periods.is_empty(),
                    periods: e.periods.iter().map(period).collect(),
                })
                .collect(),
        }),
        contact: Some(pb::Contact {
            phone: texts.phone.to_owned(),
            email: texts.email.to_owned(),
            url: texts.url.to_owned(),
        }),
        bank_ids: center.bank_ids.to_vec(),
        turnaround_hours: center
            .turnaround_hours
            .iter()
            .map(|(mode, hours)| pb::Turnaround { service_mode: mode.to_proto(), hours: *hours })
            .collect(),
        key_injection: center.key_injection,
        repair_warranty_days: center.repair_warranty_days,
        terms_url: texts.terms_url.to_owned(),
        active: center.active,
        etag: center.etag.clone(),
        update_time: center.update_time.map(timestamp_to_proto),
    }
}

/// Validates a brand.
pub fn brand_from_proto(brand: &pb::Brand, prefix: &str, limits: Limits) -> Result<Brand, Vec<FieldViolation>> {
    let mut v = Violations::new(limits);
    let root = FieldPath::root(prefix);
    let field = |name: &'static str| root.field(name);
    v.text(field("name"), &brand.name, MAX_NAME_KEY_CHARS, true);
    if brand.warranty_months > 120 {
        v.add(field("warranty_months"), "must be at most 120");
    }
    v.text(field("hotline"), &brand.hotline, 64, false);
    v.text(field("online_support_url"), &brand.online_support_url, 2048, false);
    v.text(field("support_email"), &brand.support_email, 254, false);
    v.limit(brand.models.len() > 1000, field("models"), "at most 1000 models");
    for (i, model) in brand.models.iter().enumerate() {
        v.text(root.item("models", i), model, MAX_NAME_KEY_CHARS, true);
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
pub fn bank_from_proto(bank: &pb::Bank, prefix: &str, limits: Limits) -> Result<Bank, Vec<FieldViolation>> {
    let mut v = Violations::new(limits);
    let root = FieldPath::root(prefix);
    let field = |name: &'static str| root.field(name);
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

#[cfg(test)]
mod tests {
    use repairmatch_datagen as datagen;

    use super::*;

    #[test]
    fn sample_centers_round_trip_through_proto() {
        for center in datagen::generate(300, 3).centers {
            let message = center_to_proto(&center);
            let back = center_from_proto(message, "", Limits::Api).unwrap_or_else(|v| panic!("{}: {v:?}", center.id));
            assert_eq!(back, center);
        }
    }

    #[test]
    fn exception_dates_are_written_as_zero_padded_iso_dates() {
        let mut center = datagen::generate(1, 1).centers.remove(0);
        let hours = center.opening_hours.get_or_insert_with(|| OpeningHours {
            time_zone: chrono_tz::Tz::UTC,
            periods: Box::default(),
            exceptions: Box::default(),
        });
        let date = chrono::NaiveDate::from_ymd_opt(2027, 1, 5).unwrap();
        hours.exceptions = Box::new([DatedException { date, periods: Box::default() }]);
        let written = center_to_proto(&center).opening_hours.unwrap().exceptions.remove(0);
        assert_eq!(written.date, "2027-01-05");
    }

    #[test]
    fn a_centers_country_code_is_two_capitals_or_none() {
        let message = center_to_proto(&datagen::generate(1, 1).centers[0]);
        let with_code = |code: &str| pb::RepairCenter { country_code: code.into(), ..message.clone() };
        let read = center_from_proto(with_code("CN"), "", Limits::Api).unwrap();
        assert_eq!(read.country_code, Some("CN".parse().unwrap()));
        assert_eq!(center_to_proto(&read).country_code, "CN");
        let unset = center_from_proto(with_code(""), "", Limits::Api).unwrap();
        assert_eq!((unset.country_code, center_to_proto(&unset).country_code), (None, String::new()));
        for bad in ["cn", "CHN", "C", "Ç1"] {
            let violations = center_from_proto(with_code(bad), "centers[2]", Limits::Api).unwrap_err();
            let named: Vec<_> = violations.iter().map(|v| (v.field.as_str(), v.description.as_str())).collect();
            assert_eq!(
                named,
                [("centers[2].country_code", "must be an ISO 3166-1 alpha-2 code of two upper-case letters")],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_bad_field_is_named_with_its_path() {
        let mut message = center_to_proto(&datagen::generate(1, 1).centers[0]);
        message.id = "bad id!".into();
        message.location = Some(pb::LatLng { latitude: f64::NAN, longitude: 200.0 });
        message.coverage = Some(pb::Coverage { radius_km: 900.0, polygon: None, country_codes: vec![] });
        message.service_modes.push(42);
        let fields: Vec<String> =
            center_from_proto(message, "centers[3]", Limits::Api).unwrap_err().into_iter().map(|v| v.field).collect();
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
            country_codes: vec![],
        });
        let violations = center_from_proto(message, "", Limits::Api).unwrap_err();
        assert_eq!(violations[0].field, "coverage.polygon");
        assert!(violations[0].description.contains("does not close"), "{violations:?}");
    }
}
