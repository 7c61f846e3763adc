//! `keyward-bench`: the Rust half of `bench/run.sh` — seeding, readiness, the cold validation
//! sweep, the search prober, and the report that turns a run's raw files into the results table.

mod latency;
mod probe;
mod profile;
mod report;
mod seed;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "keyward-bench", about = "Helpers of keyward's benchmark harness (bench/run.sh)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the product, generator and customers the benchmark generates licenses for; prints
    /// `GENERATOR=…` and `CUSTOMERS=…` lines for the shell.
    Seed {
        /// keyward's base URL, e.g. http://127.0.0.1:8080
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        #[arg(long, default_value_t = 10)]
        customers: usize,
    },
    /// Wait until a URL answers 200 (e.g. /readyz); fails after the timeout.
    Wait {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 60_000)]
        timeout_ms: u64,
    },
    /// Validate every key of a file once (a cold cache: each is read from the database), and
    /// print a JSON summary; fails when any answer is not 200 VALID.
    Sweep {
        #[arg(long)]
        url: String,
        #[arg(long)]
        keys: PathBuf,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Time admin searches of the licenses, one at a time; print a JSON summary.
    Search {
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        /// Keys to take substrings from.
        #[arg(long)]
        keys: PathBuf,
        /// Customers' email domains, comma-separated.
        #[arg(long)]
        domains: String,
        /// Requests per kind of query.
        #[arg(long, default_value_t = 50)]
        requests: usize,
        /// Stop a kind of query after this long, even if it has not made all its requests.
        #[arg(long, default_value_t = 30)]
        budget_seconds: u64,
    },
    /// Turn a run directory (wrk outputs, facts, sweeps, searches) into the markdown results.
    Report {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Group a `perf report --stdio` flat profile into where validate's time goes (markdown).
    Profile {
        #[arg(long)]
        perf_report: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Seed { url, token, customers } => seed::seed(&url, &token, customers).await,
        Command::Wait { url, timeout_ms } => probe::wait(&url, timeout_ms).await,
        Command::Sweep { url, keys, concurrency } => probe::sweep(&url, &keys, concurrency).await,
        Command::Search { url, token, keys, domains, requests, budget_seconds } => {
            probe::search(&url, &token, &keys, &domains, requests, budget_seconds).await
        }
        Command::Report { dir } => report::write(&dir),
        Command::Profile { perf_report } => profile::summarise(&perf_report),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("keyward-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}
