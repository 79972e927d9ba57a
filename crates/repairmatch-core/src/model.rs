//! Domain types of the catalog: repair centers, brands and banks.
//!
//! These are validated values: the service converts proto messages into them at
//! the edge, so everything here may assume its invariants (latitudes in range,
//! closed polygons, known time zones, lower-cased match keys).

use std::cell::Cell;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::country::CountryCode;
use crate::geodesy::{LatLng, ServiceArea};
use crate::i18n::Text;

/// What kind of repairer a center is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CenterKind {
    /// Authorized by a manufacturer for some brands.
    Authorized,
    /// Designated service point of one or more banks.
    BankService,
    /// Independent repairer.
    ThirdParty,
}

macro_rules! small_enum_set {
    ($(#[$meta:meta])* $set:ident of $item:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        pub struct $set(u16);

        impl $set {
            /// The empty set.
            pub const EMPTY: Self = Self(0);
            /// Every value.
            pub const ALL: Self = Self(0 $(| (1 << ($item::$variant as u16)))+);

            /// Whether the set has `item`.
            pub fn contains(self, item: $item) -> bool {
                self.0 & (1 << item as u16) != 0
            }
            /// Adds `item`.
            pub fn insert(&mut self, item: $item) {
                self.0 |= 1 << item as u16;
            }
            /// Removes `item`.
            pub fn remove(&mut self, item: $item) {
                self.0 &= !(1 << item as u16);
            }
            /// Items in both sets.
            pub fn intersection(self, other: Self) -> Self {
                Self(self.0 & other.0)
            }
            /// Whether the set is empty.
            pub fn is_empty(self) -> bool {
                self.0 == 0
            }
            /// The items, in declaration order.
            pub fn iter(self) -> impl Iterator<Item = $item> {
                $item::ALL_VALUES.into_iter().filter(move |item| self.contains(*item))
            }
        }

        impl FromIterator<$item> for $set {
            fn from_iter<I: IntoIterator<Item = $item>>(iter: I) -> Self {
                let mut set = Self::EMPTY;
                for item in iter {
                    set.insert(item);
                }
                set
            }
        }

        impl $item {
            /// Every value, in declaration order.
            pub const ALL_VALUES: [$item; [$($item::$variant),+].len()] = [$($item::$variant),+];
        }
    };
}

/// How a terminal reaches a repairer, or the repairer reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceMode {
    /// The merchant carries the terminal in.
    WalkIn,
    /// A technician comes to the merchant.
    Onsite,
    /// Shipped to a depot and back.
    MailIn,
    /// A working unit is shipped ahead; the broken one goes back.
    Exchange,
    /// A phone or online session, for software faults.
    Remote,
}

small_enum_set!(
    /// A set of service modes.
    ServiceModeSet of ServiceMode { WalkIn, Onsite, MailIn, Exchange, Remote }
);

impl ServiceModeSet {
    /// The trip modes, bound by the distance cap.
    pub const TRIP: Self = Self((1 << ServiceMode::WalkIn as u16) | (1 << ServiceMode::Onsite as u16));

    /// Whether every mode in the set is a trip mode.
    pub fn all_trips(self) -> bool {
        self.0 & !Self::TRIP.0 == 0
    }

    /// The set without trip modes.
    pub fn without_trips(self) -> Self {
        Self(self.0 & !Self::TRIP.0)
    }
}

/// What is wrong with the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FaultCategory {
    /// Display.
    Screen,
    /// Keys.
    Keypad,
    /// Receipt printer.
    Printer,
    /// Chip, stripe or contactless reader.
    CardReader,
    /// Battery or power supply.
    BatteryPower,
    /// Network links.
    Connectivity,
    /// Application or firmware.
    Software,
    /// Security tamper alert.
    Tamper,
    /// Anything else.
    Other,
}

small_enum_set!(
    /// A set of fault categories.
    FaultSet of FaultCategory {
        Screen, Keypad, Printer, CardReader, BatteryPower, Connectivity, Software, Tamper, Other
    }
);

impl FaultCategory {
    /// The category's name inside a sentence ("screen", "屏幕").
    pub fn text(self) -> Text {
        Text::new(match self {
            FaultCategory::Screen => "fault-screen",
            FaultCategory::Keypad => "fault-keypad",
            FaultCategory::Printer => "fault-printer",
            FaultCategory::CardReader => "fault-card-reader",
            FaultCategory::BatteryPower => "fault-battery-power",
            FaultCategory::Connectivity => "fault-connectivity",
            FaultCategory::Software => "fault-software",
            FaultCategory::Tamper => "fault-tamper",
            FaultCategory::Other => "fault-other",
        })
    }

    /// The name of `fault` inside a sentence, or of "these" faults when
    /// the request named none.
    pub fn text_of(fault: Option<FaultCategory>) -> Text {
        fault.map_or_else(|| Text::new("fault-unspecified"), FaultCategory::text)
    }
}

impl ServiceMode {
    /// The mode's name inside a sentence ("walk-in", "到店维修").
    pub fn text(self) -> Text {
        Text::new(match self {
            ServiceMode::WalkIn => "mode-walk-in",
            ServiceMode::Onsite => "mode-onsite",
            ServiceMode::MailIn => "mode-mail-in",
            ServiceMode::Exchange => "mode-exchange",
            ServiceMode::Remote => "mode-remote",
        })
    }
}

/// Lower-cases a brand or model name for case-insensitive matching.
pub fn match_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A brand a center repairs, with precomputed match keys.
///
/// A catalog holds millions of brand listings, so a listing is one string:
/// the brand's and its models' names as written (trimmed), then their match
/// keys (lower-cased) in the same order, with where each name ends. A key
/// almost always has its name's length (lower-casing ASCII, or most other
/// letters, keeps it), so the keys share the names' ends; only a listing
/// where one differs keeps ends of its own. As a `String` and a `Vec` of
/// `String`s each for names and for keys, listings took about 270 bytes
/// more a center (of the 1,908 a decoded center took then) and an
/// allocation per name and per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandSupport {
    text: Box<str>,
    /// Where the brand's name ends.
    brand_len: u32,
    /// Where each model's name ends (empty for a brand listed with all its
    /// models: no allocation).
    model_ends: Box<[u32]>,
    /// Where the brand's key and then each model's end, from the keys' start,
    /// when they are not where the names end.
    key_ends: Option<Box<[u32]>>,
    /// Authorized by the brand's maker.
    pub authorized: bool,
}

impl BrandSupport {
    /// A brand entry, listing `models` (none = all of them); names are
    /// trimmed and match keys derived here once.
    pub fn new(brand: &str, authorized: bool, models: &[String]) -> Self {
        let names = || std::iter::once(brand).chain(models.iter().map(String::as_str)).map(str::trim);
        let names_len: usize = names().map(str::len).sum();
        let end_of = |text: &String, from: usize| u32::try_from(text.len() - from).expect("far shorter than 4 GiB");
        // Sized exactly, so that boxing them moves nothing.
        let mut text = String::with_capacity(2 * names_len);
        let mut name_ends = names().map(|name| {
            text.push_str(name);
            end_of(&text, 0)
        });
        let brand_len = name_ends.next().expect("the brand comes first");
        let model_ends: Vec<u32> = name_ends.collect();
        let name_end = |index: usize| if index == 0 { brand_len } else { model_ends[index - 1] };
        let mut key_ends: Option<Vec<u32>> = None;
        for (index, name) in names().enumerate() {
            // As `match_key` lower-cases, without a `String` for each key.
            if name.is_ascii() {
                let at = text.len();
                text.push_str(name);
                text[at..].make_ascii_lowercase();
            } else {
                text.push_str(&match_key(name));
            }
            let end = end_of(&text, names_len);
            match &mut key_ends {
                Some(ends) => ends.push(end),
                None if end != name_end(index) => {
                    let mut ends = Vec::with_capacity(models.len() + 1);
                    ends.extend((0..index).map(name_end));
                    ends.push(end);
                    key_ends = Some(ends);
                }
                None => {}
            }
        }
        Self {
            text: text.into_boxed_str(),
            brand_len,
            model_ends: model_ends.into_boxed_slice(),
            key_ends: key_ends.map(Vec::into_boxed_slice),
            authorized,
        }
    }

    /// The brand's name as written.
    pub fn brand(&self) -> &str {
        &self.text[..self.brand_len as usize]
    }

    /// The lower-cased brand name.
    pub fn brand_key(&self) -> &str {
        let (keys, brand_end, _) = self.keys();
        &keys[..brand_end as usize]
    }

    /// The models as written; none = all models.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        model_slices(&self.text, self.brand_len, &self.model_ends)
    }

    /// Whether the entry covers every model of the brand.
    pub fn all_models(&self) -> bool {
        self.model_ends.is_empty()
    }

    /// Whether the entry lists `model_key` explicitly.
    pub fn lists_model(&self, model_key: &str) -> bool {
        self.model_keys().any(|key| key == model_key)
    }

    /// The model whose key is `model_key`, as the entry writes it.
    pub fn listed_model(&self, model_key: &str) -> Option<&str> {
        self.models().zip(self.model_keys()).find(|(_, key)| *key == model_key).map(|(name, _)| name)
    }

    fn model_keys(&self) -> impl Iterator<Item = &str> {
        let (keys, brand_end, model_ends) = self.keys();
        model_slices(keys, brand_end, model_ends)
    }

    /// The keys' part of the text, where the brand's key ends in it and
    /// where each model's does.
    fn keys(&self) -> (&str, u32, &[u32]) {
        let names_len = self.model_ends.last().copied().unwrap_or(self.brand_len);
        let keys = &self.text[names_len as usize..];
        match &self.key_ends {
            None => (keys, self.brand_len, &self.model_ends),
            Some(ends) => (keys, ends[0], &ends[1..]),
        }
    }
}

/// The models' names (or keys) in `text`, which holds the brand's first.
fn model_slices<'a>(text: &'a str, brand_end: u32, model_ends: &'a [u32]) -> impl Iterator<Item = &'a str> {
    let starts = std::iter::once(brand_end).chain(model_ends.iter().copied());
    starts.zip(model_ends).map(|(start, &end)| &text[start as usize..end as usize])
}

/// Published reviews.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rating {
    /// Average stars, 1 to 5.
    pub average: f64,
    /// Number of reviews.
    pub count: u32,
}

/// An ISO 4217 currency code with its minor unit, stored inline so money is
/// `Copy` and comparing currencies never touches the heap.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CurrencyCode {
    code: [u8; 3],
    /// Decimal places of the minor unit (JPY 0, CNY 2, BHD 3), derived from
    /// the code, so comparing whole values still compares codes.
    minor_unit_digits: u8,
}

impl CurrencyCode {
    /// Parses a code; `None` unless ISO 4217 lists it with a minor unit. That
    /// refuses made-up codes (`ZZZ`), lower case, and the codes that name no
    /// money a repair is paid in (`XXX` no currency, `XTS` testing, `XAU`
    /// gold and the other metals), which have no minor unit.
    pub fn parse(code: &str) -> Option<Self> {
        thread_local! {
            // A center's quotes share a currency, and `iso_currency`'s lookup
            // is a long chain of string comparisons, run for every quote of
            // every center at start.
            static LAST_PARSED: Cell<Option<CurrencyCode>> = const { Cell::new(None) };
        }
        if let Some(last) = LAST_PARSED.get().filter(|last| last.code == code.as_bytes()) {
            return Some(last);
        }
        let currency = iso_currency::Currency::from_code(code)?;
        let minor_unit_digits = u8::try_from(currency.exponent()?).ok()?;
        let parsed = Self { code: code.as_bytes().try_into().ok()?, minor_unit_digits };
        LAST_PARSED.set(Some(parsed));
        Some(parsed)
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.code).expect("validated ASCII")
    }

    /// Decimal places of the minor unit: 100 minor units make one CNY, one
    /// JPY is its own minor unit, 1,000 fils make one BHD.
    pub fn minor_unit_digits(self) -> u32 {
        u32::from(self.minor_unit_digits)
    }
}

impl fmt::Debug for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CurrencyCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Money in integer minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Money {
    /// ISO 4217 code.
    pub currency_code: CurrencyCode,
    /// Minor units.
    pub amount_minor_units: i64,
}

impl Money {
    /// The amount in major units with the currency's own number of
    /// decimals ("7897" JPY, "342.00" CNY, "1.234" BHD), no currency.
    ///
    /// Written digit by digit: every quote in every answer goes through
    /// here, and `format!` spent about a thousand instructions on each.
    pub fn major_units(&self) -> String {
        let digits = self.currency_code.minor_unit_digits() as usize;
        let amount = self.amount_minor_units.unsigned_abs();
        let per_major = 10_u64.pow(digits as u32);
        let mut written = String::with_capacity(24);
        if self.amount_minor_units < 0 {
            written.push('-');
        }
        written.push_str(itoa::Buffer::new().format(amount / per_major));
        if digits > 0 {
            let mut buffer = itoa::Buffer::new();
            let fraction = buffer.format(amount % per_major);
            written.push('.');
            written.extend(std::iter::repeat_n('0', digits - fraction.len()));
            written.push_str(fraction);
        }
        written
    }
}

/// As logs and tools show a price: "342.00 CNY" (answers say it in the
/// caller's language, through [`crate::i18n`]).
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.major_units(), self.currency_code)
    }
}

/// A quote for one fault category: both ends in one currency.
///
/// Held as the currency and two amounts, 24 bytes, rather than two [`Money`]
/// (40 with the fault): a catalog keeps about seven quotes a center twice
/// over (in the record and in the snapshot's flat array), for a million
/// centers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceRange {
    /// The fault it prices.
    pub fault_category: FaultCategory,
    currency_code: CurrencyCode,
    min_minor_units: i64,
    max_minor_units: i64,
}

impl PriceRange {
    /// A quote from `min` to `max`; `None` when they are in two currencies.
    pub fn new(fault_category: FaultCategory, min: Money, max: Money) -> Option<Self> {
        (min.currency_code == max.currency_code).then_some(Self {
            fault_category,
            currency_code: min.currency_code,
            min_minor_units: min.amount_minor_units,
            max_minor_units: max.amount_minor_units,
        })
    }

    /// The currency of both ends.
    pub fn currency_code(&self) -> CurrencyCode {
        self.currency_code
    }

    /// Low end.
    pub fn min(&self) -> Money {
        Money { currency_code: self.currency_code, amount_minor_units: self.min_minor_units }
    }

    /// High end.
    pub fn max(&self) -> Money {
        Money { currency_code: self.currency_code, amount_minor_units: self.max_minor_units }
    }
}

/// A weekly opening period, in minutes after local midnight (6 bytes: a
/// catalog keeps some five of them a center).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyPeriod {
    /// The day it opens.
    pub day: Weekday,
    /// Opening minute, 0..1440.
    pub open_minute_of_day: u16,
    /// Closing minute, 1..=1440; at or before the opening minute it runs past midnight.
    pub close_minute_of_day: u16,
}

/// Replacement hours for one local date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatedException {
    /// The local date.
    pub date: NaiveDate,
    /// Periods that day (their `day` is the date's weekday); empty = closed.
    pub periods: Box<[WeeklyPeriod]>,
}

/// Opening hours in the center's own time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct OpeningHours {
    /// IANA time zone.
    pub time_zone: chrono_tz::Tz,
    /// The regular week.
    pub periods: Box<[WeeklyPeriod]>,
    /// Dated exceptions, sorted by date, at most one per date.
    pub exceptions: Box<[DatedException]>,
}

/// A center's texts that answers show and no rule reads: its address, city,
/// service terms and contact details, in one string. As six boxed strings
/// they were six allocations and 96 bytes of the record, which kept a shared
/// record (with the `Arc`'s counters) out of mimalloc's 384-byte class.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CenterTexts {
    text: Box<str>,
    /// Where each but the last of [`Texts`]' fields ends in `text`.
    ends: [u32; 5],
}

/// The fields of [`CenterTexts`], borrowed: to make one, or to read them all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Texts<'a> {
    /// Street address.
    pub address: &'a str,
    /// City.
    pub city: &'a str,
    /// Its service terms (https URL); empty = none published.
    pub terms_url: &'a str,
    /// Phone.
    pub phone: &'a str,
    /// E-mail.
    pub email: &'a str,
    /// Web page.
    pub url: &'a str,
}

impl From<Texts<'_>> for CenterTexts {
    fn from(texts: Texts<'_>) -> Self {
        let fields = [texts.address, texts.city, texts.terms_url, texts.phone, texts.email, texts.url];
        let mut text = String::with_capacity(fields.iter().map(|field| field.len()).sum());
        let mut ends = [0; 5];
        for (end, field) in ends.iter_mut().zip(fields) {
            text.push_str(field);
            *end = u32::try_from(text.len()).expect("a center's texts fit in 4 GiB");
        }
        text.push_str(texts.url);
        Self { text: text.into_boxed_str(), ends }
    }
}

impl CenterTexts {
    /// Every field.
    pub fn parts(&self) -> Texts<'_> {
        let mut start = 0;
        let [address, city, terms_url, phone, email] = self.ends.map(|end| {
            let field = &self.text[start..end as usize];
            start = end as usize;
            field
        });
        Texts { address, city, terms_url, phone, email, url: &self.text[start..] }
    }
}

impl std::fmt::Debug for CenterTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.parts().fmt(f)
    }
}

/// Where a center serves. With a radius and a polygon, the merchant must be
/// inside both; countries cover their whole territory, for the modes that need
/// no trip (mail-in, exchange, remote).
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Geodesic radius around the center's location, km.
    pub radius_km: Option<f64>,
    /// Service-area polygon: boxed, as few centers have one, and inline it
    /// would make every record 88 bytes larger.
    pub area: Option<Box<ServiceArea>>,
    /// Countries served nationwide, sorted, without repeats.
    pub country_codes: Vec<CountryCode>,
}

impl Coverage {
    /// Whether it has a radius or a polygon: what walk-in and onsite need.
    pub fn has_area(&self) -> bool {
        self.radius_km.is_some() || self.area.is_some()
    }

    /// Whether it serves `country` nationwide.
    pub fn serves_country(&self, country: Option<CountryCode>) -> bool {
        country.is_some_and(|country| self.country_codes.binary_search(&country).is_ok())
    }
}

/// A repair center, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairCenter {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Kind of repairer.
    pub kind: CenterKind,
    /// Owning tenant.
    pub owner: String,
    /// Where it is.
    pub location: LatLng,
    /// Address, city, service terms and contact details.
    pub texts: CenterTexts,
    /// Where it is, when its owner says.
    pub country_code: Option<CountryCode>,
    /// Where it serves.
    pub coverage: Coverage,
    /// How it serves.
    pub service_modes: ServiceModeSet,
    /// Brands it repairs.
    pub brands: Vec<BrandSupport>,
    /// Faults it repairs.
    pub fault_categories: FaultSet,
    /// Reviews; `None` when it has none.
    pub rating: Option<Rating>,
    /// Quotes per fault.
    pub prices: Box<[PriceRange]>,
    /// Opening hours; `None` when unpublished.
    pub opening_hours: Option<OpeningHours>,
    /// Banks it serves as a bank service point.
    pub bank_ids: Box<[String]>,
    /// Turnaround hours per mode where they differ from the profile's defaults.
    pub turnaround_hours: Box<[(ServiceMode, u32)]>,
    /// Can re-key terminals.
    pub key_injection: bool,
    /// Days it guarantees its own repair; 0 = none published.
    pub repair_warranty_days: u32,
    /// Matched at all.
    pub active: bool,
    /// Version for optimistic concurrency.
    pub etag: String,
    /// Last change.
    pub update_time: Option<DateTime<Utc>>,
}

impl RepairCenter {
    /// The entry for a brand, by its lower-cased key.
    pub fn brand_support(&self, brand_key: &str) -> Option<&BrandSupport> {
        self.brands.iter().find(|support| support.brand_key() == brand_key)
    }

    /// Whether it is a bank service point of `bank_id`.
    pub fn serves_bank(&self, bank_id: &str) -> bool {
        self.kind == CenterKind::BankService && self.bank_ids.iter().any(|id| id == bank_id)
    }
}

/// The quote for a fault among `prices`; with no fault, the span of all the
/// quotes in the currency of the first one.
pub fn price_for(prices: &[PriceRange], fault: Option<FaultCategory>) -> Option<(Money, Money)> {
    match fault {
        Some(fault) => {
            prices.iter().find(|price| price.fault_category == fault).map(|price| (price.min(), price.max()))
        }
        None => {
            let currency_code = prices.first()?.currency_code;
            let same_currency = prices.iter().filter(|p| p.currency_code == currency_code);
            let (low, high) = same_currency
                .fold((i64::MAX, i64::MIN), |(low, high), p| (low.min(p.min_minor_units), high.max(p.max_minor_units)));
            let money = |amount_minor_units| Money { currency_code, amount_minor_units };
            Some((money(low), money(high)))
        }
    }
}

/// A terminal maker and its support channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    /// Display name.
    pub name: String,
    /// Warranty length from purchase, months.
    pub warranty_months: u32,
    /// Hotline.
    pub hotline: String,
    /// Online support.
    pub online_support_url: String,
    /// Support e-mail.
    pub support_email: String,
    /// Known models.
    pub models: Vec<String>,
    /// Owning tenant.
    pub owner: String,
}

/// A bank or acquirer that deploys terminals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bank {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Merchant hotline.
    pub hotline: String,
    /// Online merchant support.
    pub online_support_url: String,
    /// Merchant support e-mail.
    pub support_email: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_shared_record_fits_the_allocators_384_byte_class() {
        // A snapshot holds every center in an `Arc`, which adds two counters;
        // mimalloc's classes around it are 320, 384 and 448 bytes, so a few
        // bytes more would cost a million-center catalog 64 MB.
        let shared = std::mem::size_of::<RepairCenter>() + 2 * std::mem::size_of::<usize>();
        assert!(shared <= 384, "{shared} bytes");
        assert_eq!(std::mem::size_of::<WeeklyPeriod>(), 6);
        assert_eq!(std::mem::size_of::<PriceRange>(), 24);
    }

    #[test]
    fn mode_set_operations() {
        let set: ServiceModeSet = [ServiceMode::WalkIn, ServiceMode::Remote].into_iter().collect();
        assert!(set.contains(ServiceMode::WalkIn));
        assert!(!set.contains(ServiceMode::Onsite));
        assert!(!set.all_trips());
        assert_eq!(set.without_trips().iter().collect::<Vec<_>>(), vec![ServiceMode::Remote]);
        assert_eq!(ServiceModeSet::ALL.iter().count(), 5);
        assert!(ServiceModeSet::TRIP.all_trips());
    }

    fn money(code: &str, amount_minor_units: i64) -> Money {
        Money { currency_code: CurrencyCode::parse(code).unwrap(), amount_minor_units }
    }

    #[test]
    fn money_is_written_with_the_currencys_minor_unit() {
        assert_eq!(money("JPY", 7_897).to_string(), "7897 JPY");
        assert_eq!(money("KRW", 45_000).to_string(), "45000 KRW");
        assert_eq!(money("BHD", 1_234).to_string(), "1.234 BHD");
        assert_eq!(money("KWD", 5).to_string(), "0.005 KWD");
        assert_eq!(money("CNY", 34_200).to_string(), "342.00 CNY");
        assert_eq!(money("USD", 7).to_string(), "0.07 USD");
        assert_eq!(money("CLF", 12_345).to_string(), "1.2345 CLF", "four decimals");
        assert_eq!(money("EUR", -150).to_string(), "-1.50 EUR");
        assert_eq!(money("EUR", -50).to_string(), "-0.50 EUR", "the sign survives a zero major part");
    }

    #[test]
    fn major_units_are_what_the_formatter_writes() {
        let formatted = |money: Money| {
            let digits = money.currency_code.minor_unit_digits();
            let sign = if money.amount_minor_units < 0 { "-" } else { "" };
            let amount = money.amount_minor_units.unsigned_abs();
            let per_major = 10_u64.pow(digits);
            match digits {
                0 => format!("{sign}{amount}"),
                _ => format!("{sign}{}.{:0width$}", amount / per_major, amount % per_major, width = digits as usize),
            }
        };
        let edges = [0, 1, 9, 10, 99, 100, 101, 999, 1_000, 1_001, 10_000, 123_456_789, i64::MAX, i64::MIN];
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let random = std::iter::repeat_with(move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> (state % 60)) as i64
        });
        for amount in edges.into_iter().chain(edges.map(|e| e.saturating_neg())).chain(random.take(2_000)) {
            for code in ["JPY", "CNY", "BHD", "CLF"] {
                let money = money(code, amount);
                assert_eq!(money.major_units(), formatted(money), "{amount} {code}");
            }
        }
    }

    #[test]
    fn currency_codes_must_be_iso_4217_with_a_minor_unit() {
        for (code, digits) in [("CNY", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("BHD", 3), ("KWD", 3), ("EUR", 2)] {
            assert_eq!(CurrencyCode::parse(code).map(CurrencyCode::minor_unit_digits), Some(digits), "{code}");
        }
        for refused in ["ZZZ", "ABC", "cny", "Cny", "CN", "CNYY", "", "XXX", "XTS", "XAU", "C\u{0}Y"] {
            assert_eq!(CurrencyCode::parse(refused), None, "{refused:?}");
        }
        assert_eq!(CurrencyCode::parse("BHD").unwrap().as_str(), "BHD");
    }

    #[test]
    fn brand_support_matches_case_insensitively() {
        let support = BrandSupport::new("PAX", true, &["A920 Pro".into()]);
        assert_eq!(support.brand_key(), "pax");
        assert!(support.lists_model(&match_key(" a920 pro ")));
        assert!(!support.all_models());
        assert!(!support.lists_model("a920"), "a prefix of a listed model is not listed");
        assert_eq!((support.brand(), support.models().collect::<Vec<_>>()), ("PAX", vec!["A920 Pro"]), "as written");
        assert_eq!(support.listed_model(&match_key("a920 PRO")), Some("A920 Pro"));
        assert_eq!(support.listed_model("a920"), None);
        let all = BrandSupport::new("PAX", false, &[]);
        assert!(all.all_models());
        assert_eq!(all.models().count(), 0);
    }

    #[test]
    fn center_texts_give_back_each_field_as_made() {
        let made = Texts {
            address: "1 Rue de l'Église",
            city: "",
            terms_url: "https://repairs.example/terms",
            phone: "",
            email: "service@repairs.example",
            url: "",
        };
        assert_eq!(CenterTexts::from(made).parts(), made);
        assert_eq!(CenterTexts::default().parts(), Texts::default());
        let only_some = Texts { city: "Zürich", url: "https://z.example", ..Texts::default() };
        assert_eq!(CenterTexts::from(only_some).parts(), only_some);
    }

    #[test]
    fn match_keys_keep_every_key_whole_whatever_it_holds() {
        let models = vec!["A920\0Pro".to_owned(), String::new(), "Ä".repeat(300), "\u{0}".to_owned()];
        let support = BrandSupport::new("Ve\u{0}rifone", false, &models);
        assert_eq!(support.brand_key(), "ve\u{0}rifone");
        for model in &models {
            assert!(support.lists_model(&match_key(model)), "{model:?}");
        }
        assert!(!support.lists_model("a920"));
        assert!(!support.lists_model("ve\u{0}rifone"), "the brand's key is no model's");
        assert!(!support.all_models());
        assert!(support.models().eq(models.iter().map(String::as_str)), "names kept whole, in order");
        assert!(support.key_ends.is_none(), "keys as long as their names share their ends");
        let greek = BrandSupport::new(" ΣΊΣΥΦΟΣ ", false, &["ΟΔΥΣΣΕΥΣ".into()]);
        assert_eq!(greek.brand_key(), match_key("ΣΊΣΥΦΟΣ"), "a final sigma as str::to_lowercase writes it");
        assert!(greek.lists_model(&match_key("ΟΔΥΣΣΕΥΣ")));
        assert_eq!(greek.brand(), "ΣΊΣΥΦΟΣ", "trimmed");
        assert_eq!(greek.listed_model(&match_key("ΟΔΥΣΣΕΥΣ")), Some("ΟΔΥΣΣΕΥΣ"), "a key not in ASCII");
    }

    #[test]
    fn keys_longer_or_shorter_than_their_names_keep_ends_of_their_own() {
        // Lower-cased, U+0130 grows from 2 bytes to 3, U+023A from 2 to 3,
        // and U+212A (the Kelvin sign) shrinks from 3 to 1.
        let models = ["A920", "ȺX 5", " Move/5000 ", "\u{212A}9"].map(String::from);
        for brand in ["İngenico", "PAX"] {
            let support = BrandSupport::new(brand, true, &models);
            assert!(support.key_ends.is_some(), "{brand}");
            assert_eq!(support.brand(), brand);
            assert_eq!(support.brand_key(), match_key(brand));
            assert!(support.models().eq(models.iter().map(|m| m.trim())), "{brand}");
            for model in &models {
                assert_eq!(support.listed_model(&match_key(model)), Some(model.trim()), "{brand} {model}");
            }
            assert!(!support.lists_model(&match_key(brand)), "the brand's key is no model's");
            assert!(!support.lists_model("ⱥx"), "a prefix of a key is not the key");
            assert_eq!(support.listed_model("k9"), Some("\u{212A}9"));
        }
    }
}
