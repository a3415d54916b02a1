//! The `streamchat` binary: parses configuration, sets up logging, runs a subcommand.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;
use streamchat_server::ServeConfig;

/// StreamChat: ephemeral, end-to-end encrypted group chat.
#[derive(Debug, Parser)]
#[command(name = "streamchat", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (single node, in memory, web client served at /).
    ///
    /// Every option can also be set in the environment or a `.env` file; flags win.
    Serve(ServeConfig),
}

/// How long shutdown may take before the process exits anyway.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    // A missing .env file is normal; a malformed one is reported like bad configuration.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("streamchat: invalid .env file: {e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STREAMCHAT_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve(config) => serve(config),
    }
}

fn serve(config: ServeConfig) -> ExitCode {
    if let Err(e) = config.validate() {
        eprintln!("streamchat: {e}");
        return ExitCode::from(2);
    }
    if config.encryption_key.is_some() {
        tracing::warn!(
            "ENCRYPTION_KEY is set but ignored: StreamChat is end-to-end encrypted and keys now live only in clients"
        );
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("streamchat: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let addr = config.listen_addr();
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("streamchat: cannot listen on {addr}: {e}");
                return ExitCode::from(2);
            }
        };
        let local = listener.local_addr().unwrap_or(addr);
        #[allow(clippy::print_stdout)] // The one line scripts and tests wait for.
        {
            println!("streamchat listening on http://{local}");
        }
        let (signal_tx, signal_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(streamchat_server::run(listener, config, async move {
            let _ = signal_rx.await;
        }));
        shutdown_signal().await;
        let _ = signal_tx.send(());
        match tokio::time::timeout(SHUTDOWN_LIMIT, server).await {
            Ok(Ok(Ok(()))) => ExitCode::SUCCESS,
            Ok(Ok(Err(e))) => {
                eprintln!("streamchat: server error: {e}");
                ExitCode::FAILURE
            }
            Ok(Err(e)) => {
                eprintln!("streamchat: server task failed: {e}");
                ExitCode::FAILURE
            }
            Err(_) => {
                tracing::warn!("shutdown took longer than {SHUTDOWN_LIMIT:?}; exiting anyway");
                ExitCode::SUCCESS
            }
        }
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
