//! `repairmatch explain`: the ranking as a table, every factor's raw value,
//! normalized value, weight and contribution, and how the top N move between
//! two configs or two profiles. Runs on the embedded store with no server
//! (through the same Find the server answers with), or asks a running
//! server. Rendering works on the response message, so both modes print alike.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use repairmatch_core::Catalog;
use repairmatch_proto::v1 as pb;
use repairmatch_proto::v1::repair_match_service_client::RepairMatchServiceClient;

use super::{ExplainArgs, load_config};
use crate::app::{LiveConfig, queries};
use crate::auth::{Caller, Role, Tenant};
use crate::config::Config;
use crate::convert;
use crate::store::{CatalogStore, EmbeddedStore};

/// `repairmatch explain`: prints [`report`].
pub fn run(args: &ExplainArgs) -> anyhow::Result<()> {
    print!("{}", report(args)?);
    Ok(())
}

/// The table, and with `--compare` or `--compare-profile` the second table
/// and what moved.
pub fn report(args: &ExplainArgs) -> anyhow::Result<String> {
    let mut request = request_of(args)?;
    if request.page_size == 0 {
        request.page_size = args.top;
    }
    let compared_request = args.compare_profile.as_ref().map(|profile| {
        let mut other = request.clone();
        other.ranking_profile.clone_from(profile);
        other
    });
    let (label, ranked, other) = match &args.server {
        Some(server) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let ranked = runtime.block_on(rank_on_server(server, args.key.as_deref(), request))?;
            let other = match compared_request {
                Some(other) => {
                    Some((server.clone(), runtime.block_on(rank_on_server(server, args.key.as_deref(), other))?))
                }
                None => None,
            };
            (server.clone(), ranked, other)
        }
        None => {
            let config = load_config(args.config.as_slice())?;
            let catalog = load_catalog(&config)?;
            let label =
                args.config.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
            let live = LiveConfig::new(1, config);
            let ranked = rank_locally(&live, &catalog, &request)?;
            let other = match (&args.compare, compared_request) {
                (Some(other_path), _) => {
                    let other = LiveConfig::new(1, load_config(&[other_path])?);
                    Some((other_path.display().to_string(), rank_locally(&other, &catalog, &request)?))
                }
                (None, Some(other_request)) => Some((label.clone(), rank_locally(&live, &catalog, &other_request)?)),
                (None, None) => None,
            };
            (label, ranked, other)
        }
    };
    let mut out = render_table(&label, &ranked);
    if let Some((other_label, other_ranked)) = other {
        out.push('\n');
        out.push_str(&render_table(&other_label, &other_ranked));
        out.push('\n');
        out.push_str(&render_comparison(&label, &ranked, &other_label, &other_ranked));
    }
    Ok(out)
}

fn request_of(args: &ExplainArgs) -> anyhow::Result<pb::FindRepairCenterRequest> {
    if let Some(path) = &args.request {
        return read_request(path);
    }
    let (Some(latitude), Some(longitude), Some(brand)) = (args.lat, args.lon, &args.brand) else {
        anyhow::bail!("give --request FILE, or --lat, --lon and --brand");
    };
    let fault = match &args.fault {
        None => 0,
        Some(name) => pb::FaultCategory::from_str_name(&format!("FAULT_CATEGORY_{}", name.to_uppercase()))
            .with_context(|| format!("unknown fault {name:?}"))? as i32,
    };
    Ok(pb::FindRepairCenterRequest {
        location: Some(pb::LatLng { latitude, longitude }),
        terminal: Some(pb::Terminal {
            brand: brand.clone(),
            model: args.model.clone().unwrap_or_default(),
            ..Default::default()
        }),
        fault: Some(pb::Fault { category: fault, description: String::new() }),
        ranking_profile: args.profile.clone().unwrap_or_default(),
        page_size: args.top,
        ..Default::default()
    })
}

/// Asks a running server, as the tenant whose key is given.
async fn rank_on_server(
    server: &str,
    key: Option<&str>,
    request: pb::FindRepairCenterRequest,
) -> anyhow::Result<pb::FindRepairCenterResponse> {
    let mut client =
        RepairMatchServiceClient::connect(server.to_owned()).await.with_context(|| format!("cannot reach {server}"))?;
    let mut call = tonic::Request::new(request);
    if let Some(key) = key {
        call.metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().context("the key is not a valid header value")?);
    }
    let response = client.find_repair_center(call).await.map_err(|status| {
        use tonic_types::StatusExt;
        match status.get_details_bad_request().filter(|bad| !bad.field_violations.is_empty()) {
            None => anyhow::anyhow!("{}: {}", status.code(), status.message()),
            Some(bad) => anyhow::anyhow!("{}: {}", status.code(), convert::describe(&bad.field_violations)),
        }
    })?;
    Ok(response.into_inner())
}

/// Ranks `request` locally, through the same Find the server answers with,
/// as an operator: explain is an ops tool with the store at hand.
pub fn rank_locally(
    live: &LiveConfig,
    catalog: &Catalog,
    request: &pb::FindRepairCenterRequest,
) -> anyhow::Result<pb::FindRepairCenterResponse> {
    let operator = Caller::Tenant(Arc::new(Tenant {
        name: "repairmatch-explain".into(),
        role: Role::Ops,
        brand_keys: vec![],
        profiles: vec![],
        default_profile: None,
    }));
    queries::find(live, catalog, &operator, request, Utc::now()).map_err(|error| match error {
        crate::error::ServiceError::InvalidArgument(violations) => {
            anyhow::anyhow!(
                "the request is invalid: {}",
                convert::describe(&violations.iter().map(|v| v.to_field_violation()).collect::<Vec<_>>())
            )
        }
        other => anyhow::anyhow!(other),
    })
}

/// Loads the catalog from the store a config names, without creating one.
pub fn load_catalog(config: &Config) -> anyhow::Result<Catalog> {
    let path = &config.store.path;
    anyhow::ensure!(path.exists(), "no store at {} (start the service once, or import a catalog)", path.display());
    let store = EmbeddedStore::open(path).with_context(|| {
        format!("cannot open the store {} (a running server holds it: ask it with --server)", path.display())
    })?;
    let stored = store.load()?;
    Ok(Catalog::from_shared(stored.version, stored.centers, stored.brands, stored.banks))
}

fn center_of(m: &pb::RepairCenterMatch) -> (&str, &str) {
    m.center.as_ref().map_or(("?", "?"), |c| (c.id.as_str(), c.name.as_str()))
}

/// The ranked table.
pub fn render_table(label: &str, response: &pb::FindRepairCenterResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{label}: profile {:?}, {} eligible, catalog version {}",
        response.ranking_profile, response.total_size, response.catalog_version
    );
    let factors: Vec<&str> = response
        .matches
        .first()
        .map(|m| m.score_breakdown.iter().map(|c| c.factor.as_str()).collect())
        .unwrap_or_default();
    // Ids longer than the sample's (rc-0000001) widen the column, not shift the row.
    let id_width = response.matches.iter().map(|m| center_of(m).0.chars().count()).max().unwrap_or(0).max(14);
    let _ = write!(out, "{:>4}  {:<id_width$} {:>4} {:>6} {:>8}", "rank", "id", "tier", "score", "km");
    for factor in &factors {
        let _ = write!(out, "  {:<28}", format!("{factor} raw→norm×w=contrib"));
    }
    let _ = writeln!(out, "  name");
    for m in &response.matches {
        let (id, name) = center_of(m);
        let _ = write!(out, "{:>4}  {id:<id_width$} {:>4} {:>6.3} {:>8.2}", m.rank, m.tier, m.score, m.distance_km);
        for c in &m.score_breakdown {
            let cell = format!("{:.4}→{:.3}×{:.2}={:.3}", c.raw_value, c.normalized_value, c.weight, c.contribution);
            let _ = write!(out, "  {cell:<28}");
        }
        let _ = writeln!(out, "  {name}");
    }
    out
}

/// How the top N move from `before` to `after`: rank moves, entries in and out.
pub fn render_comparison(
    before_label: &str,
    before: &pb::FindRepairCenterResponse,
    after_label: &str,
    after: &pb::FindRepairCenterResponse,
) -> String {
    let rank_in = |response: &pb::FindRepairCenterResponse, id: &str| {
        response.matches.iter().find(|m| center_of(m).0 == id).map(|m| (m.rank, m.score))
    };
    let mut out = String::new();
    let _ = writeln!(out, "A = {before_label} (profile {:?})", before.ranking_profile);
    let _ = writeln!(out, "B = {after_label} (profile {:?})", after.ranking_profile);
    let _ = writeln!(out, "{:>4} {:>4}  {:<6} {:<14} {:>7} {:>7}  name", "A", "B", "move", "id", "score A", "score B");
    let mut rows: Vec<(u32, String)> = Vec::new();
    for m in &after.matches {
        let (id, name) = center_of(m);
        let row = match rank_in(before, id) {
            Some((rank_a, score_a)) => {
                let moved = i64::from(rank_a) - i64::from(m.rank);
                let arrow = match moved {
                    0 => "=".to_owned(),
                    up if up > 0 => format!("↑{up}"),
                    down => format!("↓{}", -down),
                };
                format!("{rank_a:>4} {:>4}  {arrow:<6} {id:<14} {score_a:>7.3} {:>7.3}  {name}", m.rank, m.score)
            }
            None => format!("{:>4} {:>4}  {:<6} {id:<14} {:>7} {:>7.3}  {name}", "-", m.rank, "in", "", m.score),
        };
        rows.push((m.rank, row));
    }
    for m in &before.matches {
        let (id, name) = center_of(m);
        if rank_in(after, id).is_none() {
            rows.push((
                u32::MAX,
                format!("{:>4} {:>4}  {:<6} {id:<14} {:>7.3} {:>7}  {name}", m.rank, "-", "out", m.score, ""),
            ));
        }
    }
    rows.sort_by_key(|(rank, _)| *rank);
    for (_, row) in rows {
        let _ = writeln!(out, "{row}");
    }
    out
}

/// Reads a request from a proto3 JSON file.
pub fn read_request(path: &Path) -> anyhow::Result<pb::FindRepairCenterRequest> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a FindRepairCenterRequest in proto3 JSON", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(ids: &[(&str, f64)]) -> pb::FindRepairCenterResponse {
        pb::FindRepairCenterResponse {
            matches: ids
                .iter()
                .enumerate()
                .map(|(i, (id, score))| pb::RepairCenterMatch {
                    center: Some(pb::RepairCenter {
                        id: (*id).into(),
                        name: format!("Center {id}"),
                        ..Default::default()
                    }),
                    rank: i as u32 + 1,
                    score: *score,
                    score_breakdown: vec![pb::ScoreComponent {
                        factor: "distance".into(),
                        raw_value: 1.5,
                        normalized_value: 0.9,
                        weight: 1.0,
                        contribution: 0.9,
                    }],
                    ..Default::default()
                })
                .collect(),
            ranking_profile: "default".into(),
            ..Default::default()
        }
    }

    #[test]
    fn local_ranking_follows_each_configs_weights() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.store.path = dir.path().join("catalog.redb");
        let sample = repairmatch_datagen::generate(3_000, 4);
        let write = crate::store::WriteBatch::load(sample.centers, sample.brands, sample.banks);
        EmbeddedStore::open(&config.store.path).unwrap().apply(write).unwrap();
        let catalog = load_catalog(&config).unwrap();
        let request = pb::FindRepairCenterRequest {
            location: Some(pb::LatLng { latitude: 31.2304, longitude: 121.4737 }),
            terminal: Some(pb::Terminal { brand: "PAX".into(), ..Default::default() }),
            page_size: 5,
            ..Default::default()
        };
        let mut rating_led = config.clone();
        let weights = &mut rating_led.profiles.get_mut("default").unwrap().weights;
        (weights.distance, weights.rating, weights.price, weights.brand_support, weights.downtime) =
            (0.0, 1.0, 0.0, 0.0, 0.0);
        let balanced = rank_locally(&LiveConfig::new(1, config.clone()), &catalog, &request).unwrap();
        let by_rating = rank_locally(&LiveConfig::new(1, rating_led), &catalog, &request).unwrap();
        assert_eq!(balanced.matches.len(), 5);
        let ratings: Vec<f64> = by_rating.matches.iter().map(|m| m.score_breakdown[1].raw_value).collect();
        assert!(ratings.windows(2).all(|w| w[0] >= w[1]), "rating-led orders by Bayesian rating: {ratings:?}");
        let text = render_comparison("a", &balanced, "b", &by_rating);
        let union: std::collections::HashSet<&str> =
            balanced.matches.iter().chain(&by_rating.matches).map(|m| center_of(m).0).collect();
        assert_eq!(text.lines().count(), 3 + union.len(), "a header and one row per center in either top: {text}");
        let missing = dir.path().join("nowhere.redb");
        config.store.path = missing;
        assert!(load_catalog(&config).unwrap_err().to_string().contains("no store"));
    }

    #[test]
    fn the_table_shows_every_factor_cell() {
        let table = render_table("A", &response(&[("a", 0.9)]));
        assert!(table.contains("1.5000→0.900×1.00=0.900"), "{table}");
        assert!(table.contains("Center a"));
    }

    #[test]
    fn the_comparison_shows_moves_and_entries_in_and_out() {
        let before = response(&[("a", 0.9), ("b", 0.8), ("c", 0.7)]);
        let after = response(&[("b", 0.95), ("a", 0.9), ("d", 0.5)]);
        let text = render_comparison("old.toml", &before, "new.toml", &after);
        let line = |id: &str| text.lines().find(|l| l.contains(&format!(" {id} "))).unwrap().to_owned();
        assert!(line("b").contains("↑1"), "{text}");
        assert!(line("a").contains("↓1"), "{text}");
        assert!(line("d").contains(" in "), "{text}");
        assert!(line("c").contains(" out "), "{text}");
    }
}
