//! The `repairmatch` command line: `serve`, `import`, `datagen`, `explain`,
//! `config check` and `key new`. Each command is a function here or in its
//! own module; `serve` is [`crate::server::run`].

pub mod explain;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use repairmatch_core::model::{Bank, Brand};
use repairmatch_datagen as datagen;

use crate::config::{Config, StoreKind};
use crate::{auth, convert, ndjson, server};

/// Finds who can repair a broken card terminal, as a gRPC service.
#[derive(Debug, Parser)]
#[command(name = "repairmatch", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC service. With no config: the embedded store in ./data,
    /// empty until imported into (the demo config/repairmatch.toml loads a sample).
    Serve {
        /// Config file (TOML); repeat it to layer files, a later one
        /// overriding an earlier one key by key (the tenants' key hashes from
        /// a Secret over the rest from a ConfigMap). Each is reloaded live.
        /// REPAIRMATCH_* environment variables override them all.
        #[arg(long)]
        config: Vec<PathBuf>,
        /// Listen address, overriding the config.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Load NDJSON catalog files into the configured store, all or nothing.
    Import {
        /// Config file naming the store (repeatable, as for `serve`).
        #[arg(long)]
        config: Vec<PathBuf>,
        /// A file of Brand lines.
        #[arg(long)]
        brands: Option<PathBuf>,
        /// A file of Bank lines.
        #[arg(long)]
        banks: Option<PathBuf>,
        /// A file of RepairCenter lines.
        centers: Option<PathBuf>,
    },
    /// Print a ranking with every factor's raw value, normalized value, weight
    /// and contribution; with --compare, how the top N move under another config.
    Explain(ExplainArgs),
    /// Check configuration files.
    Config {
        /// What to do with config files.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage API keys.
    Key {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Write a realistic sample catalog: OUT/centers.ndjson, OUT/brands.ndjson
    /// and OUT/banks.ndjson.
    Datagen {
        /// How many repair centers.
        #[arg(long, default_value_t = 1_000)]
        centers: usize,
        /// Seed; the same seed gives the same catalog.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory.
        #[arg(long, default_value = "sample")]
        out: PathBuf,
        /// Where the centers are.
        #[arg(long, value_enum, default_value_t = DatagenLayout::World)]
        layout: DatagenLayout,
    },
}

/// Where `datagen` puts its centers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DatagenLayout {
    /// In the world's cities, in proportion to population.
    World,
    /// For benchmarks of growth at equal density: 10,000 centers in one tile
    /// (the Yangtze delta), repeated in far-apart tiles up to the count, so a
    /// merchant in the original tile sees the same neighbourhood at any size.
    Tiled,
}

/// What `explain` ranks, and where.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Config with the profiles (and the store, for local ranking).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Another config to rank the same request with, side by side (local
    /// store only: a running server ranks with its own config).
    #[arg(long, conflicts_with_all = ["compare_profile", "server"])]
    pub compare: Option<PathBuf>,
    /// Another profile to rank the same request with, side by side: works
    /// against a running server too.
    #[arg(long)]
    pub compare_profile: Option<String>,
    /// Ask a running server (e.g. http://127.0.0.1:50051) instead of the local store.
    #[arg(long)]
    pub server: Option<String>,
    /// API key for --server.
    #[arg(long)]
    pub key: Option<String>,
    /// The request as proto3 JSON (a FindRepairCenterRequest); overrides the flags below.
    #[arg(long)]
    pub request: Option<PathBuf>,
    /// Merchant latitude.
    #[arg(long, allow_hyphen_values = true)]
    pub lat: Option<f64>,
    /// Merchant longitude.
    #[arg(long, allow_hyphen_values = true)]
    pub lon: Option<f64>,
    /// Terminal brand.
    #[arg(long)]
    pub brand: Option<String>,
    /// Terminal model.
    #[arg(long)]
    pub model: Option<String>,
    /// Fault category, e.g. SCREEN, TAMPER, SOFTWARE.
    #[arg(long)]
    pub fault: Option<String>,
    /// Ranking profile.
    #[arg(long)]
    pub profile: Option<String>,
    /// How many matches to show.
    #[arg(long, default_value_t = 10)]
    pub top: i32,
}

/// Config subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config (with REPAIRMATCH_* overrides applied, as `serve`
    /// would) and print every problem; exit code 1 when there is any.
    Check {
        /// The file, or several layered as `serve --config A --config B`
        /// layers them (a later one overriding an earlier one).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print a fresh key for a tenant and the config line that accepts it.
    New {
        /// The tenant the key is for.
        #[arg(long)]
        tenant: String,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if !matches!(cli.command, Command::Serve { .. }) {
        crate::telemetry::init_text();
    }
    match cli.command {
        Command::Serve { config: config_files, listen } => {
            let mut config = load_config(&config_files)?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            server::run(config, config_files)
        }
        Command::Import { config, brands, banks, centers } => {
            let config = load_config(&config)?;
            import(&config, centers.as_deref(), brands.as_deref(), banks.as_deref())
        }
        Command::Datagen { centers, seed, out, layout } => write_sample(centers, seed, layout, &out),
        Command::Explain(args) => explain::run(&args),
        Command::Config { command: ConfigCommand::Check { files } } => {
            let described = crate::config::describe_files(&files);
            match Config::load(&files) {
                Ok(config) => {
                    println!("{described}: ok ({} profiles, {} tenants)", config.profiles.len(), config.tenants.len());
                    Ok(())
                }
                Err(error) => {
                    eprintln!("{described}: refused");
                    for problem in error.problems() {
                        eprintln!("  {problem}");
                    }
                    std::process::exit(1);
                }
            }
        }
        Command::Key { command: KeyCommand::New { tenant } } => {
            let key = auth::new_key().map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
            println!("key for {tenant} (give it to the tenant; it is shown only now and stored nowhere):");
            println!("  {key}");
            println!(
                "add its hash to [tenants.{tenant}] in the config (keep older hashes there until clients switch):"
            );
            println!("  key_sha256 = [\"{}\"]", auth::key_hash(&key));
            Ok(())
        }
    }
}

fn load_config(files: &[impl AsRef<Path>]) -> anyhow::Result<Config> {
    Config::load(files).with_context(|| {
        if files.is_empty() {
            "configuration from the environment is not usable".to_owned()
        } else {
            format!("configuration {} is not usable", crate::config::describe_files(files))
        }
    })
}

/// Reads and validates every file and writes them in one transaction, the
/// centers as they are read; a bad line anywhere leaves the store as it was.
pub fn import(
    config: &Config,
    centers: Option<&Path>,
    brands: Option<&Path>,
    banks: Option<&Path>,
) -> anyhow::Result<()> {
    let brands = brands.map(ndjson::read_brands).transpose()?.unwrap_or_default();
    let banks = banks.map(ndjson::read_banks).transpose()?.unwrap_or_default();
    anyhow::ensure!(
        centers.is_some() || !brands.is_empty() || !banks.is_empty(),
        "nothing to import: name a centers file, --brands or --banks"
    );
    let new_store_file =
        (config.store.kind == StoreKind::Embedded && !config.store.path.exists()).then_some(&config.store.path);
    let imported = write_import(config, centers, brands, banks);
    if imported.is_err()
        && let Some(path) = new_store_file
    {
        // Opening the store created its file: a failed import leaves no
        // store where there was none.
        let _ = std::fs::remove_file(path);
    }
    let ((centers, brands, banks), version) = imported?;
    let place = match config.store.kind {
        StoreKind::Embedded => config.store.path.display().to_string(),
        StoreKind::Redis => format!("Redis (prefix {})", config.store.key_prefix),
    };
    println!("imported {centers} centers, {brands} brands, {banks} banks into {place} (catalog version {version})");
    Ok(())
}

/// The store part of [`import`]: how many centers, brands and banks it
/// wrote, and the catalog version after them. The store is closed when this
/// returns.
fn write_import(
    config: &Config,
    centers: Option<&Path>,
    brands: Vec<Brand>,
    banks: Vec<Bank>,
) -> anyhow::Result<((usize, usize, usize), u64)> {
    let store = crate::store::open(&config.store).with_context(|| match config.store.kind {
        StoreKind::Embedded => format!("cannot open the store {} (is a server using it?)", config.store.path.display()),
        StoreKind::Redis => format!("cannot use the Redis store (prefix {})", config.store.key_prefix),
    })?;
    // Dropped without a commit (a bad line, a failed write), the load
    // leaves the store as it was.
    let mut load = store.bulk_load()?;
    let mut center_count = 0;
    if let Some(path) = centers {
        ndjson::read_centers_into(path, |batch| {
            center_count += batch.len();
            load.add_centers(batch).map_err(anyhow::Error::from)
        })?;
    }
    anyhow::ensure!(center_count + brands.len() + banks.len() > 0, "nothing to import: the files hold no record");
    let counts = (center_count, brands.len(), banks.len());
    Ok((counts, load.commit(brands, banks)?))
}

fn write_sample(centers: usize, seed: u64, layout: DatagenLayout, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let sample = match layout {
        DatagenLayout::World => datagen::generate(centers, seed),
        DatagenLayout::Tiled => datagen::generate_tiled(centers, seed),
    };
    let written =
        ndjson::write_lines(&out.join("centers.ndjson"), sample.centers.iter().map(convert::center_to_proto))?;
    ndjson::write_lines(&out.join("brands.ndjson"), sample.brands.iter().map(convert::brand_to_proto))?;
    ndjson::write_lines(&out.join("banks.ndjson"), sample.banks.iter().map(convert::bank_to_proto))?;
    println!("wrote {written} centers (seed {seed}) with brands and banks to {}", out.display());
    Ok(())
}
