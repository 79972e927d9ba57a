//! Compiles `proto/` with the pure-Rust `protox` (no `protoc` on the machine),
//! then generates prost messages, tonic stubs and pbjson serde impls (the proto3
//! JSON mapping used by the NDJSON catalog format), whose numbers are read
//! through `src/json.rs`; the stubs use the codec of `src/codec.rs`.

use std::{env, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let package_dir = proto_root.join("repairmatch/v1");
    println!("cargo:rerun-if-changed={}", package_dir.display());
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&package_dir)?.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "proto"));
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptor_set = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_bytes = descriptor_set.encode_to_vec();
    std::fs::write(out_dir.join("repairmatch_descriptor.bin"), &descriptor_bytes)?;

    tonic_prost_build::configure()
        .codec_path("crate::codec::ProstCodec")
        .extern_path(".google.protobuf.Timestamp", "::pbjson_types::Timestamp")
        .compile_fds(descriptor_set.clone())?;
    // Server stubs again, over the same messages, except that a Find answers
    // with bytes encoded ahead (see `EncodedFindRepairCenterResponse`) and an
    // upsert takes its request as bytes (`EncodedUpsertRepairCentersRequest`).
    let encoded_dir = out_dir.join("encoded");
    std::fs::create_dir_all(&encoded_dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .codec_path("crate::codec::ProstCodec")
        .out_dir(&encoded_dir)
        .extern_path(".google.protobuf.Timestamp", "::pbjson_types::Timestamp")
        .extern_path(".repairmatch.v1", "crate::v1")
        .extern_path(".repairmatch.v1.FindRepairCenterResponse", "crate::EncodedFindRepairCenterResponse")
        .extern_path(".repairmatch.v1.UpsertRepairCentersRequest", "crate::EncodedUpsertRepairCentersRequest")
        .compile_fds(descriptor_set)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .extern_path(".google.protobuf", "::pbjson_types")
        .build(&[".repairmatch"])?;
    // Numbers read through `crate::json` instead (see there: pbjson's reader
    // builds and drops an error for every plain number).
    let serde_file = out_dir.join("repairmatch.v1.serde.rs");
    let generated = std::fs::read_to_string(&serde_file)?;
    let pbjson_numbers = "::pbjson::private::NumberDeserialize";
    if !generated.contains(pbjson_numbers) {
        return Err(format!("pbjson no longer reads numbers through {pbjson_numbers}: revisit crate::json").into());
    }
    std::fs::write(&serde_file, generated.replace(pbjson_numbers, "crate::json::NumberDeserialize"))?;
    Ok(())
}
