//! The `keyward` command: serve, and the administrative subcommands around it.

use anyhow::Context;
use clap::{Parser, Subcommand};
use keyward_core::role::Role;
use keyward_server::config::{Config, LogFormat};
use keyward_server::serve::open_store;
use keyward_store::{Audit, Store};
use std::path::PathBuf;
use std::process::ExitCode;

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
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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
            println!("keyward is listening on http://{}", running.addr);
            running.until_signal().await
        }
        Command::Migrate => {
            open_store(&config).await?;
            println!("migrations are applied");
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { role, environment, name } } => {
            let store = open_store(&config).await?;
            let environments = store.environments().await?;
            anyhow::ensure!(
                environments.contains(&environment),
                "no environment is named `{environment}` (there are: {})",
                environments.join(", ")
            );
            let audit = Audit { actor: "keyward token create (cli)".into(), ip: None, action: "token.created".into() };
            let (_, secret) = keyward_server::tokens::create(store.as_ref(), &name, role, &environment, None, &audit)
                .await
                .context("cannot create the token")?;
            println!("{secret}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
