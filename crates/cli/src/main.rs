//! The `streamchat` binary: parses configuration, sets up logging, runs a subcommand.
//! The server and the load generator live in libraries (`streamchat-server`,
//! `streamchat-loadgen`), as does the client (`streamchat-client`); the terminal
//! front-ends built on the client, the full-screen UI and the JSON mode, are here
//! ([`chat`](mod@chat)), with the command line of each subcommand.

mod bench;
mod chat;

use bench::BenchArgs;
use chat::ChatArgs;
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;
use streamchat_loadgen::BenchConfig;
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
    Serve(Box<ServeConfig>),
    /// Chat in a room from the terminal (full-screen UI, or --json for scripts and bots).
    ///
    /// Messages, names and files are sealed and signed here; the server sees none of them.
    Chat(ChatArgs),
    /// Rooms: `streamchat room new` prints a fresh invite link.
    Room {
        #[command(subcommand)]
        command: RoomCommand,
    },
    /// Load generator: N clients in R rooms, S senders at a rate, one JSON line of results.
    ///
    /// Loopback servers only (unless --allow-remote). For heavy runs, start the server
    /// with higher limits, e.g. `streamchat serve --max-connections-per-ip 100000
    /// --messages-per-second 1000 --message-burst 1000 --send-buffer-packets 4096`.
    Bench(BenchArgs),
}

#[derive(Debug, Subcommand)]
enum RoomCommand {
    /// Make a new room: 32 random bytes, printed as an invite link for SERVER.
    New {
        /// The server the link points to.
        #[arg(long, default_value = "http://localhost:8000")]
        server: String,
        /// The kind of room: `knock` (v2: keys change whenever someone comes or goes,
        /// and a member lets each newcomer in), `open` (v2, and anyone with the link is
        /// let in), `v1` (one key from the link for the room's life, as rooms made
        /// before v2).
        #[arg(long, value_enum, default_value_t = Kind::Knock)]
        kind: Kind,
    },
}

/// `room new --kind`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    Knock,
    Open,
    V1,
}

impl From<Kind> for streamchat_client::RoomKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::V1 => Self::V1,
            Kind::Knock => Self::Knock,
            Kind::Open => Self::Open,
        }
    }
}

/// glibc malloc settings for the server: allocations of 256 KiB and more (file chunks)
/// are mmapped and returned to the system as soon as they are freed, and the heap is
/// trimmed past 128 KiB. With glibc's defaults the mmap threshold rises after the first
/// freed chunk, chunks then come from per-thread arenas, and RSS stays at its peak: a
/// 200 MiB file relayed to 5 receivers grew RSS by 392 MiB; with these, by 14 MiB
/// (docs/benchmarks.md). Tunables are read only at process start, so the server
/// re-executes itself once with them (same PID); an operator's own GLIBC_TUNABLES wins.
const MALLOC_TUNABLES: &str =
    "glibc.malloc.mmap_threshold=262144:glibc.malloc.trim_threshold=131072";

fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let error = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", MALLOC_TUNABLES)
            .exec();
        // exec only returns on failure: run on with the defaults.
        eprintln!("streamchat: could not apply malloc tunables ({error}); continuing");
    }
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
    if matches!(cli.command, Command::Serve(_)) {
        tune_allocator();
    }
    // The full-screen chat owns the terminal: log lines would tear it, so it logs nothing.
    let full_screen = matches!(&cli.command, Command::Chat(args) if !args.json);
    if !full_screen {
        init_logging();
    }
    match cli.command {
        Command::Serve(config) => serve(*config),
        Command::Chat(args) => chat(args),
        Command::Room {
            command: RoomCommand::New { server, kind },
        } => room_new(&server, kind.into()),
        Command::Bench(args) => bench(&args.into()),
    }
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STREAMCHAT_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn chat(args: ChatArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("streamchat: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(chat::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streamchat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn room_new(server: &str, kind: streamchat_client::RoomKind) -> ExitCode {
    match streamchat_client::new_room_link(server, kind) {
        Ok(link) => {
            #[allow(clippy::print_stdout)] // The link is this command's output.
            {
                println!("{link}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("streamchat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(config: &BenchConfig) -> ExitCode {
    match streamchat_loadgen::run(config) {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(line) => {
                #[allow(clippy::print_stdout)] // The report line is this command's output.
                {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("streamchat: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("streamchat: {e}");
            ExitCode::from(2)
        }
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
        let scheme = config.scheme();
        let server = match streamchat_server::Server::prepare(config).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("streamchat: {e}");
                return ExitCode::from(2);
            }
        };
        let signalled = shutdown_signal();
        #[allow(clippy::print_stdout)] // The one line scripts and tests wait for.
        {
            println!("streamchat listening on {scheme}://{local}");
        }
        let (signal_tx, signal_rx) = tokio::sync::oneshot::channel::<()>();
        let mut server = tokio::spawn(server.serve(listener, async move {
            let _ = signal_rx.await;
        }));
        tokio::select! {
            // The server stopped by itself: it could not start (a bad TLS file) or failed.
            finished = &mut server => return server_exit(finished),
            () = signalled => {}
        }
        let _ = signal_tx.send(());
        match tokio::time::timeout(SHUTDOWN_LIMIT, server).await {
            Ok(finished) => server_exit(finished),
            Err(_) => {
                tracing::warn!("shutdown took longer than {SHUTDOWN_LIMIT:?}; exiting anyway");
                ExitCode::SUCCESS
            }
        }
    })
}

fn server_exit(finished: Result<std::io::Result<()>, tokio::task::JoinError>) -> ExitCode {
    match finished {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("streamchat: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("streamchat: server task failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
/// SIGINT or SIGTERM. The handlers are installed when this is called (not when it is
/// first awaited), so the caller makes it before announcing that it listens: a signal
/// sent right after the announcement is then a graceful shutdown, not a kill.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
