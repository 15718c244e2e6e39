//! What the host knows of a kernel's WGSL, in one place per kernel: its
//! files, its bindings, the `override` constants it sets and the WGSL
//! constants it generates. Each kernel's spec lives beside its host code;
//! the pipeline cache builds layouts and checks dispatches from it, and
//! `tests/shaders.rs` checks every spec against its WGSL, reflected by naga.

use std::hash::{Hash, Hasher};

/// How a kernel binding is accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One kernel; see the module docs.
pub struct KernelSpec {
    /// Unique: it names the kernel in errors, and keys the caches.
    pub name: &'static str,
    /// WGSL files after the prelude. A file declaring an `override` comes
    /// before the files using it: naga 30 panics specialising overrides
    /// declared after their users.
    pub sources: &'static [&'static str],
    /// The files of its subgroup variant, where it has one.
    pub subgroup_sources: Option<&'static [&'static str]>,
    /// Group 0, in binding order: each binding's WGSL name and access.
    pub bindings: &'static [(&'static str, Access)],
    /// The `override` constants the host may set.
    pub overrides: &'static [&'static str],
    /// WGSL constants the host generates from layouts it shares with the
    /// kernel, placed after the prelude.
    pub generated: fn() -> String,
}

impl KernelSpec {
    pub fn sources(&self, subgroups: bool) -> &'static [&'static str] {
        match (subgroups, self.subgroup_sources) {
            (true, Some(s)) => s,
            _ => self.sources,
        }
    }

    /// For kernels that generate nothing.
    pub fn nothing() -> String {
        String::new()
    }
}

impl PartialEq for KernelSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for KernelSpec {}

impl Hash for KernelSpec {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl std::fmt::Debug for KernelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}
