//! Length-prefixed frames for request-response with hard size limits.
//!
//! A frame is a 4-byte big-endian length and that many bytes. The length is checked
//! against the limit before a single byte of the body is read, so an oversized frame
//! costs the receiver nothing but an error. Frames stay opaque bytes here; the event
//! loop decodes them (`crate::wire`) so that a bad frame is counted against its peer.

use std::io;

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;

/// The sync protocol name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/wlnode/sync/1");

/// Frame codec with separate limits for requests and responses.
#[derive(Clone, Debug)]
pub struct FrameCodec {
    /// Largest request frame accepted (and sent).
    pub max_request: usize,
    /// Largest response frame accepted (and sent).
    pub max_response: usize,
}

/// A frame over its limit, refused before reading its body.
#[derive(Debug, thiserror::Error)]
#[error("frame of {len} bytes is over the limit of {max}")]
pub struct FrameTooLarge {
    /// Announced length.
    pub len: usize,
    /// Limit.
    pub max: usize,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Bytes> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameTooLarge { len, max },
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    body: &[u8],
    max: usize,
) -> io::Result<()> {
    if body.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            FrameTooLarge {
                len: body.len(),
                max,
            },
        ));
    }
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(body).await?;
    io.flush().await?;
    io.close().await
}

impl Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Bytes;
    type Response = Bytes;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Bytes>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_request).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Bytes>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Bytes,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, self.max_request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Bytes,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.max_response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_limits() {
        let mut c = FrameCodec {
            max_request: 16,
            max_response: 16,
        };
        let mut buf = futures::io::Cursor::new(Vec::new());
        c.write_request(&SYNC_PROTOCOL, &mut buf, Bytes::from_static(b"hello"))
            .await
            .unwrap();
        let mut rd = futures::io::Cursor::new(buf.into_inner());
        assert_eq!(
            c.read_request(&SYNC_PROTOCOL, &mut rd).await.unwrap(),
            Bytes::from_static(b"hello")
        );
        // A header announcing 4 GiB is refused without reading further.
        let mut rd = futures::io::Cursor::new(vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        let err = c.read_request(&SYNC_PROTOCOL, &mut rd).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("over the limit"));
        // Truncated frames are errors.
        let mut rd = futures::io::Cursor::new(vec![0, 0, 0, 5, 1]);
        assert!(c.read_request(&SYNC_PROTOCOL, &mut rd).await.is_err());
        let mut out = futures::io::Cursor::new(Vec::new());
        assert!(
            c.write_request(&SYNC_PROTOCOL, &mut out, Bytes::from(vec![0u8; 17]))
                .await
                .is_err()
        );
    }
}
