//! A local OTLP/gRPC trace receiver for the secret scan (`scripts/secret-scan.sh --suite`):
//! listens on 127.0.0.1, and appends every span it is sent to a file as one line (service,
//! span name, attributes, each event with its attributes). Runs until it is killed.

use std::{io::Write, net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use ponte_tests::otlp::Receiver;

#[derive(Parser, Debug)]
#[command(about = "Receives OTLP/gRPC spans on 127.0.0.1 and appends each as one line to a file")]
struct Args {
    /// Where to listen (loopback only).
    #[arg(long, default_value = "127.0.0.1:4317")]
    addr: SocketAddr,
    /// The file the spans are appended to.
    #[arg(long)]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.addr.ip().is_loopback(), "--addr: listens on 127.0.0.1 only");
    let receiver = Receiver::serve(args.addr).await?;
    let mut out = std::fs::File::options().create(true).append(true).open(&args.out)?;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for line in receiver.take_lines().await {
            writeln!(out, "{line}")?;
        }
    }
}
