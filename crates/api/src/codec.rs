//! The gRPC codec of every generated service and client: prost's, with smaller buffers.
//!
//! tonic gives each call an encode buffer and a decode buffer of 8 KiB from the start, and
//! a long-lived stream keeps both for its lifetime: 16 KiB per watch stream, most of a
//! stream's cost when a member holds thousands of them. Messages on the hot paths (a put,
//! its response, a watch event) are a few hundred bytes, and a buffer grows on demand for
//! a bigger one, so 1 KiB loses nothing and keeps 14 KiB per stream.

use std::marker::PhantomData;

use tonic::codec::BufferSettings;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// A call's encode and decode buffers start at this size (tonic's default: 8 KiB).
pub const BUFFER_BYTES: usize = 1024;
/// A stream hands its encoded messages to HTTP/2 once this many are buffered (tonic's
/// default).
pub const YIELD_BYTES: usize = 32 * 1024;

/// prost encoding with [`BUFFER_BYTES`] buffers.
#[derive(Debug, Clone)]
pub struct Codec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_BYTES)
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
