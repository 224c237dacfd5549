//! Random ids: run ids (128 bits from the operating system's CSPRNG, as 32 lowercase hex
//! chars) and the random bytes behind trace and span ids.

/// A fresh run id.
pub fn new_run_id() -> String {
    hex(&random_bytes::<16>())
}

/// `N` random bytes from the operating system's CSPRNG: run ids, and the trace and span
/// ids of `trace`. The randomness comes from rustls' crypto provider (ring's system
/// RNG), which the binary carries anyway, so no extra dependency is needed; the
/// provider is built once, as building it allocates its tables.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use std::sync::OnceLock;
    static RANDOM: OnceLock<&'static dyn rustls::crypto::SecureRandom> = OnceLock::new();
    let random = *RANDOM.get_or_init(|| rustls::crypto::ring::default_provider().secure_random);
    let mut bytes = [0u8; N];
    if random.fill(&mut bytes).is_err() {
        // The OS RNG failing is not recoverable in any meaningful way; fall back to
        // time and a counter so ids stay unique within the process (never secret).
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut seed = [0u8; 16];
        seed[..8].copy_from_slice(&(t as u64).to_le_bytes());
        seed[8..].copy_from_slice(&n.to_le_bytes());
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = seed[i % 16] ^ (i / 16) as u8;
        }
    }
    bytes
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// True for a well-formed run id (32 lowercase hex characters).
pub fn is_run_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_lowercase_hex_and_distinct() {
        let a = new_run_id();
        let b = new_run_id();
        assert!(is_run_id(&a), "{a}");
        assert_ne!(a, b);
        assert!(!is_run_id("ABCDEF0123456789abcdef0123456789"));
        assert!(!is_run_id("abc"));
    }

    #[test]
    fn random_bytes_differ_between_calls() {
        let a = random_bytes::<8>();
        let b = random_bytes::<8>();
        assert_ne!(a, b);
        assert_ne!(random_bytes::<16>(), [0u8; 16]);
    }
}
