//! Incremental WHATWG event-stream parser for upstream provider responses: any chunking of the same bytes yields the same events, memory bounded.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    LineTooLong,
    EventTooLarge,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::LineTooLong => write!(f, "an event-stream line exceeded the size limit"),
            SseError::EventTooLarge => write!(f, "an event-stream event exceeded the size limit"),
        }
    }
}

impl std::error::Error for SseError {}

pub const MAX_LINE_BYTES: usize = 1 << 20;
pub const MAX_EVENT_BYTES: usize = 1 << 20;

#[derive(Debug)]
pub struct SseParser {
    max_line: usize,
    max_event: usize,
    line: Vec<u8>,
    /// Bytes of a possible BOM seen so far at the very start of the stream.
    bom_checked: bool,
    bom_buf: Vec<u8>,
    /// The previous chunk ended in CR: a leading LF in the next chunk belongs to it.
    after_cr: bool,
    event_type: String,
    data: String,
    last_id: Option<String>,
    retry: Option<u64>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::with_limits(MAX_LINE_BYTES, MAX_EVENT_BYTES)
    }

    pub fn with_limits(max_line: usize, max_event: usize) -> Self {
        SseParser {
            max_line,
            max_event,
            line: Vec::new(),
            bom_checked: false,
            bom_buf: Vec::new(),
            after_cr: false,
            event_type: String::new(),
            data: String::new(),
            last_id: None,
            retry: None,
        }
    }

    pub fn retry_ms(&self) -> Option<u64> {
        self.retry
    }

    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut chunk = chunk;
        if !self.bom_checked {
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            let need = BOM.len() - self.bom_buf.len();
            let take = need.min(chunk.len());
            self.bom_buf.extend_from_slice(&chunk[..take]);
            if !BOM.starts_with(&self.bom_buf) {
                // Not a BOM: replay what was held back as ordinary bytes.
                self.bom_checked = true;
                let held = std::mem::take(&mut self.bom_buf);
                self.scan(&held, out)?;
                return self.scan(&chunk[take..], out);
            }
            chunk = &chunk[take..];
            if self.bom_buf.len() < BOM.len() {
                return Ok(());
            }
            self.bom_checked = true;
            self.bom_buf.clear();
        }
        self.scan(chunk, out)
    }

    fn scan(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.after_cr {
            self.after_cr = false;
            if chunk.first() == Some(&b'\n') {
                chunk = &chunk[1..];
            }
        }
        while let Some(pos) = chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let (head, rest) = chunk.split_at(pos);
            if self.line.len() + head.len() > self.max_line {
                return Err(SseError::LineTooLong);
            }
            let is_cr = rest[0] == b'\r';
            let mut rest = &rest[1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.line.is_empty() {
                self.process_line(head, out)?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.process_line(&line, out)?;
            }
            chunk = rest;
        }
        if self.line.len() + chunk.len() > self.max_line {
            return Err(SseError::LineTooLong);
        }
        self.line.extend_from_slice(chunk);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "event" => self.event_type = value.to_string(),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_event {
                    return Err(SseError::EventTooLarge);
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => {
                self.last_id = Some(value.to_string()).filter(|v| !v.is_empty());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        let event = std::mem::take(&mut self.event_type);
        out.push(SseEvent {
            event: if event.is_empty() {
                "message".to_string()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
        });
    }

    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if self.after_cr {
            self.after_cr = false;
        }
        // An unterminated line and event are dropped.
        self.line.clear();
        self.data.clear();
        self.event_type.clear();
        let _ = out;
    }
}
