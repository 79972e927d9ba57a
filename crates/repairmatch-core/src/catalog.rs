//! An immutable snapshot of the catalog and its geospatial index.
//!
//! The index holds one R-tree per brand: each entry is the 3-D box (see
//! [`crate::geodesy`]) around one center's coverage, so a query touches only
//! centers of the asked brand whose coverage box holds the merchant, never the
//! whole catalog. Snapshots are built whole and swapped in by the service;
//! readers never see a half-applied write.

use std::collections::{HashMap, HashSet};
use std::f64::consts::PI;
use std::sync::Arc;

use rstar::{AABB, RTree, RTreeObject};

use crate::eligibility::CandidateFilter;
use crate::geodesy::{Envelope, LatLng, MIN_RADIUS_OF_CURVATURE_KM, cap_envelope, envelope_intersection};
use crate::model::{Bank, Brand, FaultSet, RepairCenter, ServiceModeSet, match_key};

/// One center's coverage box in a brand's tree, with a copy of the facts the
/// [`CandidateFilter`] checks, so rejecting a candidate reads only the tree's
/// own contiguous memory, not the center.
#[derive(Debug, Clone)]
struct IndexEntry {
    envelope: Envelope,
    slot: u32,
    fault_categories: FaultSet,
    service_modes: ServiceModeSet,
    /// Published average, NaN when there are no reviews (fails every minimum).
    rating_average: f64,
    location: [f64; 3],
    /// Squared chord on the unit sphere beyond which the radius cannot reach;
    /// infinite for polygon-only coverage.
    max_chord_squared: f64,
}

impl IndexEntry {
    fn new(envelope: Envelope, slot: u32, center: &RepairCenter) -> Self {
        let max_chord_squared = center.coverage.radius_km.map_or(f64::INFINITY, |radius_km| {
            // Geodesic d ≥ MIN_RADIUS_OF_CURVATURE_KM · angle (see geodesy), so
            // an angle beyond this bound is outside the radius for sure.
            let angle = radius_km * (1.0 + 1e-6) / MIN_RADIUS_OF_CURVATURE_KM + 1e-12;
            if angle >= PI { f64::INFINITY } else { (2.0 * (angle / 2.0).sin()).powi(2) }
        });
        Self {
            envelope,
            slot,
            fault_categories: center.fault_categories,
            service_modes: center.service_modes,
            rating_average: center.rating.filter(|r| r.count > 0).map_or(f64::NAN, |r| r.average),
            location: center.location.unit_vector(),
            max_chord_squared,
        }
    }

    /// False only when the rules would turn the center down.
    fn may_match(&self, filter: &CandidateFilter) -> bool {
        filter.fault.is_none_or(|fault| self.fault_categories.contains(fault))
            && !self.service_modes.intersection(filter.wanted_modes).is_empty()
            && filter.min_rating.is_none_or(|min| self.rating_average >= min)
            && chord_squared(&self.location, &filter.merchant) <= self.max_chord_squared
    }
}

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

impl RTreeObject for IndexEntry {
    type Envelope = Envelope;

    fn envelope(&self) -> Envelope {
        self.envelope
    }
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

/// The catalog at one version.
#[derive(Debug, Default)]
pub struct Catalog {
    version: u64,
    centers: Vec<Arc<RepairCenter>>,
    slot_by_id: HashMap<String, u32>,
    brands: HashMap<String, Brand>,
    banks: HashMap<String, Bank>,
    trees_by_brand: HashMap<String, RTree<IndexEntry>>,
}

impl Catalog {
    /// Builds a snapshot and its index. Later centers replace earlier ones with
    /// the same id.
    pub fn build(version: u64, centers: Vec<RepairCenter>, brands: Vec<Brand>, banks: Vec<Bank>) -> Self {
        let mut slot_by_id = HashMap::with_capacity(centers.len());
        let mut stored: Vec<Arc<RepairCenter>> = Vec::with_capacity(centers.len());
        let mut centers = centers;
        centers.sort_by_cached_key(|center| morton_key(center.location));
        // A deep copy in space-filling-curve order puts the centers one query
        // touches (neighbours) next to each other in memory, inner
        // allocations included: queries are bound by cache misses, not arithmetic.
        for center in centers.iter().map(RepairCenter::clone) {
            match slot_by_id.get(&center.id) {
                Some(&slot) => stored[slot as usize] = Arc::new(center),
                None => {
                    let slot = u32::try_from(stored.len()).expect("fewer than 4 billion centers");
                    slot_by_id.insert(center.id.clone(), slot);
                    stored.push(Arc::new(center));
                }
            }
        }
        let mut entries_by_brand: HashMap<String, Vec<IndexEntry>> = HashMap::new();
        for (slot, center) in stored.iter().enumerate() {
            if !center.active {
                continue;
            }
            let Some(envelope) = coverage_envelope(center) else {
                continue;
            };
            let slot = slot as u32;
            let brand_keys: HashSet<&str> = center.brands.iter().map(|b| b.brand_key()).collect();
            for brand_key in brand_keys {
                entries_by_brand.entry(brand_key.to_owned()).or_default().push(IndexEntry::new(envelope, slot, center));
            }
        }
        let trees_by_brand =
            entries_by_brand.into_iter().map(|(brand, entries)| (brand, RTree::bulk_load(entries))).collect();
        Self {
            version,
            centers: stored,
            slot_by_id,
            brands: brands.into_iter().map(|brand| (match_key(&brand.name), brand)).collect(),
            banks: banks.into_iter().map(|bank| (bank.id.clone(), bank)).collect(),
            trees_by_brand,
        }
    }

    /// The catalog version this snapshot reflects.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many centers it holds.
    pub fn len(&self) -> usize {
        self.centers.len()
    }

    /// Whether it holds no center.
    pub fn is_empty(&self) -> bool {
        self.centers.is_empty()
    }

    /// Every center, in no particular order.
    pub fn centers(&self) -> &[Arc<RepairCenter>] {
        &self.centers
    }

    /// A center by id.
    pub fn center(&self, id: &str) -> Option<&Arc<RepairCenter>> {
        self.slot_by_id.get(id).map(|&slot| &self.centers[slot as usize])
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

    /// Active centers of the brand whose coverage box holds the merchant and
    /// that pass the filter: a superset of the eligible ones, for the rules to
    /// decide.
    pub fn candidates<'a>(
        &'a self,
        brand_key: &str,
        filter: &'a CandidateFilter,
    ) -> impl Iterator<Item = &'a Arc<RepairCenter>> + 'a {
        let probe = AABB::from_point(filter.merchant);
        self.trees_by_brand
            .get(brand_key)
            .into_iter()
            .flat_map(move |tree| tree.locate_in_envelope_intersecting(&probe))
            .filter(|entry| entry.may_match(filter))
            .map(|entry| &self.centers[entry.slot as usize])
    }
}
