//! Runs one Find many times over a `datagen` catalog, for profilers
//! (`perf record`, `valgrind --tool=callgrind`): prints how many candidates
//! the index found, how many were eligible, and the time per Find.
//!
//! `cargo run --release -p repairmatch-core --example find_profile -- 1000000 31.2304 121.4737 200`
//!
//! Each Find is timed alternately with one that runs the rules on every
//! candidate; `FIND_ONLY=1` leaves those out, for a profile of Find alone.

use std::time::Instant;

use chrono::Utc;
use repairmatch_core::eligibility::MatchContext;
use repairmatch_core::find::find_with_exact_limit;
use repairmatch_core::geodesy::LatLng;
use repairmatch_core::model::FaultCategory;
use repairmatch_core::query::WarrantyStatus;
use repairmatch_core::{Catalog, FindQuery, RankingProfile};
use repairmatch_datagen as datagen;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let size: usize = arg(1, "100000").parse().expect("size");
    let location = LatLng::new(arg(2, "31.2304").parse().expect("lat"), arg(3, "121.4737").parse().expect("lng"));
    let runs: usize = arg(4, "200").parse().expect("runs");
    let sample = datagen::generate(size, 7);
    let started = Instant::now();
    let catalog = Catalog::build(1, sample.centers, sample.brands, sample.banks);
    eprintln!("index build {:.2?}, resident {}", started.elapsed(), resident());
    let mut query = FindQuery::new(location, "PAX");
    query.fault = Some(FaultCategory::Screen);
    query.page_size = Some(10);
    let profile = RankingProfile::default();
    let context = MatchContext::new(&query, &profile, WarrantyStatus::Unknown);
    let filter = context.candidate_filter();
    let candidates = catalog.candidates(&context.brand_key, &filter).count();
    let now = Utc::now();
    // REPAIRMATCH_EXACT_LIMIT lowers the exact-total limit, to run the pruned
    // ranking on a small catalog.
    let limit = std::env::var("REPAIRMATCH_EXACT_LIMIT").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let find = |query: &FindQuery| find_with_exact_limit(&catalog, query, &profile, now, limit);
    let outcome = find(&query).expect("find");
    eprintln!("candidates {candidates}, eligible {}", outcome.total_size);
    if std::env::var_os("PRUNING_REACH").is_some() {
        // How far a nearest-first visit would go before no farther center
        // could beat the page's last score (every other factor at its best).
        let weights = profile.weights.normalized().as_factor_array();
        let last = outcome.matches.last().map_or(0.0, |m| m.scored.score);
        let mut distances: Vec<f64> = catalog
            .candidates(&context.brand_key, &filter)
            .map(|c| repairmatch_core::geodesy::distance_km(location, catalog.facts(c.slot).location))
            .collect();
        distances.sort_by(f64::total_cmp);
        let reach = distances
            .iter()
            .position(|d| weights[0] * profile.distance_decay.apply(*d) + (1.0 - weights[0]) < last)
            .unwrap_or(distances.len());
        eprintln!("page's last score {last:.3}; a nearest-first visit stops after {reach} candidates");
    }
    // Alternating, so both see the same machine. FIND_ONLY leaves out the
    // runs of every candidate, for a profile of the Find alone.
    let find_only = std::env::var_os("FIND_ONLY").is_some();
    let (mut limited, mut exact) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(find(&query).expect("find"));
        limited += started.elapsed();
        if find_only {
            continue;
        }
        let started = Instant::now();
        std::hint::black_box(find_with_exact_limit(&catalog, &query, &profile, now, usize::MAX).expect("find"));
        exact += started.elapsed();
    }
    let per_find = |total: std::time::Duration| total.as_secs_f64() * 1e6 / runs as f64;
    eprintln!("{:.1} µs per Find ({:.1} µs with every candidate run)", per_find(limited), per_find(exact));
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(catalog.candidates(&context.brand_key, &filter).count());
    }
    eprintln!("{:.1} µs of it finding the candidates", started.elapsed().as_secs_f64() * 1e6 / runs as f64);
}

/// This process's resident set, as the kernel reports it.
fn resident() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|line| line.starts_with("VmRSS")).unwrap_or("VmRSS: ?").to_owned()
}
