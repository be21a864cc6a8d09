//! The `debsync` command: parse the CLI, set up logging, call the library, map the error to an
//! exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use debsync::config::{Config, ServeConfig};
use debsync::serve::{self, Limits, Server, Site};
use tracing_subscriber::EnvFilter;

/// Debian/Ubuntu archive mirror synchronizer and static server.
#[derive(Parser)]
#[command(name = "debsync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve(ServeArgs),
}

/// Serve the synced trees over HTTP (each mirror at /<name>/), or one directory at /.
#[derive(Args)]
struct ServeArgs {
    /// mirror.toml: serves <root>/<name> at /<name>/ for every [[mirror]].
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "root",
        conflicts_with = "root"
    )]
    config: Option<PathBuf>,
    /// Serve this directory at / instead of the mirrors of a config.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Address to listen on [default: [serve] listen of the config, else 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// PEM certificate chain: serve HTTPS instead of HTTP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Most connections open at once; more get 503.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Serve(args) => run_serve(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_serve(args: ServeArgs) -> Result<(), debsync::Error> {
    let (site, listen) = match (&args.config, &args.root) {
        (Some(path), _) => {
            let config = Config::load(path)?;
            (Site::from_config(&config), config.serve.listen)
        }
        (None, Some(root)) => (Site::bare(root)?, ServeConfig::default().listen),
        (None, None) => unreachable!("clap requires --config or --root"),
    };
    let listen = args.listen.unwrap_or(listen);
    let limits = Limits {
        max_connections: args.max_connections,
        ..Limits::default()
    };
    let mut server = Server::new(site, limits);
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        server = server.with_tls(cert, key)?;
    }
    let shutdown = serve::shutdown_signal()?;
    let listener = serve::bind(&listen).await?;
    let addr = listener
        .local_addr()
        .map_err(serve::ServeError::LocalAddr)?;
    println!("listening on {}://{addr}", server.scheme());
    server.run(listener, shutdown).await?;
    Ok(())
}
