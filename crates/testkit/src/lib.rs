//! Test support, not part of StreamChat: the real server in process on 127.0.0.1 (port
//! 0, or a given port to restart in place), configured with `streamchat serve`'s
//! arguments and stopped through its shutdown future. The client library's integration
//! tests use it; it lives here so that they can parse the server's command-line
//! configuration without the client library depending on a command-line parser.

// Helpers of integration tests panic on failure: that is the report we want.
#![allow(clippy::unwrap_used)]

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use streamchat_server::ServeConfig;
use tokio::sync::oneshot;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeConfig,
}

/// A running server.
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Starts a server with `streamchat serve` arguments `args` on an OS-chosen port.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_on("127.0.0.1:0", args).await
    }

    /// Starts on `addr` (retrying a moment while a stopped server's port is released).
    pub async fn start_on(addr: &str, args: &[&str]) -> Self {
        let config = Cli::try_parse_from(["streamchat"].iter().chain(args))
            .unwrap()
            .serve;
        config.validate().unwrap();
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("bind {addr}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(streamchat_server::run(listener, config, async move {
            let _ = rx.await;
        }));
        Self {
            url,
            addr,
            stop: Some(tx),
            task,
        }
    }

    /// Stops it and waits (at most 10 s) for it to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
