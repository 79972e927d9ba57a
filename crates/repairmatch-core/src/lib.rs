//! The matching core of repairmatch: who can repair this terminal, for this
//! merchant, and in what order. Plain synchronous Rust over domain types, with
//! no I/O and no generated code, so every rule is testable without a network.
//!
//! - [`model`]: repair centers, brands and banks, validated.
//! - [`geodesy`]: WGS84 distances, coverage polygons, index boxes.
//! - [`country`]: country codes and the offline reverse geocoder.
//! - [`hours`]: open-at checks in a center's own time zone.
//! - [`catalog`]: an immutable catalog snapshot with its per-brand R-trees.
//! - [`query`]: a validated find request, warranty decisions.
//! - [`profile`]: ranking weights, decay, priors and policies.
//! - [`eligibility`]: the matching rules, in the contract's order.
//! - [`ranking`]: the weighted score and the total order.
//! - [`diagnosis`]: why an answer is empty, and what to relax.
//! - [`paging`]: opaque keyset page tokens.
//! - [`find`]: `FindRepairCenter` end to end, with guidance and remote support.
//! - [`i18n`]: what the answers say, as message ids and arguments, and the
//!   Fluent message files that say it in English and Simplified Chinese.
//!
//! Sample catalogs for demos, tests and benchmarks are in `repairmatch-datagen`,
//! so the core carries no sample data.

pub mod catalog;
pub mod country;
pub mod diagnosis;
pub mod eligibility;
pub mod find;
pub mod geodesy;
pub mod hours;
pub mod i18n;
pub mod model;
pub mod paging;
pub mod profile;
pub mod query;
pub mod ranking;

#[cfg(test)]
mod test_fixtures;

pub use catalog::Catalog;
pub use find::{FindOutcome, find};
pub use profile::RankingProfile;
pub use query::FindQuery;
