//! Source locations: `plugin.toml:12` for an entry, from the parsed
//! documents' spans.

use super::*;

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

pub(super) type Key = (Capability, String);

pub(super) fn locate(
    source: &Option<std::sync::Arc<miette::NamedSource<String>>>,
    span: Option<&Range<usize>>,
) -> Option<Location> {
    let s = source.as_ref()?;
    Some(Location {
        file: s.name().to_string(),
        line: line_of(s.inner(), span?.start),
    })
}

#[derive(Default)]
pub(super) struct Lines {
    pub(super) manifest: HashMap<Key, Location>,
    pub(super) grant: HashMap<Key, Location>,
}

impl Lines {
    pub(super) fn new(s: &Sources<'_>) -> Lines {
        let mut l = Lines::default();
        if let Some(m) = s.manifest {
            for r in &m.requested {
                if let Some(loc) = locate(&m.source, r.origin.as_ref().map(|o| &o.url)) {
                    l.manifest.insert(
                        (r.permission.capability, r.permission.target.to_string()),
                        loc,
                    );
                }
            }
        }
        if let Some(g) = s.grant {
            for e in &g.entries {
                if let Some(loc) = locate(&g.source, e.origin.as_ref().map(|o| &o.url)) {
                    l.grant.insert((e.capability, e.target.to_string()), loc);
                }
            }
        }
        l
    }

    pub(super) fn manifest(&self, cap: Capability, t: &Target) -> Option<Location> {
        self.manifest.get(&(cap, t.to_string())).cloned()
    }

    pub(super) fn grant(&self, cap: Capability, t: &Target) -> Option<Location> {
        self.grant.get(&(cap, t.to_string())).cloned()
    }
}
