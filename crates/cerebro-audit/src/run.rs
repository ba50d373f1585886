//! Run: the stages over every pin. Resolution and downloads run concurrently (bounded by the
//! fetcher); judging runs on `jobs` threads, each artifact once, and the reports come back
//! in the pins' order.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;

use cerebro_fetch::{Artifact, Expected};
use cerebro_scan::scan;

use crate::resolve::Want;
use crate::{FileReport, Judge, Outcome, PackageReport, Pin, Progress, Resolver};

/// One artifact of a pin, fetched (or not).
enum Item {
    Fetched {
        file: String,
        url: String,
        artifact: Artifact,
    },
    Local(PathBuf),
    Installed {
        root: PathBuf,
        files: Vec<String>,
    },
    Failed {
        file: String,
        url: Option<String>,
        error: String,
    },
}

/// Audits `pins`: each one's artifacts found, fetched, verified and judged. Never fails as a
/// whole: what goes wrong for one pin is in its report, as an unjudged file.
pub fn audit(
    pins: &[Pin],
    resolver: Arc<Resolver>,
    judge: &Judge,
    jobs: usize,
    progress: &dyn Progress,
) -> Vec<PackageReport> {
    let fetched = fetch_all(pins, &resolver, progress);
    // Judge: one work item per fetched artifact or local folder.
    let mut work: Vec<(usize, usize)> = Vec::new();
    for (p, items) in fetched.iter().enumerate() {
        for (i, item) in items.iter().enumerate() {
            if !matches!(item, Item::Failed { .. }) {
                work.push((p, i));
            }
        }
    }
    progress.phase("Judging", work.len());
    let mut outcomes: Vec<Vec<Option<Outcome>>> = fetched
        .iter()
        .map(|items| items.iter().map(|_| None).collect())
        .collect();
    let fetcher = resolver.fetcher();
    scan::for_each_ordered(
        work.len(),
        jobs,
        |w| {
            let (p, i) = work[w];
            match &fetched[p][i] {
                Item::Fetched { file, artifact, .. } => judge.artifact(fetcher, artifact, file),
                Item::Local(path) => judge.local(path),
                Item::Installed { root, files } => judge.installed(root, files),
                Item::Failed { error, .. } => Outcome::Unjudged {
                    error: error.clone(),
                },
            }
        },
        |w, outcome| {
            let (p, i) = work[w];
            outcomes[p][i] = Some(outcome);
            progress.advance();
        },
    );
    pins.iter()
        .zip(fetched)
        .zip(outcomes)
        .map(|((pin, items), outcomes)| {
            let files = items
                .into_iter()
                .zip(outcomes)
                .map(|(item, outcome)| match item {
                    Item::Fetched {
                        file,
                        url,
                        artifact,
                    } => FileReport {
                        file,
                        url: Some(url),
                        sha256: Some(artifact.sha256),
                        outcome: outcome.unwrap_or_else(internal),
                    },
                    Item::Local(path) => FileReport {
                        file: path.display().to_string(),
                        url: None,
                        sha256: None,
                        outcome: outcome.unwrap_or_else(internal),
                    },
                    Item::Installed { root, .. } => FileReport {
                        file: root.display().to_string(),
                        url: None,
                        sha256: None,
                        outcome: outcome.unwrap_or_else(internal),
                    },
                    Item::Failed { file, url, error } => FileReport {
                        file,
                        url,
                        sha256: None,
                        outcome: Outcome::Unjudged { error },
                    },
                })
                .collect();
            PackageReport::new(pin, files)
        })
        .collect()
}

fn internal() -> Outcome {
    Outcome::Unjudged {
        error: "internal error: the artifact was not judged".to_owned(),
    }
}

/// Resolves and fetches every pin's artifacts, concurrently.
fn fetch_all(pins: &[Pin], resolver: &Arc<Resolver>, progress: &dyn Progress) -> Vec<Vec<Item>> {
    progress.phase("Fetching", pins.len());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let error = format!("cannot start the download runtime: {e}");
            return pins
                .iter()
                .map(|p| {
                    vec![Item::Failed {
                        file: p.name.clone(),
                        url: None,
                        error: error.clone(),
                    }]
                })
                .collect();
        }
    };
    runtime.block_on(async {
        let mut tasks = JoinSet::new();
        for (i, pin) in pins.iter().enumerate() {
            let (resolver, pin) = (resolver.clone(), pin.clone());
            tasks.spawn(async move { (i, fetch_pin(&resolver, &pin).await) });
        }
        let mut out: Vec<Option<Vec<Item>>> = pins.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, items)) = joined {
                out[i] = Some(items);
            }
            progress.advance();
        }
        out.into_iter()
            .zip(pins)
            .map(|(items, pin)| {
                items.unwrap_or_else(|| {
                    vec![Item::Failed {
                        file: pin.name.clone(),
                        url: None,
                        error: "internal error: a download task stopped".to_owned(),
                    }]
                })
            })
            .collect()
    })
}

async fn fetch_pin(resolver: &Resolver, pin: &Pin) -> Vec<Item> {
    let wants = match resolver.plan(pin).await {
        Ok(wants) => wants,
        Err(error) => {
            return vec![Item::Failed {
                file: pin.source.file.display().to_string(),
                url: None,
                error,
            }]
        }
    };
    let mut items = Vec::with_capacity(wants.len());
    for want in wants {
        items.push(match want {
            Want::Local(path) => Item::Local(path),
            Want::Installed { root, files } => Item::Installed { root, files },
            Want::Fetch {
                file,
                url,
                expected,
                auth,
                accept,
            } => {
                let shown = {
                    let mut u = url.clone();
                    let _ = u.set_username("");
                    let _ = u.set_password(None);
                    u.to_string()
                };
                match resolver
                    .fetcher()
                    .artifact(&url, &expected, auth.as_deref())
                    .await
                {
                    Ok(artifact) if accepted(&artifact, &expected, &accept) => Item::Fetched {
                        file,
                        url: shown,
                        artifact,
                    },
                    Ok(artifact) => Item::Failed {
                        file,
                        url: Some(shown.clone()),
                        error: format!(
                            "hash mismatch for {shown}: its sha256 {} is not among the \
                             requirement's --hash values",
                            &artifact.sha256[..16.min(artifact.sha256.len())]
                        ),
                    },
                    Err(e) => Item::Failed {
                        file,
                        url: Some(shown),
                        error: e.to_string(),
                    },
                }
            }
        });
    }
    items
}

/// Whether a download checked against nothing has one of the sha256s a requirement listed.
fn accepted(artifact: &Artifact, expected: &Expected, accept: &[String]) -> bool {
    accept.is_empty()
        || !matches!(expected, Expected::Nothing)
        || accept
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&artifact.sha256))
}
