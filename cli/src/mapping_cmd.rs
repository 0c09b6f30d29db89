//! `ponte mapping export|import`: a tenant's mapping tables as YAML, through a running mapping
//! service over gRPC. The document format, the diff and the import rules are
//! `ponte_mapping::document`'s; this module reads and writes files and prints.

use std::io::{Read, Write};

use anyhow::Context;
use clap::{Args, Subcommand};
use ponte_core::grpc::TracedChannel as Channel;
use ponte_mapping::document;
use ponte_proto::v1::mapping_service_client::MappingServiceClient;

/// Where mapping is.
#[derive(Args, Debug)]
pub struct MappingAddr {
    /// mapping's gRPC address (default: where `ponte dev` puts it).
    #[arg(long, env = "PONTE_MAPPING_URL", default_value = "http://127.0.0.1:50052")]
    pub mapping_url: String,
}

#[derive(Subcommand, Debug)]
pub enum MappingCommand {
    /// Writes a tenant's payment methods, stores, situações and own field mappings as YAML.
    Export {
        #[arg(long)]
        tenant: String,
        /// Where to write ("-": standard output).
        #[arg(long, default_value = "-")]
        file: String,
        #[command(flatten)]
        addr: MappingAddr,
    },
    /// Makes a tenant's tables what a YAML document says: each section in the file replaces that
    /// table (sections left out are untouched). Prints the diff first.
    Import {
        #[arg(long)]
        tenant: String,
        /// Where to read ("-": standard input).
        #[arg(long, default_value = "-")]
        file: String,
        /// Print the diff, have mapping check the new entries (their Bling ids against the
        /// tenant's Bling account included), and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who the audit trail says made the changes.
        #[arg(long, env = "PONTE_ACTOR", default_value = "ponte-cli")]
        actor: String,
        #[command(flatten)]
        addr: MappingAddr,
    },
}

async fn client(addr: &MappingAddr) -> anyhow::Result<MappingServiceClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(addr.mapping_url.clone())
        .with_context(|| format!("--mapping-url '{}' is not a URL", addr.mapping_url))?
        .connect()
        .await
        .with_context(|| format!("cannot reach mapping at {}", addr.mapping_url))?;
    let channel = crate::with_token(channel)?;
    Ok(MappingServiceClient::new(channel))
}

pub async fn mapping(cmd: MappingCommand) -> anyhow::Result<()> {
    match cmd {
        MappingCommand::Export { tenant, file, addr } => {
            let current = document::read(&mut client(&addr).await?, &tenant).await?;
            let yaml = document::to_yaml(&current.document, &tenant)?;
            if file == "-" {
                std::io::stdout().write_all(yaml.as_bytes())?;
            } else {
                std::fs::write(&file, yaml).with_context(|| format!("writing {file}"))?;
            }
        }
        MappingCommand::Import { tenant, file, dry_run, actor, addr } => {
            let text = if file == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
                s
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?
            };
            let wanted = document::from_yaml(&text)?;
            let mut c = client(&addr).await?;
            let current = document::read(&mut c, &tenant).await?;
            let changes = document::plan(&current, &wanted).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
            for change in &changes {
                println!("{change}");
            }
            if changes.is_empty() {
                println!("no changes");
            } else if dry_run {
                document::check(&mut c, &tenant, &changes, &actor).await?;
                println!("dry run: {} changes, none made", changes.len());
            } else {
                document::apply(&mut c, &tenant, &changes, &actor).await?;
                println!("{} changes made", changes.len());
            }
        }
    }
    Ok(())
}
