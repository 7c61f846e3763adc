//! Where keyward's validate time goes: a flat `perf report --stdio --no-children --sort dso,sym`
//! grouped into the parts of a request (HTTP, JSON, signing, cache, logging, store, runtime, kernel).

use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Categories in the order they are tried; the first whose pattern a symbol contains wins.
const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "signing: Ed25519 (SHA-512, curve25519) and base64",
        &["curve25519", "ed25519", "sha2::", "sha512", "Sha512", "base64"],
    ),
    ("logging / tracing", &["tracing"]),
    (
        "store: SQLite, sqlx, validation recorder",
        &["sqlx", "sqlite3", "keyward_store", "libsqlite", "pcache1", "flume"],
    ),
    (
        "JSON (serde, number and date formatting)",
        &["serde_json", "serde::", "serde_core", "Serialize", "serialize", "Deserializ", "itoa", "ryu", "chrono"],
    ),
    ("string formatting (core::fmt)", &["core::fmt", "alloc::fmt"]),
    ("rate limiting (governor)", &["governor"]),
    (
        "HTTP: hyper, axum, tower, http, headers",
        &["hyper", "axum", "tower", "http::", "httparse", "matchit", "bytes::", "h1::"],
    ),
    (
        "cache lookup: dashmap, hashing",
        &["dashmap", "hashbrown", "siphash", "SipHasher", "core::hash", "lock_api", "parking_lot"],
    ),
    ("keyward's own code (routes, decide, views)", &["keyward"]),
    ("async runtime: tokio", &["tokio", "mio::"]),
    (
        "libc: allocation, memory copies, syscall wrappers",
        &[
            "malloc",
            "free",
            "realloc",
            "memcpy",
            "memmove",
            "memset",
            "memcmp",
            "_int_",
            "alloc::",
            "syscall",
            "pthread_",
            "__libc",
            "epoll",
            "unlink_chunk",
        ],
    ),
];

const KERNEL: &str = "kernel: TCP loopback, syscalls, scheduling";
const OTHER: &str = "other";

struct Sample {
    percent: f64,
    kernel: bool,
    symbol: String,
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim_start();
    let (percent, rest) = line.split_once('%')?;
    let percent: f64 = percent.trim().parse().ok()?;
    let kernel = rest.contains("[k]");
    let (_, symbol) = rest.split_once("] ")?;
    Some(Sample { percent, kernel, symbol: symbol.trim().to_owned() })
}

fn category(sample: &Sample) -> &'static str {
    if sample.kernel {
        return KERNEL;
    }
    CATEGORIES
        .iter()
        .find(|(_, patterns)| patterns.iter().any(|p| sample.symbol.contains(p)))
        .map_or(OTHER, |(name, _)| name)
}

/// Prints the breakdown as a markdown table.
pub fn summarise(perf_report: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(perf_report).with_context(|| format!("cannot read {}", perf_report.display()))?;
    let samples: Vec<Sample> = text.lines().filter(|l| !l.starts_with('#')).filter_map(parse_line).collect();
    anyhow::ensure!(!samples.is_empty(), "{} holds no profile lines", perf_report.display());
    let mut by_category: BTreeMap<&str, (f64, Vec<&Sample>)> = BTreeMap::new();
    for sample in &samples {
        let entry = by_category.entry(category(sample)).or_default();
        entry.0 += sample.percent;
        entry.1.push(sample);
    }
    let mut rows: Vec<_> = by_category.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    let mut md = String::new();
    writeln!(md, "| where | share of the CPU samples | heaviest symbols |")?;
    writeln!(md, "|---|---:|---|")?;
    for (name, (share, mut members)) in rows {
        members.sort_by(|a, b| b.percent.total_cmp(&a.percent));
        let top: Vec<String> =
            members.iter().take(3).map(|s| format!("`{}` {:.1}%", shorten(&s.symbol), s.percent)).collect();
        writeln!(md, "| {name} | {share:.1}% | {} |", top.join(", "))?;
    }
    print!("{md}");
    Ok(())
}

/// A symbol without its generic arguments and hash, short enough for a table cell.
fn shorten(symbol: &str) -> String {
    let mut out = String::new();
    // One entry per open `<`: true for generic arguments (dropped), false for `<T as Trait>` (kept).
    let mut open: Vec<bool> = Vec::new();
    let mut previous = ' ';
    for c in symbol.chars() {
        let dropping = open.iter().any(|generic| *generic);
        match c {
            '<' => {
                let generic = dropping || previous.is_alphanumeric() || previous == '_';
                open.push(generic);
                if !generic {
                    out.push(c);
                }
            }
            '>' => {
                let generic = open.pop().unwrap_or(false);
                if !generic {
                    out.push(c);
                }
            }
            _ if !dropping => out.push(c),
            _ => {}
        }
        previous = c;
    }
    if let Some(at) = out.rfind("::h") {
        let hash = &out[at + 3..];
        if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
            out.truncate(at);
        }
    }
    let out = out.replace('|', "\\|");
    if out.chars().count() > 70 {
        format!("…{}", out.chars().skip(out.chars().count() - 69).collect::<String>())
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_lines_are_sorted_into_categories() {
        let user = parse_line("    12.34%  keyward  [.] curve25519_dalek::backend::serial::u64::field::mul").unwrap();
        assert_eq!(user.percent, 12.34);
        assert!(category(&user).starts_with("signing"));
        let kernel = parse_line("     3.00%  [kernel.kallsyms]  [k] tcp_sendmsg_locked").unwrap();
        assert_eq!(category(&kernel), KERNEL);
        let json = parse_line("  1.00%  keyward  [.] serde_json::ser::format_escaped_str").unwrap();
        assert!(category(&json).starts_with("JSON"));
        assert!(parse_line("# Overhead  Shared Object").is_none());
    }

    #[test]
    fn symbols_shorten() {
        assert_eq!(shorten("<hyper::proto::h1::Conn<I,B,T> as Foo>::poll"), "<hyper::proto::h1::Conn as Foo>::poll");
        assert_eq!(shorten("core::sync::atomic::fetch_add"), "core::sync::atomic::fetch_add");
        assert_eq!(shorten("tokio::runtime::task::raw::poll::h0123456789abcdef"), "tokio::runtime::task::raw::poll");
    }
}
