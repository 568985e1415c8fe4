//! SM3 and SM4-CBC throughput of mi_sdk's crypto (the RustCrypto crates) next to
//! `openssl speed -evp sm3` / `-evp sm4-cbc` run in the same invocation, as ratios.
//!
//!     cargo run --release --example bench_crypto
//!
//! Prints; asserts nothing.

use mi_sdk::crypto::sm::{self, Mode};
use std::process::Command;
use std::time::{Duration, Instant};

const SIZES: [usize; 3] = [1024, 16 * 1024, 1024 * 1024];

/// MB/s (10^6 bytes) of `f` over buffers of `size` bytes, for about `budget`.
fn rate(size: usize, budget: Duration, mut f: impl FnMut(&[u8])) -> f64 {
    let data = vec![0x5au8; size];
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < budget {
        f(&data);
        n += 1;
    }
    (n as f64 * size as f64) / t0.elapsed().as_secs_f64() / 1e6
}

/// OpenSSL's MB/s for an EVP algorithm at one size, or None if it cannot run.
fn openssl(alg: &str, size: usize) -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-evp", alg, "-bytes", &size.to_string(), "-seconds", "1"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last()?;
    let k: f64 = last.split_whitespace().last()?.trim_end_matches('k').parse().ok()?;
    Some(k / 1000.0)
}

fn main() {
    let key = [7u8; 16];
    let iv = [9u8; 16];
    println!("{:<10} {:>9} {:>12} {:>12} {:>8}", "algorithm", "size", "mi_sdk MB/s", "openssl MB/s", "ratio");
    for size in SIZES {
        let ours = rate(size, Duration::from_millis(700), |d| {
            std::hint::black_box(sm::sm3(d));
        });
        report("SM3", size, ours, openssl("sm3", size));
        let ours = rate(size, Duration::from_millis(700), |d| {
            std::hint::black_box(sm::sm4_encrypt(Mode::Cbc, &key, Some(&iv), d).unwrap());
        });
        report("SM4-CBC", size, ours, openssl("sm4-cbc", size));
    }
}

fn report(alg: &str, size: usize, ours: f64, theirs: Option<f64>) {
    match theirs {
        Some(t) => println!("{alg:<10} {size:>9} {ours:>12.1} {t:>12.1} {:>7.2}x", ours / t),
        None => println!("{alg:<10} {size:>9} {ours:>12.1} {:>12} {:>8}", "n/a", "n/a"),
    }
}
