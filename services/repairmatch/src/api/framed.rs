//! Find answers sent as the bytes they already are.
//!
//! tonic copies every message into its own frame buffer before h2 sends it:
//! for a cached answer, 11 KB copied on every call, a tenth of a warm-cache
//! Find's CPU. A [`FindAnswer`](crate::cache::FindAnswer) keeps its gRPC
//! message frame (the 5-byte header, then the message), the handler attaches
//! it to the response as a [`FramedAnswer`], and [`send_framed_answer`] makes
//! that frame, shared, the body in place of tonic's, which is dropped unread.

use std::pin::Pin;
use std::task::{Context, Poll};

use std::convert::Infallible;

use http_body::{Frame, SizeHint};
use prost::bytes::Bytes;
use tonic::body::Body;
use tonic::codegen::http;

/// The length of a gRPC message frame's header.
pub const FRAME_HEADER_LEN: usize = 5;

/// The header of a gRPC message frame: not compressed, then the length,
/// big-endian.
pub fn frame_header(message_len: usize) -> [u8; FRAME_HEADER_LEN] {
    // Find answers are bounded by their page size, far below 4 GiB.
    let len = u32::try_from(message_len).expect("a Find answer is far below 4 GiB");
    let [a, b, c, d] = len.to_be_bytes();
    [0, a, b, c, d]
}

/// A whole gRPC message frame, attached to a response whose body it is.
#[derive(Debug, Clone)]
pub struct FramedAnswer(pub Bytes);

/// `response` with its [`FramedAnswer`], when it has one, as its body: the
/// function a `MapResponseLayer` around the routes applies to every call.
pub fn send_framed_answer(mut response: http::Response<Body>) -> http::Response<Body> {
    // tonic compresses only when told to, which this server is not; were it
    // ever, its body (compressed) must go as it is.
    if let Some(FramedAnswer(frame)) = response.extensions_mut().remove::<FramedAnswer>()
        && !response.headers().contains_key("grpc-encoding")
    {
        *response.body_mut() = Body::new(OneMessage { frame: Some(frame), trailers_sent: false });
    }
    response
}

/// A unary gRPC body: one message frame, then the OK trailers tonic would
/// send (`grpc-status: 0`).
#[derive(Debug)]
struct OneMessage {
    frame: Option<Bytes>,
    trailers_sent: bool,
}

impl http_body::Body for OneMessage {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(frame) = self.frame.take() {
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        if self.trailers_sent {
            return Poll::Ready(None);
        }
        self.trailers_sent = true;
        // What tonic's body ends an OK call with.
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.frame.is_none() && self.trailers_sent
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.frame.as_ref().map_or(0, |frame| frame.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn the_body_is_the_frame_then_the_ok_trailers() {
        let frame = Bytes::from_static(&[0, 0, 0, 0, 3, 8, 150, 1]);
        let mut body = OneMessage { frame: Some(frame.clone()), trailers_sent: false };
        assert_eq!(body.size_hint().exact(), Some(8));
        let data = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(data.as_ptr(), frame.as_ptr(), "the same bytes, not a copy");
        let trailers = body.frame().await.unwrap().unwrap().into_trailers().unwrap();
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
    }

    #[test]
    fn the_header_says_uncompressed_and_the_length_big_endian() {
        assert_eq!(frame_header(11_300), [0, 0, 0, 0x2c, 0x24]);
    }
}
