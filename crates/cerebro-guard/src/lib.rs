//! The install guard: [`manager`] reads pip's and npm's command lines and finds the real
//! tools, [`index`] is the loopback guard index that judges every artifact before the real
//! installer gets it, [`policy`] decides what to do with a flagged package, [`guard`] runs
//! one guarded install, and [`delegate`] hands the command to the real tool.

pub mod daemon;
pub mod delegate;
pub mod guard;
pub mod index;
pub mod manager;
pub mod policy;

/// Entry points for the fuzz targets (`fuzz/`), which live outside the workspace and see only
/// public items: not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// Reads `bytes` as a requirement file the way an install's `-r FILE` is read (decoding,
    /// line splitting, options, includes), from a file in a scratch folder. Errors are the
    /// expected outcome of most inputs; a panic or a hang is the finding.
    pub fn requirement_file(bytes: &[u8]) {
        let Ok(dir) = tempfile::tempdir() else { return };
        let path = dir.path().join("requirements.txt");
        if std::fs::write(&path, bytes).is_err() {
            return;
        }
        let mut tree = crate::manager::requirements::Tree::default();
        let mut out = crate::manager::requirements::Collected::default();
        let no_env = |_: &str| None;
        let _ = tree.read(&path, false, dir.path(), &no_env, &mut out);
    }

    /// What a requirement file says, as Cerebro reads it: for the differential tests against
    /// pip's own parser.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub struct RequirementView {
        /// `--index-url`/`-i` and `--extra-index-url` values, in order.
        pub index_urls: Vec<String>,
        pub find_links: Vec<String>,
        pub no_index: bool,
        /// The requirement lines, as pip reads them (without their options).
        pub requirements: Vec<String>,
    }

    /// Reads the requirement file at `path` with the environment `env`; `Err` is Cerebro's
    /// refusal (the line it would print).
    pub fn requirement_view(
        path: &std::path::Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RequirementView, String> {
        use crate::manager::pip::FileIndexOption;
        let mut tree = crate::manager::requirements::Tree::default();
        let mut out = crate::manager::requirements::Collected::default();
        let cwd = path.parent().unwrap_or(std::path::Path::new("."));
        tree.read(path, false, cwd, env, &mut out)
            .map_err(|e| e.to_string())?;
        let mut view = RequirementView::default();
        for option in &out.index_options {
            match option {
                FileIndexOption::IndexUrl(u) | FileIndexOption::ExtraIndexUrl(u) => {
                    view.index_urls.push(u.clone())
                }
                FileIndexOption::NoIndex => view.no_index = true,
                FileIndexOption::FindLinks(f) => view.find_links.push(f.clone()),
                FileIndexOption::TrustedHost(_) => {}
            }
        }
        view.requirements = tree
            .requirement_lines()
            .into_iter()
            .map(|l| l.requirement)
            .collect();
        Ok(view)
    }
}
