//! The codec of generated clients and servers (ephemos-build points tonic-prost-build's
//! `codec_path` at `ephemos::__private::ProstCodec`): tonic-prost's, whose decoder also
//! tells the call's response body when a response message fails to decode. tonic then
//! gives the application INTERNAL and drops the body unread, which the call's meter
//! would otherwise record as CANCELLED (A66 records the status the application sees).

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};

use super::decode_watch;

/// tonic-prost's codec, with a decoder that reports its failures to the call.
#[derive(Debug, Clone)]
pub struct ProstCodec<T, U>(tonic_prost::ProstCodec<T, U>);

impl<T, U> Default for ProstCodec<T, U> {
    fn default() -> Self {
        Self(tonic_prost::ProstCodec::default())
    }
}

impl<T, U> Codec for ProstCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder(self.0.decoder())
    }
}

/// tonic-prost's decoder, reporting each outcome (see [`decode_watch`]).
#[derive(Debug)]
pub struct ProstDecoder<U>(tonic_prost::ProstDecoder<U>);

impl<U: Message + Default> Decoder for ProstDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let decoded = self.0.decode(buf);
        decode_watch::decoded(decoded.is_ok());
        decoded
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
