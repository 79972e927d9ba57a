//! The `repairmatch` command line: `serve`, `import` and `datagen`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use repairmatch_core::datagen;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::store::{CatalogWrite, Store};
use crate::{App, auth, convert, ndjson, reload, serve};

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
    /// seeded with the bundled sample catalog when empty.
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
                #[cfg(unix)]
                reload::reload_on_sighup(app.clone(), path.clone())?;
                Some(reload::watch(app.clone(), path.clone()).context("cannot watch the config file")?)
            }
            None => None,
        };
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
