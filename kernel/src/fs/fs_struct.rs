//! A process's working directory and umask (Linux `fs/fs_struct.c`,
//! `struct fs_struct`, without the root: there is no chroot).

#![forbid(unsafe_code)]

use uapi::errno::Errno;

use super::namespace::{self, Path};

/// Linux's default umask for the first process (`init_fs`).
pub const DEFAULT_UMASK: u32 = 0o022;

/// Where relative paths start, and the bits new files lose.
#[derive(Clone)]
pub struct FsStruct {
    /// The working directory; `None` is the root (a process made before
    /// the root was mounted).
    pwd: Option<Path>,
    /// The file mode creation mask.
    pub umask: u32,
}

impl Default for FsStruct {
    fn default() -> Self {
        FsStruct { pwd: None, umask: DEFAULT_UMASK }
    }
}

impl FsStruct {
    /// The working directory.
    pub fn pwd(&self) -> Result<Path, Errno> {
        match &self.pwd {
            Some(p) => Ok(p.clone()),
            None => namespace::root(),
        }
    }

    /// Changes the working directory (Linux `set_fs_pwd`); the old one
    /// is returned so the caller drops it outside its lock.
    pub fn set_pwd(&mut self, path: Path) -> Option<Path> {
        self.pwd.replace(path)
    }
}
