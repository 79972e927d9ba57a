//! Runs one Find many times over a `datagen` catalog, for profilers
//! (`perf record`, `valgrind --tool=callgrind`): prints how many candidates
//! the index found, how many were eligible, and the time per Find.
//!
//! `cargo run --release -p repairmatch-core --example find_profile -- 1000000 31.2304 121.4737 200`

use std::time::Instant;

use chrono::Utc;
use repairmatch_core::eligibility::MatchContext;
use repairmatch_core::geodesy::LatLng;
use repairmatch_core::model::FaultCategory;
use repairmatch_core::query::WarrantyStatus;
use repairmatch_core::{Catalog, FindQuery, RankingProfile, find};
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
    let outcome = find(&catalog, &query, &profile, now).expect("find");
    eprintln!("candidates {candidates}, eligible {}", outcome.total_size);
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(find(&catalog, &query, &profile, now).expect("find"));
    }
    eprintln!("{:.1} µs per Find", started.elapsed().as_secs_f64() * 1e6 / runs as f64);
}

/// This process's resident set, as the kernel reports it.
fn resident() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|line| line.starts_with("VmRSS")).unwrap_or("VmRSS: ?").to_owned()
}
