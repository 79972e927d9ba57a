//! Generated code for the `repairmatch.v1` gRPC API.
//!
//! Messages come from `prost`, client and server stubs from `tonic`, and the
//! serde implementations from `pbjson`, which follow the proto3 JSON mapping
//! (camelCase names, enums as their names). The encoded file descriptor set is
//! exported for gRPC server reflection. Nothing here is hand-written: the source
//! of truth is `proto/repairmatch/v1/`.

/// The `repairmatch.v1` package.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/repairmatch.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/repairmatch.v1.serde.rs"));
}

/// The encoded `FileDescriptorSet` of `repairmatch.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/repairmatch_descriptor.bin"));

pub use pbjson_types::Timestamp;
