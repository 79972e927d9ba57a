//! An immutable snapshot of the catalog and its geospatial index.
//!
//! The index holds one R-tree per brand: each entry is the 3-D box (see
//! [`crate::geodesy`]) around one center's coverage, so a query touches only
//! centers of the asked brand whose coverage box holds the merchant, never the
//! whole catalog. Snapshots are built whole and swapped in by the service;
//! readers never see a half-applied write.
//!
//! Ranking is bound by memory, not arithmetic: a query reads a hundred or so
//! neighbouring centers. So every center lives in a slot, slots follow a
//! Z-order curve (neighbours sit side by side), and what the rules read of
//! every candidate ([`MatchFacts`] and the quotes) sits in flat arrays apart
//! from the full record, which only the returned page touches.

use std::collections::{BTreeMap, HashMap};
use std::f64::consts::PI;
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use rstar::{AABB, Envelope as _, ParentNode, RStarInsertionStrategy, RTree, RTreeNode, RTreeObject, RTreeParams};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::country::CountryCode;
use crate::eligibility::CandidateFilter;
use crate::geodesy::{Envelope, LatLng, MIN_RADIUS_OF_CURVATURE_KM, ReducedPoint, cap_envelope, envelope_intersection};
use crate::model::{
    Bank, Brand, CenterKind, CurrencyCode, FaultCategory, FaultSet, PriceRange, Rating, RepairCenter, ServiceMode,
    ServiceModeSet, match_key, price_for,
};

/// A center's position in a snapshot.
pub type Slot = u32;

/// What the rules read of every candidate, copied out of the center.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchFacts {
    /// Where it is.
    pub location: LatLng,
    /// The same place prepared for fast distances.
    pub reduced: ReducedPoint,
    /// Coverage radius, km.
    pub radius_km: Option<f64>,
    /// Published reviews.
    pub rating: Option<Rating>,
    /// Turnaround per mode (indexed by `ServiceMode as usize`), `u32::MAX` = none.
    turnaround_hours: [u32; 5],
    /// This center's quotes in the catalog's quote array.
    prices: (u32, u16),
    /// How it serves.
    pub service_modes: ServiceModeSet,
    /// Faults it repairs.
    pub fault_categories: FaultSet,
    /// Kind of repairer.
    pub kind: CenterKind,
    /// Matched at all.
    pub active: bool,
    /// Can re-key terminals.
    pub key_injection: bool,
    /// Has a coverage polygon (kept in the center).
    pub has_area: bool,
    /// Serves whole countries (listed in the center).
    pub national: bool,
    /// Days it guarantees its own repair; 0 = none published.
    pub repair_warranty_days: u16,
}

impl MatchFacts {
    fn of(center: &RepairCenter, prices: Range<usize>) -> Self {
        let mut turnaround_hours = [u32::MAX; 5];
        for &(mode, hours) in &center.turnaround_hours {
            turnaround_hours[mode as usize] = hours;
        }
        Self {
            location: center.location,
            reduced: ReducedPoint::new(center.location),
            radius_km: center.coverage.radius_km,
            rating: center.rating,
            turnaround_hours,
            prices: (prices.start as u32, prices.len() as u16),
            service_modes: center.service_modes,
            fault_categories: center.fault_categories,
            kind: center.kind,
            active: center.active,
            key_injection: center.key_injection,
            has_area: center.coverage.area.is_some(),
            national: !center.coverage.country_codes.is_empty(),
            // Validated to at most 3,650 days.
            repair_warranty_days: u16::try_from(center.repair_warranty_days).unwrap_or(u16::MAX),
        }
    }

    /// The center's own turnaround for a mode, when it publishes one.
    pub fn turnaround_hours_for(&self, mode: ServiceMode) -> Option<u32> {
        Some(self.turnaround_hours[mode as usize]).filter(|hours| *hours != u32::MAX)
    }
}

/// How a center supports the asked brand, as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrandFacts {
    /// Position of the brand in the center's `brands`.
    pub index: u8,
    /// Authorized by the brand's maker.
    pub authorized: bool,
    /// Lists no models: repairs them all.
    pub all_models: bool,
}

impl BrandFacts {
    /// The facts for a brand key, by scanning the center's brands.
    pub fn find(center: &RepairCenter, brand_key: &str) -> Option<Self> {
        let index = center.brands.iter().position(|b| b.brand_key() == brand_key)?;
        Some(Self::listed(center, index as u8))
    }

    /// The facts of the center's brand at `index`.
    fn listed(center: &RepairCenter, index: u8) -> Self {
        let support = &center.brands[usize::from(index)];
        Self { index, authorized: support.authorized, all_models: support.all_models() }
    }
}

/// `items` taken in the order of `positions` (each an index into `items`,
/// at most once), without cloning them.
fn reordered<T>(items: Vec<T>, positions: impl Iterator<Item = u32>) -> Vec<T> {
    let mut items: Vec<Option<T>> = items.into_iter().map(Some).collect();
    positions.map(|position| items[position as usize].take().expect("each position at most once")).collect()
}

/// A center the index found for a brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Where it is in the snapshot.
    pub slot: Slot,
    /// How it supports the brand.
    pub brand: BrandFacts,
}

/// A candidate with what the index knows of it cheaply, so a query over
/// thousands of candidates can order them and bound their scores before it
/// runs the rules on any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HintedCandidate {
    /// The candidate.
    pub candidate: Candidate,
    /// Squared chord to the merchant on the unit sphere, rounded down to
    /// `f32` (a bound, as the rounding never lifts it): orders candidates by
    /// distance, and bounds it (see [`chord_angle`]).
    pub chord_squared_at_least: f32,
    /// Midpoint of its quote for the asked fault, in minor units, rounded to
    /// `f32` (ordering only: the rules read the exact quote); NaN when none.
    pub quote_midpoint: f32,
    /// The quote's currency, when all the center's quotes share one.
    pub quote_currency: Option<CurrencyCode>,
    /// A center of the kind the maker authorizes (brand authorization aside).
    pub authorized_kind: bool,
    /// A bank service point.
    pub bank_service: bool,
}

/// The angle on the unit sphere, radians, between two points whose chord
/// squared is `chord_squared`: times [`MIN_RADIUS_OF_CURVATURE_KM`], a lower
/// bound of their distance.
pub fn chord_angle(chord_squared: f64) -> f64 {
    2.0 * (chord_squared.sqrt() / 2.0).clamp(0.0, 1.0).asin()
}

/// The candidates of one query, as the index found them ([`Catalog::listing`]).
#[derive(Debug)]
pub struct Listing<'a> {
    catalog: &'a Catalog,
    filter: &'a CandidateFilter,
    entries: Vec<&'a IndexEntry>,
}

impl<'a> Listing<'a> {
    /// How many candidates the index found.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No candidate at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The candidates.
    pub fn candidates(&self) -> impl ExactSizeIterator<Item = Candidate> + '_ {
        self.entries.iter().map(|entry| entry.candidate())
    }

    /// The candidates, each with what the index knows of it. The hints are a
    /// random read each (a cache miss, mostly): read in a loop of their own,
    /// after the tree walk, many are in flight at once.
    pub fn hinted(&self) -> impl ExactSizeIterator<Item = HintedCandidate> + '_ {
        self.entries.iter().map(|entry| {
            let (layer, local) = self.catalog.layer(entry.slot);
            entry.hinted(self.filter, &layer.quote_hints[local])
        })
    }
}

/// Room for this many entries is made before the trees are walked: most
/// Finds have fewer, and a vector grown from nothing is copied at each step.
const ENTRIES_CAPACITY: usize = 1_024;

/// Quote midpoints per fault (slot 0 for "no fault given"), as `f32`.
const QUOTE_SLOTS: usize = FaultCategory::ALL_VALUES.len() + 1;

fn quote_slot(fault: Option<FaultCategory>) -> usize {
    fault.map_or(0, |fault| fault as usize + 1)
}

/// A center's quote midpoints per fault and their one currency: what a
/// Find over thousands of candidates orders them by before running the rules.
#[derive(Debug, Clone)]
struct QuoteHints {
    midpoints: [f32; QUOTE_SLOTS],
    currency: Option<CurrencyCode>,
}

impl QuoteHints {
    fn of(center: &RepairCenter) -> Self {
        let mut midpoints = [f32::NAN; QUOTE_SLOTS];
        let faults = std::iter::once(None).chain(FaultCategory::ALL_VALUES.into_iter().map(Some));
        for fault in faults {
            if let Some((low, high)) = price_for(&center.prices, fault) {
                let midpoint = (low.amount_minor_units as f64 + high.amount_minor_units as f64) / 2.0;
                midpoints[quote_slot(fault)] = midpoint as f32;
            }
        }
        let first = center.prices.first().map(PriceRange::currency_code);
        let single = center.prices.iter().all(|price| Some(price.currency_code()) == first);
        Self { midpoints, currency: first.filter(|_| single) }
    }
}

/// A coverage box in the trees, in single precision: entries a third
/// smaller, so a bulk load moves fewer bytes and a walk reads fewer cache
/// lines. Rounding to nearest is monotonic, so a point inside a box stays
/// inside it once both are rounded: no candidate is lost (and the rules
/// decide in double precision).
type EntryEnvelope = AABB<[f32; 3]>;

fn single_precision(point: [f64; 3]) -> [f32; 3] {
    point.map(|coordinate| coordinate as f32)
}

/// Calls `found` with every entry under `node` whose box holds `point`.
/// rstar's `locate_in_envelope_intersecting` walks the same nodes through a
/// generic selection function and a stack of its own; this walk, for a
/// point and this tree only, took half the instructions of a dense city's
/// listing.
fn entries_holding<'a>(node: &'a ParentNode<IndexEntry>, point: &[f32; 3], found: &mut impl FnMut(&'a IndexEntry)) {
    for child in node.children() {
        match child {
            RTreeNode::Leaf(entry) => {
                if entry.envelope.contains_point(point) {
                    found(entry);
                }
            }
            RTreeNode::Parent(parent) => {
                if parent.envelope().contains_point(point) {
                    entries_holding(parent, point, found);
                }
            }
        }
    }
}

fn entry_envelope(envelope: &Envelope) -> EntryEnvelope {
    AABB::from_corners(single_precision(envelope.lower()), single_precision(envelope.upper()))
}

/// One center's coverage box in a brand's tree, with a copy of the facts the
/// [`CandidateFilter`] checks, so rejecting a candidate reads only the tree's
/// own contiguous memory.
///
/// Only integers and floats, no `bool` or enum: a type with a niche makes
/// rstar's bulk load collect each leaf in place, keeping the whole buffer of
/// the partition it was split from (about 1.2 KB an entry, not 0.25).
#[derive(Debug, Clone)]
struct IndexEntry {
    envelope: EntryEnvelope,
    location: [f64; 3],
    /// Published average rounded up to `f32` (a prefilter may let through,
    /// never turn down); NaN when there are no reviews (fails every minimum).
    rating_average_at_least: f32,
    /// Squared chord on the unit sphere beyond which the radius cannot reach,
    /// rounded up to `f32`; infinite for polygon-only coverage.
    max_chord_squared: f32,
    slot: Slot,
    fault_categories: FaultSet,
    service_modes: ServiceModeSet,
    /// [`BrandFacts::index`].
    brand_index: u8,
    /// The `ENTRY_` bits.
    flags: u8,
}

/// [`BrandFacts::authorized`].
const ENTRY_AUTHORIZED: u8 = 1;
/// [`BrandFacts::all_models`].
const ENTRY_ALL_MODELS: u8 = 1 << 1;
/// Also serves whole countries, so a query may find it both by its box and
/// in its countries' lists.
const ENTRY_NATIONAL: u8 = 1 << 2;
/// [`CenterKind::Authorized`].
const ENTRY_AUTHORIZED_KIND: u8 = 1 << 3;
/// [`CenterKind::BankService`].
const ENTRY_BANK_SERVICE: u8 = 1 << 4;

impl IndexEntry {
    /// The entry of a center (of its `facts`) for one brand it lists.
    fn new(envelope: EntryEnvelope, candidate: Candidate, facts: &MatchFacts) -> Self {
        let max_chord_squared = facts.radius_km.map_or(f64::INFINITY, |radius_km| {
            // Geodesic d ≥ MIN_RADIUS_OF_CURVATURE_KM · angle (see geodesy), so
            // an angle beyond this bound is outside the radius for sure.
            let angle = radius_km * (1.0 + 1e-6) / MIN_RADIUS_OF_CURVATURE_KM + 1e-12;
            if angle >= PI { f64::INFINITY } else { (2.0 * (angle / 2.0).sin()).powi(2) }
        });
        let flag = |set: bool, bit: u8| if set { bit } else { 0 };
        Self {
            envelope,
            location: facts.location.unit_vector(),
            rating_average_at_least: facts.rating.filter(|r| r.count > 0).map_or(f32::NAN, |r| f32_at_least(r.average)),
            max_chord_squared: f32_at_least(max_chord_squared),
            slot: candidate.slot,
            fault_categories: facts.fault_categories,
            service_modes: facts.service_modes,
            brand_index: candidate.brand.index,
            flags: flag(candidate.brand.authorized, ENTRY_AUTHORIZED)
                | flag(candidate.brand.all_models, ENTRY_ALL_MODELS)
                | flag(facts.national, ENTRY_NATIONAL)
                | flag(facts.kind == CenterKind::Authorized, ENTRY_AUTHORIZED_KIND)
                | flag(facts.kind == CenterKind::BankService, ENTRY_BANK_SERVICE),
        }
    }

    /// The entry in a country's list: any distance, and only the modes that
    /// need no trip (walk-in and onsite need a radius or polygon); `None` when
    /// it offers none of those.
    fn nationwide(candidate: Candidate, facts: &MatchFacts) -> Option<Self> {
        let service_modes = facts.service_modes.without_trips();
        if service_modes.is_empty() {
            return None;
        }
        let point = AABB::from_point(single_precision(facts.location.unit_vector()));
        Some(Self { max_chord_squared: f32::INFINITY, service_modes, ..Self::new(point, candidate, facts) })
    }

    fn has(&self, bit: u8) -> bool {
        self.flags & bit != 0
    }

    fn candidate(&self) -> Candidate {
        let brand = BrandFacts {
            index: self.brand_index,
            authorized: self.has(ENTRY_AUTHORIZED),
            all_models: self.has(ENTRY_ALL_MODELS),
        };
        Candidate { slot: self.slot, brand }
    }

    /// False only when the rules would turn the center down.
    fn may_match(&self, filter: &CandidateFilter) -> bool {
        filter.fault.is_none_or(|fault| self.fault_categories.contains(fault))
            && !self.service_modes.intersection(filter.wanted_modes).is_empty()
            && filter.min_rating.is_none_or(|min| f64::from(self.rating_average_at_least) >= min)
            && chord_squared(&self.location, &filter.merchant) <= f64::from(self.max_chord_squared)
    }

    fn hinted(&self, filter: &CandidateFilter, quotes: &QuoteHints) -> HintedCandidate {
        HintedCandidate {
            candidate: self.candidate(),
            chord_squared_at_least: f32_at_most(chord_squared(&self.location, &filter.merchant)),
            quote_midpoint: quotes.midpoints[quote_slot(filter.fault)],
            quote_currency: quotes.currency,
            authorized_kind: self.has(ENTRY_AUTHORIZED_KIND),
            bank_service: self.has(ENTRY_BANK_SERVICE),
        }
    }
}

impl RTreeObject for IndexEntry {
    type Envelope = EntryEnvelope;

    fn envelope(&self) -> EntryEnvelope {
        self.envelope
    }
}

/// The index's R-tree nodes: up to `NODE_SIZE` children, not rstar's default 6.
/// The trees are only ever bulk loaded (a snapshot is rebuilt, never
/// inserted into), and a bulk load partitions every entry once per level.
#[derive(Debug)]
struct IndexParams;

impl RTreeParams for IndexParams {
    const MIN_SIZE: usize = NODE_SIZE / 2;
    const MAX_SIZE: usize = NODE_SIZE;
    const REINSERTION_COUNT: usize = NODE_SIZE / 4;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// 16, measured against 6 and 32 (docs/benchmarks.md): against 6, a start
/// takes less CPU and memory, and a Find in a dense city lists its candidates
/// in about two thirds of the time; 32 was no better than 16.
const NODE_SIZE: usize = 16;

/// Interleaved bits of quantized latitude and longitude (a Z-order curve).
fn morton_key(location: LatLng) -> u64 {
    let quantize = |value: f64, span: f64| ((value / span).clamp(0.0, 1.0) * f64::from(u32::MAX)) as u64;
    let (y, x) = (quantize(location.latitude + 90.0, 180.0), quantize(location.longitude + 180.0, 360.0));
    let spread = |mut v: u64| {
        v &= 0xffff_ffff;
        v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
        v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
        v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    };
    spread(x) | (spread(y) << 1)
}

fn chord_squared(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// `value` as the largest `f32` not above it: rounding to nearest could
/// have lifted a bound past the value.
fn f32_at_most(value: f64) -> f32 {
    let rounded = value as f32;
    if f64::from(rounded) > value { rounded.next_down() } else { rounded }
}

/// `value` as the smallest `f32` not below it: rounding to nearest could
/// have lowered a bound past the value. Infinities and NaN stay as they are.
fn f32_at_least(value: f64) -> f32 {
    let rounded = value as f32;
    if f64::from(rounded) < value { rounded.next_up() } else { rounded }
}

/// The box around a center's coverage, or `None` when it covers nowhere.
pub fn coverage_envelope(center: &RepairCenter) -> Option<Envelope> {
    let radius = center.coverage.radius_km.map(|radius_km| cap_envelope(center.location, radius_km));
    let area = center.coverage.area.as_ref().map(|area| area.envelope());
    match (radius, area) {
        (Some(radius), Some(area)) => envelope_intersection(&radius, &area),
        (radius, area) => radius.or(area),
    }
}

/// The quotes of `centers`, in their order, in one array, and each center's
/// place in it set in its `facts` (which hold how many quotes it has).
/// Copied on every core, a run of centers into its own part of the array:
/// in Z-order nearly every record read is a cache miss, so two cores halve
/// the wait.
fn quotes_in_order(centers: &[Arc<RepairCenter>], facts: &mut [MatchFacts]) -> Vec<PriceRange> {
    const RUN: usize = 4_096;
    let mut total = 0;
    for facts in facts.iter_mut() {
        facts.prices.0 = total;
        total += u32::from(facts.prices.1);
    }
    let Some(&filler) = centers.iter().find_map(|center| center.prices.first()) else {
        return Vec::new();
    };
    let mut prices = vec![filler; total as usize];
    let mut rest = prices.as_mut_slice();
    let mut runs = Vec::with_capacity(centers.len().div_ceil(RUN));
    for (centers, facts) in centers.chunks(RUN).zip(facts.chunks(RUN)) {
        let len = facts.iter().map(|facts| usize::from(facts.prices.1)).sum();
        let (run, after) = std::mem::take(&mut rest).split_at_mut(len);
        runs.push((centers, run));
        rest = after;
    }
    runs.into_par_iter().for_each(|(centers, run)| {
        let mut at = 0;
        for center in centers {
            run[at..at + center.prices.len()].copy_from_slice(&center.prices);
            at += center.prices.len();
        }
    });
    prices
}

/// One immutable layer of a snapshot: centers in Z-order with their facts,
/// quotes, id order and per-brand trees. Its slots start at `first_slot`.
#[derive(Debug, Default)]
struct Layer {
    first_slot: Slot,
    centers: Vec<Arc<RepairCenter>>,
    facts: Vec<MatchFacts>,
    quote_hints: Vec<QuoteHints>,
    prices: Vec<PriceRange>,
    /// Local positions, ordered by the center's id.
    by_id: Vec<u32>,
    // Fx hashing, as each Find looks one up: brand keys come from
    // authenticated catalog writers and are few, so flooding is no concern.
    trees_by_brand: FxHashMap<String, RTree<IndexEntry, IndexParams>>,
    /// Centers serving whole countries, by brand and country.
    nationwide_by_brand: FxHashMap<String, FxHashMap<CountryCode, Vec<IndexEntry>>>,
}

impl Layer {
    /// Builds a layer of centers with distinct ids, in id order, on every core.
    fn build(in_id_order: Vec<Arc<RepairCenter>>, first_slot: Slot) -> Self {
        debug_assert!(in_id_order.windows(2).all(|pair| pair[0].id < pair[1].id));
        // What the index needs of each record is read in id order, the order
        // the records lie in memory (a load decodes them in runs, on every
        // core): in Z-order nearly every read of a record is a cache miss, and
        // the build used to read each record that way five times over.
        type Read = (u64, MatchFacts, QuoteHints, Option<EntryEnvelope>);
        let read: Vec<Read> = (in_id_order.par_iter())
            .map(|center| {
                // The quotes' position in the layer's array is set below.
                let facts = MatchFacts::of(center, 0..center.prices.len());
                let envelope = coverage_envelope(center).map(|envelope| entry_envelope(&envelope));
                (morton_key(center.location), facts, QuoteHints::of(center), envelope)
            })
            .collect();
        let mut z_order: Vec<(u64, u32)> =
            (read.par_iter().enumerate()).map(|(rank, (key, ..))| (*key, rank as u32)).collect();
        z_order.par_sort_unstable();
        let mut by_id = vec![0; in_id_order.len()];
        for (local, &(_, rank)) in z_order.iter().enumerate() {
            by_id[rank as usize] = local as u32;
        }
        let in_z_order = || z_order.par_iter().map(|&(_, rank)| &read[rank as usize]);
        let mut facts: Vec<MatchFacts> = in_z_order().map(|(_, facts, ..)| *facts).collect();
        let quote_hints = in_z_order().map(|(_, _, hints, _)| hints.clone()).collect();
        let envelopes: Vec<Option<EntryEnvelope>> = in_z_order().map(|(.., envelope)| *envelope).collect();
        drop(read);
        let centers = reordered(in_id_order, z_order.iter().map(|&(_, rank)| rank));
        let prices = quotes_in_order(&centers, &mut facts);

        // Which active centers list each brand (a brand listed twice is
        // indexed once, with its first listing's facts), read in id order
        // too, then each brand's entries and tree on every core.
        type Listings<'a> = FxHashMap<&'a str, Vec<(u32, BrandFacts)>>;
        let listings_by_brand = (by_id.par_iter())
            .map(|&local| (local, &centers[local as usize]))
            .filter(|(_, center)| center.active)
            .fold(Listings::default, |mut listings, (local, center)| {
                // `BrandFacts` holds a brand's position in a byte: the API allows 50.
                for (index, support) in center.brands.iter().enumerate().take(usize::from(u8::MAX) + 1) {
                    let brand_key = support.brand_key();
                    if center.brands[..index].iter().all(|earlier| earlier.brand_key() != brand_key) {
                        let brand = BrandFacts::listed(center, index as u8);
                        listings.entry(brand_key).or_default().push((local, brand));
                    }
                }
                listings
            })
            // Adjacent runs of centers, joined in order.
            .reduce(Listings::default, |mut earlier, later| {
                for (brand_key, mut listings) in later {
                    earlier.entry(brand_key).or_default().append(&mut listings);
                }
                earlier
            });
        // The largest brands first, so that no long bulk load starts last and
        // runs alone.
        let mut listings_by_brand: Vec<_> = listings_by_brand.into_iter().collect();
        listings_by_brand.sort_unstable_by_key(|(_, listings)| std::cmp::Reverse(listings.len()));
        let built: Vec<_> = listings_by_brand
            .into_par_iter()
            .map(|(brand_key, listings)| {
                let mut entries = Vec::with_capacity(listings.len());
                let mut by_country: FxHashMap<CountryCode, Vec<IndexEntry>> = FxHashMap::default();
                for (local, brand) in listings {
                    let facts = &facts[local as usize];
                    let candidate = Candidate { slot: first_slot + local, brand };
                    if let Some(envelope) = envelopes[local as usize] {
                        entries.push(IndexEntry::new(envelope, candidate, facts));
                    }
                    if facts.national
                        && let Some(nationwide) = IndexEntry::nationwide(candidate, facts)
                    {
                        for country in &centers[local as usize].coverage.country_codes {
                            by_country.entry(*country).or_default().push(nationwide.clone());
                        }
                    }
                }
                (brand_key.to_owned(), RTree::bulk_load_with_params(entries), by_country)
            })
            .collect();
        let mut trees_by_brand = FxHashMap::with_capacity_and_hasher(built.len(), Default::default());
        let mut nationwide_by_brand = FxHashMap::default();
        for (brand_key, tree, by_country) in built {
            if !by_country.is_empty() {
                nationwide_by_brand.insert(brand_key.clone(), by_country);
            }
            if tree.size() > 0 {
                trees_by_brand.insert(brand_key, tree);
            }
        }
        Self { first_slot, centers, facts, quote_hints, prices, by_id, trees_by_brand, nationwide_by_brand }
    }

    fn len(&self) -> usize {
        self.centers.len()
    }

    fn local(&self, id: &str) -> Option<u32> {
        let position = self.by_id.binary_search_by(|&local| self.centers[local as usize].id.as_str().cmp(id)).ok()?;
        Some(self.by_id[position])
    }

    /// Slots in id order, after `after` (exclusive).
    fn slots_by_id_after<'a>(&'a self, after: Option<&str>) -> impl Iterator<Item = Slot> + 'a {
        let start = after
            .map_or(0, |after| self.by_id.partition_point(|&local| self.centers[local as usize].id.as_str() <= after));
        self.by_id[start..].iter().map(|&local| self.first_slot + local)
    }
}

/// The catalog at one version.
///
/// A snapshot is a large *base* layer and a small *delta* layer with the
/// centers written since the base was built; the base slots those writes
/// replaced or deleted are *shadowed*. A write rebuilds only the delta (its
/// cost follows the writes since the last compaction, not the catalog), and
/// folds everything into a new base once the delta passes
/// [`Catalog::compaction_threshold`].
#[derive(Debug, Default)]
pub struct Catalog {
    version: u64,
    base: Arc<Layer>,
    delta: Arc<Layer>,
    /// Fx hashing: a Find over a catalog with writes looks up every candidate.
    shadowed: Arc<FxHashSet<Slot>>,
    brands: HashMap<String, Brand>,
    banks: HashMap<String, Bank>,
}

impl Catalog {
    /// Builds a snapshot and its index. Later centers replace earlier ones with
    /// the same id.
    pub fn build(version: u64, centers: Vec<RepairCenter>, brands: Vec<Brand>, banks: Vec<Bank>) -> Self {
        // Not `collect()`: collected in place, the vector of pointers would keep
        // the centers' own buffer (600 bytes a center) as spare capacity.
        let mut shared = Vec::with_capacity(centers.len());
        shared.extend(centers.into_iter().map(Arc::new));
        Self::from_shared(version, shared, brands, banks)
    }

    /// Builds a snapshot from shared centers (a compaction reuses every
    /// center). Later centers replace earlier ones with the same id.
    pub fn from_shared(version: u64, centers: Vec<Arc<RepairCenter>>, brands: Vec<Brand>, banks: Vec<Bank>) -> Self {
        let mut by_id: Vec<(&str, u32)> =
            centers.iter().enumerate().map(|(position, center)| (center.id.as_str(), position as u32)).collect();
        // The embedded store lists its centers by id: then no sort at all.
        if !by_id.is_sorted() {
            by_id.par_sort_unstable();
        }
        // Of centers sharing an id, the last in `centers`.
        let latest: Vec<u32> = (by_id.iter().enumerate())
            .filter(|(rank, (id, _))| by_id.get(rank + 1).is_none_or(|(next, _)| next != id))
            .map(|(_, &(_, position))| position)
            .collect();
        let base = Layer::build(reordered(centers, latest.into_iter()), 0);
        let delta = Layer { first_slot: base.len() as Slot, ..Layer::default() };
        Self {
            version,
            base: Arc::new(base),
            delta: Arc::new(delta),
            shadowed: Arc::default(),
            brands: brands.into_iter().map(|brand| (match_key(&brand.name), brand)).collect(),
            banks: banks.into_iter().map(|bank| (bank.id.clone(), bank)).collect(),
        }
    }

    /// How many changed centers the delta may hold before a write compacts:
    /// a twentieth of the base, at least 1,000 and at most 10,000.
    pub fn compaction_threshold(base_len: usize) -> usize {
        (base_len / 20).clamp(1_000, 10_000)
    }

    /// A new snapshot with `upserts` added or replacing centers by id and
    /// `deletes` removed. Unchanged centers are shared and only the delta layer
    /// is rebuilt, so the cost follows the changes since the last compaction.
    pub fn apply(
        &self,
        version: u64,
        upserts: Vec<Arc<RepairCenter>>,
        deletes: &[String],
        brands: Vec<Brand>,
        banks: Vec<Bank>,
    ) -> Self {
        let mut delta: BTreeMap<String, Arc<RepairCenter>> =
            self.delta.centers.iter().map(|c| (c.id.clone(), Arc::clone(c))).collect();
        let mut shadowed = (*self.shadowed).clone();
        for id in deletes {
            delta.remove(id);
            if let Some(local) = self.base.local(id) {
                shadowed.insert(local);
            }
        }
        for center in upserts {
            if let Some(local) = self.base.local(&center.id) {
                shadowed.insert(local);
            }
            delta.insert(center.id.clone(), center);
        }
        let mut all_brands: HashMap<String, Brand> = self.brands.clone();
        all_brands.extend(brands.into_iter().map(|brand| (match_key(&brand.name), brand)));
        let mut all_banks: HashMap<String, Bank> = self.banks.clone();
        all_banks.extend(banks.into_iter().map(|bank| (bank.id.clone(), bank)));
        Self {
            version,
            base: Arc::clone(&self.base),
            delta: Arc::new(Layer::build(delta.into_values().collect(), self.base.len() as Slot)),
            shadowed: Arc::new(shadowed),
            brands: all_brands,
            banks: all_banks,
        }
    }

    /// Centers in the delta layer (written since the last compaction), and
    /// base slots they shadow.
    pub fn delta_len(&self) -> usize {
        self.delta.len() + self.shadowed.len()
    }

    /// Whether the delta has grown past [`Catalog::compaction_threshold`].
    pub fn needs_compaction(&self) -> bool {
        self.delta.len() + self.shadowed.len() > Self::compaction_threshold(self.base.len())
    }

    /// The same catalog with everything folded into one base layer: a full
    /// index build, sharing every center.
    pub fn compacted(&self) -> Self {
        let centers = self.slots().map(|slot| Arc::clone(self.center_at(slot))).collect();
        Self::from_shared(
            self.version,
            centers,
            self.brands.values().cloned().collect(),
            self.banks.values().cloned().collect(),
        )
    }

    /// The catalog version this snapshot reflects.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many centers it holds.
    pub fn len(&self) -> usize {
        self.base.len() - self.shadowed.len() + self.delta.len()
    }

    /// Whether it holds no center.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live slot.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        let base = (0..self.base.len() as Slot).filter(|slot| !self.shadowed.contains(slot));
        base.chain(self.delta.first_slot..self.delta.first_slot + self.delta.len() as Slot)
    }

    fn layer(&self, slot: Slot) -> (&Layer, usize) {
        if slot < self.delta.first_slot {
            (&self.base, slot as usize)
        } else {
            (&self.delta, (slot - self.delta.first_slot) as usize)
        }
    }

    /// A center by id.
    pub fn center(&self, id: &str) -> Option<&Arc<RepairCenter>> {
        self.slot(id).map(|slot| self.center_at(slot))
    }

    /// The slot of a center id.
    pub fn slot(&self, id: &str) -> Option<Slot> {
        match self.delta.local(id) {
            Some(local) => Some(self.delta.first_slot + local),
            None => self.base.local(id).filter(|slot| !self.shadowed.contains(slot)),
        }
    }

    /// Centers in id order, starting after `after` (exclusive) when given.
    pub fn centers_by_id<'a>(&'a self, after: Option<&str>) -> impl Iterator<Item = &'a Arc<RepairCenter>> + 'a {
        let mut base = self.base.slots_by_id_after(after).filter(|slot| !self.shadowed.contains(slot)).peekable();
        let mut delta = self.delta.slots_by_id_after(after).peekable();
        // Merge two id-ordered runs; an id is never live in both.
        std::iter::from_fn(move || {
            let next = match (base.peek(), delta.peek()) {
                (Some(&b), Some(&d)) if self.center_at(b).id < self.center_at(d).id => base.next(),
                (Some(_), Some(_)) | (None, Some(_)) => delta.next(),
                (Some(_), None) => base.next(),
                (None, None) => None,
            };
            next.map(|slot| self.center_at(slot))
        })
    }

    /// The center in a slot.
    pub fn center_at(&self, slot: Slot) -> &Arc<RepairCenter> {
        let (layer, local) = self.layer(slot);
        &layer.centers[local]
    }

    /// What the rules read of the center in a slot.
    pub fn facts(&self, slot: Slot) -> &MatchFacts {
        let (layer, local) = self.layer(slot);
        &layer.facts[local]
    }

    /// The quotes of the center in a slot.
    pub fn prices(&self, slot: Slot) -> &[PriceRange] {
        let (layer, local) = self.layer(slot);
        let (start, len) = layer.facts[local].prices;
        &layer.prices[start as usize..start as usize + len as usize]
    }

    /// A brand by name, case-insensitively.
    pub fn brand(&self, name: &str) -> Option<&Brand> {
        self.brands.get(&match_key(name))
    }

    /// Every brand.
    pub fn brands(&self) -> impl Iterator<Item = &Brand> {
        self.brands.values()
    }

    /// A bank by id.
    pub fn bank(&self, id: &str) -> Option<&Bank> {
        self.banks.get(id)
    }

    /// Every bank.
    pub fn banks(&self) -> impl Iterator<Item = &Bank> {
        self.banks.values()
    }

    /// Whether any active center lists the brand, anywhere.
    pub fn lists_brand(&self, brand_key: &str) -> bool {
        let in_base = self.base.trees_by_brand.get(brand_key).is_some_and(|tree| {
            // Stops at the first live entry: shadowed ones are only the writes
            // since the last compaction.
            tree.iter().any(|entry| !self.shadowed.contains(&entry.slot))
        });
        let nationwide_in_base =
            self.base.nationwide_by_brand.get(brand_key).is_some_and(|by_country| {
                by_country.values().flatten().any(|entry| !self.shadowed.contains(&entry.slot))
            });
        in_base
            || nationwide_in_base
            || self.delta.trees_by_brand.contains_key(brand_key)
            || self.delta.nationwide_by_brand.contains_key(brand_key)
    }

    /// Active centers of the brand whose coverage box holds the merchant and
    /// that pass the filter: a superset of the eligible ones, for the rules to
    /// decide.
    pub fn candidates<'a>(
        &'a self,
        brand_key: &str,
        filter: &'a CandidateFilter,
    ) -> impl Iterator<Item = Candidate> + 'a {
        self.entries(brand_key, filter).into_iter().map(IndexEntry::candidate)
    }

    /// [`Catalog::candidates`], listed before anything beside the index is
    /// read: a query that will run the rules on every one needs no hints,
    /// and one that will not knows it from their number.
    pub fn listing<'a>(&'a self, brand_key: &str, filter: &'a CandidateFilter) -> Listing<'a> {
        Listing { catalog: self, filter, entries: self.entries(brand_key, filter) }
    }

    /// The index entries of the query's candidates, in no particular order.
    fn entries<'a>(&'a self, brand_key: &str, filter: &'a CandidateFilter) -> Vec<&'a IndexEntry> {
        let mut entries: Vec<&IndexEntry> = Vec::with_capacity(ENTRIES_CAPACITY);
        let point = single_precision(filter.merchant);
        let is_candidate = |entry: &IndexEntry| {
            entry.may_match(filter) && (self.shadowed.is_empty() || !self.shadowed.contains(&entry.slot))
        };
        for tree in [&self.base, &self.delta].into_iter().filter_map(|layer| layer.trees_by_brand.get(brand_key)) {
            entries_holding(tree.root(), &point, &mut |entry| {
                // A center serving the merchant's country comes from that
                // country's list below, once.
                let listed_by_country =
                    entry.has(ENTRY_NATIONAL) && self.center_at(entry.slot).coverage.serves_country(filter.country);
                if !listed_by_country && is_candidate(entry) {
                    entries.push(entry);
                }
            });
        }
        for layer in [&self.base, &self.delta] {
            let Some(list) =
                layer.nationwide_by_brand.get(brand_key).and_then(|by_country| by_country.get(&filter.country?))
            else {
                continue;
            };
            entries.extend(list.iter().filter(|entry| is_candidate(entry)));
        }
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::center;

    #[test]
    fn bounds_rounded_to_f32_stay_on_their_side_of_the_value() {
        let mut random = fastrand::Rng::with_seed(3);
        for value in (0..100_000).map(|_| random.f64() * 5.0).chain([0.0, 1e-50, 4.0, 0.1, 1.0 / 3.0, 4.65]) {
            let below = f32_at_most(value);
            assert!(f64::from(below) <= value, "{value}");
            assert!(f64::from(below.next_up()) > value, "{value}: the largest such f32");
            let above = f32_at_least(value);
            assert!(f64::from(above) >= value, "{value}");
            assert!(f64::from(above.next_down()) < value, "{value}: the smallest such f32");
        }
        assert_eq!(f32_at_least(f64::INFINITY), f32::INFINITY);
        assert!(f32_at_least(f64::NAN).is_nan());
    }

    #[test]
    fn index_entries_have_no_niche_so_bulk_loads_size_their_leaves() {
        // With a niche, rstar's node enum is the entry's size and its bulk
        // load reuses (and keeps) each partition's whole buffer for a leaf.
        assert!(size_of::<Option<IndexEntry>>() > size_of::<IndexEntry>(), "no niche");
        assert!(size_of::<rstar::RTreeNode<IndexEntry>>() > size_of::<IndexEntry>());
        // The rating and the radius's chord in single precision: 80 bytes a
        // node in the tree, not 88.
        assert_eq!(size_of::<rstar::RTreeNode<IndexEntry>>(), 80);
    }

    #[test]
    fn later_records_replace_earlier_ones_with_the_same_id() {
        let mut newer = center("a", 40.0);
        newer.name = "newer".into();
        let catalog = Catalog::build(1, vec![center("a", 1.0), center("b", 2.0), newer], vec![], vec![]);
        assert_eq!(catalog.len(), 2);
        assert_eq!(catalog.center("a").unwrap().name, "newer");
        let slot = catalog.slot("a").unwrap();
        assert_eq!(catalog.facts(slot).location, catalog.center_at(slot).location);
        assert_eq!(catalog.prices(slot), &catalog.center_at(slot).prices[..]);
        assert_eq!(catalog.slot("nobody"), None);
    }

    #[test]
    fn changes_share_unchanged_centers_and_list_in_id_order() {
        let catalog = Catalog::build(1, vec![center("b", 1.0), center("a", 2.0), center("c", 3.0)], vec![], vec![]);
        let mut moved = center("b", 9.0);
        moved.name = "moved".into();
        let upserts = vec![Arc::new(moved), Arc::new(center("d", 4.0))];
        let next = catalog.apply(2, upserts, &["c".to_owned()], vec![], vec![]);
        assert_eq!(next.version(), 2);
        let ids: Vec<&str> = next.centers_by_id(None).map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "d"]);
        let after_a: Vec<&str> = next.centers_by_id(Some("a")).map(|c| c.id.as_str()).collect();
        assert_eq!(after_a, ["b", "d"]);
        assert_eq!(next.center("b").unwrap().name, "moved");
        assert!(Arc::ptr_eq(catalog.center("a").unwrap(), next.center("a").unwrap()), "unchanged centers are shared");
        assert_eq!(catalog.len(), 3, "the old snapshot is untouched");
        assert_eq!(next.slots().count(), 3);
    }

    #[test]
    fn a_brand_is_listed_while_a_live_center_lists_it() {
        let catalog = Catalog::build(1, vec![center("a", 1.0)], vec![], vec![]);
        assert!(catalog.lists_brand("pax"));
        assert!(!catalog.lists_brand("verifone"));
        let deleted = catalog.apply(2, vec![], &["a".to_owned()], vec![], vec![]);
        assert!(!deleted.lists_brand("pax"), "its only center is gone");
        let back = deleted.apply(3, vec![Arc::new(center("b", 2.0))], &[], vec![], vec![]);
        assert!(back.lists_brand("pax"));
    }

    #[test]
    fn writes_past_the_threshold_compact_into_a_new_base() {
        let centers: Vec<_> = (0..50).map(|i| center(&format!("c{i:02}"), f64::from(i % 10))).collect();
        let mut catalog = Catalog::build(1, centers, vec![], vec![]);
        let threshold = Catalog::compaction_threshold(50);
        let mut compactions = 0;
        for round in 0..=threshold / 10 {
            let upserts = (0..10).map(|i| Arc::new(center(&format!("w{round:04}-{i}"), 1.0))).collect();
            catalog = catalog.apply(2 + round as u64, upserts, &["c00".to_owned()], vec![], vec![]);
            assert!(catalog.delta_len() <= threshold + 10, "a write never lets the delta run far past the threshold");
            // As the service's writer does, in the background.
            if catalog.needs_compaction() {
                let version = catalog.version();
                catalog = catalog.compacted();
                assert_eq!((catalog.version(), catalog.delta_len()), (version, 0));
                compactions += 1;
            }
        }
        assert_eq!(compactions, 1);
        assert!(catalog.delta.len() < threshold, "compacted: the delta restarted");
        assert_eq!(catalog.len(), 49 + (threshold / 10 + 1) * 10);
        assert!(catalog.center("c00").is_none() && catalog.center("c01").is_some());
        let ids: Vec<&str> = catalog.centers_by_id(None).map(|c| c.id.as_str()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "id order across layers");
        assert_eq!(ids.len(), catalog.len());
    }
}
