//! The `repairmatch` command line: `serve`, `import` and `datagen`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use repairmatch_core::datagen;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::store::{CatalogWrite, Store};
use crate::{App, auth, convert, explain, metrics, ndjson, reload, serve};
use repairmatch_proto::v1 as pb;
use repairmatch_proto::v1::repair_match_service_client::RepairMatchServiceClient;

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
        /// Config file (TOML); REPAIRMATCH_* environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overriding the config.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Load NDJSON catalog files into the configured store, all or nothing.
    Import {
        /// Config file naming the store.
        #[arg(long)]
        config: Option<PathBuf>,
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
    },
}

/// What `explain` ranks, and where.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Config with the profiles (and the store, for local ranking).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Another config to rank the same request with, side by side (local only).
    #[arg(long)]
    pub compare: Option<PathBuf>,
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
    /// Validate a config file (with REPAIRMATCH_* overrides applied, as `serve`
    /// would) and print every problem; exit code 1 when there is any.
    Check {
        /// The file.
        file: PathBuf,
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
    match cli.command {
        Command::Serve { config: config_path, listen } => {
            let mut config = load_config(config_path.as_deref())?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            run_server(config, config_path)
        }
        Command::Import { config, brands, banks, centers } => {
            let config = load_config(config.as_deref())?;
            import(&config, centers.as_deref(), brands.as_deref(), banks.as_deref())
        }
        Command::Datagen { centers, seed, out } => write_sample(centers, seed, &out),
        Command::Explain(args) => run_explain(&args),
        Command::Config { command: ConfigCommand::Check { file } } => match Config::load(Some(&file)) {
            Ok(config) => {
                println!(
                    "{}: ok ({} profiles, {} tenants)",
                    file.display(),
                    config.profiles.len(),
                    config.tenants.len()
                );
                Ok(())
            }
            Err(error) => {
                eprintln!("{}: refused", file.display());
                for problem in error.problems() {
                    eprintln!("  {problem}");
                }
                std::process::exit(1);
            }
        },
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

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| match path {
        Some(path) => format!("configuration {} is not usable", path.display()),
        None => "configuration from the environment is not usable".to_owned(),
    })
}

fn run_server(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listen = config.server.listen;
        let store_path = config.store.path.clone();
        let app = tokio::task::spawn_blocking(move || App::open(config))
            .await?
            .with_context(|| format!("cannot open the store {}", store_path.display()))?;
        let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let _watcher = match &config_path {
            Some(path) => {
                let watcher = reload::watch(app.clone(), path.clone()).context("cannot watch the config file")?;
                #[cfg(unix)]
                watcher.reload_on_sighup()?;
                Some(watcher)
            }
            None => None,
        };
        if let Some(metrics_listen) = app.config().config.server.metrics_listen {
            let metrics_listener = TcpListener::bind(metrics_listen)
                .await
                .with_context(|| format!("cannot serve metrics on {metrics_listen}"))?;
            tracing::info!(listen = %metrics_listen, "serving metrics");
            tokio::spawn(metrics::serve_metrics(metrics_listener, app.clone(), shutdown_signal()));
        }
        serve(listener, app, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: draining in-flight requests");
}

fn explain_request(args: &ExplainArgs) -> anyhow::Result<pb::FindRepairCenterRequest> {
    if let Some(path) = &args.request {
        return explain::read_request(path);
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

fn run_explain(args: &ExplainArgs) -> anyhow::Result<()> {
    let mut request = explain_request(args)?;
    if request.page_size == 0 {
        request.page_size = args.top;
    }
    if let Some(server) = &args.server {
        anyhow::ensure!(
            args.compare.is_none(),
            "--compare ranks locally (a server ranks with its own config); compare profiles with --profile"
        );
        let response = tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
            let mut client = RepairMatchServiceClient::connect(server.clone())
                .await
                .with_context(|| format!("cannot reach {server}"))?;
            let mut call = tonic::Request::new(request);
            if let Some(key) = &args.key {
                call.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {key}").parse().context("the key is not a valid header value")?,
                );
            }
            anyhow::Ok(
                client
                    .find_repair_center(call)
                    .await
                    .map_err(|status| anyhow::anyhow!("{}: {}", status.code(), status.message()))?
                    .into_inner(),
            )
        })?;
        print!("{}", explain::render_table(server, &response));
        return Ok(());
    }
    let config = load_config(args.config.as_deref())?;
    let catalog = explain::load_catalog(&config)?;
    let label = args.config.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
    let ranked = explain::rank_locally(&config, &catalog, &request)?;
    print!("{}", explain::render_table(&label, &ranked));
    if let Some(other_path) = &args.compare {
        let other = load_config(Some(other_path))?;
        let other_ranked = explain::rank_locally(&other, &catalog, &request)?;
        let other_label = other_path.display().to_string();
        println!();
        print!("{}", explain::render_table(&other_label, &other_ranked));
        println!();
        print!("{}", explain::render_comparison(&label, &ranked, &other_label, &other_ranked));
    }
    Ok(())
}

/// Reads and validates every file, then writes them in one transaction.
pub fn import(
    config: &Config,
    centers: Option<&Path>,
    brands: Option<&Path>,
    banks: Option<&Path>,
) -> anyhow::Result<()> {
    let write = CatalogWrite {
        centers: centers.map(ndjson::read_centers).transpose()?.unwrap_or_default(),
        brands: brands.map(ndjson::read_brands).transpose()?.unwrap_or_default(),
        banks: banks.map(ndjson::read_banks).transpose()?.unwrap_or_default(),
        deleted_center_ids: Vec::new(),
    };
    anyhow::ensure!(!write.is_empty(), "nothing to import: name a centers file, --brands or --banks");
    let counts = (write.centers.len(), write.brands.len(), write.banks.len());
    let store = Store::open(&config.store.path)
        .with_context(|| format!("cannot open the store {} (is a server using it?)", config.store.path.display()))?;
    let (version, _) = store.write(write)?;
    println!(
        "imported {} centers, {} brands, {} banks into {} (catalog version {version})",
        counts.0,
        counts.1,
        counts.2,
        config.store.path.display()
    );
    Ok(())
}

fn write_sample(centers: usize, seed: u64, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let sample = datagen::generate(centers, seed);
    let written =
        ndjson::write_lines(&out.join("centers.ndjson"), sample.centers.iter().map(convert::center_to_proto))?;
    ndjson::write_lines(&out.join("brands.ndjson"), sample.brands.iter().map(convert::brand_to_proto))?;
    ndjson::write_lines(&out.join("banks.ndjson"), sample.banks.iter().map(convert::bank_to_proto))?;
    println!("wrote {written} centers (seed {seed}) with brands and banks to {}", out.display());
    Ok(())
}
