//! Generated code for the `repairmatch.v1` gRPC API.
//!
//! Messages come from `prost`, client and server stubs from `tonic`, and the
//! serde implementations from `pbjson`, which follow the proto3 JSON mapping
//! (camelCase names, enums as their names). The encoded file descriptor set is
//! exported for gRPC server reflection. The source of truth is
//! `proto/repairmatch/v1/`. Two pieces are written by hand:
//! [`EncodedFindRepairCenterResponse`], which lets the server send a Find
//! answer it encoded once (and cached) without decoding it again, the
//! reading of JSON numbers in `json.rs`, and the stubs' codec, which decodes
//! a message from one slice ([`codec`]).

pub mod codec;
mod json;

/// The `repairmatch.v1` package.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/repairmatch.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/repairmatch.v1.serde.rs"));
}

/// Server stubs over the [`v1`] messages that answer `FindRepairCenter` with an
/// [`EncodedFindRepairCenterResponse`]; the wire format is the same.
pub mod encoded {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/encoded/repairmatch.v1.rs"));
}

/// A `repairmatch.v1.FindRepairCenterResponse` already in its wire form.
///
/// A cached answer is sent as these bytes, as often as it is asked for,
/// instead of a message tree that tonic would encode again on every call.
/// Decoding (which the server never does) keeps every field's bytes as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodedFindRepairCenterResponse(pub prost::bytes::Bytes);

impl prost::Message for EncodedFindRepairCenterResponse {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        use prost::encoding::{WireType, bytes, fixed32, fixed64, skip_field, uint64};
        let mut field = self.0.to_vec();
        match wire_type {
            WireType::Varint => {
                let mut value = 0;
                uint64::merge(wire_type, &mut value, buf, ctx)?;
                uint64::encode(tag, &value, &mut field);
            }
            WireType::SixtyFourBit => {
                let mut value = 0;
                fixed64::merge(wire_type, &mut value, buf, ctx)?;
                fixed64::encode(tag, &value, &mut field);
            }
            WireType::ThirtyTwoBit => {
                let mut value = 0;
                fixed32::merge(wire_type, &mut value, buf, ctx)?;
                fixed32::encode(tag, &value, &mut field);
            }
            WireType::LengthDelimited => {
                let mut value: Vec<u8> = Vec::new();
                bytes::merge(wire_type, &mut value, buf, ctx)?;
                bytes::encode(tag, &value, &mut field);
            }
            // Groups are proto2 only: no field of this message is one.
            WireType::StartGroup | WireType::EndGroup => return skip_field(wire_type, tag, buf, ctx),
        }
        self.0 = field.into();
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// The encoded `FileDescriptorSet` of `repairmatch.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/repairmatch_descriptor.bin"));

pub use pbjson_types::Timestamp;
