//! Finds the length prefix of each gRPC message in a byte stream (1 byte compressed flag,
//! 4 bytes big-endian length), to enforce message-size limits on encoded messages.

/// A message longer than the limit was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Oversize {
    pub(crate) length: u32,
    pub(crate) limit: u32,
}

impl Oversize {
    /// The message for a request over the send limit.
    pub(crate) fn request_message(&self) -> String {
        format!(
            "request message of {} bytes is larger than the send limit of {} bytes",
            self.length, self.limit
        )
    }
}

/// Tracks message boundaries across body chunks.
#[derive(Debug, Clone)]
pub(crate) struct MessageSizeCheck {
    limit: u32,
    header: [u8; 5],
    header_len: usize,
    /// Bytes of the current message still to skip.
    remaining: u64,
    /// The lengths of every message header seen so far, summed: the messages' bytes
    /// without their prefixes (what gRPC's size metrics count).
    message_bytes: u64,
}

impl MessageSizeCheck {
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            header: [0; 5],
            header_len: 0,
            remaining: 0,
            message_bytes: 0,
        }
    }

    /// The bytes of the messages whose headers were seen, prefixes excluded.
    pub(crate) fn message_bytes(&self) -> u64 {
        self.message_bytes
    }

    /// Feeds a chunk; fails at the first message header whose length exceeds the limit.
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Oversize> {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let skip = chunk
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                chunk = &chunk[skip..];
                self.remaining -= skip as u64;
                continue;
            }
            let take = (5 - self.header_len).min(chunk.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&chunk[..take]);
            self.header_len += take;
            chunk = &chunk[take..];
            if self.header_len == 5 {
                let length = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]);
                self.header_len = 0;
                if length > self.limit {
                    return Err(Oversize {
                        length,
                        limit: self.limit,
                    });
                }
                self.remaining = u64::from(length);
                self.message_bytes += u64::from(length);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&len.to_be_bytes());
        out.resize(5 + len as usize, 7);
        out
    }

    #[test]
    fn finds_headers_across_chunk_boundaries() {
        let mut bytes = message(10);
        bytes.extend(message(100));
        bytes.extend(message(3));
        for split in 0..bytes.len() {
            let mut check = MessageSizeCheck::new(100);
            assert_eq!(check.feed(&bytes[..split]), Ok(()));
            assert_eq!(check.feed(&bytes[split..]), Ok(()), "split at {split}");
        }
        let mut strict = MessageSizeCheck::new(99);
        let (a, b) = bytes.split_at(17);
        assert_eq!(strict.feed(a), Ok(()));
        assert_eq!(
            strict.feed(b),
            Err(Oversize {
                length: 100,
                limit: 99
            })
        );
    }
}
