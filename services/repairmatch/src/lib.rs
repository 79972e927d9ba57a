//! The repairmatch service: everything that does I/O around the pure
//! `repairmatch-core`.
//!
//! - [`config`]: typed TOML + environment configuration.
//! - [`store`]: the embedded redb catalog store.
//! - [`ndjson`]: the NDJSON catalog interchange format.
//! - [`convert`]: proto ↔ domain conversion and field validation.
//! - [`error`]: the error enum and its single mapping to gRPC statuses.
//! - [`auth`]: tenants, API keys and who may do what.
//! - [`app`]: shared state (store, config, live catalog snapshot) and writes.
//! - [`grpc`], [`catalog_grpc`]: the thin tonic adapters.
//! - [`list_token`]: page tokens for catalog listings.
//! - [`reload`]: live config reload (directory watch, SIGHUP).
//! - [`metrics`]: Prometheus metrics on their own listener.
//! - [`server`]: `serve(listener, app, shutdown)`, used by `main` and tests.
//! - [`explain`]: ranking tables and config comparisons for `repairmatch explain`.
//! - [`cli`]: the `repairmatch` command line.

pub mod app;
pub mod auth;
pub mod catalog_grpc;
pub mod cli;
pub mod config;
pub mod convert;
pub mod error;
pub mod explain;
pub mod grpc;
pub mod list_token;
pub mod metrics;
pub mod ndjson;
pub mod reload;
pub mod server;
pub mod store;

pub use app::App;
pub use config::Config;
pub use server::serve;
