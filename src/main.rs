//! The `debsync` command: parse arguments, set up logging, call the library, map the error to
//! an exit code. Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "debsync",
    version,
    about = "Debian/Ubuntu archive mirror: sync and serve"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mirror the configured upstreams: verify, stage, pool, swap, cleanup, trace.
    Sync(SyncArgs),
    /// Re-hash what each served Release lists (indices and pool files); non-zero if anything
    /// is wrong.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// Path to mirror.toml.
    #[arg(long, short)]
    config: PathBuf,
    /// Only verify the mirror with this name.
    #[arg(long)]
    mirror: Option<String>,
}

#[derive(clap::Args)]
struct SyncArgs {
    /// Path to mirror.toml.
    #[arg(long, short)]
    config: PathBuf,
    /// Only sync the mirror with this name.
    #[arg(long)]
    mirror: Option<String>,
    /// Delete more than `max_delete` files if upstream really dropped them.
    #[arg(long)]
    force_delete: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Sync(args) => sync(args).await,
            Command::Verify(args) => verify(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn sync(args: SyncArgs) -> Result<(), debsync::Error> {
    let config = debsync::config::Config::load(&args.config)?;
    let opts = debsync::sync::SyncOptions {
        force_delete: args.force_delete,
    };
    for r in debsync::sync::sync_all(&config, args.mirror.as_deref(), &opts).await? {
        if r.noop {
            println!("{}: unchanged ({} ms)", r.mirror, r.elapsed_ms);
        } else {
            println!(
                "{}: updated {} in {} ms: {} files fetched, {} verified on disk, {} deleted, {} bytes received",
                r.mirror,
                r.suites_updated.join(" "),
                r.elapsed_ms,
                r.fetched_files,
                r.checked_local,
                r.deleted_files,
                r.bytes_received
            );
        }
    }
    Ok(())
}

fn verify(args: VerifyArgs) -> Result<(), debsync::Error> {
    let config = debsync::config::Config::load(&args.config)?;
    let mut problems = 0;
    let mut matched = false;
    for mirror in &config.mirrors {
        if args.mirror.as_deref().is_some_and(|n| n != mirror.name) {
            continue;
        }
        matched = true;
        let report = debsync::check::check_mirror(&config, mirror)?;
        for p in &report.problems {
            println!("{}: {p}", mirror.name);
        }
        println!(
            "{}: {} indices and {} pool files checked, {} problem(s)",
            mirror.name,
            report.indices,
            report.pool_files,
            report.problems.len()
        );
        problems += report.problems.len();
    }
    if !matched {
        return Err(debsync::Error::UnknownMirror(
            args.mirror.unwrap_or_default(),
        ));
    }
    if problems > 0 {
        return Err(debsync::Error::VerifyFailed(problems));
    }
    Ok(())
}
