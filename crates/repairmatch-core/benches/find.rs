//! The matching core over `repairmatch-datagen` catalogs of 100k and 1M
//! centers: index build time, time per Find at population-weighted merchant
//! locations, and the same Finds by a brute-force scan of the whole catalog,
//! in one run.
//!
//! `cargo bench -p repairmatch-core --bench find`; set
//! `REPAIRMATCH_BENCH_SIZES=100000` to run one size only.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use repairmatch_core::eligibility::MatchContext;
use repairmatch_core::geodesy::LatLng;
use repairmatch_core::model::FaultCategory;
use repairmatch_core::query::WarrantyStatus;
use repairmatch_core::ranking::{Scored, score_all};
use repairmatch_core::{Catalog, FindQuery, RankingProfile, find};
use repairmatch_datagen as datagen;

const SEED: u64 = 2026;
const QUERY_COUNT: usize = 1_000;
const BRANDS: [&str; 6] = ["PAX", "Verifone", "Ingenico", "Newland", "Sunmi", "LANDI"];
const FAULTS: [Option<FaultCategory>; 4] =
    [Some(FaultCategory::Screen), None, Some(FaultCategory::Printer), Some(FaultCategory::Software)];

fn sizes() -> Vec<usize> {
    std::env::var("REPAIRMATCH_BENCH_SIZES")
        .ok()
        .map(|list| list.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000])
}

fn queries() -> Vec<FindQuery> {
    datagen::sample_locations(QUERY_COUNT, SEED + 1)
        .into_iter()
        .enumerate()
        .map(|(i, location): (usize, LatLng)| {
            let mut query = FindQuery::new(location, BRANDS[i % BRANDS.len()]);
            query.fault = FAULTS[i % FAULTS.len()];
            query.page_size = Some(10);
            query
        })
        .collect()
}

/// The same answer as `find`'s first page, by evaluating every center.
fn brute_force(catalog: &Catalog, query: &FindQuery, profile: &RankingProfile) -> Vec<Scored> {
    let context = MatchContext::new(query, profile, WarrantyStatus::Unknown);
    let eligible = catalog.slots().filter_map(|slot| context.evaluate_slot(catalog, slot).ok());
    let mut scored = score_all(eligible, profile, catalog);
    let page = 10.min(scored.len());
    if scored.len() > page {
        scored.select_nth_unstable_by(page, |a, b| a.rank_cmp(b, catalog));
        scored.truncate(page);
    }
    scored.sort_unstable_by(|a, b| a.rank_cmp(b, catalog));
    scored
}

fn bench_find(c: &mut Criterion) {
    let profile = RankingProfile::default();
    let queries = queries();
    let now = Utc::now();
    for size in sizes() {
        let sample = datagen::generate(size, SEED);
        let started = Instant::now();
        let catalog = Catalog::build(1, sample.centers.clone(), sample.brands.clone(), sample.banks.clone());
        eprintln!("{size} centers: index build (one run) {:.2?}", started.elapsed());

        // Same answers both ways, and how much work a query really is.
        let mut eligible_total = 0;
        for query in queries.iter().take(50) {
            let indexed = find(&catalog, query, &profile, now).unwrap();
            let scanned = brute_force(&catalog, query, &profile);
            let indexed_ids: Vec<&str> = indexed.matches.iter().map(|m| m.center.id.as_str()).collect();
            let scanned_ids: Vec<&str> =
                scanned.iter().map(|m| catalog.center_at(m.eligible.slot).id.as_str()).collect();
            assert_eq!(indexed_ids, scanned_ids, "index and scan disagree at {:?}", query.location);
            eligible_total += indexed.total_size;
        }
        eprintln!("{size} centers: {:.1} eligible centers per query on average", eligible_total as f64 / 50.0);

        let mut group = c.benchmark_group(format!("catalog_{size}"));
        // Ten samples of a 1M build take minutes; above 100k the one run above stands.
        if size <= 100_000 {
            group.sample_size(10).measurement_time(Duration::from_secs(10));
            group.bench_function(BenchmarkId::new("index_build", size), |b| {
                b.iter_batched(
                    || (sample.centers.clone(), sample.brands.clone(), sample.banks.clone()),
                    |(centers, brands, banks)| Catalog::build(1, centers, brands, banks),
                    BatchSize::PerIteration,
                )
            });
        }
        group.sample_size(50).measurement_time(Duration::from_secs(5));
        let mut next = 0;
        group.bench_function(BenchmarkId::new("find_indexed", size), |b| {
            b.iter(|| {
                next = (next + 1) % queries.len();
                black_box(find(&catalog, &queries[next], &profile, now).unwrap())
            })
        });
        group.sample_size(10).measurement_time(Duration::from_secs(if size >= 1_000_000 { 30 } else { 10 }));
        group.bench_function(BenchmarkId::new("find_brute_force", size), |b| {
            b.iter(|| {
                next = (next + 1) % queries.len();
                black_box(brute_force(&catalog, &queries[next], &profile))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_find);
criterion_main!(benches);
