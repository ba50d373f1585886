//! Lockfile: each format Cerebro reads → its [`Pin`]s. Reading is parsing only: no package
//! manager runs, no code of the project or its packages runs, every file is read whole only
//! under [`crate::MAX_LOCKFILE_BYTES`].

pub mod npm;
pub mod python;
pub mod requirements;

pub use requirements::PipOptions;

use crate::{Format, Lockfile, LockfileError, Pin};

/// Reads the pins of `lockfile`. `env` is the environment pip's configuration is read with
/// (for requirement files).
pub fn read(
    lockfile: &Lockfile,
    pip: &PipOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Pin>, LockfileError> {
    match lockfile.format {
        Format::NpmLock => npm::read(&lockfile.path),
        Format::Requirements => requirements::read(&lockfile.path, pip, env),
        Format::UvLock => python::read_uv(&lockfile.path),
        Format::PoetryLock => python::read_poetry(&lockfile.path),
        Format::PnpmLock => npm::read_pnpm(&lockfile.path),
        Format::BunLock => npm::read_bun(&lockfile.path),
        Format::YarnLock => npm::read_yarn(&lockfile.path),
        Format::PyLock => python::read_pylock(&lockfile.path),
        Format::NodeModules => npm::read_node_modules(&lockfile.path),
        Format::SitePackages => python::read_site_packages(&lockfile.path),
    }
}
