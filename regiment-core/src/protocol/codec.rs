//! Framing of the IPC byte stream: what one side encodes, the other decodes.

use bytes::{Buf, BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use tokio_util::codec::{Decoder, Encoder};

use super::{Incoming, MAX_FRAME, decode, encode};

/// Splits the stream into frames and parses them as `M`.
///
/// Unlike `LengthDelimitedCodec`, an oversized frame is not an error that ends the stream: it is
/// reported once as [`Incoming::Invalid`] and its bytes are skipped as they arrive, so the frames
/// after it are read normally and the reader's buffer never grows past [`MAX_FRAME`]. Part of a
/// frame yields nothing yet: the rest may be in the next read.
#[derive(Debug)]
pub(crate) struct FrameDecoder<M> {
    /// Bytes of an oversized frame still to be thrown away.
    skipping: usize,
    _msg: PhantomData<fn() -> M>,
}

impl<M> Default for FrameDecoder<M> {
    fn default() -> Self {
        Self {
            skipping: 0,
            _msg: PhantomData,
        }
    }
}

impl<M: for<'de> Deserialize<'de>> Decoder for FrameDecoder<M> {
    type Item = Incoming<M>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if self.skipping > 0 {
            let n = self.skipping.min(src.len());
            src.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return Ok(None);
            }
        }
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len > MAX_FRAME {
            src.advance(4);
            self.skipping = len;
            return Ok(Some(Incoming::Invalid(format!(
                "frame of {len} bytes exceeds the limit of {MAX_FRAME}; skipped"
            ))));
        }
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let body = src.split_to(len);
        Ok(Some(decode(&body)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None if buf.is_empty() || self.skipping > 0 => Ok(None),
            None => {
                let n = buf.len();
                buf.clear();
                Ok(Some(Incoming::Invalid(format!(
                    "{n} bytes of a truncated frame at end of stream"
                ))))
            }
        }
    }
}

/// Writes messages as frames, the bytes of [`encode`]: for a `FramedWrite` on the IPC socket.
#[derive(Debug, Default)]
pub(crate) struct FrameEncoder;

impl<M: Serialize> Encoder<M> for FrameEncoder {
    type Error = std::io::Error;

    fn encode(&mut self, item: M, dst: &mut BytesMut) -> Result<(), Self::Error> {
        dst.put_slice(&encode(&item));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{CriterionKind, MasterMessage, WorkerMessage};

    fn feed(
        dec: &mut FrameDecoder<WorkerMessage>,
        buf: &mut BytesMut,
    ) -> Vec<Incoming<WorkerMessage>> {
        let mut out = Vec::new();
        while let Some(i) = dec.decode(buf).unwrap() {
            out.push(i);
        }
        out
    }

    #[test]
    fn the_encoder_writes_the_frames_of_encode_and_the_decoder_reads_them() {
        let drain = MasterMessage::Drain {
            deadline_ms: 30_000,
        };
        let mut buf = BytesMut::new();
        FrameEncoder.encode(drain.clone(), &mut buf).unwrap();
        assert_eq!(&buf[..], &encode(&drain)[..]);
        let mut dec = FrameDecoder::<MasterMessage>::default();
        assert_eq!(
            dec.decode(&mut buf).unwrap(),
            Some(Incoming::Message(drain))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn survives_oversized_frames_and_reads_what_follows() {
        let mut dec = FrameDecoder::<WorkerMessage>::default();
        let mut buf = BytesMut::new();
        let big = MAX_FRAME + 10;
        buf.put_u32(big as u32);
        buf.put_bytes(b'x', 1000);
        let out = feed(&mut dec, &mut buf);
        assert!(matches!(out.as_slice(), [Incoming::Invalid(_)]));
        buf.put_bytes(b'x', big - 1000);
        buf.put_slice(&encode(&WorkerMessage::Ready));
        assert_eq!(
            feed(&mut dec, &mut buf),
            vec![Incoming::Message(WorkerMessage::Ready)]
        );
    }

    #[test]
    fn reads_frames_split_across_reads() {
        let mut dec = FrameDecoder::<WorkerMessage>::default();
        let frame = encode(&WorkerMessage::ReplaceMe {
            criterion: CriterionKind::MaxAge,
            reason: "r".into(),
        });
        let mut buf = BytesMut::new();
        for b in &frame[..frame.len() - 1] {
            buf.put_u8(*b);
            assert!(feed(&mut dec, &mut buf).is_empty());
        }
        buf.put_u8(frame[frame.len() - 1]);
        assert_eq!(
            feed(&mut dec, &mut buf),
            vec![Incoming::Message(WorkerMessage::ReplaceMe {
                criterion: CriterionKind::MaxAge,
                reason: "r".into()
            })]
        );
    }

    #[test]
    fn garbage_frames_are_invalid_not_errors() {
        let mut dec = FrameDecoder::<WorkerMessage>::default();
        let mut buf = BytesMut::new();
        buf.put_u32(5);
        buf.put_slice(b"\x00\x01\x02\x03\x04");
        buf.put_slice(&encode(&WorkerMessage::Ready));
        let out = feed(&mut dec, &mut buf);
        assert!(matches!(out[0], Incoming::Invalid(_)));
        assert_eq!(out[1], Incoming::Message(WorkerMessage::Ready));
    }
}
