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
/// buffer otherwise.
#[derive(Debug, Clone)]
pub struct SliceDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for SliceDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let length = buf.remaining();
        let chunk = buf.chunk();
        let decoded = if chunk.len() == length {
            let decoded = U::decode(chunk);
            buf.advance(length);
            decoded
        } else {
            U::decode(buf)
        };
        // As tonic-prost answers a message that does not parse.
        decoded.map(Some).map_err(|error| Status::internal(error.to_string()))
    }
}
