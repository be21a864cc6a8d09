/// The library's one error type: each layer's typed error, wrapped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error("{} of {total} mirrors failed: {}", .failed.len(), .failed.join(", "))]
    MirrorsFailed { failed: Vec<String>, total: usize },
    #[error("verify found {0} problem(s)")]
    VerifyFailed(usize),
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error("{0}")]
    Usage(String),
}
