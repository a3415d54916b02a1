//! `streamchat bench`: the command line of the load generator (`streamchat-loadgen`).
//! The flags are the fields of [`BenchConfig`], with its defaults.

use streamchat_loadgen::BenchConfig;

fn defaults() -> BenchConfig {
    BenchConfig::default()
}

/// Arguments of `streamchat bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The server, e.g. http://127.0.0.1:8000, or several nodes of one cluster separated by
    /// commas (client i connects to the i-th modulo their number). Loopback unless --allow-remote.
    #[arg(long, default_value_t = defaults().url)]
    pub url: String,
    /// Clients to connect (at most 20000).
    #[arg(long, default_value_t = defaults().clients)]
    pub clients: usize,
    /// Rooms to spread them over (client i joins room i mod ROOMS).
    #[arg(long, default_value_t = defaults().rooms)]
    pub rooms: usize,
    /// How many of the clients send (the first SENDERS, so spread over the rooms).
    #[arg(long, default_value_t = defaults().senders)]
    pub senders: usize,
    /// Messages per second per sender (at most 1000).
    #[arg(long, default_value_t = defaults().rate)]
    pub rate: f64,
    /// Payload bytes per message (before sealing).
    #[arg(long, default_value_t = defaults().payload)]
    pub payload: usize,
    /// Length of the sending window, seconds (at most 600).
    #[arg(long, default_value_t = defaults().duration)]
    pub duration: u64,
    /// Send real sealed, signed messages; receivers open and verify each one.
    #[arg(long)]
    pub seal: bool,
    /// Worker threads of the benchmark's runtime.
    #[arg(long, default_value_t = defaults().threads)]
    pub threads: usize,
    /// The server's PID, to report its CPU seconds and memory (read from /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Allow a non-loopback server. Only for servers you run yourself.
    #[arg(long)]
    pub allow_remote: bool,
    /// Connections being set up at once.
    #[arg(long, default_value_t = defaults().connect_concurrency)]
    pub connect_concurrency: usize,
    /// Longest time for connecting everyone, seconds; whoever is not in by then is left out.
    #[arg(long, default_value_t = defaults().connect_timeout)]
    pub connect_timeout: u64,
    /// Do not spread client source addresses over 127.0.0.2–127.0.0.250.
    #[arg(long)]
    pub no_spread: bool,
    /// How long to wait for deliveries after the sending window, seconds.
    #[arg(long, default_value_t = defaults().drain)]
    pub drain: u64,
    /// Messages a sender may have awaiting their ack; a tick beyond is skipped (and counted).
    #[arg(long, default_value_t = defaults().max_in_flight)]
    pub max_in_flight: usize,
}

impl From<BenchArgs> for BenchConfig {
    fn from(a: BenchArgs) -> Self {
        // Every field by name: a field added to BenchConfig and not here fails to build.
        Self {
            url: a.url,
            clients: a.clients,
            rooms: a.rooms,
            senders: a.senders,
            rate: a.rate,
            payload: a.payload,
            duration: a.duration,
            seal: a.seal,
            threads: a.threads,
            server_pid: a.server_pid,
            allow_remote: a.allow_remote,
            connect_concurrency: a.connect_concurrency,
            connect_timeout: a.connect_timeout,
            no_spread: a.no_spread,
            drain: a.drain,
            max_in_flight: a.max_in_flight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn config(args: &[&str]) -> BenchConfig {
        Cli::try_parse_from(["bench"].iter().chain(args))
            .unwrap()
            .bench
            .into()
    }

    #[test]
    fn no_flags_is_the_library_default_and_every_flag_lands_in_its_field() {
        assert_eq!(config(&[]), BenchConfig::default());
        let all = config(&[
            "--url",
            "http://localhost:9000",
            "--clients",
            "7",
            "--rooms",
            "3",
            "--senders",
            "2",
            "--rate",
            "2.5",
            "--payload",
            "64",
            "--duration",
            "4",
            "--seal",
            "--threads",
            "1",
            "--server-pid",
            "42",
            "--allow-remote",
            "--connect-concurrency",
            "8",
            "--connect-timeout",
            "9",
            "--no-spread",
            "--drain",
            "1",
            "--max-in-flight",
            "5",
        ]);
        assert_eq!(
            all,
            BenchConfig {
                url: "http://localhost:9000".to_owned(),
                clients: 7,
                rooms: 3,
                senders: 2,
                rate: 2.5,
                payload: 64,
                duration: 4,
                seal: true,
                threads: 1,
                server_pid: Some(42),
                allow_remote: true,
                connect_concurrency: 8,
                connect_timeout: 9,
                no_spread: true,
                drain: 1,
                max_in_flight: 5,
            }
        );
    }
}
