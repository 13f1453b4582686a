//! Reading a stored CSV as UTF-8: UTF-8 files as they are (a BOM skipped), Shift_JIS files
//! decoded as they are read, with the raw bytes read counted for progress.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the bytes read from the file.
pub struct Counted<R> {
    inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Decodes a non-UTF-8 encoding into UTF-8 while reading.
pub struct Decoding<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    raw: Vec<u8>,
    out: Vec<u8>,
    at: usize,
    done: bool,
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.out.len() {
            if self.done {
                return Ok(0);
            }
            self.raw.resize(64 * 1024, 0);
            let n = self.inner.read(&mut self.raw)?;
            let last = n == 0;
            let need = self.decoder.max_utf8_buffer_length(n).unwrap_or(n * 3 + 16);
            self.out.clear();
            self.out.resize(need, 0);
            let (_, _, written, _) =
                self.decoder
                    .decode_to_utf8(&self.raw[..n], &mut self.out, last);
            self.out.truncate(written);
            self.at = 0;
            self.done = last;
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A UTF-8 reader over `file` in `encoding` (`utf-8` or `shift_jis`), and the counter of
/// raw bytes read.
pub fn utf8_reader<R: Read + Send + 'static>(
    file: R,
    encoding: &str,
) -> std::io::Result<(Box<dyn Read + Send>, Arc<AtomicU64>)> {
    let count = Arc::new(AtomicU64::new(0));
    let mut counted = Counted {
        inner: file,
        count: count.clone(),
    };
    if encoding == "shift_jis" {
        let reader = Decoding {
            inner: counted,
            decoder: encoding_rs::SHIFT_JIS.new_decoder_without_bom_handling(),
            raw: Vec::new(),
            out: Vec::new(),
            at: 0,
            done: false,
        };
        return Ok((Box::new(reader), count));
    }
    let mut head = [0u8; 3];
    let mut got = 0;
    while got < 3 {
        let n = counted.read(&mut head[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let kept: Vec<u8> = if head[..got] == *b"\xEF\xBB\xBF" {
        Vec::new()
    } else {
        head[..got].to_vec()
    };
    Ok((Box::new(std::io::Cursor::new(kept).chain(counted)), count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: Vec<u8>, encoding: &str) -> String {
        let (mut reader, count) =
            utf8_reader(std::io::Cursor::new(bytes.clone()), encoding).unwrap();
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(count.load(Ordering::Relaxed), bytes.len() as u64);
        text
    }

    #[test]
    fn shift_jis_and_bom_are_read_as_utf8() {
        let text = "メールアドレス,名前\nann@x.test,山田\n".repeat(5000);
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
        assert_eq!(all(sjis.into_owned(), "shift_jis"), text);
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(all(bom, "utf-8"), text);
        assert_eq!(all(b"ab".to_vec(), "utf-8"), "ab");
    }
}
