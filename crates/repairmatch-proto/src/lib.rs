//! Generated code for the `repairmatch.v1` gRPC API.
//!
//! Messages come from `prost`, client and server stubs from `tonic`, and the
//! serde implementations from `pbjson`, which follow the proto3 JSON mapping
//! (camelCase names, enums as their names). The encoded file descriptor set is
//! exported for gRPC server reflection. The source of truth is
//! `proto/repairmatch/v1/`. Some pieces are written by hand: [`Encoded`],
//! a message kept as its wire bytes, which lets the server send a Find
//! answer it encoded once (and cached) without encoding it again, and decode
//! a write's request where it runs the write; the reading of JSON numbers in
//! `json.rs`; and the stubs' codec, which decodes a message from one slice
//! ([`codec`]).

pub mod codec;
mod json;

/// The `repairmatch.v1` package.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/repairmatch.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/repairmatch.v1.serde.rs"));
}

/// Server stubs over the [`v1`] messages that answer `FindRepairCenter` with an
/// [`EncodedFindRepairCenterResponse`] and take `UpsertRepairCenters` as an
/// [`EncodedUpsertRepairCentersRequest`]; the wire format is the same.
pub mod encoded {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/encoded/repairmatch.v1.rs"));
}

/// A message of type `M` kept as its wire bytes, where the stubs of
/// [`encoded`] would otherwise encode or decode the message itself.
///
/// Taking one off the wire (prost's `decode`) keeps the bytes and checks
/// nothing; [`Self::decode_message`] decodes them into `M`, with the error the
/// stubs' codec would have given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Encoded<M> {
    bytes: prost::bytes::Bytes,
    message: std::marker::PhantomData<M>,
}

/// A Find answer already in its wire form: a cached answer is sent as these
/// bytes, as often as it is asked for, instead of a message tree that tonic
/// would encode again on every call.
pub type EncodedFindRepairCenterResponse = Encoded<v1::FindRepairCenterResponse>;

/// An upsert's request as it came off the wire. Up to a thousand centers,
/// some 0.8 MB: decoding them takes milliseconds, which in the stub's codec
/// would run on the async worker that took the call, ahead of the Finds
/// waiting on it. Taken as bytes there (one copy), the request is decoded
/// where the write runs.
pub type EncodedUpsertRepairCentersRequest = Encoded<v1::UpsertRepairCentersRequest>;

impl<M: prost::Message + Default> Encoded<M> {
    /// The message whose wire form is `bytes`.
    pub fn new(bytes: prost::bytes::Bytes) -> Self {
        Self { bytes, message: std::marker::PhantomData }
    }

    /// The wire form.
    pub fn bytes(&self) -> &prost::bytes::Bytes {
        &self.bytes
    }

    /// The message these bytes encode: what the stubs' codec would have
    /// decoded, and the same error when they encode none.
    pub fn decode_message(&self) -> Result<M, prost::DecodeError> {
        M::decode(self.bytes.clone())
    }
}

impl<M: prost::Message + Default> prost::Message for Encoded<M> {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.bytes);
    }

    /// Keeps the bytes, checking nothing: [`Encoded::decode_message`] does.
    fn merge(&mut self, mut buf: impl prost::bytes::Buf) -> Result<(), prost::DecodeError> {
        let rest = buf.copy_to_bytes(buf.remaining());
        self.bytes = if self.bytes.is_empty() { rest } else { [&self.bytes[..], &rest[..]].concat().into() };
        Ok(())
    }

    /// Reached only when a caller merges one field on its own (`merge` takes
    /// a whole message): the field is kept as read all the same.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        use prost::encoding::{WireType, bytes, fixed32, fixed64, skip_field, uint64};
        let mut field = self.bytes.to_vec();
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
            // Groups are proto2 only: no field of these messages is one.
            WireType::StartGroup | WireType::EndGroup => return skip_field(wire_type, tag, buf, ctx),
        }
        self.bytes = field.into();
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    fn clear(&mut self) {
        self.bytes.clear();
    }
}

/// The encoded `FileDescriptorSet` of `repairmatch.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/repairmatch_descriptor.bin"));

pub use pbjson_types::Timestamp;

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost::bytes::Buf;

    use super::*;

    fn request() -> v1::UpsertRepairCentersRequest {
        let center = |id: &str| v1::RepairCenter { id: id.into(), name: format!("Center {id}"), ..Default::default() };
        v1::UpsertRepairCentersRequest { centers: vec![center("rc-1"), center("rc-2")] }
    }

    #[test]
    fn an_upsert_taken_as_bytes_decodes_to_the_request_sent() {
        let sent = request();
        let wire = sent.encode_to_vec();
        // As the stubs' codec takes it: from one slice, or from a buffer in pieces.
        let taken = EncodedUpsertRepairCentersRequest::decode(wire.as_slice()).unwrap();
        assert_eq!(taken.bytes(), &wire);
        assert_eq!(taken.decode_message().unwrap(), sent);
        let in_pieces = EncodedUpsertRepairCentersRequest::decode((&wire[..7]).chain(&wire[7..])).unwrap();
        assert_eq!(in_pieces, taken);
        assert_eq!(taken.encode_to_vec(), wire, "sent on as taken");
    }

    #[test]
    fn bytes_that_are_no_request_are_taken_and_refused_when_decoded_as_the_codec_would() {
        // Field 1, length-delimited, whose length is cut off.
        let cut = [0x0a, 0xff];
        let taken = EncodedUpsertRepairCentersRequest::decode(&cut[..]).unwrap();
        let refused = taken.decode_message().unwrap_err();
        assert_eq!(refused.to_string(), v1::UpsertRepairCentersRequest::decode(&cut[..]).unwrap_err().to_string());
    }
}
