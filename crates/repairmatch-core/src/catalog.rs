//! An immutable snapshot of the catalog and its geospatial index.
//!
//! The index holds one R-tree per brand: each entry is the 3-D box (see
//! [`crate::geodesy`]) around one center's coverage, so a query touches only
//! centers of the asked brand whose coverage box holds the merchant, never the
//! whole catalog. Snapshots are built whole and swapped in by the service;
//! readers never see a half-applied write.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rstar::{AABB, RTree, RTreeObject};

use crate::geodesy::{Envelope, LatLng, cap_envelope, envelope_intersection};
use crate::model::{Bank, Brand, RepairCenter, match_key};

/// One center's coverage box in a brand's tree.
#[derive(Debug, Clone)]
struct IndexEntry {
    envelope: Envelope,
    slot: u32,
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
        for center in centers {
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
                entries_by_brand.entry(brand_key.to_owned()).or_default().push(IndexEntry { envelope, slot });
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

    /// Active centers of the brand whose coverage box holds `point`: a superset
    /// of those that cover it, for the exact rules to decide.
    pub fn candidates<'a>(
        &'a self,
        brand_key: &str,
        point: LatLng,
    ) -> impl Iterator<Item = &'a Arc<RepairCenter>> + 'a {
        let probe = AABB::from_point(point.unit_vector());
        self.trees_by_brand
            .get(brand_key)
            .into_iter()
            .flat_map(move |tree| tree.locate_in_envelope_intersecting(&probe))
            .map(|entry| &self.centers[entry.slot as usize])
    }
}
