//! The codec ponte's generated clients and servers use: prost's, except that a request a server
//! cannot decode is the caller's mistake (INVALID_ARGUMENT naming the request), not INTERNAL as
//! prost's codec answers. A response a client cannot decode stays INTERNAL.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstEncoder};

/// The longest part of prost's decode error an answer quotes.
const MAX_DETAIL: usize = 120;

/// [`ProstCodec`] with ponte's answer to an undecodable request.
#[derive(Debug, Clone)]
pub struct PonteCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for PonteCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for PonteCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = PonteDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        PonteDecoder(PhantomData)
    }
}

/// Decodes `U`; see [`PonteCodec`].
#[derive(Debug, Clone)]
pub struct PonteDecoder<U>(PhantomData<U>);

/// Whether `U` is a request message (every ponte request's name ends in `Request`, as buf's
/// lint requires): what a server decodes.
fn is_request<U>() -> bool {
    std::any::type_name::<U>().ends_with("Request")
}

/// The answer to a `U` that does not decode.
fn decode_error<U>(e: prost::DecodeError) -> Status {
    if is_request::<U>() {
        let detail: String = e.to_string().chars().take(MAX_DETAIL).collect();
        Status::invalid_argument(format!("request: not a protobuf message ponte can read ({detail})"))
    } else {
        Status::internal(e.to_string())
    }
}

impl<U: Message + Default> Decoder for PonteDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(decode_error::<U>)
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn requests_and_responses_are_told_apart() {
        assert!(is_request::<crate::v1::GetTenantRequest>());
        assert!(!is_request::<crate::v1::GetTenantResponse>());
    }

    #[test]
    fn a_request_that_is_not_protobuf_is_the_callers_mistake() {
        let garbage: &[u8] = &[0xff, 0xff, 0xff];
        let request = decode_error::<crate::v1::GetTenantRequest>(
            crate::v1::GetTenantRequest::decode(garbage).expect_err("not protobuf"),
        );
        assert_eq!(request.code(), Code::InvalidArgument, "{request:?}");
        assert!(request.message().starts_with("request: "), "{}", request.message());
        assert!(request.message().len() < 200, "{}", request.message());
        let response = decode_error::<crate::v1::GetTenantResponse>(
            crate::v1::GetTenantResponse::decode(garbage).expect_err("not protobuf"),
        );
        assert_eq!(response.code(), Code::Internal);
    }
}
