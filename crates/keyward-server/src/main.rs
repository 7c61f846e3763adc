//! The `keyward` command: serve, and the administrative subcommands around it.

use anyhow::Context;
use base64::Engine;
use clap::{Parser, Subcommand};
use ed25519_dalek::VerifyingKey;
use futures::StreamExt;
use keyward_core::offline::verify_file;
use keyward_core::role::Role;
use keyward_core::signature::{kid_of, KeyRing};
use keyward_server::config::{Config, LogFormat};
use keyward_server::issue::{draft_license, insert_generated, LicenseDraft};
use keyward_server::keys::{load_or_create_master_key, SigningKeys};
use keyward_server::serve::open_store;
use keyward_store::{Audit, Backend, Dump, Store};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mimalloc: requests allocate on one thread and free on another (the validation recorder), where
/// glibc's per-thread arenas spend CPU consolidating and keep memory they no longer use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "keyward", version, about = "Self-hosted license key management")]
struct Cli {
    /// A keyward.toml to read before the KEYWARD_* variables.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and background work until SIGINT or SIGTERM.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Signing keys of answers and offline files.
    SigningKey {
        #[command(subcommand)]
        command: SigningKeyCommand,
    },
    /// Generate licenses in bulk from a generator, with progress (a million: ~30-37 s on SQLite, ~57-62 s on PostgreSQL, 2 cores).
    Generate {
        /// The generator's id.
        #[arg(long)]
        generator: String,
        #[arg(long)]
        count: usize,
        /// Assign every license to this customer id.
        #[arg(long)]
        customer: Option<String>,
        #[arg(long, default_value = "production")]
        environment: String,
    },
    /// Write the whole installation (every environment and record, tokens and settings) to a file.
    Export { file: PathBuf },
    /// Load an export into an empty installation, on either backend.
    Import { file: PathBuf },
    /// Take a consistent snapshot of a running installation (SQLite: a database file; PostgreSQL: an export).
    Backup { file: PathBuf },
    /// Check an offline license file with a public key, with no network.
    Verify {
        file: PathBuf,
        /// Base64 of the 32-byte Ed25519 public key (repeat for retired keys).
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<String>,
        /// The device the file must be bound to.
        #[arg(long)]
        fingerprint: Option<String>,
    },
}

#[derive(Subcommand)]
enum SigningKeyCommand {
    /// Retire the current key and sign with a new one; the old key still verifies what it signed.
    Rotate {
        #[arg(long, default_value = "production")]
        environment: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it on stdout (it is shown only this once).
    Create {
        #[arg(long)]
        role: Role,
        #[arg(long, default_value = "production")]
        environment: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only for a person at a terminal, never in files or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, warnings) = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("keyward: {err:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    match run(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("keyward: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let running = keyward_server::start(&config).await?;
            if let Some(token) = &running.bootstrap_token {
                if config.bootstrap_token.is_none() {
                    println!("Created the first owner token for production (shown only once):\n{token}");
                }
            }
            let addr = running.addr;
            // Signals are handled from here on, before anyone is told where to connect.
            let serving = running.until_signal();
            println!("keyward is listening on http://{addr}");
            serving.await
        }
        Command::Migrate => {
            open_store(&config).await?;
            println!("migrations are applied");
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { role, environment, name } } => {
            let store = open_store(&config).await?;
            ensure_environment(store.as_ref(), &environment).await?;
            let audit = Audit { actor: "keyward token create (cli)".into(), ip: None, action: "token.created".into() };
            let (_, secret) = keyward_server::tokens::create(store.as_ref(), &name, role, &environment, None, &audit)
                .await
                .context("cannot create the token")?;
            println!("{secret}");
            Ok(())
        }
        Command::SigningKey { command: SigningKeyCommand::Rotate { environment } } => {
            let store = open_store(&config).await?;
            ensure_environment(store.as_ref(), &environment).await?;
            let keys = SigningKeys::new(load_or_create_master_key(&config.master_key_file())?);
            keys.load(store.as_ref(), std::slice::from_ref(&environment)).await?;
            let audit = cli_audit("signing_key.rotated");
            let key = keys.rotate(store.as_ref(), &environment, &audit).await?;
            println!("{} is now the current signing key of {environment}: {}", key.kid, key.public_key);
            Ok(())
        }
        Command::Generate { generator, count, customer, environment } => {
            generate(&config, &generator, count, customer, &environment).await
        }
        Command::Export { file } => {
            let store = open_store(&config).await?;
            let dump = store.export().await?;
            write_atomically(&file, &dump.to_json()?)?;
            eprintln!("exported to {}", file.display());
            Ok(())
        }
        Command::Import { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let dump =
                Dump::from_json(&bytes).with_context(|| format!("{} is not a keyward export", file.display()))?;
            let store = open_store(&config).await?;
            store.import(&dump).await?;
            eprintln!("imported {}", file.display());
            Ok(())
        }
        Command::Backup { file } => {
            let store = open_store(&config).await?;
            match store.backend() {
                Backend::Sqlite => store.backup_sqlite(&file).await?,
                Backend::Postgres => write_atomically(&file, &store.export().await?.to_json()?)?,
            }
            eprintln!("backed up to {}", file.display());
            Ok(())
        }
        Command::Verify { file, public_keys, fingerprint } => verify(&file, &public_keys, fingerprint.as_deref()),
    }
}

async fn ensure_environment(store: &dyn Store, environment: &str) -> anyhow::Result<()> {
    let environments = store.environments().await?;
    anyhow::ensure!(
        environments.iter().any(|e| e == environment),
        "no environment is named `{environment}` (there are: {})",
        environments.join(", ")
    );
    Ok(())
}

fn cli_audit(action: &str) -> Audit {
    Audit { actor: format!("keyward cli ({})", whoami()), ip: None, action: action.into() }
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
}

/// Writes next to `path` and renames, so a crash never leaves half a file under its name.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, bytes).with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Batches of this many licenses are inserted at once by `keyward generate` (more on SQLite:
/// see `generate_batches`).
const GENERATE_BATCH: usize = 10_000;

/// The sizes of the transactions `keyward generate` inserts `count` licenses in. Random keys
/// land all over the key index, so a transaction rewrites most of its pages whatever its size:
/// SQLite's one writer writes them a fifth as often in batches of 50,000. There the last 10,000
/// are a batch of their own, which the search index, a batch behind, catches up on quickly.
fn generate_batches(backend: Backend, count: usize) -> Vec<usize> {
    let (size, last) = match backend {
        Backend::Postgres => (GENERATE_BATCH, 0),
        Backend::Sqlite => (5 * GENERATE_BATCH, count.min(GENERATE_BATCH)),
    };
    let before = count - last;
    let mut sizes: Vec<usize> = (0..before).step_by(size).map(|from| size.min(before - from)).collect();
    if last > 0 {
        sizes.push(last);
    }
    sizes
}

/// Batches `keyward generate` writes at once. PostgreSQL's server does the index work of a
/// batch on one core, so two transactions use two (1M licenses: see bench/README.md); SQLite
/// has one writer.
fn generate_writers(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 2,
        Backend::Sqlite => 1,
    }
}

async fn generate(
    config: &Config,
    generator: &str,
    count: usize,
    customer: Option<String>,
    environment: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(count > 0, "--count must be at least 1");
    let store = open_store(config).await?;
    ensure_environment(store.as_ref(), environment).await?;
    let generator = store
        .generator(environment, generator)
        .await?
        .with_context(|| format!("no generator {generator} in {environment}"))?;
    let now = chrono::Utc::now();
    let draft = LicenseDraft { customer, ..LicenseDraft::default() };
    let (template, _) = draft_license(store.as_ref(), environment, &generator, &draft, now)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let started = std::time::Instant::now();
    let audit = cli_audit("license.created");
    let (store_ref, generator, template, audit) = (store.as_ref(), &generator, &template, &audit);
    let mut batches = futures::stream::iter(generate_batches(store.backend(), count))
        .map(|batch| async move { insert_generated(store_ref, generator, template, batch, audit).await.map(|_| batch) })
        .buffer_unordered(generate_writers(store.backend()));
    let mut done = 0;
    while let Some(batch) = batches.next().await {
        done += batch.map_err(|e| anyhow::anyhow!(e.message))?;
        eprintln!("generated {done}/{count} ({:.1} s)", started.elapsed().as_secs_f64());
    }
    store.fold_license_counts().await?;
    // SQLite indexes keys for search on another core while the batches are written; the time
    // reported includes the rest of it.
    store.catch_up_search_index().await?;
    if count >= GENERATE_BATCH {
        store.refresh_statistics().await?;
    }
    println!("generated {count} licenses in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn verify(file: &Path, public_keys: &[String], fingerprint: Option<&str>) -> anyhow::Result<()> {
    let mut ring = KeyRing::default();
    for encoded in public_keys {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| anyhow::anyhow!("--public-key must be base64 of 32 bytes"))?;
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|_| anyhow::anyhow!("--public-key must be base64 of 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| anyhow::anyhow!("--public-key is not an Ed25519 public key"))?;
        ring.insert(kid_of(&key), key);
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let claims = verify_file(&bytes, &ring, chrono::Utc::now(), fingerprint)
        .map_err(|e| anyhow::anyhow!("{} is not a valid license file: {e}", file.display()))?;
    println!("{}", serde_json::to_string_pretty(&claims)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn generated_batches_add_up_and_end_small() {
        assert_eq!(generate_batches(Backend::Sqlite, 100_000), [50_000, 40_000, 10_000]);
        assert_eq!(generate_batches(Backend::Sqlite, 7), [7]);
        assert_eq!(generate_batches(Backend::Sqlite, 25_000), [15_000, 10_000]);
        assert_eq!(generate_batches(Backend::Postgres, 25_000), [10_000, 10_000, 5_000]);
        for count in [1, 9_999, 10_000, 10_001, 59_999, 60_000, 1_000_000] {
            for (backend, most) in [(Backend::Sqlite, 50_000), (Backend::Postgres, 10_000)] {
                let batches = generate_batches(backend, count);
                assert_eq!(batches.iter().sum::<usize>(), count);
                assert!(batches.iter().all(|&b| (1..=most).contains(&b)), "{backend:?} {count}: {batches:?}");
            }
        }
    }
}
