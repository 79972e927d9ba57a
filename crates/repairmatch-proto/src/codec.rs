//! The protobuf codec of every generated stub: tonic-prost's, except that a
//! message is decoded from the contiguous bytes tonic buffered it in.
//!
//! tonic hands a decoder the whole message in one buffer behind a `Buf`
//! whose every `advance` goes through `BytesMut` bookkeeping; prost advances
//! once or twice per field, so a 1,000-center `UpsertRepairCenters` spent a
//! fifth of its decoding there. Decoding the same bytes as a slice is the
//! same message, read with a pointer bump per field.

use std::marker::PhantomData;

use prost::Message;
use prost::bytes::Buf;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// `application/grpc+proto` through prost (see the module).
#[derive(Debug, Clone)]
pub struct ProstCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ProstCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for ProstCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = SliceDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        SliceDecoder(PhantomData)
    }
}

/// Decodes `U` from the buffer's bytes as one slice when they are
/// contiguous (always, as tonic buffers a message today), through the
/// buffer otherwise; both are tested in this module.
#[derive(Debug, Clone)]
pub struct SliceDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for SliceDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // As tonic-prost answers a message that does not parse.
        decode_from(buf).map(Some).map_err(|error| Status::internal(error.to_string()))
    }
}

/// `U` from all of `buf`: as one slice when its bytes are contiguous.
fn decode_from<U: Message + Default>(buf: &mut impl Buf) -> Result<U, prost::DecodeError> {
    let length = buf.remaining();
    let chunk = buf.chunk();
    if chunk.len() == length {
        let decoded = U::decode(chunk);
        buf.advance(length);
        decoded
    } else {
        U::decode(buf)
    }
}

#[cfg(test)]
mod tests {
    use prost::bytes::Bytes;

    use super::*;
    use crate::v1 as pb;

    fn request() -> pb::FindRepairCenterRequest {
        pb::FindRepairCenterRequest {
            location: Some(pb::LatLng { latitude: 31.2304, longitude: 121.4737 }),
            terminal: Some(pb::Terminal { brand: "PAX".into(), model: "A920".into(), serial_number: "S1".into() }),
            page_size: 10,
            explain_center_ids: vec!["rc-1".into(), "rc-2".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_message_decodes_the_same_in_one_piece_or_in_two() {
        let bytes = Bytes::from(request().encode_to_vec());
        let mut whole = bytes.clone();
        assert_eq!(decode_from::<pb::FindRepairCenterRequest>(&mut whole).unwrap(), request());
        assert_eq!(whole.remaining(), 0, "every byte is consumed");
        for split in [1, 7, bytes.len() / 2, bytes.len() - 1] {
            let mut pieces = bytes.slice(..split).chain(bytes.slice(split..));
            assert_eq!(decode_from::<pb::FindRepairCenterRequest>(&mut pieces).unwrap(), request(), "split at {split}");
            assert_eq!(pieces.remaining(), 0);
        }
    }

    #[test]
    fn a_cut_off_message_is_an_error_either_way() {
        let bytes = Bytes::from(request().encode_to_vec());
        let cut = bytes.slice(..bytes.len() - 3);
        assert!(decode_from::<pb::FindRepairCenterRequest>(&mut cut.clone()).is_err());
        let mut pieces = cut.slice(..5).chain(cut.slice(5..));
        assert!(decode_from::<pb::FindRepairCenterRequest>(&mut pieces).is_err());
    }
}
