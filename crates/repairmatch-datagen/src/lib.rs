//! Deterministic, realistic sample catalogs for repairmatch.
//!
//! Centers sit in real cities (GeoNames, CC BY 4.0: see `assets/CREDITS.md`)
//! in proportion to population, with real POS brands and models, a mix of
//! authorized, bank service and independent repairers, review counts, local
//! currencies and opening hours in the city's own time zone. The same seed
//! always gives the same catalog.
//!
//! It lives apart from `repairmatch-core` so the matching core carries no
//! sample data (the city table alone is 2 MB): the service uses it to seed an
//! empty store and for `repairmatch datagen`; tests and benchmarks use it for
//! catalogs of any size. [`generate_tiled`] grows a catalog at equal density
//! (one tile of cities, repeated far away), for measuring how Find's cost
//! follows the catalog's size.

use std::sync::LazyLock;

use chrono::{NaiveDate, Weekday};

use repairmatch_core::geodesy::{LatLng, ServiceArea};
use repairmatch_core::model::{
    Bank, Brand, BrandSupport, CenterKind, Coverage, CurrencyCode, DatedException, FaultCategory, FaultSet, Money,
    OpeningHours, PriceRange, Rating, RepairCenter, ServiceMode, ServiceModeSet, Texts, WeeklyPeriod,
};

/// A GeoNames city.
#[derive(Debug, Clone)]
struct City {
    /// Name.
    name: String,
    /// ISO 3166-1 alpha-2.
    country_code: String,
    /// Centre.
    location: LatLng,
    /// Inhabitants.
    population: u64,
    /// IANA time zone.
    time_zone: String,
}

const CITIES_CSV: &str = include_str!("../assets/cities15000.csv");

static CITIES: LazyLock<Vec<City>> = LazyLock::new(|| {
    CITIES_CSV
        .lines()
        .skip(1)
        .filter_map(|line| {
            // Only the name may hold commas (then quoted): split the rest off the right.
            let mut fields = line.rsplitn(7, ',');
            let time_zone = fields.next()?;
            let population = fields.next()?.parse().ok()?;
            let longitude = fields.next()?.parse().ok()?;
            let latitude = fields.next()?.parse().ok()?;
            let _admin1 = fields.next()?;
            let country_code = fields.next()?;
            let (_id, name) = fields.next()?.split_once(',')?;
            Some(City {
                name: name.trim_matches('"').to_owned(),
                country_code: country_code.to_owned(),
                location: LatLng::new(latitude, longitude),
                population,
                time_zone: time_zone.to_owned(),
            })
        })
        .collect()
});

/// Every city of 15,000 or more, most populous first.
fn cities() -> &'static [City] {
    &CITIES
}

/// Picks cities with probability proportional to population.
#[derive(Debug)]
struct CityPicker {
    cities: Vec<&'static City>,
    cumulative_population: Vec<u64>,
}

impl Default for CityPicker {
    fn default() -> Self {
        Self::of(cities().iter().collect())
    }
}

impl CityPicker {
    fn of(cities: Vec<&'static City>) -> Self {
        let mut total = 0;
        let cumulative_population = cities
            .iter()
            .map(|city| {
                total += city.population;
                total
            })
            .collect();
        Self { cities, cumulative_population }
    }

    /// Only the cities inside the original tile of a tiled catalog.
    fn in_tile() -> Self {
        Self::of(cities().iter().filter(|city| TILE.contains(city.location)).collect())
    }

    /// A city, population-weighted.
    fn pick(&self, rng: &mut fastrand::Rng) -> &'static City {
        let total = *self.cumulative_population.last().expect("cities are bundled");
        let target = rng.u64(0..total);
        let index = self.cumulative_population.partition_point(|&cumulative| cumulative <= target);
        self.cities[index]
    }
}

/// A point near a city: uniform in a disk that grows with the city.
fn point_near(city: &City, rng: &mut fastrand::Rng) -> LatLng {
    let spread_km = 2.0 + (city.population as f64).sqrt() / 150.0;
    let distance_km = spread_km * rng.f64().sqrt();
    offset(city.location, distance_km, rng.f64() * std::f64::consts::TAU)
}

fn offset(origin: LatLng, distance_km: f64, bearing: f64) -> LatLng {
    let north_km = distance_km * bearing.cos();
    let east_km = distance_km * bearing.sin();
    let latitude = (origin.latitude + north_km / 111.32).clamp(-89.9, 89.9);
    let longitude_scale = 111.32 * latitude.to_radians().cos().max(0.01);
    let mut longitude = origin.longitude + east_km / longitude_scale;
    if longitude > 180.0 {
        longitude -= 360.0;
    } else if longitude < -180.0 {
        longitude += 360.0;
    }
    LatLng::new(latitude, longitude)
}

/// Merchant locations for test and benchmark queries, population-weighted.
pub fn sample_locations(count: usize, seed: u64) -> Vec<LatLng> {
    let picker = CityPicker::default();
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count).map(|_| point_near(picker.pick(&mut rng), &mut rng)).collect()
}

struct BrandSpec {
    name: &'static str,
    warranty_months: u32,
    hotline: &'static str,
    models: &'static [&'static str],
    /// Relative share in mainland China and elsewhere.
    share_china: u32,
    share_elsewhere: u32,
}

const BRANDS: &[BrandSpec] = &[
    BrandSpec {
        name: "PAX",
        warranty_months: 12,
        hotline: "+86 400 888 6600",
        models: &["A920", "A920 Pro", "A80", "A35", "A77", "S920", "IM30"],
        share_china: 25,
        share_elsewhere: 20,
    },
    BrandSpec {
        name: "Verifone",
        warranty_months: 12,
        hotline: "+1 800 837 4366",
        models: &["V200c", "V400m", "P400", "Carbon 10", "T650p", "M400"],
        share_china: 3,
        share_elsewhere: 25,
    },
    BrandSpec {
        name: "Ingenico",
        warranty_months: 12,
        hotline: "+33 1 58 01 80 00",
        models: &["Move/5000", "Desk/5000", "Lane/3000", "AXIUM DX8000", "Link/2500"],
        share_china: 4,
        share_elsewhere: 25,
    },
    BrandSpec {
        name: "Newland",
        warranty_months: 12,
        hotline: "+86 400 860 5888",
        models: &["N910", "N950", "ME60", "SP630", "N750"],
        share_china: 20,
        share_elsewhere: 8,
    },
    BrandSpec {
        name: "Sunmi",
        warranty_months: 15,
        hotline: "+86 400 902 1168",
        models: &["P2", "P2 Pro", "P3", "V2s", "T2s"],
        share_china: 15,
        share_elsewhere: 10,
    },
    BrandSpec {
        name: "Centerm",
        warranty_months: 12,
        hotline: "+86 400 886 6880",
        models: &["K9", "C960F", "MF360", "K320"],
        share_china: 12,
        share_elsewhere: 3,
    },
    BrandSpec {
        name: "LANDI",
        warranty_months: 12,
        hotline: "+86 400 887 2688",
        models: &["A8", "APOS A8", "E550", "C20 Pro"],
        share_china: 15,
        share_elsewhere: 4,
    },
    BrandSpec {
        name: "Castles",
        warranty_months: 24,
        hotline: "+886 2 2517 3333",
        models: &["Saturn1000", "VEGA3000", "S1F2"],
        share_china: 2,
        share_elsewhere: 6,
    },
];

struct BankSpec {
    id: &'static str,
    name: &'static str,
    hotline: &'static str,
    /// Countries it deploys terminals in; empty = everywhere (global acquirers).
    countries: &'static [&'static str],
}

const BANKS: &[BankSpec] = &[
    BankSpec { id: "icbc", name: "Industrial and Commercial Bank of China", hotline: "+86 95588", countries: &["CN"] },
    BankSpec { id: "ccb", name: "China Construction Bank", hotline: "+86 95533", countries: &["CN"] },
    BankSpec { id: "boc", name: "Bank of China", hotline: "+86 95566", countries: &["CN"] },
    BankSpec { id: "abc", name: "Agricultural Bank of China", hotline: "+86 95599", countries: &["CN"] },
    BankSpec { id: "cmb", name: "China Merchants Bank", hotline: "+86 95555", countries: &["CN"] },
    BankSpec { id: "hdfc", name: "HDFC Bank", hotline: "+91 1800 202 6161", countries: &["IN"] },
    BankSpec { id: "sbi", name: "State Bank of India", hotline: "+91 1800 1234", countries: &["IN"] },
    BankSpec { id: "itau", name: "Itaú Unibanco", hotline: "+55 11 4004 4828", countries: &["BR"] },
    BankSpec { id: "chase", name: "Chase Merchant Services", hotline: "+1 800 935 9935", countries: &["US"] },
    BankSpec { id: "adyen", name: "Adyen", hotline: "+31 20 240 1240", countries: &[] },
    BankSpec { id: "worldpay", name: "Worldpay", hotline: "+44 345 761 6263", countries: &[] },
    BankSpec { id: "fiserv", name: "Fiserv", hotline: "+1 800 872 7882", countries: &[] },
];

/// (ISO 4217 currency, units per US dollar) by country. The minor unit comes
/// from the code itself ([`CurrencyCode::minor_unit_digits`]), so amounts can
/// never disagree with ISO 4217 (JPY and KRW have none).
fn currency_of(country_code: &str) -> (&'static str, f64) {
    match country_code {
        "CN" => ("CNY", 7.2),
        "IN" => ("INR", 83.0),
        "BR" => ("BRL", 5.0),
        "JP" => ("JPY", 150.0),
        "RU" => ("RUB", 90.0),
        "GB" => ("GBP", 0.79),
        "MX" => ("MXN", 17.0),
        "ID" => ("IDR", 15_700.0),
        "PH" => ("PHP", 56.0),
        "TR" => ("TRY", 32.0),
        "CA" => ("CAD", 1.36),
        "AU" => ("AUD", 1.5),
        "KR" => ("KRW", 1_350.0),
        "NG" => ("NGN", 1_500.0),
        "PK" => ("PKR", 280.0),
        "DE" | "FR" | "IT" | "ES" | "NL" | "BE" | "AT" | "PT" | "IE" | "FI" | "GR" => ("EUR", 0.92),
        _ => ("USD", 1.0),
    }
}

/// Typical US-dollar quotes (low, high) per fault.
fn usd_quote(fault: FaultCategory) -> (f64, f64) {
    match fault {
        FaultCategory::Screen => (60.0, 120.0),
        FaultCategory::Keypad => (30.0, 60.0),
        FaultCategory::Printer => (25.0, 50.0),
        FaultCategory::CardReader => (50.0, 100.0),
        FaultCategory::BatteryPower => (20.0, 45.0),
        FaultCategory::Connectivity => (20.0, 50.0),
        FaultCategory::Software => (10.0, 30.0),
        FaultCategory::Tamper => (80.0, 150.0),
        FaultCategory::Other => (30.0, 80.0),
    }
}

/// A generated catalog.
#[derive(Debug, Clone)]
pub struct SampleCatalog {
    /// Brands with warranty and support channels.
    pub brands: Vec<Brand>,
    /// Banks and acquirers.
    pub banks: Vec<Bank>,
    /// Repair centers.
    pub centers: Vec<RepairCenter>,
}

/// The owner tenant name sample data uses for a brand's manufacturer.
fn manufacturer_tenant(brand: &str) -> String {
    format!("mfr-{}", brand.to_lowercase())
}

/// The bundled brands.
fn sample_brands() -> Vec<Brand> {
    BRANDS
        .iter()
        .map(|spec| {
            let domain = spec.name.to_lowercase();
            Brand {
                name: spec.name.to_owned(),
                warranty_months: spec.warranty_months,
                hotline: spec.hotline.to_owned(),
                online_support_url: format!("https://support.{domain}.example/pos"),
                support_email: format!("pos-support@{domain}.example"),
                models: spec.models.iter().map(|m| (*m).to_owned()).collect(),
                owner: manufacturer_tenant(spec.name),
            }
        })
        .collect()
}

/// The bundled banks.
fn sample_banks() -> Vec<Bank> {
    BANKS
        .iter()
        .map(|spec| Bank {
            id: spec.id.to_owned(),
            name: spec.name.to_owned(),
            hotline: spec.hotline.to_owned(),
            online_support_url: format!("https://merchants.{}.example/help", spec.id),
            support_email: format!("merchant-care@{}.example", spec.id),
        })
        .collect()
}

const THIRD_PARTY_NAMES: &[&str] =
    &["QuickFix", "TermCare", "PayTech", "CardPro", "FixPoint", "Merchant Tech", "SwipeCare", "POS Doctor"];
const STREETS: &[&str] = &["Main", "Station", "Market", "Park", "Harbour", "Central", "Garden", "River"];

/// Generates `count` centers, deterministic for `seed`.
pub fn generate(count: usize, seed: u64) -> SampleCatalog {
    generate_from(count, seed, &CityPicker::default())
}

fn generate_from(count: usize, seed: u64, picker: &CityPicker) -> SampleCatalog {
    let mut rng = fastrand::Rng::with_seed(seed);
    let centers = (0..count).map(|index| generate_center(index, picker, &mut rng)).collect();
    SampleCatalog { brands: sample_brands(), banks: sample_banks(), centers }
}

/// A latitude/longitude box.
#[derive(Debug, Clone, Copy)]
struct Tile {
    south: f64,
    west: f64,
    /// Both sides, in degrees.
    size_degrees: f64,
}

impl Tile {
    fn contains(&self, point: LatLng) -> bool {
        (self.south..self.south + self.size_degrees).contains(&point.latitude)
            && (self.west..self.west + self.size_degrees).contains(&point.longitude)
    }
}

/// The original tile of a tiled catalog: the Yangtze delta (Shanghai,
/// Suzhou, Hangzhou, Nanjing, Ningbo), a dense region with real cities.
const TILE: Tile = Tile { south: 28.0, west: 118.0, size_degrees: 6.0 };

/// Centers per tile of [`generate_tiled`].
pub const TILE_CENTERS: usize = 10_000;

/// Copies sit on a grid this many degrees apart, so between two tiles there
/// are at least 6° (over 550 km below 60° of latitude): more than any
/// center's coverage (mail-in reaches 500 km), so no center of another copy
/// is ever a candidate for a merchant in the original tile.
const TILE_PITCH_DEGREES: f64 = 12.0;

/// Rows of the grid, as multiples of the pitch from the original tile: they
/// keep every copy within 60° of the equator, where a degree of longitude is
/// still at least half its length at the equator.
const TILE_ROWS: std::ops::RangeInclusive<i32> = -7..=2;
const TILE_COLUMNS: i32 = 30;

/// How far copy `copy` (1-based; 0 is the original) is shifted, in degrees
/// of latitude and longitude.
fn tile_shift(copy: usize) -> (f64, f64) {
    let slots = TILE_ROWS.flat_map(|row| (0..TILE_COLUMNS).map(move |column| (row, column)));
    let (row, column) =
        slots.filter(|&slot| slot != (0, 0)).nth(copy - 1).expect("a tiled catalog has at most 299 copies of its tile");
    (f64::from(row) * TILE_PITCH_DEGREES, f64::from(column) * TILE_PITCH_DEGREES)
}

fn shifted(point: LatLng, (north, east): (f64, f64)) -> LatLng {
    let mut longitude = point.longitude + east;
    if longitude >= 180.0 {
        longitude -= 360.0;
    }
    LatLng::new(point.latitude + north, longitude)
}

/// A catalog of `count` centers that grows at equal density, for measuring
/// how Find's cost follows catalog size: [`TILE_CENTERS`] centers in the
/// cities of one 6° × 6° tile (the first `count` of them when `count` is
/// smaller), then copies of that tile shifted whole to tiles of their own,
/// far apart, with ids of their own. A merchant in the original tile
/// ([`tile_locations`]) sees the same neighbourhood, center for center, at
/// every catalog size; only the rest of the world grows.
pub fn generate_tiled(count: usize, seed: u64) -> SampleCatalog {
    let mut sample = generate_from(count.min(TILE_CENTERS), seed, &CityPicker::in_tile());
    let original = sample.centers.clone();
    for index in original.len()..count {
        let shift = tile_shift(index / TILE_CENTERS);
        let mut center = original[index % TILE_CENTERS].clone();
        center.id = format!("rc-{index:07}");
        center.texts = Texts {
            email: &format!("service+{}@repairs.example", center.id),
            url: &format!("https://repairs.example/centers/{}", center.id),
            ..center.texts.parts()
        }
        .into();
        center.location = shifted(center.location, shift);
        if let Some(area) = &center.coverage.area {
            let ring = |ring: &[LatLng]| ring.iter().map(|&point| shifted(point, shift)).collect::<Vec<_>>();
            let holes = area.holes.iter().map(|hole| ring(hole)).collect();
            let shifted_area =
                ServiceArea::new(ring(&area.exterior), holes).expect("a shifted simple polygon is simple");
            center.coverage.area = Some(Box::new(shifted_area));
        }
        sample.centers.push(center);
    }
    sample
}

/// Merchant locations in the original tile of [`generate_tiled`],
/// population-weighted.
pub fn tile_locations(count: usize, seed: u64) -> Vec<LatLng> {
    let picker = CityPicker::in_tile();
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count).map(|_| point_near(picker.pick(&mut rng), &mut rng)).collect()
}

fn pick_brand(rng: &mut fastrand::Rng, in_china: bool) -> &'static BrandSpec {
    let share = |spec: &BrandSpec| {
        if in_china { spec.share_china } else { spec.share_elsewhere }
    };
    let total: u32 = BRANDS.iter().map(share).sum();
    let mut target = rng.u32(0..total);
    for spec in BRANDS {
        if target < share(spec) {
            return spec;
        }
        target -= share(spec);
    }
    &BRANDS[0]
}

fn chance(rng: &mut fastrand::Rng, probability: f64) -> bool {
    rng.f64() < probability
}

fn generate_center(index: usize, picker: &CityPicker, rng: &mut fastrand::Rng) -> RepairCenter {
    let city = picker.pick(rng);
    let location = point_near(city, rng);
    let in_china = city.country_code == "CN";
    let kind = match rng.u32(0..100) {
        0..35 => CenterKind::Authorized,
        35..55 => CenterKind::BankService,
        _ => CenterKind::ThirdParty,
    };

    let brand_count = match kind {
        CenterKind::Authorized => rng.usize(1..=2),
        CenterKind::BankService => rng.usize(2..=4),
        CenterKind::ThirdParty => rng.usize(2..=5),
    };
    let mut brands: Vec<BrandSupport> = Vec::new();
    for _ in 0..brand_count * 2 {
        if brands.len() == brand_count {
            break;
        }
        let spec = pick_brand(rng, in_china);
        if brands.iter().any(|b| b.brand() == spec.name) {
            continue;
        }
        let models = if chance(rng, 0.35) {
            let mut models: Vec<String> =
                spec.models.iter().filter(|_| chance(rng, 0.6)).map(|m| (*m).to_owned()).collect();
            if models.is_empty() {
                models.push(spec.models[0].to_owned());
            }
            models
        } else {
            Vec::new()
        };
        // An authorized center is authorized by its owner's brand (the first);
        // it may list others it repairs without their authorization.
        let authorized = kind == CenterKind::Authorized && brands.is_empty();
        brands.push(BrandSupport::new(spec.name, authorized, &models));
    }

    let key_injection = kind == CenterKind::Authorized && chance(rng, 0.6);
    let mut fault_categories: FaultSet = FaultCategory::ALL_VALUES
        .into_iter()
        .filter(|fault| *fault != FaultCategory::Tamper && chance(rng, 0.8))
        .collect();
    fault_categories.insert(FaultCategory::Software);
    if key_injection || chance(rng, 0.1) {
        fault_categories.insert(FaultCategory::Tamper);
    }

    let mut service_modes = ServiceModeSet::EMPTY;
    for (mode, probability) in [
        (ServiceMode::WalkIn, 0.85),
        (ServiceMode::Onsite, 0.4),
        (ServiceMode::MailIn, 0.3),
        (ServiceMode::Exchange, if kind == CenterKind::ThirdParty { 0.05 } else { 0.25 }),
        (ServiceMode::Remote, 0.3),
    ] {
        if chance(rng, probability) {
            service_modes.insert(mode);
        }
    }
    if service_modes.is_empty() {
        service_modes.insert(ServiceMode::WalkIn);
    }
    let radius_km = if service_modes.contains(ServiceMode::MailIn) || service_modes.contains(ServiceMode::Exchange) {
        150.0 + rng.f64() * 350.0
    } else if service_modes.contains(ServiceMode::Onsite) {
        15.0 + rng.f64() * 45.0
    } else {
        5.0 + rng.f64() * 25.0
    };
    let radius_km = (radius_km * 10.0).round() / 10.0;
    let area = chance(rng, 0.04).then(|| Box::new(service_area_around(location, rng)));
    let coverage = match area {
        Some(area) if chance(rng, 0.5) => Coverage { radius_km: None, area: Some(area), country_codes: Vec::new() },
        area => Coverage { radius_km: Some(radius_km), area, country_codes: Vec::new() },
    };

    let rating = (!chance(rng, 0.05)).then(|| {
        let count = (rng.f64().powi(3) * 2_000.0) as u32 + 1;
        let average = ((2.5 + rng.f64() * 2.5) * 10.0).round() / 10.0;
        Rating { average: average.min(5.0), count }
    });

    let (currency, per_usd) = currency_of(&city.country_code);
    let currency_code = CurrencyCode::parse(currency).expect("bundled codes are ISO 4217");
    let price_level = 0.7 + rng.f64() * 0.8 * if kind == CenterKind::ThirdParty { 0.8 } else { 1.1 };
    let prices = fault_categories
        .iter()
        .map(|fault| {
            let (low, high) = usd_quote(fault);
            let minor = |usd: f64| {
                let minor_per_major = 10_f64.powi(currency_code.minor_unit_digits() as i32);
                let amount = usd * price_level * per_usd * minor_per_major;
                // Round to a whole local unit, as shops quote.
                ((amount / minor_per_major).round() * minor_per_major) as i64
            };
            let money = |amount_minor_units| Money { currency_code, amount_minor_units };
            PriceRange::new(fault, money(minor(low)), money(minor(high))).expect("one currency")
        })
        .collect();

    let opening_hours = sample_hours(city, rng);

    let bank_ids = if kind == CenterKind::BankService {
        let local: Vec<&BankSpec> =
            BANKS.iter().filter(|b| b.countries.contains(&city.country_code.as_str())).collect();
        let pool: Vec<&BankSpec> =
            if local.is_empty() { BANKS.iter().filter(|b| b.countries.is_empty()).collect() } else { local };
        let mut ids: Vec<String> = pool.iter().filter(|_| chance(rng, 0.4)).map(|b| b.id.to_owned()).collect();
        if ids.is_empty() {
            ids.push(pool[rng.usize(0..pool.len())].id.to_owned());
        }
        ids
    } else {
        Vec::new()
    };

    let mut turnaround_hours = Vec::new();
    if service_modes.contains(ServiceMode::WalkIn) && chance(rng, 0.5) {
        turnaround_hours.push((ServiceMode::WalkIn, [1, 2, 4, 8, 24, 48][rng.usize(0..6)]));
    }
    if service_modes.contains(ServiceMode::MailIn) && chance(rng, 0.5) {
        turnaround_hours.push((ServiceMode::MailIn, [72, 120, 240, 360][rng.usize(0..4)]));
    }

    let (name, owner) = match kind {
        CenterKind::Authorized => {
            let brand = brands[0].brand();
            (format!("{brand} Authorized Service {}", city.name), manufacturer_tenant(brand))
        }
        CenterKind::BankService => {
            let bank = &bank_ids[0];
            (format!("{} Terminal Service Point {}", bank.to_uppercase(), city.name), format!("bank-{bank}"))
        }
        CenterKind::ThirdParty => {
            let prefix = THIRD_PARTY_NAMES[rng.usize(0..THIRD_PARTY_NAMES.len())];
            let slug = prefix.to_lowercase().replace(' ', "-");
            (format!("{prefix} POS Repair {}", city.name), format!("provider-{slug}"))
        }
    };
    let id = format!("rc-{index:07}");
    let (repair_warranty_days, terms_url) = repair_terms(index, kind, &id);
    // In this order: the generator's draws decide every value after them.
    let phone = format!("+{} {:03} {:04}", 10 + index % 89, rng.u32(100..1000), rng.u32(0..10_000));
    let address = format!("{} {} Road", rng.u32(1..400), STREETS[rng.usize(0..STREETS.len())]);
    let texts = Texts {
        address: &address,
        city: &city.name,
        terms_url: &terms_url,
        phone: &phone,
        email: &format!("service+{id}@repairs.example"),
        url: &format!("https://repairs.example/centers/{id}"),
    }
    .into();
    RepairCenter {
        id,
        name,
        kind,
        owner,
        location,
        texts,
        country_code: Some(city.country_code.parse().expect("GeoNames codes are ISO 3166-1 alpha-2")),
        coverage,
        service_modes,
        brands,
        fault_categories,
        rating,
        prices,
        opening_hours,
        bank_ids: bank_ids.into(),
        turnaround_hours: turnaround_hours.into(),
        key_injection,
        repair_warranty_days,
        active: !chance(rng, 0.02),
        etag: String::new(),
        update_time: None,
    }
}

/// A center's warranty on its repairs and its terms page. Drawn from a
/// generator of its own, seeded by the center's index, so catalogs made before
/// these fields existed keep every other value they had.
fn repair_terms(index: usize, kind: CenterKind, id: &str) -> (u32, String) {
    let mut rng = fastrand::Rng::with_seed(0x7e57_7e57 ^ index as u64);
    let days = match kind {
        CenterKind::Authorized => [90, 180][rng.usize(0..2)],
        CenterKind::BankService => 90,
        CenterKind::ThirdParty => [0, 30, 60, 90][rng.usize(0..4)],
    };
    let published = kind != CenterKind::ThirdParty || chance(&mut rng, 0.7);
    let terms_url = if published { format!("https://repairs.example/centers/{id}/terms") } else { String::new() };
    (days, terms_url)
}

fn service_area_around(center: LatLng, rng: &mut fastrand::Rng) -> ServiceArea {
    let ring_around = |radius_km: f64, rng: &mut fastrand::Rng| {
        let mut ring: Vec<LatLng> = (0..8)
            .map(|step| {
                let bearing = f64::from(step) * std::f64::consts::TAU / 8.0;
                offset(center, radius_km * (0.7 + rng.f64() * 0.3), bearing)
            })
            .collect();
        ring.push(ring[0]);
        ring
    };
    let exterior = ring_around(8.0 + rng.f64() * 17.0, rng);
    let holes = if chance(rng, 0.3) { vec![ring_around(1.5, rng)] } else { Vec::new() };
    ServiceArea::new(exterior.clone(), holes)
        .or_else(|_| ServiceArea::new(exterior, Vec::new()))
        .expect("an octagon around a point is simple")
}

fn sample_hours(city: &City, rng: &mut fastrand::Rng) -> Option<OpeningHours> {
    let time_zone = city.time_zone.parse().ok()?;
    let days = |days: &[Weekday], open: u16, close: u16| -> Vec<WeeklyPeriod> {
        days.iter().map(|&day| WeeklyPeriod { day, open_minute_of_day: open, close_minute_of_day: close }).collect()
    };
    use Weekday::{Fri, Mon, Sat, Sun, Thu, Tue, Wed};
    let periods = match rng.u32(0..100) {
        0..50 => [days(&[Mon, Tue, Wed, Thu, Fri], 540, 1080), days(&[Sat], 600, 960)].concat().into(),
        50..70 => days(&[Mon, Tue, Wed, Thu, Fri, Sat], 510, 1200).into(),
        70..80 => days(&[Mon, Tue, Wed, Thu, Fri, Sat, Sun], 0, 1440).into(),
        80..90 => days(&[Mon, Tue, Wed, Thu, Fri], 540, 1050).into(),
        _ => return None,
    };
    let holidays: &[(i32, u32, u32)] = if city.country_code == "CN" {
        &[(2026, 10, 1), (2026, 10, 2), (2026, 10, 3), (2027, 1, 1), (2027, 2, 6)]
    } else {
        &[(2026, 12, 25), (2027, 1, 1)]
    };
    let exceptions = holidays
        .iter()
        .filter_map(|&(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
        .map(|date| DatedException { date, periods: Box::default() })
        .collect();
    Some(OpeningHours { time_zone, periods, exceptions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_cities_parse_including_quoted_names() {
        assert!(cities().len() > 34_000);
        assert_eq!(cities()[0].name, "Shanghai");
        assert!(cities().iter().any(|city| city.name == "Mianzhu, Deyang, Sichuan"));
    }

    #[test]
    fn generation_is_deterministic_and_population_weighted() {
        let a = generate(2_000, 7);
        let b = generate(2_000, 7);
        assert_eq!(a.centers, b.centers);
        assert_ne!(a.centers, generate(2_000, 8).centers);
        let in_china = a.centers.iter().filter(|c| c.country_code == Some("CN".parse().unwrap())).count();
        let in_iceland = a.centers.iter().filter(|c| c.country_code == Some("IS".parse().unwrap())).count();
        assert!(in_china > 200, "{in_china}");
        assert!(in_iceland < 5, "{in_iceland}");
        for kind in [CenterKind::Authorized, CenterKind::BankService, CenterKind::ThirdParty] {
            assert!(a.centers.iter().filter(|c| c.kind == kind).count() > 200, "{kind:?}");
        }
        assert!(a.centers.iter().any(|c| c.coverage.area.is_some()));
        assert!(a.centers.iter().all(|c| c.location.is_valid()));
    }

    #[test]
    fn quotes_are_whole_local_units_in_iso_4217_currencies() {
        let sample = generate(5_000, 3);
        let mut seen = std::collections::BTreeSet::new();
        for center in &sample.centers {
            for price in &center.prices {
                for money in [price.min(), price.max()] {
                    let code = money.currency_code;
                    assert_eq!(CurrencyCode::parse(code.as_str()), Some(code), "{}", center.id);
                    let minor_per_major = 10_i64.pow(code.minor_unit_digits());
                    assert_eq!(money.amount_minor_units % minor_per_major, 0, "{}: {money}", center.id);
                    assert!(money.amount_minor_units > 0, "{}: {money}", center.id);
                }
                seen.insert(price.currency_code().as_str().to_owned());
            }
        }
        assert!(seen.contains("JPY") && seen.contains("CNY") && seen.contains("USD"), "{seen:?}");
        // A screen in Japan costs thousands of yen, not tens.
        let japan = sample
            .centers
            .iter()
            .find(|c| c.country_code == Some("JP".parse().unwrap()) && !c.prices.is_empty())
            .unwrap();
        assert!(japan.prices[0].min().amount_minor_units >= 1_000, "{:?}", japan.prices[0]);
    }

    #[test]
    fn a_tiled_catalog_repeats_its_tile_far_away_with_ids_of_its_own() {
        let tile = generate_tiled(TILE_CENTERS, 7);
        let grown = generate_tiled(3 * TILE_CENTERS + 5, 7);
        assert_eq!(grown.centers.len(), 3 * TILE_CENTERS + 5);
        assert_eq!(grown.centers[..TILE_CENTERS], tile.centers[..], "the original tile is the same at every size");
        let ids: std::collections::HashSet<&str> = grown.centers.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), grown.centers.len());
        let merchants = tile_locations(50, 7);
        assert!(merchants.iter().all(|&merchant| TILE.contains(merchant)));
        for (index, center) in grown.centers.iter().enumerate().skip(TILE_CENTERS) {
            assert!(center.location.is_valid(), "{}", center.id);
            assert!(center.location.latitude.abs() < 61.0, "{}", center.id);
            // Mail-in coverage, the widest, reaches 500 km.
            let nearest_km = merchants
                .iter()
                .map(|&merchant| repairmatch_core::geodesy::distance_km(merchant, center.location))
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest_km > 500.0,
                "{} of copy {} is {nearest_km} km from a merchant",
                center.id,
                index / TILE_CENTERS
            );
        }
        assert_eq!(tile_shift(1), (-84.0, 0.0));
        assert_eq!(tile_shift(299), (24.0, 348.0), "the last slot");
    }
}
