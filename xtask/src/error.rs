//! xtask's errors: each names what failed and, where it can, what to do.

use std::fmt;
use std::path::PathBuf;

/// Everything that can stop an xtask command.
#[derive(Debug)]
pub enum Error {
    /// A file-system or process operation failed.
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A tool is not installed.
    MissingTool {
        /// The program or file looked for.
        tool: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A cargo build failed (its output is already on the terminal).
    BuildFailed(String),
    /// Making disk images failed.
    Image(boot::BootError),
    /// KVM was requested but cannot be used.
    KvmUnavailable(String),
    /// The test kernel did not answer as the harness expects.
    Harness(String),
    /// A command-line option that cannot be used as given.
    Usage(String),
    /// A lint check failed (its output is already on the terminal); the
    /// command that failed, to rerun.
    LintFailed(String),
    /// A host tool ran and refused (mke2fs, debugfs).
    ToolFailed {
        /// The tool.
        tool: &'static str,
        /// What it was asked to do.
        task: String,
        /// What it said.
        output: String,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::MissingTool { tool, package } => {
                write!(f, "{tool} not found; install it with `sudo apt-get install {package}` (Debian/Ubuntu)")
            }
            Error::BuildFailed(what) => write!(f, "building {what} failed (see the compiler output above)"),
            Error::Image(e) => write!(f, "{e}"),
            Error::KvmUnavailable(why) => write!(f, "KVM requested but unavailable: {why}; use --accel tcg"),
            Error::Harness(what) => write!(f, "test harness: {what}"),
            Error::Usage(what) => f.write_str(what),
            Error::LintFailed(command) => write!(f, "lint failed: `{command}` (see its output above)"),
            Error::ToolFailed { tool, task, output } => write!(f, "{tool} failed {task}: {output}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::memmap::MemmapError> for Error {
    fn from(e: crate::memmap::MemmapError) -> Self {
        Error::Harness(format!("kmemmap: {e}"))
    }
}

impl From<boot::BootError> for Error {
    fn from(e: boot::BootError) -> Self {
        Error::Image(e)
    }
}

/// A path for messages.
pub fn show(path: &std::path::Path) -> String {
    path.display().to_string()
}

/// Looks `name` up on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// A host tool from `package`: on PATH, or in the sbin directories a
/// user's PATH may lack.
pub fn host_tool(tool: &str, package: &'static str) -> Result<PathBuf, Error> {
    which(tool)
        .or_else(|| ["/sbin", "/usr/sbin"].iter().map(|d| std::path::Path::new(d).join(tool)).find(|p| p.is_file()))
        .ok_or(Error::MissingTool { tool: tool.into(), package })
}

/// An e2fsprogs tool (`mke2fs`, `e2fsck`, `debugfs`), as [`host_tool`]
/// finds it.
pub fn e2fsprogs(tool: &str) -> Result<PathBuf, Error> {
    host_tool(tool, "e2fsprogs")
}
