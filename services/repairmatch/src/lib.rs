//! The repairmatch service: everything that does I/O around the pure
//! `repairmatch-core`. Data flows one way: [`api`] → [`app`] → core → [`app`]
//! → [`api`], with the [`store`] below the app and nothing calling back up.
//!
//! - [`server`]: `serve(listener, app, shutdown)` (tests call it on port 0)
//!   and `run`, the `serve` command's start-up; its own connection loop
//!   (TLS, connection age, drain) and admission (shedding, deadlines).
//! - [`api`]: the thin tonic adapters, and authentication from metadata.
//! - [`convert`]: proto ↔ domain conversion and field validation.
//! - [`app`]: the application: config in force, reads (one owner of a Find),
//!   writes and snapshot publishing.
//! - [`store`]: the `CatalogStore` seam and the embedded redb store.
//! - [`cache`]: the Find result cache (in-process and Redis tiers).
//! - [`auth`]: tenants, API keys and who may do what.
//! - [`limits`]: per-tenant rate limits (GCRA), shared through Redis.
//! - [`config`], [`reload`]: typed configuration and live reload.
//! - [`error`]: the error enum and its single mapping to gRPC statuses.
//! - [`metrics`]: Prometheus metrics on their own listener.
//! - [`telemetry`]: text or JSON logs, and optional OTLP trace export.
//! - [`ndjson`]: the NDJSON catalog interchange format.
//! - [`list_token`]: page tokens for catalog listings.
//! - [`cli`]: the `repairmatch` command line.

pub mod api;
pub mod app;
pub mod auth;
pub mod batches;
pub mod cache;
pub mod cli;
pub mod config;
pub mod convert;
pub mod error;
pub mod limits;
pub mod list_token;
pub mod memory;
pub mod metrics;
pub mod ndjson;
pub mod reload;
pub mod server;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use config::Config;
pub use server::serve;
