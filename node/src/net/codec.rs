//! Length-prefixed byte frames for the block-sync request–response protocol.
//!
//! A frame is a 4-byte big-endian length followed by exactly that many bytes. The reader
//! checks the length against its cap **before** reading or allocating anything, grows its
//! buffer only as bytes actually arrive, and gives up after `read_timeout`. One request
//! frame and one response frame per stream.

use std::{future::Future, io, pin::Pin, time::Duration};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{request_response, StreamProtocol};

/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;

/// Codec with hard caps on request and response sizes.
#[derive(Debug, Clone)]
pub struct SyncCodec {
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub read_timeout: Duration,
}

/// Reads one frame of at most `max` bytes, within `timeout`.
pub async fn read_frame<T>(
    io: &mut T,
    max: usize,
    timeout: Duration,
    what: &str,
) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let read = async {
        let mut prefix = [0u8; PREFIX_LEN];
        io.read_exact(&mut prefix).await?;
        let len = u32::from_be_bytes(prefix) as usize;
        if len > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} frame of {len} bytes exceeds the cap of {max}"),
            ));
        }
        let mut buf = Vec::new();
        (&mut *io).take(len as u64).read_to_end(&mut buf).await?;
        if buf.len() != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{what} frame truncated: {} of {len} bytes", buf.len()),
            ));
        }
        Ok(buf)
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} read timed out"),
        )),
    }
}

/// Writes one frame, refusing (without writing anything) if it exceeds `max`.
pub async fn write_frame<T>(io: &mut T, bytes: &[u8], max: usize, what: &str) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    if bytes.len() > max || bytes.len() > u32::MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} of {} bytes exceeds the cap of {max}", bytes.len()),
        ));
    }
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

// The trait is declared with `#[async_trait]`; these are its expanded signatures, written
// by hand so that the node does not need the `async-trait` crate.
impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    fn read_request<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 Self::Protocol,
        io: &'life2 mut T,
    ) -> BoxFut<'async_trait, Self::Request>
    where
        T: AsyncRead + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let (max, timeout) = (self.max_request_bytes, self.read_timeout);
        Box::pin(async move { read_frame(io, max, timeout, "request").await })
    }

    fn read_response<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 Self::Protocol,
        io: &'life2 mut T,
    ) -> BoxFut<'async_trait, Self::Response>
    where
        T: AsyncRead + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let (max, timeout) = (self.max_response_bytes, self.read_timeout);
        Box::pin(async move { read_frame(io, max, timeout, "response").await })
    }

    fn write_request<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 Self::Protocol,
        io: &'life2 mut T,
        req: Self::Request,
    ) -> BoxFut<'async_trait, ()>
    where
        T: AsyncWrite + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let max = self.max_request_bytes;
        Box::pin(async move { write_frame(io, &req, max, "request").await })
    }

    fn write_response<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 Self::Protocol,
        io: &'life2 mut T,
        res: Self::Response,
    ) -> BoxFut<'async_trait, ()>
    where
        T: AsyncWrite + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let max = self.max_response_bytes;
        Box::pin(async move { write_frame(io, &res, max, "response").await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    const T: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn round_trip() {
        let mut out = Cursor::new(Vec::new());
        write_frame(&mut out, b"hello", 16, "x").await.unwrap();
        assert_eq!(out.get_ref(), &[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        let mut inp = Cursor::new(out.into_inner());
        assert_eq!(read_frame(&mut inp, 16, T, "x").await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn oversize_prefix_rejected_before_reading_body() {
        // Declares 4 GiB but carries nothing: must fail on the prefix alone.
        let mut inp = Cursor::new(vec![0xff, 0xff, 0xff, 0xff]);
        let err = read_frame(&mut inp, 1024, T, "x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn truncated_and_oversize_write() {
        let mut inp = Cursor::new(vec![0, 0, 0, 9, 1, 2]);
        let err = read_frame(&mut inp, 1024, T, "x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut out = Cursor::new(Vec::new());
        assert!(write_frame(&mut out, &[0u8; 17], 16, "x").await.is_err());
        assert!(out.get_ref().is_empty());
    }
}
