//! Writes a gRPC request body (the 5-byte length prefix and the protobuf
//! message) for load generators such as `h2load -d FILE`:
//!
//! `cargo run -p repairmatch-tests --example grpc_body -- find '{"location": …}' > find.bin`
//! `cargo run -p repairmatch-tests --example grpc_body -- health '' > health.bin`
//!
//! The message is given as proto3 JSON: a `FindRepairCenterRequest`, or
//! (for `health`) nothing: an empty `grpc.health.v1.HealthCheckRequest`.

use std::io::Write;

use prost::Message;
use repairmatch_proto::v1 as pb;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (kind, json) = match args.as_slice() {
        [_, kind, json] => (kind.as_str(), json.as_str()),
        _ => anyhow::bail!("usage: grpc_body find|health JSON > FILE"),
    };
    let message = match kind {
        "find" => serde_json::from_str::<pb::FindRepairCenterRequest>(json)?.encode_to_vec(),
        "health" => tonic_health::pb::HealthCheckRequest { service: String::new() }.encode_to_vec(),
        other => anyhow::bail!("unknown message kind {other:?}"),
    };
    let mut framed = vec![0_u8];
    framed.extend_from_slice(&u32::try_from(message.len())?.to_be_bytes());
    framed.extend_from_slice(&message);
    std::io::stdout().write_all(&framed)?;
    Ok(())
}
